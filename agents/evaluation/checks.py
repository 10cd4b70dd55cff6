"""Checks shared by the evaluation backends: seeds, spaces, action shapes, episode quotas."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from agents.policy import Policy
from envs.core import Discrete, Space
from rlkit.errors import RLKitError

__all__ = [
    "bad_action_error",
    "check_action_output",
    "check_spaces",
    "describe_space",
    "eval_time_limit",
    "select_seeds",
    "split_episodes",
]


#: The time limit evaluation applies to an env that has none (the reference MinAtar's Gymnasium
#: envs and rlkit's MinAtar, where only the game ends an episode): 27,000 steps, the cap of Atari
#: evaluations (108,000 frames at frame skip 4; Machado et al., 2018). An episode it cuts counts
#: as truncated, as under Gymnasium's ``TimeLimit``.
EVAL_TIME_LIMIT = 27_000

#: Time limits at or above this mean "none" (rlkit's ``NO_TIME_LIMIT`` is ``2**31 - 1``).
_UNLIMITED = 2**31 - 1


def eval_time_limit(env_limit: int | None, max_episode_steps: int | None) -> int | None:
    """The time limit of an evaluation: ``max_episode_steps`` if given, else the env's own, else
    (no limit at all) ``EVAL_TIME_LIMIT``; None when the env's own limit applies unchanged."""
    if max_episode_steps is not None:
        return int(max_episode_steps)
    if env_limit is None or int(env_limit) >= _UNLIMITED:
        return EVAL_TIME_LIMIT
    return None


def split_episodes(episodes: int, num_envs: int) -> np.ndarray:
    """Fixed per-sub-env episode quotas: ``episodes % num_envs`` of ``ceil``, the rest ``floor``.

    Args:
      episodes: total episodes.
      num_envs: sub-envs sharing them.

    Returns:
      int64 ``[num_envs]`` quotas summing to ``episodes``, differing by at most one.
    """
    if episodes < 0 or num_envs < 1:
        raise RLKitError(
            f"split_episodes: expected episodes >= 0 and num_envs >= 1, got {episodes}, {num_envs}"
        )
    base, extra = divmod(int(episodes), int(num_envs))
    return np.asarray([base + 1] * extra + [base] * (num_envs - extra), np.int64)


def select_seeds(policy: Policy, seeds: Sequence[int] | None) -> tuple[list[int], Any]:
    """Seed indices and their parameters stacked on a leading axis ``[S, ...]``."""
    total = 1 if policy.num_seeds is None else int(policy.num_seeds)
    if seeds is None:
        indices = list(range(total))
    else:
        indices = [int(s) for s in np.atleast_1d(np.asarray(seeds))]
        if not indices:
            raise RLKitError("seeds: expected at least one seed index")
        bad = [s for s in indices if not 0 <= s < total]
        if bad:
            raise RLKitError(f"seeds: indices must be in [0, {total}), got {bad}")
    if policy.num_seeds is None:
        params = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * len(indices)), policy.params)
    else:
        idx = jnp.asarray(indices)
        params = jax.tree.map(lambda x: jnp.asarray(x)[idx], policy.params)
    return indices, params


def describe_space(space: Any) -> str:
    n = getattr(space, "n", None)
    if n is not None:
        return f"Discrete({int(n)})"
    return f"{type(space).__name__}(shape={tuple(space.shape)})"


def check_spaces(policy: Policy, obs_space: Any, act_space: Any, env_id: str) -> None:
    """RLKitError unless the policy's spaces match the env's (shapes; ``n``, ``start``)."""
    p_obs, p_act = policy.observation_space, policy.action_space
    problems = []
    if tuple(p_obs.shape) != tuple(obs_space.shape):
        problems.append(f"observation shape {tuple(p_obs.shape)} vs env {tuple(obs_space.shape)}")
    p_discrete = isinstance(p_act, Discrete)
    e_discrete = hasattr(act_space, "n")
    if p_discrete != e_discrete:
        problems.append(f"action space {p_act!r} vs env {describe_space(act_space)}")
    elif p_discrete:
        if (p_act.n, p_act.start) != (int(act_space.n), int(getattr(act_space, "start", 0))):
            problems.append(f"action space {p_act!r} vs env {describe_space(act_space)}")
    elif tuple(p_act.shape) != tuple(act_space.shape):
        problems.append(f"action shape {tuple(p_act.shape)} vs env {tuple(act_space.shape)}")
    if problems:
        raise RLKitError(
            f"policy: checkpoint for a different observation or action space than {env_id!r} "
            f"({'; '.join(problems)})"
        )


def check_action_output(policy: Policy, params_one: Any, act_space: Space, batch: int) -> Any:
    """Trace the policy once (no computation) and check its action shape and dtype."""
    obs = jax.ShapeDtypeStruct((batch,) + tuple(policy.observation_space.shape), jnp.float32)
    key = jax.random.PRNGKey(0)
    out = jax.eval_shape(lambda p, o, k: policy.apply(p, o, k, True), params_one, obs, key)
    expected = (batch,) + tuple(act_space.shape)
    if not hasattr(out, "shape") or tuple(out.shape) != expected:
        raise RLKitError(
            f"policy: expected actions of shape {expected} for a batch of {batch} observations, "
            f"got {getattr(out, 'shape', type(out).__name__)}"
        )
    if isinstance(act_space, Discrete) and not jnp.issubdtype(out.dtype, jnp.integer):
        raise RLKitError(
            f"policy: returned actions of dtype {out.dtype} for the discrete action space "
            f"{act_space!r}; expected integers"
        )
    return out


def bad_action_error(action: Any, space: Any, env_id: str) -> RLKitError:
    a = np.asarray(action)
    shown = a.item() if a.ndim == 0 else a.tolist()
    return RLKitError(
        f"policy: returned action {shown!r}, which is outside the action space {space!r} of "
        f"{env_id!r}"
    )
