"""Evaluate trained policies: every episode counted once, on rlkit's JAX envs or on Gymnasium.

    result = evaluate(policy, "CartPole-v1", episodes=100)            # JAX: one compiled call
    result = evaluate(policy, "CartPole-v1", backend="gymnasium")     # Gymnasium on the host
    result.summary()   # mean, std, median, IQM, 95% bootstrap CIs, fraction at the threshold, ...
    compare_distributions(jax_result, gym_result)   # do the two backends agree?

Two backends, one protocol: each of the ``S`` policies (seeds) of a ``Policy`` plays ``episodes``
complete episodes; returns and lengths come back as ``[S, episodes]`` arrays.

* ``backend="jax"``: all ``S x episodes`` episodes run at once in one jitted program. Each episode
  is its own env instance of ``envs.make(env_id)``, reset once and stepped without autoreset inside
  a ``lax.while_loop`` until every episode has ended (by termination or the env's time limit); a
  finished episode's state is frozen and its rewards masked, so every episode counts exactly once
  and no partial episode counts. The policy is vmapped over the seed axis of its parameters, the
  env over seeds and episodes. Nothing loops in Python.
* ``backend="gymnasium"``: the same policies on ``gymnasium.make_vec(env_id, S * num_envs,
  "sync")``, the sub-envs of seed ``s`` being ``[s * num_envs, (s + 1) * num_envs)``. A vector env
  that keeps the first ``episodes`` episodes to finish over-samples short episodes (they finish
  first). Here the budget is split up front instead: sub-env ``i`` owes a fixed quota of episodes
  (``split_episodes``: ceil/floor shares summing to ``episodes``); it keeps the first ``quota[i]``
  episodes it finishes, and everything after its quota, including the episode still running when
  evaluation stops, is discarded. Each sub-env's kept episodes are then i.i.d. draws, whatever
  their lengths. Autoreset is SAME_STEP; NEXT_STEP's dummy reset step is skipped if used.

Statistics follow Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice" (NeurIPS 2021, the rliable library): the interquartile mean (IQM) next to the mean and
median, and 95% percentile confidence intervals from a stratified bootstrap.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from agents.policy import Policy
from envs.core import Discrete, Space
from rlkit.errors import RLKitError

__all__ = [
    "EvalResult",
    "evaluate",
    "compare_distributions",
    "split_episodes",
    "iqm",
    "aggregate",
    "bootstrap_ci",
    "bootstrap_cis",
    "AGGREGATES",
]

BACKENDS = ("jax", "gymnasium")
#: Aggregates that ``EvalResult.confidence_interval`` and ``bootstrap_ci`` know.
AGGREGATES = ("mean", "median", "iqm")
#: Bootstrap resamples used for every confidence interval unless told otherwise.
BOOTSTRAP_REPS = 2000
#: Largest number of resampled scores held in memory at once (the resamples are drawn in blocks).
_BOOTSTRAP_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------------
# Statistics (numpy, vectorised over a leading axis of bootstrap resamples)
# --------------------------------------------------------------------------------------------------


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
    return bootstrap_cis(
        scores, (statistic,), reps=reps, level=level, seed=seed, method=method
    )[statistic]


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
      reps, level, seed, method: as in ``bootstrap_ci``.

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
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // x.size)
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


# --------------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------------


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
      a, b: the two results.
      alpha: significance level of the test.

    Returns:
      ``{"test", "statistic", "p_value", "alpha", "mean_a", "mean_b", "mean_ci95_a", "mean_ci95_b",
      "ci_overlap", "verdict"}``.
    """
    x, y = a.returns.reshape(-1), b.returns.reshape(-1)
    try:
        from scipy import stats as sps

        res = sps.ks_2samp(x, y)
        test, statistic, p_value = "ks_2samp", float(res.statistic), float(res.pvalue)
    except ImportError:
        test = "permutation (difference in means)"
        statistic, p_value = _permutation_test(x, y, seed=a.seed)
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


def _permutation_test(
    x: np.ndarray, y: np.ndarray, *, reps: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Two-sided permutation test of ``|mean(x) - mean(y)|``: ``(statistic, p_value)``."""
    pooled = np.concatenate([x, y]).astype(np.float64)
    observed = abs(float(np.mean(x) - np.mean(y)))
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // pooled.size)
    hits = 0
    for start in range(0, reps, block):
        b = min(block, reps - start)
        perm = np.argsort(rng.random((b, pooled.size)), axis=1)
        shuffled = pooled[perm]
        diff = np.abs(shuffled[:, : x.size].mean(1) - shuffled[:, x.size :].mean(1))
        hits += int(np.sum(diff >= observed - 1e-12))
    return observed, (hits + 1) / (reps + 1)


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------


def split_episodes(episodes: int, num_envs: int) -> np.ndarray:
    """Fixed per-sub-env episode quotas: ``episodes % num_envs`` of ``ceil``, the rest ``floor``.

    Args:
      episodes: total episodes.
      num_envs: sub-envs sharing them.

    Returns:
      int64 ``[num_envs]`` quotas summing to ``episodes``, differing by at most one.
    """
    if episodes < 0 or num_envs < 1:
        raise RLKitError(
            f"split_episodes: expected episodes >= 0 and num_envs >= 1, got {episodes}, {num_envs}"
        )
    base, extra = divmod(int(episodes), int(num_envs))
    return np.asarray([base + 1] * extra + [base] * (num_envs - extra), np.int64)


def evaluate(
    policy: Policy,
    env_id: str,
    *,
    episodes: int = 100,
    seeds: Sequence[int] | None = None,
    backend: str = "jax",
    deterministic: bool = True,
    seed: int = 0,
    num_envs: int | None = None,
    max_episode_steps: int | None = None,
) -> EvalResult:
    """Run ``episodes`` complete episodes of each selected seed of ``policy`` on ``env_id``.

    Args:
      policy: the policy (single or multi-seed).
      env_id: an rlkit env id (``envs.registered()``) for the JAX backend; any Gymnasium id for the
        Gymnasium backend (rlkit's classic-control ids are Gymnasium's own ids too).
      episodes: episodes per seed.
      seeds: which seed indices of a multi-seed policy to evaluate; None evaluates all of them.
      backend: "jax" (one compiled program) or "gymnasium" (Gymnasium vector env on the host).
      deterministic: greedy / mean actions (True) or sampled ones.
      seed: evaluation seed: env start states, policy sampling, and the bootstrap.
      num_envs: Gymnasium backend: sub-envs per seed (default ``min(episodes, 16)``). The JAX
        backend runs every episode in its own env and ignores it.
      max_episode_steps: override the env's time limit.

    Returns:
      An ``EvalResult`` with ``[len(seeds), episodes]`` returns and lengths.

    Raises:
      RLKitError: bad arguments, unknown env id, a policy for a different observation or action
        space, or actions outside the env's action space.
    """
    if not isinstance(policy, Policy):
        raise RLKitError(f"policy: expected an agents.Policy, got {type(policy).__name__}")
    if backend not in BACKENDS:
        raise RLKitError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise RLKitError(f"episodes: expected an integer >= 1, got {episodes!r}")
    if num_envs is not None and (not isinstance(num_envs, (int, np.integer)) or num_envs < 1):
        raise RLKitError(f"num_envs: expected an integer >= 1 or None, got {num_envs!r}")
    if max_episode_steps is not None and (
        not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1
    ):
        raise RLKitError(
            f"max_episode_steps: expected an integer >= 1 or None, got {max_episode_steps!r}"
        )
    if not isinstance(seed, (int, np.integer)):
        raise RLKitError(f"seed: expected an integer, got {seed!r}")
    indices, params = _select_seeds(policy, seeds)
    if backend == "jax":
        returns, lengths, env_index, threshold = _evaluate_jax(
            policy, params, env_id, int(episodes), deterministic, int(seed), max_episode_steps
        )
    else:
        returns, lengths, env_index, threshold = _evaluate_gymnasium(
            policy, params, env_id, int(episodes), deterministic, int(seed), num_envs,
            max_episode_steps,
        )
    return EvalResult(
        returns=returns,
        lengths=lengths,
        env_id=env_id,
        backend=backend,
        reward_threshold=None if threshold is None else float(threshold),
        seeds=tuple(indices),
        env_index=env_index,
        deterministic=bool(deterministic),
        seed=int(seed),
    )


def _select_seeds(policy: Policy, seeds: Sequence[int] | None) -> tuple[list[int], Any]:
    """Seed indices and their parameters stacked on a leading axis ``[S, ...]``."""
    total = 1 if policy.num_seeds is None else int(policy.num_seeds)
    if seeds is None:
        indices = list(range(total))
    else:
        indices = [int(s) for s in np.atleast_1d(np.asarray(seeds))]
        if not indices:
            raise RLKitError("seeds: expected at least one seed index")
        bad = [s for s in indices if not 0 <= s < total]
        if bad:
            raise RLKitError(f"seeds: indices must be in [0, {total}), got {bad}")
    if policy.num_seeds is None:
        params = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * len(indices)), policy.params)
    else:
        idx = jnp.asarray(indices)
        params = jax.tree.map(lambda x: jnp.asarray(x)[idx], policy.params)
    return indices, params


def _describe(space: Any) -> str:
    n = getattr(space, "n", None)
    if n is not None:
        return f"Discrete({int(n)})"
    return f"{type(space).__name__}(shape={tuple(space.shape)})"


def _check_spaces(policy: Policy, obs_space: Any, act_space: Any, env_id: str) -> None:
    """RLKitError unless the policy's spaces match the env's (shapes; ``n``, ``start``)."""
    p_obs, p_act = policy.observation_space, policy.action_space
    problems = []
    if tuple(p_obs.shape) != tuple(obs_space.shape):
        problems.append(
            f"observation shape {tuple(p_obs.shape)} vs env {tuple(obs_space.shape)}"
        )
    p_discrete = isinstance(p_act, Discrete)
    e_discrete = hasattr(act_space, "n")
    if p_discrete != e_discrete:
        problems.append(f"action space {p_act!r} vs env {_describe(act_space)}")
    elif p_discrete:
        if (p_act.n, p_act.start) != (int(act_space.n), int(getattr(act_space, "start", 0))):
            problems.append(f"action space {p_act!r} vs env {_describe(act_space)}")
    elif tuple(p_act.shape) != tuple(act_space.shape):
        problems.append(f"action shape {tuple(p_act.shape)} vs env {tuple(act_space.shape)}")
    if problems:
        raise RLKitError(
            f"policy: checkpoint for a different observation or action space than {env_id!r} "
            f"({'; '.join(problems)})"
        )


def _check_action_output(policy: Policy, params_one: Any, act_space: Space, batch: int) -> Any:
    """Trace the policy once (no computation) and check its action shape and dtype."""
    obs = jax.ShapeDtypeStruct((batch,) + tuple(policy.observation_space.shape), jnp.float32)
    key = jax.random.PRNGKey(0)
    out = jax.eval_shape(lambda p, o, k: policy.apply(p, o, k, True), params_one, obs, key)
    expected = (batch,) + tuple(act_space.shape)
    if not hasattr(out, "shape") or tuple(out.shape) != expected:
        raise RLKitError(
            f"policy: expected actions of shape {expected} for a batch of {batch} observations, "
            f"got {getattr(out, 'shape', type(out).__name__)}"
        )
    if isinstance(act_space, Discrete) and not jnp.issubdtype(out.dtype, jnp.integer):
        raise RLKitError(
            f"policy: returned actions of dtype {out.dtype} for the discrete action space "
            f"{act_space!r}; expected integers"
        )
    return out


def _bad_action_error(action: Any, space: Any, env_id: str) -> RLKitError:
    a = np.asarray(action)
    shown = a.item() if a.ndim == 0 else a.tolist()
    return RLKitError(
        f"policy: returned action {shown!r}, which is outside the action space {space!r} of "
        f"{env_id!r}"
    )


# -- JAX backend ---------------------------------------------------------------------------------


def _resolve_rlkit_id(env_id: str) -> str:
    return env_id[len("rlkit/") :] if env_id.startswith("rlkit/") else env_id


@functools.lru_cache(maxsize=32)
def _jax_program(apply: Callable, env_id: str, deterministic: bool) -> Callable:
    """The compiled evaluation program for one (policy function, env, deterministic) triple.

    Returns ``run(params [S, ...], key, env_params, num_episodes) -> (returns [S, E],
    lengths [S, E], finished [S, E], bad_found, bad_action)``; jitted with ``num_episodes`` static,
    so a second call with the same shapes does not recompile.
    """
    import envs

    env, _ = envs.make(env_id)
    act_space = env.action_space()

    def step_episodes(env_keys, states, actions, env_params):
        step_one = lambda k, s, a: env.step(k, s, a, env_params)  # noqa: E731
        return jax.vmap(jax.vmap(step_one))(env_keys, states, actions)

    def freeze(done, new, old):
        def select(n, o):
            d = jnp.reshape(done, done.shape + (1,) * (n.ndim - done.ndim))
            return jnp.where(d, o, n)

        return jax.tree.map(select, new, old)

    def run(params, key, env_params, num_episodes: int):
        num_seeds = jax.tree.leaves(params)[0].shape[0]
        shape = (num_seeds, num_episodes)
        k_reset, k_loop = jax.random.split(key)
        reset_keys = jax.random.split(k_reset, shape)
        reset_one = lambda k: env.reset(k, env_params)  # noqa: E731
        obs, states = jax.vmap(jax.vmap(reset_one))(reset_keys)
        act_proto = jax.eval_shape(
            lambda p, o, k: apply(p, o, k, deterministic),
            jax.tree.map(lambda x: x[0], params),
            obs[0],
            k_loop,
        )
        policy_batch = jax.vmap(lambda p, o, k: apply(p, o, k, deterministic))
        max_steps = jnp.asarray(env_params.max_episode_steps, jnp.int32)

        def cond(carry):
            t, done = carry[0], carry[5]
            return jnp.logical_and(t < max_steps, jnp.logical_not(jnp.all(done)))

        def body(carry):
            t, key, obs, states, ret, done, length, bad_found, bad_action = carry
            key, k_pol, k_env = jax.random.split(key, 3)
            actions = policy_batch(params, obs, jax.random.split(k_pol, num_seeds))
            active = jnp.logical_not(done)
            valid = jax.vmap(jax.vmap(act_space.contains))(actions)
            bad = jnp.logical_and(active, jnp.logical_not(valid))
            flat_actions = actions.reshape((-1,) + actions.shape[2:])
            first_bad = flat_actions[jnp.argmax(bad.reshape(-1))]
            take = jnp.logical_and(jnp.logical_not(bad_found), jnp.any(bad))
            bad_action = jnp.where(take, first_bad, bad_action)
            bad_found = jnp.logical_or(bad_found, jnp.any(bad))
            new_obs, new_states, reward, terminated, truncated, _ = step_episodes(
                jax.random.split(k_env, shape), states, actions, env_params
            )
            ret = ret + jnp.where(active, reward, 0.0)
            length = length + active.astype(jnp.int32)
            obs = freeze(done, new_obs, obs)
            states = freeze(done, new_states, states)
            done = done | terminated | truncated
            return (t + 1, key, obs, states, ret, done, length, bad_found, bad_action)

        init = (
            jnp.asarray(0, jnp.int32),
            k_loop,
            obs,
            states,
            jnp.zeros(shape, jnp.float32),
            jnp.zeros(shape, jnp.bool_),
            jnp.zeros(shape, jnp.int32),
            jnp.asarray(False),
            jnp.zeros(act_proto.shape[1:], act_proto.dtype),
        )
        out = jax.lax.while_loop(cond, body, init)
        _, _, _, _, ret, done, length, bad_found, bad_action = out
        return ret, length, done, bad_found, bad_action

    return jax.jit(run, static_argnums=3)


def _evaluate_jax(
    policy: Policy,
    params: Any,
    env_id: str,
    episodes: int,
    deterministic: bool,
    seed: int,
    max_episode_steps: int | None,
):
    import envs

    rl_id = _resolve_rlkit_id(env_id)
    overrides = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    env, env_params = envs.make(rl_id, **overrides)  # RLKitError for unknown ids
    act_space = env.action_space(env_params)
    _check_spaces(policy, env.observation_space(env_params), act_space, env_id)
    _check_action_output(policy, jax.tree.map(lambda x: x[0], params), act_space, episodes)
    try:
        run = _jax_program(policy.apply, rl_id, bool(deterministic))
    except TypeError:  # an unhashable callable: compile without the cache
        run = _jax_program.__wrapped__(policy.apply, rl_id, bool(deterministic))
    ret, length, done, bad_found, bad_action = run(
        params, jax.random.PRNGKey(seed), env_params, episodes
    )
    if bool(bad_found):
        raise _bad_action_error(jax.device_get(bad_action), act_space, env_id)
    if not bool(jnp.all(done)):  # cannot happen: Environment.step truncates at the time limit
        raise RLKitError(f"{env_id!r}: some episodes did not end within max_episode_steps")
    num_seeds = ret.shape[0]
    env_index = np.broadcast_to(np.arange(episodes, dtype=np.int64), (num_seeds, episodes))
    threshold = envs.spec(rl_id).reward_threshold
    return (
        np.asarray(ret, np.float64),
        np.asarray(length, np.int64),
        np.array(env_index),
        threshold,
    )


# -- Gymnasium backend ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _host_policy(apply: Callable, deterministic: bool) -> Callable:
    """``act(params [S, ...], obs [S, n, ...], key, step) -> actions [S, n, ...]``, jitted."""

    def act(params, obs, key, step):
        num_seeds = obs.shape[0]
        keys = jax.random.split(jax.random.fold_in(key, step), num_seeds)
        return jax.vmap(lambda p, o, k: apply(p, o, k, deterministic))(params, obs, keys)

    return jax.jit(act)


def _host_invalid(actions: np.ndarray, space: Any) -> np.ndarray:
    """Boolean mask over the leading (sub-env) axis of actions outside a Gymnasium space."""
    import gymnasium

    a = np.asarray(actions)
    if isinstance(space, gymnasium.spaces.Discrete):
        integral = np.issubdtype(a.dtype, np.integer) or bool(np.all(a == np.round(a)))
        inside = (a >= space.start) & (a < space.start + space.n)
        return ~inside if integral else np.ones(a.shape[:1], bool)
    if isinstance(space, gymnasium.spaces.Box):
        flat = a.reshape(a.shape[0], -1)
        inside = (flat >= space.low.reshape(1, -1)) & (flat <= space.high.reshape(1, -1))
        return ~np.all(inside, axis=1)
    return np.asarray([not space.contains(x) for x in a], bool)


def _make_gymnasium_vec(env_id: str, num_envs: int, autoreset_mode: Any, max_episode_steps):
    import gymnasium

    import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)

    kwargs = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error as e:
        raise RLKitError(f"unknown Gymnasium env id {env_id!r} ({e})") from None
    try:
        return gymnasium.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": autoreset_mode},
            **kwargs,
        )
    except gymnasium.error.DependencyNotInstalled as e:
        raise RLKitError(f"env {env_id!r} needs a package that is not installed: {e}") from None
    except gymnasium.error.Error as e:
        raise RLKitError(f"cannot make Gymnasium env {env_id!r}: {e}") from None


def _evaluate_gymnasium(
    policy: Policy,
    params: Any,
    env_id: str,
    episodes: int,
    deterministic: bool,
    seed: int,
    num_envs: int | None,
    max_episode_steps: int | None,
    autoreset_mode: Any = None,
):
    """The Gymnasium backend; ``autoreset_mode`` (SAME_STEP by default) is exposed for tests."""
    import gymnasium
    from gymnasium.vector import AutoresetMode

    mode = AutoresetMode.SAME_STEP if autoreset_mode is None else AutoresetMode(autoreset_mode)
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    n = min(int(num_envs) if num_envs is not None else 16, episodes)
    quotas = split_episodes(episodes, n)
    offsets = np.concatenate([[0], np.cumsum(quotas)[:-1]])
    venv = _make_gymnasium_vec(env_id, num_seeds * n, mode, max_episode_steps)
    try:
        time_limit = venv.spec.max_episode_steps if venv.spec is not None else None
        if max_episode_steps is not None:
            time_limit = int(max_episode_steps)
        if time_limit is None:
            raise RLKitError(
                f"max_episode_steps: {env_id!r} has no time limit; pass max_episode_steps so "
                "evaluation is sure to end"
            )
        obs_space, act_space = venv.single_observation_space, venv.single_action_space
        _check_spaces(policy, obs_space, act_space, env_id)
        _check_action_output(
            policy, jax.tree.map(lambda x: x[0], params), policy.action_space, n
        )
        try:
            act = _host_policy(policy.apply, bool(deterministic))
        except TypeError:  # an unhashable callable: compile without the cache
            act = _host_policy.__wrapped__(policy.apply, bool(deterministic))
        key = jax.random.PRNGKey(seed)
        returns = np.full((num_seeds, episodes), np.nan, np.float64)
        lengths = np.zeros((num_seeds, episodes), np.int64)
        env_index = np.zeros((num_seeds, episodes), np.int64)
        counts = np.zeros((num_seeds, n), np.int64)
        ep_ret = np.zeros((num_seeds, n), np.float64)
        ep_len = np.zeros((num_seeds, n), np.int64)
        skip = np.zeros((num_seeds, n), bool)  # NEXT_STEP: the dummy reset step comes next
        owed = quotas[None, :]
        obs, _ = venv.reset(seed=seed)
        # Each sub-env needs at most quota * (time_limit + 1) steps (+1: NEXT_STEP's reset step).
        step_budget = int(quotas.max()) * (time_limit + 1) + 1
        for step in range(step_budget):
            if np.all(counts >= owed):
                break
            obs_b = np.asarray(obs).reshape((num_seeds, n) + tuple(obs_space.shape))
            if np.issubdtype(obs_b.dtype, np.floating):
                obs_b = obs_b.astype(np.float32)
            actions = np.asarray(act(params, obs_b, key, step))
            flat_actions = actions.reshape((num_seeds * n,) + actions.shape[2:])
            live = ((counts < owed) & ~skip).reshape(-1)
            invalid = _host_invalid(flat_actions, act_space) & live
            if invalid.any():
                raise _bad_action_error(flat_actions[np.argmax(invalid)], act_space, env_id)
            obs, reward, terminated, truncated, _ = venv.step(flat_actions)
            reward = np.asarray(reward, np.float64).reshape(num_seeds, n)
            ended = (np.asarray(terminated) | np.asarray(truncated)).reshape(num_seeds, n)
            real = ~skip
            ep_ret += np.where(real, reward, 0.0)
            ep_len += real
            finished = ended & real
            for s, i in zip(*np.nonzero(finished)):
                if counts[s, i] < quotas[i]:
                    slot = offsets[i] + counts[s, i]
                    returns[s, slot] = ep_ret[s, i]
                    lengths[s, slot] = ep_len[s, i]
                    env_index[s, slot] = i
                    counts[s, i] += 1
            ep_ret[finished] = 0.0
            ep_len[finished] = 0
            skip = finished if mode == AutoresetMode.NEXT_STEP else np.zeros_like(skip)
        if not np.all(counts >= owed):  # cannot happen with a TimeLimit
            raise RLKitError(f"{env_id!r}: episodes did not end within {step_budget} steps")
        threshold = venv.spec.reward_threshold if venv.spec is not None else None
        if threshold is None:
            try:
                threshold = gymnasium.spec(env_id).reward_threshold
            except gymnasium.error.Error:
                threshold = None
    finally:
        venv.close()
    return returns, lengths, env_index, threshold
