"""Action distributions as plain functions, plus divergences between distributions.

rlax builds policies with factories (`rlax.epsilon_greedy(eps).probs(q)`) that return closures
over distrax objects. rlkit instead gives one plain, jittable function per (distribution,
operation), unbatched like every rlkit primitive (vmap for a batch), keys first:

Discrete actions, from one vector of preferences `q` [A] (Q-values or logits), `a` a scalar int
action, `eps` the exploration rate, `t` the temperature:

| op       | greedy                | epsilon-greedy                     | softmax                  |
|----------|-----------------------|------------------------------------|--------------------------|
| probs    | greedy_probs(q)       | epsilon_greedy_probs(q, eps)       | softmax_probs(q, t)      |
| sample   | greedy_action(q)      | epsilon_greedy_sample(key, q, eps) | softmax_sample(key, q, t)|
| log-prob | greedy_log_prob(q, a) | epsilon_greedy_log_prob(q, a, eps) | softmax_log_prob(q, a, t)|
| entropy  | greedy_entropy(q)     | epsilon_greedy_entropy(q, eps)     | softmax_entropy(q, t)    |

Continuous actions, from `mean` and `log_std` [D] (independent dimensions), `a` an action [D]:

| operation | diagonal Gaussian                        | tanh-squashed Gaussian (SAC)             |
|-----------|------------------------------------------|------------------------------------------|
| sample    | diag_gaussian_sample(key, mean, log_std) | tanh_gaussian_sample(key, mean, log_std) |
|           |                                          |   returns (action, pre_tanh)             |
| log-prob  | diag_gaussian_log_prob(mean, log_std, a) | tanh_gaussian_log_prob(mean, log_std,    |
|           |                                          |   action=None, pre_tanh=None)            |
| entropy   | diag_gaussian_entropy(log_std), exact    | tanh_gaussian_entropy_estimate(key,      |
|           |                                          |   mean, log_std, num_samples): Monte     |
|           |                                          |   Carlo, as no closed form exists        |

`rescale_action(action, low, high)` maps a squashed action from [-1, 1] onto a Box's bounds.

Divergences, with rlax 0.1.9's names and arguments: `categorical_cross_entropy` (one
distribution per call, rank-1 inputs; vmap it for a batch), `categorical_kl_divergence` and
`multivariate_normal_kl_divergence` (any leading batch axes, as in rlax).

rlax's distribution factories (`softmax`, `clipped_entropy_softmax`, `greedy`, `epsilon_greedy`,
`gaussian_diagonal`, `squashed_gaussian`) and `categorical_sample` are at the end of this module:
a compatibility layer over the plain functions so that ported code runs unchanged
(`rlkit.epsilon_greedy(eps).sample(key, q)`). The plain functions are the documented way for new
code.

Ties: like rlax (distrax `Greedy` / `EpsilonGreedy`), `greedy_probs` and `epsilon_greedy_probs`
share the greedy mass uniformly among all tied maxima, and the epsilon-greedy sampler and
log-probability follow those probabilities. `greedy_action` is a deterministic argmax and
returns the *first* maximal index, so with ties `greedy_log_prob(q, greedy_action(q))` is
`-log(number of ties)`, not 0; rlax's `greedy().sample` (and so `rlkit.greedy().sample`)
breaks ties at random instead.

Masking: a logit of `-inf` gives the action probability 0 in the softmax functions; the entropy
and divergences treat `0 * log 0` as 0.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import RLKitError, check

__all__ = [
    "ContinuousDistribution",
    "DiscreteDistribution",
    "categorical_cross_entropy",
    "categorical_kl_divergence",
    "categorical_sample",
    "clipped_entropy_softmax",
    "diag_gaussian_entropy",
    "diag_gaussian_log_prob",
    "diag_gaussian_sample",
    "epsilon_greedy",
    "epsilon_greedy_entropy",
    "epsilon_greedy_log_prob",
    "epsilon_greedy_probs",
    "epsilon_greedy_sample",
    "gaussian_diagonal",
    "greedy",
    "greedy_action",
    "greedy_entropy",
    "greedy_log_prob",
    "greedy_probs",
    "multivariate_normal_kl_divergence",
    "rescale_action",
    "softmax",
    "softmax_entropy",
    "softmax_log_prob",
    "softmax_probs",
    "softmax_sample",
    "squashed_gaussian",
    "tanh_gaussian_entropy_estimate",
    "tanh_gaussian_log_prob",
    "tanh_gaussian_sample",
]

Array = chex.Array
Numeric = chex.Numeric

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def _plogp(probs: Array, log_probs: Array) -> Array:
    """`probs * log_probs` with the convention `0 * log 0 = 0` (also for `log_probs = -inf`)."""
    return jnp.where(probs > 0, probs * log_probs, 0.0)


def _check_scalar(value: Numeric, name: str) -> None:
    if jnp.ndim(value) != 0:
        raise RLKitError(f"{name} must be a scalar, got shape {jnp.shape(value)}")


# ---------------------------------------------------------------------------------------------
# Divergences.
# ---------------------------------------------------------------------------------------------


def categorical_cross_entropy(labels: Array, logits: Array) -> Array:
    """Cross entropy `H(p, q) = -sum_a p(a) log softmax(logits)(a)`.

    See "Deep Learning" by Goodfellow et al., ch. 3 (http://www.deeplearningbook.org).

    Args:
      labels: target probabilities p [A] (non-negative, summing to 1).
      logits: unnormalised log-probabilities of q [A].

    Returns:
      Scalar cross entropy.
    """
    check("categorical_cross_entropy", chex.assert_rank, {"labels": labels, "logits": logits}, 1)
    check(
        "categorical_cross_entropy", chex.assert_type, {"labels": labels, "logits": logits}, float
    )
    check(
        "categorical_cross_entropy", chex.assert_equal_shape, {"labels": labels, "logits": logits}
    )
    return -jnp.sum(_plogp(labels, jax.nn.log_softmax(logits)))


def categorical_kl_divergence(p_logits: Array, q_logits: Array, temperature: float = 1.0) -> Array:
    """`KL(p || q) = sum_a p(a) (log p(a) - log q(a))` for p = softmax(p_logits / temperature).

    Like rlax's, it accepts any number of leading batch axes (the action axis is the last).

    Args:
      p_logits: logits of p [..., A].
      q_logits: logits of q [..., A].
      temperature: softmax temperature applied to both.

    Returns:
      KL divergence (>= 0) [...], a scalar for rank-1 inputs.
    """
    check(
        "categorical_kl_divergence",
        chex.assert_rank,
        {"p_logits": p_logits},
        {1, 2, 3, 4, 5, 6, 7, 8},
    )
    check(
        "categorical_kl_divergence",
        chex.assert_type,
        {"p_logits": p_logits, "q_logits": q_logits},
        float,
    )
    check(
        "categorical_kl_divergence",
        chex.assert_equal_shape,
        {"p_logits": p_logits, "q_logits": q_logits},
    )
    log_p = jax.nn.log_softmax(p_logits / temperature, axis=-1)
    log_q = jax.nn.log_softmax(q_logits / temperature, axis=-1)
    p = jnp.exp(log_p)
    return jnp.sum(jnp.where(p > 0, p * (log_p - log_q), 0.0), axis=-1)


def multivariate_normal_kl_divergence(
    mu_0: Array, sigma_0: Numeric, mu_1: Array, sigma_1: Numeric
) -> Array:
    """KL divergence between two Gaussians with diagonal covariance.

    `KL(N0 || N1) = sum_d [ log(s1_d / s0_d) + (s0_d^2 + (m0_d - m1_d)^2) / (2 s1_d^2) - 1/2 ]`.
    Like rlax's, it accepts leading batch axes: the last axis is the event dimension D.

    Args:
      mu_0: means of N0 [..., D].
      sigma_0: standard deviations of N0, broadcastable to `mu_0` (e.g. [..., D] or scalar).
      mu_1: means of N1 [..., D].
      sigma_1: standard deviations of N1, broadcastable to `mu_0`.

    Returns:
      KL divergence [...], a scalar for rank-1 means.
    """
    check(
        "multivariate_normal_kl_divergence",
        chex.assert_rank,
        {"mu_0": mu_0},
        {1, 2, 3, 4, 5, 6, 7, 8},
    )
    check(
        "multivariate_normal_kl_divergence", chex.assert_type, {"mu_0": mu_0, "mu_1": mu_1}, float
    )
    check(
        "multivariate_normal_kl_divergence", chex.assert_equal_shape, {"mu_0": mu_0, "mu_1": mu_1}
    )
    for name, sigma in (("sigma_0", sigma_0), ("sigma_1", sigma_1)):
        if jnp.ndim(sigma) > jnp.ndim(mu_0):
            raise RLKitError(
                f"{name} has rank {jnp.ndim(sigma)}; expected at most the rank of mu_0 "
                f"({jnp.ndim(mu_0)})"
            )
    sigma_0 = jnp.broadcast_to(sigma_0, mu_0.shape)
    sigma_1 = jnp.broadcast_to(sigma_1, mu_0.shape)
    var_ratio = jnp.square(sigma_0 / sigma_1)
    mean_term = jnp.square((mu_0 - mu_1) / sigma_1)
    return 0.5 * jnp.sum(var_ratio + mean_term - 1.0 - jnp.log(var_ratio), axis=-1)


# ---------------------------------------------------------------------------------------------
# Discrete policies.
# ---------------------------------------------------------------------------------------------


def greedy_probs(q_values: Array) -> Array:
    """Greedy policy probabilities, uniform over the tied maxima.

    `pi(a) = 1[q(a) = max q] / #{a': q(a') = max q}` (as rlax / distrax `Greedy`).

    Args:
      q_values: action values [A].

    Returns:
      Probabilities [A].
    """
    check("greedy_probs", chex.assert_rank, {"q_values": q_values}, 1)
    check("greedy_probs", chex.assert_type, {"q_values": q_values}, float)
    is_max = (q_values == jnp.max(q_values)).astype(q_values.dtype)
    return is_max / jnp.sum(is_max)


def greedy_action(q_values: Array) -> Array:
    """Deterministic greedy action: the first index of the maximum.

    Args:
      q_values: action values [A].

    Returns:
      Scalar int32 action.
    """
    check("greedy_action", chex.assert_rank, {"q_values": q_values}, 1)
    check("greedy_action", chex.assert_type, {"q_values": q_values}, float)
    return jnp.argmax(q_values).astype(jnp.int32)


def greedy_log_prob(q_values: Array, action: Array) -> Array:
    """Log-probability of `action` under `greedy_probs` (`-inf` for non-greedy actions).

    Args:
      q_values: action values [A].
      action: scalar int action.

    Returns:
      Scalar log-probability.
    """
    check("greedy_log_prob", chex.assert_rank, {"q_values": q_values, "action": action}, [1, 0])
    check(
        "greedy_log_prob", chex.assert_type, {"q_values": q_values, "action": action}, [float, int]
    )
    return jnp.log(greedy_probs(q_values)[action])


def greedy_entropy(q_values: Array) -> Array:
    """Entropy of `greedy_probs`: 0, or `log(k)` with k tied maxima.

    Args:
      q_values: action values [A].

    Returns:
      Scalar entropy (nats).
    """
    probs = greedy_probs(q_values)
    return -jnp.sum(_plogp(probs, jnp.log(probs)))


def epsilon_greedy_probs(q_values: Array, epsilon: Numeric) -> Array:
    """Epsilon-greedy probabilities `pi(a) = (1 - eps) greedy_probs(q)(a) + eps / A`.

    See "Reinforcement Learning: An Introduction" by Sutton and Barto, sec. 2.2, and
    "Human-level control through deep reinforcement learning" by Mnih et al. (2015).

    Args:
      q_values: action values [A].
      epsilon: scalar exploration rate in [0, 1] (a Python float or a traced scalar, so a
        schedule can be jitted).

    Returns:
      Probabilities [A].
    """
    _check_scalar(epsilon, "epsilon")
    probs = greedy_probs(q_values)
    return (1.0 - epsilon) * probs + epsilon / probs.shape[0]


def epsilon_greedy_sample(key: Array, q_values: Array, epsilon: Numeric) -> Array:
    """Samples from `epsilon_greedy_probs`; the same draw as rlax for the same key.

    Args:
      key: PRNG key.
      q_values: action values [A].
      epsilon: scalar exploration rate.

    Returns:
      Scalar int32 action.
    """
    probs = epsilon_greedy_probs(q_values, epsilon)
    return jax.random.categorical(key, jnp.log(probs)).astype(jnp.int32)


def epsilon_greedy_log_prob(q_values: Array, action: Array, epsilon: Numeric) -> Array:
    """Log-probability of `action` under `epsilon_greedy_probs`.

    Args:
      q_values: action values [A].
      action: scalar int action.
      epsilon: scalar exploration rate.

    Returns:
      Scalar log-probability.
    """
    check("epsilon_greedy_log_prob", chex.assert_rank, {"action": action}, 0)
    check("epsilon_greedy_log_prob", chex.assert_type, {"action": action}, int)
    return jnp.log(epsilon_greedy_probs(q_values, epsilon)[action])


def epsilon_greedy_entropy(q_values: Array, epsilon: Numeric) -> Array:
    """Entropy of `epsilon_greedy_probs`.

    Args:
      q_values: action values [A].
      epsilon: scalar exploration rate.

    Returns:
      Scalar entropy (nats).
    """
    probs = epsilon_greedy_probs(q_values, epsilon)
    return -jnp.sum(_plogp(probs, jnp.log(probs)))


def _softmax_log_probs(logits: Array, temperature: Numeric) -> Array:
    check("rlkit.distributions", chex.assert_rank, {"logits": logits}, 1)
    check("rlkit.distributions", chex.assert_type, {"logits": logits}, float)
    _check_scalar(temperature, "temperature")
    return jax.nn.log_softmax(logits / temperature)


def softmax_probs(logits: Array, temperature: Numeric = 1.0) -> Array:
    """Boltzmann policy `pi(a) = exp(l(a) / tau) / sum_b exp(l(b) / tau)`.

    Args:
      logits: preferences [A]; `-inf` masks an action out.
      temperature: tau > 0; lower is greedier.

    Returns:
      Probabilities [A].
    """
    return jnp.exp(_softmax_log_probs(logits, temperature))


def softmax_sample(key: Array, logits: Array, temperature: Numeric = 1.0) -> Array:
    """Samples from `softmax_probs` (Gumbel-max); the same draw as rlax for the same key.

    Args:
      key: PRNG key.
      logits: preferences [A].
      temperature: tau > 0.

    Returns:
      Scalar int32 action.
    """
    log_probs = _softmax_log_probs(logits, temperature)
    return jax.random.categorical(key, log_probs).astype(jnp.int32)


def softmax_log_prob(logits: Array, action: Array, temperature: Numeric = 1.0) -> Array:
    """Log-probability `log_softmax(logits / tau)[action]`.

    Args:
      logits: preferences [A].
      action: scalar int action.
      temperature: tau > 0.

    Returns:
      Scalar log-probability.
    """
    check("softmax_log_prob", chex.assert_rank, {"action": action}, 0)
    check("softmax_log_prob", chex.assert_type, {"action": action}, int)
    return _softmax_log_probs(logits, temperature)[action]


def softmax_entropy(logits: Array, temperature: Numeric = 1.0) -> Array:
    """Entropy `-sum_a pi(a) log pi(a)` of `softmax_probs`.

    Args:
      logits: preferences [A].
      temperature: tau > 0.

    Returns:
      Scalar entropy (nats).
    """
    log_probs = _softmax_log_probs(logits, temperature)
    return -jnp.sum(_plogp(jnp.exp(log_probs), log_probs))


# ---------------------------------------------------------------------------------------------
# Continuous policies.
# ---------------------------------------------------------------------------------------------


def _check_gaussian(mean: Array, log_std: Array) -> None:
    check("rlkit.distributions", chex.assert_rank, {"mean": mean, "log_std": log_std}, 1)
    check("rlkit.distributions", chex.assert_type, {"mean": mean, "log_std": log_std}, float)
    check("rlkit.distributions", chex.assert_equal_shape, {"mean": mean, "log_std": log_std})


def diag_gaussian_sample(key: Array, mean: Array, log_std: Array) -> Array:
    """Samples `a = mean + exp(log_std) * z` with `z ~ N(0, I)`.

    Reparameterised, so gradients flow to `mean` and `log_std`.

    Args:
      key: PRNG key.
      mean: means [D].
      log_std: log standard deviations [D].

    Returns:
      Action [D].
    """
    _check_gaussian(mean, log_std)
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(log_std) * noise


def diag_gaussian_log_prob(mean: Array, log_std: Array, action: Array) -> Array:
    """Log-density of a diagonal Gaussian, summed over dimensions.

    `log p(a) = -sum_d [ (a_d - m_d)^2 / (2 s_d^2) + log s_d + log(2 pi) / 2 ]`.

    Args:
      mean: means [D].
      log_std: log standard deviations [D].
      action: action [D].

    Returns:
      Scalar log-density.
    """
    _check_gaussian(mean, log_std)
    check("diag_gaussian_log_prob", chex.assert_equal_shape, {"mean": mean, "action": action})
    check("diag_gaussian_log_prob", chex.assert_type, {"action": action}, float)
    z = (action - mean) * jnp.exp(-log_std)
    return -jnp.sum(0.5 * jnp.square(z) + log_std + _HALF_LOG_2PI)


def diag_gaussian_entropy(log_std: Array) -> Array:
    """Exact entropy `sum_d [ log s_d + (1 + log(2 pi)) / 2 ]` of a diagonal Gaussian.

    Args:
      log_std: log standard deviations [D].

    Returns:
      Scalar entropy (nats).
    """
    check("diag_gaussian_entropy", chex.assert_rank, {"log_std": log_std}, 1)
    check("diag_gaussian_entropy", chex.assert_type, {"log_std": log_std}, float)
    return jnp.sum(log_std + 0.5 + _HALF_LOG_2PI)


def _log_tanh_jacobian(pre_tanh: Array) -> Array:
    """`log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`, finite for every u."""
    return 2.0 * (_LOG_2 - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))


def tanh_gaussian_sample(key: Array, mean: Array, log_std: Array) -> tuple[Array, Array]:
    """Samples a tanh-squashed Gaussian action, as in SAC.

    See "Soft Actor-Critic" by Haarnoja et al. (https://arxiv.org/abs/1801.01290), App. C:
    `u = mean + exp(log_std) * z`, `a = tanh(u)`.

    Args:
      key: PRNG key.
      mean: pre-squash means [D].
      log_std: pre-squash log standard deviations [D].

    Returns:
      `(action, pre_tanh)`: the action in (-1, 1) [D] and `u` [D]. Keep `pre_tanh` for
      `tanh_gaussian_log_prob`; recovering it from the action loses precision near +-1.
    """
    pre_tanh = diag_gaussian_sample(key, mean, log_std)
    return jnp.tanh(pre_tanh), pre_tanh


def tanh_gaussian_log_prob(
    mean: Array,
    log_std: Array,
    action: Array | None = None,
    pre_tanh: Array | None = None,
) -> Array:
    """Log-density of a tanh-squashed diagonal Gaussian (change of variables).

    `log pi(a) = log N(u; mean, s) - sum_d log(1 - tanh(u_d)^2)`, with the correction computed as
    `2 (log 2 - u - softplus(-2u))` (Haarnoja et al., 2018, https://arxiv.org/abs/1801.01290).

    Args:
      mean: pre-squash means [D].
      log_std: pre-squash log standard deviations [D].
      action: squashed action in (-1, 1) [D]; used only when `pre_tanh` is None, through
        `u = arctanh(clip(action, -1 + 1e-6, 1 - 1e-6))`.
      pre_tanh: the pre-squash sample `u` [D] (preferred: exact).

    Returns:
      Scalar log-density of the squashed action.

    Raises:
      RLKitError: if neither `action` nor `pre_tanh` is given.
    """
    if pre_tanh is None:
        if action is None:
            raise RLKitError("tanh_gaussian_log_prob needs action or pre_tanh, got neither")
        check("tanh_gaussian_log_prob", chex.assert_type, {"action": action}, float)
        bound = 1.0 - 1e-6
        pre_tanh = jnp.arctanh(jnp.clip(action, -bound, bound))
    return diag_gaussian_log_prob(mean, log_std, pre_tanh) - jnp.sum(_log_tanh_jacobian(pre_tanh))


def tanh_gaussian_entropy_estimate(
    key: Array, mean: Array, log_std: Array, num_samples: int = 1
) -> Array:
    """Unbiased Monte-Carlo estimate of the entropy of a tanh-squashed Gaussian.

    There is no closed form. With `u ~ N(mean, s)` and `a = tanh(u)`,
    `H[a] = H[u] + E[ sum_d log(1 - tanh(u_d)^2) ]`; the Gaussian part is exact and only the
    Jacobian term is averaged over `num_samples` reparameterised samples (lower variance than
    averaging `-log pi(a)`). SAC usually uses the single-sample `-log pi(a)` instead.

    Args:
      key: PRNG key.
      mean: pre-squash means [D].
      log_std: pre-squash log standard deviations [D].
      num_samples: number of samples (static).

    Returns:
      Scalar entropy estimate (nats); differentiable in `mean` and `log_std`.
    """
    _check_gaussian(mean, log_std)
    noise = jax.random.normal(key, (num_samples,) + mean.shape, mean.dtype)
    pre_tanh = jnp.expand_dims(mean, 0) + jnp.expand_dims(jnp.exp(log_std), 0) * noise
    jacobian = jnp.mean(jnp.sum(_log_tanh_jacobian(pre_tanh), axis=-1))
    return diag_gaussian_entropy(log_std) + jacobian


def rescale_action(action: Array, low: Numeric, high: Numeric) -> Array:
    """Maps an action from [-1, 1] onto [low, high]: `low + (action + 1) (high - low) / 2`.

    Args:
      action: action in [-1, 1], shape [D] (e.g. from `tanh_gaussian_sample`).
      low: lower bounds, [D] or scalar.
      high: upper bounds, [D] or scalar.

    Returns:
      Action in [low, high], shape [D].
    """
    check("rescale_action", chex.assert_rank, {"action": action}, 1)
    check("rescale_action", chex.assert_type, {"action": action}, float)
    check("rescale_action", chex.assert_rank, {"low": low, "high": high}, {0, 1})
    low = jnp.broadcast_to(jnp.asarray(low, action.dtype), action.shape)
    high = jnp.broadcast_to(jnp.asarray(high, action.dtype), action.shape)
    return low + 0.5 * (action + 1.0) * (high - low)


# ---------------------------------------------------------------------------------------------
# rlax-compatible distribution factories.
#
# rlax 0.1.9 builds a distribution as a named tuple of closures (`rlax.softmax(t).probs(l)`).
# The plain functions above are the documented way for new code; the factories below exist so
# that code ported from rlax runs unchanged. They are thin layers over the plain functions,
# which they apply over any number of leading batch axes (as rlax does), and they keep rlax's
# (distrax's) conventions where those differ from the plain functions:
#   * `greedy().sample` breaks ties at random (distrax `Greedy`), whereas `greedy_action` takes
#     the first maximum;
#   * a sample draws the whole batch from one key with one call of `jax.random.categorical`
#     (or `jax.random.normal`), so it is the same draw as rlax's for the same key;
#   * an action outside [0, A) has log-probability -inf, and `categorical_sample` returns -1
#     for probabilities that are not a distribution (negative, non-finite or all zero).
# ---------------------------------------------------------------------------------------------


class DiscreteDistribution(NamedTuple):
    """rlax's discrete distribution: a named tuple of functions (see the factories)."""

    sample: Callable[..., Array]
    probs: Callable[..., Array]
    logprob: Callable[..., Array]
    entropy: Callable[..., Array]
    kl: Callable[..., Array] | None


class ContinuousDistribution(NamedTuple):
    """rlax's continuous distribution: a named tuple of functions (see the factories)."""

    sample: Callable[..., Array]
    prob: Callable[..., Array]
    logprob: Callable[..., Array]
    entropy: Callable[..., Array]
    kl_to_standard_normal: Callable[..., Array]
    kl: Callable[..., Array]


def _draw_categorical(key: Array, probs: Array) -> Array:
    """One draw per row of `probs` [..., A] from one key, with distrax's conventions.

    Rows are normalised first; a row that is not a distribution after normalisation (a
    negative or non-finite entry, e.g. all zeros) gives -1. Same draw as distrax for the key.
    """
    probs = jnp.asarray(probs)
    probs = probs / jnp.sum(probs, axis=-1, keepdims=True)
    valid = jnp.logical_and(jnp.all(jnp.isfinite(probs), axis=-1), jnp.all(probs >= 0, axis=-1))
    draws = jax.random.categorical(key, jnp.log(probs), axis=-1, shape=(1,) + probs.shape[:-1])[
        0
    ].astype(jnp.int32)
    return jnp.where(valid, draws, -1)


def _mask_outside(log_prob: Array, action: Array, num_actions: int) -> Array:
    """-inf where `action` is not in [0, num_actions) (the plain functions would clamp)."""
    outside = jnp.logical_or(action < 0, action >= num_actions)
    return jnp.where(outside, -jnp.inf, log_prob)


def categorical_sample(key: Array, probs: Array) -> Array:
    """Samples one action per row of `probs` (rlax's `categorical_sample`).

    Rows are normalised to sum to 1. Rows that are not probabilities (negative or non-finite
    entries, or all zeros) give the action -1, as in rlax (distrax `Categorical`).

    Args:
      key: PRNG key (one key for the whole batch).
      probs: probabilities [..., A], unnormalised allowed.

    Returns:
      int32 actions [...].
    """
    return _draw_categorical(key, probs)


def softmax(temperature: Numeric = 1.0) -> DiscreteDistribution:
    """rlax's softmax distribution factory; for new code use `softmax_probs` and friends.

    `pi(a) = exp(l(a) / t) / sum_b exp(l(b) / t)`. The functions take logits [..., A]:
    `sample(key, logits)`, `probs(logits)`, `logprob(sample, logits)`, `entropy(logits)`,
    `kl(p_logits, q_logits)` (`categorical_kl_divergence` at this temperature).

    Args:
      temperature: softmax temperature t > 0.

    Returns:
      A `DiscreteDistribution` of functions, each over any leading batch axes.
    """
    return clipped_entropy_softmax(temperature, entropy_clip=None)


def clipped_entropy_softmax(
    temperature: Numeric = 1.0, entropy_clip: Numeric | None = 1.0
) -> DiscreteDistribution:
    """rlax's softmax factory whose entropy is clipped to `entropy_clip * log(A)`.

    `entropy(logits) = min(H(softmax(logits / t)), entropy_clip * log A)`; `entropy_clip = 1`
    is no clipping, since `log A` is the largest entropy over A actions. `sample`, `probs` and
    `logprob` accept (and ignore) a trailing `action_spec`, as in rlax.

    Args:
      temperature: softmax temperature t > 0.
      entropy_clip: fraction of the maximal entropy `log A` the entropy is clipped to (None:
        no clipping, which is what `softmax` uses).

    Returns:
      A `DiscreteDistribution` of functions, each over any leading batch axes.
    """
    probs_v = jnp.vectorize(lambda l: softmax_probs(l, temperature), signature="(a)->(a)")
    logprob_v = jnp.vectorize(
        lambda a, l: softmax_log_prob(l, a, temperature), signature="(),(a)->()"
    )
    entropy_v = jnp.vectorize(lambda l: softmax_entropy(l, temperature), signature="(a)->()")

    def sample_fn(key: Array, logits: Array, action_spec: Any = None) -> Array:
        del action_spec
        return _draw_categorical(key, probs_v(logits))

    def probs_fn(logits: Array, action_spec: Any = None) -> Array:
        del action_spec
        return probs_v(logits)

    def logprob_fn(sample: Array, logits: Array, action_spec: Any = None) -> Array:
        del action_spec
        num_actions = logits.shape[-1]
        safe = jnp.clip(sample, 0, num_actions - 1)
        return _mask_outside(logprob_v(safe, logits), sample, num_actions)

    def entropy_fn(logits: Array) -> Array:
        entropy = entropy_v(logits)
        if entropy_clip is None:
            return entropy
        return jnp.minimum(entropy, entropy_clip * jnp.log(logits.shape[-1]))

    def kl_fn(p_logits: Array, q_logits: Array) -> Array:
        return categorical_kl_divergence(p_logits, q_logits, temperature)

    return DiscreteDistribution(sample_fn, probs_fn, logprob_fn, entropy_fn, kl_fn)


def greedy() -> DiscreteDistribution:
    """rlax's greedy distribution factory; for new code use `greedy_probs`/`greedy_action`.

    The probability mass is shared uniformly among the tied maxima. Unlike `greedy_action`
    (first maximum), `sample(key, preferences)` breaks ties at random, as rlax does. `kl` is
    None, as in rlax.

    Returns:
      A `DiscreteDistribution` of functions of preferences [..., A], over any batch axes.
    """
    return _epsilon_greedy_family(None, greedy_only=True)


def epsilon_greedy(epsilon: Numeric | None = None) -> DiscreteDistribution:
    """rlax's epsilon-greedy factory; for new code use `epsilon_greedy_probs` and friends.

    `pi(a) = (1 - eps) greedy(a) + eps / A`, greedy mass shared among tied maxima. Each
    function takes `epsilon` as a last argument that defaults to the factory's, as in rlax:
    `epsilon_greedy().sample(key, q, eps)` and `epsilon_greedy(eps).sample(key, q)` agree.
    `kl` is None, as in rlax.

    Args:
      epsilon: default exploration rate in [0, 1].

    Returns:
      A `DiscreteDistribution` of functions of preferences [..., A], over any batch axes.
    """
    return _epsilon_greedy_family(epsilon, greedy_only=False)


def _epsilon_greedy_family(default_epsilon: Numeric | None, greedy_only: bool):
    greedy_v = jnp.vectorize(greedy_probs, signature="(a)->(a)")
    eps_v = jnp.vectorize(epsilon_greedy_probs, signature="(a),()->(a)")

    def probs(preferences: Array, epsilon: Numeric | None) -> Array:
        preferences = jnp.asarray(preferences)
        if not jnp.issubdtype(preferences.dtype, jnp.floating):
            preferences = preferences.astype(jnp.float32)
        if greedy_only:
            return greedy_v(preferences)
        return eps_v(preferences, jnp.asarray(epsilon, preferences.dtype))

    def log_prob(sample: Array, p: Array) -> Array:
        num_actions = p.shape[-1]
        safe = jnp.clip(sample, 0, num_actions - 1)
        picked = jnp.take_along_axis(p, jnp.expand_dims(safe, -1), axis=-1)[..., 0]
        return _mask_outside(jnp.log(picked), sample, num_actions)

    def entropy(p: Array) -> Array:
        return -jnp.sum(_plogp(p, jnp.log(p)), axis=-1)

    if greedy_only:
        return DiscreteDistribution(
            sample=lambda key, preferences: _draw_categorical(key, probs(preferences, None)),
            probs=lambda preferences: probs(preferences, None),
            logprob=lambda sample, preferences: log_prob(sample, probs(preferences, None)),
            entropy=lambda preferences: entropy(probs(preferences, None)),
            kl=None,
        )

    def sample_fn(key: Array, preferences: Array, epsilon: Numeric = default_epsilon) -> Array:
        return _draw_categorical(key, probs(preferences, epsilon))

    def probs_fn(preferences: Array, epsilon: Numeric = default_epsilon) -> Array:
        return probs(preferences, epsilon)

    def logprob_fn(sample: Array, preferences: Array, epsilon: Numeric = default_epsilon):
        return log_prob(sample, probs(preferences, epsilon))

    def entropy_fn(preferences: Array, epsilon: Numeric = default_epsilon) -> Array:
        return entropy(probs(preferences, epsilon))

    return DiscreteDistribution(sample_fn, probs_fn, logprob_fn, entropy_fn, None)


_diag_log_prob_v = jnp.vectorize(diag_gaussian_log_prob, signature="(d),(d),(d)->()")
_diag_entropy_v = jnp.vectorize(diag_gaussian_entropy, signature="(d)->()")


def _gaussian_draw(key: Array, mu: Array, sigma: Array) -> Array:
    """`mu + sigma * z` with one normal draw for the whole batch (distrax's draw)."""
    noise = jax.random.normal(key, (1,) + mu.shape, mu.dtype)[0]
    return mu + sigma * noise


def gaussian_diagonal(sigma: Numeric | None = None) -> ContinuousDistribution:
    """rlax's diagonal-Gaussian factory; for new code use `diag_gaussian_*`.

    `N(mu, diag(sigma^2))` over the last axis. Note that `sigma` is the standard deviation (the
    plain functions take `log_std`). Functions: `sample(key, mu, sigma)`,
    `prob(sample, mu, sigma)`, `logprob(sample, mu, sigma)`, `entropy(mu, sigma)`,
    `kl_to_standard_normal(mu, sigma)`, `kl(mu_0, sigma_0, mu_1, sigma_1)`; `sigma` defaults
    to the factory's and broadcasts against `mu`.

    Args:
      sigma: default standard deviation.

    Returns:
      A `ContinuousDistribution` of functions of means [..., D], over any batch axes.
    """

    def scale(mu: Array, sigma: Numeric) -> Array:
        return jnp.ones_like(mu) * sigma

    def sample_fn(key: Array, mu: Array, sigma: Numeric = sigma) -> Array:
        return _gaussian_draw(key, mu, scale(mu, sigma))

    def logprob_fn(sample: Array, mu: Array, sigma: Numeric = sigma) -> Array:
        return _diag_log_prob_v(mu, jnp.log(scale(mu, sigma)), sample)

    def prob_fn(sample: Array, mu: Array, sigma: Numeric = sigma) -> Array:
        return jnp.exp(logprob_fn(sample, mu, sigma))

    def entropy_fn(mu: Array, sigma: Numeric = sigma) -> Array:
        return _diag_entropy_v(jnp.log(scale(mu, sigma)))

    def kl_to_standard_normal_fn(mu: Array, sigma: Numeric = sigma) -> Array:
        return multivariate_normal_kl_divergence(
            mu, scale(mu, sigma), jnp.zeros_like(mu), jnp.ones_like(mu)
        )

    def kl_fn(mu_0: Array, sigma_0: Numeric, mu_1: Array, sigma_1: Numeric) -> Array:
        return multivariate_normal_kl_divergence(
            mu_0, scale(mu_0, sigma_0), mu_1, scale(mu_1, sigma_1)
        )

    return ContinuousDistribution(
        sample_fn, prob_fn, logprob_fn, entropy_fn, kl_to_standard_normal_fn, kl_fn
    )


def squashed_gaussian(sigma_min: float = -4, sigma_max: float = 0.0) -> ContinuousDistribution:
    """rlax's tanh-squashed Gaussian factory; for new code use `tanh_gaussian_*`.

    The network outputs are activated as in rlax: mean `tanh(mu)`, standard deviation
    `exp(sigma_min + (sigma_max - sigma_min) (tanh(sigma) + 1) / 2)`. A pre-squash sample
    `u ~ N(tanh(mu), s)` becomes the action `a = tanh(u)`, or, given an `action_spec` with
    `minimum` and `maximum`, `a = minimum + (maximum - minimum) (tanh(u) + 1) / 2`.
    `prob`/`logprob` apply the change of variables; `entropy`, `kl_to_standard_normal` and `kl`
    are those of the pre-squash Gaussian, as in rlax. `sample`, `prob` and `logprob` take the
    `action_spec` (or None) as their last argument.

    Args:
      sigma_min: log standard deviation at `sigma = -inf`.
      sigma_max: log standard deviation at `sigma = +inf`.

    Returns:
      A `ContinuousDistribution` of functions of `mu`, `sigma` [..., D], over any batch axes.
    """
    tanh_log_prob_v = jnp.vectorize(
        lambda mean, log_std, u: tanh_gaussian_log_prob(mean, log_std, pre_tanh=u),
        signature="(d),(d),(d)->()",
    )

    def activate(mu: Array, sigma: Array) -> tuple[Array, Array]:
        log_std = sigma_min + 0.5 * (sigma_max - sigma_min) * (jnp.tanh(sigma) + 1.0)
        return jnp.tanh(mu), log_std

    def affine(action_spec: Any, shape: tuple) -> tuple[Array, Array]:
        low = jnp.asarray(action_spec.minimum)
        half_range = 0.5 * (jnp.asarray(action_spec.maximum) - low)
        return jnp.broadcast_to(low, shape), jnp.broadcast_to(half_range, shape)

    def sample_fn(key: Array, mu: Array, sigma: Array, action_spec: Any) -> Array:
        mean, log_std = activate(mu, sigma)
        squashed = jnp.tanh(_gaussian_draw(key, mean, jnp.exp(log_std)))
        if action_spec is None:
            return squashed
        low, half_range = affine(action_spec, squashed.shape)
        return low + half_range * (squashed + 1.0)

    def logprob_fn(sample: Array, mu: Array, sigma: Array, action_spec: Any) -> Array:
        mean, log_std = activate(mu, sigma)
        log_det = 0.0
        if action_spec is not None:
            low, half_range = affine(action_spec, mean.shape)
            sample = (sample - low) / half_range - 1.0
            log_det = jnp.sum(jnp.log(jnp.abs(half_range)), -1)
        return tanh_log_prob_v(mean, log_std, jnp.arctanh(sample)) - log_det

    def prob_fn(sample: Array, mu: Array, sigma: Array, action_spec: Any) -> Array:
        return jnp.exp(logprob_fn(sample, mu, sigma, action_spec))

    def entropy_fn(mu: Array, sigma: Array) -> Array:
        return _diag_entropy_v(activate(mu, sigma)[1])

    def kl_to_standard_normal_fn(mu: Array, sigma: Array) -> Array:
        mean, log_std = activate(mu, sigma)
        return multivariate_normal_kl_divergence(
            mean, jnp.exp(log_std), jnp.zeros_like(mu), jnp.ones_like(mu)
        )

    def kl_fn(mu_0: Array, sigma_0: Array, mu_1: Array, sigma_1: Array) -> Array:
        mean_0, log_std_0 = activate(mu_0, sigma_0)
        mean_1, log_std_1 = activate(mu_1, sigma_1)
        return multivariate_normal_kl_divergence(
            mean_0, jnp.exp(log_std_0), mean_1, jnp.exp(log_std_1)
        )

    return ContinuousDistribution(
        sample_fn, prob_fn, logprob_fn, entropy_fn, kl_to_standard_normal_fn, kl_fn
    )
