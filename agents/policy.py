"""Trained policies as values: ``Policy`` and ``load_policy``."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from envs.core import Space
from rlkit.errors import RLKitError

__all__ = ["Policy", "load_policy"]


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


def load_policy(
    run_dir: str, seed: int | None = None, which: str | None = None
) -> tuple[Policy, str]:
    """Load the policy of a training run directory written by ``scripts/train.py``.

    Args:
      run_dir: the run's ``--out`` directory.
      seed: a seed index for multi-seed runs; None keeps all seeds (``policy.num_seeds == S``).
      which: ``"best"`` (per run, the parameters that scored best in the greedy evaluations during
        training), ``"last"`` (the parameters at the end), or None for the run's
        ``--final-policy`` (best by default, the last policy if the run made no evaluations).

    Returns:
      ``(policy, env_id)``.
    """
    from agents.checkpoint import load_run_policy

    policy = load_run_policy(run_dir, which)
    if seed is not None:
        policy = policy.select(seed)
    return policy, policy.env_id
