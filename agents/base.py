"""The agent contract every rlkit agent implements, and the pieces all agents share.

An agent is a set of pure functions over an explicit state pytree. The structure (network shapes, action
type) comes from the spaces the agent is built with; the hyperparameters come from a ``Config``, a frozen
``flax.struct`` dataclass whose traced fields (learning rates, coefficients) are pytree leaves, so
``jax.vmap`` over a stacked config sweeps them, and whose static fields (sizes, counts) are not leaves.

    agent = DQN(observation_space, action_space)
    state = agent.init(config, key)
    action, extras = agent.act(config, state, obs, key)          # obs [N, ...] -> action [N]
    state, metrics = agent.update(config, state, rollout, key)   # rollout: Transition [T, N, ...]
    pparams = agent.policy_params(state)
    action = agent.policy(config, pparams, obs, key, deterministic=True)

The runners in ``agents.runner`` drive these functions: compiled over an ``envs`` environment (the whole
loop under ``jax.jit``, vmapped over seeds) or on the host over any Gymnasium env id.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Box, Discrete, Space
from rlkit.errors import RLKitError

__all__ = [
    "Transition",
    "BaseConfig",
    "Agent",
    "static_field",
    "stack_configs",
    "config_to_dict",
    "config_from_dict",
]


def static_field(default: Any) -> Any:
    """A config field that is a shape or count: not a pytree leaf, so it is never traced or vmapped."""
    return struct.field(pytree_node=False, default=default)


class Transition(NamedTuple):
    """One step of experience for every env; rollouts stack these time-major: ``[T, N, ...]``.

    ``next_obs`` is the true observation after ``action``: at the end of an episode it is that episode's
    final observation (``info["final_obs"]``), not the reset observation that autoreset returns. With
    ``discount_t = gamma * (1 - terminated)`` a truncated step bootstraps from ``V(next_obs)``.
    """

    obs: chex.Array
    action: chex.Array
    reward: chex.Array
    terminated: chex.Array
    truncated: chex.Array
    next_obs: chex.Array
    extras: dict  # agent-specific per-step data from ``act`` (e.g. log_prob, value); may be {}


@struct.dataclass
class BaseConfig:
    """Fields every agent config has. Subclass with ``@struct.dataclass`` and add the agent's own."""

    total_timesteps: int = static_field(100_000)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(4)
    """Parallel environments per seed."""
    rollout_length: int = static_field(128)
    """Env steps each env takes between two calls of ``update``."""

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)


class Agent(abc.ABC):
    """Base class of rlkit agents. Subclasses set ``name`` and ``Config`` and implement the methods."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = BaseConfig
    #: Default configs tuned per env id; ``"default"`` applies to envs not listed.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, observation_space: Space, action_space: Space):
        if not isinstance(observation_space, Box):
            raise RLKitError(
                f"{self.name}: observation_space must be a Box, got {observation_space!r}"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.check_action_space(action_space)

    # -- structure --------------------------------------------------------------------------------

    def check_action_space(self, action_space: Space) -> None:
        """Raise RLKitError if this agent cannot act in ``action_space``. Default: Discrete only."""
        if not isinstance(action_space, Discrete):
            raise RLKitError(
                f"{self.name}: action_space must be Discrete, got {action_space!r}"
            )

    @classmethod
    def default_config(cls, env_id: str | None = None, **overrides) -> Any:
        """The tuned config for ``env_id`` (``PRESETS[env_id]``, else ``PRESETS["default"]``)."""
        values = dict(cls.PRESETS.get("default", {}))
        if env_id is not None:
            values.update(cls.PRESETS.get(env_id, {}))
        values.update(overrides)
        try:
            return cls.Config(**values)
        except TypeError as e:
            raise RLKitError(f"{cls.name}: bad config field: {e}") from None

    # -- pure functions ----------------------------------------------------------------------------

    @abc.abstractmethod
    def init(self, config: Any, key: chex.PRNGKey) -> Any:
        """A fresh agent state (params, optimiser state, buffers, counters)."""

    @abc.abstractmethod
    def act(self, config: Any, state: Any, obs: chex.Array, key: chex.PRNGKey) -> tuple:
        """Training-time (exploring) actions for a batch ``obs [N, ...]``: ``(action [N], extras)``."""

    @abc.abstractmethod
    def update(self, config: Any, state: Any, rollout: Transition, key: chex.PRNGKey) -> tuple:
        """Learn from a time-major rollout ``[T, N, ...]``: ``(state, metrics)``; metrics are scalars."""

    @abc.abstractmethod
    def policy_params(self, state: Any) -> Any:
        """Everything the evaluation policy needs (network params, frozen normaliser statistics)."""

    @abc.abstractmethod
    def policy(
        self,
        config: Any,
        policy_params: Any,
        obs: chex.Array,
        key: chex.PRNGKey,
        deterministic: bool = True,
    ) -> chex.Array:
        """Evaluation actions for ``obs [N, ...]``: greedy / mean action when ``deterministic``."""


# --------------------------------------------------------------------------------------------------
# Config helpers
# --------------------------------------------------------------------------------------------------


def stack_configs(configs: list[Any]) -> Any:
    """Stack configs that differ only in traced fields into one config with a leading axis.

    Use with ``jax.vmap(train, in_axes=(0, None))`` to sweep hyperparameters in one program.
    """
    if not configs:
        raise RLKitError("stack_configs: configs must be a non-empty list")
    treedefs = {jax.tree_util.tree_structure(c) for c in configs}
    if len(treedefs) != 1:
        raise RLKitError(
            "stack_configs: configs differ in static fields (sizes, counts); only traced "
            "hyperparameters can be swept"
        )
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *configs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-friendly dict of a config (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, (jax.Array,)) or hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def config_from_dict(config_cls: type, values: dict[str, Any]) -> Any:
    """Inverse of ``config_to_dict``; unknown keys raise RLKitError naming them."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise RLKitError(f"config: unknown field(s) {sorted(unknown)} for {config_cls.__name__}")
    kwargs = {}
    for name, v in values.items():
        if isinstance(v, list):
            v = tuple(v)
        kwargs[name] = v
    return config_cls(**kwargs)
