"""Flax networks shared by the agents: an MLP torso, Q-networks (optionally dueling) and actor-critics."""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from rlkit.errors import RLKitError

__all__ = ["MLP", "QNetwork", "ActorCritic", "activation_fn"]

_ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


def activation_fn(name: str) -> Callable:
    """Look up an activation by name (relu, tanh, elu, gelu, silu)."""
    if name not in _ACTIVATIONS:
        raise RLKitError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


def _ortho(scale: float) -> Callable:
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    """Dense layers with an activation after each, orthogonal init (gain sqrt(2))."""

    hidden: Sequence[int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=_ortho(np.sqrt(2)))(x))
        return x


class QNetwork(nn.Module):
    """Action values ``[..., A]``; the dueling head computes ``V + A - mean(A)`` (Wang et al., 2016)."""

    num_actions: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    dueling: bool = False

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden, self.activation)(obs.astype(jnp.float32))
        if not self.dueling:
            return nn.Dense(self.num_actions, kernel_init=_ortho(1.0))(x)
        value = nn.Dense(1, kernel_init=_ortho(1.0))(x)
        adv = nn.Dense(self.num_actions, kernel_init=_ortho(1.0))(x)
        return value + adv - adv.mean(axis=-1, keepdims=True)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs.

    Discrete (``continuous=False``): returns ``(logits [..., A], value [...])``.
    Continuous: returns ``((mean [..., A], log_std [..., A]), value [...])`` with a state-independent,
    learned ``log_std``.
    """

    action_dim: int
    continuous: bool = False
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, obs):
        obs = obs.astype(jnp.float32)
        a = MLP(self.hidden, self.activation, name="actor_torso")(obs)
        out = nn.Dense(self.action_dim, kernel_init=_ortho(0.01), name="actor_head")(a)
        c = MLP(self.hidden, self.activation, name="critic_torso")(obs)
        value = nn.Dense(1, kernel_init=_ortho(1.0), name="critic_head")(c)[..., 0]
        if not self.continuous:
            return out, value
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return (out, jnp.broadcast_to(log_std, out.shape)), value
