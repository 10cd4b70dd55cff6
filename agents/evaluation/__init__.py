"""Evaluate trained policies: every episode counted once, on rlkit's JAX envs or on Gymnasium.

    result = evaluate(policy, "CartPole-v1", episodes=100)            # JAX: one compiled call
    result = evaluate(policy, "CartPole-v1", backend="gymnasium")     # Gymnasium on the host
    result.summary()   # mean, std, median, IQM, 95% bootstrap CIs, fraction at the threshold, ...
    compare_distributions(jax_result, gym_result)   # do the two backends agree?

Two backends, one protocol: each of the ``S`` policies (seeds) of a ``Policy`` plays ``episodes``
complete episodes; returns and lengths come back as ``[S, episodes]`` arrays. The modules:
``stats`` (IQM, bootstrap CIs), ``result`` (``EvalResult``), ``jax_backend``,
``gymnasium_backend``, ``plots`` (learning curves from ``metrics.csv``), ``video`` and ``report``
(the tables and files of ``scripts/evaluate.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from agents.evaluation.checks import select_seeds, split_episodes
from agents.evaluation.gymnasium_backend import evaluate_gymnasium
from agents.evaluation.jax_backend import evaluate_jax
from agents.evaluation.result import EvalResult, compare_distributions
from agents.evaluation.stats import AGGREGATES, aggregate, bootstrap_ci, bootstrap_cis, iqm
from agents.policy import Policy
from rlkit.errors import RLKitError

__all__ = [
    "AGGREGATES",
    "BACKENDS",
    "EvalResult",
    "aggregate",
    "bootstrap_ci",
    "bootstrap_cis",
    "compare_distributions",
    "evaluate",
    "iqm",
    "split_episodes",
]

BACKENDS = ("jax", "gymnasium")


def evaluate(
    policy: Policy,
    env_id: str,
    *,
    episodes: int = 100,
    seeds: Sequence[int] | None = None,
    backend: str = "jax",
    deterministic: bool = True,
    seed: int = 0,
    num_envs: int | None = None,
    max_episode_steps: int | None = None,
) -> EvalResult:
    """Run ``episodes`` complete episodes of each selected seed of ``policy`` on ``env_id``.

    Args:
      policy: the policy (single or multi-seed).
      env_id: an rlkit env id (``envs.registered()``) for the JAX backend; any Gymnasium id for the
        Gymnasium backend (rlkit's classic-control ids are Gymnasium's own ids too).
      episodes: episodes per seed.
      seeds: which seed indices of a multi-seed policy to evaluate; None evaluates all of them.
      backend: "jax" (one compiled program) or "gymnasium" (Gymnasium vector env on the host).
      deterministic: greedy / mean actions (True) or sampled ones.
      seed: evaluation seed: env start states, policy sampling, and the bootstrap.
      num_envs: Gymnasium backend: sub-envs per seed (default ``min(episodes, 16)``). The JAX
        backend runs every episode in its own env and ignores it.
      max_episode_steps: override the env's time limit.

    Returns:
      An ``EvalResult`` with ``[len(seeds), episodes]`` returns and lengths.

    Raises:
      RLKitError: bad arguments, unknown env id, a policy for a different observation or action
        space, or actions outside the env's action space.
    """
    if not isinstance(policy, Policy):
        raise RLKitError(f"policy: expected an agents.Policy, got {type(policy).__name__}")
    if backend not in BACKENDS:
        raise RLKitError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise RLKitError(f"episodes: expected an integer >= 1, got {episodes!r}")
    if num_envs is not None and (not isinstance(num_envs, (int, np.integer)) or num_envs < 1):
        raise RLKitError(f"num_envs: expected an integer >= 1 or None, got {num_envs!r}")
    if max_episode_steps is not None and (
        not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1
    ):
        raise RLKitError(
            f"max_episode_steps: expected an integer >= 1 or None, got {max_episode_steps!r}"
        )
    if not isinstance(seed, (int, np.integer)):
        raise RLKitError(f"seed: expected an integer, got {seed!r}")
    indices, params = select_seeds(policy, seeds)
    if backend == "jax":
        returns, lengths, env_index, threshold = evaluate_jax(
            policy, params, env_id, int(episodes), deterministic, int(seed), max_episode_steps
        )
    else:
        returns, lengths, env_index, threshold = evaluate_gymnasium(
            policy,
            params,
            env_id,
            int(episodes),
            deterministic,
            int(seed),
            num_envs,
            max_episode_steps,
        )
    return EvalResult(
        returns=returns,
        lengths=lengths,
        env_id=env_id,
        backend=backend,
        reward_threshold=None if threshold is None else float(threshold),
        seeds=tuple(indices),
        env_index=env_index,
        deterministic=bool(deterministic),
        seed=int(seed),
    )
