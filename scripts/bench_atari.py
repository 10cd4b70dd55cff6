"""Benchmark PPO on Atari (ALE/Breakout-v5, 8 envs): rlkit's host backend against a CleanRL-style
loop.

Both train PPO with ``PPO.PRESETS["ALE/Breakout-v5"]`` (8 envs x 128 steps, 4 epochs of 4
minibatches, clip 0.1, the Nature-DQN actor-critic of ``agents.networks.ActorCritic``) on the
same preprocessed env (``envs.atari``: frame skip 4 with max-pooling, 84x84 grey, 4 stacked
frames, sticky actions):

- rlkit: ``python scripts/train.py --agent ppo --env ALE/Breakout-v5`` in its own process, with
  ``--pipeline off`` (env steps and updates take turns) and ``--pipeline sync`` (the actor thread
  steps the envs while the learner trains); steady-state env steps/s from ``metrics.csv`` (one
  row per update, the first update, which compiles, left out);
- the peer, written here in CleanRL's style (``ppo_atari`` with a jitted policy and jitted
  minibatch updates): a synchronous ``gymnasium.make_vec(..., vectorization_mode="sync")`` of
  Gymnasium's ``AtariPreprocessing`` + ``FrameStackObservation`` made by hand, a jitted
  ``act``, GAE and a Python loop over epochs and minibatches of one jitted Adam step each. It
  times its env steps, its policy calls and its updates separately, which is where the time of
  a host-env PPO goes.

    PYTHONPATH=. python scripts/benchmark.py atari [--updates 6] [--skip-peer]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import gymnasium  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from agents.networks import ActorCritic, conv_spec  # noqa: E402
from agents.ppo import PPO  # noqa: E402
from envs import host  # noqa: E402

__all__ = ["bench_peer", "bench_rlkit", "main"]

ENV_ID = "ALE/Breakout-v5"


def bench_rlkit(updates: int, pipeline: str) -> dict:
    """train.py in its own process; steady-state env steps/s over updates 2..``updates``."""
    config = PPO.default_config(ENV_ID)
    per_update = config.num_envs * config.rollout_length
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd = [
            sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--agent", "ppo",
            "--env", ENV_ID, "--total-timesteps", str(updates * per_update),
            "--log-every", str(per_update), "--checkpoint-every", str(10 * updates * per_update),
            "--eval-every", "0", "--eval-episodes", "0", "--quiet", "--pipeline", pipeline,
            "--out", out,
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": ROOT})
        wall = time.perf_counter() - t0
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = [r for r in csv.DictReader(f) if r.get("wall_time")]
        summary = json.load(open(os.path.join(out, "summary.json")))
    steps = [int(r["env_steps"]) for r in rows]
    times = [float(r["wall_time"]) for r in rows]
    steady = (steps[-1] - steps[0]) / (times[-1] - times[0])
    return {"steady_sps": steady, "process_s": wall, "train_s": summary["train_s"]}


def _peer_envs(num_envs: int):
    host.register_reference(ENV_ID)

    def wrap(env):
        env = gymnasium.wrappers.AtariPreprocessing(
            env, noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=False,
            grayscale_obs=True, scale_obs=False,
        )
        return gymnasium.wrappers.FrameStackObservation(env, 4)

    return gymnasium.make_vec(
        ENV_ID, num_envs, vectorization_mode="sync", wrappers=[wrap], frameskip=1
    )


def bench_peer(updates: int, seed: int = 0) -> dict:
    """The CleanRL-style loop; returns steady env steps/s and the time per part."""
    c = PPO.default_config(ENV_ID)
    n, t_len = c.num_envs, c.rollout_length
    envs = _peer_envs(n)
    obs_space = host.spaces_from_gymnasium(gymnasium.spaces.Box(0, 255, (84, 84, 4), np.uint8))
    net = ActorCritic(action_dim=int(envs.single_action_space.n), conv=conv_spec(c, obs_space))
    key = jax.random.PRNGKey(seed)
    obs, _ = envs.reset(seed=seed)
    obs = np.moveaxis(obs, 1, -1)
    params = jax.jit(net.init)(key, obs)
    total_updates = c.num_updates
    num_grad = c.num_epochs * c.num_minibatches
    sched = optax.linear_schedule(c.learning_rate, 0.0, total_updates * num_grad)
    tx = optax.chain(optax.clip_by_global_norm(c.max_grad_norm), optax.adam(sched, eps=1e-5))
    opt_state = tx.init(params)

    @jax.jit
    def act(params, obs, key):
        logits, value = net.apply(params, obs)
        action = jax.random.categorical(key, logits)
        logp = jax.nn.log_softmax(logits)[jnp.arange(action.shape[0]), action]
        return action, logp, value

    @jax.jit
    def gae(values, next_value, rewards, dones):
        def step(carry, x):
            v, r, d, nv = x
            delta = r + c.gamma * nv * (1 - d) - v
            carry = delta + c.gamma * c.gae_lambda * (1 - d) * carry
            return carry, carry

        next_values = jnp.concatenate([values[1:], next_value[None]], 0)
        _, adv = jax.lax.scan(step, jnp.zeros_like(next_value),
                              (values, rewards, dones, next_values), reverse=True)
        return adv, adv + values

    @jax.jit
    def minibatch_step(params, opt_state, mb):
        def loss_fn(p):
            logits, value = net.apply(p, mb["obs"])
            logp_all = jax.nn.log_softmax(logits)
            logp = logp_all[jnp.arange(logits.shape[0]), mb["action"]]
            ratio = jnp.exp(logp - mb["logp"])
            adv = (mb["adv"] - mb["adv"].mean()) / (mb["adv"].std() + 1e-8)
            pg = jnp.maximum(-adv * ratio, -adv * jnp.clip(ratio, 1 - c.clip_eps, 1 + c.clip_eps))
            v_clip = mb["value"] + jnp.clip(value - mb["value"], -c.clip_eps, c.clip_eps)
            v_loss = 0.5 * jnp.maximum((value - mb["ret"]) ** 2, (v_clip - mb["ret"]) ** 2)
            ent = -(jnp.exp(logp_all) * logp_all).sum(-1)
            return pg.mean() + c.vf_coef * v_loss.mean() - c.ent_coef * ent.mean()

        grads = jax.grad(loss_fn)(params)
        updates_, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates_), opt_state

    times = {"env": 0.0, "act": 0.0, "update": 0.0}
    marks = []
    rng = np.random.default_rng(seed)
    for u in range(updates):
        buf = {k: [] for k in ("obs", "action", "logp", "value", "reward", "done")}
        for _ in range(t_len):
            key, k = jax.random.split(key)
            t0 = time.perf_counter()
            action, logp, value = jax.device_get(act(params, obs, k))
            t1 = time.perf_counter()
            next_obs, reward, term, trunc, _ = envs.step(action)
            t2 = time.perf_counter()
            buf["obs"].append(obs)
            buf["action"].append(action)
            buf["logp"].append(logp)
            buf["value"].append(value)
            buf["reward"].append(np.sign(reward).astype(np.float32))
            buf["done"].append((term | trunc).astype(np.float32))
            obs = np.moveaxis(next_obs, 1, -1)
            if u > 0:
                times["act"] += t1 - t0
                times["env"] += t2 - t1
        t0 = time.perf_counter()
        _, _, next_value = act(params, obs, key)
        b = {k: np.stack(v) for k, v in buf.items()}
        adv, ret = gae(b["value"], next_value, b["reward"], b["done"])
        flat = {
            "obs": b["obs"].reshape((-1, 84, 84, 4)), "action": b["action"].reshape(-1),
            "logp": b["logp"].reshape(-1), "value": b["value"].reshape(-1),
            "adv": np.asarray(adv).reshape(-1), "ret": np.asarray(ret).reshape(-1),
        }
        size = n * t_len
        for _ in range(c.num_epochs):
            perm = rng.permutation(size)
            for idx in np.split(perm, c.num_minibatches):
                mb = {k: v[idx] for k, v in flat.items()}
                params, opt_state = minibatch_step(params, opt_state, mb)
        jax.block_until_ready(params)
        if u > 0:
            times["update"] += time.perf_counter() - t0
        marks.append(time.perf_counter())
    envs.close()
    steady = (updates - 1) * n * t_len / (marks[-1] - marks[0])
    total = sum(times.values())
    return {"steady_sps": steady, **{f"{k}_share": v / total for k, v in times.items()},
            **{f"{k}_s_per_update": v / (updates - 1) for k, v in times.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--updates", type=int, default=6, help="PPO updates (of 1024 env steps) per run")
    p.add_argument("--skip-peer", action="store_true", help="rlkit only")
    p.add_argument("--pipelines", nargs="+", default=["off", "sync"],
                   help="rlkit --pipeline modes to run")
    args = p.parse_args(argv)
    rows = {}
    for mode in args.pipelines:
        rows[f"rlkit --pipeline {mode}"] = bench_rlkit(args.updates, mode)
        print(f"rlkit --pipeline {mode}: {rows[f'rlkit --pipeline {mode}']}", flush=True)
    if not args.skip_peer:
        rows["cleanrl-style"] = bench_peer(args.updates)
        print(f"cleanrl-style: {rows['cleanrl-style']}", flush=True)
    peer = rows.get("cleanrl-style", {}).get("steady_sps")
    print(f"\n{'run':28s} {'env steps/s':>12s} {'ratio':>7s}")
    for name, r in rows.items():
        ratio = f"{r['steady_sps'] / peer:.2f}x" if peer else "-"
        print(f"{name:28s} {r['steady_sps']:12.0f} {ratio:>7s}")
    if peer:
        r = rows["cleanrl-style"]
        print("peer time per update: " + ", ".join(
            f"{k} {r[f'{k}_s_per_update']:.2f} s ({100 * r[f'{k}_share']:.0f}%)"
            for k in ("env", "act", "update")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
