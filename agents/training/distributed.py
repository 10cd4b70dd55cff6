"""Several processes (hosts) in one training job, on ``jax.distributed``.

Every process runs the same ``scripts/train.py`` command with its own ``--process-id``; after
``initialize`` the job's mesh spans the devices of every process (``agents.runtime.devices``),
each process holds its own shards, and process 0 alone writes the run directory (which must be
on a filesystem every process sees, as on a cluster). CPU processes talk through gloo.

If a process dies, the others notice within ``PEER_TIMEOUT_S`` seconds (a watchdog thread in
every process, through the coordination service's key-value store) and stop with one line naming
the process and exit status 2; should the watchdog itself be stuck, JAX's own heartbeat stops
them after ``HEARTBEAT_TIMEOUT_S``. The run then resumes from its last checkpoint with
``--resume``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

import jax
from jax._src import distributed as _jax_distributed

from rlkit.errors import RLKitError

__all__ = [
    "HEARTBEAT_TIMEOUT_S",
    "PEER_TIMEOUT_S",
    "cluster_detected",
    "initialize",
    "stop_on_peer_failure",
]

#: Seconds without a heartbeat after which JAX declares a process dead and aborts the others
#: (``RLKIT_HEARTBEAT_TIMEOUT_S`` overrides it).
HEARTBEAT_TIMEOUT_S = 30
#: Seconds without a sign of life from another process after which rlkit's watchdog stops this
#: one with a message (``RLKIT_PEER_TIMEOUT_S`` overrides it).
PEER_TIMEOUT_S = 10.0
#: Exit status of a process stopped because another one died (as for any user-facing error).
PEER_LOST_EXIT = 2
_DONE = "done"

#: Environment variables by which a cluster launcher tells JAX it started several processes.
_CLUSTER_VARS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "JAX_NUM_PROCESSES")


def cluster_detected() -> bool:
    """Whether a cluster launcher (SLURM, Open MPI) started this process as one of several."""
    for name in _CLUSTER_VARS:
        try:
            if int(os.environ.get(name, "1")) > 1:
                return True
        except ValueError:
            continue
    return False


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join the job's processes with ``jax.distributed.initialize``; call before JAX starts.

    With none of the three given, JAX's own cluster detection is used when a launcher started
    several processes (``cluster_detected``), and nothing happens otherwise (one process).

    Args:
      coordinator_address: ``HOST:PORT`` of the coordinator, which process 0 starts.
      num_processes: the number of processes.
      process_id: this process's index in ``[0, num_processes)``.

    Returns:
      Whether this is a job of several processes.

    Raises:
      RLKitError: naming the flag, when the three are given only in part or out of range, or
        when the processes cannot join.
    """
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if not any(given):
        if not cluster_detected():
            return False
        kwargs = {}
    else:
        if not all(given):
            raise RLKitError(
                "--coordinator-address, --num-processes and --process-id: give all three "
                "(or none, on a cluster that JAX detects)"
            )
        host, sep, port = str(coordinator_address).rpartition(":")
        if not sep or not host or not port.isdigit():
            raise RLKitError(
                f"--coordinator-address: expected HOST:PORT, got {coordinator_address!r}"
            )
        if num_processes < 1:
            raise RLKitError(f"--num-processes: expected an integer >= 1, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise RLKitError(
                f"--process-id: expected an integer in [0, {num_processes}), got {process_id}"
            )
        if num_processes == 1:
            return False
        kwargs = {
            "coordinator_address": coordinator_address,
            "num_processes": num_processes,
            "process_id": process_id,
        }
    timeout = int(os.environ.get("RLKIT_HEARTBEAT_TIMEOUT_S", HEARTBEAT_TIMEOUT_S))
    try:
        jax.distributed.initialize(
            **kwargs,
            initialization_timeout=max(60, timeout),
            heartbeat_timeout_seconds=timeout,
        )
    except Exception as e:  # JAX raises RuntimeError/XlaRuntimeError with the cause
        raise RLKitError(f"--coordinator-address: the processes could not join ({e})") from None
    if jax.process_count() > 1:
        _start_watchdog(float(os.environ.get("RLKIT_PEER_TIMEOUT_S", PEER_TIMEOUT_S)))
    return jax.process_count() > 1


#: Words in the errors of a collective whose peer process is gone (gloo, the coordination service).
_PEER_LOST = ("gloo", "connection reset", "connection closed", "coordination service", "heartbeat")


@contextlib.contextmanager
def stop_on_peer_failure() -> Iterator[None]:
    """In a job of several processes, end this process at once on any error, with one line.

    A collective that fails because another process died (gloo reports the lost connection at
    once) says so; any other error is reported as the command line reports it. Either way the
    process exits with ``os._exit`` (status 2; 130 for Ctrl-C): a normal exit would wait at JAX's
    shutdown barrier for the dead process and then abort. With one process this does nothing.
    """
    try:
        yield
    except BaseException as e:
        if jax.process_count() < 2 or isinstance(e, SystemExit):
            raise
        me, n = jax.process_index(), jax.process_count()
        text = str(e).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        if isinstance(e, KeyboardInterrupt):
            _stop(f"process {me} of {n}: interrupted", status=130)
        if any(word in text.lower() for word in _PEER_LOST):
            _stop(
                f"process {me} of {n}: a collective with the other processes failed ({first}); "
                "another process died? The run directory keeps its last checkpoint: continue "
                "with --resume DIR"
            )
        if isinstance(e, RLKitError):
            _stop(first)
        traceback.print_exc()
        _stop(f"process {me} of {n}: {type(e).__name__}: {first}")


def _stop(message: str, status: int = PEER_LOST_EXIT) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    os._exit(status)


def _start_watchdog(timeout: float, interval: float = 1.0) -> None:
    """Every ``interval`` seconds, publish this process's tick and read the others'; stop this
    process when one has not ticked for ``timeout`` seconds (a process that finished marks
    itself done at exit and is no longer watched)."""
    client = _jax_distributed.global_state.client
    me, n = jax.process_index(), jax.process_count()

    def key(p: int) -> str:
        return f"rlkit/alive/{p}"

    stop = threading.Event()

    def watch() -> None:
        last = {p: (None, time.monotonic()) for p in range(n) if p != me}
        tick = 0
        while not stop.is_set():
            tick += 1
            try:
                client.key_value_set(key(me), str(tick), allow_overwrite=True)
                values = {p: client.key_value_try_get(key(p)) for p in list(last)}
            except Exception as e:
                if "NOT_FOUND" in str(e) or "not found" in str(e).lower():
                    values = {}  # a process that has not published yet
                else:
                    _stop(
                        f"process {me} of {n} lost the coordinator (process 0 died?): {e}. "
                        "The run directory keeps its last checkpoint: continue with --resume DIR"
                    )
            now = time.monotonic()
            for p, value in values.items():
                if value == _DONE:
                    del last[p]
                elif value != last[p][0]:
                    last[p] = (value, now)
            for p, (_, seen) in last.items():
                if now - seen > timeout:
                    _stop(
                        f"process {p} of {n} stopped responding (no sign of life for "
                        f"{timeout:g} s); stopping process {me} too. The run directory keeps its "
                        "last checkpoint: continue with --resume DIR"
                    )
            stop.wait(interval)

    def done() -> None:
        # Stop the watchdog before the interpreter finalises (a thread killed inside a call of
        # the coordination client aborts the process), then tell the others this one is done.
        stop.set()
        thread.join(timeout=10)
        with contextlib.suppress(Exception):  # the coordinator may be gone already
            client.key_value_set(key(me), _DONE, allow_overwrite=True)

    thread = threading.Thread(target=watch, name="rlkit-peer-watchdog", daemon=True)
    atexit.register(done)
    thread.start()
