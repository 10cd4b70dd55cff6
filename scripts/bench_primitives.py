"""Primitive speed: rlkit against rlax, function for function, in the same run.

Each primitive is vmapped over a batch, jitted, warmed up (compile plus two calls) and then called
`repeats` times, rlkit and rlax in turn so that both see the same machine load; the figure is the
median wall time of one call with `block_until_ready`. `ratio` is rlax time / rlkit time, so a
ratio above 1 means rlkit is faster. The two outputs are also compared, as a sanity check.

- lambda_returns, truncated_generalized_advantage_estimation, vtrace: B trajectories of T steps.
- q_learning, categorical_q_learning: B * T transitions (a [B, T] grid, vmapped twice), with
  `num_actions` actions and, for C51, `num_atoms` atoms.
- importance_corrected_td_errors: B trajectories of T steps, like vtrace (rlax keeps it in
  `rlax._src.multistep`, not at its top level).
- mpo_loss: one call on examples E* = [B, T] with `num_actions` sampled actions each (the sample
  axis first), a temperature constraint and one KL constraint; the timed output is the loss.

    PYTHONPATH=. python scripts/bench_primitives.py --batch 1024 --time-steps 128
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import rlkit

__all__ = ["benchmark_primitives"]


def _multistep_module(lib: Any) -> Any:
    """rlax keeps `importance_corrected_td_errors` in `rlax._src.multistep`; rlkit exports it."""
    if lib.__name__ == "rlax":
        from rlax._src import multistep

        return multistep
    return lib


def _mpo_loss(lib: Any) -> Callable:
    """`lib.mpo_loss` as a function of arrays (the penalties are built with `lib`'s type)."""

    def loss(sample_log_probs, sample_q_values, kl, alpha):
        temperature = lib.LagrangePenalty(alpha=jnp.float32(1.0), epsilon=0.1)
        kls = [(kl, lib.LagrangePenalty(alpha=alpha, epsilon=0.01))]
        return lib.mpo_loss(sample_log_probs, sample_q_values, temperature, kls)[0]

    return loss


def _cases(batch: int, time_steps: int, num_actions: int, num_atoms: int, seed: int) -> dict:
    """name -> (function name in both libraries, in_axes per vmap level, arguments[, getter]).

    The optional getter maps a library module to the function to time (default: the attribute
    named by the first element).
    """
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), 32))

    def normal(*shape):
        return jax.random.normal(next(keys), shape, jnp.float32)

    def uniform(*shape, low=0.0, high=1.0):
        return jax.random.uniform(next(keys), shape, jnp.float32, low, high)

    bt = (batch, time_steps)
    discount = 0.99 * (uniform(*bt) > 0.02)  # some terminal transitions
    actions = jax.random.randint(next(keys), bt, 0, num_actions)
    atoms = jnp.linspace(-10.0, 10.0, num_atoms, dtype=jnp.float32)
    return {
        "lambda_returns": (
            "lambda_returns",
            [(0, 0, 0, None)],
            (normal(*bt), discount, normal(*bt), jnp.float32(0.95)),
        ),
        "truncated_generalized_advantage_estimation": (
            "truncated_generalized_advantage_estimation",
            [(0, 0, None, 0)],
            (normal(*bt), discount, jnp.float32(0.95), normal(batch, time_steps + 1)),
        ),
        "vtrace": (
            "vtrace",
            [(0, 0, 0, 0, 0, None)],
            (
                normal(*bt),
                normal(*bt),
                normal(*bt),
                discount,
                uniform(*bt, low=0.2, high=2.0),
                jnp.float32(1.0),
            ),
        ),
        "q_learning": (
            "q_learning",
            [0, 0],
            (normal(*bt, num_actions), actions, normal(*bt), discount, normal(*bt, num_actions)),
        ),
        "categorical_q_learning": (
            "categorical_q_learning",
            [(None, 0, 0, 0, 0, None, 0)] * 2,
            (
                atoms,
                normal(*bt, num_actions, num_atoms),
                actions,
                normal(*bt),
                discount,
                atoms,
                normal(*bt, num_actions, num_atoms),
            ),
        ),
        "importance_corrected_td_errors": (
            "importance_corrected_td_errors",
            [(0, 0, 0, None, 0)],
            (
                normal(*bt),
                discount,
                uniform(*bt, low=0.2, high=2.0),
                jnp.float32(0.95),
                normal(batch, time_steps + 1),
            ),
            lambda lib: _multistep_module(lib).importance_corrected_td_errors,
        ),
        "mpo_loss": (
            "mpo_loss",
            [],
            (
                normal(num_actions, *bt),
                normal(num_actions, *bt),
                uniform(*bt),
                uniform(*bt, low=0.5, high=2.0),
            ),
            _mpo_loss,
        ),
    }


def _batched(fn: Callable, in_axes_per_level: list) -> Callable:
    """vmaps `fn` once per entry of `in_axes_per_level` (innermost first) and jits it."""
    for in_axes in in_axes_per_level:
        fn = jax.vmap(fn, in_axes=in_axes)
    return jax.jit(fn)


def _time_pair(
    fns: list[Callable], args: tuple, repeats: int, budget_s: float
) -> list[list[float]]:
    """Seconds per call of each function, calls interleaved (ABBA order).

    After compilation and two warm-up calls each (and one call to size the run), runs up to `repeats` rounds, fewer (but at
    least 3) when one round would push the total past `budget_s`.
    """
    for fn in fns:  # compile and warm up
        jax.block_until_ready(fn(*args))
        jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for fn in fns:
        jax.block_until_ready(fn(*args))
    round_s = time.perf_counter() - start  # one call of each function
    repeats = max(3, min(repeats, int(budget_s / max(round_s, 1e-9))))
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for _ in range(repeats):
        for i in order:
            start = time.perf_counter()
            jax.block_until_ready(fns[i](*args))
            times[i].append(time.perf_counter() - start)
        order.reverse()  # alternate who goes first, so neither gains from going second
    return times


def _format_table(rows: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        (
            "| primitive | calls | rlkit median (ms) | rlax median (ms) | rlax / rlkit "
            "| rlkit min (ms) | rlax min (ms) | rlax / rlkit (min) | max abs diff |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['calls']} | {row['rlkit_ms']:.3f} | {row['rlax_ms']:.3f} "
            f"| {row['ratio']:.2f} | {row['rlkit_min_ms']:.3f} | {row['rlax_min_ms']:.3f} "
            f"| {row['ratio_min']:.2f} | {row['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def benchmark_primitives(
    batch: int = 1024,
    time_steps: int = 128,
    repeats: int = 30,
    num_actions: int = 4,
    num_atoms: int = 51,
    names: list[str] | None = None,
    seed: int = 0,
    budget_s: float = 20.0,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Times rlkit and rlax primitives side by side and returns (and prints) a table.

    Args:
      batch: number of trajectories B (and the first axis of the transition grid).
      time_steps: trajectory length T (and the second axis of the transition grid).
      repeats: timed calls per primitive and library, after compilation and two warm-up calls
        (fewer, but at least 3, where they would take more than `budget_s`).
      num_actions: actions in the Q-learning and C51 inputs.
      num_atoms: atoms of the C51 support.
      names: primitives to time (default: all of them).
      seed: seed for the random inputs.
      budget_s: rough limit on the timed seconds per primitive (both libraries together).
      verbose: print the table (markdown) when done.

    Returns:
      One dict per primitive: `name`, `calls` (timed calls per library), `rlkit_ms`, `rlax_ms`
      (median ms per call), `ratio` (rlax_ms / rlkit_ms, above 1 when rlkit is faster), the same
      from the fastest call (`rlkit_min_ms`, `rlax_min_ms`, `ratio_min`; on a shared machine
      the minimum is the steadier figure) and `max_abs_diff` between the two outputs.
    """
    import rlax


    cases = _cases(batch, time_steps, num_actions, num_atoms, seed)
    rows = []
    for name in names or list(cases):
        fn_name, in_axes, args, *getter = cases[name]
        get = getter[0] if getter else (lambda lib, fn_name=fn_name: getattr(lib, fn_name))
        ours = _batched(get(rlkit), in_axes)
        theirs = _batched(get(rlax), in_axes)
        rlkit_s, rlax_s = _time_pair([ours, theirs], args, repeats, budget_s)
        diff = jax.tree_util.tree_map(
            lambda a, b: float(jnp.max(jnp.abs(a - b))), ours(*args), theirs(*args)
        )
        rows.append(
            {
                "name": name,
                "calls": len(rlkit_s),
                "rlkit_ms": 1e3 * statistics.median(rlkit_s),
                "rlax_ms": 1e3 * statistics.median(rlax_s),
                "ratio": statistics.median(rlax_s) / statistics.median(rlkit_s),
                "rlkit_min_ms": 1e3 * min(rlkit_s),
                "rlax_min_ms": 1e3 * min(rlax_s),
                "ratio_min": min(rlax_s) / min(rlkit_s),
                "max_abs_diff": max(jax.tree_util.tree_leaves(diff)),
            }
        )
    if verbose:
        device = jax.devices()[0]
        header = (
            f"rlkit vs rlax, B={batch}, T={time_steps}, jit, up to {repeats} calls each; "
            f"jax {jax.__version__}, rlax {getattr(rlax, '__version__', '?')}, "
            f"{device.platform} ({device.device_kind}), {platform.processor() or platform.machine()}"
        )
        print(_format_table(rows, header), flush=True)
        for row in rows:
            if row["max_abs_diff"] > 1e-3:
                print(f"WARNING: rlkit and rlax disagree on {row['name']}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024, help="trajectories B")
    parser.add_argument("--time-steps", type=int, default=128, help="trajectory length T")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per primitive")
    parser.add_argument("--num-actions", type=int, default=4, help="actions for Q-learning/C51")
    parser.add_argument("--num-atoms", type=int, default=51, help="atoms of the C51 support")
    parser.add_argument("--names", nargs="*", default=None, help="subset of primitives to time")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument(
        "--budget-s", type=float, default=20.0, help="rough limit on timed seconds per primitive"
    )
    args = parser.parse_args(argv)
    benchmark_primitives(
        batch=args.batch,
        time_steps=args.time_steps,
        repeats=args.repeats,
        num_actions=args.num_actions,
        num_atoms=args.num_atoms,
        names=args.names,
        seed=args.seed,
        budget_s=args.budget_s,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
