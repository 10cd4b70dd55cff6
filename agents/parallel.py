"""Parallel runs and shards: the mesh shape of a job, and the ``data`` axis of one run.

``MeshShape`` (``--mesh runs=R,data=D``) is the device grid ``agents.runtime.devices.RunMesh``
lays a job out on. The rest of this module is the ``data`` axis: one run's env batch split into
shards that average their gradients.

A run on the ``data`` axis of a mesh (``agents.runtime.devices``) is ``D`` shards of one program.
Every shard steps ``num_envs / D`` envs and keeps ``buffer_size / D`` transitions of replay, and
samples ``batch_size / D`` of them (``local_config``); all shards hold the same parameters, because
every optimiser step averages the gradients across the shards first (``data_mean_gradients``,
the first transformation of ``agents.base.make_optimizer``), and normaliser statistics are merged
across them (``data_axis_names`` passed as ``axis_name`` to ``rlkit.running_stats_update``).

The runtime binds the axis while it traces a run's program (``bind_data_axis``); outside it (a
run on one shard, the default) every function here is the identity, so the agents' code is the
same with and without the axis and a one-shard run computes exactly what it computed before.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlkit.errors import RLKitError

__all__ = [
    "DataAxis",
    "MeshShape",
    "bind_data_axis",
    "data_axis_names",
    "data_index",
    "data_max",
    "data_mean",
    "data_mean_gradients",
    "data_size",
    "data_sum",
    "fold_in_shard",
    "local_config",
    "parse_mesh",
    "split_field",
]


@dataclasses.dataclass(frozen=True)
class MeshShape:
    """The device grid of a job: ``runs`` devices (None: chosen from the device count) by ``data``.

    ``--mesh runs=4,data=2`` on the command line (``parse_mesh``).
    """

    runs: int | None = None
    data: int = 1


def parse_mesh(text: str | None) -> MeshShape:
    """``"runs=4,data=2"`` (either part may be left out; ``""``/None: the default) -> MeshShape."""
    if not text:
        return MeshShape()
    sizes: dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in ("runs", "data") or name in sizes:
            raise RLKitError(
                f"--mesh: expected runs=N,data=M (each at most once), got {text!r}"
            )
        try:
            size = int(value)
        except ValueError:
            size = 0
        if size < 1:
            raise RLKitError(f"--mesh: {name} must be a positive integer, got {value.strip()!r}")
        sizes[name] = size
    return MeshShape(runs=sizes.get("runs"), data=sizes.get("data", 1))


@dataclasses.dataclass(frozen=True)
class DataAxis:
    """How the shards of a run are laid out while its program is traced.

    Attributes:
      names: the mapped axis names that together make the data axis, outermost first (a mesh
        axis over devices and/or a ``vmap`` axis over the shards one device holds).
      sizes: the size of each of ``names``; their product is the number of shards.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.sizes))


_AXIS: contextvars.ContextVar[DataAxis | None] = contextvars.ContextVar(
    "rlkit_data_axis", default=None
)


@contextlib.contextmanager
def bind_data_axis(axis: DataAxis | None) -> Iterator[None]:
    """Within this block, traced code sees ``axis`` as the run's data axis (None: one shard)."""
    token = _AXIS.set(axis)
    try:
        yield
    finally:
        _AXIS.reset(token)


def data_axis_names() -> tuple[str, ...] | None:
    """The axis names of the data axis being traced, or None for a run on one shard."""
    axis = _AXIS.get()
    return None if axis is None else axis.names


def data_size() -> int:
    """The number of shards of the run being traced (1 without a data axis)."""
    axis = _AXIS.get()
    return 1 if axis is None else axis.size


def data_index() -> chex.Array:
    """This shard's index in ``[0, data_size())`` (0 without a data axis)."""
    axis = _AXIS.get()
    if axis is None:
        return jnp.zeros((), jnp.int32)
    index = jnp.zeros((), jnp.int32)
    for name, size in zip(axis.names, axis.sizes):
        index = index * size + jax.lax.axis_index(name)
    return index


def data_mean(tree: Any) -> Any:
    """The mean of ``tree`` over the shards (the identity on one shard)."""
    names = data_axis_names()
    return tree if names is None else jax.lax.pmean(tree, names)


def data_sum(tree: Any) -> Any:
    """The sum of ``tree`` over the shards (the identity on one shard)."""
    names = data_axis_names()
    return tree if names is None else jax.lax.psum(tree, names)


def data_max(tree: Any) -> Any:
    """The maximum of ``tree`` over the shards (the identity on one shard)."""
    names = data_axis_names()
    return tree if names is None else jax.lax.pmax(tree, names)


def fold_in_shard(key: chex.PRNGKey) -> chex.PRNGKey:
    """``key`` made distinct per shard (so shards step and sample independently); unchanged on
    one shard. Keys that must agree across shards (parameter initialisation) are not folded."""
    if data_axis_names() is None:
        return key
    return jax.random.fold_in(key, data_index())


def data_mean_gradients() -> optax.GradientTransformation:
    """An optax transformation that averages the updates over the data axis (identity without).

    Each shard's gradient is the mean over its ``batch / D`` samples, so the average over equal
    shards is the gradient of the whole batch; every shard then applies the same step, and the
    parameters stay equal across shards.
    """

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        del params
        return data_mean(updates), state

    return optax.GradientTransformation(init, update)


def split_field(field: dataclasses.Field) -> bool:
    """Whether a config field counts samples of the whole env batch (split over the shards)."""
    return bool(field.metadata.get("split", False))


def local_config(config: Any, shards: int) -> Any:
    """What one of ``shards`` shards of a run sees: every ``split`` field divided by ``shards``.

    The split fields are sums over the env batch (``num_envs``, ``total_timesteps``, replay
    ``buffer_size`` and ``batch_size``, ``learning_starts``); per-update counts (epochs,
    minibatches, gradient steps) stay, so a shard runs the same number of updates on its part of
    each batch. ``num_envs`` and ``batch_size`` must be divisible by ``shards``; the others are
    rounded down. ``shards == 1`` returns ``config`` itself.

    Raises:
      RLKitError: naming the flag, if a field must be divisible and is not.
    """
    if shards == 1:
        return config
    values = {}
    for f in dataclasses.fields(config):
        if not split_field(f):
            continue
        value = getattr(config, f.name)
        if f.metadata.get("divisible", False) and np.any(np.asarray(value) % shards):
            flag = "--" + f.name.replace("_", "-")
            raise RLKitError(
                f"{flag}: must be divisible by the data axis of the mesh ({shards}), got {value}"
            )
        if isinstance(value, (int, np.integer)):
            values[f.name] = int(value) // shards
        else:
            values[f.name] = jnp.asarray(value) // shards
    return config.replace(**values)
