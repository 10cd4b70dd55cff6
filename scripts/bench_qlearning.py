"""Benchmark rlkit's Q-learning agents against rejax's on CartPole-v1 with the same settings.

Rows (``--agents``, default ``pqn dqn iqn``): rlkit's PQN, DQN (and IQN, when an agent named
``iqn`` is registered; a missing agent or peer is skipped with a message) against rejax's PQN, DQN
and IQN with rejax's CartPole configs (``configs/gymnax/cartpole.yaml`` in the rejax repository),
translated into rlkit's config fields. Each is measured for one seed and ``--seeds`` seeds vmapped
(rlkit's split over one CPU device per core, as ``scripts/train.py`` runs them): compile time (init
and chunk programs), run time (the fastest of ``--repeats``), and the mean return of the episodes
of the last chunk (rlkit). Each row runs in its own Python process, as in ``scripts/bench_ppo.py``.

Where the settings differ: rejax clips gradients element-wise (``optax.clip``), rlkit by global
norm; rejax treats a truncation as a termination (it cannot tell them apart), rlkit bootstraps.
Neither anneals the learning rate. rejax's periodic evaluation is replaced by a no-op.

    python scripts/benchmark.py qlearning [--agents pqn dqn iqn] [--seeds 8] [--repeats 2]
        [--fraction 0.25]   # a quicker run: every config for a quarter of its env steps
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A long compiled program can stall on a 2-core CPU backend (see docs/design.md).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
import agents  # noqa: E402  (jax not initialised yet)
from agents.runtime.devices import cpu_devices_flag  # noqa: E402
from envs.wrappers import make_vec  # noqa: E402
from scripts.bench_peers import FiveTupleStep, Program, chunk_updates, rlkit_program, seeded  # noqa: E402,E501
from scripts.bench_peers import time_program  # noqa: E402

os.environ["XLA_FLAGS"] = cpu_devices_flag()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

__all__ = ["REJAX_CARTPOLE", "RLKIT_SETTINGS", "benchmark_qlearning"]

#: rejax's CartPole-v1 configs (``configs/gymnax/cartpole.yaml``), evaluation fields dropped.
REJAX_CARTPOLE: dict[str, dict[str, Any]] = {
    "pqn": {
        "num_envs": 16, "num_steps": 128, "num_minibatches": 16, "max_grad_norm": 10,
        "learning_rate": 3e-4, "num_epochs": 5, "total_timesteps": 524_288, "eps_start": 1,
        "eps_end": 0.05, "exploration_fraction": 0.5, "gamma": 0.99, "td_lambda": 0.9,
        "normalize_observations": False,
    },
    "dqn": {
        "agent": "DuelingQNetwork", "agent_kwargs": {"activation": "swish"}, "num_envs": 10,
        "buffer_size": 50_000, "fill_buffer": 5_000, "batch_size": 100, "max_grad_norm": 10,
        "learning_rate": 1e-3, "num_epochs": 5, "total_timesteps": 100_000, "polyak": 0.98,
        "eps_start": 1, "eps_end": 0.05, "exploration_fraction": 0.5, "gamma": 0.99,
        "ddqn": True, "normalize_observations": False,
    },
    "iqn": {
        "agent_kwargs": {"activation": "swish"}, "num_envs": 1, "buffer_size": 100_000,
        "fill_buffer": 1000, "batch_size": 1, "num_tau_samples": 64, "num_tau_prime_samples": 64,
        "learning_rate": 3e-4, "num_epochs": 1, "total_timesteps": 100_000,
        "target_update_freq": 1, "polyak": 0.99, "kappa": 1.0, "eps_start": 1, "eps_end": 0.01,
        "exploration_fraction": 0.5, "gamma": 0.99, "normalize_observations": False,
    },
}  # fmt: skip

#: The same settings in rlkit's config fields (rejax's polyak p is rlkit's tau = 1 - p, applied
#: once per rejax iteration, i.e. every ``gradient_steps`` learner steps). Fields an agent's
#: config does not have are dropped (so the IQN row works with whatever fields it has).
RLKIT_SETTINGS: dict[str, dict[str, Any]] = {
    "pqn": {
        "total_timesteps": 524_288, "num_envs": 16, "rollout_length": 128, "num_minibatches": 16,
        "num_epochs": 5, "learning_rate": 3e-4, "anneal_lr": False, "optimizer": "adam",
        "max_grad_norm": 10.0, "gamma": 0.99, "q_lambda": 0.9, "exploration_fraction": 0.5,
        "exploration_final_eps": 0.05, "hidden": (64, 64), "activation": "relu",
        "layer_norm": True,
    },
    "dqn": {
        "total_timesteps": 100_000, "num_envs": 10, "rollout_length": 1, "gradient_steps": 5,
        "batch_size": 100, "buffer_size": 50_000, "learning_starts": 5_000, "learning_rate": 1e-3,
        "anneal_lr": False, "max_grad_norm": 10.0, "gamma": 0.99, "n_step": 1, "double_q": True,
        "dueling": True, "loss": "l2", "tau": 0.02, "target_update_interval": 5,
        "exploration_fraction": 0.5, "exploration_final_eps": 0.05, "hidden": (64, 64),
        "activation": "silu",
    },
    "iqn": {
        "total_timesteps": 100_000, "num_envs": 1, "rollout_length": 1, "gradient_steps": 1,
        "batch_size": 1, "buffer_size": 100_000, "learning_starts": 1000, "learning_rate": 3e-4,
        "anneal_lr": False, "gamma": 0.99, "n_step": 1, "tau": 0.01,
        "target_update_interval": 1, "huber_kappa": 1.0, "num_tau_samples": 64,
        "num_tau_prime_samples": 64, "exploration_fraction": 0.5, "exploration_final_eps": 0.01,
        "hidden": (64, 64), "activation": "silu",
    },
}  # fmt: skip

#: Steps per rejax ``train_iteration`` (env steps of all envs), to cut its runs into chunks.
_REJAX_ITERATION_STEPS = {"pqn": 16 * 128, "dqn": 10, "iqn": 1}


def _scaled(total: int, fraction: float, multiple: int) -> int:
    """``fraction`` of ``total`` env steps, a whole number of ``multiple`` (at least one)."""
    return max(multiple, int(total * fraction) // multiple * multiple)


def _rlkit_program(
    agent_name: str, num_seeds: int, num_chunks: int, fraction: float = 1.0
) -> Program:
    cls = agents.get_agent(agent_name)
    names = {f.name for f in dataclasses.fields(cls.Config)}
    settings = {k: v for k, v in RLKIT_SETTINGS[agent_name].items() if k in names}
    settings["total_timesteps"] = _scaled(
        settings["total_timesteps"], fraction, _REJAX_ITERATION_STEPS[agent_name]
    )
    config = cls.Config(**settings)
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = cls(venv.observation_space(env_params), venv.action_space(env_params))
    agent.check_config(config)
    return rlkit_program(agent, venv, env_params, config, num_seeds, num_chunks)


def _rejax_program(
    agent_name: str, num_seeds: int, num_chunks: int, fraction: float = 1.0
) -> Program:
    import gymnax
    import rejax

    settings = dict(REJAX_CARTPOLE[agent_name])
    it = _REJAX_ITERATION_STEPS[agent_name]
    total = _scaled(settings.pop("total_timesteps"), fraction, it)
    per = chunk_updates(max(1, total // it), num_chunks)
    chunk_steps = per * it
    env, env_params = gymnax.make("CartPole-v1")
    algo_cls = {"pqn": rejax.PQN, "dqn": rejax.DQN, "iqn": rejax.IQN}[agent_name]
    # One ``train`` call runs ``total_timesteps / eval_freq`` blocks; with both set to a chunk it
    # is one chunk, and ``train(train_state=...)`` continues the run.
    algo = algo_cls.create(
        env=FiveTupleStep(env), env_params=env_params, total_timesteps=chunk_steps,
        eval_freq=chunk_steps, skip_initial_evaluation=True, **settings,
    )  # fmt: skip
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    # The schedules follow the whole run's length, not a chunk's.
    step_fn = _rejax_chunk(algo.replace(total_timesteps=total), chunk_steps)
    init, step = seeded(algo.init_state, step_fn, num_seeds)

    def compile_both(key):
        init_c = jax.jit(init).lower(key).compile()
        return init_c, jax.jit(step).lower(init_c(key)).compile()

    return Program(init, step, max(1, total // chunk_steps), chunk_steps, compile_both)


def _rejax_chunk(algo, chunk_steps: int):
    """One chunk of ``chunk_steps`` env steps of a rejax run whose schedules span the whole run:
    ``train_iteration`` scanned over the chunk's iterations."""
    iterations = max(1, chunk_steps // (algo.num_envs * getattr(algo, "num_steps", 1)))

    def step(ts):
        ts, _ = jax.lax.scan(lambda t, _: (algo.train_iteration(t), None), ts, None, iterations)
        return ts, None

    return step


def _final_return(metrics: dict) -> float:
    """Mean return of the episodes completed in the last chunk, over seeds."""
    ret, cnt = metrics["episode_return_sum"], metrics["episode_count"]
    return float(jnp.mean(jnp.sum(ret, -1) / jnp.maximum(jnp.sum(cnt, -1), 1.0)))


def _measure_row(
    name: str, num_chunks: int, repeats: int, fraction: float = 1.0
) -> dict[str, float]:
    """One row, in this process. ``name`` is ``{lib}_{agent}_{seeds}``."""
    lib, agent_name, seeds = name.split("_")
    seeds = int(seeds)
    build = _rlkit_program if lib == "rlkit" else _rejax_program
    program = build(agent_name, seeds, num_chunks, fraction)
    compile_s, run_s, run_cpu_s, steps, metrics = time_program(program, seeds, repeats)
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "env_steps": float(steps),
        "steps_per_s": seeds * steps / run_s,
        "final_return": _final_return(metrics) if lib == "rlkit" else float("nan"),
    }


def _available(agent_name: str) -> tuple[bool, bool]:
    """(rlkit has it, rejax has it), with a message for what is missing."""
    ours = agent_name in agents.registered_agents()
    if not ours:
        print(f"rlkit has no agent {agent_name!r} on this branch; skipping its row")
    try:
        import rejax

        theirs = hasattr(rejax, agent_name.upper())
    except ImportError as e:
        print(f"rejax not importable ({e}); skipping its rows (pip install rejax)")
        theirs = False
    return ours, theirs


def benchmark_qlearning(
    agent_names: tuple[str, ...] = ("pqn", "dqn", "iqn"),
    num_seeds: int = 8,
    num_chunks: int = 8,
    repeats: int = 2,
    fraction: float = 1.0,
) -> dict[str, dict[str, float]]:
    """Compile and run time of rlkit's and rejax's Q-learning agents, 1 and ``num_seeds`` seeds.

    Returns:
      ``{"{lib}_{agent}_{seeds}": {"compile_s", "run_s", "run_cpu_s", "env_steps",
      "steps_per_s", "final_return"}}``; each row is measured in its own process.
    """
    results: dict[str, dict[str, float]] = {}
    for agent_name in agent_names:
        ours, theirs = _available(agent_name)
        libs = (["rlkit"] if ours else []) + (["rejax"] if theirs else [])
        for lib in libs:
            for seeds in (1, num_seeds):
                name = f"{lib}_{agent_name}_{seeds}"
                cmd = [sys.executable, os.path.abspath(__file__), "--row", name,
                       "--chunks", str(num_chunks), "--repeats", str(repeats),
                       "--fraction", str(fraction)]  # fmt: skip
                try:
                    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
                except subprocess.CalledProcessError as e:
                    print(f"{name} failed (exit {e.returncode}); see its output above")
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                results[name] = row
                print(
                    f"{name:16s} compile {row['compile_s']:6.2f} s  run {row['run_s']:6.2f} s "
                    f"(cpu {row['run_cpu_s']:6.2f} s)  {row['steps_per_s']:>10,.0f} steps/s  "
                    f"({int(row['env_steps']):,} steps per seed)  "
                    f"final return {row['final_return']:.1f}",
                    flush=True,
                )
        for seeds in (1, num_seeds):
            a, b = results.get(f"rlkit_{agent_name}_{seeds}"), results.get(
                f"rejax_{agent_name}_{seeds}"
            )
            if a and b:
                print(
                    f"{agent_name} rlkit / rejax, {seeds} seed(s): compile "
                    f"{a['compile_s'] / b['compile_s']:.2f}x, run {a['run_s'] / b['run_s']:.2f}x"
                )
        for lib in ("rlkit", "rejax"):
            a, b = results.get(f"{lib}_{agent_name}_{num_seeds}"), results.get(
                f"{lib}_{agent_name}_1"
            )
            if a and b:
                print(f"{agent_name} {lib} {num_seeds} seeds / 1 seed: run "
                      f"{a['run_s'] / b['run_s']:.2f}x")  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", default=["pqn", "dqn", "iqn"],
                        help="agents to compare (missing ones are skipped)")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=8, help="seeds of the vmapped program")
    parser.add_argument("--chunks", type=int, default=8, help="jitted chunks per run")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; fastest kept")
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="train each config for this fraction of its total_timesteps "
                        "(schedules shortened with it), for a quicker run")  # fmt: skip
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row, printed as JSON
    args = parser.parse_args()
    if args.row:
        print(json.dumps(_measure_row(args.row, args.chunks, args.repeats, args.fraction)))
        return
    if not 0.0 < args.fraction <= 1.0:
        parser.error(f"--fraction: expected a value in (0, 1], got {args.fraction}")
    benchmark_qlearning(tuple(args.agents), args.seeds, args.chunks, args.repeats, args.fraction)


if __name__ == "__main__":
    main()
