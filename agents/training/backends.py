"""The backends of the training job: where the envs run and how a chunk of updates is computed.

``agents.training.job`` drives any ``Backend`` the same way: it builds it, resumes it from a
checkpoint or starts it fresh, asks it for chunks of updates, and between chunks logs, evaluates
and checkpoints. A backend holds its training state on the host side of the job (the imperative
shell around the pure loops of ``agents.runtime``), so the job never sees whether the envs are
JAX functions or Gymnasium objects.

* ``CompiledBackend``: rlkit's JAX envs; every chunk is one jitted program over all runs
  (``vmap_runs``: vmapped, and split over the local devices when there are several).
* ``HostBackend``: any Gymnasium env on the host, one run; the agent's ``act`` and ``update`` are
  jitted, the env steps in Python. Its checkpoint holds the env's replay state
  (``envs.host.HostVecEnv.state_dict``), so a resumed run continues bit for bit.

A new backend (a pipelined actor/learner loop, a device mesh) implements the same methods.
"""

from __future__ import annotations

import abc
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax.experimental import multihost_utils

from agents.base import stack_configs
from agents.parallel import local_config
from agents.runs import files
from agents.runs.spec import BuiltRun
from agents.runtime.compile import compile_init_and_chunk
from agents.runtime.devices import RunMesh, is_writer, process_barrier
from agents.runtime.host_loop import (
    HostRunnerState,
    host_init,
    host_train_iteration,
    make_host_fns,
    make_host_update_act,
    make_process_update,
    stack_metrics,
)
from agents.runtime.loop import make_mesh_train
from envs.host import HostVecEnv
from envs.wrappers import make_vec
from rlkit.errors import RLKitError

__all__ = ["Backend", "CompiledBackend", "HostBackend", "make_backend"]


class Backend(abc.ABC):
    """What the training job needs from a backend.

    Attributes:
      built: the validated run (agent, per-run configs, env id).
      eval_backend: the ``agents.evaluation`` backend that evaluates its policies during training
        (``"jax"`` on rlkit's env, ``"gymnasium"`` on Gymnasium's).
      compile_s: seconds spent compiling in ``start`` (None if nothing was compiled up front).
    """

    eval_backend: str = "jax"
    compile_s: float | None = None

    def __init__(self, built: BuiltRun, updates_per_chunk: int):
        self.built = built
        self.updates_per_chunk = updates_per_chunk

    @property
    def num_runs(self) -> int:
        return self.built.num_runs

    @abc.abstractmethod
    def start(self) -> None:
        """Build the env, compile what runs, and set up a fresh state for every run."""

    @abc.abstractmethod
    def run(self, num_updates: int) -> dict[str, np.ndarray]:
        """Advance every run by ``num_updates`` updates; metrics as numpy ``[runs, num_updates]``."""

    @abc.abstractmethod
    def save(self, run_dir: str, meta: dict) -> None:
        """Write a checkpoint of the current state (``meta`` holds env_steps and update_step)."""

    @abc.abstractmethod
    def restore(self, run_dir: str) -> dict:
        """Load the run directory's checkpoint into the state; returns its metadata (the meta
        given to ``save``, with ``update_step``)."""

    @abc.abstractmethod
    def policy_params(self) -> Any:
        """The evaluation parameters of every run, stacked on a leading run axis (numpy)."""

    def close(self) -> None:
        """Release envs and threads."""


class CompiledBackend(Backend):
    """rlkit JAX envs: the whole chunk of every run in one jitted program over the device mesh
    (``agents.runtime.devices.RunMesh``: runs split over the ``runs`` axis, each run's env batch
    over the ``data`` axis; ``--mesh``)."""

    eval_backend = "jax"

    def start(self) -> None:
        built = self.built
        agent = built.agent
        R = built.num_runs
        self.mesh = mesh = RunMesh(R, built.mesh_shape)
        shards = mesh.shards
        # One shard's view of every run: its share of the envs, replay and batch (checked valid by
        # agents.runs.spec.build).
        local = [local_config(c, shards) for c in built.configs]
        config = local_config(built.config, shards)
        venv, env_params = make_vec(built.env_id, config.num_envs)
        self.env_params = env_params
        # Without a sweep every run shares one config; with one, each run gets its own row.
        if built.swept:
            self.cfg_arg = mesh.put(mesh.pad(jax.tree.map(np.asarray, stack_configs(local))))
        else:
            self.cfg_arg = config
        init_all, make_chunk = make_mesh_train(agent, venv, env_params, mesh, built.swept)

        def chunk_fn(n):
            return jax.jit(make_chunk(n), donate_argnums=1)

        self._chunk_fn = chunk_fn
        keys = jax.random.split(jax.random.PRNGKey(built.args.seed), R)
        keys = mesh.put(mesh.pad(jax.device_get(keys)))
        t0 = time.perf_counter()
        compiled_init, compiled = compile_init_and_chunk(
            init_all,
            (self.cfg_arg, keys),
            chunk_fn(self.updates_per_chunk),
            lambda state: (self.cfg_arg, state),
            mesh.sharding(),
        )
        self.compile_s = time.perf_counter() - t0
        self._chunks = {self.updates_per_chunk: compiled}
        process_barrier("compiled")  # every process compiled: the collectives can start
        self.state = compiled_init(self.cfg_arg, keys)
        # The evaluation parameters of every run, read from its first shard (all shards agree).
        first = (lambda x: x[:, 0]) if mesh.sharded else (lambda x: x)
        self._policy_params = jax.jit(
            lambda s: jax.vmap(agent.policy_params)(jax.tree.map(first, s.agent_state))
        )

    def _runs(self, tree: Any) -> Any:
        """Gathered host arrays without the padded runs (and, for metrics, the shard axis)."""
        return jax.tree.map(lambda x: x[: self.num_runs], self.mesh.gather(tree))

    def run(self, num_updates: int) -> dict[str, np.ndarray]:
        if num_updates not in self._chunks:
            self._chunks[num_updates] = (
                self._chunk_fn(num_updates).lower(self.cfg_arg, self.state).compile()
            )
            process_barrier("compiled")
        self.state, metrics = self._chunks[num_updates](self.cfg_arg, self.state)
        metrics = self._runs(metrics)
        if self.mesh.sharded:  # every shard reports the run's (averaged) metrics
            metrics = jax.tree.map(lambda x: x[:, 0], metrics)
        return metrics

    def save(self, run_dir: str, meta: dict) -> None:
        state = self._runs(self.state)  # a collective with several processes: all call it
        if is_writer():
            files.save_checkpoint(run_dir, state, meta)

    def restore(self, run_dir: str) -> dict:
        template = self._runs(self.state)
        loaded, meta, _ = files.load_checkpoint(run_dir, template)
        # Place the restored runs as the fresh state is placed (padded, split over the mesh).
        self.state = self.mesh.put(self.mesh.pad(loaded), shard_axis=True)
        return meta

    def policy_params(self) -> Any:
        return self._runs(self._policy_params(self.state))


class HostBackend(Backend):
    """Any Gymnasium env on the host: one run, jitted ``act`` and ``update``.

    In a job of several processes each process steps its own pool of the run's envs (its share
    of ``num_envs``, ``agents.parallel.local_config``) and the update averages the gradients over
    every process (``agents.runtime.host_loop.make_process_update``); process 0 writes a
    checkpoint holding every process's agent and env state.
    """

    eval_backend = "gymnasium"

    #: Whether ``update`` may reuse the agent state's buffers (``make_host_fns``'s ``donate``):
    #: nothing reads a state again once the next update has started from it.
    donate_state = True
    #: Groups the run's envs are split into, each with its own key chain (the pipeline's actors,
    #: ``--pipeline-actors``); a checkpoint records it when above 1 and resumes only with it.
    actors = 1

    def _make_env(self, num_envs: int, seed: int) -> HostVecEnv:
        """The host envs of this process: one ``HostVecEnv`` (the pipeline splits it)."""
        return HostVecEnv(self.built.env_id, num_envs, seed=seed)

    def start(self) -> None:
        built = self.built
        if built.num_runs != 1:
            raise RLKitError("--num-seeds/--sweep: the host (Gymnasium) backend trains one run")
        agent = built.agent
        self.processes, me = jax.process_count(), jax.process_index()
        self.config = config = local_config(built.config, self.processes)  # checked by build
        # Every process its own envs (episode seeds differ per process).
        self.henv = self._make_env(config.num_envs, built.args.seed + 100_003 * me)
        if tuple(self.henv.observation_space.shape) != tuple(agent.observation_space.shape):
            raise RLKitError(f"--env: {built.env_id!r} changed its observation space")
        self.act_fn, self.update_fn = make_host_fns(agent, config, donate=self.donate_state)
        # Within a chunk each update also computes the next rollout's first action (one device
        # call fewer per rollout); not with several processes (their update is a collective).
        self.update_act_fn = make_host_update_act(agent, config, donate=self.donate_state)
        if self.processes > 1:
            self.update_fn = make_process_update(agent, config)
            self.update_act_fn = None
        t0 = time.perf_counter()
        self.state = host_init(agent, self.henv, config, jax.random.PRNGKey(built.args.seed))
        if self.processes > 1:  # the same parameters everywhere, but each process its own keys
            self.state = self.state._replace(key=jax.random.fold_in(self.state.key, me))
        self.compile_s = time.perf_counter() - t0
        process_barrier("host-started")

    def run(self, num_updates: int) -> dict[str, np.ndarray]:
        steps, first = [], None
        for i in range(num_updates):
            # The chunk's last update is a plain one: the next chunk starts with a plain act.
            fused = self.update_act_fn if i < num_updates - 1 else None
            self.state, metrics, first = host_train_iteration(
                self.built.agent, self.henv, self.config, self.state, self.act_fn,
                self.update_fn, fused, first,
            )
            steps.append(metrics)  # fetched once for the chunk: no host sync per update
        out = stack_metrics(steps)
        if self.processes > 1:  # the episodes and env steps of every process's envs
            keys = ("episode_return_sum", "episode_length_sum", "episode_count")
            local = np.stack([out[k] for k in keys])
            total = multihost_utils.process_allgather(local).sum(axis=0)
            out.update({k: total[i] for i, k in enumerate(keys)})
            out["env_steps"] = out["env_steps"] * self.processes
        return out

    def _stacked(self) -> dict:
        """This process's state with a leading processes axis; every process's when gathered."""
        state = {
            "agent_state": jax.tree.map(lambda x: np.asarray(x)[None], self.state.agent_state),
            "key": np.asarray(self.state.key)[None],
        }
        if self.processes > 1:
            state = multihost_utils.process_allgather(state, tiled=True)
        return state

    def _env_states(self) -> Any:
        env = self.henv.state_dict()
        if self.processes == 1:
            return env
        # Gathered as bytes (each process's arrays have their own shapes).
        blob = np.frombuffer(serialization.msgpack_serialize(env), np.uint8)
        sizes = multihost_utils.process_allgather(np.asarray([blob.size]))
        padded = np.zeros(int(sizes.max()), np.uint8)
        padded[: blob.size] = blob
        blobs = multihost_utils.process_allgather(padded[None], tiled=True)
        return [
            serialization.msgpack_restore(blobs[p, : int(sizes[p, 0])].tobytes())
            for p in range(self.processes)
        ]

    def save(self, run_dir: str, meta: dict) -> None:
        state, env = self._stacked(), self._env_states()  # collectives: every process calls
        if is_writer():
            meta = dict(meta, host_processes=self.processes)
            if self.actors > 1:
                meta["pipeline_actors"] = self.actors
            files.save_checkpoint(run_dir, state, meta, extra={"env": env})

    def restore(self, run_dir: str) -> dict:
        saved = files.read_json(os.path.join(run_dir, files.CHECKPOINT_META), "--resume")
        wrote = int(saved.get("host_processes", 1)) if isinstance(saved, dict) else 1
        if wrote != self.processes:
            raise RLKitError(
                f"--resume: this host-backend run was checkpointed by {wrote} process(es), each "
                f"with its own env pool; resume it with --num-processes {wrote} "
                f"(got {self.processes})"
            )
        wrote = int(saved.get("pipeline_actors", 1)) if isinstance(saved, dict) else 1
        if wrote != self.actors:
            raise RLKitError(
                f"--resume: this run was checkpointed with its envs split over {wrote} pipeline "
                f"actor(s), each with its own envs and key chain; resume it with --pipeline-actors "
                f"{wrote}" + (" and --pipeline sync|async" if wrote > 1 else "")
                + f" (got {self.actors})"
            )
        loaded, meta, extra = files.load_checkpoint(run_dir, self._stacked())
        if "env" not in extra:
            raise RLKitError(f"--resume: the checkpoint in {run_dir!r} holds no host env state")
        env = extra["env"]
        me = jax.process_index()
        if self.processes > 1:
            env = files.as_list(env)[me]
        obs = self.henv.load_state_dict(env)
        self.state = HostRunnerState(
            agent_state=jax.tree.map(lambda x: jnp.asarray(x[me]), loaded["agent_state"]),
            obs=obs,
            key=jnp.asarray(loaded["key"][me]),
            update_step=int(meta["update_step"]),
        )
        return meta

    def policy_params(self) -> Any:
        params = self.built.agent.policy_params(self.state.agent_state)
        return jax.device_get(jax.tree.map(lambda x: jnp.asarray(x)[None], params))

    def close(self) -> None:
        henv = getattr(self, "henv", None)
        if henv is not None:
            henv.close()


def make_backend(built: BuiltRun, updates_per_chunk: int) -> Backend:
    """The backend ``built.backend`` names (``"jax"`` or ``"gymnasium"``)."""
    if built.backend == "jax":
        return CompiledBackend(built, updates_per_chunk)
    return HostBackend(built, updates_per_chunk)
