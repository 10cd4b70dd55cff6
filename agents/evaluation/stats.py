"""Statistics of evaluation scores (numpy, vectorised over a leading axis of bootstrap resamples).

They follow Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS 2021, the rliable library): the interquartile mean (IQM) next to the mean and median, and
95% percentile confidence intervals from a stratified bootstrap.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rlkit.errors import RLKitError

__all__ = [
    "AGGREGATES",
    "BOOTSTRAP_REPS",
    "aggregate",
    "bootstrap_ci",
    "bootstrap_cis",
    "iqm",
    "permutation_test",
]

#: Aggregates that ``EvalResult.confidence_interval`` and ``bootstrap_ci`` know.
AGGREGATES = ("mean", "median", "iqm")
#: Bootstrap resamples used for every confidence interval unless told otherwise.
BOOTSTRAP_REPS = 2000
#: Largest number of resampled scores held in memory at once (the resamples are drawn in blocks).
BOOTSTRAP_BLOCK_ELEMENTS = 1 << 22


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the scores along ``axis``.

    Sorts, drops ``floor(n / 4)`` scores from each end and averages the rest (the same cut as
    ``scipy.stats.trim_mean(scores, 0.25)``, which rliable uses).

    Args:
      scores: array of scores.
      axis: the axis to reduce.

    Returns:
      The IQM, with ``axis`` removed.
    """
    x = np.sort(np.asarray(scores, np.float64), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise RLKitError("iqm: scores must not be empty")
    cut = n // 4
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def aggregate(scores: np.ndarray, name: str, axis: int = -1) -> np.ndarray:
    """The aggregate ``name`` ("mean", "median" or "iqm") of ``scores`` along ``axis``."""
    if name == "mean":
        return np.mean(scores, axis=axis)
    if name == "median":
        return np.median(scores, axis=axis)
    if name == "iqm":
        return iqm(scores, axis=axis)
    raise RLKitError(f"aggregate: expected one of {AGGREGATES}, got {name!r}")


def bootstrap_ci(
    scores: np.ndarray,
    statistic: str = "mean",
    *,
    reps: int = BOOTSTRAP_REPS,
    level: float = 0.95,
    seed: int = 0,
    method: str = "stratified",
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of an aggregate of a ``[S, E]`` score matrix.

    ``method="stratified"`` (rliable's stratified bootstrap with seeds as strata): every resample
    draws ``E`` episodes with replacement within each seed, keeps the seeds, and computes the
    aggregate over the pooled ``S x E`` resampled scores. The interval describes the uncertainty
    from the finite number of evaluation episodes of these ``S`` trained policies.
    ``method="hierarchical"``: draws ``S`` seeds with replacement, then ``E`` episodes with
    replacement within each drawn seed, so the interval also covers run-to-run variation (wider
    with few seeds).

    The CI is ``[q_{(1-level)/2}, q_{(1+level)/2}]`` of the ``reps`` resampled aggregates.
    Resamples are drawn from ``numpy.random.default_rng(seed)`` in fixed-size blocks, so the same
    inputs and seed give the same interval bit for bit.

    Args:
      scores: ``[S, E]`` array (a 1-D array counts as one seed).
      statistic: "mean", "median" or "iqm".
      reps: number of bootstrap resamples.
      level: confidence level in (0, 1).
      seed: seed of the resampling generator.
      method: "stratified" or "hierarchical".

    Returns:
      ``(low, high)``.
    """
    return bootstrap_cis(scores, (statistic,), reps=reps, level=level, seed=seed, method=method)[
        statistic
    ]


def bootstrap_cis(
    scores: np.ndarray,
    statistics: Sequence[str] = ("mean", "iqm"),
    *,
    reps: int = BOOTSTRAP_REPS,
    level: float = 0.95,
    seed: int = 0,
    method: str = "stratified",
) -> dict[str, tuple[float, float]]:
    """``bootstrap_ci`` of several aggregates computed on the same resamples (one pass).

    Args:
      scores: ``[S, E]`` array (a 1-D array counts as one seed).
      statistics: names of aggregates ("mean", "median", "iqm").
      reps: as in ``bootstrap_ci``.
      level: as in ``bootstrap_ci``.
      seed: as in ``bootstrap_ci``.
      method: as in ``bootstrap_ci``.

    Returns:
      ``{statistic: (low, high)}``; each interval equals ``bootstrap_ci`` with the same arguments.
    """
    x = np.asarray(scores, np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.size == 0:
        raise RLKitError(f"bootstrap_ci: scores must be a non-empty [S, E] array, got {x.shape}")
    for statistic in statistics:
        if statistic not in AGGREGATES:
            raise RLKitError(
                f"bootstrap_ci: statistic must be one of {AGGREGATES}, got {statistic!r}"
            )
    if method not in ("stratified", "hierarchical"):
        raise RLKitError(
            f"bootstrap_ci: method must be 'stratified' or 'hierarchical', got {method!r}"
        )
    if not 0.0 < level < 1.0:
        raise RLKitError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    if reps < 1:
        raise RLKitError(f"bootstrap_ci: reps must be >= 1, got {reps}")
    num_seeds, num_episodes = x.shape
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xB0075]))
    block = max(1, BOOTSTRAP_BLOCK_ELEMENTS // x.size)
    stats = {name: np.empty(reps, np.float64) for name in statistics}
    for start in range(0, reps, block):
        b = min(block, reps - start)
        if method == "hierarchical":
            rows = rng.integers(0, num_seeds, size=(b, num_seeds, 1))
        else:
            rows = np.broadcast_to(np.arange(num_seeds)[None, :, None], (b, num_seeds, 1))
        cols = rng.integers(0, num_episodes, size=(b, num_seeds, num_episodes))
        resampled = x[rows, cols].reshape(b, num_seeds * num_episodes)
        for name in statistics:
            stats[name][start : start + b] = aggregate(resampled, name, axis=-1)
    tail = 100.0 * (1.0 - level) / 2.0
    out = {}
    for name, values in stats.items():
        low, high = np.percentile(values, [tail, 100.0 - tail])
        out[name] = (float(low), float(high))
    return out


def permutation_test(
    x: np.ndarray, y: np.ndarray, *, reps: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Two-sided permutation test of ``|mean(x) - mean(y)|``: ``(statistic, p_value)``."""
    pooled = np.concatenate([x, y]).astype(np.float64)
    observed = abs(float(np.mean(x) - np.mean(y)))
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_ELEMENTS // pooled.size)
    hits = 0
    for start in range(0, reps, block):
        b = min(block, reps - start)
        perm = np.argsort(rng.random((b, pooled.size)), axis=1)
        shuffled = pooled[perm]
        diff = np.abs(shuffled[:, : x.size].mean(1) - shuffled[:, x.size :].mean(1))
        hits += int(np.sum(diff >= observed - 1e-12))
    return observed, (hits + 1) / (reps + 1)
