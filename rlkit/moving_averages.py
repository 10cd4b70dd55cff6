"""Exponential moving averages of the first and second moments of a pytree, debiased as in Adam.

Follows rlax 0.1.9 (`rlax.create_ema`, `rlax.EmaState`, `rlax.EmaMoments`): each leaf is
summarised by the mean over *all* its elements, so the moments of every leaf are scalars. With
decay `d`, after `k` updates with leaf means `x_1..x_k` (Kingma and Ba, "Adam: A Method for
Stochastic Optimization", https://arxiv.org/abs/1412.6980, sec. 3):

    mu_k = d mu_{k-1} + (1 - d) mean(x_k)          nu_k = d nu_{k-1} + (1 - d) mean(x_k^2)
    mean = mu_k / (1 - d^k)                        variance = max(0, nu_k / (1 - d^k) - mean^2)

The states are NamedTuples (rlax uses frozen chex dataclasses with the same fields).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

__all__ = ["EmaMoments", "EmaState", "create_ema"]

ArrayTree = chex.ArrayTree


class EmaMoments(NamedTuple):
    """Debiased moment estimates.

    Attributes:
      mean: tree of scalar means, one per leaf.
      variance: tree of scalar variances, one per leaf.
    """

    mean: ArrayTree
    variance: ArrayTree


class EmaState(NamedTuple):
    """Exponential moving average state.

    Attributes:
      mu: tree of biased first-moment averages (scalar per leaf).
      nu: tree of biased second-moment averages (scalar per leaf).
      decay_product: `decay^k` after k updates (scalar array; 1 at the start).
    """

    mu: ArrayTree
    nu: ArrayTree
    decay_product: chex.Array

    def debiased_moments(self) -> EmaMoments:
        """Returns the bias-corrected mean and variance (zeros before the first update).

        Returns:
          `EmaMoments(mean, variance)`.
        """
        tiny = jnp.finfo(jnp.asarray(self.decay_product).dtype).tiny
        correction = 1.0 / jnp.maximum(1.0 - self.decay_product, tiny)
        mean = jax.tree_util.tree_map(lambda m: m * correction, self.mu)
        # E[x^2] - E[x]^2 can cancel badly when |mean| >> std; clamp the rounding at 0.
        variance = jax.tree_util.tree_map(
            lambda s, m: jnp.maximum(0.0, s * correction - jnp.square(m)), self.nu, mean
        )
        return EmaMoments(mean=mean, variance=variance)


def create_ema(
    decay: float = 0.999, pmean_axis_name: str | None = None
) -> tuple[Callable[[ArrayTree], EmaState], Callable[[ArrayTree, EmaState], Any]]:
    """Builds `(init_state, update_moments)` for tracking the moments of a pytree.

    `init_state(template_tree)` returns zero moments (one scalar per leaf, in the leaf's
    dtype) and `decay_product = 1`. `update_moments(tree, state)` folds in the mean of each leaf
    and of its square and returns `(EmaMoments, new_state)`.

    Args:
      decay: EMA decay d; the step size is `1 - d`.
      pmean_axis_name: if set, the per-leaf means are averaged over this device axis with
        `jax.lax.pmean` before the update, so every device keeps the same state.

    Returns:
      `(init_state, update_moments)`.
    """

    def init_state(template_tree: ArrayTree) -> EmaState:
        zeros = jax.tree_util.tree_map(lambda x: jnp.zeros_like(jnp.mean(x)), template_tree)
        return EmaState(mu=zeros, nu=zeros, decay_product=jnp.ones([], jnp.float32))

    def _blend(moment: chex.Array, value: chex.Array) -> chex.Array:
        value_mean = jnp.mean(value)
        if pmean_axis_name is not None:
            value_mean = jax.lax.pmean(value_mean, axis_name=pmean_axis_name)
        return decay * moment + (1.0 - decay) * value_mean

    def update_moments(tree: ArrayTree, state: EmaState) -> tuple[EmaMoments, EmaState]:
        mu = jax.tree_util.tree_map(_blend, state.mu, tree)
        nu = jax.tree_util.tree_map(lambda m, x: _blend(m, jnp.square(x)), state.nu, tree)
        new_state = EmaState(mu=mu, nu=nu, decay_product=state.decay_product * decay)
        return new_state.debiased_moments(), new_state

    return init_state, update_moments
