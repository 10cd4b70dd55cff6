"""Benchmark rlkit's PPO on CartPole-v1 with PureJaxRL's published settings, against rejax's PPO.

Settings (PureJaxRL ``ppo.py`` defaults): 4 envs x 128 steps, 500k env steps, 4 epochs x 4
minibatches, Adam lr 2.5e-4 annealed linearly, gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01,
value 0.5, grad norm 0.5, separate 64x64 tanh actor and critic. Each is measured for one seed and 8 seeds
vmapped in one program (rlkit's seeds split over one CPU device per core, as ``scripts/train.py``
runs them, and also on a single device): compile time (``jit(...).lower(...).compile()``), run time, and env steps
per second (all seeds together). Runs are cut into jitted chunks as ``scripts/train.py`` does.

rejax (``pip install rejax``) runs the same settings where it has them; it differs in two details it
does not expose: it clips gradients element-wise (``optax.clip``) rather than by global norm, and it
does not anneal the learning rate. Its periodic evaluation is replaced by a no-op so only training
is timed. The figures depend on the machine and on its load, so compare the ratios printed at the end.

    python scripts/bench_ppo.py [--seeds 8] [--timesteps 500000] [--skip-rejax]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A long compiled program can stall on a 2-core CPU backend (see FACTS.md); single-threaded Eigen
# avoids most of it. Must be set before jax initialises its backend.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
from agents.runner import cpu_devices_flag, vmap_runs  # noqa: E402  (jax not initialised yet)

# One CPU device per core, as scripts/train.py sets up: rlkit's vmapped seeds are split over them.
os.environ["XLA_FLAGS"] = cpu_devices_flag()

import argparse
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["PUREJAXRL_SETTINGS", "benchmark_ppo"]

#: PureJaxRL's published CartPole-v1 PPO settings, in rlkit's PPOConfig field names.
PUREJAXRL_SETTINGS: dict[str, Any] = {
    "total_timesteps": 500_000,
    "num_envs": 4,
    "rollout_length": 128,
    "num_epochs": 4,
    "num_minibatches": 4,
    "learning_rate": 2.5e-4,
    "anneal_lr": True,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_eps": 0.2,
    "clip_value": True,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "hidden": (64, 64),
    "activation": "tanh",
    "normalize_obs": False,
    "normalize_reward": False,
}


class _Program(NamedTuple):
    """A training run cut into equal jitted chunks, as ``agents.trainer`` runs it."""

    init: Callable  # key (or keys [S]) -> training state
    chunk: Callable  # state -> (state, metrics or None): ``updates_per_chunk`` updates
    num_chunks: int
    steps_per_chunk: int  # env steps per seed


def _chunk_updates(num_updates: int, num_chunks: int) -> int:
    """Updates per chunk: a divisor of ``num_updates`` near ``num_updates / num_chunks``."""
    target = max(1, num_updates // num_chunks)
    for d in range(target, 0, -1):
        if num_updates % d == 0 and d >= target // 2:
            return d
    return target


def _seeded(
    init: Callable, chunk: Callable, num_seeds: int, spread: bool = False
) -> tuple[Callable, Callable]:
    """Per-seed ``init``/``chunk`` mapped over ``num_seeds``: ``jax.vmap`` on one device, or with
    ``spread`` ``agents.runner.vmap_runs`` (the seeds split over the local devices, as
    ``scripts/train.py --num-seeds`` runs them)."""
    if num_seeds == 1:
        return init, chunk
    if spread:
        return vmap_runs(init, num_seeds), vmap_runs(chunk, num_seeds)
    return jax.vmap(init), jax.vmap(chunk)


def _rlkit_program(
    total_timesteps: int, num_seeds: int, num_chunks: int, spread: bool = True
) -> _Program:
    from agents.ppo import PPO
    from agents.runner import init_runner, make_train_chunk
    from envs.wrappers import make_vec

    config = PPO.Config(**{**PUREJAXRL_SETTINGS, "total_timesteps": total_timesteps})
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = PPO(_space(venv.observation_space), _space(venv.action_space))
    per = _chunk_updates(config.num_updates, num_chunks)
    chunk = make_train_chunk(agent, venv, env_params, per)
    init, step = _seeded(
        lambda key: init_runner(agent, venv, env_params, config, key),
        lambda rs: chunk(config, rs),
        num_seeds,
        spread,
    )
    return _Program(init, step, config.num_updates // per, per * config.steps_per_update)


def _space(space_or_method):
    return space_or_method() if callable(space_or_method) else space_or_method


def _rejax_program(total_timesteps: int, num_seeds: int, num_chunks: int) -> _Program:
    import gymnax
    import rejax

    from scripts.bench_peers import FiveTupleStep

    steps_per_update = 4 * 128
    per = _chunk_updates(max(1, total_timesteps // steps_per_update), num_chunks)
    chunk_steps = per * steps_per_update
    env, env_params = gymnax.make("CartPole-v1")
    # One ``train`` call runs ``total_timesteps / eval_freq`` blocks of ``eval_freq`` env steps;
    # with both set to a chunk it is one chunk, and ``train(train_state=...)`` continues a run.
    algo = rejax.PPO.create(
        env=FiveTupleStep(env),
        env_params=env_params,
        total_timesteps=chunk_steps,
        eval_freq=chunk_steps,
        skip_initial_evaluation=True,
        num_envs=4,
        num_steps=128,
        num_epochs=4,
        num_minibatches=4,
        learning_rate=2.5e-4,
        max_grad_norm=0.5,
        gamma=0.99,
        gae_lambda=0.95,
        clip_eps=0.2,
        ent_coef=0.01,
        vf_coef=0.5,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    init, step = _seeded(
        algo.init_state, lambda ts: (algo.train(train_state=ts)[0], None), num_seeds
    )
    return _Program(init, step, max(1, total_timesteps // chunk_steps), chunk_steps)


def _time_program(program: _Program, num_seeds: int) -> tuple[float, float, float, int, Any]:
    """``(compile_s, run_s, run_cpu_s, env_steps_per_seed, last_metrics)`` of a chunked run."""
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    key = keys[0] if num_seeds == 1 else keys
    start = time.perf_counter()
    init = jax.jit(program.init).lower(key).compile()
    state = jax.block_until_ready(init(key))
    chunk = jax.jit(program.chunk).lower(state).compile()
    compile_s = time.perf_counter() - start
    start, start_cpu = time.perf_counter(), time.process_time()
    metrics = None
    for _ in range(program.num_chunks):
        state, metrics = chunk(state)
    jax.block_until_ready(state)
    run_s, run_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    return compile_s, run_s, run_cpu_s, program.num_chunks * program.steps_per_chunk, metrics


def _final_return(metrics: dict) -> float:
    """Mean return of the episodes completed in the last chunk, over seeds."""
    ret, cnt = metrics["episode_return_sum"], metrics["episode_count"]
    return float(jnp.mean(jnp.sum(ret, -1) / jnp.maximum(jnp.sum(cnt, -1), 1.0)))


def benchmark_ppo(
    total_timesteps: int = 500_000,
    num_seeds: int = 8,
    include_rejax: bool = True,
    num_chunks: int = 16,
) -> dict[str, dict[str, float]]:
    """Compile time, run time and env steps/s of rlkit PPO (and rejax PPO) on CartPole-v1.

    Each run is cut into ``num_chunks`` jitted chunks of equal length, as ``scripts/train.py``
    runs it (one very long compiled program can stall the 2-core CPU backend; see FACTS.md).
    Compile time covers the init and chunk programs; run time the chunks, back to back.

    Args:
      total_timesteps: env steps per seed.
      num_seeds: seeds of the vmapped program.
      include_rejax: also time rejax's PPO if it can be imported.
      num_chunks: jitted chunks per run (1: the whole run as one program).

    Returns:
      ``{name: {"compile_s", "run_s", "run_cpu_s", "steps_per_s", "env_steps", "final_return"}}``
      (``run_cpu_s``: the process's CPU time during the run, steadier than wall time on a shared
      machine), with names
      ``rlkit_1``, ``rlkit_{num_seeds}`` and, when rejax ran, ``rejax_1``, ``rejax_{num_seeds}``.
      ``steps_per_s`` counts the env steps of all seeds; ``final_return`` (rlkit only) is the
      mean return of the episodes of the last chunk.
    """
    results: dict[str, dict[str, float]] = {}
    libraries: list[tuple[str, Callable]] = [("rlkit", _rlkit_program)]
    if include_rejax:
        try:
            import rejax  # noqa: F401

            libraries.append(("rejax", _rejax_program))
        except ImportError as e:
            print(f"rejax not importable ({e}); skipping the comparison (pip install rejax)")
    runs: list[tuple[str, Callable, int]] = []
    for lib, make_program in libraries:
        runs += [(f"{lib}_1", make_program, 1), (f"{lib}_{num_seeds}", make_program, num_seeds)]
    if len(jax.local_devices()) > 1:
        # rlkit's seeds on a single device too (plain jax.vmap), for the record.
        runs.insert(2, (f"rlkit_{num_seeds}_onedevice",
                        lambda t, s, c: _rlkit_program(t, s, c, spread=False), num_seeds))
    for name, make_program, seeds in runs:
        lib = name.split("_")[0]
        program = make_program(total_timesteps, seeds, num_chunks)
        compile_s, run_s, run_cpu_s, steps, metrics = _time_program(program, seeds)
        row = {
            "compile_s": compile_s,
            "run_s": run_s,
            "run_cpu_s": run_cpu_s,
            "env_steps": float(steps),
            "steps_per_s": seeds * steps / run_s,
            "final_return": _final_return(metrics) if lib == "rlkit" else float("nan"),
        }
        results[name] = row
        print(
            f"{name:18s} compile {compile_s:6.2f} s  run {run_s:6.2f} s "
            f"(cpu {run_cpu_s:6.2f} s)  "
            f"{row['steps_per_s']:>10,.0f} steps/s  ({steps:,} steps per seed, "
            f"{program.num_chunks} chunks)  final return {row['final_return']:.1f}",
            flush=True,
        )
    for name in (f"rlkit_{num_seeds}", f"rlkit_{num_seeds}_onedevice", f"rejax_{num_seeds}"):
        lib = name.split("_")[0]
        if name in results:
            a, b = results[name], results[f"{lib}_1"]
            how = ("on one device" if name.endswith("onedevice") or lib == "rejax"
                   else f"over {len(jax.local_devices())} device(s)")
            print(
                f"{lib} {num_seeds} vmapped seeds {how} / 1 seed: "
                f"compile+run {(a['compile_s'] + a['run_s']) / (b['compile_s'] + b['run_s']):.2f}x, "
                f"run {a['run_s'] / b['run_s']:.2f}x, run cpu {a['run_cpu_s'] / b['run_cpu_s']:.2f}x"
            )
    if "rejax_1" in results:
        for seeds in (1, num_seeds):
            a, b = results[f"rlkit_{seeds}"], results[f"rejax_{seeds}"]
            print(
                f"rlkit / rejax, {seeds} seed(s): compile {a['compile_s'] / b['compile_s']:.2f}x, "
                f"run {a['run_s'] / b['run_s']:.2f}x, "
                f"run cpu {a['run_cpu_s'] / b['run_cpu_s']:.2f}x"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds of the vmapped program")
    parser.add_argument("--timesteps", type=int, default=500_000, help="env steps per seed")
    parser.add_argument("--skip-rejax", action="store_true", help="do not time rejax")
    parser.add_argument("--chunks", type=int, default=16, help="jitted chunks per run")
    args = parser.parse_args()
    benchmark_ppo(args.timesteps, args.seeds, not args.skip_rejax, args.chunks)


if __name__ == "__main__":
    main()
