"""Input embeddings (rlax 0.1.9's `embed_oar`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import check_args

__all__ = ["embed_oar"]


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
