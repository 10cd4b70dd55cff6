"""Adapters the benchmarks need to run peer libraries on current versions of their dependencies."""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["FiveTupleStep"]


class FiveTupleStep:
    """A gymnax env whose ``step`` returns the pre-1.0 5-tuple, for rejax.

    gymnax >= 1.0 steps return ``(obs, state, reward, terminated, truncated, info)``; rejax 0.1.3
    unpacks ``(obs, state, reward, done, info)``. This wrapper gives rejax that form, with
    ``done = terminated | truncated`` as rejax expects (it does not tell the two apart).
    """

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._env, name)

    def step(self, key, state, action, params=None):
        out = self._env.step(key, state, action, params)
        if len(out) == 5:
            return out
        obs, state, reward, terminated, truncated, info = out
        return obs, state, reward, jnp.logical_or(terminated, truncated), info
