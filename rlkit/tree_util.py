"""Pytree helpers with rlax 0.1.9's names and semantics.

`tree_select` and `tree_split_key`, which rlax also keeps in its `tree_util`, live in
`rlkit.base`; this module adds the rest of rlax's tree utilities. They are plain Python over
`jax.tree_util`, so they work inside and outside `jit`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rlkit.base import replace_masked
from rlkit.errors import RLKitError

__all__ = [
    "transpose_first_axis_to_last",
    "transpose_last_axis_to_first",
    "tree_fn",
    "tree_map_zipped",
    "tree_replace_masked",
    "tree_split_leaves",
]


def tree_map_zipped(fn: Callable[..., Any], nests: Sequence[Any]) -> Any:
    """Maps `fn` over the zipped leaves of a list of pytrees of one structure.

    `out.leaf = fn(nests[0].leaf, nests[1].leaf, ...)`.

    Args:
      fn: function of `len(nests)` arguments.
      nests: pytrees that all share one structure.

    Returns:
      A pytree of that structure with the outputs of `fn`; `nests` itself if it is empty.

    Raises:
      RLKitError: if the structures differ (message: "must share the same tree structure").
    """
    if not nests:
        return nests
    treedef = jax.tree_util.tree_structure(nests[0])
    for i, nest in enumerate(nests[1:], start=1):
        if jax.tree_util.tree_structure(nest) != treedef:
            raise RLKitError(
                f"tree_map_zipped: all elements of `nests` must share the same tree structure; "
                f"nests[{i}] is {jax.tree_util.tree_structure(nest)}, expected {treedef}"
            )
    columns = zip(*[jax.tree_util.tree_leaves(nest) for nest in nests])
    return jax.tree_util.tree_unflatten(treedef, [fn(*column) for column in columns])


def tree_split_leaves(tree_like: Any, axis: int = 0, keepdim: bool = False) -> Any:
    """Splits a pytree of arrays along `axis` into a tuple of pytrees, one per index.

    `out[i].leaf = leaf.take(i, axis)` (or the size-1 slice when `keepdim`). The leaves are
    split with NumPy, so this is a host-side helper.

    Args:
      tree_like: pytree whose leaves share the size of `axis`.
      axis: axis to split along.
      keepdim: whether to keep `axis` with size 1.

    Returns:
      A tuple of `leaf.shape[axis]` pytrees (`tree_like` itself if it has length 0).
    """
    if len(tree_like) == 0:
        return tree_like
    leaves, treedef = jax.tree_util.tree_flatten(tree_like)
    size = leaves[0].shape[axis]
    pieces = [np.split(leaf, size, axis=axis) for leaf in leaves]

    def piece(parts: list, i: int) -> Any:
        return parts[i] if keepdim else np.squeeze(parts[i], axis)

    return tuple(
        jax.tree_util.tree_unflatten(treedef, [piece(parts, i) for parts in pieces])
        for i in range(size)
    )


def tree_replace_masked(tree_data: Any, tree_replacement: Any, mask: chex.Array) -> Any:
    """`replace_masked` on every leaf: slices where `mask` is 1 come from the replacement.

    Args:
      tree_data: pytree of arrays [B, ...].
      tree_replacement: pytree of the same structure, or None to write zeros.
      mask: 0/1 array whose shape is a prefix of every leaf's shape.

    Returns:
      A pytree like `tree_data`.
    """
    if tree_replacement is None:
        tree_replacement = jax.tree_util.tree_map(jnp.zeros_like, tree_data)
    return jax.tree_util.tree_map(
        lambda data, replacement: replace_masked(data, replacement, mask),
        tree_data,
        tree_replacement,
    )


def tree_fn(fn: Callable[..., Any], **unmapped_kwargs: Any) -> Callable[..., Any]:
    """Wraps `fn` so that it is mapped over the leaves of its positional arguments.

    `tree_fn(fn, **kw)(*trees) = tree_map(partial(fn, **kw), *trees)`; the keyword arguments
    are passed unmapped to every call.

    Args:
      fn: function of leaves.
      **unmapped_kwargs: keyword arguments bound with `functools.partial`.

    Returns:
      The wrapped function.
    """
    bound = functools.partial(fn, **unmapped_kwargs)

    def wrapped(*args: Any) -> Any:
        return jax.tree_util.tree_map(bound, *args)

    return wrapped


def transpose_last_axis_to_first(tree: chex.ArrayTree) -> chex.ArrayTree:
    """Moves the last axis of every leaf to the front: [D1, ..., Dn] -> [Dn, D1, ..., Dn-1].

    Args:
      tree: pytree of arrays.

    Returns:
      The pytree with transposed leaves.
    """
    return jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, -1, 0), tree)


def transpose_first_axis_to_last(tree: chex.ArrayTree) -> chex.ArrayTree:
    """Moves the first axis of every leaf to the end: [D1, D2, ..., Dn] -> [D2, ..., Dn, D1].

    Args:
      tree: pytree of arrays.

    Returns:
      The pytree with transposed leaves.
    """
    return jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 0, -1), tree)
