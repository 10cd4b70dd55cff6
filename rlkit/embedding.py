"""Input embeddings: rlax 0.1.9's `embed_oar`, and the cosine embedding of quantile fractions
of implicit quantile networks (not in rlax)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import ArgumentError, check_args

__all__ = ["embed_oar", "quantile_cosine_embedding"]


def embed_oar(
    features: chex.Array, action: chex.Array, reward: chex.Array, num_actions: int
) -> chex.Array:
    """Concatenates observation features, the one-hot previous action and a squashed reward.

    `out = [features, one_hot(action, num_actions), tanh(reward)]`, the usual input of a
    recurrent agent (e.g. R2D2, "Recurrent Experience Replay in Distributed Reinforcement
    Learning" by Kapturowski et al., 2019).

    Args:
      features: observation features [B, D].
      action: integer actions [B].
      reward: rewards [B].
      num_actions: number of actions A.

    Returns:
      Embeddings [B, D + A + 1].
    """
    check_args("embed_oar", {"features": features, "action": action, "reward": reward}, [2, 1, 1])
    one_hot = jax.nn.one_hot(action, num_classes=num_actions)
    squashed = jnp.tanh(reward)[:, None]
    return jnp.concatenate([features, one_hot, squashed], axis=-1)


def quantile_cosine_embedding(tau: chex.Array, num_cosines: int) -> chex.Array:
    """The cosine basis of quantile fractions that implicit quantile networks embed.

    See "Implicit Quantile Networks for Distributional Reinforcement Learning" by Dabney,
    Ostrovski, Silver and Munos (2018), https://arxiv.org/abs/1806.06923, equation (4): the
    network embeds a fraction ``tau`` as ``phi_j(tau) = ReLU(sum_i cos(pi i tau) w_ij + b_j)``;
    this function gives the basis

        out[..., i] = cos(pi i tau),  i = 0, ..., num_cosines - 1

    (``i = 0`` gives the constant 1), to which the caller applies its dense layer.

    Args:
      tau: quantile fractions in [0, 1], float, any shape [...].
      num_cosines: n, the number of basis functions (static), at least 1.

    Returns:
      The basis [..., num_cosines], of the dtype of ``tau``.
    """
    check_args("quantile_cosine_embedding", {"tau": tau}, types=float)
    if int(num_cosines) != num_cosines or num_cosines < 1:
        raise ArgumentError(
            f"quantile_cosine_embedding: `num_cosines`: expected an integer >= 1, got {num_cosines}"
        )
    tau = jnp.asarray(tau)
    i = jnp.arange(int(num_cosines), dtype=tau.dtype).reshape((1,) * tau.ndim + (-1,))
    return jnp.cos(jnp.pi * i * tau[..., None])
