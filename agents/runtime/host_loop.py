"""The host loop over Gymnasium envs: jitted ``act`` and ``update``, env steps in Python.

``host_train_iteration`` steps an ``envs.host.HostVecEnv`` with the agent's jitted ``act`` and
produces the same ``Transition`` rollouts as the compiled loop, then calls the jitted ``update``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from agents.base import Agent, Transition
from agents.runtime.compile import compile_once

__all__ = ["HostRunnerState", "host_init", "host_train_iteration", "make_host_fns"]


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


def host_train_iteration(
    agent: Agent, henv, config, rs: HostRunnerState, act_fn: Callable, update_fn: Callable
) -> tuple[HostRunnerState, dict]:
    """One rollout on the host env and one update.

    ``act_fn(state, obs, key)`` and ``update_fn(state, rollout, key)`` are the agent's ``act`` and
    ``update`` with ``config`` bound and jitted (``make_host_fns``). Per env step there is one
    device call and one transfer back (action and extras together); the rollout is stacked on the
    host and sent to the device once.
    """
    steps = []
    ep_ret, ep_len, ep_cnt = 0.0, 0.0, 0.0
    keys = np.asarray(jax.random.split(rs.key, config.rollout_length + 2))
    obs = rs.obs
    for t in range(config.rollout_length):
        action, extras = jax.device_get(act_fn(rs.agent_state, obs, keys[t + 2]))
        next_obs, reward, terminated, truncated, final_obs, info = henv.step(action)
        steps.append(Transition(obs, action, reward, terminated, truncated, final_obs, extras))
        done = info["returned_episode"]
        ep_ret += float(np.sum(np.where(done, info["episode_return"], 0.0)))
        ep_len += float(np.sum(np.where(done, info["episode_length"], 0)))
        ep_cnt += float(np.sum(done))
        obs = next_obs
    rollout = jax.tree.map(lambda *xs: np.stack(xs), *steps)
    rollout = rollout._replace(
        obs=rollout.obs.astype(np.float32),
        next_obs=rollout.next_obs.astype(np.float32),
        reward=rollout.reward.astype(np.float32),
        terminated=rollout.terminated.astype(np.bool_),
        truncated=rollout.truncated.astype(np.bool_),
    )
    agent_state, metrics = update_fn(rs.agent_state, jax.device_put(rollout), keys[1])
    rs = HostRunnerState(agent_state, obs, jnp.asarray(keys[0]), rs.update_step + 1)
    metrics = dict(metrics)
    metrics.update(
        episode_return_sum=ep_ret,
        episode_length_sum=ep_len,
        episode_count=ep_cnt,
        env_steps=rs.update_step * config.num_envs * config.rollout_length,
    )
    return rs, metrics


def make_host_fns(agent: Agent, config) -> tuple[Callable, Callable]:
    """Jitted ``act(state, obs, key)`` and ``update(state, rollout, key)`` with ``config`` bound.

    Binding the config avoids flattening and transferring every hyperparameter on each env step.
    """
    act = jax.jit(lambda state, obs, key: agent.act(config, state, obs, key))
    update = jax.jit(lambda state, rollout, key: agent.update(config, state, rollout, key))
    return act, update
