"""A pipelined host backend: an actor thread steps the envs while the learner updates.

``PipelineBackend`` trains on any Gymnasium env, as ``HostBackend`` does, with the two halves of
the host loop (``agents.runtime.host_loop.host_collect`` and ``host_learn``) in two threads:

* the **actor** thread owns the ``envs.host.HostVecEnv``; for rollout ``k`` it takes the newest
  agent state the learner has published (version ``v``: the state after ``v`` updates), steps the
  envs with the jitted ``act`` and puts the rollout into a bounded queue;
* the **learner** (the thread that called ``run``) takes rollouts from the queue in order, runs
  the jitted ``update`` on each and publishes the new state.

The actor may start rollout ``k`` only once ``v >= k - max_lag``, so the policy that collected the
data the learner's ``k``-th update trains on lags the learner by ``lag = k - v <= max_lag``
updates; the lag of every update is in its metrics (``policy_lag``).

* ``mode="sync"`` (``max_lag = 0``): the actor always acts with the learner's current state, so
  the run computes exactly what ``HostBackend`` computes (same keys, same rollouts, same updates:
  same metrics and parameters bit for bit) and resumes exactly; the threads only take turns.
* ``mode="async"``: with ``max_lag >= 1`` the env steps of rollout ``k + 1`` overlap the update on
  rollout ``k``. Which version the actor finds depends on timing, so runs are not reproducible bit
  for bit; off-policy corrections are the agent's (V-trace's ratios in ``agents.impala``,
  PPO's clipped ratios; DQN learns off-policy from its replay anyway).

Chunks: ``run(n)`` lets the actor produce exactly the ``n`` rollouts of the chunk and waits for
it, so between chunks the envs, the key chain and the learner's state agree, and a checkpoint
(the same format as ``HostBackend``'s) resumes the run in either mode or on ``HostBackend``.

Errors and shut-down: an exception in the actor (the env, a worker process, ``act``) is handed to
the learner, which raises ``RLKitError`` naming the rollout and the original error; nothing past
the last checkpoint is written, so that checkpoint stays usable. Every wait has a timeout and
checks a stop event, the actor is a daemon thread, and ``close`` stops and joins it within
seconds, so neither an error nor Ctrl-C leaves the process hanging.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any

import jax
import numpy as np

from agents.runs.spec import PIPELINE_MODES, BuiltRun
from agents.runtime.host_loop import (
    HostRollout,
    HostRunnerState,
    host_collect,
    host_learn,
    stack_metrics,
)
from agents.training import backends
from agents.training.backends import Backend, HostBackend
from rlkit.errors import RLKitError

__all__ = ["PIPELINE_MODES", "PipelineBackend", "make_backend"]


#: Seconds between checks of the stop event in every blocking wait.
_POLL_S = 0.05
#: Seconds ``close`` waits for the actor thread to stop.
_JOIN_S = 10.0


class _ActorFailed:
    """What the actor puts in the queue when it fails: the rollout index and the exception."""

    def __init__(self, index: int, error: BaseException):
        self.index = index
        self.error = error


class PipelineBackend(HostBackend):
    """Any Gymnasium env on the host, actor and learner in two threads (module docstring).

    Args:
      built: the validated run.
      updates_per_chunk: updates per chunk of the training job.
      mode: ``"sync"`` or ``"async"``.
      max_lag: in async mode, the most updates the acting policy may lag the learner (>= 1).
      queue_size: rollouts the queue holds (at least 1); the actor blocks when it is full.
    """

    def __init__(
        self,
        built: BuiltRun,
        updates_per_chunk: int,
        mode: str = "sync",
        max_lag: int = 1,
        queue_size: int | None = None,
    ):
        super().__init__(built, updates_per_chunk)
        if mode not in ("sync", "async"):
            raise RLKitError(f"--pipeline: expected 'sync' or 'async', got {mode!r}")
        if mode == "async" and (isinstance(max_lag, bool) or int(max_lag) < 1):
            raise RLKitError(f"--pipeline-max-lag: expected an integer >= 1, got {max_lag!r}")
        self.mode = mode
        self.max_lag = 0 if mode == "sync" else int(max_lag)
        self.queue_size = max(1, self.max_lag if queue_size is None else int(queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published = threading.Condition()
        self._version = 0  # updates done by the learner, whose state is self._agent_state
        self._agent_state: Any = None
        # In sync mode the actor is done with a state before the learner updates it, so the
        # update may reuse its buffers; in async mode the actor may still act with it.
        self.donate_state = self.max_lag == 0

    # -- the actor thread --------------------------------------------------------------------------

    def _wait_for_version(self, needed: int) -> tuple[int, Any] | None:
        """The newest published ``(version, state)`` once ``version >= needed``; None on stop."""
        with self._published:
            while self._version < needed:
                if self._stop.is_set():
                    return None
                self._published.wait(_POLL_S)
            return self._version, self._agent_state

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _actor(self, q: queue.Queue, first: int, count: int, obs: np.ndarray, key: Any) -> None:
        config = self.built.config
        k = first
        try:
            for k in range(first, first + count):
                got = self._wait_for_version(k - self.max_lag)
                if got is None:
                    return
                version, agent_state = got
                collected = host_collect(self.henv, config, agent_state, obs, key, self.act_fn)
                obs, key = collected.obs, collected.key
                if not self._put(q, (k, version, collected)):
                    return
        except BaseException as e:  # noqa: BLE001  (handed to the learner, raised there)
            self._put(q, _ActorFailed(k, e))

    # -- the learner -------------------------------------------------------------------------------

    def _get(self, q: queue.Queue) -> tuple[int, int, HostRollout]:
        while True:
            try:
                item = q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive() and q.empty():
                    raise RLKitError("pipeline: the actor thread stopped without a rollout")
                continue
            if isinstance(item, _ActorFailed):
                steps = item.index * self.built.config.steps_per_update
                raise RLKitError(
                    f"pipeline: the actor failed while collecting rollout {item.index + 1} "
                    f"(env steps {steps} to {steps + self.built.config.steps_per_update}) on "
                    f"{self.built.env_id!r}: {type(item.error).__name__}: {item.error}; training "
                    "stopped, the last checkpoint is kept"
                ) from item.error
            return item

    def run(self, num_updates: int) -> dict[str, np.ndarray]:
        rs = self.state
        self._stop.clear()
        with self._published:
            self._version, self._agent_state = rs.update_step, rs.agent_state
        q: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self._thread = threading.Thread(
            target=self._actor,
            args=(q, rs.update_step, num_updates, rs.obs, rs.key),
            name="rlkit-actor",
            daemon=True,
        )
        self._thread.start()
        agent_state, update_step = rs.agent_state, rs.update_step
        obs, key = rs.obs, rs.key
        steps, lags = [], []
        try:
            for _ in range(num_updates):
                k, version, collected = self._get(q)
                if k != update_step:
                    raise RLKitError(f"pipeline: rollout {k} arrived for update {update_step}")
                agent_state, metrics = host_learn(
                    self.built.config, agent_state, collected, update_step, self.update_fn
                )
                update_step += 1
                obs, key = collected.obs, collected.key
                # Kept current: with a donated update the chunk's first state is gone.
                self.state = HostRunnerState(agent_state, obs, key, update_step)
                with self._published:
                    self._version, self._agent_state = update_step, agent_state
                    self._published.notify_all()
                lags.append(k - version)
                steps.append(metrics)
        finally:
            self._stop_actor()
        self.state = HostRunnerState(agent_state, obs, key, update_step)
        out = stack_metrics(steps)
        out["policy_lag"] = np.asarray(lags, np.float32)[None]
        return out

    def _stop_actor(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(_JOIN_S)
            if thread.is_alive():  # a daemon thread: it cannot keep the process alive
                sys.stderr.write(
                    f"warning: the pipeline's actor thread did not stop within {_JOIN_S:.0f} s "
                    "(an env step that never returns?)\n"
                )
        with self._published:
            self._agent_state = None  # no stale state kept alive between chunks

    def close(self) -> None:
        try:
            self._stop_actor()
        finally:
            super().close()


def make_backend(built: BuiltRun, updates_per_chunk: int) -> Backend:
    """``PipelineBackend`` when ``--pipeline`` is sync or async, else the backend
    ``agents.training.backends.make_backend`` picks."""
    mode = built.args.pipeline
    if mode == "off":
        return backends.make_backend(built, updates_per_chunk)
    if jax.process_count() > 1:
        raise RLKitError("--pipeline: runs in one process; leave it off in a job of several")
    return PipelineBackend(built, updates_per_chunk, mode, built.args.pipeline_max_lag)
