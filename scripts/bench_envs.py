"""Environment throughput: rlkit CartPole-v1 against gymnax and Gymnasium's numpy vector env,
and (``--suite minatar``) rlkit's five MinAtar games against gymnax's MinAtar ports.

Every backend steps CartPole-v1 with uniformly random actions and autoreset, at several numbers
of parallel envs N:

- rlkit: ``envs.wrappers.make_vec`` (autoreset with final_obs + episode statistics, both used),
  stepped in a jitted ``lax.scan``;
- gymnax (if installed): ``gymnax.make("CartPole-v1")`` with its built-in autoreset, ``vmap``-ed,
  in the same kind of scan with the same keys and actions;
- Gymnasium: ``gymnasium.make_vec("CartPole-v1", N, vectorization_mode="vector_entry_point")``
  (the numpy ``CartPoleVectorEnv``), stepped from a pre-generated action array.

Both JAX backends use the default (threefry) keys. The per-step keys and the random actions
(one random bit per env) are drawn in one go before the scan, as the Gymnasium run's actions
are, so the scanned step is the env's alone. Also measured: rlkit without the autoreset
(``VecEnv(EpisodeStatistics(env))``), which gives the share of the step spent on resets
(``reset_share``).

Compile time is timed apart from the run; the run time is the best of ``repeats`` runs, because
the machine may be shared. Compare within one run and read the ratios.

Through Gymnasium's API (``--gymnasium-api``, on by default), the bridge against Gymnasium's own
numpy CartPole, each stepped from a Python loop with pre-drawn random actions, round-robin:

- single env: ``gymnasium.make("rlkit/CartPole-v1")`` against ``gymnasium.make("CartPole-v1")``
  (microseconds per step, resetting when an episode ends);
- vector env: ``gymnasium.make_vec("rlkit/CartPole-v1", N, vectorization_mode=
  "vector_entry_point")`` against ``gymnasium.make_vec("CartPole-v1", N, ...)`` (steps per
  second, NEXT_STEP autoreset on both; also the bridge in SAME_STEP mode).

    PYTHONPATH=. python scripts/bench_envs.py --ns 1 64 1024 16384
    PYTHONPATH=. python scripts/bench_envs.py --api-only --api-ns 4096
    PYTHONPATH=. python scripts/bench_envs.py --api-only --api-ns 4096 --cpu-dispatch inline

``--cpu-dispatch inline`` runs JAX's CPU computations on the calling thread
(``envs.gymnasium_bridge.use_inline_cpu_dispatch``), which a script stepping the bridge from
Python should use; the default is JAX's asynchronous dispatch.

MinAtar (``--suite minatar``): ``make_vec("MinAtar/<Game>-v1", N)`` (sticky actions, autoreset,
episode statistics) against gymnax's ``<Game>-MinAtar`` (no sticky actions; its built-in
autoreset and 1000-step limit; Seaquest, which gymnax 1.0.1 does not register, from its
``MinSeaquest`` class), uniformly random actions over each game's minimal action set, drawn up
front like the keys. Both run in the same kind of jitted scan, in the same process.

    PYTHONPATH=. python scripts/benchmark.py envs --suite minatar --ns 1 64 1024 16384
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)
from envs import make
from envs.wrappers import EpisodeStatistics, VecEnv, make_vec
from rlkit.errors import RLKitError

__all__ = [
    "MINATAR_GAMES",
    "benchmark_envs",
    "benchmark_gymnasium_api",
    "benchmark_minatar",
    "default_steps",
]

#: The MinAtar games ``--suite minatar`` runs: rlkit id and gymnax id.
MINATAR_GAMES = {
    "Asterix": ("MinAtar/Asterix-v1", "Asterix-MinAtar"),
    "Breakout": ("MinAtar/Breakout-v1", "Breakout-MinAtar"),
    "Freeway": ("MinAtar/Freeway-v1", "Freeway-MinAtar"),
    "Seaquest": ("MinAtar/Seaquest-v1", "Seaquest-MinAtar"),
    "SpaceInvaders": ("MinAtar/SpaceInvaders-v1", "SpaceInvaders-MinAtar"),
}


def default_steps(num_envs: int) -> int:
    """Scan length for ``num_envs``: about 4M env steps in total, between 256 and 20000 steps."""
    return int(max(256, min(20_000, 2**22 // num_envs)))


_CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def _compile(run: Callable, key: jax.Array, clock: Callable) -> tuple[Callable, float]:
    """Compiles ``run(key)``; returns (a timed-run callable, compile seconds)."""
    start = time.perf_counter()
    compiled = jax.jit(run).lower(key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key))  # warm-up run (allocations, thread pools)

    def timed(i: int) -> float:
        sub = jax.random.fold_in(key, i + 1)
        start = clock()
        jax.block_until_ready(compiled(sub))
        return clock() - start

    return timed, compile_s


def _scan_inputs(key: jax.Array, num_envs: int, steps: int) -> tuple[jax.Array, jax.Array]:
    """Per-step keys [steps] and random action words [steps, ceil(N / 32)], drawn up front.

    Drawing them before the scan (as the Gymnasium run pre-draws its actions) keeps the harness's
    own hashing out of the measured step, for both JAX backends alike.
    """
    key_steps, key_actions = jax.random.split(key)
    words = jax.random.bits(key_actions, (steps, (num_envs + 31) // 32), jnp.uint32)
    return jax.random.split(key_steps, steps), words


def _actions(words: jax.Array, num_envs: int) -> jax.Array:
    """Uniform {0, 1} actions [N]: the bits of the random words."""
    bits = (words[:, None] >> jnp.arange(32, dtype=jnp.uint32)[None, :]) & 1
    return bits.reshape(-1)[:num_envs].astype(jnp.int32)


def _rlkit_run(num_envs: int, steps: int, autoreset: bool = True) -> Callable:
    if autoreset:
        venv, params = make_vec("CartPole-v1", num_envs)
    else:  # the same stack without the autoreset: what the reset costs
        env, params = make("CartPole-v1")
        venv = VecEnv(EpisodeStatistics(env), num_envs)

    def run(key):
        key, key_reset = jax.random.split(key)
        obs, state = venv.reset(key_reset, params)

        def body(carry, inputs):
            state, obs, reward_sum, returns_sum = carry
            key_step, words = inputs
            actions = _actions(words, num_envs)
            obs, state, reward, _, _, info = venv.step(key_step, state, actions, params)
            done_return = jnp.where(info["returned_episode"], info["episode_return"], 0.0)
            return (state, obs, reward_sum + reward, returns_sum + done_return), None

        zeros = jnp.zeros((num_envs,), jnp.float32)
        inputs = _scan_inputs(key, num_envs, steps)
        carry, _ = jax.lax.scan(body, (state, obs, zeros, zeros), inputs)
        return carry[1:]

    return run


def _gymnax_run(num_envs: int, steps: int) -> Callable:
    import gymnax

    env, params = gymnax.make("CartPole-v1")
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key):
        key, key_reset = jax.random.split(key)
        obs, state = v_reset(jax.random.split(key_reset, num_envs), params)

        def body(carry, inputs):
            state, obs, reward_sum = carry
            key_step, words = inputs
            actions = _actions(words, num_envs)
            keys = jax.random.split(key_step, num_envs)
            obs, state, reward, _, _, _ = v_step(keys, state, actions, params)
            return (state, obs, reward_sum + reward), None

        carry = (state, obs, jnp.zeros((num_envs,), jnp.float32))
        carry, _ = jax.lax.scan(body, carry, _scan_inputs(key, num_envs, steps))
        return carry[1:]

    return run


def _gymnasium_timer(
    num_envs: int, steps: int, seed: int, clock: Callable
) -> tuple[Callable, Callable]:
    """A timed run of Gymnasium's numpy CartPole vector env, and its ``close``."""
    import gymnasium

    venv = gymnasium.make_vec("CartPole-v1", num_envs, vectorization_mode="vector_entry_point")
    actions = np.random.default_rng(seed).integers(0, 2, size=(steps, num_envs))

    def timed(i: int) -> float:
        venv.reset(seed=seed + i + 1)
        start = clock()
        for t in range(steps):
            venv.step(actions[t])
        return clock() - start

    timed(-1)  # warm-up
    return timed, venv.close


def benchmark_envs(
    ns: tuple[int, ...] = (1, 64, 1024, 16384),
    steps: int | None = None,
    repeats: int = 3,
    seed: int = 0,
    gymnax: bool = True,
    gymnasium: bool = True,
    clock: str = "wall",
) -> list[dict[str, Any]]:
    """Measures env steps per second of rlkit, gymnax and Gymnasium CartPole-v1 at each N.

    Args:
      ns: numbers of parallel envs.
      steps: batched steps per timed run; None picks ``default_steps(N)``.
      repeats: timed runs per measurement (the best one is kept).
      seed: seed of the keys and of the pre-generated Gymnasium actions.
      gymnax: include gymnax (skipped with a note when it is not installed).
      gymnasium: include Gymnasium's vector env.
      clock: ``"wall"`` (elapsed time) or ``"process"`` (CPU time of this process, all threads;
        steadier on a machine shared with other jobs, but it does not credit multi-threading).

    Returns:
      One dict per N with ``num_envs``, ``steps``, ``{backend}_steps_per_s``,
      ``{backend}_compile_s`` (JAX backends), ``rlkit_over_gymnax`` and ``rlkit_over_gymnasium``
      (None where a backend was skipped), ``rlkit_no_reset_steps_per_s``, ``reset_share`` (the
      fraction of rlkit's step time spent on resets) and ``note``.
    """
    if clock not in _CLOCKS:
        raise RLKitError(f"benchmark_envs: clock must be one of {sorted(_CLOCKS)}, got {clock!r}")
    timer = _CLOCKS[clock]
    if gymnax:
        try:
            import gymnax as _
        except ImportError:
            gymnax = False
            gymnax_note = "gymnax not installed: skipped"
        else:
            gymnax_note = ""
    else:
        gymnax_note = "gymnax not requested"
    rows = []
    for n in ns:
        t = default_steps(n) if steps is None else int(steps)
        key = jax.random.PRNGKey(seed)
        row: dict[str, Any] = {"num_envs": n, "steps": t, "note": gymnax_note}
        timers: dict[str, Callable] = {}
        timers["rlkit"], row["rlkit_compile_s"] = _compile(_rlkit_run(n, t), key, timer)
        timers["rlkit_no_reset"], _ = _compile(_rlkit_run(n, t, autoreset=False), key, timer)
        row["gymnax_compile_s"] = None
        if gymnax:
            timers["gymnax"], row["gymnax_compile_s"] = _compile(_gymnax_run(n, t), key, timer)
        close = None
        if gymnasium:
            timers["gymnasium"], close = _gymnasium_timer(n, t, seed, timer)
        # Round-robin repeats, so a burst of load elsewhere hits every backend alike.
        best = {name: float("inf") for name in timers}
        for i in range(repeats):
            for name, timed in timers.items():
                best[name] = min(best[name], timed(i))
        if close is not None:
            close()
        for name in ("rlkit", "rlkit_no_reset", "gymnax", "gymnasium"):
            row[f"{name}_steps_per_s"] = n * t / best[name] if name in best else None
        row["reset_share"] = max(0.0, 1.0 - best["rlkit_no_reset"] / best["rlkit"])
        for other in ("gymnax", "gymnasium"):
            theirs = row[f"{other}_steps_per_s"]
            row[f"rlkit_over_{other}"] = (
                None if theirs is None else row["rlkit_steps_per_s"] / theirs
            )
        rows.append(row)
    return rows


def _loop_timer(env: Any, actions: np.ndarray, clock: Callable, vector: bool) -> Callable:
    """A timed Python loop of ``env.step`` over ``actions`` (the single env resets on done)."""

    def timed(i: int) -> float:
        env.reset(seed=1000 + i)
        start = clock()
        if vector:
            for a in actions:
                env.step(a)
        else:
            for a in actions:
                _, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    env.reset()
        return clock() - start

    timed(-1)  # warm-up: compiles every program the loop uses
    timed(-1)
    return timed


def benchmark_gymnasium_api(
    ns: tuple[int, ...] = (4096,),
    single_steps: int = 2000,
    vector_steps: int = 100,
    repeats: int = 15,
    seed: int = 0,
    clock: str = "wall",
) -> dict[str, Any]:
    """Steps through Gymnasium's API: the rlkit bridge against Gymnasium's numpy CartPole.

    Args:
      ns: numbers of sub-envs for the vector comparison.
      single_steps: single-env steps per timed run.
      vector_steps: vector steps per timed run.
      repeats: timed runs per measurement, round-robin (the best is kept).
      seed: seed of the pre-drawn actions.
      clock: ``"wall"`` or ``"process"``.

    Returns:
      ``{"single": {...}, "vector": [{...}, ...]}``: ``rlkit_us``/``gymnasium_us`` per single
      step and their ratio ``rlkit_over_gymnasium_time``; per N, ``rlkit_steps_per_s``
      (NEXT_STEP), ``rlkit_same_step_steps_per_s``, ``gymnasium_steps_per_s`` and
      ``rlkit_over_gymnasium`` (throughput ratio, NEXT_STEP).
    """
    import gymnasium

    timer = _CLOCKS[clock]
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 2, size=single_steps).tolist()  # Python ints, as agents pass
    timers = {
        "rlkit": _loop_timer(gymnasium.make("rlkit/CartPole-v1"), actions, timer, False),
        "gymnasium": _loop_timer(gymnasium.make("CartPole-v1"), actions, timer, False),
    }
    best = {name: float("inf") for name in timers}
    for i in range(repeats):
        for name, timed in timers.items():
            best[name] = min(best[name], timed(i))
    single = {f"{name}_us": best[name] / single_steps * 1e6 for name in best}
    single["rlkit_over_gymnasium_time"] = best["rlkit"] / best["gymnasium"]
    vector = []
    for n in ns:
        acts = rng.integers(0, 2, size=(vector_steps, n))
        mode = "vector_entry_point"
        made = {
            "rlkit": gymnasium.make_vec("rlkit/CartPole-v1", n, vectorization_mode=mode),
            "rlkit_same_step": gymnasium.make_vec(
                "rlkit/CartPole-v1", n, vectorization_mode=mode, autoreset_mode="same_step"
            ),
            "gymnasium": gymnasium.make_vec("CartPole-v1", n, vectorization_mode=mode),
        }
        timers = {name: _loop_timer(env, acts, timer, True) for name, env in made.items()}
        best = {name: float("inf") for name in timers}
        for i in range(repeats):
            for name, timed in timers.items():
                best[name] = min(best[name], timed(i))
        row: dict[str, Any] = {"num_envs": n, "steps": vector_steps}
        for name in timers:
            row[f"{name}_steps_per_s"] = n * vector_steps / best[name]
        row["rlkit_over_gymnasium"] = row["rlkit_steps_per_s"] / row["gymnasium_steps_per_s"]
        vector.append(row)
        for env in made.values():
            env.close()
    return {"single": single, "vector": vector}


def _minatar_inputs(key: jax.Array, num_envs: int, steps: int, n_actions: int):
    """Per-step keys [steps] and uniformly random actions [steps, N] in ``[0, n_actions)``."""
    key_steps, key_actions = jax.random.split(key)
    actions = jax.random.randint(key_actions, (steps, num_envs), 0, n_actions, jnp.int32)
    return jax.random.split(key_steps, steps), actions


def _minatar_rlkit_run(env_id: str, num_envs: int, steps: int) -> Callable:
    venv, params = make_vec(env_id, num_envs)
    n_actions = venv.action_space(params).n

    def run(key):
        key, key_reset = jax.random.split(key)
        obs, state = venv.reset(key_reset, params)

        def body(carry, inputs):
            state, obs, reward_sum, returns_sum = carry
            key_step, actions = inputs
            obs, state, reward, _, _, info = venv.step(key_step, state, actions, params)
            done_return = jnp.where(info["returned_episode"], info["episode_return"], 0.0)
            return (state, obs, reward_sum + reward, returns_sum + done_return), None

        zeros = jnp.zeros((num_envs,), jnp.float32)
        inputs = _minatar_inputs(key, num_envs, steps, n_actions)
        carry, _ = jax.lax.scan(body, (state, obs, zeros, zeros), inputs)
        return carry[1:]

    return run


def _gymnax_minatar(gymnax_id: str):
    import gymnax

    try:
        return gymnax.make(gymnax_id)
    except (ValueError, NotImplementedError):
        if gymnax_id != "Seaquest-MinAtar":
            raise
        from gymnax.environments.minatar.seaquest import MinSeaquest

        env = MinSeaquest()
        return env, env.default_params


def _minatar_gymnax_run(gymnax_id: str, num_envs: int, steps: int) -> Callable:
    env, params = _gymnax_minatar(gymnax_id)
    n_actions = env.action_space(params).n
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key):
        key, key_reset = jax.random.split(key)
        obs, state = v_reset(jax.random.split(key_reset, num_envs), params)

        def body(carry, inputs):
            state, obs, reward_sum = carry
            key_step, actions = inputs
            keys = jax.random.split(key_step, num_envs)
            obs, state, reward, _, _ = v_step(keys, state, actions, params)
            return (state, obs, reward_sum + reward), None

        carry = (state, obs, jnp.zeros((num_envs,), jnp.float32))
        carry, _ = jax.lax.scan(body, carry, _minatar_inputs(key, num_envs, steps, n_actions))
        return carry[1:]

    return run


def benchmark_minatar(
    ns: tuple[int, ...] = (1, 64, 1024, 16384),
    steps: int | None = None,
    repeats: int = 3,
    seed: int = 0,
    games: tuple[str, ...] = tuple(MINATAR_GAMES),
    gymnax: bool = True,
    clock: str = "wall",
) -> list[dict[str, Any]]:
    """Measures env steps per second of rlkit's and gymnax's MinAtar games at each N.

    Args:
      ns: numbers of parallel envs.
      steps: batched steps per timed run; None picks ``default_steps(N)``.
      repeats: timed runs per measurement (the best one is kept).
      seed: seed of the keys and actions.
      games: game names, keys of ``MINATAR_GAMES``.
      gymnax: include gymnax (skipped with a note when it is not installed).
      clock: ``"wall"`` or ``"process"`` (see ``benchmark_envs``).

    Returns:
      One dict per game and N with ``game``, ``num_envs``, ``steps``, ``rlkit_steps_per_s``,
      ``gymnax_steps_per_s`` (None when skipped), ``rlkit_over_gymnax``, ``rlkit_compile_s``,
      ``gymnax_compile_s`` and ``note``.
    """
    if clock not in _CLOCKS:
        raise RLKitError(
            f"benchmark_minatar: clock must be one of {sorted(_CLOCKS)}, got {clock!r}"
        )
    unknown = [g for g in games if g not in MINATAR_GAMES]
    if unknown:
        raise RLKitError(
            f"benchmark_minatar: games must be among {sorted(MINATAR_GAMES)}, got {unknown}"
        )
    timer = _CLOCKS[clock]
    note = ""
    if gymnax:
        try:
            import gymnax as _  # noqa: F401
        except ImportError:
            gymnax, note = False, "gymnax not installed: skipped"
    rows = []
    for game in games:
        rlkit_id, gymnax_id = MINATAR_GAMES[game]
        for n in ns:
            t = default_steps(n) if steps is None else int(steps)
            key = jax.random.PRNGKey(seed)
            row: dict[str, Any] = {"game": game, "num_envs": n, "steps": t, "note": note}
            timers = {}
            timers["rlkit"], row["rlkit_compile_s"] = _compile(
                _minatar_rlkit_run(rlkit_id, n, t), key, timer
            )
            row["gymnax_compile_s"] = None
            if gymnax:
                try:
                    timers["gymnax"], row["gymnax_compile_s"] = _compile(
                        _minatar_gymnax_run(gymnax_id, n, t), key, timer
                    )
                except (IndexError, TypeError, ValueError, NotImplementedError) as err:
                    # gymnax 1.0.1's MinSeaquest does not trace (a slice with a traced end)
                    row["note"] = f"gymnax {gymnax_id} failed: {type(err).__name__}: {err}"[:160]
            best = {name: float("inf") for name in timers}
            for i in range(repeats):
                for name, timed in timers.items():
                    best[name] = min(best[name], timed(i))
            for name in ("rlkit", "gymnax"):
                row[f"{name}_steps_per_s"] = n * t / best[name] if name in best else None
            theirs = row["gymnax_steps_per_s"]
            row["rlkit_over_gymnax"] = None if theirs is None else row["rlkit_steps_per_s"] / theirs
            rows.append(row)
            print(_minatar_line(row), flush=True)
    return rows


_MINATAR_HEADER = (
    f"{'game':>13} {'N':>6} {'steps':>6} {'rlkit/s':>10} {'gymnax/s':>10} {'rlkit/gymnax':>12} "
    f"{'compile rlkit':>13} {'compile gymnax':>14}"
)


def _minatar_line(r: dict[str, Any]) -> str:
    return (
        f"{r['game']:>13} {r['num_envs']:>6} {r['steps']:>6} "
        f"{_fmt(r['rlkit_steps_per_s'], '10.3e')} {_fmt(r['gymnax_steps_per_s'], '10.3e')} "
        f"{_fmt(r['rlkit_over_gymnax'], '12.2f')} "
        f"{_fmt(r['rlkit_compile_s'], '12.2f')}s {_fmt(r['gymnax_compile_s'], '13.2f')}s"
    )


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suite",
        choices=["cartpole", "minatar"],
        default="cartpole",
        help="CartPole-v1 against gymnax and Gymnasium, or the MinAtar games against gymnax",
    )
    parser.add_argument(
        "--games",
        nargs="+",
        default=list(MINATAR_GAMES),
        choices=list(MINATAR_GAMES),
        help="MinAtar games to run (--suite minatar)",
    )
    parser.add_argument(
        "--ns", type=int, nargs="+", default=[1, 64, 1024, 16384], help="numbers of parallel envs"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="batched steps per timed run (default: about 4M env steps, >= 256)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best is kept")
    parser.add_argument("--seed", type=int, default=0, help="seed of keys and actions")
    parser.add_argument("--no-gymnax", action="store_true", help="skip gymnax")
    parser.add_argument("--no-gymnasium", action="store_true", help="skip Gymnasium")
    parser.add_argument(
        "--clock",
        choices=sorted(_CLOCKS),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a busy machine)",
    )
    parser.add_argument(
        "--api-ns",
        type=int,
        nargs="+",
        default=[4096],
        help="numbers of sub-envs for the Gymnasium-API vector comparison",
    )
    parser.add_argument(
        "--no-gymnasium-api", action="store_true", help="skip the Gymnasium-API comparison"
    )
    parser.add_argument(
        "--api-only", action="store_true", help="run only the Gymnasium-API comparison"
    )
    parser.add_argument(
        "--cpu-dispatch",
        choices=("async", "inline"),
        default="async",
        help="JAX's CPU dispatch: async (JAX's default) or inline "
        "(envs.gymnasium_bridge.use_inline_cpu_dispatch)",
    )
    args = parser.parse_args(argv)
    if args.cpu_dispatch == "inline":
        envs.gymnasium_bridge.use_inline_cpu_dispatch()
    if args.suite == "minatar":
        print(
            f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
            f"jax {jax.__version__}, clock: {args.clock}"
        )
        print(_MINATAR_HEADER, flush=True)
        rows = benchmark_minatar(
            tuple(args.ns),
            args.steps,
            args.repeats,
            args.seed,
            tuple(args.games),
            gymnax=not args.no_gymnax,
            clock=args.clock,
        )
        for note in sorted({r["note"] for r in rows if r["note"]}):
            print("note:", note)
        return
    if not args.no_gymnasium_api:
        api = benchmark_gymnasium_api(
            tuple(args.api_ns), repeats=args.repeats * 3, seed=args.seed, clock=args.clock
        )
        single = api["single"]
        print(f"Gymnasium API, clock: {args.clock}, JAX CPU dispatch: {args.cpu_dispatch}")
        print(
            f"single env: rlkit/CartPole-v1 {single['rlkit_us']:.1f} us/step, CartPole-v1 "
            f"{single['gymnasium_us']:.1f} us/step, rlkit/gymnasium time "
            f"{single['rlkit_over_gymnasium_time']:.2f}x"
        )
        print(
            f"{'N':>6} {'rlkit/s':>10} {'same_step/s':>11} {'gymnasium/s':>11} {'rlkit/gymnasium':>15}"
        )
        for r in api["vector"]:
            print(
                f"{r['num_envs']:>6} {r['rlkit_steps_per_s']:10.3e} "
                f"{r['rlkit_same_step_steps_per_s']:11.3e} {r['gymnasium_steps_per_s']:11.3e} "
                f"{r['rlkit_over_gymnasium']:15.2f}"
            )
        if args.api_only:
            return
    rows = benchmark_envs(
        tuple(args.ns),
        args.steps,
        args.repeats,
        args.seed,
        gymnax=not args.no_gymnax,
        gymnasium=not args.no_gymnasium,
        clock=args.clock,
    )
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
        f"clock: {args.clock}"
    )
    header = (
        f"{'N':>6} {'steps':>6} {'rlkit/s':>10} {'gymnax/s':>10} {'gymnasium/s':>11} "
        f"{'rlkit/gymnax':>12} {'rlkit/gymnasium':>15} {'reset share':>11} "
        f"{'compile rlkit':>13} {'compile gymnax':>14}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['num_envs']:>6} {r['steps']:>6} {_fmt(r['rlkit_steps_per_s'], '10.3e')} "
            f"{_fmt(r['gymnax_steps_per_s'], '10.3e')} {_fmt(r['gymnasium_steps_per_s'], '11.3e')} "
            f"{_fmt(r['rlkit_over_gymnax'], '12.2f')} {_fmt(r['rlkit_over_gymnasium'], '15.2f')} "
            f"{_fmt(r['reset_share'], '11.0%')} "
            f"{_fmt(r['rlkit_compile_s'], '12.2f')}s {_fmt(r['gymnax_compile_s'], '13.2f')}s"
        )
    notes = {r["note"] for r in rows if r["note"]}
    for note in sorted(notes):
        print("note:", note)


if __name__ == "__main__":
    main()
