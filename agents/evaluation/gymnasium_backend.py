"""The Gymnasium evaluation backend: the policies on Gymnasium's own envs, on the host.

The policies run on ``gymnasium.make_vec(env_id, S * num_envs, "sync")``, the sub-envs of seed
``s`` being ``[s * num_envs, (s + 1) * num_envs)``. A vector env that keeps the first ``episodes``
episodes to finish over-samples short episodes (they finish first). Here the budget is split up
front instead: sub-env ``i`` owes a fixed quota of episodes (``split_episodes``: ceil/floor shares
summing to ``episodes``); it keeps the first ``quota[i]`` episodes it finishes, and everything
after its quota, including the episode still running when evaluation stops, is discarded. Each
sub-env's kept episodes are then i.i.d. draws, whatever their lengths. Autoreset is SAME_STEP;
NEXT_STEP's dummy reset step is skipped if used.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import gymnasium
import jax
import numpy as np
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)
from agents.evaluation.checks import (
    bad_action_error,
    check_action_output,
    check_spaces,
    eval_time_limit,
    split_episodes,
)
from agents.policy import Policy
from envs import host
from envs.host import is_gymnasium_id
from rlkit.errors import RLKitError

__all__ = ["evaluate_gymnasium", "host_policy", "host_invalid", "make_gymnasium_vec"]


@functools.lru_cache(maxsize=32)
def host_policy(apply: Callable, deterministic: bool) -> Callable:
    """``act(params [S, ...], obs [S, n, ...], key, step) -> actions [S, n, ...]``, jitted."""

    def act(params, obs, key, step):
        num_seeds = obs.shape[0]
        keys = jax.random.split(jax.random.fold_in(key, step), num_seeds)
        return jax.vmap(lambda p, o, k: apply(p, o, k, deterministic))(params, obs, keys)

    return jax.jit(act)


def host_invalid(actions: np.ndarray, space: Any) -> np.ndarray:
    """Boolean mask over the leading (sub-env) axis of actions outside a Gymnasium space."""
    a = np.asarray(actions)
    if isinstance(space, gymnasium.spaces.Discrete):
        integral = np.issubdtype(a.dtype, np.integer) or bool(np.all(a == np.round(a)))
        inside = (a >= space.start) & (a < space.start + space.n)
        return ~inside if integral else np.ones(a.shape[:1], bool)
    if isinstance(space, gymnasium.spaces.Box):
        flat = a.reshape(a.shape[0], -1)
        inside = (flat >= space.low.reshape(1, -1)) & (flat <= space.high.reshape(1, -1))
        return ~np.all(inside, axis=1)
    return np.asarray([not space.contains(x) for x in a], bool)


def make_gymnasium_vec(env_id: str, num_envs: int, autoreset_mode: Any, max_episode_steps):
    """The evaluation's vector env: ``envs.host.make_gymnasium_vec`` (so with the preprocessing
    training uses, e.g. Atari's), synchronous, with ``autoreset_mode`` and the time limit."""
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    if not is_gymnasium_id(env_id):  # registers the reference MinAtar's and ALE's ids on demand
        raise RLKitError(f"unknown Gymnasium env id {env_id!r}")
    try:
        return host.make_gymnasium_vec(
            env_id,
            num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": autoreset_mode},
            **kwargs,
        )
    except gymnasium.error.Error as e:
        raise RLKitError(f"cannot make Gymnasium env {env_id!r}: {e}") from None


def evaluate_gymnasium(
    policy: Policy,
    params: Any,
    env_id: str,
    episodes: int,
    deterministic: bool,
    seed: int,
    num_envs: int | None,
    max_episode_steps: int | None,
    autoreset_mode: Any = None,
):
    """The Gymnasium backend; ``autoreset_mode`` (SAME_STEP by default) is exposed for tests."""
    mode = AutoresetMode.SAME_STEP if autoreset_mode is None else AutoresetMode(autoreset_mode)
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    n = min(int(num_envs) if num_envs is not None else 16, episodes)
    quotas = split_episodes(episodes, n)
    offsets = np.concatenate([[0], np.cumsum(quotas)[:-1]])
    if not is_gymnasium_id(env_id):  # registers the reference MinAtar's ids on demand
        raise RLKitError(f"unknown Gymnasium env id {env_id!r}")
    max_episode_steps = eval_time_limit(gymnasium.spec(env_id).max_episode_steps, max_episode_steps)
    venv = make_gymnasium_vec(env_id, num_seeds * n, mode, max_episode_steps)
    try:
        time_limit = venv.spec.max_episode_steps if venv.spec is not None else None
        if max_episode_steps is not None:
            time_limit = int(max_episode_steps)
        obs_space, act_space = venv.single_observation_space, venv.single_action_space
        check_spaces(policy, obs_space, act_space, env_id)
        check_action_output(policy, jax.tree.map(lambda x: x[0], params), policy.action_space, n)
        try:
            act = host_policy(policy.apply, bool(deterministic))
        except TypeError:  # an unhashable callable: compile without the cache
            act = host_policy.__wrapped__(policy.apply, bool(deterministic))
        key = jax.random.PRNGKey(seed)
        returns = np.full((num_seeds, episodes), np.nan, np.float64)
        lengths = np.zeros((num_seeds, episodes), np.int64)
        env_index = np.zeros((num_seeds, episodes), np.int64)
        counts = np.zeros((num_seeds, n), np.int64)
        ep_ret = np.zeros((num_seeds, n), np.float64)
        ep_len = np.zeros((num_seeds, n), np.int64)
        skip = np.zeros((num_seeds, n), bool)  # NEXT_STEP: the dummy reset step comes next
        owed = quotas[None, :]
        obs, _ = venv.reset(seed=seed)
        # Each sub-env needs at most quota * (time_limit + 1) steps (+1: NEXT_STEP's reset step).
        step_budget = int(quotas.max()) * (time_limit + 1) + 1
        for step in range(step_budget):
            if np.all(counts >= owed):
                break
            obs_b = np.asarray(obs).reshape((num_seeds, n) + tuple(obs_space.shape))
            if np.issubdtype(obs_b.dtype, np.floating):
                obs_b = obs_b.astype(np.float32)
            actions = np.asarray(act(params, obs_b, key, step))
            flat_actions = actions.reshape((num_seeds * n,) + actions.shape[2:])
            live = ((counts < owed) & ~skip).reshape(-1)
            invalid = host_invalid(flat_actions, act_space) & live
            if invalid.any():
                raise bad_action_error(flat_actions[np.argmax(invalid)], act_space, env_id)
            obs, reward, terminated, truncated, _ = venv.step(flat_actions)
            reward = np.asarray(reward, np.float64).reshape(num_seeds, n)
            ended = (np.asarray(terminated) | np.asarray(truncated)).reshape(num_seeds, n)
            real = ~skip
            ep_ret += np.where(real, reward, 0.0)
            ep_len += real
            finished = ended & real
            for s, i in zip(*np.nonzero(finished)):
                if counts[s, i] < quotas[i]:
                    slot = offsets[i] + counts[s, i]
                    returns[s, slot] = ep_ret[s, i]
                    lengths[s, slot] = ep_len[s, i]
                    env_index[s, slot] = i
                    counts[s, i] += 1
            ep_ret[finished] = 0.0
            ep_len[finished] = 0
            skip = finished if mode == AutoresetMode.NEXT_STEP else np.zeros_like(skip)
        if not np.all(counts >= owed):  # cannot happen with a TimeLimit
            raise RLKitError(f"{env_id!r}: episodes did not end within {step_budget} steps")
        threshold = venv.spec.reward_threshold if venv.spec is not None else None
        if threshold is None:
            try:
                threshold = gymnasium.spec(env_id).reward_threshold
            except gymnasium.error.Error:
                threshold = None
    finally:
        venv.close()
    return returns, lengths, env_index, threshold
