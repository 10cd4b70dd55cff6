"""Element-wise losses and gradient transformations used to build RL pseudo-losses.

Every function here is element-wise: it accepts arrays of any shape and returns an array of the
same shape (callers reduce). rlax keeps ``huber_loss`` and ``clip_gradient`` in ``clipping.py``;
rlkit keeps them here, next to the other losses, with the same signatures and semantics.
`pixel_control_loss` is the exception: the spatial Q(lambda) loss of the pixel-control
auxiliary task, per step and cell.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import RLKitError, check, check_args
from rlkit.general_value_functions import pixel_control_rewards
from rlkit.value_learning import q_lambda

__all__ = [
    "clip_gradient",
    "expectile_loss",
    "huber_loss",
    "l2_loss",
    "likelihood",
    "log_loss",
    "pixel_control_loss",
]

Array = chex.Array


def huber_loss(x: Array, delta: float = 1.0) -> Array:
    """Huber loss: quadratic for small errors, linear for large ones.

    See "Robust Estimation of a Location Parameter" by Huber (1964),
    https://projecteuclid.org/euclid.aoms/1177703732.

        L(x) = 0.5 x^2                      if |x| <= delta
        L(x) = 0.5 delta^2 + delta (|x| - delta)  otherwise

    The gradient of ``huber_loss(x)`` equals that of ``0.5 * clip_gradient(x, -delta, delta)**2``.

    Args:
      x: errors, a float array of any shape.
      delta: where the loss switches from quadratic to linear; defaults to 1.

    Returns:
      The loss, an array with the shape of ``x``.
    """
    check("huber_loss", chex.assert_type, {"x": x}, float)
    abs_x = jnp.abs(x)
    # Split |x| into a part inside the quadratic zone and the excess beyond it; the excess has
    # zero gradient where |x| <= delta and the inside part has zero gradient beyond it.
    inside = jnp.minimum(abs_x, delta)
    excess = abs_x - inside
    return 0.5 * inside**2 + delta * excess


def l2_loss(predictions: Array, targets: Array | None = None) -> Array:
    """Half the squared error, ``0.5 (predictions - targets)^2``.

    With no targets it is an L2 regulariser, ``0.5 predictions^2``. The factor 0.5 follows
    Bishop's "Pattern Recognition and Machine Learning" (so the gradient is the error itself).

    Args:
      predictions: a float array of any shape.
      targets: a float array broadcastable to ``predictions``, or None for zeros.

    Returns:
      The loss, an array with the shape of ``predictions`` (broadcast with ``targets``).
    """
    if targets is None:
        targets = jnp.zeros_like(predictions)
    check("l2_loss", chex.assert_type, {"predictions": predictions, "targets": targets}, float)
    return 0.5 * (predictions - targets) ** 2


def likelihood(predictions: Array, targets: Array) -> Array:
    """Bernoulli likelihood of ``targets`` under probabilities ``predictions``.

        L(p, y) = p^y (1 - p)^(1 - y)

    The cases ``p = y = 0`` and ``p = y = 1`` are set to exactly 1 (``0^0`` is NaN on some
    backends).

    Args:
      predictions: probabilities in [0, 1], a float array of any shape.
      targets: target probabilities in [0, 1], broadcastable to ``predictions``.

    Returns:
      The element-wise likelihood, an array with the shape of ``predictions``.
    """
    check("likelihood", chex.assert_type, {"predictions": predictions, "targets": targets}, float)
    value = predictions**targets * (1.0 - predictions) ** (1.0 - targets)
    both_one = jnp.logical_and(targets == 1, predictions == 1)
    both_zero = jnp.logical_and(targets == 0, predictions == 0)
    return jnp.where(jnp.logical_or(both_one, both_zero), 1, value)


def log_loss(predictions: Array, targets: Array) -> Array:
    """Negative log-likelihood (binary cross-entropy), ``-log L(p, y)``; see `likelihood`.

    Args:
      predictions: probabilities in [0, 1], a float array of any shape.
      targets: target probabilities in [0, 1], broadcastable to ``predictions``.

    Returns:
      The element-wise log loss, an array with the shape of ``predictions``.
    """
    check("log_loss", chex.assert_type, {"predictions": predictions, "targets": targets}, float)
    return -jnp.log(likelihood(predictions, targets))


def expectile_loss(predictions: Array, targets: Array, expectile: float) -> Array:
    """Asymmetric squared loss whose minimiser is the ``expectile`` of the targets.

    See "Offline Reinforcement Learning with Implicit Q-Learning" by Kostrikov, Nair and Levine
    (https://arxiv.org/abs/2110.06169), section 4.1. With ``u = targets - predictions``:

        L(u) = |expectile - 1[u < 0]| u^2

    so over-estimates (``u < 0``) weigh ``1 - expectile`` and under-estimates weigh
    ``expectile``. Note there is no factor 0.5, as in rlax.

    Args:
      predictions: an array of any shape, e.g. [T, ...].
      targets: an array with the same shape as ``predictions``.
      expectile: the expectile in (0, 1); 0.5 gives the plain squared error.

    Returns:
      The element-wise loss, an array with the shape of ``predictions``.
    """
    check(
        "expectile_loss", chex.assert_equal_shape, {"predictions": predictions, "targets": targets}
    )
    diff = targets - predictions
    weight = jnp.abs(expectile - jnp.less(diff, 0))
    return weight * diff**2


@jax.custom_vjp
def _clip_gradient(x: Any, gradient_min: Array, gradient_max: Array) -> Any:
    return x


def _clip_gradient_fwd(x, gradient_min, gradient_max):
    return x, (gradient_min, gradient_max)


def _clip_gradient_bwd(residuals, g):
    gradient_min, gradient_max = residuals
    clipped = jax.tree_util.tree_map(
        lambda t: jnp.clip(t, gradient_min, gradient_max).astype(t.dtype), g
    )
    return clipped, jnp.zeros_like(gradient_min), jnp.zeros_like(gradient_max)


_clip_gradient.defvjp(_clip_gradient_fwd, _clip_gradient_bwd)


def clip_gradient(x: Any, gradient_min: float, gradient_max: float) -> Any:
    """Identity in the forward pass; clips the incoming gradient element-wise in the backward pass.

    Used by DQN, "Human-level control through deep reinforcement learning" by Mnih et al.
    (https://www.nature.com/articles/nature14236), to bound the TD error's gradient:

        forward: y = x        backward: dL/dx = clip(dL/dy, gradient_min, gradient_max)

    ``grad(0.5 * clip_gradient(x, -d, d)**2)`` equals ``grad(huber_loss(x, d))``. No gradient
    flows into ``gradient_min`` or ``gradient_max``.

    Args:
      x: a float array, or a pytree of float arrays.
      gradient_min: lower bound on each element of the gradient.
      gradient_max: upper bound on each element of the gradient.

    Returns:
      ``x`` unchanged.
    """
    check(
        "clip_gradient",
        chex.assert_type,
        {"jax.tree_util.tree_leaves(x)": jax.tree_util.tree_leaves(x)},
        float,
    )
    return _clip_gradient(x, jnp.asarray(gradient_min), jnp.asarray(gradient_max))


def pixel_control_loss(
    observations: Array,
    actions: Array,
    action_values: Array,
    discount_factor: Array | float,
    cell_size: int,
) -> Array:
    """Q-learning loss of the pixel-control auxiliary task, per step and cell.

    Each cell (i, j) of the frame grid is its own task with the cumulant of
    `pixel_control_rewards`; its action values are learned off-policy with Q(lambda), lambda = 1
    (the n-step Q-learning of the whole sequence), and the loss is `0.5 * td_error^2`. See
    "Reinforcement Learning with Unsupervised Auxiliary Tasks" by Jaderberg et al. (2016,
    https://arxiv.org/abs/1611.05397); a discount of 0.9 is common.

    Args:
      observations: frames [T+1, H, W, C], float in [0, 1].
      actions: the actions taken [T], int (the same action for every cell).
      action_values: pixel-control action values [T+1, H', W', A], with
        H' = H / cell_size and W' = W / cell_size (usually from a deconvolutional head).
      discount_factor: discount of the pseudo-rewards, a scalar or a [T] vector.
      cell_size: side of a cell in pixels (static).

    Returns:
      The spatial loss [T, H', W'].

    Raises:
      RLKitError: if `action_values` does not match the cell grid of the observations ("Pixel
        Control values are not compatible ...") or `discount_factor` has rank > 1 ("The
        discount_factor must be a scalar or a tensor of rank 1 ..."); an `ArgumentError` (also
        an AssertionError) for wrong ranks or dtypes.
    """
    fn = "pixel_control_loss"
    check_args(fn, {"actions": actions}, 1, int)
    check_args(fn, {"action_values": action_values}, 4)
    check_args(fn, {"observations": observations}, None, float)
    seq_len = actions.shape[0]
    num_actions = action_values.shape[-1]
    rewards = pixel_control_rewards(observations, cell_size)  # [T, H', W']
    grid = rewards.shape[1:]
    if grid != action_values.shape[1:-1]:
        raise RLKitError(
            f"{fn}: Pixel Control values are not compatible with the shape of the pseudo-rewards "
            f"derived from the observation: `action_values` has cells {action_values.shape[1:-1]}, "
            f"expected {grid} (observations' H and W divided by cell_size={cell_size})"
        )
    discount = jnp.asarray(discount_factor)
    if discount.ndim > 1:
        raise RLKitError(
            f"{fn}: The discount_factor must be a scalar or a tensor of rank 1 (one per step), "
            f"instead is a tensor of shape {discount.shape}"
        )
    num_cells = grid[0] * grid[1]
    q_tm1 = action_values[:-1].reshape(seq_len, num_cells, num_actions)
    q_t = action_values[1:].reshape(seq_len, num_cells, num_actions)
    r_t = rewards.reshape(seq_len, num_cells)
    a_tm1 = jnp.broadcast_to(actions[:, None], (seq_len, num_cells))
    discount_t = jnp.broadcast_to(
        discount.reshape((-1, 1)) if discount.ndim else discount, (seq_len, num_cells)
    ).astype(r_t.dtype)
    per_cell = jax.vmap(
        lambda q1, a, r, d, q2: q_lambda(q1, a, r, d, q2, lambda_=1.0), in_axes=1, out_axes=1
    )
    td_error = per_cell(q_tm1, a_tm1, r_t, discount_t, q_t)
    return (0.5 * jnp.square(td_error)).reshape((seq_len,) + grid)
