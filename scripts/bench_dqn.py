"""Benchmark rlkit's DQN on CartPole-v1: wall time and env steps/s until the greedy policy solves it.

Each library trains with its tuned CartPole settings and is evaluated greedily every ``eval_every``
env steps (20 episodes); a seed counts as solved at the first evaluation whose mean return is >= 475
(Gymnasium's reward threshold). Training stops when every seed is solved or the budget is spent.
Reported per library: seeds solved, env steps and wall time to the threshold (mean over solved
seeds), training throughput in env steps/s (evaluation time excluded), and rlkit's speed ratio to each peer.

- rlkit: ``DQN.PRESETS["CartPole-v1"]``, seeds vmapped in one compiled program, trained in chunks
  between evaluations (compile time reported separately).
- Stable-Baselines3 DQN (``pip install stable-baselines3`` with CPU torch) with the RL Zoo settings.
- sbx DQN (``pip install sbx-rl``, SB3's API on JAX) with the same RL Zoo settings.
- rejax DQN (``pip install rejax``) with the CartPole config from rejax's repository
  (``configs/gymnax/cartpole.yaml``), on gymnax's CartPole; rejax evaluates inside its own compiled
  loop (128 episodes, epsilon 0.005) every 2,500 steps, so its time to threshold is the fraction of
  the whole run's wall time up to the first passing evaluation.

Peers that are not installed are skipped with a message (they are in the ``[bench]`` extra). The
figures depend on the machine and its load: compare the ratios.

    PYTHONPATH=. python scripts/bench_dqn.py [--seeds 5] [--skip-peers]
"""

from __future__ import annotations

import os

# Must be set before jax initialises its backend (long programs can stall on 2 cores without it;
# see docs/design.md).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from agents.dqn import DQN  # noqa: E402  (jax not initialised yet)
from agents.runtime.compile import compile_once  # noqa: E402
from agents.runtime.devices import cpu_devices_flag, runs_sharding, vmap_runs  # noqa: E402
from agents.runtime.loop import init_runner, make_train_chunk  # noqa: E402
from envs.wrappers import make_vec  # noqa: E402
from scripts.bench_peers import FiveTupleStep  # noqa: E402
from scripts.bench_sb3 import THRESHOLD, sb3_greedy_evaluations  # noqa: E402

# One CPU device per core, as scripts/train.py sets up: rlkit's seeds are split over them when
# their number is a multiple of the device count.
os.environ["XLA_FLAGS"] = cpu_devices_flag()

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["REJAX_CARTPOLE", "RL_ZOO_CARTPOLE", "benchmark_dqn"]

#: RL Zoo's CartPole-v1 DQN hyperparameters (rl-baselines3-zoo ``hyperparams/dqn.yml``).
RL_ZOO_CARTPOLE: dict[str, Any] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}
RL_ZOO_TIMESTEPS = 50_000

#: rejax's CartPole-v1 DQN config (``configs/gymnax/cartpole.yaml`` in the rejax repository).
REJAX_CARTPOLE: dict[str, Any] = {
    "agent": "DuelingQNetwork",
    "agent_kwargs": {"activation": "swish"},
    "num_envs": 10,
    "buffer_size": 50_000,
    "fill_buffer": 5_000,
    "batch_size": 100,
    "max_grad_norm": 10,
    "learning_rate": 0.001,
    "num_epochs": 5,
    "total_timesteps": 100_000,
    "eval_freq": 2_500,
    "polyak": 0.98,
    "eps_start": 1,
    "eps_end": 0.05,
    "exploration_fraction": 0.5,
    "gamma": 0.99,
    "ddqn": True,
    "normalize_observations": False,
}


def _row(name, solved_steps, train_s, steps_done, wall_to_solve, compile_s=float("nan")):
    solved = [s for s in solved_steps if s is not None]
    return {
        "name": name,
        "seeds": len(solved_steps),
        "solved": len(solved),
        "steps_to_solve": float(np.mean(solved)) if solved else float("nan"),
        "wall_to_solve_s": wall_to_solve,
        "train_s": train_s,
        "steps_per_s": steps_done / train_s if train_s > 0 else float("nan"),
        "compile_s": compile_s,
    }


# --------------------------------------------------------------------------------------------------
# rlkit
# --------------------------------------------------------------------------------------------------


def _greedy_returns(agent, config, venv, env_params, pparams, key, episodes: int):
    """Mean undiscounted return of ``episodes`` greedy episodes (one per env of ``venv``)."""
    obs, state = venv.reset(key, env_params)
    horizon = int(env_params.max_episode_steps)

    def step(carry, k):
        obs, state, ret, done = carry
        k_act, k_env = jax.random.split(k)
        action = agent.policy(config, pparams, obs, k_act, deterministic=True)
        obs, state, reward, term, trunc, _ = venv.step(k_env, state, action, env_params)
        ret = ret + jnp.where(done, 0.0, reward)
        return (obs, state, ret, done | term | trunc), None

    carry = (obs, state, jnp.zeros(episodes), jnp.zeros(episodes, bool))
    (_, _, ret, _), _ = jax.lax.scan(step, carry, jax.random.split(key, horizon))
    return ret.mean()


def _bench_rlkit(num_seeds: int, eval_every: int, max_timesteps: int | None, episodes: int):
    config = DQN.default_config("CartPole-v1")
    if max_timesteps is not None:
        config = config.replace(total_timesteps=max_timesteps)
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = DQN(venv.observation_space(env_params), venv.action_space(env_params))
    eval_venv, _ = make_vec("CartPole-v1", episodes)
    iters = max(1, eval_every // config.steps_per_update)
    chunk = make_train_chunk(agent, venv, env_params, iters)

    init = vmap_runs(lambda k: init_runner(agent, venv, env_params, config, k), num_seeds)
    run_chunk = jax.jit(vmap_runs(lambda rs: chunk(config, rs), num_seeds))
    evaluate = jax.jit(
        vmap_runs(
            lambda rs, k: _greedy_returns(
                agent, config, eval_venv, env_params, agent.policy_params(rs.agent_state), k,
                episodes,
            ),
            num_seeds,
        )
    )
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    start = time.perf_counter()
    rs = jax.block_until_ready(compile_once(init, keys)(keys))  # the trainer's options for an init
    run_chunk = run_chunk.lower(rs).compile()
    evaluate = evaluate.lower(rs, keys).compile()
    compile_s = time.perf_counter() - start

    solved: list[int | None] = [None] * num_seeds
    train_s, steps = 0.0, 0
    wall_start = time.perf_counter()
    wall_to_solve = float("nan")
    for i in range(-(-config.num_updates // iters)):  # ceil: the last chunk may run past the budget
        t0 = time.perf_counter()
        rs, _ = jax.block_until_ready(run_chunk(rs))
        train_s += time.perf_counter() - t0
        steps += iters * config.steps_per_update
        eval_keys = jax.random.split(jax.random.PRNGKey(1000 + i), num_seeds)
        returns = np.asarray(evaluate(rs, eval_keys))
        for s in range(num_seeds):
            if solved[s] is None and returns[s] >= THRESHOLD:
                solved[s] = steps
        print(f"  rlkit  {steps:>7d} steps  greedy returns {np.round(returns, 1)}", flush=True)
        if all(s is not None for s in solved):
            wall_to_solve = time.perf_counter() - wall_start
            break
    row = _row(f"rlkit ({num_seeds} seeds vmapped)", solved, train_s, steps * num_seeds,
               wall_to_solve, compile_s)
    row["per_seed_s"] = train_s / num_seeds
    return row


def seed_scaling(num_seeds: int = 8, num_chunks: int = 5) -> dict[str, float]:
    """What ``--num-seeds num_seeds`` costs against one seed: the CartPole preset's whole run.

    Both runs train ``DQN.PRESETS["CartPole-v1"]`` for its full budget in ``num_chunks`` jitted
    chunks, exactly as ``scripts/train.py`` does (seeds split over the local devices by
    ``agents.runtime.devices.vmap_runs``), without evaluations. Compile and run times are reported apart.

    Returns:
      ``{"compile_1", "run_1", "compile_n", "run_n", "ratio_run", "ratio_total"}`` in seconds.
    """
    config = DQN.default_config("CartPole-v1")
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = DQN(venv.observation_space(env_params), venv.action_space(env_params))
    iters = max(1, config.num_updates // num_chunks)
    chunk = make_train_chunk(agent, venv, env_params, iters)
    out: dict[str, float] = {}
    for tag, seeds in (("1", 1), ("n", num_seeds)):
        keys = jax.random.split(jax.random.PRNGKey(0), seeds)
        start = time.perf_counter()
        init = vmap_runs(lambda k: init_runner(agent, venv, env_params, config, k), seeds)
        rs = jax.block_until_ready(compile_once(init, keys)(keys))  # the trainer's options for an init
        run_chunk = jax.jit(vmap_runs(lambda r: chunk(config, r), seeds)).lower(rs).compile()
        out[f"compile_{tag}"] = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(config.num_updates // iters):
            rs, _ = run_chunk(rs)
        jax.block_until_ready(rs)
        out[f"run_{tag}"] = time.perf_counter() - start
    out["ratio_run"] = out["run_n"] / out["run_1"]
    out["ratio_total"] = (out["compile_n"] + out["run_n"]) / (out["compile_1"] + out["run_1"])
    sharding = runs_sharding(num_seeds)
    devices = 1 if sharding is None else len(sharding.device_set)
    print(f"rlkit DQN, CartPole preset ({config.num_updates // iters * iters * config.steps_per_update:,}"
          f" steps per seed): 1 seed compile {out['compile_1']:.2f} s run {out['run_1']:.2f} s; "
          f"{num_seeds} seeds over {devices} device(s) compile {out['compile_n']:.2f} s "
          f"run {out['run_n']:.2f} s; {num_seeds} seeds / 1 seed: run {out['ratio_run']:.2f}x, "
          f"compile+run {out['ratio_total']:.2f}x", flush=True)
    return out


# --------------------------------------------------------------------------------------------------
# Stable-Baselines3 and sbx (same API)
# --------------------------------------------------------------------------------------------------


def _bench_sb3_like(name: str, dqn_cls, num_seeds: int, eval_every: int, episodes: int):
    import gymnasium as gym

    solved, train_s, steps, wall = [], 0.0, 0, 0.0
    for seed in range(num_seeds):
        env = gym.make("CartPole-v1")
        model = dqn_cls("MlpPolicy", env, seed=seed, verbose=0, **RL_ZOO_CARTPOLE)
        cb = sb3_greedy_evaluations(name, eval_every, episodes, THRESHOLD)
        t0 = time.perf_counter()
        model.learn(RL_ZOO_TIMESTEPS, callback=cb)
        elapsed = time.perf_counter() - t0
        train_s += elapsed - cb.eval_s
        wall += elapsed
        steps += model.num_timesteps
        solved.append(cb.solved_at)
    wall_to_solve = wall if all(s is not None for s in solved) else float("nan")
    row = _row(name, solved, train_s, steps, wall_to_solve)
    row["per_seed_s"] = train_s / num_seeds
    return row


# --------------------------------------------------------------------------------------------------
# rejax
# --------------------------------------------------------------------------------------------------


def _bench_rejax(num_seeds: int):
    import gymnax
    import rejax


    env, env_params = gymnax.make("CartPole-v1")
    algo = rejax.DQN.create(env=FiveTupleStep(env), env_params=env_params, **REJAX_CARTPOLE)
    train = jax.jit(jax.vmap(algo.train))
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    t0 = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, (_, returns) = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    means = np.asarray(returns).mean(-1)  # [seeds, evaluations]; evaluation 0 is before training
    total = REJAX_CARTPOLE["total_timesteps"]
    freq = REJAX_CARTPOLE["eval_freq"]
    solved = []
    for s in range(num_seeds):
        hits = np.nonzero(means[s, 1:] >= THRESHOLD)[0]
        solved.append(int((hits[0] + 1) * freq) if hits.size else None)
    print(f"  rejax  evaluation means per seed (every {freq} steps):")
    for s in range(num_seeds):
        print(f"    seed {s}: {np.round(means[s], 0).astype(int).tolist()}")
    last = max((s for s in solved if s is not None), default=None)
    all_solved = last is not None and None not in solved
    wall_to_solve = run_s * last / total if all_solved else float("nan")
    row = _row(f"rejax ({num_seeds} seeds vmapped)", solved, run_s, total * num_seeds,
               wall_to_solve, compile_s)
    row["per_seed_s"] = run_s / num_seeds
    return row


# --------------------------------------------------------------------------------------------------


def benchmark_dqn(
    num_seeds: int = 5,
    eval_every: int = 5120,
    max_timesteps: int | None = None,
    episodes: int = 20,
    include_peers: bool = True,
) -> list[dict[str, Any]]:
    """Train DQN on CartPole-v1 until the greedy policy reaches 475, for rlkit and installed peers.

    Args:
      num_seeds: seeds per library (vmapped for rlkit and rejax, one after another for SB3/sbx).
      eval_every: env steps per seed between greedy evaluations.
      max_timesteps: step budget per seed for rlkit (default: the preset's total_timesteps).
      episodes: greedy evaluation episodes.
      include_peers: also run SB3, sbx and rejax where importable.

    Returns:
      One dict per library: name, seeds, solved, steps_to_solve (mean over solved seeds),
      wall_to_solve_s (until every seed solved; nan if some never did), train_s, per_seed_s,
      steps_per_s (training only), compile_s.
    """
    rows = [_bench_rlkit(num_seeds, eval_every, max_timesteps, episodes)]
    if include_peers:
        peers = []
        try:
            from stable_baselines3 import DQN as SB3DQN

            peers.append(("sb3", lambda: _bench_sb3_like("sb3", SB3DQN, num_seeds, eval_every,
                                                          episodes)))
        except ImportError as e:
            print(f"stable-baselines3 not importable ({e}); skipping it")
        try:
            from sbx import DQN as SBXDQN

            peers.append(("sbx", lambda: _bench_sb3_like("sbx", SBXDQN, num_seeds, eval_every,
                                                          episodes)))
        except ImportError as e:
            print(f"sbx not importable ({e}); skipping it")
        try:
            import gymnax  # noqa: F401
            import rejax  # noqa: F401

            peers.append(("rejax", lambda: _bench_rejax(num_seeds)))
        except ImportError as e:
            print(f"rejax/gymnax not importable ({e}); skipping it")
        for name, fn in peers:
            try:
                rows.append(fn())
            except Exception as e:  # noqa: BLE001  (a broken peer must not hide rlkit's figures)
                print(f"{name} failed: {type(e).__name__}: {e}")

    print()
    print(f"{'library':28s} {'solved':>7s} {'steps to 475':>13s} {'wall to 475':>12s} "
          f"{'train s':>8s} {'s/seed':>7s} {'steps/s':>10s} {'compile s':>10s}")
    for r in rows:
        print(f"{r['name']:28s} {r['solved']:>3d}/{r['seeds']:<3d} {r['steps_to_solve']:>13,.0f} "
              f"{r['wall_to_solve_s']:>12.1f} {r['train_s']:>8.1f} {r['per_seed_s']:>7.1f} "
              f"{r['steps_per_s']:>10,.0f} {r['compile_s']:>10.1f}")
    base = rows[0]
    for r in rows[1:]:
        print(f"rlkit vs {r['name']}: {r['per_seed_s'] / base['per_seed_s']:.1f}x less train time "
              f"per seed, {base['steps_per_s'] / r['steps_per_s']:.1f}x the env steps/s")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5, help="seeds per library")
    p.add_argument("--eval-every", type=int, default=5120, help="env steps between evaluations")
    p.add_argument("--max-timesteps", type=int, default=None, help="rlkit step budget per seed")
    p.add_argument("--skip-peers", action="store_true", help="only benchmark rlkit")
    p.add_argument("--scaling-seeds", type=int, default=8,
                   help="also time the preset's full run with this many seeds against one (0: skip)")
    a = p.parse_args()
    if a.scaling_seeds:
        seed_scaling(a.scaling_seeds)
    benchmark_dqn(a.seeds, a.eval_every, a.max_timesteps, include_peers=not a.skip_peers)


if __name__ == "__main__":
    main()
