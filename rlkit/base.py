"""Small array and pytree helpers shared by the rest of rlkit.

Names, arguments and results follow rlax 0.1.9 (`rlax.batched_index`, `rlax.one_hot`,
`rlax.lhs_broadcast`, `rlax.replace_masked`, `rlax.tree_select`, `rlax.tree_split_key`,
`rlax.AllSum`), so
code written against rlax ports by changing the import. Unlike rlax, the helpers check their
inputs and raise `rlkit.errors.RLKitError` (a `ValueError`) for shapes that cannot work.
"""

from collections.abc import Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rlkit.errors import RLKitError, check

__all__ = [
    "AllSum",
    "batched_index",
    "lhs_broadcast",
    "one_hot",
    "replace_masked",
    "tree_select",
    "tree_split_key",
]

Array = chex.Array


def maybe_stop_gradient(x: Any, stop: Any) -> Any:
    """``stop_gradient(x)`` if ``stop``, else ``x``; ``x`` may be a pytree and ``stop`` a Python
    bool or a traced bool scalar. Shared by the losses' ``stop_target_gradients`` flags (not part
    of rlax's API, so not exported from ``rlkit``)."""
    if isinstance(stop, (bool, np.bool_)):
        return jax.lax.stop_gradient(x) if stop else x
    return jax.tree_util.tree_map(
        lambda leaf: jnp.where(stop, jax.lax.stop_gradient(leaf), leaf), x
    )


def as_vector(x: Any, like: Array) -> Array:
    """Broadcasts a scalar or vector ``x`` to the shape and dtype of ``like`` (a per-step
    parameter such as ``lambda_`` given as one number or one per step). Shared by the multistep
    returns and the off-policy value losses (not part of rlax's API, so not exported from
    ``rlkit``)."""
    return jnp.broadcast_to(jnp.asarray(x, dtype=like.dtype), like.shape)


def batched_index(values: Array, indices: Array, keepdims: bool = False) -> Array:
    """Picks one entry of the last axis of `values` for every position of the leading axes.

    `out[i, j, ...] = values[i, j, ..., indices[i, j, ...]]`. The usual use is reading the
    value of the taken action: `batched_index(q_t, a_t)` with `q_t` [T, A] and `a_t` [T].

    Args:
      values: array of shape [..., D].
      indices: integer array of shape [...] (the leading shape of `values`), entries in [0, D).
      keepdims: if True, keep the indexed axis with size 1.

    Returns:
      Array of shape [...], or [..., 1] when `keepdims` is True.
    """
    check("batched_index", chex.assert_rank, {"values": values}, indices.ndim + 1)
    check("batched_index", chex.assert_type, {"indices": indices}, int)
    picked = jnp.take_along_axis(values, jnp.expand_dims(indices, -1), axis=-1)
    return picked if keepdims else jnp.squeeze(picked, axis=-1)


def one_hot(indices: Array, num_classes: int, dtype: Any = jnp.float32) -> Array:
    """Encodes integer indices as one-hot vectors along a new trailing axis.

    Indices outside [0, num_classes) give an all-zero row.

    Args:
      indices: integer array of any shape [...].
      num_classes: size of the new trailing axis.
      dtype: dtype of the result.

    Returns:
      Array of shape [..., num_classes] with a 1 at each index and 0 elsewhere.
    """
    classes = jnp.arange(num_classes).reshape((1,) * indices.ndim + (num_classes,))
    return (jnp.expand_dims(indices, -1) == classes).astype(dtype)


def lhs_broadcast(source: Array, target: Array) -> Array:
    """Reshapes `source` so that it broadcasts against `target` from the left.

    NumPy broadcasting aligns trailing axes; this helper aligns leading ones instead, by
    appending size-1 axes to `source`. Every axis of `source` must equal the matching leading
    axis of `target` or be 1.

    Args:
      source: array of shape [d_0, ..., d_k].
      target: array of shape [e_0, ..., e_k, ...] with d_i in {e_i, 1}.

    Returns:
      `source` reshaped to [d_0, ..., d_k, 1, ..., 1] with `target.ndim` axes.

    Raises:
      RLKitError: if the shapes are not compatible in that sense.
    """
    src_shape = tuple(source.shape)
    lead = tuple(target.shape[: source.ndim])
    if source.ndim > target.ndim or any(s not in (t, 1) for s, t in zip(src_shape, lead)):
        raise RLKitError(
            f"lhs_broadcast: source shape {src_shape} is not compatible with target shape "
            f"{tuple(target.shape)}; expected each source axis to equal the matching leading "
            "target axis or be 1"
        )
    return jnp.reshape(source, src_shape + (1,) * (target.ndim - source.ndim))


def replace_masked(data: Array, replacement: Array | None, mask: Array) -> Array:
    """Replaces the slices of `data` selected by `mask`.

    `out = where(mask, replacement, data)`, with `mask` aligned to the leading axes of `data`
    (see `lhs_broadcast`).

    Args:
      data: array of shape [B, ...].
      replacement: array shaped like `data`, or None to write zeros.
      mask: boolean or 0/1 array whose shape is a prefix of `data.shape`; where it is true
        the slice is taken from `replacement`.

    Returns:
      Array shaped like `data`.
    """
    if replacement is None:
        replacement = jnp.zeros_like(data)
    check("replace_masked", chex.assert_equal_shape, {"data": data, "replacement": replacement})
    return jnp.where(lhs_broadcast(mask, data), replacement, data)


def tree_select(pred: Array, on_true: Any, on_false: Any) -> Any:
    """Chooses between two pytrees of the same structure with a traced scalar predicate.

    Works under `jit` (both branches are evaluated; no Python branching on `pred`).

    Args:
      pred: scalar boolean array.
      on_true: pytree returned where `pred` is True.
      on_false: pytree with the same structure, shapes and dtypes as `on_true`.

    Returns:
      `on_true` if `pred` else `on_false`, leaf by leaf.

    Raises:
      RLKitError: if the two pytrees differ in structure.
    """
    check("tree_select", chex.assert_rank, {"pred": pred}, 0)
    check("tree_select", chex.assert_type, {"pred": pred}, bool)
    true_def = jax.tree_util.tree_structure(on_true)
    false_def = jax.tree_util.tree_structure(on_false)
    if true_def != false_def:
        raise RLKitError(
            f"tree_select: on_true and on_false must have the same structure, got {true_def} "
            f"and {false_def}"
        )
    return jax.tree_util.tree_map(lambda t, f: jax.lax.select(pred, t, f), on_true, on_false)


def tree_split_key(rng_key: Array, tree_like: Any) -> tuple[Array, Any]:
    """Makes one fresh PRNG key per leaf of a pytree.

    The key is split into `1 + num_leaves` keys: the first is returned as the carried key and
    the rest fill the leaves in flattening order (identical to rlax for the same key).

    Args:
      rng_key: a JAX PRNG key.
      tree_like: any pytree; only its structure is used.

    Returns:
      `(new_key, keys)` where `keys` has the structure of `tree_like` with a key per leaf.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree_like)
    keys = jax.random.split(rng_key, len(leaves) + 1)
    leaf_keys = [keys[i] for i in range(1, len(leaves) + 1)]
    return keys[0], jax.tree_util.tree_unflatten(treedef, leaf_keys)


class AllSum:
    """Sums an array locally and then over the devices of a named axis (rlax's `AllSum`).

    `AllSum(axis_name)(x, axis) = psum(sum(x, axis), axis_name)`, or the local sum when
    `axis_name` is None; used by V-MPO to normalise its weights across devices.
    """

    def __init__(self, axis_name: str | None = None):
        """Binds the axis name.

        Args:
          axis_name: name of a `pmap`/`vmap`/`shard_map` axis to sum over, or None.
        """
        self._axis_name = axis_name

    def __call__(self, x: Array, axis: int | Sequence[int] | None = None) -> Array:
        """Returns the sum of `x` over `axis` (all axes if None) and over the device axis.

        Args:
          x: array to sum.
          axis: local axes to sum over; None sums all of them.

        Returns:
          The sum.
        """
        total = jnp.sum(x, axis=axis)
        if self._axis_name:
            total = jax.lax.psum(total, axis_name=self._axis_name)
        return total
