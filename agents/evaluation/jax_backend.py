"""The JAX evaluation backend: all episodes of all seeds at once, in one compiled program.

Each episode is its own env instance of ``envs.make(env_id)``, reset once and stepped without
autoreset inside a ``lax.while_loop`` until every episode has ended (by termination or the env's
time limit); a finished episode's state is frozen and its rewards masked, so every episode counts
exactly once and no partial episode counts. The policy is vmapped over the seed axis of its
parameters, the env over seeds and episodes.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import envs
from agents.evaluation.checks import (
    bad_action_error,
    check_action_output,
    check_spaces,
    eval_time_limit,
)
from agents.policy import Policy
from envs.host import rlkit_id
from rlkit.errors import RLKitError

__all__ = ["evaluate_jax", "jax_program"]


@functools.lru_cache(maxsize=32)
def jax_program(apply: Callable, env_id: str, deterministic: bool) -> Callable:
    """The compiled evaluation program for one (policy function, env, deterministic) triple.

    Returns ``run(params [S, ...], key, env_params, num_episodes) -> (returns [S, E],
    lengths [S, E], finished [S, E], bad_found, bad_action)``; jitted with ``num_episodes`` static,
    so a second call with the same shapes does not recompile.
    """
    env, _ = envs.make(env_id)
    act_space = env.action_space()

    def step_episodes(env_keys, states, actions, env_params):
        step_one = lambda k, s, a: env.step(k, s, a, env_params)  # noqa: E731
        return jax.vmap(jax.vmap(step_one))(env_keys, states, actions)

    def freeze(done, new, old):
        def select(n, o):
            d = jnp.reshape(done, done.shape + (1,) * (n.ndim - done.ndim))
            return jnp.where(d, o, n)

        return jax.tree.map(select, new, old)

    def run(params, key, env_params, num_episodes: int):
        num_seeds = jax.tree.leaves(params)[0].shape[0]
        shape = (num_seeds, num_episodes)
        k_reset, k_loop = jax.random.split(key)
        reset_keys = jax.random.split(k_reset, shape)
        reset_one = lambda k: env.reset(k, env_params)  # noqa: E731
        obs, states = jax.vmap(jax.vmap(reset_one))(reset_keys)
        act_proto = jax.eval_shape(
            lambda p, o, k: apply(p, o, k, deterministic),
            jax.tree.map(lambda x: x[0], params),
            obs[0],
            k_loop,
        )
        policy_batch = jax.vmap(lambda p, o, k: apply(p, o, k, deterministic))
        max_steps = jnp.asarray(env_params.max_episode_steps, jnp.int32)

        def cond(carry):
            t, done = carry[0], carry[5]
            return jnp.logical_and(t < max_steps, jnp.logical_not(jnp.all(done)))

        def body(carry):
            t, key, obs, states, ret, done, length, bad_found, bad_action = carry
            key, k_pol, k_env = jax.random.split(key, 3)
            actions = policy_batch(params, obs, jax.random.split(k_pol, num_seeds))
            active = jnp.logical_not(done)
            valid = jax.vmap(jax.vmap(act_space.contains))(actions)
            bad = jnp.logical_and(active, jnp.logical_not(valid))
            flat_actions = actions.reshape((-1,) + actions.shape[2:])
            first_bad = flat_actions[jnp.argmax(bad.reshape(-1))]
            take = jnp.logical_and(jnp.logical_not(bad_found), jnp.any(bad))
            bad_action = jnp.where(take, first_bad, bad_action)
            bad_found = jnp.logical_or(bad_found, jnp.any(bad))
            new_obs, new_states, reward, terminated, truncated, _ = step_episodes(
                jax.random.split(k_env, shape), states, actions, env_params
            )
            ret = ret + jnp.where(active, reward, 0.0)
            length = length + active.astype(jnp.int32)
            obs = freeze(done, new_obs, obs)
            states = freeze(done, new_states, states)
            done = done | terminated | truncated
            return (t + 1, key, obs, states, ret, done, length, bad_found, bad_action)

        init = (
            jnp.asarray(0, jnp.int32),
            k_loop,
            obs,
            states,
            jnp.zeros(shape, jnp.float32),
            jnp.zeros(shape, jnp.bool_),
            jnp.zeros(shape, jnp.int32),
            jnp.asarray(False),
            jnp.zeros(act_proto.shape[1:], act_proto.dtype),
        )
        out = jax.lax.while_loop(cond, body, init)
        _, _, _, _, ret, done, length, bad_found, bad_action = out
        return ret, length, done, bad_found, bad_action

    return jax.jit(run, static_argnums=3)


def evaluate_jax(
    policy: Policy,
    params: Any,
    env_id: str,
    episodes: int,
    deterministic: bool,
    seed: int,
    max_episode_steps: int | None,
):
    """Runs ``episodes`` episodes of each of the stacked ``params`` on rlkit's ``env_id``.

    Returns:
      ``(returns [S, E], lengths [S, E], env_index [S, E], reward_threshold)``.
    """
    rl_id = rlkit_id(env_id)
    if rl_id is None:
        envs.make(env_id)  # RLKitError naming the id and the registered ones
    limit = eval_time_limit(envs.core.spec(rl_id).max_episode_steps, max_episode_steps)
    overrides = {} if limit is None else {"max_episode_steps": limit}
    env, env_params = envs.make(rl_id, **overrides)
    act_space = env.action_space(env_params)
    check_spaces(policy, env.observation_space(env_params), act_space, env_id)
    check_action_output(policy, jax.tree.map(lambda x: x[0], params), act_space, episodes)
    try:
        run = jax_program(policy.apply, rl_id, bool(deterministic))
    except TypeError:  # an unhashable callable: compile without the cache
        run = jax_program.__wrapped__(policy.apply, rl_id, bool(deterministic))
    ret, length, done, bad_found, bad_action = run(
        params, jax.random.PRNGKey(seed), env_params, episodes
    )
    if bool(bad_found):
        raise bad_action_error(jax.device_get(bad_action), act_space, env_id)
    if not bool(jnp.all(done)):  # cannot happen: Environment.step truncates at the time limit
        raise RLKitError(f"{env_id!r}: some episodes did not end within max_episode_steps")
    num_seeds = ret.shape[0]
    env_index = np.broadcast_to(np.arange(episodes, dtype=np.int64), (num_seeds, episodes))
    threshold = env.reward_threshold
    return (
        np.asarray(ret, np.float64),
        np.asarray(length, np.int64),
        np.array(env_index),
        threshold,
    )
