"""PopArt: adaptive target normalisation that preserves the network's unnormalised outputs.

See "Learning values across many orders of magnitude" by van Hasselt et al.
(https://arxiv.org/abs/1602.07714) and "Multi-task Deep Reinforcement Learning with PopArt" by
Hessel et al. (https://arxiv.org/abs/1809.04474).

The value head is a linear layer whose outputs `n` are normalised values; the unnormalised value
is `scale * n + shift`. Each update has two halves:

* ART (Adaptively Rescaling Targets), `art`: move the first and second moment estimates towards
  the new targets and derive `scale = sqrt(second_moment - shift^2)` (clipped to
  `[scale_lb, scale_ub]`).
* POP (Preserving Outputs Precisely), `pop`: rescale the last linear layer so that
  `scale_new * n_new + shift_new == scale_old * n_old + shift_old` for every input:

      w_new = w * scale_old / scale_new
      b_new = (scale_old * b + shift_old - shift_new) / scale_new

Names and semantics follow rlax 0.1.9 (`rlax.popart`, `rlax.art`, `rlax.pop`, `rlax.normalize`,
`rlax.unnormalize`, `rlax.unnormalize_linear`, `rlax.PopArtState`). `LinearParams` is a mapping
with Haiku's keys `"w"` [H, O] and `"b"` [O]; `pop` also accepts Flax's `"kernel"` / `"bias"`
and returns the keys it was given.

`rlkit.normalize` is this Pop-Art function, as in rlax. The running mean / variance of
observations lives in `rlkit.running_statistics` (functions named `running_stats_*`).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlkit import base
from rlkit.errors import ArgumentError, check

__all__ = [
    "LinearParams",
    "PopArtOutput",
    "PopArtState",
    "art",
    "normalize",
    "pop",
    "popart",
    "unnormalize",
    "unnormalize_linear",
]

Array = chex.Array
AxisName = str | Sequence[str] | None

LinearParams = Mapping[str, Array]


class PopArtState(NamedTuple):
    """PopArt statistics, one entry per output of the value head.

    Attributes:
      shift: running first moment (mean) of the targets [O].
      scale: standard deviation derived from the moments, clipped [O].
      second_moment: running second moment of the targets [O].
    """

    shift: Array
    scale: Array
    second_moment: Array


class PopArtOutput(NamedTuple):
    """Selected head outputs, before and after unnormalisation."""

    normalized: Array
    unnormalized: Array


def _check_like(fn: str, name: str, values: Array, indices: Array) -> None:
    """`values` and `indices` must have one rank and broadcastable shapes."""
    shape, index_shape = jnp.shape(values), jnp.shape(indices)
    try:
        ok = len(shape) == len(index_shape) and jnp.broadcast_shapes(shape, index_shape) is not None
    except ValueError:
        ok = False
    if not ok:
        raise ArgumentError(
            f"{fn}: `{name}` has shape {shape} and `indices` {index_shape}; expected the same "
            "shape (one head index per value)"
        )


def normalize(state: PopArtState, unnormalized: Array, indices: Array) -> Array:
    """Maps unnormalised values to the normalised scale: `(x - shift[i]) / scale[i]`.

    Args:
      state: PopArt statistics.
      unnormalized: values [...] in the original scale (e.g. returns).
      indices: integer head index for each value, shaped like `unnormalized`.

    Returns:
      Normalised values shaped like `unnormalized`.
    """
    check("normalize", chex.assert_type, {"indices": indices}, int)
    _check_like("normalize", "unnormalized", unnormalized, indices)
    return (unnormalized - state.shift[indices]) / state.scale[indices]


def unnormalize(state: PopArtState, normalized: Array, indices: Array) -> Array:
    """Maps normalised values to the original scale: `scale[i] * n + shift[i]`.

    Args:
      state: PopArt statistics.
      normalized: values [...] in the normalised scale.
      indices: integer head index for each value, shaped like `normalized`.

    Returns:
      Unnormalised values shaped like `normalized`.
    """
    check("unnormalize", chex.assert_type, {"indices": indices}, int)
    _check_like("unnormalize", "normalized", normalized, indices)
    return state.scale[indices] * normalized + state.shift[indices]


def unnormalize_linear(state: PopArtState, inputs: Array, indices: Array) -> PopArtOutput:
    """Picks one output of the linear head per row and unnormalises it.

    Args:
      state: PopArt statistics.
      inputs: normalised outputs of the PopArt linear layer [..., O].
      indices: integer head index per row [...].

    Returns:
      `PopArtOutput(normalized, unnormalized)`, each [...].
    """
    check("unnormalize_linear", chex.assert_type, {"indices": indices}, int)
    check("unnormalize_linear", chex.assert_rank, {"inputs": inputs}, indices.ndim + 1)
    normalized = base.batched_index(inputs, indices)
    return PopArtOutput(normalized, unnormalize(state, normalized, indices))


def _scatter_sum(num_outputs: int, indices: Array, updates: Array, axis_name: AxisName) -> Array:
    """Sums `updates` into `num_outputs` slots by index, then over the named devices."""
    total = jax.ops.segment_sum(
        jnp.reshape(updates, (-1,)), jnp.reshape(indices, (-1,)), num_segments=num_outputs
    )
    if axis_name is not None:
        names = (axis_name,) if isinstance(axis_name, str) else tuple(axis_name)
        for name in names:
            total = jax.lax.psum(total, axis_name=name)
    return total


def _cross_replica_scatter_add(
    source: Array, indices: Array, updates: Array, axis_name: AxisName
) -> Array:
    """`source + ` the updates summed into their index slots, over the batch and the devices.

    rlax's private helper of the same name and signature, which rlax's own tests call; kept so
    that they run against rlkit.
    """
    if updates.shape != indices.shape or not jnp.issubdtype(indices.dtype, jnp.integer):
        raise ArgumentError(
            f"_cross_replica_scatter_add: `indices` must be integers shaped like `updates`, got "
            f"{indices.dtype}{indices.shape} and {updates.shape}"
        )
    check("_cross_replica_scatter_add", chex.assert_rank, {"source": source}, 1)
    return source + _scatter_sum(source.shape[0], indices, updates, axis_name).astype(source.dtype)


def art(
    state: PopArtState,
    targets: Array,
    indices: Array,
    step_size: float,
    scale_lb: float,
    scale_ub: float,
    axis_name: AxisName = None,
) -> PopArtState:
    """ART: moves the moment estimates towards the targets and recomputes the scale.

    For every target `y_j` with head index `i_j` (all increments use the old statistics and
    are summed, over the batch and over `axis_name` devices):

        shift[i]         += beta * sum_{j: i_j = i} (y_j - shift[i])
        second_moment[i] += beta * sum_{j: i_j = i} (y_j^2 - second_moment[i])
        scale[i]          = sqrt(clip(second_moment[i] - shift[i]^2, scale_lb^2, scale_ub^2))

    The returned state carries no gradient.

    Args:
      state: current statistics.
      targets: target values [...] (integer targets are used as they are, as in rlax).
      indices: integer head index per target, shaped like `targets`.
      step_size: beta, the moment step size.
      scale_lb: lower bound on the scale.
      scale_ub: upper bound on the scale.
      axis_name: device axis name (or names) to sum the increments over; None for none.

    Returns:
      The new `PopArtState`.
    """
    check("art", chex.assert_equal_shape, {"targets": targets, "indices": indices})
    check("art", chex.assert_type, {"indices": indices}, int)
    num_outputs = state.shift.shape[0]
    shift_inc = step_size * (targets - state.shift[indices])
    moment_inc = step_size * (jnp.square(targets) - state.second_moment[indices])
    shift = state.shift + _scatter_sum(num_outputs, indices, shift_inc, axis_name)
    second_moment = state.second_moment + _scatter_sum(num_outputs, indices, moment_inc, axis_name)
    variance = jnp.clip(second_moment - jnp.square(shift), scale_lb**2, scale_ub**2)
    new_state = PopArtState(shift, jnp.sqrt(variance), second_moment)
    return jax.tree_util.tree_map(jax.lax.stop_gradient, new_state)


def pop(params: LinearParams, old: PopArtState, new: PopArtState) -> LinearParams:
    """POP: rescales the last linear layer so unnormalised outputs are unchanged.

    `w_new = w * scale_old / scale_new`, `b_new = (scale_old * b + shift_old - shift_new) /
    scale_new`.

    Args:
      params: `{"w": [H, O], "b": [O]}` (Haiku) or `{"kernel": [H, O], "bias": [O]}` (Flax).
      old: statistics before `art`.
      new: statistics after `art`.

    Returns:
      New parameters with the same keys.
    """
    w_key, b_key = ("kernel", "bias") if "kernel" in params else ("w", "b")
    w, b = params[w_key], params[b_key]
    ratio = old.scale / new.scale
    w_new = w * jnp.broadcast_to(ratio, w.shape)
    b_new = (old.scale * b + old.shift - new.shift) / new.scale
    return {w_key: w_new, b_key: b_new}


def popart(
    num_outputs: int,
    step_size: float | None,
    scale_lb: float,
    scale_ub: float,
    axis_name: AxisName = None,
) -> tuple[Callable[[], PopArtState], Callable[..., tuple[LinearParams, PopArtState]]]:
    """Builds the PopArt `(initial_state, popart_update)` pair (rlax's factory).

    `initial_state()` returns shift 0, scale 1, second moment 1 for each of `num_outputs`
    heads. `popart_update(params, state, targets, indices)` runs `art` then `pop` and returns
    `(new_params, new_state)`; with `step_size=None` it returns its inputs unchanged.

    Args:
      num_outputs: number of outputs of the value head.
      step_size: moment step size beta, or None to disable PopArt.
      scale_lb: lower bound on the scale.
      scale_ub: upper bound on the scale.
      axis_name: device axis name(s) to aggregate statistics over.

    Returns:
      `(initial_state, popart_update)`.
    """

    def initial_state() -> PopArtState:
        return PopArtState(
            jnp.zeros([num_outputs]), jnp.ones([num_outputs]), jnp.ones([num_outputs])
        )

    def popart_update(
        params: LinearParams, state: PopArtState, targets: Array, indices: Array
    ) -> tuple[LinearParams, PopArtState]:
        if step_size is None:
            return params, state
        new_state = art(state, targets, indices, step_size, scale_lb, scale_ub, axis_name)
        return pop(params, state, new_state), new_state

    return initial_state, popart_update
