"""Run directories and checkpoints: atomic, checksummed, and free of pickle.

A run directory written by ``scripts/train.py`` holds::

    config.json            agent, env, backend, seeds, sweep, and the full resolved agent config
    metrics.csv            one row per run (seed) per log interval
    events.out.tfevents.*  TensorBoard scalars
    checkpoint.json        the latest checkpoint's metadata: env steps, file name, sha256
    checkpoint-<N>.msgpack the training state (flax msgpack serialisation: arrays and plain containers)
    policy.msgpack         the evaluation policy parameters of every run, stacked on a leading axis

Every file is written to a temporary name in the same directory and then renamed, so a killed run leaves
either the previous complete file or the new complete one. ``checkpoint.json`` is renamed into place
last and names the data file it describes, so it never points at a partial file; a killed run loses at
most one checkpoint interval. Loading verifies the checksum and the shapes against the expected state.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

import jax
import numpy as np
from flax import serialization

from rlkit.errors import RLKitError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "read_run_config",
    "write_run_config",
    "save_checkpoint",
    "load_checkpoint",
    "has_checkpoint",
    "save_policy_params",
    "load_policy_params",
    "read_best_meta",
    "resolve_policy_choice",
    "load_run_policy",
]

CONFIG_FILE = "config.json"
CKPT_META = "checkpoint.json"
POLICY_FILE = "policy.msgpack"
BEST_POLICY_FILE = "best_policy.msgpack"
BEST_META = "best_policy.json"
FORMAT_VERSION = 1


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_run_config(run_dir: str, payload: dict) -> None:
    atomic_write_text(os.path.join(run_dir, CONFIG_FILE), json.dumps(payload, indent=2) + "\n")


def read_run_config(run_dir: str) -> dict:
    """The run's ``config.json``; RLKitError if the directory is not a run directory."""
    if not os.path.isdir(run_dir):
        raise RLKitError(f"run dir {run_dir!r} does not exist")
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise RLKitError(f"run dir {run_dir!r} has no {CONFIG_FILE}: not a training run directory")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise RLKitError(f"{path} is not valid JSON ({e})") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def has_checkpoint(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, CKPT_META))


def save_checkpoint(run_dir: str, state: Any, meta: dict) -> str:
    """Serialise ``state`` (any pytree of arrays) and publish it as the latest checkpoint."""
    state = jax.device_get(state)
    data = serialization.msgpack_serialize(serialization.to_state_dict(state))
    step = int(meta["env_steps"])
    name = f"checkpoint-{step}.msgpack"
    atomic_write_bytes(os.path.join(run_dir, name), data)
    previous = None
    meta_path = os.path.join(run_dir, CKPT_META)
    if os.path.exists(meta_path):
        try:
            with open(meta_path) as f:
                previous = json.load(f).get("file")
        except (OSError, json.JSONDecodeError):
            previous = None
    full_meta = dict(meta, file=name, sha256=_sha256(data), format=FORMAT_VERSION)
    atomic_write_text(meta_path, json.dumps(full_meta, indent=2) + "\n")
    if previous and previous != name and os.path.exists(os.path.join(run_dir, previous)):
        os.unlink(os.path.join(run_dir, previous))
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


def _restore(data: bytes, template: Any, what: str) -> Any:
    try:
        state_dict = serialization.msgpack_restore(data)
        restored = serialization.from_state_dict(template, state_dict)
    except RLKitError:
        raise
    except Exception as e:  # corrupt bytes or mismatched structure
        raise RLKitError(f"{what}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    _check_shapes(template, restored, what)
    return restored


def load_checkpoint(run_dir: str, template: Any) -> tuple[Any, dict]:
    """Restore the latest checkpoint into the structure of ``template``; returns ``(state, meta)``."""
    meta_path = os.path.join(run_dir, CKPT_META)
    if not os.path.exists(meta_path):
        raise RLKitError(f"resume: run dir {run_dir!r} holds no checkpoint ({CKPT_META} missing)")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        path = os.path.join(run_dir, meta["file"])
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise RLKitError(f"resume: checkpoint in {run_dir!r} is unreadable ({e})") from None
    if _sha256(data) != meta.get("sha256"):
        raise RLKitError(f"resume: checkpoint file {path!r} is corrupt (checksum mismatch)")
    return _restore(data, template, f"checkpoint {path}"), meta


def save_policy_params(run_dir: str, policy_params: Any, filename: str = POLICY_FILE) -> None:
    """Write the stacked (leading run axis) evaluation parameters to ``filename`` (default
    ``policy.msgpack``, the last policy; the trainer writes the best one to ``best_policy.msgpack``)."""
    data = serialization.msgpack_serialize(
        serialization.to_state_dict(jax.device_get(policy_params))
    )
    atomic_write_bytes(os.path.join(run_dir, filename), data)
    meta_path = os.path.join(run_dir, filename + ".sha256")
    atomic_write_text(meta_path, _sha256(data) + "\n")


def read_best_meta(run_dir: str) -> dict | None:
    """``best_policy.json`` of a run (per-run best evaluation return and its env step), or None."""
    path = os.path.join(run_dir, BEST_META)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RLKitError(f"{path} is unreadable ({e})") from None


def load_policy_params(run_dir: str, template: Any, filename: str = POLICY_FILE) -> Any:
    """Stacked policy params from ``filename`` in ``run_dir``, checked against its sha256."""
    path = os.path.join(run_dir, filename)
    if not os.path.exists(path):
        raise RLKitError(f"run dir {run_dir!r} holds no {filename} (training not finished?)")
    with open(path, "rb") as f:
        data = f.read()
    sha_path = path + ".sha256"
    if os.path.exists(sha_path):
        with open(sha_path) as f:
            if f.read().strip() != _sha256(data):
                raise RLKitError(f"{path} is corrupt (checksum mismatch)")
    return _restore(data, template, f"policy {path}")


def resolve_policy_choice(run_dir: str, final_policy: str) -> str:
    """A run's ``--final-policy`` as a file choice: ``"best"`` only if the run saved a best policy
    (runs without evaluations during training, such as host-env runs, have only the last)."""
    if final_policy == "best" and not os.path.exists(os.path.join(run_dir, BEST_POLICY_FILE)):
        return "last"
    return final_policy


def load_run_policy(run_dir: str, which: str | None = None):
    """Rebuild the ``Policy`` of a run directory (all runs/seeds, stacked).

    Args:
      run_dir: the run directory.
      which: ``"last"`` (``policy.msgpack``: the parameters at the end of training), ``"best"``
        (``best_policy.msgpack``: per run, the parameters that scored best in the greedy
        evaluations during training), or None for the run's ``--final-policy`` choice (``"best"``
        falls back to the last policy when the run made no evaluations).
    """
    from agents.policy import Policy
    from agents.trainer import build_from_run_config

    cfg = read_run_config(run_dir)
    if which is None:
        which = resolve_policy_choice(run_dir, cfg.get("run", {}).get("final_policy", "last"))
    elif which not in ("best", "last"):
        raise RLKitError(f"which: expected 'best', 'last' or None, got {which!r}")
    filename = BEST_POLICY_FILE if which == "best" else POLICY_FILE
    built = build_from_run_config(cfg)
    params = load_policy_params(run_dir, built.policy_params_template(), filename)
    agent, config = built.agent, built.config_for_policy()

    def apply(p, obs, key, deterministic=True):
        return agent.policy(config, p, obs, key, deterministic)

    return Policy(
        apply=apply,
        params=params,
        num_seeds=built.num_runs,
        env_id=cfg["env"],
        observation_space=agent.observation_space,
        action_space=agent.action_space,
    )
