"""The run directory: its file names, atomic writes, checkpoints, policies and metrics.

This module is the one owner of the run-directory format. A run directory written by
``scripts/train.py`` holds::

    config.json            agent, env, backend, spaces, seeds, sweep, run options, the agent config
    metrics.csv            one row per run (seed x sweep point) per log interval
    events.out.tfevents.*  TensorBoard scalars
    checkpoint.json        the latest checkpoint: env steps, data file name, its sha256
    checkpoint-<N>.msgpack the training state (flax msgpack: arrays and plain containers, no pickle)
    policy.msgpack         the last evaluation parameters of every run, stacked, with their sha256
    best_policy.msgpack    per run, the parameters that scored best in the evaluations during
                           training (with their sha256); best_policy.json: those scores and steps
    summary.json           what the run did (written at the end); eval.json / eval.csv (evaluate.py)
    .lock                  held (an OS file lock) by the process writing the directory

Every file is written to a temporary file created in the run directory and renamed over its name
(``os.replace``), so a killed run leaves either the previous complete file or the new one, and a
symbolic link at that name is replaced, never written through. ``checkpoint.json`` is renamed into
place after the data file it names, and a policy file carries its own checksum, so no single kill
leaves an unloadable state. Names read from the directory's own files are refused unless they stay
inside the directory. Temporary files left by a killed process are removed by ``clean_stale``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import tempfile
from typing import Any, Iterator

import jax
import numpy as np
from flax import serialization

from envs.core import Box, Discrete, Space
from rlkit.errors import RLKitError

__all__ = [
    "CONFIG_FILE",
    "CHECKPOINT_META",
    "POLICY_FILE",
    "BEST_POLICY_FILE",
    "BEST_META",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "FORMAT_VERSION",
    "as_list",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "read_json",
    "inside",
    "clean_stale",
    "lock",
    "read_run_config",
    "write_run_config",
    "has_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "save_policy_params",
    "load_policy_params",
    "read_best_meta",
    "write_best_meta",
    "MetricsWriter",
    "read_metrics",
    "space_to_json",
    "space_from_json",
]

CONFIG_FILE = "config.json"
CHECKPOINT_META = "checkpoint.json"
POLICY_FILE = "policy.msgpack"
BEST_POLICY_FILE = "best_policy.msgpack"
BEST_META = "best_policy.json"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
FORMAT_VERSION = 2


# --------------------------------------------------------------------------------------------------
# Paths and atomic writes
# --------------------------------------------------------------------------------------------------


def inside(run_dir: str, name: Any) -> str:
    """The path of ``name`` in ``run_dir``; RLKitError unless it names a file directly inside it.

    Names come from the run directory's own JSON files, which a user (or an attacker) can edit:
    an absolute path, ``..``, a separator or a symlink that leads elsewhere is refused.
    """
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise RLKitError(f"run dir {run_dir!r}: bad file name {name!r} in its metadata")
    if os.path.basename(name) != name or os.sep in name or (os.altsep and os.altsep in name):
        raise RLKitError(
            f"run dir {run_dir!r}: file name {name!r} in its metadata leaves the run directory"
        )
    path = os.path.join(run_dir, name)
    real_dir = os.path.realpath(run_dir)
    if os.path.dirname(os.path.realpath(path)) != real_dir:
        raise RLKitError(
            f"run dir {run_dir!r}: {name!r} is a link that leads out of the run directory"
        )
    return path


def _os_error(e: OSError, path: str) -> RLKitError:
    if e.errno == errno.ENOSPC:
        return RLKitError(f"cannot write {path}: no space left on the device")
    return RLKitError(f"cannot write {path}: {e.strerror or e}")


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    The new file has the permissions an ordinary ``open(path, "w")`` would give it (0666 less the
    umask). A symbolic link at ``path`` is replaced by the file, never written through. An
    ``OSError`` (a full disk, a read-only directory) becomes an RLKitError naming the path.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise _os_error(e, path) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """``atomic_write_bytes`` of UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: str, payload: Any) -> None:
    """Atomically write ``payload`` as strict JSON (non-finite floats become null)."""
    atomic_write_text(path, json.dumps(_json_safe(payload), indent=2, allow_nan=False) + "\n")


def read_json(path: str, what: str | None = None) -> Any:
    """The JSON document at ``path``; RLKitError naming it if it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RLKitError(f"{what or path}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RLKitError(f"{what or path}: {path} is not readable JSON ({e})") from None


def clean_stale(run_dir: str) -> list[str]:
    """Remove temporary files that a killed writer left in ``run_dir``; returns their names.

    Call it only while holding the directory's ``lock``: another writer's temporary files are
    then impossible.
    """
    removed = []
    for name in os.listdir(run_dir):
        if name.startswith(TMP_PREFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(run_dir, name))
                removed.append(name)
    return removed


@contextlib.contextmanager
def lock(run_dir: str) -> Iterator[None]:
    """Hold an exclusive OS file lock on ``run_dir`` (``RUN/.lock``) for the block.

    A second process that tries to write the same run directory gets an RLKitError at once
    instead of interleaving its files with the first's. The lock goes with the process, so a
    killed run never leaves the directory locked.
    """
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise _os_error(e, path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RLKitError(
                f"run dir {run_dir!r} is being written by another process (its .lock is held)"
            ) from None
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------------------------------


def write_run_config(run_dir: str, payload: dict) -> None:
    """Write ``config.json``."""
    write_json(os.path.join(run_dir, CONFIG_FILE), payload)


def read_run_config(run_dir: str) -> dict:
    """The run's ``config.json``; RLKitError if the directory is not a run directory."""
    if not os.path.isdir(run_dir):
        raise RLKitError(f"run dir {run_dir!r} does not exist")
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise RLKitError(f"run dir {run_dir!r} has no {CONFIG_FILE}: not a training run directory")
    cfg = read_json(path, "config.json")
    if not isinstance(cfg, dict):
        raise RLKitError(f"{path}: expected a JSON object")
    if cfg.get("format") != FORMAT_VERSION:
        raise RLKitError(
            f"{path}: run-directory format {cfg.get('format')!r}; this rlkit reads format "
            f"{FORMAT_VERSION} (train the run again, or use the rlkit version that wrote it)"
        )
    return cfg


def _bound_to_json(values: np.ndarray) -> list:
    """A Box bound as a JSON list: one entry when every element is the same (an image's 0 and
    255), else every element in C order."""
    values = values.ravel()
    if values.size > 1 and np.all(values == values[0]):
        values = values[:1]
    return [float(v) if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values]


def _bound_from_json(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    flat = np.asarray([float(x) for x in values], np.float64)
    if flat.size == 1:
        return np.full(shape, flat[0], np.float64)
    return flat.reshape(shape)


def space_to_json(space: Space) -> dict:
    """A JSON description of an ``envs`` space (``config.json`` stores the agent's spaces); a Box
    bound whose elements are all equal is stored as one number."""
    if isinstance(space, Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _bound_to_json(np.asarray(space.low, np.float64)),
            "high": _bound_to_json(np.asarray(space.high, np.float64)),
        }
    raise RLKitError(f"space: expected an envs Discrete or Box, got {space!r}")


def space_from_json(d: Any) -> Space:
    """Inverse of ``space_to_json``."""
    try:
        if d["type"] == "Discrete":
            return Discrete(int(d["n"]), start=int(d["start"]))
        if d["type"] == "Box":
            shape = tuple(int(x) for x in d["shape"])
            low = _bound_from_json(d["low"], shape)
            high = _bound_from_json(d["high"], shape)
            return Box(low, high, shape, dtype=np.dtype(d["dtype"]))
    except (KeyError, TypeError, ValueError) as e:
        raise RLKitError(f"config.json: malformed space {d!r} ({e})") from None
    raise RLKitError(f"config.json: unknown space type in {d!r}")


# --------------------------------------------------------------------------------------------------
# Checkpoints and policies
# --------------------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serialize(tree: Any) -> bytes:
    return serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(tree)))


def has_checkpoint(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a checkpoint (its ``checkpoint.json``)."""
    return os.path.lexists(os.path.join(run_dir, CHECKPOINT_META))


def save_checkpoint(run_dir: str, state: Any, meta: dict, extra: dict | None = None) -> str:
    """Serialise ``state`` (any pytree of arrays) and publish it as the latest checkpoint.

    Args:
      run_dir: the run directory.
      state: the training state; restored later into the structure of a template.
      meta: JSON metadata; must hold ``env_steps``.
      extra: arrays whose shapes vary from checkpoint to checkpoint (a host env's replay state),
        restored as saved.

    Returns:
      The path of the data file.
    """
    payload = {"state": serialization.to_state_dict(jax.device_get(state)), "extra": extra or {}}
    data = serialization.msgpack_serialize(payload)
    name = f"checkpoint-{int(meta['env_steps'])}.msgpack"
    atomic_write_bytes(os.path.join(run_dir, name), data)
    meta_path = os.path.join(run_dir, CHECKPOINT_META)
    previous = None
    if os.path.exists(meta_path):
        with contextlib.suppress(RLKitError):
            previous = read_json(meta_path).get("file")
    full_meta = dict(meta, file=name, sha256=_sha256(data), format=FORMAT_VERSION)
    write_json(meta_path, full_meta)
    if previous and previous != name:
        with contextlib.suppress(RLKitError, OSError):
            os.unlink(inside(run_dir, previous))
    return os.path.join(run_dir, name)


def _check_shapes(template: Any, restored: Any, what: str) -> None:
    t_leaves, t_def = jax.tree_util.tree_flatten(template)
    r_leaves, r_def = jax.tree_util.tree_flatten(restored)
    if t_def != r_def or len(t_leaves) != len(r_leaves):
        raise RLKitError(f"{what}: checkpoint structure does not match this agent/config")
    for t, r in zip(t_leaves, r_leaves):
        if tuple(np.shape(t)) != tuple(np.shape(r)):
            raise RLKitError(
                f"{what}: checkpoint array of shape {np.shape(r)} where this config expects "
                f"{np.shape(t)} (different config, env or number of seeds?)"
            )


def _restore(state_dict: Any, template: Any, what: str) -> Any:
    try:
        restored = serialization.from_state_dict(template, state_dict)
    except Exception as e:  # mismatched structure
        raise RLKitError(f"{what}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    _check_shapes(template, restored, what)
    return restored


def _read_msgpack(data: bytes, what: str) -> Any:
    try:
        return serialization.msgpack_restore(data)
    except Exception as e:  # corrupt bytes
        raise RLKitError(f"{what}: cannot read ({type(e).__name__}: {e})") from None


def as_list(x: Any) -> Any:
    """A list as it comes back from a msgpack checkpoint, which stores it as a dict keyed "0",
    "1", ...: the list again; anything else unchanged.

    Args:
      x: a restored value.

    Returns:
      ``[x["0"], x["1"], ...]`` for such a dict, else ``x``.
    """
    if isinstance(x, dict) and x and all(str(i) in x for i in range(len(x))):
        return [x[str(i)] for i in range(len(x))]
    return x


def load_checkpoint(run_dir: str, template: Any) -> tuple[Any, dict, dict]:
    """Restore the latest checkpoint into the structure of ``template``.

    Returns:
      ``(state, meta, extra)``.
    """
    meta_path = os.path.join(run_dir, CHECKPOINT_META)
    if not has_checkpoint(run_dir):
        raise RLKitError(f"--resume: run dir {run_dir!r} holds no checkpoint ({CHECKPOINT_META})")
    meta = read_json(meta_path, "--resume")
    if not isinstance(meta, dict) or "file" not in meta:
        raise RLKitError(f"--resume: {meta_path} does not name a checkpoint file")
    path = inside(run_dir, meta["file"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RLKitError(f"--resume: cannot read {path} ({e.strerror or e})") from None
    if _sha256(data) != meta.get("sha256"):
        raise RLKitError(f"--resume: checkpoint file {path!r} is corrupt (checksum mismatch)")
    payload = _read_msgpack(data, f"checkpoint {path}")
    if not isinstance(payload, dict) or "state" not in payload:
        raise RLKitError(f"checkpoint {path}: not a format-{FORMAT_VERSION} rlkit checkpoint")
    state = _restore(payload["state"], template, f"checkpoint {path}")
    return state, meta, payload.get("extra") or {}


def save_policy_params(run_dir: str, policy_params: Any, filename: str = POLICY_FILE) -> None:
    """Write stacked (leading run axis) evaluation parameters, with their checksum, to one file.

    Args:
      run_dir: the run directory.
      policy_params: the parameters.
      filename: ``policy.msgpack`` (the last policy) or ``best_policy.msgpack``.
    """
    data = _serialize(policy_params)
    blob = serialization.msgpack_serialize(
        {"format": FORMAT_VERSION, "sha256": _sha256(data), "params": data}
    )
    atomic_write_bytes(os.path.join(run_dir, filename), blob)


def load_policy_params(run_dir: str, template: Any, filename: str = POLICY_FILE) -> Any:
    """Stacked policy params from ``filename`` in ``run_dir``, checked against their checksum."""
    path = inside(run_dir, filename)
    if not os.path.exists(path):
        raise RLKitError(f"run dir {run_dir!r} holds no {filename} (training not finished?)")
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise RLKitError(f"cannot read {path} ({e.strerror or e})") from None
    outer = _read_msgpack(blob, f"policy {path}")
    if not isinstance(outer, dict) or not isinstance(outer.get("params"), bytes):
        raise RLKitError(f"policy {path}: not a format-{FORMAT_VERSION} rlkit policy file")
    if _sha256(outer["params"]) != outer.get("sha256"):
        raise RLKitError(f"{path} is corrupt (checksum mismatch)")
    state_dict = _read_msgpack(outer["params"], f"policy {path}")
    return _restore(state_dict, template, f"policy {path}")


def write_best_meta(run_dir: str, meta: dict) -> None:
    """Write ``best_policy.json``."""
    write_json(os.path.join(run_dir, BEST_META), meta)


def read_best_meta(run_dir: str) -> dict | None:
    """``best_policy.json`` of a run (per-run best evaluation return and its env step), or None."""
    path = os.path.join(run_dir, BEST_META)
    if not os.path.exists(path):
        return None
    meta = read_json(path, "best_policy.json")
    if not isinstance(meta, dict):
        raise RLKitError(f"{path}: expected a JSON object")
    return meta


# --------------------------------------------------------------------------------------------------
# metrics.csv
# --------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}" if np.isfinite(value) else ""
    return str(value)


class MetricsWriter:
    """Appends rows to ``metrics.csv`` (long format: one row per run per log interval).

    On resume, ``truncate_after`` drops the rows logged after the checkpoint the run resumes from
    (they will be logged again), rewriting the file atomically. The columns are fixed by the first
    row written; later rows fill missing columns with empty cells.
    """

    def __init__(self, run_dir: str, resume: bool):
        self.path = os.path.join(run_dir, METRICS_FILE)
        self.fieldnames: list[str] | None = None
        self._kept: list[dict] = []
        if os.path.islink(self.path):
            raise RLKitError(f"{self.path} is a symbolic link; refusing to write through it")
        if resume and os.path.exists(self.path):
            self.fieldnames, self._kept = read_metrics(self.path)

    def truncate_after(self, env_steps: int) -> None:
        """Keep only rows with ``env_steps <= env_steps`` (the resumed checkpoint's)."""
        rows = [r for r in self._kept if int(float(r["env_steps"])) <= env_steps]
        if self.fieldnames:
            self._write_all(rows)

    def _write_all(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fieldnames, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, rows: list[dict]) -> None:
        """Append rows (dicts of column -> value; None and non-finite floats become empty)."""
        if not rows:
            return
        rows = [{k: _cell(v) for k, v in r.items()} for r in rows]
        if self.fieldnames is None:
            self.fieldnames = list(rows[0].keys())
            self._write_all([])
        if os.path.islink(self.path):
            raise RLKitError(f"{self.path} is a symbolic link; refusing to write through it")
        try:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fieldnames, extrasaction="ignore").writerows(rows)
                f.flush()
        except OSError as e:
            raise _os_error(e, self.path) from None


def read_metrics(path: str) -> tuple[list[str], list[dict]]:
    """``(columns, rows)`` of a ``metrics.csv``; RLKitError naming the file if it is garbled."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
    except FileNotFoundError:
        raise RLKitError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RLKitError(f"{path} is not a readable metrics.csv ({e})") from None
    if "env_steps" not in fields:
        raise RLKitError(f"{path} is not a metrics.csv (no env_steps column)")
    for i, r in enumerate(rows):
        try:
            float(r["env_steps"])
        except (TypeError, ValueError):
            raise RLKitError(
                f"{path}: row {i + 2} has env_steps {r.get('env_steps')!r}, not a number"
            ) from None
    return fields, rows
