"""Running mean / variance normalisation as pure functions over an explicit state.

Observation normalisation (as in Stable-Baselines3's `VecNormalize` and PPO implementations)
keeps a running mean and variance of everything seen so far and standardises inputs with it.
Here the statistics are a `RunningMeanStd` NamedTuple that goes into pure functions and comes
back out, so it jits, vmaps, shards and checkpoints like any other pytree.

| function                                             | what it does                              |
|------------------------------------------------------|-------------------------------------------|
| running_stats_init(shape_or_example, dtype)          | empty statistics (count 0)                |
| running_stats_update(state, batch, mask=None)        | fold in a batch with leading batch axes   |
| running_stats_merge(a, b)                            | combine statistics of disjoint data       |
| running_stats_psum(state, axis_name)                 | combine statistics across devices         |
| running_stats_normalize(state, x, clip=None, eps)    | (x - mean) / sqrt(var + eps), clipped     |
| running_stats_denormalize(state, x, eps)             | the inverse: x * sqrt(var + eps) + mean   |
| reward_scaling_init(num_envs)                        | per-env discounted return + its stats     |
| reward_scaling_update(state, reward, done, gamma)    | update returns and their variance         |
| reward_scaling_apply(state, reward, clip=None, eps)  | reward / sqrt(var(return) + eps), clipped |

(The names carry a `running_stats_` prefix because `normalize` / `unnormalize` are rlax's
PopArt functions, in `rlkit/pop_art.py`. Use the flat `rlkit.running_stats_*` names or this
module's.)

Combination rule (Chan, Golub and LeVeque, "Updating formulae and a pairwise algorithm for
computing sample variances", 1979; the parallel form of Welford's algorithm). For disjoint
sets A and B with counts n_A, n_B, means m_A, m_B and sums of squared deviations
M2 = n * var:

    n     = n_A + n_B
    delta = m_B - m_A
    m     = m_A + delta * n_B / n
    M2    = M2_A + M2_B + delta^2 * n_A * n_B / n

A batch is first reduced to its own (count, mean, var) with a two-pass formula (deviations from
the batch mean), then merged. The variance is the population variance (ddof 0). Merging is
exact up to rounding and order-independent, so statistics of two halves merged equal the
statistics of the whole.

Several devices. Inside `jax.pmap`, `shard_map`, or a `vmap` with an `axis_name`, reduce each
device's batch locally and combine with `running_stats_psum`, which performs two `psum`s
(counts and weighted means, then the deviations about the global mean) and gives every device
the same result:

    local = running_stats_update(running_stats_init(obs_shape), obs_shard, mask_shard)
    state = running_stats_merge(state, running_stats_psum(local, axis_name="devices"))

Equivalently, `jax.lax.all_gather` the local states and fold them with `running_stats_merge`.
Under `jit` with sharded arrays (`NamedSharding`) nothing special is needed:
`running_stats_update` on the global batch reduces over the sharded axis and XLA inserts the
collectives.

The count is a float32 array, not an int: it never overflows (int32 would after 2^31 samples)
and only its ratios enter the formulae; float32 counts stop growing past about 2^24 * batch
samples, at which point new data has negligible weight anyway.
"""

from collections.abc import Sequence
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import RLKitError, check

__all__ = [
    "RewardScalingState",
    "RunningMeanStd",
    "reward_scaling_apply",
    "reward_scaling_init",
    "reward_scaling_update",
    "running_stats_denormalize",
    "running_stats_init",
    "running_stats_merge",
    "running_stats_normalize",
    "running_stats_psum",
    "running_stats_update",
]

Array = chex.Array
Numeric = chex.Numeric


class RunningMeanStd(NamedTuple):
    """Running statistics of a stream of arrays of one shape.

    Attributes:
      mean: running mean, shaped like one sample [*shape].
      var: running population variance [*shape] (1 while `count` is 0, so normalising
        before any data is the identity).
      count: number of samples seen, a float32 scalar array.
    """

    mean: Array
    var: Array
    count: Array

    @property
    def std(self) -> Array:
        """Standard deviation `sqrt(var)`."""
        return jnp.sqrt(self.var)


def running_stats_init(
    shape_or_example: int | Sequence[int] | Array, dtype: jnp.dtype = jnp.float32
) -> RunningMeanStd:
    """Creates empty statistics: mean 0, var 1, count 0.

    Args:
      shape_or_example: the shape of one sample (int or tuple), or an example sample whose
        shape is used (pass one sample, not a batch).
      dtype: float dtype of `mean` and `var`.

    Returns:
      A `RunningMeanStd`.
    """
    if isinstance(shape_or_example, int):
        shape: tuple[int, ...] = (shape_or_example,)
    elif isinstance(shape_or_example, (tuple, list)):
        shape = tuple(int(d) for d in shape_or_example)
    elif hasattr(shape_or_example, "shape"):
        shape = tuple(shape_or_example.shape)
    else:
        raise RLKitError(
            f"shape_or_example must be an int, a tuple of ints or an array, got "
            f"{type(shape_or_example).__name__}"
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        raise RLKitError(f"dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    return RunningMeanStd(
        mean=jnp.zeros(shape, dtype),
        var=jnp.ones(shape, dtype),
        count=jnp.zeros((), jnp.float32),
    )


def _lead(x: Array, ndim: int) -> Array:
    """Reshapes per-sample statistics [*shape] to broadcast against [1]*ndim + [*shape]."""
    return jnp.reshape(x, (1,) * ndim + x.shape)


def _num_batch_axes(state: RunningMeanStd, x: Array, name: str) -> int:
    sample_shape = state.mean.shape
    k = x.ndim - len(sample_shape)
    if k < 0 or tuple(x.shape[k:]) != tuple(sample_shape):
        raise RLKitError(
            f"{name} must have shape [*batch, {', '.join(map(str, sample_shape))}] ending in the "
            f"statistics' sample shape {tuple(sample_shape)}, got {tuple(x.shape)}"
        )
    return k


def running_stats_merge(a: RunningMeanStd, b: RunningMeanStd) -> RunningMeanStd:
    """Combines statistics of two disjoint sets of samples (Chan et al.'s parallel rule).

    See the module docstring for the equations. If both counts are 0 the result is `a`.

    Args:
      a: statistics of set A.
      b: statistics of set B (same shape and dtype).

    Returns:
      Statistics of the union of A and B.
    """
    check(
        "running_stats_merge",
        chex.assert_equal_shape,
        {"a.mean": a.mean, "a.var": a.var, "b.mean": b.mean, "b.var": b.var},
    )
    check("running_stats_merge", chex.assert_rank, {"a.count": a.count, "b.count": b.count}, 0)
    count = a.count + b.count
    safe = jnp.maximum(count, 1e-30)
    frac_b = (b.count / safe).astype(a.mean.dtype)
    delta = b.mean - a.mean
    mean = a.mean + delta * frac_b
    cross = (a.count * b.count / safe).astype(a.mean.dtype)
    m2 = a.var * a.count.astype(a.mean.dtype) + b.var * b.count.astype(a.mean.dtype)
    m2 = m2 + jnp.square(delta) * cross
    var = m2 / safe.astype(a.mean.dtype)
    empty = count <= 0
    return RunningMeanStd(
        mean=jnp.where(empty, a.mean, mean),
        var=jnp.where(empty, a.var, var),
        count=count,
    )


def _batch_stats(state: RunningMeanStd, batch: Array, mask: Array | None) -> RunningMeanStd:
    k = _num_batch_axes(state, batch, "batch")
    batch = batch.astype(state.mean.dtype)
    axes = tuple(range(k))
    if mask is None:
        weights = jnp.ones(batch.shape[:k], state.mean.dtype)
    else:
        if tuple(mask.shape) != tuple(batch.shape[:k]):
            raise RLKitError(
                f"mask must have the batch shape {tuple(batch.shape[:k])}, got {tuple(mask.shape)}"
            )
        weights = mask.astype(state.mean.dtype)
    n = jnp.sum(weights)
    safe_n = jnp.maximum(n, 1.0)
    w = jnp.reshape(weights, weights.shape + (1,) * (batch.ndim - k))
    # Masked-out samples may hold garbage (even NaN); zero them rather than multiply.
    batch = jnp.where(w > 0, batch, jnp.zeros_like(batch))
    mean = jnp.sum(w * batch, axis=axes) / safe_n
    dev = jnp.where(w > 0, batch - _lead(mean, k), jnp.zeros_like(batch))
    var = jnp.sum(w * jnp.square(dev), axis=axes) / safe_n
    return RunningMeanStd(mean=mean, var=var, count=n.astype(jnp.float32))


def running_stats_update(
    state: RunningMeanStd,
    batch: Array,
    mask: Array | None = None,
    axis_name: str | Sequence[str] | None = None,
) -> RunningMeanStd:
    """Folds a batch of samples into the running statistics.

    Args:
      state: current statistics of samples of shape [*S].
      batch: samples [*B, *S]; any number of leading batch axes (0 for a single sample).
      mask: optional [*B] boolean (or 0/1) array; samples where it is False do not count
        (e.g. the dummy step after an autoreset).
      axis_name: when given (inside ``shard_map``, ``pmap`` or a ``vmap`` with ``axis_name``),
        the batch is one device's part of a batch split over this mapped axis (or axes): the
        parts' statistics are combined (``running_stats_psum``) before they are folded in, so
        every device ends with the statistics of the whole batch.

    Returns:
      The updated statistics; unchanged if no sample counts.

    Raises:
      RLKitError: if `batch` does not end in the sample shape or `mask` has the wrong shape.
    """
    stats = _batch_stats(state, batch, mask)
    if axis_name is not None:
        stats = running_stats_psum(stats, axis_name)
    return running_stats_merge(state, stats)


def running_stats_psum(state: RunningMeanStd, axis_name: str | Sequence[str]) -> RunningMeanStd:
    """Combines each device's statistics into the statistics of all devices' data.

    Must run inside a collective context (`pmap`, `shard_map`, or `vmap` with `axis_name`).
    Two `psum`s: first counts and count-weighted means give the global mean `m`, then
    `sum_i n_i (var_i + (m_i - m)^2)` gives the global sum of squared deviations. Every device
    returns the same statistics.

    Args:
      state: this device's statistics (typically of this device's batch only).
      axis_name: the mapped axis name (or names) to reduce over.

    Returns:
      Statistics of the union over devices.
    """
    count = jax.lax.psum(state.count, axis_name)
    safe = jnp.maximum(count, 1e-30)
    weight = state.count.astype(state.mean.dtype)
    mean = jax.lax.psum(weight * state.mean, axis_name) / safe.astype(state.mean.dtype)
    spread = weight * (state.var + jnp.square(state.mean - mean))
    var = jax.lax.psum(spread, axis_name) / safe.astype(state.mean.dtype)
    empty = count <= 0
    return RunningMeanStd(
        mean=jnp.where(empty, state.mean, mean), var=jnp.where(empty, state.var, var), count=count
    )


def running_stats_normalize(
    state: RunningMeanStd, x: Array, clip: float | None = None, eps: float = 1e-8
) -> Array:
    """Standardises `x` with the running statistics: `(x - mean) / sqrt(var + eps)`.

    Args:
      state: statistics of samples of shape [*S].
      x: array [*B, *S] (any number of leading axes).
      clip: if set, the result is clipped to [-clip, clip] (SB3's default is 10).
      eps: added to the variance.

    Returns:
      Normalised array shaped like `x`.
    """
    k = _num_batch_axes(state, x, "x")
    out = (x - _lead(state.mean, k)) / jnp.sqrt(_lead(state.var, k) + eps)
    if clip is not None:
        out = jnp.clip(out, -clip, clip)
    return out


def running_stats_denormalize(state: RunningMeanStd, x: Array, eps: float = 1e-8) -> Array:
    """Inverse of `running_stats_normalize` (without clipping): `x * sqrt(var + eps) + mean`.

    Args:
      state: statistics of samples of shape [*S].
      x: normalised array [*B, *S].
      eps: the `eps` used to normalise.

    Returns:
      Array in the original scale, shaped like `x`.
    """
    k = _num_batch_axes(state, x, "x")
    return x * jnp.sqrt(_lead(state.var, k) + eps) + _lead(state.mean, k)


class RewardScalingState(NamedTuple):
    """State of return-based reward scaling.

    Attributes:
      returns: running discounted return of each environment [N].
      return_stats: running statistics (scalar shape) of those returns.
    """

    returns: Array
    return_stats: RunningMeanStd


def reward_scaling_init(num_envs: int, dtype: jnp.dtype = jnp.float32) -> RewardScalingState:
    """Creates reward-scaling state for `num_envs` environments.

    Args:
      num_envs: number of parallel environments.
      dtype: float dtype.

    Returns:
      `RewardScalingState` with zero returns and empty statistics.
    """
    if not isinstance(num_envs, int) or num_envs < 1:
        raise RLKitError(f"num_envs must be a positive int, got {num_envs!r}")
    return RewardScalingState(
        returns=jnp.zeros((num_envs,), dtype), return_stats=running_stats_init((), dtype)
    )


def reward_scaling_update(
    state: RewardScalingState,
    reward: Array,
    done: Array,
    gamma: Numeric,
    mask: Array | None = None,
    axis_name: str | Sequence[str] | None = None,
) -> RewardScalingState:
    """Advances each environment's discounted return and updates the return variance.

    The scheme of Stable-Baselines3's `VecNormalize` (after Engstrom et al., "Implementation
    Matters in Deep Policy Gradients", https://arxiv.org/abs/2005.12729):

        R_t = gamma * R_{t-1} + r_t          (per environment)
        stats <- update(stats, {R_t})         then  R_t <- 0 where done

    Call it once per vector step with the step's rewards, before `reward_scaling_apply`.

    Args:
      state: current state.
      reward: rewards of this step [N].
      done: episode ended at this step [N] (terminated or truncated); resets the return.
      gamma: discount factor (scalar).
      mask: optional [N]; environments where it is False (e.g. the dummy step after a
        NEXT_STEP autoreset) keep their return and do not update the statistics.
      axis_name: as for ``running_stats_update``: the N environments are one device's part
        of an env batch split over this mapped axis, whose return statistics are combined.

    Returns:
      The new `RewardScalingState`.
    """
    check("reward_scaling_update", chex.assert_rank, {"reward": reward, "done": done}, 1)
    check("reward_scaling_update", chex.assert_type, {"reward": reward}, float)
    check(
        "reward_scaling_update",
        chex.assert_equal_shape,
        {"reward": reward, "done": done, "state.returns": state.returns},
    )
    valid = jnp.ones(reward.shape, bool) if mask is None else mask.astype(bool)
    check("reward_scaling_update", chex.assert_equal_shape, {"valid": valid, "reward": reward})
    returns = jnp.where(valid, gamma * state.returns + reward, state.returns)
    stats = running_stats_update(state.return_stats, returns, valid, axis_name)
    returns = jnp.where(valid & done.astype(bool), jnp.zeros_like(returns), returns)
    return RewardScalingState(returns=returns, return_stats=stats)


def reward_scaling_apply(
    state: RewardScalingState, reward: Array, clip: float | None = None, eps: float = 1e-8
) -> Array:
    """Scales rewards by the running standard deviation of the discounted return.

    `r / sqrt(var(R) + eps)`, optionally clipped to [-clip, clip]. The mean is not subtracted
    (shifting rewards would change the optimal policy in episodic tasks).

    Args:
      state: reward-scaling state.
      reward: rewards [...].
      clip: optional bound (SB3's default is 10).
      eps: added to the variance.

    Returns:
      Scaled rewards shaped like `reward`.
    """
    check("reward_scaling_apply", chex.assert_type, {"reward": reward}, float)
    scaled = reward / jnp.sqrt(state.return_stats.var + eps)
    if clip is not None:
        scaled = jnp.clip(scaled, -clip, clip)
    return scaled
