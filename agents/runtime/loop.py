"""The compiled training loop over an ``envs`` vector env: pure functions, jit and vmap freely.

``collect_rollout`` and ``train_iteration`` run under ``jax.jit``; ``make_train`` gives
``train(config, key)``, the whole training run as one function of a config pytree and a key, so

    train = make_train(agent, "CartPole-v1", config)
    jax.jit(jax.vmap(train, in_axes=(None, 0)))(config, keys)            # seeds
    jax.jit(jax.vmap(train, in_axes=(0, None)))(stack_configs(cs), key)  # hyperparameter sweep

``make_train_chunk`` gives the same loop cut into chunks of ``num_iterations`` updates, so the host
can report, log and checkpoint between chunks (``agents.training`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from agents.base import Agent, Transition
from agents.parallel import data_mean, data_size, data_sum, fold_in_shard
from agents.registry import get_agent
from agents.runtime.devices import RunMesh
from envs.wrappers import make_vec
from rlkit.errors import RLKitError

__all__ = [
    "RunnerState",
    "collect_rollout",
    "episode_metrics",
    "init_runner",
    "make_mesh_train",
    "make_train",
    "make_train_chunk",
    "train_iteration",
]


class RunnerState(NamedTuple):
    """The carry of the compiled training loop."""

    agent_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.PRNGKey
    update_step: chex.Array  # int32: updates done so far


def init_runner(agent: Agent, venv, env_params, config, key: chex.PRNGKey) -> RunnerState:
    """Fresh agent and env state for one seed; ``venv.num_envs`` must equal ``config.num_envs``."""
    if venv.num_envs != config.num_envs:
        raise RLKitError(
            f"num_envs: the vector env has {venv.num_envs} envs but config.num_envs is "
            f"{config.num_envs}; build it with envs.wrappers.make_vec(env, config.num_envs)"
        )
    key, k_agent, k_env = jax.random.split(key, 3)
    agent_state = agent.init(config, k_agent)  # the same on every data shard
    obs, env_state = venv.reset(fold_in_shard(k_env), env_params)
    return RunnerState(agent_state, env_state, obs, key, jnp.zeros((), jnp.int32))


def episode_metrics(info: dict) -> dict:
    """Sums and counts of the episodes completed in a rollout (from ``EpisodeStatistics`` info)."""
    done = info["returned_episode"]
    return {
        "episode_return_sum": jnp.sum(jnp.where(done, info["episode_return"], 0.0)),
        "episode_length_sum": jnp.sum(jnp.where(done, info["episode_length"], 0)).astype(
            jnp.float32
        ),
        "episode_count": jnp.sum(done).astype(jnp.float32),
    }


def collect_rollout(
    agent: Agent, venv, env_params, config, rs: RunnerState
) -> tuple[RunnerState, Transition, dict]:
    """``config.rollout_length`` steps of every env with the agent's exploring ``act``."""

    def step(carry: RunnerState, _):
        key, k_act, k_env = jax.random.split(carry.key, 3)
        action, extras = agent.act(config, carry.agent_state, carry.obs, fold_in_shard(k_act))
        obs, env_state, reward, terminated, truncated, info = venv.step(
            fold_in_shard(k_env), carry.env_state, action, env_params
        )
        tr = Transition(carry.obs, action, reward, terminated, truncated, info["final_obs"], extras)
        carry = carry._replace(env_state=env_state, obs=obs, key=key)
        return carry, (tr, episode_metrics(info))

    rs, (rollout, ep) = jax.lax.scan(step, rs, None, length=config.rollout_length)
    return rs, rollout, jax.tree.map(jnp.sum, ep)


def train_iteration(agent: Agent, venv, env_params, config, rs: RunnerState):
    """Collect one rollout and update once. Returns ``(rs, metrics)``.

    On the data axis of a mesh (``agents.parallel``) ``config`` is one shard's (its share of the
    envs); the metrics are then the whole run's: losses averaged and episode sums added over the
    shards, ``env_steps`` counted over all of them.
    """
    rs, rollout, ep = collect_rollout(agent, venv, env_params, config, rs)
    key, k_update = jax.random.split(rs.key)
    agent_state, metrics = agent.update(config, rs.agent_state, rollout, fold_in_shard(k_update))
    rs = rs._replace(agent_state=agent_state, key=key, update_step=rs.update_step + 1)
    metrics = data_mean(dict(metrics))
    metrics.update(data_sum(ep))
    metrics["env_steps"] = (
        rs.update_step * config.num_envs * data_size() * config.rollout_length
    )
    return rs, metrics


def make_train_chunk(agent: Agent, venv, env_params, num_iterations: int) -> Callable:
    """``chunk(config, rs) -> (rs, metrics [num_iterations])``: pure, jit and vmap freely."""

    def chunk(config, rs: RunnerState):
        def body(rs, _):
            return train_iteration(agent, venv, env_params, config, rs)

        return jax.lax.scan(body, rs, None, length=num_iterations)

    return chunk


def make_mesh_train(
    agent: Agent, venv, env_params, mesh: RunMesh, swept: bool = False
) -> tuple[Callable, Callable[[int], Callable]]:
    """The programs of a job laid out on ``mesh`` (``agents.runtime.devices.RunMesh``).

    Args:
      agent: as for ``make_train_chunk``.
      venv: as for ``make_train_chunk``, with one shard's envs
        (``agents.parallel.local_config(config, mesh.shards).num_envs``).
      env_params: as for ``make_train_chunk``.
      mesh: where the runs and their shards go.
      swept: whether the config has a leading runs axis (one row per run: a sweep).

    Returns:
      ``(init, chunk)``: ``init(config, keys [padded_runs]) -> RunnerState`` and
      ``chunk(n)(config, rs) -> (rs, metrics)`` (``n`` updates), to be jitted; every leaf has the
      runs axis first, then the shard axis when ``mesh.sharded``.
    """
    cfg_axis = 0 if swept else None

    def init(config, keys):
        return mesh.map(
            lambda c, k: init_runner(agent, venv, env_params, c, k), (cfg_axis, 0)
        )(config, keys)

    def chunk(num_iterations: int) -> Callable:
        step = make_train_chunk(agent, venv, env_params, num_iterations)
        return mesh.map(step, (cfg_axis, 0), (False, True))

    return init, chunk


def make_train(agent_or_name, env, config, env_params=None) -> Callable:
    """``train(config, key) -> (RunnerState, metrics)``: a whole training run as one pure function.

    Args:
      agent_or_name: an ``Agent`` instance, or a registered agent name (``"dqn"``, ``"ppo"``...).
      env: an ``envs`` env id or ``Environment``.
      config: the config whose static fields (``num_envs``, sizes) fix the program's shapes.
      env_params: env params (default: the env's defaults).

    ``config.num_envs`` is the one source of the number of envs: the vector env is built with it.
    ``agent.check_config(config)`` runs once here, on the concrete config.
    """
    env_params_override = env_params
    venv, env_params = make_vec(env, config.num_envs)
    if env_params_override is not None:
        env_params = env_params_override
    if isinstance(agent_or_name, str):
        agent = get_agent(agent_or_name)(
            venv.observation_space(env_params), venv.action_space(env_params)
        )
    else:
        agent = agent_or_name
    agent.check_config(config)
    num_updates = config.num_updates

    def train(config, key):
        rs = init_runner(agent, venv, env_params, config, key)
        return make_train_chunk(agent, venv, env_params, num_updates)(config, rs)

    return train
