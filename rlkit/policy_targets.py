"""Policy targets and sampled policy distillation (rlax 0.1.9 names and semantics).

A `PolicyTarget` holds sampled actions with a weight each (for example importance-weighted
probabilities). The distributions here are distrax-style objects (`sample(seed=...,
sample_shape=...)`, `log_prob`, `batch_shape`); rlkit only calls those methods and does not
import distrax.
"""

from __future__ import annotations

import functools
from typing import Any

import chex
import jax.numpy as jnp

from rlkit.base import maybe_stop_gradient
from rlkit.errors import check_args

__all__ = [
    "PolicyTarget",
    "constant_policy_targets",
    "sampled_policy_distillation_loss",
    "zero_policy_targets",
]


@chex.dataclass(frozen=True)
class PolicyTarget:
    """(Possibly sampled) policy targets.

    Attributes:
      actions: the target actions [N, ...]; they need not cover all actions.
      weights: one weight per action, shaped like `distribution.log_prob(actions)`.
    """

    actions: chex.Array
    weights: chex.Array


def constant_policy_targets(
    distribution: Any, rng_key: chex.PRNGKey, num_samples: int, weights_scale: float = 1.0
) -> PolicyTarget:
    """Samples `num_samples` actions from `distribution`, all with the weight `weights_scale`.

    Distilling the targets of a uniform distribution pushes a policy towards uniform, with a
    strength set by `weights_scale` (0 makes the distillation loss 0 for every policy).

    Args:
      distribution: a distrax or TFP distribution to sample actions from.
      rng_key: PRNG key.
      num_samples: number of sampled actions N.
      weights_scale: the constant weight.

    Returns:
      A `PolicyTarget` with actions [N, *batch, *event] and weights [N, *batch].
    """
    actions = distribution.sample(seed=rng_key, sample_shape=(num_samples,))
    weights = weights_scale * jnp.ones((num_samples,) + tuple(distribution.batch_shape))
    return PolicyTarget(actions=actions, weights=weights)


zero_policy_targets = functools.partial(constant_policy_targets, weights_scale=0.0)
zero_policy_targets.__doc__ = (
    "`constant_policy_targets` with `weights_scale=0`: targets that contribute no loss."
)


def sampled_policy_distillation_loss(
    distribution: Any, policy_targets: PolicyTarget, stop_target_gradients: bool = True
) -> chex.Numeric:
    """Sampled cross-entropy from policy targets: `-mean(weights * log pi(actions))`.

    The mean runs over the N samples, any batch axes and, for vector actions whose
    `log_prob` is per dimension, the action dimensions. A log-probability of -inf is replaced
    by the smallest finite float so that a zero weight gives 0, not NaN. Works for discrete and
    continuous actions.

    Args:
      distribution: the predicted distrax or TFP distribution.
      policy_targets: the targets to learn from.
      stop_target_gradients: whether to stop gradients into the targets' weights and actions.

    Returns:
      Scalar loss.
    """
    weights = maybe_stop_gradient(policy_targets.weights, stop_target_gradients)
    actions = maybe_stop_gradient(policy_targets.actions, stop_target_gradients)
    log_probs = distribution.log_prob(actions)
    check_args(
        "sampled_policy_distillation_loss",
        {"policy_targets.weights": weights, "log_prob(actions)": log_probs},
        same_shape=["policy_targets.weights", "log_prob(actions)"],
    )
    floor = jnp.finfo(log_probs.dtype).min
    return -jnp.mean(weights * jnp.maximum(log_probs, floor))
