"""Noise-based exploration: Gaussian and Ornstein-Uhlenbeck action noise, Dirichlet prior noise.

Names, arguments and random draws follow rlax 0.1.9: for the same key the functions return the
same numbers as `rlax.add_gaussian_noise`, `rlax.add_ornstein_uhlenbeck_noise` and
`rlax.add_dirichlet_noise`.

rlax's `add_ornstein_uhlenbeck_noise` returns only the noisy action, so the caller cannot carry
the process state to the next step. `ornstein_uhlenbeck_noise` returns the new noise itself;
carry it and add it to the action:

    noise = ornstein_uhlenbeck_noise(key, noise, damping, stddev)
    action = action + noise          # == add_ornstein_uhlenbeck_noise(key, action, old_noise, ...)
"""

import chex
import jax
import jax.numpy as jnp

__all__ = [
    "add_dirichlet_noise",
    "add_gaussian_noise",
    "add_ornstein_uhlenbeck_noise",
    "ornstein_uhlenbeck_noise",
]

Array = chex.Array
Numeric = chex.Numeric


def add_gaussian_noise(key: Array, action: Array, stddev: Numeric) -> Array:
    """Adds independent Gaussian noise to a continuous action: `a + stddev * z`, `z ~ N(0, I)`.

    As in DDPG / TD3 exploration ("Addressing Function Approximation Error in Actor-Critic
    Methods" by Fujimoto et al., https://arxiv.org/abs/1802.09477).

    Args:
      key: PRNG key.
      action: float action, scalar or [D].
      stddev: scalar noise standard deviation.

    Returns:
      Noisy action shaped like `action` (not clipped to any bounds).
    """
    chex.assert_rank(action, {0, 1})
    chex.assert_type(action, float)
    return action + jax.random.normal(key, action.shape, action.dtype) * stddev


def ornstein_uhlenbeck_noise(
    key: Array, noise_tm1: Array, damping: Numeric, stddev: Numeric
) -> Array:
    """One step of the discretised Ornstein-Uhlenbeck process used for DDPG exploration.

    See "On the theory of the Brownian motion" by Uhlenbeck and Ornstein (1930) and
    "Continuous control with deep reinforcement learning" by Lillicrap et al.
    (https://arxiv.org/abs/1509.02971):

        noise_t = (1 - damping) * noise_tm1 + stddev * z_t,   z_t ~ N(0, I)

    The stationary standard deviation is `stddev / sqrt(1 - (1 - damping)^2)`.

    Args:
      key: PRNG key.
      noise_tm1: the previous noise [D] (zeros at the start of an episode).
      damping: scalar in (0, 1]; 1 gives independent Gaussian noise.
      stddev: scalar standard deviation of the innovation.

    Returns:
      The new noise [D]; carry it to the next step.
    """
    chex.assert_rank(noise_tm1, 1)
    chex.assert_type(noise_tm1, float)
    innovation = jax.random.normal(key, noise_tm1.shape, noise_tm1.dtype) * stddev
    return (1.0 - damping) * noise_tm1 + innovation


def add_ornstein_uhlenbeck_noise(
    key: Array, action: Array, noise_tm1: Array, damping: Numeric, stddev: Numeric
) -> Array:
    """Adds one step of Ornstein-Uhlenbeck noise to a continuous action (rlax's signature).

    `a + noise_t` with `noise_t = (1 - damping) noise_tm1 + stddev z_t`; see
    `ornstein_uhlenbeck_noise` for the process and for the carried noise that this function
    does not return.

    Args:
      key: PRNG key.
      action: float action [D].
      noise_tm1: the previous noise [D].
      damping: scalar in (0, 1].
      stddev: scalar standard deviation of the innovation.

    Returns:
      Noisy action [D].
    """
    chex.assert_rank([action, noise_tm1], 1)
    chex.assert_type([action, noise_tm1], float)
    chex.assert_equal_shape([action, noise_tm1])
    return action + ornstein_uhlenbeck_noise(key, noise_tm1, damping, stddev)


def add_dirichlet_noise(
    key: Array, prior: Array, dirichlet_alpha: float, dirichlet_fraction: float
) -> Array:
    """Mixes a policy prior with symmetric Dirichlet noise, as at the root of AlphaZero's search.

    See "Mastering the game of Go without human knowledge" by Silver et al. (2017) and
    "Mastering Atari, Go, Chess and Shogi by Planning with a Learned Model" by Schrittwieser et
    al. (https://arxiv.org/abs/1911.08265):

        noise ~ Dirichlet(alpha, ..., alpha)
        noisy_prior = (1 - fraction) * prior + fraction * noise

    AlphaZero uses alpha = 0.3 (chess), 0.15 (shogi), 0.03 (Go) and fraction 0.25; MuZero uses
    alpha = 0.25 on Atari.

    Args:
      key: PRNG key.
      prior: policy probabilities [B, A] (as in rlax, one noise vector per row) or [A].
      dirichlet_alpha: concentration of the symmetric Dirichlet (Python float, as rlax).
      dirichlet_fraction: mixing weight of the noise in [0, 1] (Python float, as rlax).

    Returns:
      Noisy prior shaped like `prior`; rows still sum to 1 if the prior's rows do.
    """
    chex.assert_rank(prior, {1, 2})
    chex.assert_type(prior, float)
    chex.assert_type([dirichlet_alpha, dirichlet_fraction], float)
    num_actions = prior.shape[-1]
    alpha = jnp.full((num_actions,), dirichlet_alpha, prior.dtype)
    noise = jax.random.dirichlet(key, alpha, shape=prior.shape[:-1], dtype=prior.dtype)
    return (1.0 - dirichlet_fraction) * prior + dirichlet_fraction * noise
