"""Benchmark rlkit's PPO on CartPole-v1 with PureJaxRL's published settings, against rejax's PPO.

Settings (PureJaxRL ``ppo.py`` defaults): 4 envs x 128 steps, 500k env steps, 4 epochs x 4
minibatches, Adam lr 2.5e-4 annealed linearly, gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01,
value 0.5, grad norm 0.5, separate 64x64 tanh actor and critic. Each is measured for one seed and 8 seeds
vmapped in one program (rlkit's seeds split over one CPU device per core, as ``scripts/train.py``
runs them, and also on a single device): compile time (``jit(...).lower(...).compile()`` of the
init and chunk programs), run time, and env steps per second (all seeds together). Runs are cut
into jitted chunks as ``scripts/train.py`` does. Each library compiles as it does itself: rlkit
as its trainer does, with ``agents.runtime.compile.compile_init_and_chunk`` (the init program, which runs
once, at XLA backend optimisation level 0, in a second thread while the chunk compiles); rejax
with ``jax.jit``, init then chunk. Both chunk programs are compiled with XLA's defaults.

rejax (``pip install rejax``) runs the same settings where it has them; it differs in two details it
does not expose: it clips gradients element-wise (``optax.clip``) rather than by global norm, and it
does not anneal the learning rate. Its periodic evaluation is replaced by a no-op so only training
is timed. The figures depend on the machine and on its load, so compare the ratios printed at the end.

Each row runs in its own Python process (``--same-process`` runs them all in this one).

    python scripts/bench_ppo.py [--seeds 8] [--timesteps 500000] [--skip-rejax] [--same-process] [--repeats 3]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A long compiled program can stall on a 2-core CPU backend (see docs/design.md); single-threaded Eigen
# avoids most of it. Must be set before jax initialises its backend.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
from agents.ppo import PPO  # noqa: E402  (jax not initialised yet)
from agents.runtime.devices import cpu_devices_flag  # noqa: E402
from envs.wrappers import make_vec  # noqa: E402
from scripts.bench_peers import FiveTupleStep  # noqa: E402
from scripts.bench_peers import Program as _Program  # noqa: E402
from scripts.bench_peers import chunk_updates as _chunk_updates  # noqa: E402
from scripts.bench_peers import rlkit_program as _rlkit_program_of  # noqa: E402
from scripts.bench_peers import seeded as _seeded  # noqa: E402
from scripts.bench_peers import time_program as _time_program  # noqa: E402

# One CPU device per core, as scripts/train.py sets up: rlkit's vmapped seeds are split over them.
os.environ["XLA_FLAGS"] = cpu_devices_flag()

import argparse
from collections.abc import Callable
from typing import Any

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


def _rlkit_program(
    total_timesteps: int, num_seeds: int, num_chunks: int, spread: bool = True
) -> _Program:
    config = PPO.Config(**{**PUREJAXRL_SETTINGS, "total_timesteps": total_timesteps})
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = PPO(_space(venv.observation_space), _space(venv.action_space))
    return _rlkit_program_of(agent, venv, env_params, config, num_seeds, num_chunks, spread)


def _space(space_or_method):
    return space_or_method() if callable(space_or_method) else space_or_method


def _rejax_program(total_timesteps: int, num_seeds: int, num_chunks: int) -> _Program:
    import gymnax
    import rejax


    ppo = PUREJAXRL_SETTINGS
    steps_per_update = ppo["num_envs"] * ppo["rollout_length"]
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
        num_envs=ppo["num_envs"],
        num_steps=ppo["rollout_length"],
        **{k: ppo[k] for k in ("num_epochs", "num_minibatches", "learning_rate", "max_grad_norm",
                               "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef")},
        agent_kwargs={"activation": ppo["activation"], "hidden_layer_sizes": ppo["hidden"]},
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    init, step = _seeded(
        algo.init_state, lambda ts: (algo.train(train_state=ts)[0], None), num_seeds
    )

    def compile_both(key):
        init_c = jax.jit(init).lower(key).compile()
        return init_c, jax.jit(step).lower(init_c(key)).compile()

    return _Program(init, step, max(1, total_timesteps // chunk_steps), chunk_steps,
                    compile_both)


def _final_return(metrics: dict) -> float:
    """Mean return of the episodes completed in the last chunk, over seeds."""
    ret, cnt = metrics["episode_return_sum"], metrics["episode_count"]
    return float(jnp.mean(jnp.sum(ret, -1) / jnp.maximum(jnp.sum(cnt, -1), 1.0)))


def _measure_row(
    name: str, total_timesteps: int, num_seeds: int, num_chunks: int, repeats: int = 1
) -> dict[str, float]:
    """One row of the table, measured in this process. ``name`` is ``{lib}_{seeds}[_onedevice]``."""
    lib, seeds = name.split("_")[0], int(name.split("_")[1])
    if lib == "rlkit":
        program = _rlkit_program(total_timesteps, seeds, num_chunks,
                                 spread=not name.endswith("onedevice"))
    else:
        program = _rejax_program(total_timesteps, seeds, num_chunks)
    compile_s, run_s, run_cpu_s, steps, metrics = _time_program(program, seeds, repeats)
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "env_steps": float(steps),
        "steps_per_s": seeds * steps / run_s,
        "num_chunks": float(program.num_chunks),
        "final_return": _final_return(metrics) if lib == "rlkit" else float("nan"),
    }


def _row_in_subprocess(
    name: str, total_timesteps: int, num_seeds: int, num_chunks: int, repeats: int = 1
) -> dict[str, float]:
    """``_measure_row`` in a fresh Python process, so that no row compiles with the caches and
    start-up work of the rows before it (the first program JAX compiles in a process takes a few
    tenths of a second longer than the same program compiled later)."""
    import json
    import subprocess

    cmd = [sys.executable, os.path.abspath(__file__), "--row", name, "--seeds", str(num_seeds),
           "--timesteps", str(total_timesteps), "--chunks", str(num_chunks),
           "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def benchmark_ppo(
    total_timesteps: int = 500_000,
    num_seeds: int = 8,
    include_rejax: bool = True,
    num_chunks: int = 16,
    isolate: bool = True,
    repeats: int = 3,
) -> dict[str, dict[str, float]]:
    """Compile time, run time and env steps/s of rlkit PPO (and rejax PPO) on CartPole-v1.

    Each run is cut into ``num_chunks`` jitted chunks of equal length, as ``scripts/train.py``
    runs it (one very long compiled program can stall the 2-core CPU backend; see docs/design.md).
    Compile time covers the init and chunk programs; run time the chunks, back to back.

    Args:
      total_timesteps: env steps per seed.
      num_seeds: seeds of the vmapped program.
      include_rejax: also time rejax's PPO if it can be imported.
      num_chunks: jitted chunks per run (1: the whole run as one program).
      isolate: measure each row in its own Python process (the default), so every library
        compiles from the same cold start; False measures all rows in this process, in order.
      repeats: times each run is repeated from its initial state; the fastest is reported.

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
    names = [f"{lib}_{seeds}" for lib, _ in libraries for seeds in (1, num_seeds)]
    if len(jax.local_devices()) > 1:
        # rlkit's seeds on a single device too (plain jax.vmap), for the record.
        names.insert(2, f"rlkit_{num_seeds}_onedevice")
    for name in names:
        if isolate:
            row = _row_in_subprocess(name, total_timesteps, num_seeds, num_chunks, repeats)
        else:
            row = _measure_row(name, total_timesteps, num_seeds, num_chunks, repeats)
        results[name] = row
        print(
            f"{name:18s} compile {row['compile_s']:6.2f} s  run {row['run_s']:6.2f} s "
            f"(cpu {row['run_cpu_s']:6.2f} s)  "
            f"{row['steps_per_s']:>10,.0f} steps/s  ({int(row['env_steps']):,} steps per seed, "
            f"{int(row['num_chunks'])} chunks)  final return {row['final_return']:.1f}",
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
    parser.add_argument("--same-process", action="store_true",
                        help="measure every row in this process instead of one process per row")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times each run is repeated; the fastest is reported")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row, printed as JSON
    args = parser.parse_args()
    if args.row:
        import json

        row = _measure_row(args.row, args.timesteps, args.seeds, args.chunks, args.repeats)
        print(json.dumps(row))
        return
    benchmark_ppo(args.timesteps, args.seeds, not args.skip_rejax, args.chunks,
                  isolate=not args.same_process, repeats=args.repeats)


if __name__ == "__main__":
    main()
