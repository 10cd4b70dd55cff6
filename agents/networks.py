"""Flax networks shared by the agents: an MLP torso, Q-networks (optionally dueling) and actor-critics."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rlkit.errors import RLKitError

__all__ = ["MLP", "QNetwork", "ActorCritic", "activation_fn", "orthogonal"]

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


def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Q of the thin QR decomposition of a tall matrix ``a`` [m, n] (m >= n), with R's diagonal
    positive: classical Gram-Schmidt with one re-orthogonalisation pass ("twice is enough"),
    orthonormal to float32 rounding for the well-conditioned Gaussian matrices drawn here."""

    def column(j, q):
        v = lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False)
        for _ in range(2):  # columns of q not yet filled are zero, so they project out nothing
            v = v - q @ (q.T @ v)
        v = v / jnp.linalg.norm(v)
        return lax.dynamic_update_index_in_dim(q, v, j, axis=1)

    return lax.fori_loop(0, a.shape[1], column, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0) -> Callable:
    """An orthogonal kernel initialiser, the same matrices as ``jax.nn.initializers.orthogonal``.

    It draws the same Gaussian matrix from the key and orthonormalises it with array operations
    instead of LAPACK's QR. The resulting values match JAX's initialiser to within about 1e-6, and
    they follow the same (Haar) distribution. Why not call JAX's: when an agent's init is vmapped
    over seeds on CPU, JAX's QR becomes a batched LAPACK call that splits the batch over XLA's
    intra-op thread pool. On a 2-core machine two such calls running at once can each wait for
    work queued behind the other, and the program then hangs at 0% CPU; this was observed with 8
    vmapped PPO seeds (both pool threads blocked in ``ParallelBatchMap`` under ``lapack_sgeqrf``).
    Plain array operations avoid the custom call altogether.

    Args:
      scale: multiplier of the orthogonal matrix (the gain).

    Returns:
      ``init(key, shape, dtype=float32)`` for a kernel of rank >= 2 whose last axis is the output.
    """

    def init(key, shape, dtype=jnp.float32):
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise RLKitError(f"orthogonal: shape must have rank >= 2, got {shape}")
        if any(d == 0 for d in shape):
            return jnp.zeros(shape, dtype)
        n_cols = shape[-1]
        n_rows = math.prod(shape) // n_cols
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        q = _orthonormal_columns(jax.random.normal(key, tall, jnp.float32))
        if n_rows < n_cols:
            q = q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


class MLP(nn.Module):
    """Dense layers with an activation after each, orthogonal init (gain sqrt(2))."""

    hidden: Sequence[int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x))
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
            return nn.Dense(self.num_actions, kernel_init=orthogonal(1.0))(x)
        value = nn.Dense(1, kernel_init=orthogonal(1.0))(x)
        adv = nn.Dense(self.num_actions, kernel_init=orthogonal(1.0))(x)
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
        out = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01), name="actor_head")(a)
        c = MLP(self.hidden, self.activation, name="critic_torso")(obs)
        value = nn.Dense(1, kernel_init=orthogonal(1.0), name="critic_head")(c)[..., 0]
        if not self.continuous:
            return out, value
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return (out, jnp.broadcast_to(log_std, out.shape)), value
