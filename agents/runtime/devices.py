"""Where the runs of a training job go: one device, or split over the local devices.

The runs axis (seeds x sweep points) leads every array of a compiled training job. With several
local devices (several GPUs, or a CPU split into one device per core with ``cpu_devices_flag``),
``vmap_runs`` gives each device an equal block of runs with ``jax.shard_map`` over a one-axis mesh
(axis ``"runs"``); runs never communicate.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlkit.errors import RLKitError

__all__ = ["cpu_devices_flag", "run_devices", "runs_mesh", "runs_sharding", "vmap_runs"]


def cpu_devices_flag(xla_flags: str | None = None) -> str:
    """``XLA_FLAGS`` with one host (CPU) device per available core, unless it already sets a count.

    XLA runs one program on one CPU device largely on one core, and on a small CPU the vmapped seeds
    of an agent are arithmetic-bound, so a vmapped program gains little from its batch there. With
    one host device per core, ``vmap_runs`` gives each core its own share of the runs. Set this in
    ``os.environ["XLA_FLAGS"]`` before JAX initialises its backends (``scripts/train.py`` and
    ``scripts/benchmark.py`` do). It changes nothing for a single run or on an accelerator.

    Args:
      xla_flags: the current flags (default: ``os.environ.get("XLA_FLAGS", "")``).

    Returns:
      The flags with ``--xla_force_host_platform_device_count=<cores>`` added where missing.
    """
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    if "xla_force_host_platform_device_count" in flags:
        return flags
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return f"{flags} --xla_force_host_platform_device_count={max(1, cores)}".strip()


def run_devices(num_runs: int) -> list:
    """The local devices ``vmap_runs`` spreads ``num_runs`` runs over.

    All local devices of the default backend when there are several and their number divides
    ``num_runs`` (each then gets the same number of runs); otherwise just the default device.
    """
    devices = jax.local_devices()
    if len(devices) > 1 and num_runs % len(devices) == 0:
        return devices
    return devices[:1]


def runs_mesh(devices: list) -> Mesh:
    """The one-axis mesh (axis ``"runs"``) that ``vmap_runs`` splits runs over."""
    return Mesh(np.asarray(devices), ("runs",))


def runs_sharding(num_runs: int):
    """How ``vmap_runs(fn, num_runs)`` places its outputs: split along the leading runs axis over
    ``run_devices(num_runs)`` when there are several, else None (the default device)."""
    devices = run_devices(num_runs)
    if len(devices) == 1:
        return None
    return NamedSharding(runs_mesh(devices), PartitionSpec("runs"))


def vmap_runs(fn: Callable, num_runs: int, in_axes: Any = 0) -> Callable:
    """``jax.vmap(fn, in_axes)`` over a leading runs axis of size ``num_runs``, spread over devices.

    With one device (see ``run_devices``) this is exactly ``jax.vmap(fn, in_axes)``. With D > 1
    devices, the runs axis of every mapped input and of every output is split into D equal blocks
    (``jax.shard_map`` over a one-axis mesh), and each device runs the vmapped ``fn`` over its block;
    runs never communicate, so each run computes what it would alone. Use it inside ``jax.jit``.

    Args:
      fn: the per-run function.
      num_runs: size of the runs axis (the leading axis of the mapped inputs).
      in_axes: ``jax.vmap``'s ``in_axes``: 0 for mapped arguments, None for shared ones (only 0 and
        None are supported, per positional argument).

    Returns:
      The mapped function, with every output's leading axis the runs axis.
    """
    mapped = jax.vmap(fn, in_axes=in_axes)
    devices = run_devices(num_runs)
    if len(devices) == 1:
        return mapped
    mesh = runs_mesh(devices)

    def spec(axis):
        if axis is None:
            return PartitionSpec()
        if axis != 0:
            raise RLKitError(f"vmap_runs: in_axes entries must be 0 or None, got {axis!r}")
        return PartitionSpec("runs")

    def call(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise RLKitError(f"vmap_runs: {len(args)} arguments but in_axes={in_axes!r}")
        sharded = jax.shard_map(
            mapped,
            mesh=mesh,
            in_specs=tuple(spec(a) for a in axes),
            out_specs=PartitionSpec("runs"),
            # The runs are independent; skip the varying-across-devices type checks, which would
            # otherwise reject agents' scans whose carries start from constants.
            check_vma=False,
        )
        return sharded(*args)

    return call
