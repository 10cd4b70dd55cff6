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

Divergences, with rlax 0.1.9's names and arguments: `categorical_cross_entropy`,
`categorical_kl_divergence`, `multivariate_normal_kl_divergence`. Unlike rlax they take one
distribution per call (rank-1 inputs); vmap them for a batch.

Ties: like rlax (distrax `Greedy` / `EpsilonGreedy`), `greedy_probs` and `epsilon_greedy_probs`
share the greedy mass uniformly among all tied maxima, and the epsilon-greedy sampler and
log-probability follow those probabilities. `greedy_action` is a deterministic argmax and
returns the *first* maximal index, so with ties `greedy_log_prob(q, greedy_action(q))` is
`-log(number of ties)`, not 0.

Masking: a logit of `-inf` gives the action probability 0 in the softmax functions; the entropy
and divergences treat `0 * log 0` as 0.
"""

import math

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import RLKitError

__all__ = [
    "categorical_cross_entropy",
    "categorical_kl_divergence",
    "diag_gaussian_entropy",
    "diag_gaussian_log_prob",
    "diag_gaussian_sample",
    "epsilon_greedy_entropy",
    "epsilon_greedy_log_prob",
    "epsilon_greedy_probs",
    "epsilon_greedy_sample",
    "greedy_action",
    "greedy_entropy",
    "greedy_log_prob",
    "greedy_probs",
    "multivariate_normal_kl_divergence",
    "rescale_action",
    "softmax_entropy",
    "softmax_log_prob",
    "softmax_probs",
    "softmax_sample",
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
    chex.assert_rank([labels, logits], 1)
    chex.assert_type([labels, logits], float)
    chex.assert_equal_shape([labels, logits])
    return -jnp.sum(_plogp(labels, jax.nn.log_softmax(logits)))


def categorical_kl_divergence(p_logits: Array, q_logits: Array, temperature: float = 1.0) -> Array:
    """`KL(p || q) = sum_a p(a) (log p(a) - log q(a))` for p = softmax(p_logits / temperature).

    Args:
      p_logits: logits of p [A].
      q_logits: logits of q [A].
      temperature: softmax temperature applied to both.

    Returns:
      Scalar KL divergence (>= 0).
    """
    chex.assert_rank([p_logits, q_logits], 1)
    chex.assert_type([p_logits, q_logits], float)
    chex.assert_equal_shape([p_logits, q_logits])
    log_p = jax.nn.log_softmax(p_logits / temperature)
    log_q = jax.nn.log_softmax(q_logits / temperature)
    p = jnp.exp(log_p)
    return jnp.sum(jnp.where(p > 0, p * (log_p - log_q), 0.0))


def multivariate_normal_kl_divergence(
    mu_0: Array, sigma_0: Numeric, mu_1: Array, sigma_1: Numeric
) -> Array:
    """KL divergence between two Gaussians with diagonal covariance.

    `KL(N0 || N1) = sum_d [ log(s1_d / s0_d) + (s0_d^2 + (m0_d - m1_d)^2) / (2 s1_d^2) - 1/2 ]`.

    Args:
      mu_0: means of N0 [D].
      sigma_0: standard deviations of N0, [D] or scalar.
      mu_1: means of N1 [D].
      sigma_1: standard deviations of N1, [D] or scalar.

    Returns:
      Scalar KL divergence.
    """
    chex.assert_rank([mu_0, mu_1], 1)
    chex.assert_rank([sigma_0, sigma_1], {0, 1})
    chex.assert_type([mu_0, mu_1], float)
    chex.assert_equal_shape([mu_0, mu_1])
    sigma_0 = jnp.broadcast_to(sigma_0, mu_0.shape)
    sigma_1 = jnp.broadcast_to(sigma_1, mu_0.shape)
    var_ratio = jnp.square(sigma_0 / sigma_1)
    mean_term = jnp.square((mu_0 - mu_1) / sigma_1)
    return 0.5 * jnp.sum(var_ratio + mean_term - 1.0 - jnp.log(var_ratio))


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
    chex.assert_rank(q_values, 1)
    chex.assert_type(q_values, float)
    is_max = (q_values == jnp.max(q_values)).astype(q_values.dtype)
    return is_max / jnp.sum(is_max)


def greedy_action(q_values: Array) -> Array:
    """Deterministic greedy action: the first index of the maximum.

    Args:
      q_values: action values [A].

    Returns:
      Scalar int32 action.
    """
    chex.assert_rank(q_values, 1)
    chex.assert_type(q_values, float)
    return jnp.argmax(q_values).astype(jnp.int32)


def greedy_log_prob(q_values: Array, action: Array) -> Array:
    """Log-probability of `action` under `greedy_probs` (`-inf` for non-greedy actions).

    Args:
      q_values: action values [A].
      action: scalar int action.

    Returns:
      Scalar log-probability.
    """
    chex.assert_rank([q_values, action], [1, 0])
    chex.assert_type([q_values, action], [float, int])
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
    chex.assert_rank(action, 0)
    chex.assert_type(action, int)
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
    chex.assert_rank(logits, 1)
    chex.assert_type(logits, float)
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
    chex.assert_rank(action, 0)
    chex.assert_type(action, int)
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
    chex.assert_rank([mean, log_std], 1)
    chex.assert_type([mean, log_std], float)
    chex.assert_equal_shape([mean, log_std])


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
    chex.assert_equal_shape([mean, action])
    chex.assert_type(action, float)
    z = (action - mean) * jnp.exp(-log_std)
    return -jnp.sum(0.5 * jnp.square(z) + log_std + _HALF_LOG_2PI)


def diag_gaussian_entropy(log_std: Array) -> Array:
    """Exact entropy `sum_d [ log s_d + (1 + log(2 pi)) / 2 ]` of a diagonal Gaussian.

    Args:
      log_std: log standard deviations [D].

    Returns:
      Scalar entropy (nats).
    """
    chex.assert_rank(log_std, 1)
    chex.assert_type(log_std, float)
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
        chex.assert_type(action, float)
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
      action: action in [-1, 1] [D] (e.g. from `tanh_gaussian_sample`).
      low: lower bounds, [D] or scalar.
      high: upper bounds, [D] or scalar.

    Returns:
      Action in [low, high] [D].
    """
    chex.assert_rank(action, 1)
    chex.assert_type(action, float)
    chex.assert_rank([low, high], {0, 1})
    low = jnp.broadcast_to(jnp.asarray(low, action.dtype), action.shape)
    high = jnp.broadcast_to(jnp.asarray(high, action.dtype), action.shape)
    return low + 0.5 * (action + 1.0) * (high - low)
