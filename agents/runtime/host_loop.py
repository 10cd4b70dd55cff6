"""The host loop over Gymnasium envs: jitted ``act`` and ``update``, env steps in Python.

``host_train_iteration`` steps an ``envs.host.HostVecEnv`` with the agent's jitted ``act`` and
produces the same ``Transition`` rollouts as the compiled loop (``host_collect``), then calls the
jitted ``update`` (``host_learn``). The two halves are separate so that a pipelined backend can
run them in different threads (``agents.training.pipeline``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agents.base import Agent, Transition
from agents.parallel import DataAxis, bind_data_axis, data_mean, fold_in_shard
from agents.runtime.compile import compile_once

__all__ = [
    "HostRollout",
    "HostRunnerState",
    "host_collect",
    "host_init",
    "host_learn",
    "host_train_iteration",
    "make_host_fns",
    "make_process_update",
]


class HostRunnerState(NamedTuple):
    """The carry of the host loop (the env's own state lives in the ``HostVecEnv``)."""

    agent_state: Any
    obs: np.ndarray
    key: chex.PRNGKey
    update_step: int


def host_init(agent: Agent, henv, config, key: chex.PRNGKey) -> HostRunnerState:
    """Fresh agent state (its init compiled once, see ``compile_once``) and reset envs."""
    key, k_agent = jax.random.split(key)
    obs = henv.reset()
    agent_state = compile_once(lambda k: agent.init(config, k), k_agent)(k_agent)
    return HostRunnerState(agent_state, obs, key, 0)


class HostRollout(NamedTuple):
    """One rollout collected on the host, with what its update needs (``host_collect``)."""

    rollout: Transition  # numpy, time-major [T, N, ...]
    obs: np.ndarray  # the observations the next rollout starts from
    key: chex.PRNGKey  # the key of the next rollout
    update_key: chex.PRNGKey  # the key of this rollout's update
    episode_stats: tuple[float, float, float]  # return sum, length sum, count of ended episodes


def host_collect(
    henv, config, agent_state: Any, obs: np.ndarray, key: chex.PRNGKey, act_fn: Callable
) -> HostRollout:
    """One rollout of ``config.rollout_length`` steps on the host env from ``obs``.

    ``act_fn(state, obs, key)`` is the agent's jitted ``act`` (``make_host_fns``). Per env step
    there is one device call and one transfer back (action and extras together); the rollout is
    stacked on the host. ``key`` is split into the next rollout's key, the update's key and one
    key per env step, so the keys depend on nothing but the run's seed.
    """
    steps = []
    ep_ret, ep_len, ep_cnt = 0.0, 0.0, 0.0
    keys = np.asarray(jax.random.split(key, config.rollout_length + 2))
    for t in range(config.rollout_length):
        action, extras = jax.device_get(act_fn(agent_state, obs, keys[t + 2]))
        next_obs, reward, terminated, truncated, final_obs, info = henv.step(action)
        steps.append(Transition(obs, action, reward, terminated, truncated, final_obs, extras))
        done = info["returned_episode"]
        ep_ret += float(np.sum(np.where(done, info["episode_return"], 0.0)))
        ep_len += float(np.sum(np.where(done, info["episode_length"], 0)))
        ep_cnt += float(np.sum(done))
        obs = next_obs
    rollout = jax.tree.map(lambda *xs: np.stack(xs), *steps)
    rollout = rollout._replace(
        obs=_observations(rollout.obs),
        next_obs=_observations(rollout.next_obs),
        reward=rollout.reward.astype(np.float32),
        terminated=rollout.terminated.astype(np.bool_),
        truncated=rollout.truncated.astype(np.bool_),
    )
    return HostRollout(rollout, obs, jnp.asarray(keys[0]), keys[1], (ep_ret, ep_len, ep_cnt))


def _observations(obs: np.ndarray) -> np.ndarray:
    """Observations as the update takes them: float32, except uint8 images (Atari frames), which
    stay uint8 (a quarter of the transfer; the CNN torso scales them)."""
    return obs if obs.dtype == np.uint8 else obs.astype(np.float32)


def host_learn(
    config, agent_state: Any, collected: HostRollout, update_step: int, update_fn: Callable
) -> tuple[Any, dict]:
    """The update on a collected rollout: ``(agent_state, metrics)``, where ``update_step`` is
    the number of updates done before this one; the metrics add the episode statistics and the
    env steps after it (device arrays are not fetched)."""
    agent_state, metrics = update_fn(
        agent_state, jax.device_put(collected.rollout), collected.update_key
    )
    ep_ret, ep_len, ep_cnt = collected.episode_stats
    metrics = dict(metrics)
    metrics.update(
        episode_return_sum=ep_ret,
        episode_length_sum=ep_len,
        episode_count=ep_cnt,
        env_steps=(update_step + 1) * config.num_envs * config.rollout_length,
    )
    return agent_state, metrics


def host_train_iteration(
    agent: Agent, henv, config, rs: HostRunnerState, act_fn: Callable, update_fn: Callable
) -> tuple[HostRunnerState, dict]:
    """One rollout on the host env (``host_collect``) and one update (``host_learn``).

    ``act_fn(state, obs, key)`` and ``update_fn(state, rollout, key)`` are the agent's ``act`` and
    ``update`` with ``config`` bound and jitted (``make_host_fns``).
    """
    collected = host_collect(henv, config, rs.agent_state, rs.obs, rs.key, act_fn)
    agent_state, metrics = host_learn(config, rs.agent_state, collected, rs.update_step, update_fn)
    rs = HostRunnerState(agent_state, collected.obs, collected.key, rs.update_step + 1)
    return rs, metrics


def make_host_fns(agent: Agent, config) -> tuple[Callable, Callable]:
    """Jitted ``act(state, obs, key)`` and ``update(state, rollout, key)`` with ``config`` bound.

    Binding the config avoids flattening and transferring every hyperparameter on each env step.
    """
    act = jax.jit(lambda state, obs, key: agent.act(config, state, obs, key))
    update = jax.jit(lambda state, rollout, key: agent.update(config, state, rollout, key))
    return act, update


def make_process_update(agent: Agent, config) -> Callable:
    """``update(state, rollout, key)`` of a run whose envs are split over the job's processes.

    Each process steps its own pool of host envs (``config`` is one process's share, see
    ``agents.parallel.local_config``) and keeps its own agent state on its first local device;
    the update runs as one program over a ``data`` mesh axis of one device per process, so the
    gradients (and normaliser statistics) are averaged over every process's rollout and the
    parameters stay equal. Takes and returns this process's state; the metrics are averaged.
    """
    devices = [
        next(d for d in jax.devices() if d.process_index == p) for p in range(jax.process_count())
    ]
    mesh = Mesh(np.asarray(devices, dtype=object), ("data",))
    axis = DataAxis(("data",), (len(devices),))
    shard = NamedSharding(mesh, PartitionSpec("data"))

    def per_process(state, rollout, key):
        state, rollout = jax.tree.map(lambda x: x[0], (state, rollout))
        with bind_data_axis(axis):
            state, metrics = agent.update(config, state, rollout, fold_in_shard(key))
            metrics = data_mean(dict(metrics))
        return jax.tree.map(lambda x: jnp.asarray(x)[None], (state, metrics))

    program = jax.jit(
        jax.shard_map(
            per_process,
            mesh=mesh,
            in_specs=(PartitionSpec("data"), PartitionSpec("data"), PartitionSpec()),
            out_specs=PartitionSpec("data"),
            check_vma=False,
        )
    )
    local_device = devices[jax.process_index()]

    def to_global(x):
        x = jax.device_put(jnp.asarray(x)[None], local_device)
        return jax.make_array_from_single_device_arrays(
            (len(devices),) + x.shape[1:], shard, [x]
        )

    def update(state, rollout, key):
        state, metrics = program(
            jax.tree.map(to_global, state), jax.tree.map(to_global, rollout), key
        )
        return jax.tree.map(lambda x: x.addressable_data(0)[0], (state, metrics))

    return update
