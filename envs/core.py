"""Environment base class, spaces and the registry.

An environment is a pair of pure functions over explicit pytrees, in the gymnax style with the key first:

    env, params = envs.make("CartPole-v1")
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

``state`` and ``params`` are frozen ``flax.struct`` dataclasses. ``params`` hold the physics constants and the
time limit, so ``jax.vmap`` over params gives domain randomisation. ``terminated`` comes from the MDP only;
``truncated`` comes from the time limit (``state.time >= params.max_episode_steps``), as Gymnasium's
``TimeLimit`` wrapper does. The plain ``step`` never resets; autoreset is a wrapper (``envs.wrappers``).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, TypeVar

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import checkify

from rlkit.errors import ArgumentError, RLKitError

__all__ = [
    "Space",
    "Discrete",
    "Box",
    "EnvState",
    "EnvParams",
    "Environment",
    "register",
    "register_prefix",
    "registered",
    "is_suite_id",
    "make",
    "spec",
    "EnvSpec",
    "override_params",
    "unknown_env_error",
    "check_action",
]


# --------------------------------------------------------------------------------------------------
# Spaces
# --------------------------------------------------------------------------------------------------


class Space:
    """A jittable mirror of a ``gymnasium.spaces`` space."""

    shape: tuple[int, ...]
    dtype: Any

    def sample(self, key: chex.PRNGKey) -> chex.Array:
        raise NotImplementedError

    def contains(self, x: chex.Array) -> chex.Array:
        raise NotImplementedError

    def to_gymnasium(self):
        raise NotImplementedError


class Discrete(Space):
    """``{start, ..., start + n - 1}``; mirrors ``gymnasium.spaces.Discrete``."""

    def __init__(self, n: int, start: int = 0):
        if int(n) <= 0:
            raise RLKitError(f"Discrete: n must be a positive integer, got {n!r}")
        self.n = int(n)
        self.start = int(start)
        self.shape = ()
        self.dtype = jnp.int32

    def sample(self, key: chex.PRNGKey) -> chex.Array:
        return jax.random.randint(key, (), self.start, self.start + self.n, dtype=self.dtype)

    def contains(self, x: chex.Array) -> chex.Array:
        x = jnp.asarray(x)
        integral = jnp.issubdtype(x.dtype, jnp.integer) or jnp.all(x == jnp.round(x))
        return jnp.logical_and(
            jnp.logical_and(x.shape == (), integral),
            jnp.logical_and(x >= self.start, x < self.start + self.n),
        )

    def to_gymnasium(self):
        import gymnasium

        return gymnasium.spaces.Discrete(self.n, start=self.start)

    def __repr__(self) -> str:
        return f"Discrete({self.n})" if self.start == 0 else f"Discrete({self.n}, start={self.start})"


class Box(Space):
    """A (possibly unbounded) box in R^shape; mirrors ``gymnasium.spaces.Box``."""

    def __init__(self, low, high, shape: tuple[int, ...] | None = None, dtype=jnp.float32):
        low_np = np.asarray(low, dtype=np.float64)
        high_np = np.asarray(high, dtype=np.float64)
        if shape is None:
            shape = np.broadcast_shapes(low_np.shape, high_np.shape)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.low = np.broadcast_to(low_np, self.shape).astype(np.dtype(dtype))
        self.high = np.broadcast_to(high_np, self.shape).astype(np.dtype(dtype))
        if np.any(self.low > self.high):
            raise RLKitError("Box: every element of low must be <= high")

    def sample(self, key: chex.PRNGKey) -> chex.Array:
        """Uniform where bounded, normal where unbounded, shifted exponential where half-bounded."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        k_u, k_n, k_e = jax.random.split(key, 3)
        uni = jax.random.uniform(k_u, self.shape, minval=0.0, maxval=1.0)
        bounded_low, bounded_high = jnp.isfinite(low), jnp.isfinite(high)
        normal = jax.random.normal(k_n, self.shape)
        expo = jax.random.exponential(k_e, self.shape)
        both = low + uni * (high - low)
        x = jnp.where(
            bounded_low & bounded_high,
            both,
            jnp.where(bounded_low, low + expo, jnp.where(bounded_high, high - expo, normal)),
        )
        return x.astype(self.dtype)

    def contains(self, x: chex.Array) -> chex.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low) & (x <= self.high))

    def to_gymnasium(self):
        import gymnasium

        return gymnasium.spaces.Box(self.low, self.high, self.shape, dtype=np.dtype(self.dtype))

    def __repr__(self) -> str:
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {np.dtype(self.dtype).name})"


def check_action(space: Space, action: Any, env_id: str = "", batch: int | None = None) -> None:
    """``ArgumentError`` (an RLKitError and an AssertionError, as Gymnasium's assert) unless the
    concrete ``action`` fits ``space`` (numpy, no device call).

    A Discrete action must be one of the space's integers (CartPole and MountainCar assert this
    in Gymnasium); a Box action must have the space's shape, and values outside its bounds are
    clipped by the env, as Gymnasium's Box-action envs do. With ``batch=N``, ``action`` holds
    one action per sub-env on a leading axis of size N.
    """
    a = np.asarray(action)
    where = f" of {env_id}" if env_id else ""
    lead = () if batch is None else (int(batch),)
    if isinstance(space, Discrete):
        # One integer per env: a Discrete action has no shape of its own.
        integral = a.shape == lead and (
            np.issubdtype(a.dtype, np.integer)
            or (np.issubdtype(a.dtype, np.floating) and bool(np.all(a == np.round(a))))
        )
        inside = (a >= space.start) & (a < space.start + space.n)
    elif isinstance(space, Box):
        # Gymnasium's Box-action envs clip out-of-range values (the rlkit ones do the same);
        # only a wrong shape is an error.
        integral = True
        inside = a.shape[len(lead):] == space.shape
    else:
        return
    if a.shape[: len(lead)] != lead or not integral or not np.all(inside):
        if batch is not None and a.shape[:1] == lead and np.ndim(inside) and not np.all(inside):
            axes = tuple(range(1, a.ndim))
            first = int(np.argmin(np.all(inside, axis=axes) if axes else inside))
            a = a[first]
        shown = a.item() if a.ndim == 0 else a.tolist()
        raise ArgumentError(f"action: {shown!r} is outside the action space {space!r}{where}")


# --------------------------------------------------------------------------------------------------
# Environment base
# --------------------------------------------------------------------------------------------------


@struct.dataclass
class EnvState:
    """Base state: every env state carries ``time``, the steps taken in the current episode."""

    time: chex.Array


@struct.dataclass
class EnvParams:
    """Base params: every env's params carry the time limit (Gymnasium's ``max_episode_steps``)."""

    max_episode_steps: int = 500


TState = TypeVar("TState", bound=EnvState)
TParams = TypeVar("TParams", bound=EnvParams)


class Environment(Generic[TState, TParams]):
    """A pure, jittable environment with Gymnasium's semantics.

    Subclasses implement ``default_params``, ``reset_env``, ``step_env``, ``get_obs``, ``observation_space``
    and ``action_space``. This base adds the time limit and keeps ``terminated`` and ``truncated`` apart.
    """

    #: Gymnasium id this environment reproduces, e.g. ``"CartPole-v1"``.
    id: str = ""
    #: Gymnasium's ``spec.reward_threshold`` (None where Gymnasium has none).
    reward_threshold: float | None = None

    @property
    def default_params(self) -> TParams:
        raise NotImplementedError

    def reset_env(self, key: chex.PRNGKey, params: TParams) -> tuple[chex.Array, TState]:
        """Sample a start state; returns ``(obs, state)`` with ``state.time == 0``."""
        raise NotImplementedError

    def step_env(
        self, key: chex.PRNGKey, state: TState, action: chex.Array, params: TParams
    ) -> tuple[chex.Array, TState, chex.Array, chex.Array, dict]:
        """One MDP step; returns ``(obs, state, reward, terminated, info)``. Must increment ``time``."""
        raise NotImplementedError

    def observation_space(self, params: TParams | None = None) -> Space:
        raise NotImplementedError

    def action_space(self, params: TParams | None = None) -> Space:
        raise NotImplementedError

    def reset(self, key: chex.PRNGKey, params: TParams | None = None) -> tuple[chex.Array, TState]:
        """Start an episode. Returns ``(obs, state)``."""
        if params is None:
            params = self.default_params
        return self.reset_env(key, params)

    def step(
        self, key: chex.PRNGKey, state: TState, action: chex.Array, params: TParams | None = None
    ) -> tuple[chex.Array, TState, chex.Array, chex.Array, chex.Array, dict]:
        """Advance one step. Never resets.

        Returns:
          ``(obs, state, reward, terminated, truncated, info)``. ``reward`` is float32, the flags are
          bool scalars. ``truncated`` is True when ``state.time >= params.max_episode_steps`` after the
          step, whether or not the step also terminated (as Gymnasium's ``TimeLimit``).

        An action outside the action space raises RLKitError when the action is a concrete value
        (eager calls), as Gymnasium's envs assert. Under ``jit`` or ``vmap`` it is not checked (a
        check would cost a host round trip per step) and the env's dynamics decide what it does
        (the classic-control envs treat any Discrete value other than their named ones like one of
        them, and clip Box actions); ``checked_step`` adds a ``jax.experimental.checkify`` check.
        """
        if params is None:
            params = self.default_params
        if not isinstance(action, jax.core.Tracer):
            check_action(self.action_space(params), action, self.id)
        obs, state, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = state.time >= params.max_episode_steps
        return (
            obs,
            state,
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated, jnp.bool_),
            jnp.asarray(truncated, jnp.bool_),
            info,
        )

    def checked_step(
        self, key: chex.PRNGKey, state: TState, action: chex.Array, params: TParams | None = None
    ):
        """``step`` with a ``checkify`` check that ``action`` lies in the action space.

        Use it under ``jax.experimental.checkify.checkify`` (the check is a no-op otherwise):

            step = checkify.checkify(jax.jit(env.checked_step))
            err, out = step(key, state, action, params)
            err.throw()   # raises for an action outside the space
        """
        if params is None:
            params = self.default_params
        space = self.action_space(params)
        checkify.check(
            jnp.all(space.contains(action)),
            f"action outside the action space {space!r} of {self.id}: {{a}}",
            a=jnp.asarray(action),
        )
        return self.step(key, state, action, params)

    @property
    def name(self) -> str:
        return self.id or type(self).__name__

    def __repr__(self) -> str:
        return f"<rlkit env {self.name}>"


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


@struct.dataclass
class EnvSpec:
    id: str = struct.field(pytree_node=False)
    max_episode_steps: int = struct.field(pytree_node=False)
    reward_threshold: float | None = struct.field(pytree_node=False)


_REGISTRY: dict[str, Callable[..., Environment]] = {}
# "suite:id" -> factory(id): envs of other suites, made on demand (``envs.make("gymnax:...")``).
_PREFIXES: dict[str, Callable[[str], Environment]] = {}


def register(env_id: str, factory: Callable[..., Environment], *, overwrite: bool = False) -> None:
    """Register an environment class (or any zero-argument factory returning an ``Environment``)."""
    if not isinstance(env_id, str) or not env_id:
        raise RLKitError(f"register: env_id must be a non-empty string, got {env_id!r}")
    if env_id in _REGISTRY and not overwrite:
        raise RLKitError(f"register: env_id {env_id!r} is already registered (pass overwrite=True)")
    _REGISTRY[env_id] = factory


def register_prefix(
    prefix: str, factory: Callable[[str], Environment], *, overwrite: bool = False
) -> None:
    """Makes ``make("<prefix>:<id>")`` call ``factory(id)``, for envs of another suite.

    Args:
      prefix: the suite's name, e.g. ``"gymnax"`` (no ``:``).
      factory: ``factory(id) -> Environment``; it raises ``RLKitError`` for an unknown id.
      overwrite: replace an existing prefix.
    """
    if not isinstance(prefix, str) or not prefix or ":" in prefix:
        raise RLKitError(
            f"register_prefix: prefix must be a non-empty string without ':', got {prefix!r}"
        )
    if prefix in _PREFIXES and not overwrite:
        raise RLKitError(
            f"register_prefix: prefix {prefix!r} is already registered (pass overwrite=True)"
        )
    _PREFIXES[prefix] = factory


def registered() -> list[str]:
    """The ids ``make`` accepts, sorted."""
    return sorted(_REGISTRY)


def is_suite_id(env_id: Any) -> bool:
    """Whether ``env_id`` is ``"<suite>:<id>"`` for a registered suite prefix (``make`` then builds
    it through that suite's adapter; whether the suite knows ``<id>`` is the adapter's check)."""
    return isinstance(env_id, str) and ":" in env_id and env_id.split(":", 1)[0] in _PREFIXES


def unknown_env_error(env_id: str) -> RLKitError:
    """The RLKitError for an id ``make`` does not know, suggesting the closest registered one."""
    close = difflib.get_close_matches(str(env_id), registered(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    prefixes = ", ".join(f"{p}:<id>" for p in sorted(_PREFIXES))
    suites = f"; or another suite's env as {prefixes}" if prefixes else ""
    return RLKitError(
        f"unknown env id {env_id!r}.{hint} Available: {', '.join(registered())}{suites}"
    )


def override_params(params: EnvParams, overrides: dict, caller: str) -> EnvParams:
    """``params`` with ``overrides`` applied; an unknown field raises, naming ``caller``."""
    if not overrides:
        return params
    unknown = set(overrides) - set(params.__dataclass_fields__)
    if unknown:
        raise RLKitError(
            f"{caller}: unknown param(s) {sorted(unknown)}; "
            f"valid: {sorted(params.__dataclass_fields__)}"
        )
    return params.replace(**overrides)


def make(env_id: str, **param_overrides) -> tuple[Environment, EnvParams]:
    """Build a registered env. Returns ``(env, params)``; keyword arguments override params fields.

    ``env_id`` is a registered id (``"CartPole-v1"``) or ``"<suite>:<id>"`` for an env of
    another suite through its adapter: ``"gymnax:CartPole-v1"``, ``"brax:inverted_pendulum"``
    (see ``envs.gymnax_compat`` and ``envs.brax_compat``; each needs its package).
    """
    if not isinstance(env_id, str):
        raise unknown_env_error(env_id)
    if env_id in _REGISTRY:
        env = _REGISTRY[env_id]()
    elif is_suite_id(env_id):
        prefix, inner_id = env_id.split(":", 1)
        env = _PREFIXES[prefix](inner_id)
    else:
        raise unknown_env_error(env_id)
    return env, override_params(env.default_params, param_overrides, f"make({env_id!r})")


def spec(env_id: str) -> EnvSpec:
    """Id, time limit and reward threshold of a registered env."""
    env, params = make(env_id)
    return EnvSpec(env_id, int(params.max_episode_steps), env.reward_threshold)
