"""A pipelined host backend: actor threads step the envs while the learner updates.

``PipelineBackend`` trains on any Gymnasium env, as ``HostBackend`` does, with the two halves of
the host loop (``agents.runtime.host_loop.host_collect`` and ``host_learn``) in their own threads:

* each of the ``K`` **actor** threads (``--pipeline-actors K``, default 1) owns an
  ``envs.host.HostVecEnv`` of ``num_envs / K`` of the run's envs (actor ``i`` has envs
  ``i * num_envs / K`` to ``(i + 1) * num_envs / K - 1``, with those envs' episode seeds) and its
  own key chain; for rollout ``k`` it takes the newest agent state the learner has published
  (version ``v``: the state after ``v`` updates), steps its envs with the jitted ``act`` and puts
  the rollout into its own bounded queue;
* the **learner** (the thread that called ``run``) takes rollout ``k`` from every actor's queue,
  concatenates the ``K`` rollouts along the env axis in actor order (one rollout of ``num_envs``
  envs), runs the jitted ``update`` on it and publishes the new state.

An actor may start rollout ``k`` only once ``v >= k - max_lag``, so the policy that collected the
data the learner's ``k``-th update trains on lags the learner by ``lag = k - v <= max_lag``
updates; every update logs ``policy_lag``, the largest lag over its ``K`` rollouts.

Keys: the run's key chain (``host_init``'s) with one actor; with ``K > 1`` it is split into ``K``
chains (``jax.random.split(key, K)``, actor ``i`` taking row ``i``) and the update key is actor 0's.
So ``K = 1`` is today's run bit for bit, and a run with ``K > 1`` is a different (but as
reproducible) sample of the same algorithm on the same envs.

* ``mode="sync"`` (``max_lag = 0``): the actors always act with the learner's current state, so
  the run is deterministic for any ``K`` (same seed and ``K``, same metrics and parameters bit for
  bit) and resumes exactly; with ``K = 1`` it computes exactly what ``HostBackend`` computes. The
  ``K`` actors step their envs at the same time (overlapping where the envs release the GIL),
  the learner waits for them.
* ``mode="async"``: with ``max_lag >= 1`` the env steps of rollout ``k + 1`` overlap the update on
  rollout ``k``. Which version an actor finds depends on timing, so runs are not reproducible bit
  for bit; off-policy corrections are the agent's (V-trace's ratios in ``agents.impala``,
  PPO's clipped ratios; DQN learns off-policy from its replay anyway).

Devices (Sebulba-style): ``--pipeline-actor-device I`` makes the actors act on ``jax.devices()[I]``:
the learner, on the default device (``jax.devices()[0]``), copies each state it publishes there
(``jax.device_put``, the whole agent state ``act`` takes, a replay buffer included), the actors'
keys live there and ``act`` runs there; the update key comes back to the learner's device. The
computation is the same, so in sync mode the results equal the one-device run's.

Chunks: ``run(n)`` lets every actor produce exactly the ``n`` rollouts of the chunk and waits for
them, so between chunks the envs, the key chains and the learner's state agree, and a checkpoint
resumes the run in either mode. With one actor it has ``HostBackend``'s format (resumable on
``HostBackend`` too); with ``K > 1`` it holds the ``K`` keys (``key [1, K, 2]``), the ``K`` env
states (a list) and ``pipeline_actors = K`` in its metadata, and resumes only with
``--pipeline-actors K``.

Errors and shut-down: an exception in an actor (the env, a worker process, ``act``) is handed to
the learner, which raises ``RLKitError`` naming the actor (with ``K > 1``), the rollout and the
original error as soon as it sees it; nothing past the last checkpoint is written, so that
checkpoint stays usable. Every wait has a timeout and checks a stop event, the actors are daemon
threads, and ``close`` stops and joins them within seconds, so neither an error nor Ctrl-C leaves
the process hanging.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents.runs import files
from agents.runs.spec import PIPELINE_MODES, BuiltRun, check_pipeline_layout
from agents.runtime.host_loop import (
    HostRollout,
    HostRunnerState,
    host_collect,
    host_learn,
    stack_metrics,
)
from agents.training import backends
from agents.training.backends import Backend, HostBackend
from envs.host import HostVecEnv
from rlkit.errors import RLKitError

__all__ = ["PIPELINE_MODES", "PipelineBackend", "make_backend"]


#: Seconds between checks of the stop event in every blocking wait.
_POLL_S = 0.05
#: Seconds ``close`` waits for the actor threads to stop (all of them together).
_JOIN_S = 10.0


class _ActorEnvs:
    """The run's ``num_envs`` host envs as one ``HostVecEnv`` of ``num_envs / K`` per actor, behind
    the calls ``HostBackend`` makes on its env (``reset``, ``state_dict``, ``load_state_dict``,
    ``close``): observations concatenated in actor order, the env state a list of the actors'.
    Actor ``i``'s sub-env ``j`` is env ``i * num_envs / K + j`` of the run (its episode seeds)."""

    def __init__(self, env_id: str, num_envs: int, actors: int, seed: int):
        n = num_envs // actors
        self.envs: list[HostVecEnv] = []
        try:
            for i in range(actors):
                self.envs.append(HostVecEnv(env_id, n, seed=seed, first_env=i * n))
        except BaseException:
            self.close()
            raise
        self.observation_space = self.envs[0].observation_space

    def reset(self) -> np.ndarray:
        return np.concatenate([env.reset() for env in self.envs])

    def state_dict(self) -> list[dict]:
        return [env.state_dict() for env in self.envs]

    def load_state_dict(self, states: Any) -> np.ndarray:
        states = files.as_list(states)
        if not isinstance(states, list) or len(states) != len(self.envs) or None in states:
            raise RLKitError(
                f"--resume: the checkpoint does not hold the env state of {len(self.envs)} "
                "pipeline actors"
            )
        return np.concatenate([env.load_state_dict(s) for env, s in zip(self.envs, states)])

    def close(self) -> None:
        for env in self.envs:
            env.close()


class _ActorFailed(NamedTuple):
    """An actor's failure: which actor, the rollout index and the exception."""

    actor: int
    index: int
    error: BaseException


class PipelineBackend(HostBackend):
    """Any Gymnasium env on the host, actors and learner in their own threads (module docstring).

    Args:
      built: the validated run.
      updates_per_chunk: updates per chunk of the training job.
      mode: ``"sync"`` or ``"async"``.
      max_lag: in async mode, the most updates the acting policy may lag the learner (>= 1).
      queue_size: rollouts each actor's queue holds (at least 1); an actor blocks when its queue
        is full.
      actors: actor threads (``--pipeline-actors``); ``num_envs`` must be divisible by it.
      actor_device: index into ``jax.devices()`` of the device the actors act on
        (``--pipeline-actor-device``); None: the default device, where the learner is.
    """

    def __init__(
        self,
        built: BuiltRun,
        updates_per_chunk: int,
        mode: str = "sync",
        max_lag: int = 1,
        queue_size: int | None = None,
        actors: int = 1,
        actor_device: int | None = None,
    ):
        super().__init__(built, updates_per_chunk)
        if mode not in ("sync", "async"):
            raise RLKitError(f"--pipeline: expected 'sync' or 'async', got {mode!r}")
        if mode == "async" and (isinstance(max_lag, bool) or int(max_lag) < 1):
            raise RLKitError(f"--pipeline-max-lag: expected an integer >= 1, got {max_lag!r}")
        check_pipeline_layout(actors, actor_device, built.config.num_envs)
        self.mode = mode
        self.max_lag = 0 if mode == "sync" else int(max_lag)
        self.queue_size = max(1, self.max_lag if queue_size is None else int(queue_size))
        self.actors = int(actors)
        self.actor_device = None if actor_device is None else jax.devices()[actor_device]
        self._learner_device = jax.devices()[0]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failure: _ActorFailed | None = None
        self._failure_lock = threading.Lock()
        self._published = threading.Condition()
        self._version = 0  # updates done by the learner, whose state is self._agent_state
        self._agent_state: Any = None  # as the actors take it (on the actor device)
        # In sync mode the actors are done with a state before the learner updates it, so the
        # update may reuse its buffers; in async mode an actor may still act with it.
        self.donate_state = self.max_lag == 0

    def _make_env(self, num_envs: int, seed: int) -> Any:
        if self.actors == 1:
            return super()._make_env(num_envs, seed)
        return _ActorEnvs(self.built.env_id, num_envs, self.actors, seed)

    def start(self) -> None:
        super().start()
        if self.actors > 1:  # K key chains from the run's key (K = 1: the run's key itself)
            self.state = self.state._replace(key=jax.random.split(self.state.key, self.actors))

    def _actor_envs(self) -> list[HostVecEnv]:
        return [self.henv] if self.actors == 1 else self.henv.envs

    def _for_actors(self, tree: Any) -> Any:
        """``tree`` placed where the actors act (itself without ``actor_device``)."""
        return tree if self.actor_device is None else jax.device_put(tree, self.actor_device)

    # -- the actor threads -------------------------------------------------------------------------

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

    def _actor(
        self, actor: int, q: queue.Queue, first: int, count: int, obs: np.ndarray, key: Any
    ) -> None:
        config, henv = self.built.config, self._actor_envs()[actor]
        k = first
        try:
            key = self._for_actors(key)
            for k in range(first, first + count):
                got = self._wait_for_version(k - self.max_lag)
                if got is None:
                    return
                version, agent_state = got
                collected = host_collect(henv, config, agent_state, obs, key, self.act_fn)
                obs, key = collected.obs, collected.key
                if not self._put(q, (k, version, collected)):
                    return
        except BaseException as e:  # noqa: BLE001  (handed to the learner, raised there)
            with self._failure_lock:
                if self._failure is None:
                    self._failure = _ActorFailed(actor, k, e)

    # -- the learner -------------------------------------------------------------------------------

    def _raise_failure(self, failed: _ActorFailed) -> None:
        config = self.built.config
        steps = failed.index * config.steps_per_update
        n = config.num_envs // self.actors
        who = (
            "the actor"
            if self.actors == 1
            else (
                f"actor {failed.actor} of {self.actors} (envs {failed.actor * n} to "
                f"{(failed.actor + 1) * n - 1})"
            )
        )
        raise RLKitError(
            f"pipeline: {who} failed while collecting rollout {failed.index + 1} "
            f"(env steps {steps} to {steps + config.steps_per_update}) on "
            f"{self.built.env_id!r}: {type(failed.error).__name__}: {failed.error}; training "
            "stopped, the last checkpoint is kept"
        ) from failed.error

    def _get(self, actor: int, q: queue.Queue) -> tuple[int, int, HostRollout]:
        """Actor ``actor``'s next rollout; RLKitError as soon as any actor has failed."""
        while True:
            if self._failure is not None:
                self._raise_failure(self._failure)
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                thread = self._threads[actor] if actor < len(self._threads) else None
                if (
                    thread is not None
                    and not thread.is_alive()
                    and q.empty()
                    and self._failure is None
                ):
                    raise RLKitError(
                        f"pipeline: actor {actor}'s thread stopped without a rollout"
                    ) from None

    def _join(self, parts: list[HostRollout]) -> HostRollout:
        """One rollout of the run's ``num_envs`` envs from the actors' (env axis, actor order); the
        update's key is actor 0's, the next keys stacked. One actor's rollout is itself."""
        if len(parts) == 1:
            return parts[0]
        rollout = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *(p.rollout for p in parts))
        return HostRollout(
            rollout=rollout,
            obs=np.concatenate([p.obs for p in parts]),
            key=jnp.stack([p.key for p in parts]),
            update_key=parts[0].update_key,
            episode_stats=tuple(float(sum(s)) for s in zip(*(p.episode_stats for p in parts))),
        )

    def run(self, num_updates: int) -> dict[str, np.ndarray]:
        rs = self.state
        self._stop.clear()
        self._failure = None
        with self._published:
            self._version, self._agent_state = rs.update_step, self._for_actors(rs.agent_state)
        K = self.actors
        obs_parts = np.split(rs.obs, K) if K > 1 else [rs.obs]
        keys = list(rs.key) if K > 1 else [rs.key]
        queues = [queue.Queue(maxsize=self.queue_size) for _ in range(K)]
        self._threads = [
            threading.Thread(
                target=self._actor,
                args=(i, queues[i], rs.update_step, num_updates, obs_parts[i], keys[i]),
                name=f"rlkit-actor-{i}",
                daemon=True,
            )
            for i in range(K)
        ]
        for thread in self._threads:
            thread.start()
        agent_state, update_step = rs.agent_state, rs.update_step
        obs, key = rs.obs, rs.key
        steps, lags = [], []
        try:
            for _ in range(num_updates):
                got = [self._get(i, q) for i, q in enumerate(queues)]
                for k, _version, _ in got:
                    if k != update_step:
                        raise RLKitError(f"pipeline: rollout {k} arrived for update {update_step}")
                collected = self._join([c for _, _, c in got])
                if self.actor_device is not None:  # the update runs where the learner is
                    collected = collected._replace(
                        update_key=jax.device_put(collected.update_key, self._learner_device)
                    )
                agent_state, metrics = host_learn(
                    self.built.config, agent_state, collected, update_step, self.update_fn
                )
                update_step += 1
                obs, key = collected.obs, collected.key
                # Kept current: with a donated update the chunk's first state is gone.
                self.state = HostRunnerState(agent_state, obs, key, update_step)
                published = self._for_actors(agent_state)
                with self._published:
                    self._version, self._agent_state = update_step, published
                    self._published.notify_all()
                lags.append(update_step - 1 - min(v for _, v, _ in got))
                steps.append(metrics)
        finally:
            self._stop_actors()
        self.state = HostRunnerState(agent_state, obs, key, update_step)
        out = stack_metrics(steps)
        out["policy_lag"] = np.asarray(lags, np.float32)[None]
        return out

    def _stop_actors(self) -> None:
        self._stop.set()
        threads, self._threads = self._threads, []
        deadline = time.monotonic() + _JOIN_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:  # daemon threads: they cannot keep the process alive
            sys.stderr.write(
                f"warning: the pipeline's actor thread(s) {', '.join(stuck)} did not stop within "
                f"{_JOIN_S:.0f} s (an env step that never returns?)\n"
            )
        with self._published:
            self._agent_state = None  # no stale state kept alive between chunks

    def close(self) -> None:
        try:
            self._stop_actors()
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
    args = built.args
    return PipelineBackend(
        built,
        updates_per_chunk,
        mode,
        args.pipeline_max_lag,
        actors=args.pipeline_actors,
        actor_device=args.pipeline_actor_device,
    )
