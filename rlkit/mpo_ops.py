"""MPO and V-MPO losses with Lagrange-penalty duals (rlax 0.1.9 names and semantics).

"Maximum a Posteriori Policy Optimisation" by Abdolmaleki et al. (2018,
https://openreview.net/forum?id=S1ANxQW0b); "Relative Entropy Regularized Policy Iteration"
by Abdolmaleki et al. (2018, https://arxiv.org/abs/1812.02256); "V-MPO: On-Policy Maximum a
Posteriori Policy Optimization for Discrete and Continuous Control" by Song et al. (2019,
https://openreview.net/forum?id=SylOlp4FvH).

Unlike the other rlkit primitives these work on any example shape E* ([T, B], [B], ...), as
long as every input shares it, since the E-step normalises over all examples. Each loss is per
example, shape E*; average it yourself. A `LagrangePenalty` holds a dual variable `alpha`, its
bound `epsilon` and whether the constraint is per action dimension; `projection_operator` maps
the raw dual variables into the positive range (default: clip at 1e-10).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlkit.base import AllSum, maybe_stop_gradient
from rlkit.errors import ArgumentError, RLKitError, check_args

__all__ = [
    "LagrangePenalty",
    "MpoOutputs",
    "compute_parametric_kl_penalty_and_dual_loss",
    "mpo_compute_weights_and_temperature_loss",
    "mpo_loss",
    "vmpo_compute_weights_and_temperature_loss",
    "vmpo_loss",
]

Array = chex.Array
Numeric = chex.Numeric
Scalar = chex.Scalar
ProjectionOperatorFn = Callable[[Array], Array]

_EPSILON = 1e-10  # Keeps the normalisers away from 0.
_INFINITY = 1e6  # Pushes restarting steps out of the top-k.


class LagrangePenalty(NamedTuple):
    """A constraint `value <= epsilon` enforced with the dual variable `alpha`.

    Attributes:
      alpha: the (unprojected) dual variable.
      epsilon: the bound, a scalar.
      per_dimension: whether each action dimension has its own constraint (then the KL has a
        trailing action axis and the losses are summed over it).
    """

    alpha: Array
    epsilon: Scalar
    per_dimension: bool = False


class MpoOutputs(NamedTuple):
    """The parts of an MPO or V-MPO loss.

    Attributes:
      temperature_loss: E* in MPO; a scalar in V-MPO (computed over all the data).
      policy_loss: E*.
      kl_loss: E*.
      alpha_loss: E*.
      normalized_weights: the E-step weights.
      num_samples: number of action samples per state (MPO) or of used examples (V-MPO).
    """

    temperature_loss: Numeric
    policy_loss: Array
    kl_loss: Array
    alpha_loss: Array
    normalized_weights: Array
    num_samples: Numeric


_DEFAULT_PROJECTION = functools.partial(jnp.clip, min=_EPSILON)


def _check_penalty(fn: str, name: str, penalty: LagrangePenalty, value: Array) -> None:
    check_args(fn, {f"{name}.epsilon": penalty.epsilon}, 0)
    check_args(
        fn,
        {name: value, f"{name}.alpha": penalty.alpha, f"{name}.epsilon": penalty.epsilon},
        None,
        float,
    )


def _normalise_axis(fn: str, sample_axis: int, ndim: int) -> int:
    axis = sample_axis + ndim if sample_axis < 0 else sample_axis
    if not 0 <= axis < ndim:
        raise RLKitError(f"{fn}: `sample_axis` {sample_axis} not in array rank {ndim}")
    return axis


def mpo_loss(
    sample_log_probs: Array,
    sample_q_values: Array,
    temperature_constraint: LagrangePenalty,
    kl_constraints: Sequence[tuple[Array, LagrangePenalty]],
    projection_operator: ProjectionOperatorFn = _DEFAULT_PROJECTION,
    policy_loss_weight: float = 1.0,
    temperature_loss_weight: float = 1.0,
    kl_loss_weight: float = 1.0,
    alpha_loss_weight: float = 1.0,
    sample_axis: int = 0,
    use_stop_gradient: bool = True,
) -> tuple[Array, MpoOutputs]:
    """The MPO loss: a weighted maximum-likelihood M-step under KL constraints.

    E-step (`mpo_compute_weights_and_temperature_loss`): with temperature eta and the Q-values
    of S sampled actions, `w_i = softmax_i(Q_i / eta)` and the dual
    `L_eta = eta epsilon + eta log mean_i exp(Q_i / eta)`. M-step:

        L_pi = -sum_i w_i log pi(a_i | s),
        L_KL = sum_c alpha_c KL_c,    L_alpha = sum_c alpha_c (epsilon_c - sg(KL_c)),
        loss = w_pi L_pi + w_eta L_eta + w_KL L_KL + w_alpha L_alpha

    (with `sg(alpha_c)` in `L_KL` and `sg(w)` in `L_pi` when `use_stop_gradient`).

    Args:
      sample_log_probs: log pi of the sampled actions, E* with a sample axis at `sample_axis`.
      sample_q_values: their Q-values, the same shape.
      temperature_constraint: the E-step temperature dual and its KL bound.
      kl_constraints: (KL, penalty) pairs for the M-step; a KL is E*, or [E*, A] for a
        per-dimension penalty.
      projection_operator: maps dual variables into the positive range.
      policy_loss_weight: weight of L_pi.
      temperature_loss_weight: weight of L_eta.
      kl_loss_weight: weight of L_KL.
      alpha_loss_weight: weight of L_alpha.
      sample_axis: the sample axis of the first two arguments (negative counts from the end).
      use_stop_gradient: whether to apply the stop-gradients above.

    Returns:
      `(loss, MpoOutputs)`, the loss per example, shape E*.
    """
    fn = "mpo_loss"
    check_args(
        fn,
        {"sample_log_probs": sample_log_probs, "sample_q_values": sample_q_values},
        None,
        float,
        same_shape=["sample_log_probs", "sample_q_values"],
    )
    _check_penalty(fn, "temperature_constraint", temperature_constraint, sample_q_values)
    ndim = sample_q_values.ndim
    for i, (kl, penalty) in enumerate(kl_constraints):
        _check_penalty(fn, f"kl_constraints[{i}]", penalty, kl)
        check_args(fn, {f"kl_constraints[{i}] KL": kl}, ndim if penalty.per_dimension else ndim - 1)
    axis = _normalise_axis(fn, sample_axis, ndim)
    temperature_loss, weights, num_samples = mpo_compute_weights_and_temperature_loss(
        sample_q_values, temperature_constraint, projection_operator, sample_axis=axis
    )
    weights = maybe_stop_gradient(weights, use_stop_gradient)
    policy_loss = -jnp.sum(weights * sample_log_probs, axis=axis)
    kl_loss, alpha_loss = compute_parametric_kl_penalty_and_dual_loss(
        kl_constraints, projection_operator, use_stop_gradient
    )
    loss = (
        policy_loss_weight * policy_loss
        + temperature_loss_weight * temperature_loss
        + kl_loss_weight * kl_loss
        + alpha_loss_weight * alpha_loss
    )
    return loss, MpoOutputs(
        temperature_loss=temperature_loss,
        policy_loss=policy_loss,
        kl_loss=kl_loss,
        alpha_loss=alpha_loss,
        normalized_weights=weights,
        num_samples=num_samples,
    )


def mpo_compute_weights_and_temperature_loss(
    sample_q_values: Array,
    temperature_constraint: LagrangePenalty,
    projection_operator: ProjectionOperatorFn,
    sample_axis: int = 0,
) -> tuple[Array, Array, Scalar]:
    """The MPO E-step: the non-parametric policy over sampled actions and its temperature dual.

        eta = projection_operator(alpha),
        w_i = exp(Q_i / eta) / sum_j exp(Q_j / eta),
        L_eta = eta epsilon + eta (logsumexp_i(Q_i / eta) - log S).

    Args:
      sample_q_values: Q-values of S sampled actions, E* with a sample axis at `sample_axis`.
      temperature_constraint: temperature dual `alpha` and its bound `epsilon`.
      projection_operator: maps the dual into the positive range.
      sample_axis: the sample axis.

    Returns:
      `(temperature_loss E*, normalized_weights like sample_q_values, S)`.
    """
    fn = "mpo_compute_weights_and_temperature_loss"
    _check_penalty(fn, "temperature_constraint", temperature_constraint, sample_q_values)
    axis = _normalise_axis(fn, sample_axis, sample_q_values.ndim)
    num_samples = sample_q_values.shape[axis]
    temperature = projection_operator(temperature_constraint.alpha)
    scaled = sample_q_values / temperature
    log_normaliser = jax.scipy.special.logsumexp(scaled, axis=axis, keepdims=True)
    temperature_loss = temperature * temperature_constraint.epsilon + temperature * (
        jnp.squeeze(log_normaliser, axis=axis) - jnp.log(num_samples)
    )
    weights = jnp.exp(scaled - log_normaliser)
    weights = weights / jnp.sum(weights, axis=axis, keepdims=True)
    return temperature_loss, weights, num_samples


def kl_constraint_loss(
    kl: Array,
    penalty: LagrangePenalty,
    projection_operator: ProjectionOperatorFn,
    use_stop_gradient: bool = True,
) -> tuple[Array, Array, Array]:
    """A hard KL constraint as a pair of losses for coordinate ascent on the Lagrangian.

        alpha = projection_operator(penalty.alpha),
        alpha_loss = alpha (epsilon - sg(kl)),    kl_loss = sg(alpha) kl.

    When `kl < epsilon` the first pushes alpha down (letting the policy move); when `kl >
    epsilon` it pushes alpha up, so the KL stays near the bound. Per-dimension penalties sum
    both losses over the last axis.

    Args:
      kl: the constrained KL per example (E*, or [E*, A] per dimension).
      penalty: dual variable and bound.
      projection_operator: maps the dual into the positive range.
      use_stop_gradient: whether to apply the stop-gradients `sg` above.

    Returns:
      `(kl_loss, alpha_loss, alpha)`.
    """
    check_args(
        "kl_constraint_loss",
        {"kl": kl, "penalty.alpha": penalty.alpha, "penalty.epsilon": penalty.epsilon},
        None,
        float,
    )
    alpha = projection_operator(penalty.alpha)
    alpha_loss = alpha * (penalty.epsilon - maybe_stop_gradient(kl, use_stop_gradient))
    kl_loss = maybe_stop_gradient(alpha, use_stop_gradient) * kl
    if penalty.per_dimension:
        kl_loss = jnp.sum(kl_loss, axis=-1)
        alpha_loss = jnp.sum(alpha_loss, axis=-1)
    return kl_loss, alpha_loss, alpha


def compute_parametric_kl_penalty_and_dual_loss(
    kl_constraints: Sequence[tuple[Array, LagrangePenalty]],
    projection_operator: ProjectionOperatorFn,
    use_stop_gradient: bool = True,
) -> tuple[Array, Array]:
    """Sums `kl_constraint_loss` over several KL constraints (e.g. mean and covariance).

    Args:
      kl_constraints: (KL, penalty) pairs.
      projection_operator: maps dual variables into the positive range.
      use_stop_gradient: whether to apply the stop-gradients of `kl_constraint_loss`.

    Returns:
      `(kl_loss, alpha_loss)`, each per example.
    """
    fn = "compute_parametric_kl_penalty_and_dual_loss"
    for i, (kl, penalty) in enumerate(kl_constraints):
        _check_penalty(fn, f"kl_constraints[{i}]", penalty, kl)
    parts = [
        kl_constraint_loss(kl, penalty, projection_operator, use_stop_gradient)[:2]
        for kl, penalty in kl_constraints
    ]
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def vmpo_loss(
    sample_log_probs: Array,
    advantages: Array,
    temperature_constraint: LagrangePenalty,
    kl_constraints: Sequence[tuple[Array, LagrangePenalty]],
    projection_operator: ProjectionOperatorFn = _DEFAULT_PROJECTION,
    restarting_weights: Array | None = None,
    importance_weights: Array | None = None,
    top_k_fraction: float = 0.5,
    policy_loss_weight: float = 1.0,
    temperature_loss_weight: float = 1.0,
    kl_loss_weight: float = 1.0,
    alpha_loss_weight: float = 1.0,
    axis_name: str | None = None,
    use_stop_gradient: bool = True,
) -> tuple[Array, MpoOutputs]:
    """The V-MPO policy-improvement loss.

    E-step (`vmpo_compute_weights_and_temperature_loss`): weights `psi` proportional to
    `exp(A / eta)` over the top `top_k_fraction` of the advantages, and the temperature dual.
    M-step, per example with N examples in total (across devices when `axis_name` is set):

        L_pi = -N psi log pi(a | s),    loss = w_pi L_pi + w_eta L_eta + w_KL L_KL + w_alpha L_alpha

    with `L_KL` and `L_alpha` as in `mpo_loss`. The mean of `L_pi` over the examples is the
    paper's `-sum psi log pi`.

    Args:
      sample_log_probs: log pi of the taken actions, E*.
      advantages: advantages for the E-step, E*.
      temperature_constraint: temperature dual and its bound.
      kl_constraints: (KL, penalty) pairs, KL E* or [E*, A] per dimension.
      projection_operator: maps dual variables into the positive range.
      restarting_weights: E*, 0 at the first step of an episode (ignored); default all 1.
      importance_weights: E*, default all 1.
      top_k_fraction: fraction of the examples used in the E-step, in (0, 1].
      policy_loss_weight: weight of L_pi.
      temperature_loss_weight: weight of L_eta.
      kl_loss_weight: weight of L_KL.
      alpha_loss_weight: weight of L_alpha.
      axis_name: device axis to normalise over (`pmap`), or None.
      use_stop_gradient: whether to apply the stop-gradients.

    Returns:
      `(loss, MpoOutputs)`, the loss per example, shape E*.
    """
    fn = "vmpo_loss"
    if restarting_weights is None:
        restarting_weights = jnp.ones_like(sample_log_probs)
    if importance_weights is None:
        importance_weights = jnp.ones_like(sample_log_probs)
    names = ["advantages", "sample_log_probs", "restarting_weights", "importance_weights"]
    values = [advantages, sample_log_probs, restarting_weights, importance_weights]
    check_args(fn, dict(zip(names, values)), None, float, same_shape=names)
    _check_penalty(fn, "temperature_constraint", temperature_constraint, advantages)
    for i, (kl, penalty) in enumerate(kl_constraints):
        _check_penalty(fn, f"kl_constraints[{i}]", penalty, kl)
        expected = advantages.shape + ((kl.shape[-1],) if penalty.per_dimension else ())
        if kl.ndim != len(expected) or kl.shape != expected:
            raise ArgumentError(
                f"{fn}: the KL of kl_constraints[{i}] has shape {kl.shape}; expected "
                f"advantages.shape{' + [A]' if penalty.per_dimension else ''} = {expected}"
            )
    temperature_loss, weights, num_samples = vmpo_compute_weights_and_temperature_loss(
        advantages,
        restarting_weights,
        importance_weights,
        temperature_constraint,
        projection_operator,
        top_k_fraction,
        axis_name=axis_name,
        use_stop_gradient=use_stop_gradient,
    )
    if axis_name:
        num_examples = jax.lax.all_gather(sample_log_probs, axis_name=axis_name).size
    else:
        num_examples = sample_log_probs.size
    policy_loss = -sample_log_probs * weights * num_examples
    kl_loss, alpha_loss = compute_parametric_kl_penalty_and_dual_loss(
        kl_constraints, projection_operator, use_stop_gradient
    )
    loss = (
        policy_loss_weight * policy_loss
        + temperature_loss_weight * temperature_loss
        + kl_loss_weight * kl_loss
        + alpha_loss_weight * alpha_loss
    )
    return loss, MpoOutputs(
        temperature_loss=temperature_loss,
        policy_loss=policy_loss,
        kl_loss=kl_loss,
        alpha_loss=alpha_loss,
        normalized_weights=weights,
        num_samples=num_samples,
    )


def get_top_k_weights(
    top_k_fraction: float,
    restarting_weights: Array,
    scaled_advantages: Array,
    axis_name: str | None = None,
    use_stop_gradient: bool = True,
) -> Array:
    """Restarting weights with everything outside the top `top_k_fraction` set to 0.

    The threshold is the k-th largest scaled advantage over all examples (and devices), with
    `k = int(top_k_fraction * N)`, restarting steps excluded; ties at the threshold are kept.

    Args:
      top_k_fraction: fraction in (0, 1]; 1 keeps everything.
      restarting_weights: E*, 0 marks a step that is ignored.
      scaled_advantages: advantages divided by the temperature, E*.
      axis_name: device axis to take the top-k over, or None.
      use_stop_gradient: whether to stop gradients through the 0/1 mask.

    Returns:
      The weights, E*.

    Raises:
      RLKitError: if `top_k_fraction` is outside (0, 1] or keeps no example.
    """
    fn = "get_top_k_weights"
    names = ["scaled_advantages", "restarting_weights"]
    check_args(fn, dict(zip(names, [scaled_advantages, restarting_weights])), None, float, names)
    if not 0.0 < top_k_fraction <= 1.0:
        raise RLKitError(f"{fn}: `top_k_fraction` must be in (0, 1], got {top_k_fraction}")
    if top_k_fraction == 1.0:
        return restarting_weights
    valid = scaled_advantages - (1.0 - restarting_weights) * _INFINITY
    everywhere = jax.lax.all_gather(valid, axis_name=axis_name) if axis_name else valid
    top_k = int(top_k_fraction * everywhere.size)
    if top_k == 0:
        raise RLKitError(
            f"{fn}: `top_k_fraction`={top_k_fraction} is too low to get any valid scaled "
            f"advantages out of {everywhere.size}"
        )
    threshold = jnp.sort(everywhere.reshape(-1))[-top_k]
    mask = (valid >= threshold).astype(jnp.float32)
    return restarting_weights * maybe_stop_gradient(mask, use_stop_gradient)


def vmpo_compute_weights_and_temperature_loss(
    advantages: Array,
    restarting_weights: Array,
    importance_weights: Array,
    temperature_constraint: LagrangePenalty,
    projection_operator: ProjectionOperatorFn,
    top_k_fraction: float,
    axis_name: str | None = None,
    use_stop_gradient: bool = True,
) -> tuple[Array, Array, Array]:
    """The V-MPO E-step: weights over the top-k advantages and the temperature dual.

    With `eta = projection_operator(alpha)`, `s = restarting_weights * advantages / eta`,
    `m = max s`, and `k` the top-k restarting weights (`get_top_k_weights`):

        u = k * importance_weights * exp(s - m),
        psi = u / (sum u + 1e-10),    n = sum k + 1e-10,
        L_eta = eta (epsilon + log(sum u + 1e-10) + m - log n).

    Sums and the max run over all examples, and over devices when `axis_name` is set.

    Args:
      advantages: E*.
      restarting_weights: E*, 0 marks an ignored step.
      importance_weights: E*.
      temperature_constraint: temperature dual and its bound.
      projection_operator: maps the dual into the positive range.
      top_k_fraction: fraction of the examples used, in (0, 1].
      axis_name: device (`pmap` or `vmap`) axis, or None.
      use_stop_gradient: whether to stop gradients through the importance weights, the max,
        the top-k mask and the normalised weights; must be True with `axis_name`.

    Returns:
      `(temperature_loss scalar, normalized_weights E*, num_samples scalar)`.
    """
    fn = "vmpo_compute_weights_and_temperature_loss"
    names = ["advantages", "restarting_weights", "importance_weights"]
    check_args(
        fn,
        dict(zip(names, [advantages, restarting_weights, importance_weights])),
        None,
        float,
        names,
    )
    _check_penalty(fn, "temperature_constraint", temperature_constraint, advantages)
    importance_weights = maybe_stop_gradient(importance_weights, use_stop_gradient)
    temperature = projection_operator(temperature_constraint.alpha)
    scaled = restarting_weights * advantages / temperature
    max_scaled = jnp.max(scaled)
    if axis_name:
        if use_stop_gradient is not True:
            raise ArgumentError(
                f"{fn}: `use_stop_gradient` must be True with `axis_name` (pmax has no gradient)"
            )
        max_scaled = jax.lax.pmax(jax.lax.stop_gradient(max_scaled), axis_name=axis_name)
    else:
        max_scaled = maybe_stop_gradient(max_scaled, use_stop_gradient)
    top_k_weights = get_top_k_weights(
        top_k_fraction, restarting_weights, scaled, axis_name, use_stop_gradient
    )
    total = AllSum(axis_name)
    unnormalised = top_k_weights * importance_weights * jnp.exp(scaled - max_scaled)
    sum_weights = total(unnormalised) + _EPSILON
    num_samples = total(top_k_weights) + _EPSILON
    weights = maybe_stop_gradient(unnormalised / sum_weights, use_stop_gradient)
    log_mean_weights = jnp.log(sum_weights) + max_scaled - jnp.log(num_samples)
    temperature_loss = temperature * (temperature_constraint.epsilon + log_mean_weights)
    return temperature_loss, weights, num_samples


def kl_alpha_loss(
    restarting_weights: Array,
    kl_constraints: Sequence[tuple[Array, LagrangePenalty]] = (),
    axis_name: str | None = None,
) -> tuple[Array, Array]:
    """Decoupled KL losses averaged over the non-restarting examples (V-MPO's M-step duals).

    `kl_loss = sum(restarting_weights * sum_c alpha_c KL_c) / (sum restarting_weights + 1e-10)`
    and likewise for the alpha loss, with the dual variables used as they are (no projection).

    Args:
      restarting_weights: E*, 0 marks an ignored step.
      kl_constraints: (KL, penalty) pairs; KL E* or [E*, A].
      axis_name: device axis to sum over, or None.

    Returns:
      `(kl_loss, alpha_loss)`, scalars (0 without constraints).
    """
    fn = "kl_alpha_loss"
    check_args(fn, {"restarting_weights": restarting_weights}, None, float)
    if not kl_constraints:
        return jnp.asarray(0.0), jnp.asarray(0.0)
    for i, (kl, penalty) in enumerate(kl_constraints):
        _check_penalty(fn, f"kl_constraints[{i}]", penalty, kl)
        if kl.shape[: restarting_weights.ndim] != restarting_weights.shape:
            raise ArgumentError(
                f"{fn}: the KL of kl_constraints[{i}] has shape {kl.shape}; its leading axes "
                f"must be restarting_weights.shape = {restarting_weights.shape}"
            )
    parts = [kl_constraint_loss(kl, p, lambda x: x)[:2] for kl, p in kl_constraints]
    kl_loss, alpha_loss = sum(p[0] for p in parts), sum(p[1] for p in parts)
    total = AllSum(axis_name)
    num_samples = total(restarting_weights) + _EPSILON
    return (
        total(kl_loss * restarting_weights) / num_samples,
        total(alpha_loss * restarting_weights) / num_samples,
    )
