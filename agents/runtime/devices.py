"""Where the runs of a training job go: a device mesh with a ``runs`` and a ``data`` axis.

The runs axis (seeds x sweep points) leads every array of a compiled training job. ``RunMesh``
lays the job out on a two-axis ``jax.sharding.Mesh``:

* ``runs``: independent runs, split into equal blocks over the devices of the axis; runs never
  communicate. A run count that does not divide the axis is padded with copies of the last run,
  whose results are dropped.
* ``data``: one run's env batch split into shards over the devices of the axis
  (``agents.parallel``): each shard steps its share of the envs and keeps its share of replay,
  gradients are averaged over the shards before every optimiser step, normaliser statistics
  merged. A run's state then has a shard axis right after the runs axis, ``[runs, shards, ...]``.

It is one ``jax.shard_map`` over the mesh (no ``pmap``, no Python loop over devices), and the same
program over the devices of several processes after ``jax.distributed.initialize``: every process
holds the shards of its own devices (``put`` builds the global arrays, ``gather`` reads them back).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax._src import distributed as _jax_distributed
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agents.parallel import DataAxis, MeshShape, bind_data_axis
from rlkit.errors import RLKitError

__all__ = [
    "RunMesh",
    "cpu_devices_flag",
    "is_writer",
    "process_barrier",
    "runs_sharding",
    "vmap_runs",
]


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


_BARRIERS = itertools.count()


def process_barrier(name: str, timeout_s: float = 1800.0) -> None:
    """Wait until every process of the job reaches this point (nothing with one process).

    It waits in the coordination service of ``jax.distributed``, not in a device collective: a
    process still compiling may come late (gloo gives up on a collective whose peers are more
    than 30 s apart), so the backends meet here after compiling, before their first collective.
    """
    if jax.process_count() > 1:
        client = _jax_distributed.global_state.client
        client.wait_at_barrier(f"rlkit/{name}/{next(_BARRIERS)}", int(timeout_s * 1000))


def is_writer() -> bool:
    """Whether this process writes the job's files (logs, metrics, checkpoints): process 0."""
    return jax.process_index() == 0


def _pad_rows(x: Any, rows: int) -> np.ndarray:
    x = np.asarray(x)
    if x.shape[0] == rows:
        return x
    return np.concatenate([x, np.repeat(x[-1:], rows - x.shape[0], axis=0)], axis=0)


class RunMesh:
    """How a job's ``num_runs`` runs, each of ``shards`` data shards, sit on devices.

    Args:
      num_runs: the job's runs (seeds x sweep points).
      shape: the device grid (default ``MeshShape()``: no data axis; the runs over all devices
        when there are at least as many runs, else over as many devices as runs; with several
        processes always every device).
      shards: data shards per run (default ``shape.data``); a multiple of ``shape.data``, the
        shards beyond one per device are vmapped on their device. ``RunMesh(R, MeshShape(1, 1),
        shards=2)`` computes on one device exactly what ``MeshShape(runs=1, data=2)`` computes on
        two.
      devices: the devices to use (default ``jax.devices()``: every process's).

    Attributes:
      padded_runs: ``num_runs`` rounded up to a multiple of the runs axis.
      mesh: the ``Mesh`` (axes ``"runs"``, ``"data"``), or None on a single device.
    """

    def __init__(
        self,
        num_runs: int,
        shape: MeshShape | None = None,
        shards: int | None = None,
        devices: Sequence[Any] | None = None,
    ):
        shape = MeshShape() if shape is None else shape
        devices = list(jax.devices() if devices is None else devices)
        multiprocess = len({d.process_index for d in devices}) > 1
        data = shape.data
        if len(devices) < data or len(devices) % data:
            raise RLKitError(
                f"--mesh: data={data} must divide the number of devices ({len(devices)})"
            )
        runs = shape.runs
        if runs is None:
            runs = len(devices) // data
            if not multiprocess:
                runs = max(1, min(runs, num_runs))
        if runs * data > len(devices):
            raise RLKitError(
                f"--mesh: runs={runs} x data={data} needs {runs * data} devices, "
                f"{len(devices)} available"
            )
        if multiprocess and runs * data != len(devices):
            raise RLKitError(
                f"--mesh: with several processes the mesh must use every device: runs x data = "
                f"{runs * data}, devices = {len(devices)}"
            )
        self.shards = data if shards is None else int(shards)
        if self.shards < 1 or self.shards % data:
            raise RLKitError(
                f"shards: expected a multiple of the mesh's data axis ({data}), got {shards}"
            )
        self.num_runs = num_runs
        self.shape = MeshShape(runs, data)
        self.padded_runs = math.ceil(num_runs / runs) * runs
        grid = np.asarray(devices[: runs * data], dtype=object).reshape(runs, data)
        self.mesh = None if grid.size == 1 else Mesh(grid, ("runs", "data"))
        self.devices = list(grid.flat)

    @property
    def sharded(self) -> bool:
        """Whether run states carry a shard axis (``[runs, shards, ...]``)."""
        return self.shards > 1

    def _spec(self, shard_axis: bool) -> PartitionSpec:
        if shard_axis and self.sharded:
            return PartitionSpec("runs", "data")
        return PartitionSpec("runs")

    def sharding(self, shard_axis: bool = True):
        """The placement of arrays with a leading runs axis (and a shard axis after it when
        ``shard_axis`` and the runs are sharded); None on a single device."""
        if self.mesh is None:
            return None
        return NamedSharding(self.mesh, self._spec(shard_axis))

    def map(
        self,
        fn: Callable,
        in_axes: Sequence[int | None],
        shard_in: Sequence[bool] | None = None,
    ) -> Callable:
        """``fn`` (one shard of one run) over every run and shard of the mesh; use under jit.

        Args:
          fn: the per-run, per-shard function; traced with the data axis bound
            (``agents.parallel``) when the runs are sharded.
          in_axes: per positional argument, 0 (it has the leading runs axis, padded) or None
            (shared by every run).
          shard_in: per argument, whether it also has the shard axis (a run state); default none.

        Returns:
          The mapped function: every output has the runs axis first, then the shard axis when
          the runs are sharded.
        """
        in_axes = tuple(in_axes)
        shard_in = (False,) * len(in_axes) if shard_in is None else tuple(shard_in)
        if any(a not in (0, None) for a in in_axes) or len(shard_in) != len(in_axes):
            raise RLKitError(f"RunMesh.map: in_axes entries must be 0 or None, got {in_axes!r}")
        data = self.shape.data
        local = self.shards // data
        axis = None
        if self.sharded:
            names = (("data",) if data > 1 else ()) + ("shard",)
            sizes = ((data,) if data > 1 else ()) + (local,)
            axis = DataAxis(names, sizes)

        def per_shard(*args):
            with bind_data_axis(axis):
                return fn(*args)

        if self.sharded:
            shard_axes = tuple(0 if s else None for s in shard_in)
            per_run = jax.vmap(per_shard, in_axes=shard_axes, axis_name="shard", axis_size=local)
        else:
            per_run = per_shard
        mapped = jax.vmap(per_run, in_axes=in_axes)
        if self.mesh is None:
            return mapped
        in_specs = tuple(
            PartitionSpec() if a is None else self._spec(s) for a, s in zip(in_axes, shard_in)
        )
        return jax.shard_map(
            mapped,
            mesh=self.mesh,
            in_specs=in_specs,
            out_specs=self._spec(True),
            # Runs are independent and the data shards agree by construction (averaged updates);
            # skip the varying-across-devices checks, which reject scans whose carries start
            # from constants.
            check_vma=False,
        )

    def pad(self, tree: Any) -> Any:
        """Host arrays with ``num_runs`` rows padded to ``padded_runs`` (the last row repeated)."""
        return jax.tree.map(lambda x: _pad_rows(x, self.padded_runs), tree)

    def put(self, tree: Any, shard_axis: bool = False) -> Any:
        """Host arrays (leading axis ``padded_runs``) as arrays placed on the mesh; with several
        processes each process places the shards of its own devices."""
        sharding = self.sharding(shard_axis)
        if sharding is None:
            return jax.tree.map(jax.numpy.asarray, tree)

        def place(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

        return jax.tree.map(place, tree)

    def gather(self, tree: Any) -> Any:
        """Arrays placed by this mesh, read back whole on every process as numpy."""
        if jax.process_count() > 1:
            return multihost_utils.process_allgather(tree, tiled=True)
        return jax.device_get(tree)

def _local_mesh(num_runs: int) -> RunMesh:
    mesh = RunMesh(num_runs, devices=jax.local_devices())
    if mesh.padded_runs != num_runs:  # unpadded: the runs axis over as many devices as divide it
        mesh = RunMesh(num_runs, MeshShape(runs=1), devices=jax.local_devices())
    return mesh


def vmap_runs(fn: Callable, num_runs: int, in_axes: Any = 0) -> Callable:
    """``jax.vmap(fn, in_axes)`` over ``num_runs`` runs, split over the local devices when their
    number divides ``num_runs`` (``RunMesh``, which pads, is what the training job uses). Use it
    inside ``jax.jit``; ``runs_sharding(num_runs)`` is where its outputs go.

    Args:
      fn: the per-run function.
      num_runs: size of the runs axis (the leading axis of the mapped inputs).
      in_axes: ``jax.vmap``'s ``in_axes``: 0 for mapped arguments, None for shared ones (0 and
        None only, per positional argument).
    """
    mesh = _local_mesh(num_runs)

    def call(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise RLKitError(f"vmap_runs: {len(args)} arguments but in_axes={in_axes!r}")
        return mesh.map(fn, axes)(*args)

    return call


def runs_sharding(num_runs: int):
    """Where ``vmap_runs(fn, num_runs)`` places its outputs (None: the default device)."""
    return _local_mesh(num_runs).sharding()
