"""Benchmark training on a host (Gymnasium) env: rlkit's host backend and pipeline against SB3.

DQN on LunarLander-v3 with rlkit's preset (``DQN.PRESETS["LunarLander-v3"]``: 4 envs, 16 steps
each per update, 64 gradient steps of 128, 256x256, 3-step Double-Q returns, hard target copies
every 250 gradient steps), trained for ``--steps`` env steps by

- ``python scripts/train.py --agent dqn --env LunarLander-v3`` with ``--pipeline off`` (the host
  backend: env steps and updates take turns), ``sync`` and ``async`` (``agents.training.pipeline``),
  each in its own process, timed as a whole process (start-up, compilation, evaluation-free
  training) and by the training loop alone (``summary.json``'s ``train_s``);
- Stable-Baselines3's DQN (the ``[bench]`` extra) with the same hyperparameters where SB3 has them
  (4 envs, ``train_freq=16``, ``gradient_steps=64``, batch 128, ``n_steps=3``, linear learning-rate
  decay, target copy every 250 env steps = 250 gradient steps here, 256x256), timed in ``learn``
  alone. SB3's DQN bootstraps with plain (not Double) Q-learning.
- sbx's DQN (SB3's loop with JAX updates, ``--peers``) with the same hyperparameters but no
  gradient clipping (sbx has none), timed in ``learn`` alone.
- with ``--baseline DIR``, the rlkit rows of another checkout first ("base": a before/after).

Rows give env steps/s and each rlkit row's ratio to SB3. Compare ratios from the same run: the
figures depend on the machine and its load.

    PYTHONPATH=. python scripts/benchmark.py host [--steps 20000] [--skip-sb3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from agents.dqn import DQN

__all__ = ["bench_rlkit", "bench_sb3", "main"]

ENV_ID = "LunarLander-v3"


def bench_rlkit(
    pipeline: str, steps: int, seed: int = 0, extra: tuple[str, ...] = (), root: str = ROOT,
    label: str = "",
) -> dict:
    """One ``scripts/train.py`` process of the rlkit checkout ``root``; its wall time and the
    training loop's time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd = [sys.executable, os.path.join(root, "scripts", "train.py"), "--agent", "dqn"]
        cmd += ["--env", ENV_ID, "--total-timesteps", str(steps), "--seed", str(seed)]
        cmd += ["--pipeline", pipeline, "--eval-every", "0", "--eval-episodes", "0"]
        cmd += ["--quiet", "--out", out, *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": root}, cwd=root)
        wall = time.perf_counter() - t0
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        lag = None
        with open(os.path.join(out, "metrics.csv")) as f:
            header = f.readline().strip().split(",")
            if "policy_lag" in header:
                i = header.index("policy_lag")
                lags = [float(line.split(",")[i]) for line in f if line.strip()]
                lag = sum(lags) / len(lags)
    return {
        "name": (f"rlkit {pipeline}" if pipeline != "off" else "rlkit host") + label,
        "steps": summary["env_steps_per_run"],
        "wall_s": wall,
        "train_s": summary["train_s"],
        "return": summary["final_train_return"],
        "lag": lag,
    }


def _peer_dqn_kwargs(seed: int) -> dict:
    """The DQN preset's hyperparameters as SB3's (and sbx's) DQN keyword arguments."""
    c = DQN.default_config(ENV_ID)
    lr = c.learning_rate
    return dict(
        learning_rate=lambda progress: lr * progress,
        buffer_size=c.buffer_size,
        learning_starts=c.learning_starts,
        batch_size=c.batch_size,
        tau=c.tau,
        gamma=c.gamma,
        train_freq=c.rollout_length,
        gradient_steps=c.gradient_steps,
        n_steps=c.n_step,
        target_update_interval=c.target_update_interval,
        exploration_fraction=c.exploration_fraction,
        exploration_final_eps=c.exploration_final_eps,
        policy_kwargs={"net_arch": list(c.hidden)},
        seed=seed,
        verbose=0,
    )


def _time_learn(name: str, model, steps: int) -> dict:
    """``model.learn(steps)`` timed alone; the mean return of its last 20 training episodes."""
    t0 = time.perf_counter()
    model.learn(steps)
    train_s = time.perf_counter() - t0
    returns = [ep["r"] for ep in model.ep_info_buffer]
    return {
        "name": name,
        "steps": model.num_timesteps,
        "wall_s": float("nan"),
        "train_s": train_s,
        "return": sum(returns[-20:]) / max(1, len(returns[-20:])),
        "lag": None,
    }


def bench_sb3(steps: int, seed: int = 0) -> dict:
    """SB3's DQN with the preset's hyperparameters; timed in ``learn``."""
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.env_util import make_vec_env

    c = DQN.default_config(ENV_ID)
    env = make_vec_env(ENV_ID, n_envs=c.num_envs, seed=seed)
    model = SB3DQN(
        "MlpPolicy", env, max_grad_norm=c.max_grad_norm, device="cpu", **_peer_dqn_kwargs(seed)
    )
    return _time_learn("sb3 dqn", model, steps)


def bench_sbx(steps: int, seed: int = 0) -> dict:
    """sbx's DQN (JAX updates in SB3's loop) with the preset's hyperparameters where sbx has
    them (no gradient clipping); timed in ``learn``."""
    import sbx
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(ENV_ID, n_envs=DQN.default_config(ENV_ID).num_envs, seed=seed)
    model = sbx.DQN("MlpPolicy", env, **_peer_dqn_kwargs(seed))
    return _time_learn("sbx dqn", model, steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20_000, help="env steps per run")
    p.add_argument("--seed", type=int, default=0, help="seed of every run")
    p.add_argument("--skip-sb3", action="store_true", help="rlkit only")
    p.add_argument("--peers", default="sb3,sbx", help="peers to run, comma-separated")
    p.add_argument("--baseline", default="",
                   help="another rlkit checkout (e.g. the main branch) whose rows run before "
                        "this one's, labelled 'base' (a before/after in the same run)")
    p.add_argument(
        "--modes", default="off,sync,async", help="rlkit pipelines to run, comma-separated"
    )
    args = p.parse_args()
    modes = args.modes.split(",")
    rows = []
    if args.baseline:
        rows += [bench_rlkit(m, args.steps, args.seed, root=args.baseline, label=" base")
                 for m in modes]
    rows += [bench_rlkit(m, args.steps, args.seed) for m in modes]
    peers = [] if args.skip_sb3 else [x for x in args.peers.split(",") if x]
    for peer in peers:
        fn = {"sb3": bench_sb3, "sbx": bench_sbx}.get(peer)
        if fn is None:
            raise SystemExit(f"--peers: expected sb3 and/or sbx, got {peer!r}")
        try:
            rows.append(fn(args.steps, args.seed))
        except ImportError as e:
            print(f"{peer} not importable ({e}); skipping it")
    sb3 = next((r for r in rows if r["name"] == "sb3 dqn"), None)
    print(f"DQN on {ENV_ID}, {args.steps} env steps, seed {args.seed}")
    print(
        f"{'':16s} {'steps/s (process)':>18s} {'steps/s (train)':>16s} {'x sb3 learn':>12s} "
        f"{'return':>8s} {'lag':>5s}"
    )
    for r in rows:
        proc = r["steps"] / r["wall_s"]
        train = r["steps"] / r["train_s"]
        ratio = proc / (sb3["steps"] / sb3["train_s"]) if sb3 and r is not sb3 else float("nan")
        if r["name"].endswith(" dqn"):  # a peer: learn alone
            ratio = (r["steps"] / r["train_s"]) / (sb3["steps"] / sb3["train_s"]) if sb3 else ratio
        lag = "" if r["lag"] is None else f"{r['lag']:.2f}"
        print(
            f"{r['name']:16s} {proc:18.0f} {train:16.0f} {ratio:12.2f} {r['return']:8.1f} "
            f"{lag:>5s}",
            flush=True,
        )


if __name__ == "__main__":
    main()
