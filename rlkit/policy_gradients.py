"""Policy-gradient losses for discrete (softmax) and continuous (deterministic) policies.

Each function takes one unbatched trajectory (time on the leading axis; vmap over a batch) and
returns a loss whose gradient is the policy-gradient update. Names, argument order, defaults and
semantics follow rlax 0.1.9. ``use_stop_gradient=True`` (the default everywhere here) keeps the
gradient away from advantages and action values, so only the policy is pushed. The flag has this
name here and ``stop_target_gradients`` in value learning, V-trace and the distributional losses;
both names are rlax's, kept for parity.

Two rlax quirks are kept for parity: in `qpg_loss` and `rm_loss` the action values ``q_t`` are
always stopped (the flag only controls the advantage), and `dpg_loss` returns one loss per action
dimension rather than a scalar.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlkit.base import maybe_stop_gradient
from rlkit.errors import RLKitError, check
from rlkit.losses import l2_loss

__all__ = [
    "clipped_surrogate_pg_loss",
    "dpg_loss",
    "entropy_loss",
    "policy_gradient_loss",
    "qpg_loss",
    "rm_loss",
    "rpg_loss",
]

Array = chex.Array
Scalar = chex.Scalar


def _check_leading(name: str, x: Array, other_name: str, other: Array) -> None:
    """Raises unless ``x`` and ``other`` have the same length on axis 0."""
    if x.shape[0] != other.shape[0]:
        raise RLKitError(
            f"{name} has length {x.shape[0]} on axis 0 but {other_name} has length "
            f"{other.shape[0]}; expected equal lengths"
        )


def _log_prob_of_actions(logits_t: Array, a_t: Array) -> Array:
    """log softmax(logits_t)[t, a_t[t]]; -inf for an action outside [0, A), as in distrax."""
    num_actions = logits_t.shape[-1]
    log_probs = jax.nn.log_softmax(logits_t, axis=-1)
    picked = jnp.take_along_axis(log_probs, a_t[:, None], axis=-1, mode="clip")[:, 0]
    outside = jnp.logical_or(a_t < 0, a_t >= num_actions)
    return jnp.where(outside, -jnp.inf, picked)


def policy_gradient_loss(
    logits_t: Array,
    a_t: Array,
    adv_t: Array,
    w_t: Array,
    use_stop_gradient: bool = True,
) -> Array:
    """REINFORCE / actor-critic policy-gradient loss for a softmax policy.

    See "Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement
    Learning" by Williams (1992), https://doi.org/10.1007/BF00992696.

        L = mean_t [ -log pi(a_t | s_t) * A_t * w_t ],   pi = softmax(logits_t)

    Args:
      logits_t: unnormalised action preferences, [T, A].
      a_t: actions taken, int [T].
      adv_t: advantages (or returns) of those actions, [T].
      w_t: per-step weights, [T].
      use_stop_gradient: whether to stop the gradient flowing into ``adv_t``.

    Returns:
      The scalar loss.
    """
    check(
        "policy_gradient_loss",
        chex.assert_rank,
        {"logits_t": logits_t, "a_t": a_t, "adv_t": adv_t, "w_t": w_t},
        [2, 1, 1, 1],
    )
    check(
        "policy_gradient_loss",
        chex.assert_type,
        {"logits_t": logits_t, "a_t": a_t, "adv_t": adv_t, "w_t": w_t},
        [float, int, float, float],
    )
    check("policy_gradient_loss", chex.assert_equal_shape, {"a_t": a_t, "adv_t": adv_t, "w_t": w_t})
    _check_leading("logits_t", logits_t, "a_t", a_t)

    log_pi_a_t = _log_prob_of_actions(logits_t, a_t)
    adv_t = maybe_stop_gradient(adv_t, use_stop_gradient)
    return jnp.mean(-log_pi_a_t * adv_t * w_t)


def entropy_loss(logits_t: Array, w_t: Array) -> Array:
    """Negative weighted entropy of a softmax policy, a bonus that keeps the policy exploring.

    See "Function Optimization using Connectionist Reinforcement Learning Algorithms" by Williams
    and Peng (1991), https://doi.org/10.1080/09540099108946587.

        L = -mean_t [ w_t * H(pi_t) ],   H(pi) = -sum_a pi(a) log pi(a)

    Args:
      logits_t: unnormalised action preferences, [T, A].
      w_t: per-step weights, [T].

    Returns:
      The scalar loss.
    """
    check("entropy_loss", chex.assert_rank, {"logits_t": logits_t, "w_t": w_t}, [2, 1])
    check("entropy_loss", chex.assert_type, {"logits_t": logits_t, "w_t": w_t}, float)
    _check_leading("logits_t", logits_t, "w_t", w_t)

    log_pi = jax.nn.log_softmax(logits_t, axis=-1)
    pi = jnp.exp(log_pi)
    # 0 * log 0 counts as 0, also when a logit is -inf.
    entropy_t = -jnp.sum(pi * jnp.where(pi == 0, 0.0, log_pi), axis=-1)
    return -jnp.mean(entropy_t * w_t)


def clipped_surrogate_pg_loss(
    prob_ratios_t: Array,
    adv_t: Array,
    epsilon: Scalar,
    use_stop_gradient: bool = True,
) -> Array:
    """PPO's clipped surrogate objective, as a loss.

    See "Proximal Policy Optimization Algorithms" by Schulman et al.
    (https://arxiv.org/abs/1707.06347). With r_t = pi(a_t|s_t) / pi_old(a_t|s_t):

        L = -mean_t [ min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) ]

    The minimum ignores NaNs (``jnp.fmin``), as in rlax.

    Args:
      prob_ratios_t: probability ratios r_t of the taken actions, [T].
      adv_t: advantages of those actions, [T].
      epsilon: the clipping half-width.
      use_stop_gradient: whether to stop the gradient flowing into ``adv_t``.

    Returns:
      The scalar loss.
    """
    check(
        "clipped_surrogate_pg_loss",
        chex.assert_rank,
        {"prob_ratios_t": prob_ratios_t, "adv_t": adv_t},
        [1, 1],
    )
    check(
        "clipped_surrogate_pg_loss",
        chex.assert_type,
        {"prob_ratios_t": prob_ratios_t, "adv_t": adv_t},
        [float, float],
    )
    check(
        "clipped_surrogate_pg_loss",
        chex.assert_equal_shape,
        {"prob_ratios_t": prob_ratios_t, "adv_t": adv_t},
    )

    adv_t = maybe_stop_gradient(adv_t, use_stop_gradient)
    clipped_ratios_t = jnp.clip(prob_ratios_t, 1.0 - epsilon, 1.0 + epsilon)
    objective_t = jnp.fmin(prob_ratios_t * adv_t, clipped_ratios_t * adv_t)
    return -jnp.mean(objective_t)


def _clip_by_l2_norm(x: Array, max_norm: Scalar) -> Array:
    """Rescales ``x`` so that its L2 norm is at most ``max_norm``, with finite gradients at 0."""
    sum_sq = jnp.sum(x * x)
    nonzero = sum_sq > 0
    # Double `where`: never take sqrt(0), whose derivative is infinite and would leak NaNs into
    # the backward pass even from the branch that is not selected.
    safe_sum_sq = jnp.where(nonzero, sum_sq, jnp.ones_like(sum_sq))
    norm = jnp.where(nonzero, jnp.sqrt(safe_sum_sq), sum_sq)
    return (x * max_norm) / jnp.maximum(norm, max_norm)


def dpg_loss(
    a_t: Array,
    dqda_t: Array,
    dqda_clipping: Scalar | None = None,
    use_stop_gradient: bool = True,
) -> Array:
    """Deterministic policy gradient (DPG) loss for one time step.

    See "Deterministic Policy Gradient Algorithms" by Silver et al.
    (http://proceedings.mlr.press/v32/silver14.pdf). The loss regresses the action towards
    the stopped target ``a_t + dQ/da``, so its gradient with respect to the action is ``-dQ/da``:

        L = 0.5 * (sg(a_t + dQ/da) - a_t)^2     (element-wise)

    Args:
      a_t: the continuous action, [D].
      dqda_t: gradient of Q(s, a) with respect to the action at ``a_t``, [D].
      dqda_clipping: if given, ``dqda_t`` is rescaled to an L2 norm of at most this value.
      use_stop_gradient: whether to stop the gradient flowing into the target.

    Returns:
      The loss per action dimension, [D] (as in rlax; sum or mean it yourself).
    """
    check("dpg_loss", chex.assert_rank, {"a_t": a_t, "dqda_t": dqda_t}, 1)
    check("dpg_loss", chex.assert_type, {"a_t": a_t, "dqda_t": dqda_t}, float)
    check("dpg_loss", chex.assert_equal_shape, {"a_t": a_t, "dqda_t": dqda_t})

    if dqda_clipping is not None:
        dqda_t = _clip_by_l2_norm(dqda_t, dqda_clipping)
    target_tm1 = maybe_stop_gradient(dqda_t + a_t, use_stop_gradient)
    return l2_loss(target_tm1 - a_t)


def _advantages(
    logits_t: Array, q_t: Array, use_stop_gradient: bool | Array = True
) -> tuple[Array, Array]:
    """Softmax policy and per-action advantages q_t - sum_a pi q_t, both [T, A]."""
    policy_t = jax.nn.softmax(logits_t, axis=1)
    q_t = maybe_stop_gradient(q_t, use_stop_gradient)
    baseline_t = jnp.sum(policy_t * q_t, axis=1)
    return policy_t, q_t - baseline_t[:, None]


def _check_logits_and_q(logits_t: Array, q_t: Array) -> None:
    check("rlkit.policy_gradients", chex.assert_rank, {"logits_t": logits_t, "q_t": q_t}, 2)
    check("rlkit.policy_gradients", chex.assert_type, {"logits_t": logits_t, "q_t": q_t}, float)
    check("rlkit.policy_gradients", chex.assert_equal_shape, {"logits_t": logits_t, "q_t": q_t})


def qpg_loss(logits_t: Array, q_t: Array, use_stop_gradient: bool = True) -> Array:
    """Q-based policy gradient (QPG) loss, an all-actions policy gradient with a baseline.

    See "Actor-Critic Policy Optimization in Partially Observable Multiagent Environments" by
    Srinivasan, Lanctot et al. (https://arxiv.org/abs/1810.09026).

        L = -mean_t sum_a pi(a|s_t) [q_t(a) - sum_b pi(b|s_t) q_t(b)]

    ``q_t`` itself is always stopped (as in rlax); ``use_stop_gradient`` stops the advantage.

    Args:
      logits_t: unnormalised action preferences, [T, A].
      q_t: action values, [T, A].
      use_stop_gradient: whether to stop the gradient flowing through the advantages.

    Returns:
      The scalar loss.
    """
    _check_logits_and_q(logits_t, q_t)
    policy_t, adv_t = _advantages(logits_t, q_t)
    adv_t = maybe_stop_gradient(adv_t, use_stop_gradient)
    return jnp.mean(jnp.sum(-policy_t * adv_t, axis=1), axis=0)


def rm_loss(logits_t: Array, q_t: Array, use_stop_gradient: bool = True) -> Array:
    """Regret-matching policy gradient (RMPG) loss: QPG with the advantages thresholded at 0.

    See "Actor-Critic Policy Optimization in Partially Observable Multiagent Environments" by
    Srinivasan, Lanctot et al. (https://arxiv.org/abs/1810.09026).

        L = -mean_t sum_a pi(a|s_t) max(0, q_t(a) - sum_b pi(b|s_t) q_t(b))

    ``q_t`` itself is always stopped (as in rlax); ``use_stop_gradient`` stops the regrets.

    Args:
      logits_t: unnormalised action preferences, [T, A].
      q_t: action values, [T, A].
      use_stop_gradient: whether to stop the gradient flowing through the regrets.

    Returns:
      The scalar loss.
    """
    _check_logits_and_q(logits_t, q_t)
    policy_t, adv_t = _advantages(logits_t, q_t)
    regret_t = maybe_stop_gradient(jax.nn.relu(adv_t), use_stop_gradient)
    return jnp.mean(jnp.sum(-policy_t * regret_t, axis=1), axis=0)


def rpg_loss(logits_t: Array, q_t: Array, use_stop_gradient: bool = True) -> Array:
    """Regret policy gradient (RPG) loss: the total positive regret of the policy.

    See "Actor-Critic Policy Optimization in Partially Observable Multiagent Environments" by
    Srinivasan, Lanctot et al. (https://arxiv.org/abs/1810.09026).

        L = mean_t sum_a max(0, q_t(a) - sum_b pi(b|s_t) q_t(b))

    Args:
      logits_t: unnormalised action preferences, [T, A].
      q_t: action values, [T, A].
      use_stop_gradient: whether to stop the gradient flowing into ``q_t``.

    Returns:
      The scalar loss.
    """
    _check_logits_and_q(logits_t, q_t)
    _, adv_t = _advantages(logits_t, q_t, use_stop_gradient)
    return jnp.mean(jnp.sum(jax.nn.relu(adv_t), axis=1), axis=0)
