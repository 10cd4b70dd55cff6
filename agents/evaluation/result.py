"""The result of an evaluation: every episode's return and length, and their statistics."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from agents.evaluation.stats import (
    BOOTSTRAP_REPS,
    bootstrap_ci,
    bootstrap_cis,
    iqm,
    permutation_test,
)
from rlkit.errors import RLKitError

__all__ = ["EvalResult", "compare_distributions"]


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Per-episode results of an evaluation, and their statistics.

    Attributes:
      returns: ``[S, E]`` float64 undiscounted episode returns (seed-major).
      lengths: ``[S, E]`` int64 episode lengths in env steps.
      env_id: the env evaluated on.
      backend: "jax" or "gymnasium".
      reward_threshold: the env's ``reward_threshold`` (None if it has none).
      seeds: the seed indices of the policy that were evaluated (row ``s`` is policy ``seeds[s]``).
      env_index: ``[S, E]`` the sub-env each episode ran in (JAX: every episode is its own env).
      deterministic: whether greedy / mean actions were used.
      seed: the evaluation seed; it also seeds the bootstrap, so statistics are reproducible.
    """

    returns: np.ndarray
    lengths: np.ndarray
    env_id: str
    backend: str
    reward_threshold: float | None
    seeds: tuple[int, ...]
    env_index: np.ndarray
    deterministic: bool = True
    seed: int = 0

    @property
    def num_seeds(self) -> int:
        return int(self.returns.shape[0])

    @property
    def episodes_per_seed(self) -> int:
        return int(self.returns.shape[1])

    def mean(self) -> float:
        """Mean return over all episodes of all seeds."""
        return float(np.mean(self.returns))

    def std(self) -> float:
        """Sample standard deviation (ddof=1; 0 for a single episode) over all episodes."""
        return float(np.std(self.returns, ddof=1)) if self.returns.size > 1 else 0.0

    def median(self) -> float:
        return float(np.median(self.returns))

    def iqm(self) -> float:
        """Interquartile mean over all episodes of all seeds."""
        return float(iqm(self.returns.reshape(-1)))

    def per_seed_mean(self) -> list[float]:
        return [float(m) for m in np.mean(self.returns, axis=1)]

    def fraction_at_threshold(self) -> float | None:
        """Fraction of episodes with return ``>= reward_threshold`` (None without a threshold)."""
        if self.reward_threshold is None:
            return None
        return float(np.mean(self.returns >= self.reward_threshold))

    def confidence_interval(
        self,
        statistic: str = "mean",
        *,
        level: float = 0.95,
        reps: int = BOOTSTRAP_REPS,
        method: str = "stratified",
    ) -> tuple[float, float]:
        """Bootstrap CI of ``statistic`` over seeds and episodes; see ``bootstrap_ci``."""
        return bootstrap_ci(
            self.returns, statistic, reps=reps, level=level, seed=self.seed, method=method
        )

    def summary(self) -> dict[str, Any]:
        """The statistics as a JSON-serialisable dict (no per-episode arrays)."""
        within = bootstrap_cis(self.returns, ("mean", "iqm"), seed=self.seed)
        over = bootstrap_cis(self.returns, ("mean", "iqm"), seed=self.seed, method="hierarchical")
        return {
            "env_id": self.env_id,
            "backend": self.backend,
            "num_seeds": self.num_seeds,
            "seeds": list(self.seeds),
            "episodes_per_seed": self.episodes_per_seed,
            "episodes": int(self.returns.size),
            "deterministic": self.deterministic,
            "seed": self.seed,
            "mean": self.mean(),
            "std": self.std(),
            "median": self.median(),
            "iqm": self.iqm(),
            "min": float(np.min(self.returns)),
            "max": float(np.max(self.returns)),
            "mean_ci95": list(within["mean"]),
            "iqm_ci95": list(within["iqm"]),
            "mean_ci95_over_seeds": list(over["mean"]),
            "iqm_ci95_over_seeds": list(over["iqm"]),
            "bootstrap": {
                "reps": BOOTSTRAP_REPS,
                "ci95": "stratified: episodes resampled within each seed (these trained policies)",
                "ci95_over_seeds": "hierarchical: seeds, then episodes within them, resampled "
                "(adds run-to-run variation)",
            },
            "mean_length": float(np.mean(self.lengths)),
            "reward_threshold": self.reward_threshold,
            "fraction_at_threshold": self.fraction_at_threshold(),
            "per_seed_mean": self.per_seed_mean(),
        }

    def to_dict(self) -> dict[str, Any]:
        """``summary()`` plus the per-episode returns, lengths and sub-env indices (JSON-ready)."""
        out = self.summary()
        out["returns"] = self.returns.tolist()
        out["lengths"] = self.lengths.tolist()
        out["env_index"] = self.env_index.tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        """Inverse of ``to_dict`` (statistics are recomputed from the episodes)."""
        try:
            return cls(
                returns=np.asarray(d["returns"], np.float64),
                lengths=np.asarray(d["lengths"], np.int64),
                env_id=d["env_id"],
                backend=d["backend"],
                reward_threshold=d["reward_threshold"],
                seeds=tuple(d["seeds"]),
                env_index=np.asarray(d["env_index"], np.int64),
                deterministic=bool(d["deterministic"]),
                seed=int(d["seed"]),
            )
        except KeyError as e:
            raise RLKitError(f"EvalResult.from_dict: missing field {e}") from None


def compare_distributions(a: EvalResult, b: EvalResult, *, alpha: float = 0.01) -> dict[str, Any]:
    """Whether two evaluations' return distributions agree (e.g. JAX vs Gymnasium backends).

    Pools each result's episodes over seeds and runs a two-sample Kolmogorov-Smirnov test (scipy's
    ``ks_2samp``; without scipy, a permutation test of the difference in means with 10,000
    permutations). Also checks whether the 95% bootstrap CIs of the two means overlap. The verdict
    is "agree" when ``p_value >= alpha`` and the CIs overlap, else "differ".

    Args:
      a: the first result.
      b: the second result.
      alpha: significance level of the test.

    Returns:
      ``{"test", "statistic", "p_value", "alpha", "mean_a", "mean_b", "mean_ci95_a", "mean_ci95_b",
      "ci_overlap", "verdict"}``.
    """
    x, y = a.returns.reshape(-1), b.returns.reshape(-1)
    try:  # optional: without scipy, a permutation test
        from scipy import stats as sps

        res = sps.ks_2samp(x, y)
        test, statistic, p_value = "ks_2samp", float(res.statistic), float(res.pvalue)
    except ImportError:
        test = "permutation (difference in means)"
        statistic, p_value = permutation_test(x, y, seed=a.seed)
    ci_a, ci_b = a.confidence_interval("mean"), b.confidence_interval("mean")
    overlap = ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1]
    return {
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "alpha": alpha,
        "mean_a": a.mean(),
        "mean_b": b.mean(),
        "mean_ci95_a": list(ci_a),
        "mean_ci95_b": list(ci_b),
        "ci_overlap": bool(overlap),
        "verdict": "agree" if (p_value >= alpha and overlap) else "differ",
    }
