"""gymnax in both directions: rlkit envs with gymnax's API, and gymnax envs as rlkit envs.

rlkit envs and gymnax envs share the call shape (key first, explicit state and params), but not
the meaning of ``step``: gymnax's ``step`` resets the env inside the step that ends an episode;
rlkit's never resets (autoreset is a wrapper), and keeps ``terminated`` and ``truncated``
apart. So a gymnax loop run on ``envs.make`` steps past the end of every episode: after
CartPole terminates, each further step returns reward 1 and ``terminated=True`` while the
pole keeps falling, and nothing raises. Use the view instead:

    env, params = envs.make_gymnax("CartPole-v1")          # in place of gymnax.make
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
    # gymnax >= 1.0's return; info["final_observation"] is the observation the step reached

    env, params = envs.make_gymnax("CartPole-v1", legacy=True)   # gymnax < 1.0's return
    obs, state, reward, done, info = env.step(key, state, action, params)
    # done = terminated | truncated; info["terminated"], info["truncated"] keep them apart

The other way, ``envs.from_gymnax("CartPole-v1")`` (or ``envs.make("gymnax:CartPole-v1")``)
makes any gymnax env an rlkit env: a non-resetting ``step`` with ``terminated`` from the
gymnax env's own dynamics and ``truncated`` from its time limit, kept apart. Needs the
``gymnax`` package (the ``[gymnax]`` extra).
"""

from __future__ import annotations

import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Box, Discrete, Environment, EnvParams, Space, make, register_prefix
from envs.wrappers import AutoResetWrapper
from rlkit.errors import RLKitError

__all__ = [
    "GymnaxEnv",
    "GymnaxParams",
    "GymnaxView",
    "from_gymnax",
    "gymnax_view",
    "make_gymnax",
    "space_from_gymnax",
]

#: The time limit the wrapped gymnax env is given, so that its own ``done`` is termination only.
_UNLIMITED = 2**31 - 1


# --------------------------------------------------------------------------------------------------
# Out: an rlkit env seen through gymnax's API
# --------------------------------------------------------------------------------------------------


class GymnaxView:
    """An rlkit env with gymnax's API: ``step`` resets the env when an episode ends.

    ``reset(key, params)`` and ``step(key, state, action, params)`` take and return what the
    rlkit env's do (its state and params pytrees), so they ``vmap``, ``jit`` and ``scan`` as
    gymnax envs do; both are jitted, as gymnax's are. ``step`` is rlkit's ``AutoResetWrapper``:
    on the step that ends an episode, ``obs`` and ``state`` are the next episode's first, and
    ``info`` carries the ending step's own observation.

    Returns of ``step`` (``info`` holds ``"terminated"``, ``"truncated"``,
    ``"final_observation"`` (also as ``"final_obs"``) and ``"discount"`` in both forms):

    - default, as gymnax >= 1.0: ``(obs, state, reward, terminated, truncated, info)``;
    - ``legacy=True``, as gymnax < 1.0: ``(obs, state, reward, done, info)`` with
      ``done = terminated | truncated``.

    ``info["discount"]`` is ``1 - terminated``: zero only where the MDP ended, not at the time
    limit. (gymnax < 1.0's discount was zero at the time limit too.) ``step_env`` is the
    non-resetting step, returning ``(obs, state, reward, terminated, info)`` (``done`` in place
    of ``terminated`` when ``legacy``), as gymnax's own ``step_env`` does in each version.
    """

    def __init__(self, env: Environment, legacy: bool = False):
        """Wraps ``env``.

        Args:
          env: an rlkit ``Environment`` (any wrapper stack that does not reset by itself).
          legacy: return gymnax < 1.0's 5-tuple ``(obs, state, reward, done, info)``.
        """
        if not isinstance(env, Environment):
            raise RLKitError(f"gymnax_view: env must be an envs.Environment, got {env!r}")
        if not isinstance(legacy, bool):
            raise RLKitError(f"gymnax_view: legacy must be True or False, got {legacy!r}")
        self.env = env
        self.legacy = legacy
        self._autoreset = AutoResetWrapper(env)

    @property
    def default_params(self) -> EnvParams:
        """The rlkit env's default params."""
        return self.env.default_params

    @property
    def name(self) -> str:
        """The env id, e.g. ``"CartPole-v1"``."""
        return self.env.name

    @property
    def num_actions(self) -> int:
        """``n`` of a discrete action space; the number of action dimensions of a box."""
        space = self.env.action_space(self.default_params)
        if isinstance(space, Discrete):
            return space.n
        return int(np.prod(space.shape, dtype=np.int64))

    def observation_space(self, params: EnvParams | None = None) -> Space:
        """The rlkit observation space (``shape``, ``dtype``, ``low``/``high``, ``sample(key)``)."""
        return self.env.observation_space(params)

    def action_space(self, params: EnvParams | None = None) -> Space:
        """The rlkit action space (``n`` for ``Discrete``, ``sample(key)``, ``contains(x)``)."""
        return self.env.action_space(params)

    @functools.partial(jax.jit, static_argnums=0)
    def reset(self, key: chex.PRNGKey, params: EnvParams | None = None) -> tuple[Any, Any]:
        """Starts an episode. Returns ``(obs, state)``."""
        return self.env.reset(key, self.default_params if params is None else params)

    def reset_env(self, key: chex.PRNGKey, params: EnvParams) -> tuple[Any, Any]:
        """``reset`` without the jit, as gymnax's ``reset_env``."""
        return self.env.reset(key, params)

    def step_env(self, key: chex.PRNGKey, state: Any, action: Any, params: EnvParams) -> tuple:
        """One step without autoreset; see the class docstring for the return."""
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        ended = jnp.logical_or(terminated, truncated) if self.legacy else terminated
        info = {**info, "terminated": terminated, "truncated": truncated}
        return obs, state, reward, ended, info

    @functools.partial(jax.jit, static_argnums=0)
    def step(
        self, key: chex.PRNGKey, state: Any, action: Any, params: EnvParams | None = None
    ) -> tuple:
        """One step, resetting where the episode ended; see the class docstring for the return."""
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self._autoreset.step(
            key, state, action, params
        )
        final_obs = info.pop("final_obs")
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": final_obs,
            "final_obs": final_obs,
            "discount": 1.0 - terminated.astype(jnp.float32),
        }
        if self.legacy:
            return obs, state, reward, jnp.logical_or(terminated, truncated), info
        return obs, state, reward, terminated, truncated, info

    def __repr__(self) -> str:
        return f"GymnaxView({self.env!r}, legacy={self.legacy})"


def gymnax_view(env: Environment, legacy: bool = False) -> GymnaxView:
    """``env`` with gymnax's API (auto-resetting ``step``); see ``GymnaxView``.

    Args:
      env: an rlkit ``Environment``.
      legacy: return gymnax < 1.0's ``(obs, state, reward, done, info)`` from ``step``.

    Returns:
      The ``GymnaxView``.
    """
    return GymnaxView(env, legacy=legacy)


def make_gymnax(env_id: str, legacy: bool = False, **param_overrides) -> tuple[GymnaxView, Any]:
    """``envs.make`` with gymnax's API: a drop-in for ``gymnax.make``.

    Args:
      env_id: an id ``envs.make`` accepts, e.g. ``"CartPole-v1"``.
      legacy: return gymnax < 1.0's ``(obs, state, reward, done, info)`` from ``step``.
      **param_overrides: params fields to change, as in ``envs.make``.

    Returns:
      ``(view, params)``.
    """
    env, params = make(env_id, **param_overrides)
    return GymnaxView(env, legacy=legacy), params


# --------------------------------------------------------------------------------------------------
# In: gymnax envs as rlkit envs
# --------------------------------------------------------------------------------------------------


def space_from_gymnax(space: Any) -> Space:
    """The rlkit space equal to a gymnax ``Discrete`` or ``Box`` space.

    Args:
      space: a ``gymnax.environments.spaces.Discrete`` or ``Box``.

    Returns:
      The matching ``envs.Discrete`` or ``envs.Box``.
    """
    kind = type(space).__name__
    if kind == "Discrete":
        n = int(getattr(space, "num_categories", getattr(space, "n", 0)))
        return Discrete(n)
    if kind == "Box":
        shape = tuple(int(s) for s in space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float64), shape)
        high = np.broadcast_to(np.asarray(space.high, np.float64), shape)
        return Box(low, high, shape, dtype=space.dtype)
    raise RLKitError(f"from_gymnax: only Discrete and Box spaces are supported, got {kind}")


@struct.dataclass
class GymnaxParams(EnvParams):
    """rlkit params around a gymnax env's params.

    ``max_episode_steps`` is the time limit (from the gymnax params' ``max_steps_in_episode``);
    ``inner`` are the gymnax params, changed with ``params.replace(inner=params.inner.replace(
    ...))``.
    """

    inner: Any = None
    max_episode_steps: int = 500


class GymnaxEnv(Environment):
    """A gymnax env as an rlkit env: non-resetting ``step``, termination and truncation apart.

    The gymnax env's own ``reset_env``/``step_env`` do the work (never its auto-resetting
    ``step``), called with ``max_steps_in_episode`` raised out of reach, so the ``done`` it
    returns is termination by its dynamics alone, in gymnax < 1.0 (where ``done`` included the
    time limit) and >= 1.0 alike. ``truncated`` is rlkit's ``state.time >=
    params.max_episode_steps``, with the gymnax params' ``max_steps_in_episode`` as the default
    limit. Wrap it as any rlkit env (``envs.wrappers.make_vec`` for autoreset with the final
    observation). An env whose dynamics read ``max_steps_in_episode`` for more than the time
    limit would see the raised value: check such an env before relying on this.
    """

    def __init__(self, gymnax_env: Any, gymnax_params: Any = None, env_id: str = ""):
        """Wraps a gymnax env.

        Args:
          gymnax_env: a ``gymnax.environments.environment.Environment``.
          gymnax_params: its params (default: its ``default_params``).
          env_id: the gymnax id, for ``name`` (default: the env's ``name``).
        """
        for method in ("reset_env", "step_env", "observation_space", "action_space"):
            if not callable(getattr(gymnax_env, method, None)):
                raise RLKitError(
                    f"from_gymnax: gymnax_env must be a gymnax Environment (no {method}), "
                    f"got {gymnax_env!r}"
                )
        self.gymnax_env = gymnax_env
        self.gymnax_params = gymnax_env.default_params if gymnax_params is None else gymnax_params
        if not hasattr(self.gymnax_params, "max_steps_in_episode"):
            raise RLKitError("from_gymnax: gymnax_params must have max_steps_in_episode")
        self.id = f"gymnax:{env_id or gymnax_env.name}"

    @property
    def default_params(self) -> GymnaxParams:
        return GymnaxParams(
            inner=self.gymnax_params,
            max_episode_steps=int(self.gymnax_params.max_steps_in_episode),
        )

    @staticmethod
    def _unlimited(params: GymnaxParams) -> Any:
        return params.inner.replace(max_steps_in_episode=_UNLIMITED)

    def reset_env(self, key: chex.PRNGKey, params: GymnaxParams) -> tuple[Any, Any]:
        """The gymnax env's ``reset_env``."""
        return self.gymnax_env.reset_env(key, self._unlimited(params))

    def step_env(self, key: chex.PRNGKey, state: Any, action: Any, params: GymnaxParams) -> tuple:
        """The gymnax env's ``step_env``; its ``done`` is termination (see the class docstring)."""
        obs, state, reward, done, info = self.gymnax_env.step_env(
            key, state, action, self._unlimited(params)
        )
        return obs, state, reward, done, dict(info)

    def observation_space(self, params: GymnaxParams | None = None) -> Space:
        params = self.default_params if params is None else params
        return space_from_gymnax(self.gymnax_env.observation_space(params.inner))

    def action_space(self, params: GymnaxParams | None = None) -> Space:
        params = self.default_params if params is None else params
        return space_from_gymnax(self.gymnax_env.action_space(params.inner))


def from_gymnax(
    env_or_id: Any, gymnax_params: Any = None, **make_kwargs
) -> tuple[GymnaxEnv, GymnaxParams]:
    """A gymnax env as an rlkit env; see ``GymnaxEnv``.

    Args:
      env_or_id: a gymnax id (``"CartPole-v1"``, made with ``gymnax.make``) or a gymnax env.
      gymnax_params: the gymnax params (default: those ``gymnax.make`` returns, or the env's
        ``default_params``).
      **make_kwargs: passed to ``gymnax.make`` with an id.

    Returns:
      ``(env, params)``: the rlkit env and its ``GymnaxParams``.
    """
    if isinstance(env_or_id, str):
        try:
            import gymnax
        except ImportError as e:
            raise RLKitError(
                "from_gymnax: the gymnax package is not installed (pip install rlkit[gymnax])"
            ) from e
        try:
            gymnax_env, made_params = gymnax.make(env_or_id, **make_kwargs)
        except (ValueError, KeyError) as e:
            raise RLKitError(f"from_gymnax: gymnax has no env {env_or_id!r} ({e})") from e
        env = GymnaxEnv(gymnax_env, gymnax_params or made_params, env_id=env_or_id)
    else:
        env = GymnaxEnv(env_or_id, gymnax_params)
    return env, env.default_params


register_prefix("gymnax", lambda env_id: from_gymnax(env_id)[0])
