"""Pseudo-rewards (cumulants) for general value functions (rlax 0.1.9 names and semantics).

By the reward hypothesis any goal can be written as a scalar cumulant to maximise; general
value functions ("Horde" by Sutton et al., 2011) predict discounted sums of cumulants other
than the task reward. These are the pixel-control and feature-control cumulants of
"Reinforcement Learning with Unsupervised Auxiliary Tasks" by Jaderberg et al. (2016,
https://arxiv.org/abs/1611.05397).
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from rlkit.errors import RLKitError, check_args

__all__ = ["feature_control_rewards", "pixel_control_rewards"]

Array = chex.Array

_CUMULANT_TYPES = ("feature", "absolute_change", "increase", "decrease", "potential")


def pixel_control_rewards(observations: Array, cell_size: int) -> Array:
    """Pixel-control cumulants: mean absolute intensity change in each cell of a grid.

    Each frame is split into `cell_size` x `cell_size` cells; the cumulant of cell (i, j) at
    step t is `mean_{pixels p in cell, channels c} |o_{t+1}[p, c] - o_t[p, c]|`. Crop the
    observations so that H and W are multiples of `cell_size`, and rescale them to [0, 1].

    Args:
      observations: frames [T+1, H, W, C], float.
      cell_size: side of a cell in pixels (static).

    Returns:
      Cumulants [T, H / cell_size, W / cell_size].
    """
    check_args("pixel_control_rewards", {"observations": observations}, 4, float)
    height = observations.shape[1] // cell_size
    width = observations.shape[2] // cell_size
    change = jnp.abs(observations[1:] - observations[:-1])
    cells = change.reshape((-1, height, cell_size, width, cell_size, observations.shape[3]))
    return cells.mean(axis=(2, 4, 5))


def feature_control_rewards(
    features: Array, cumulant_type: str = "absolute_change", discount: float | None = None
) -> Array:
    """Feature-control cumulants, one per feature dimension, from a sequence of features.

    With `phi_t` the features at step t, the cumulant at step t is
      * `'feature'`: `phi_{t+1}`;
      * `'absolute_change'`: `|phi_{t+1} - phi_t|`;
      * `'increase'`: `phi_{t+1} - phi_t`;  `'decrease'`: `phi_t - phi_{t+1}`;
      * `'potential'`: `discount * phi_{t+1} - phi_t` (potential-based shaping).

    Args:
      features: features [T+1, D], float.
      cumulant_type: one of the five types above.
      discount: discount of the potential-based cumulant (only for `'potential'`).

    Returns:
      Cumulants [T, D].

    Raises:
      RLKitError: for an unknown `cumulant_type`.
    """
    check_args("feature_control_rewards", {"features": features}, 2, float)
    now, nxt = features[:-1], features[1:]
    if cumulant_type == "feature":
        return nxt
    if cumulant_type == "absolute_change":
        return jnp.abs(nxt - now)
    if cumulant_type == "increase":
        return nxt - now
    if cumulant_type == "decrease":
        return now - nxt
    if cumulant_type == "potential":
        return discount * nxt - now
    raise RLKitError(
        f"feature_control_rewards: Unknown cumulant_type {cumulant_type!r}; expected one of "
        f"{_CUMULANT_TYPES}"
    )
