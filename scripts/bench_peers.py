"""Adapters the benchmarks need to run peer libraries on current versions of their dependencies,
and rlkit's side of them (``rlkit_program``). The Stable-Baselines3 side, which must not load JAX,
is ``scripts.bench_sb3``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from agents.runtime.compile import compile_init_and_chunk
from agents.runtime.devices import runs_sharding, vmap_runs
from agents.runtime.loop import init_runner, make_train_chunk

__all__ = [
    "FiveTupleStep",
    "Program",
    "chunk_updates",
    "rlkit_program",
    "run_program",
    "seeded",
    "time_program",
]

class FiveTupleStep:
    """A gymnax env whose ``step`` returns the pre-1.0 5-tuple, for rejax.

    gymnax >= 1.0 steps return ``(obs, state, reward, terminated, truncated, info)``; rejax 0.1.3
    unpacks ``(obs, state, reward, done, info)``. This wrapper gives rejax that form, with
    ``done = terminated | truncated`` as rejax expects (it does not tell the two apart).
    """

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._env, name)

    def step(self, key, state, action, params=None):
        out = self._env.step(key, state, action, params)
        if len(out) == 5:
            return out
        obs, state, reward, terminated, truncated, info = out
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


class Program(NamedTuple):
    """A training run cut into equal jitted chunks, as ``agents.training`` runs it."""

    init: Callable  # key (or keys [S]) -> training state
    chunk: Callable  # state -> (state, metrics or None): ``updates_per_chunk`` updates
    num_chunks: int
    steps_per_chunk: int  # env steps per seed
    # key(s) -> (compiled init, compiled chunk), as the library compiles them: rlkit as its
    # trainer does (``agents.runtime.compile.compile_init_and_chunk``: the init without LLVM
    # optimisation, since it runs once, compiled in a second thread while the chunk compiles),
    # a peer with ``jax.jit``, one after the other.
    compile: Callable


def chunk_updates(num_updates: int, num_chunks: int) -> int:
    """Updates per chunk: a divisor of ``num_updates`` near ``num_updates / num_chunks``."""
    target = max(1, num_updates // num_chunks)
    for d in range(target, 0, -1):
        if num_updates % d == 0 and d >= target // 2:
            return d
    return target


def seeded(
    init: Callable, chunk: Callable, num_seeds: int, spread: bool = False
) -> tuple[Callable, Callable]:
    """Per-seed ``init``/``chunk`` mapped over ``num_seeds``: ``jax.vmap`` on one device, or with
    ``spread`` ``agents.runtime.devices.vmap_runs`` (the seeds split over the local devices, as
    ``scripts/train.py --num-seeds`` runs them)."""
    if num_seeds == 1:
        return init, chunk
    if spread:
        return vmap_runs(init, num_seeds), vmap_runs(chunk, num_seeds)
    return jax.vmap(init), jax.vmap(chunk)


def rlkit_program(
    agent: Any, venv: Any, env_params: Any, config: Any, num_seeds: int, num_chunks: int,
    spread: bool = True,
) -> Program:
    """An rlkit agent's training run as a ``Program``: ``num_seeds`` seeds (``seeded``), the run
    cut into chunks of ``chunk_updates`` updates, compiled as the trainer compiles it."""
    per = chunk_updates(config.num_updates, num_chunks)
    chunk = make_train_chunk(agent, venv, env_params, per)
    init, step = seeded(
        lambda key: init_runner(agent, venv, env_params, config, key),
        lambda rs: chunk(config, rs),
        num_seeds,
        spread,
    )
    # Where the outputs of the spread seeds go (None: one device).
    sharding = runs_sharding(num_seeds) if (spread and num_seeds > 1) else None

    def compile_both(key):
        return compile_init_and_chunk(init, (key,), step, lambda state: (state,), sharding)

    return Program(
        init, step, config.num_updates // per, per * config.steps_per_update, compile_both
    )


def time_program(
    program: Program, num_seeds: int, repeats: int = 1
) -> tuple[float, float, float, int, Any]:
    """``(compile_s, run_s, run_cpu_s, env_steps_per_seed, last_metrics)`` of a chunked run.

    The compile (tracing and XLA compilation of init and chunk, then init) and the run are each
    timed ``repeats`` times, the compile after clearing JAX's in-memory caches, the run from the
    same initial state, and the fastest of each is kept (as ``timeit`` does: the slower repeats
    measure other load on the machine, not the program).
    """
    return run_program(program, num_seeds, repeats)[:5]


def run_program(
    program: Program, num_seeds: int, repeats: int = 1
) -> tuple[float, float, float, int, Any, Any]:
    """``time_program``'s figures and, last, the final training state of the last repeat."""
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    key = keys[0] if num_seeds == 1 else keys
    compile_s = float("inf")
    for i in range(repeats):
        if i:
            jax.clear_caches()
        start = time.perf_counter()
        init, chunk = program.compile(key)
        state0 = jax.block_until_ready(init(key))
        compile_s = min(compile_s, time.perf_counter() - start)
    best = (float("inf"), float("inf"))
    metrics = None
    state = state0
    for _ in range(repeats):
        state = state0
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(program.num_chunks):
            state, metrics = chunk(state)
        jax.block_until_ready(state)
        best = min(best, (time.perf_counter() - start, time.process_time() - start_cpu))
    steps = program.num_chunks * program.steps_per_chunk
    return compile_s, best[0], best[1], steps, metrics, state
