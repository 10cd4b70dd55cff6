"""Brax environments as rlkit envs, with termination and truncation kept apart.

    env, params = envs.from_brax("inverted_pendulum", backend="spring")
    env, params = envs.make("brax:inverted_pendulum")           # Brax's default backend
    env, params = envs.make("brax:inverted_pendulum:spring")    # a chosen backend
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

The Brax env itself steps (``brax.envs.Env.step(state, action)``); its ``done`` is termination
(a fallen pendulum, a hopper out of its healthy range). Brax's ``EpisodeWrapper`` would fold the
time limit into ``done`` and flag it in ``info["truncation"]``; here the limit is rlkit's own
(``truncated = state.time >= params.max_episode_steps``, default 1000 like ``brax.envs.create``),
so ``terminated`` never includes it. An env given already wrapped by ``brax.envs.create`` is
unwrapped (its ``episode_length`` becomes the default limit; its autoreset is dropped, since
rlkit's wrappers reset). Needs the ``brax`` package (the ``[brax]`` extra).

Backends, compiled on a 2-core CPU: ``"spring"`` and ``"positional"`` compile a small env's step
in seconds; ``"generalized"`` takes longer, and ``"mjx"`` is meant for accelerators (see
docs/envs.md for measured times).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Box, Environment, EnvParams, EnvState, Space, register_prefix
from rlkit.errors import RLKitError

__all__ = ["BraxEnv", "BraxState", "from_brax"]

_DEFAULT_EPISODE_LENGTH = 1000


@struct.dataclass
class BraxState(EnvState):
    """``time`` (steps in this episode) and the Brax ``State`` (``pipeline_state``, ``obs``,
    ``reward``, ``done``, ``metrics``, ``info``)."""

    brax_state: Any


class BraxEnv(Environment):
    """A Brax env (``brax.envs.Env``) as an rlkit env; see the module docstring.

    Actions are ``Box(-1, 1, (action_size,))`` and observations ``Box(-inf, inf, (obs_size,))``,
    float32. The reward is the Brax reward; ``info`` holds the Brax ``metrics``.
    """

    def __init__(
        self, brax_env: Any, episode_length: int = _DEFAULT_EPISODE_LENGTH, name: str = ""
    ):
        """Wraps a Brax env.

        Args:
          brax_env: a ``brax.envs.Env`` (unwrapped, or as made by ``brax.envs.create``).
          episode_length: the default time limit (``params.max_episode_steps``).
          name: a name for ``id`` (default: the env's class name).
        """
        env = brax_env
        while type(env).__name__ in ("EpisodeWrapper", "AutoResetWrapper", "VmapWrapper"):
            if type(env).__name__ == "VmapWrapper":
                raise RLKitError(
                    "from_brax: brax_env must be unbatched (make it with batch_size=None); "
                    "vectorise with envs.wrappers.VecEnv"
                )
            if type(env).__name__ == "EpisodeWrapper":
                if int(env.action_repeat) != 1:
                    raise RLKitError(
                        f"from_brax: action_repeat must be 1, got {env.action_repeat!r}"
                    )
                episode_length = int(env.episode_length)
            env = env.env
        for attr in ("reset", "step", "observation_size", "action_size"):
            if not hasattr(env, attr):
                raise RLKitError(f"from_brax: brax_env must be a brax.envs.Env, got {brax_env!r}")
        obs_size = env.observation_size
        if not isinstance(obs_size, (int, np.integer)):
            raise RLKitError(
                f"from_brax: only vector observations are supported, got sizes {obs_size!r}"
            )
        self.brax_env = env
        self.obs_size = int(obs_size)
        self.act_size = int(env.action_size)
        self.episode_length = int(episode_length)
        self.id = f"brax:{name or type(env).__name__}"

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_episode_steps=self.episode_length)

    def reset_env(self, key: chex.PRNGKey, params: EnvParams) -> tuple[chex.Array, BraxState]:
        """The Brax env's ``reset(key)``."""
        del params
        with jax.numpy_rank_promotion("allow"):  # Brax relies on implicit rank promotion
            brax_state = self.brax_env.reset(key)
        state = BraxState(time=jnp.asarray(0, jnp.int32), brax_state=brax_state)
        return brax_state.obs.astype(jnp.float32), state

    def step_env(
        self, key: chex.PRNGKey, state: BraxState, action: chex.Array, params: EnvParams
    ) -> tuple[chex.Array, BraxState, chex.Array, chex.Array, dict]:
        """The Brax env's ``step(state, action)``; its ``done`` is ``terminated``."""
        del key, params
        with jax.numpy_rank_promotion("allow"):
            brax_state = self.brax_env.step(state.brax_state, jnp.asarray(action, jnp.float32))
        new_state = BraxState(time=state.time + 1, brax_state=brax_state)
        terminated = brax_state.done > 0.5
        info = dict(brax_state.metrics)
        return brax_state.obs.astype(jnp.float32), new_state, brax_state.reward, terminated, info

    def observation_space(self, params: EnvParams | None = None) -> Space:
        return Box(-np.inf, np.inf, (self.obs_size,), jnp.float32)

    def action_space(self, params: EnvParams | None = None) -> Space:
        return Box(-1.0, 1.0, (self.act_size,), jnp.float32)


def from_brax(
    env_or_name: Any,
    backend: str | None = None,
    episode_length: int = _DEFAULT_EPISODE_LENGTH,
    **env_kwargs,
) -> tuple[BraxEnv, EnvParams]:
    """A Brax env as an rlkit env; see ``BraxEnv``.

    Args:
      env_or_name: a Brax env name (``"inverted_pendulum"``, ``"ant"``, ...) or a Brax env.
      backend: the physics backend for a name (``"spring"``, ``"positional"``,
        ``"generalized"``, ``"mjx"``); None keeps Brax's default.
      episode_length: the time limit (``params.max_episode_steps``); an env made by
        ``brax.envs.create`` brings its own.
      **env_kwargs: passed to ``brax.envs.get_environment`` with a name.

    Returns:
      ``(env, params)``.
    """
    if isinstance(env_or_name, str):
        try:
            from brax import envs as brax_envs
        except ImportError as e:
            raise RLKitError(
                "from_brax: the brax package is not installed (pip install rlkit[brax])"
            ) from e
        if backend is not None:
            env_kwargs["backend"] = backend
        try:
            brax_env = brax_envs.get_environment(env_or_name, **env_kwargs)
        except KeyError as e:
            raise RLKitError(f"from_brax: Brax has no env {env_or_name!r} ({e})") from e
        env = BraxEnv(brax_env, episode_length, name=env_or_name)
    else:
        if backend is not None or env_kwargs:
            raise RLKitError("from_brax: backend and env kwargs apply only to an env name")
        env = BraxEnv(env_or_name, episode_length)
    return env, env.default_params


def _from_id(env_id: str) -> BraxEnv:
    """``"name"`` or ``"name:backend"``, as ``envs.make("brax:name[:backend]")`` passes it."""
    name, _, backend = env_id.partition(":")
    return from_brax(name, backend=backend or None)[0]


register_prefix("brax", _from_id)
