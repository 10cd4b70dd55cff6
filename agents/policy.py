"""Trained policies as values: ``Policy`` and ``load_policy``."""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from agents.base import Agent, stack_configs
from agents.runs import files, spec
from envs.core import Space
from rlkit.errors import RLKitError

__all__ = ["Policy", "load_policy", "run_policy", "resolve_policy_choice"]


@dataclasses.dataclass(frozen=True)
class Policy:
    """A trained policy: a pure ``apply`` function and its parameters.

    Attributes:
      apply: ``apply(params, obs [N, ...], key, deterministic) -> actions [N]``; pure and jittable
        (``deterministic`` is static). Greedy / mean action when ``deterministic``.
      params: parameter pytree; with a leading seed axis ``[S]`` when ``num_seeds`` is not None.
      num_seeds: ``S`` for a multi-seed policy, None for a single one.
      env_id: the env the policy was trained on.
      observation_space, action_space: the spaces it was trained with (``envs.core`` spaces).
    """

    apply: Callable[..., jax.Array]
    params: Any
    num_seeds: int | None
    env_id: str
    observation_space: Space
    action_space: Space

    def select(self, seed: int) -> "Policy":
        """The single policy of seed index ``seed`` of a multi-seed policy."""
        if self.num_seeds is None:
            if seed != 0:
                raise RLKitError(f"seed: this policy has one seed, got seed index {seed}")
            return self
        if not 0 <= seed < self.num_seeds:
            raise RLKitError(f"seed: expected an index in [0, {self.num_seeds}), got {seed}")
        params = jax.tree.map(lambda x: x[seed], self.params)
        return dataclasses.replace(self, params=params, num_seeds=None)

    @functools.cached_property
    def _jitted(self):
        return jax.jit(self.apply, static_argnums=3)

    def __call__(self, obs, seed: int = 0, key=None, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations ``[N, ...]`` (numpy in, numpy out)."""
        single = self.select(seed) if self.num_seeds is not None else self
        obs = jnp.asarray(obs, jnp.float32)
        expected = tuple(self.observation_space.shape)
        if obs.ndim != len(expected) + 1 or tuple(obs.shape[1:]) != expected:
            raise RLKitError(
                f"obs: expected a batch of shape [N, {', '.join(map(str, expected))}], "
                f"got {tuple(obs.shape)}"
            )
        if key is None:
            key = jax.random.PRNGKey(0)
        return np.asarray(self._jitted(single.params, obs, key, deterministic))


def run_policy(agent: Agent, stacked_configs: Any, params: Any, env_id: str) -> Policy:
    """The ``Policy`` of stacked runs: run ``r`` acts with its own config ``stacked_configs[r]``.

    The configs travel in ``Policy.params`` (``{"config": ..., "params": ...}``), so every run of a
    sweep evaluates with the hyperparameters it was trained with.
    """
    num_runs = int(jax.tree.leaves(params)[0].shape[0])

    def apply(p, obs, key, deterministic=True):
        return agent.policy(p["config"], p["params"], obs, key, deterministic)

    return Policy(
        apply=apply,
        params={"config": stacked_configs, "params": params},
        num_seeds=num_runs,
        env_id=env_id,
        observation_space=agent.observation_space,
        action_space=agent.action_space,
    )


def resolve_policy_choice(run_dir: str, final_policy: str | None) -> str:
    """A run's policy choice as a file: ``"best"`` only if the run saved a best policy (a run
    without evaluations during training has only the last)."""
    if final_policy not in ("best", "last"):
        raise RLKitError(f"which: expected 'best', 'last' or None, got {final_policy!r}")
    if final_policy == "best" and not os.path.exists(os.path.join(run_dir, files.BEST_POLICY_FILE)):
        return "last"
    return final_policy


def load_policy(
    run_dir: str, seed: int | None = None, which: str | None = None
) -> tuple[Policy, str]:
    """Load the policy of a training run directory written by ``scripts/train.py``.

    Reads ``config.json`` (agent, spaces, config, sweep points) and the policy file, and builds
    the network; it makes no env and does not rebuild the training job.

    Args:
      run_dir: the run's ``--out`` directory.
      seed: a run index for multi-run directories; None keeps all runs (``policy.num_seeds``).
      which: ``"best"`` (per run, the parameters that scored best in the greedy evaluations during
        training), ``"last"`` (the parameters at the end), or None for the run's
        ``--final-policy`` (best by default, the last policy if the run made no evaluations).

    Returns:
      ``(policy, env_id)``.
    """
    cfg = files.read_run_config(run_dir)
    if which is None:
        which = resolve_policy_choice(run_dir, (cfg.get("run") or {}).get("final_policy", "last"))
    elif which not in ("best", "last"):
        raise RLKitError(f"which: expected 'best', 'last' or None, got {which!r}")
    agent, config, points, num_seeds = spec.load_run(cfg)
    configs = spec.run_configs(config, points, num_seeds)
    stacked = stack_configs(configs)
    template = spec.policy_params_template(agent, stacked, len(configs))
    filename = files.BEST_POLICY_FILE if which == "best" else files.POLICY_FILE
    params = files.load_policy_params(run_dir, template, filename)
    policy = run_policy(agent, stacked, params, cfg.get("env", ""))
    if seed is not None:
        policy = policy.select(seed)
    return policy, policy.env_id
