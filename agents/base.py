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
from typing import Any, ClassVar, Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from agents.parallel import data_mean_gradients
from envs.core import Box, Discrete, Space
from rlkit.errors import RLKitError

__all__ = [
    "Transition",
    "BaseConfig",
    "training_rewards",
    "Agent",
    "static_field",
    "hyperparameter",
    "check_field_ranges",
    "stack_configs",
    "config_to_dict",
    "config_from_dict",
    "learning_rate_schedule",
    "make_optimizer",
    "current_learning_rate",
    "minibatch_epochs",
]


#: The largest env-step count a run can have (its counters are int32).
INT32_MAX = 2**31 - 1


def static_field(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    split: bool = False,
    divisible: bool = False,
) -> Any:
    """A config field that is a shape or count: not a pytree leaf, so it is never traced or vmapped.

    ``low`` / ``high`` (inclusive) are checked by ``check_field_ranges`` for numeric fields.
    ``split`` marks a count summed over the env batch (``num_envs``, ``batch_size``...), which a
    run on the ``data`` axis of a mesh divides among its shards (``agents.parallel.local_config``);
    ``divisible`` requires it to divide exactly.
    """
    return dataclasses.field(
        default=default,
        metadata={"pytree_node": False, "low": low, "high": high, "split": split,
                  "divisible": divisible},
    )


def hyperparameter(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    split: bool = False,
) -> Any:
    """A traced config field (a pytree leaf that ``jax.vmap`` can sweep) with an allowed range.

    Args:
      default: the default value.
      low: smallest allowed value (None: no bound); with ``low_open`` the bound itself is refused.
      high: largest allowed value, inclusive (None: no bound).
      low_open: whether ``low`` is excluded (a learning rate must be > 0, not >= 0).

    Every traced value must also be finite; ``check_field_ranges`` enforces both. ``split``: as
    for ``static_field`` (a count of env steps summed over the env batch, e.g. ``learning_starts``).
    """
    return dataclasses.field(
        default=default,
        metadata={
            "pytree_node": True, "low": low, "high": high, "low_open": low_open, "split": split
        },
    )


def _bound(x: float) -> str:
    return f"{x:,}" if float(x).is_integer() and abs(x) >= 1e4 else f"{x:g}"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_field_ranges(config: Any, prefix: str = "") -> None:
    """Raise RLKitError unless every numeric field of ``config`` lies in its declared range.

    Traced fields (pytree leaves) must be finite; fields declared with ``hyperparameter`` or
    ``static_field`` bounds must lie within them. Integer-typed fields must hold integers.
    The message names the command-line flag and the expected value.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, (bool, np.bool_, str, tuple, type(None))):
            continue
        try:
            array = np.asarray(value)
        except Exception:
            continue
        if array.dtype.kind not in "iuf" or array.size == 0:
            continue
        flag = _flag(f.name)
        if f.type in (int, "int") and not np.all(np.equal(np.mod(array, 1), 0)):
            raise RLKitError(f"{prefix}{flag}: expected an integer, got {value!r}")
        if not np.all(np.isfinite(array)):
            raise RLKitError(f"{prefix}{flag}: expected a finite number, got {value!r}")
        low, high = f.metadata.get("low"), f.metadata.get("high")
        low_open = f.metadata.get("low_open", False)
        if low is not None:
            bad = np.any(array <= low) if low_open else np.any(array < low)
            if bad:
                sign = ">" if low_open else ">="
                raise RLKitError(
                    f"{prefix}{flag}: expected a value {sign} {_bound(low)}, got {value!r}"
                )
        if high is not None and np.any(array > high):
            raise RLKitError(f"{prefix}{flag}: expected a value <= {_bound(high)}, got {value!r}")


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

    total_timesteps: int = static_field(100_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(4, low=1, split=True, divisible=True)
    """Parallel environments per seed (the one source of truth: the vector env is built with it)."""
    rollout_length: int = static_field(128, low=1)
    """Env steps each env takes between two calls of ``update``."""
    cnn: str = static_field("nature")
    """Image observations [H, W, C]: 'nature' (Nature-DQN convolutions) or 'impala' (residual)."""
    cnn_channels: tuple[int, ...] = static_field((32, 64, 64))
    """Image torso: channels per convolution ('nature') or per residual stage ('impala')."""
    cnn_kernels: tuple[int, ...] = static_field((8, 4, 3))
    """Image torso ('nature'): kernel size of each convolution."""
    cnn_strides: tuple[int, ...] = static_field((4, 2, 1))
    """Image torso ('nature'): stride of each convolution."""
    cnn_dense: int = static_field(512, low=1)
    """Image torso: width of the dense layer after the convolutions."""
    cnn_impl: Literal["auto", "xla", "im2col"] = static_field("auto")
    """Image torso: how the convolutions are computed, 'xla' (XLA's convolution), 'im2col' (one
    matrix product over stacked shifted views: the same sums, and on XLA's CPU backend several
    times faster when seeds are vmapped) or 'auto' (im2col for the nature torso on a CPU for
    images of at most 32x32 pixels, such as MinAtar's, else xla)."""
    sign_rewards: bool = static_field(False)
    """Learn from sign(reward) in {-1, 0, 1} (Atari's reward clipping); logged returns stay raw."""
    unroll_updates: bool = static_field(False)
    """Unroll the loop of gradient steps inside one update (faster CNN updates on XLA's CPU
    backend with host envs, at a longer compile; see docs/benchmarks.md)."""

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)


def training_rewards(config: Any, reward: chex.Array) -> chex.Array:
    """The rewards an agent learns from: ``reward`` as float32, or its sign with
    ``config.sign_rewards`` (the reward clipping of Mnih et al., 2015). Every agent's ``update``
    passes its rollout's rewards through this; episode returns are logged from the env's."""
    reward = jnp.asarray(reward).astype(jnp.float32)
    return jnp.sign(reward) if config.sign_rewards else reward


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
        if len(observation_space.shape) not in (1, 3):
            raise RLKitError(
                f"{self.name}: observation_space must be a vector [D] or an image [H, W, C], "
                f"got shape {tuple(observation_space.shape)}"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.check_action_space(action_space)

    # -- structure --------------------------------------------------------------------------------

    def check_config(self, config: Any) -> None:
        """Raise RLKitError for a config this agent cannot run with; called once, before tracing.

        The training job (and ``make_train``) call it with each concrete run config (every sweep
        point), before anything is written or compiled. The base checks the type, every field's
        declared range (``hyperparameter`` / ``static_field`` bounds; traced values finite) and
        ``num_envs * rollout_length <= total_timesteps``. Subclasses add their own relations
        between fields and call ``super().check_config(config)``.
        """
        if not isinstance(config, self.Config):
            raise RLKitError(
                f"config: expected a {self.Config.__name__} for agent {self.name!r}, "
                f"got {type(config).__name__}"
            )
        check_field_ranges(config)
        if config.total_timesteps > INT32_MAX:  # env-step counters are int32 on the device
            raise RLKitError(
                f"--total-timesteps: expected at most {INT32_MAX:,}, got {config.total_timesteps:,}"
            )
        if config.steps_per_update > config.total_timesteps:
            raise RLKitError(
                f"--total-timesteps: expected at least num_envs * rollout_length = "
                f"{config.steps_per_update}, got {config.total_timesteps}"
            )

    def grad_steps_per_update(self, config: Any) -> int:
        """Optimiser steps in one ``update`` (the learning-rate schedule steps once per update)."""
        return 1

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
# Optimisation: one learning-rate schedule for every agent
# --------------------------------------------------------------------------------------------------


def learning_rate_schedule(config: Any, grad_steps_per_update: int) -> optax.Schedule:
    """The step size after ``count`` optimiser steps, for every agent.

    ``config.learning_rate`` when ``config.anneal_lr`` is False; otherwise annealed linearly to 0
    over the run, constant within one ``update`` (``grad_steps_per_update`` optimiser steps) and
    lower by ``learning_rate / num_updates`` after each, as PureJaxRL does:
    ``lr * max(0, 1 - (count // grad_steps_per_update) / num_updates)``.
    """
    steps = max(1, int(grad_steps_per_update))
    num_updates = config.num_updates

    def schedule(count: chex.Array) -> chex.Array:
        if not config.anneal_lr:
            return jnp.asarray(config.learning_rate, jnp.float32)
        done = (count // steps).astype(jnp.float32)
        return config.learning_rate * jnp.maximum(1.0 - done / num_updates, 0.0)

    return schedule


def make_optimizer(
    config: Any, grad_steps_per_update: int, scale: optax.GradientTransformation
) -> optax.GradientTransformation:
    """The gradient averaged over the run's data axis (``agents.parallel.data_mean_gradients``,
    the identity on one shard), ``clip_by_global_norm(config.max_grad_norm)``, then ``scale``
    (Adam, RMSprop, ...), then the learning-rate schedule of ``learning_rate_schedule``.

    The state's last element is the schedule's ``ScaleByScheduleState`` (its ``count`` is the
    number of optimiser steps taken); ``current_learning_rate`` reads it.
    """
    schedule = learning_rate_schedule(config, grad_steps_per_update)
    return optax.chain(
        data_mean_gradients(),
        optax.clip_by_global_norm(config.max_grad_norm),
        scale,
        optax.scale_by_schedule(lambda count: -schedule(count)),
    )


def current_learning_rate(config: Any, grad_steps_per_update: int, opt_state: Any) -> chex.Array:
    """The step size the next optimiser step of a ``make_optimizer`` state will use."""
    return learning_rate_schedule(config, grad_steps_per_update)(opt_state[-1].count)


def minibatch_epochs(
    step: Any,
    carry: Any,
    batch: Any,
    key: chex.PRNGKey,
    num_epochs: int,
    num_minibatches: int,
    unroll: bool = False,
) -> tuple[Any, Any]:
    """``num_epochs`` shuffled passes over a flat batch, ``num_minibatches`` steps per pass.

    Each pass permutes the ``B`` samples (every leaf of ``batch`` has leading axis ``B``), splits
    them into ``num_minibatches`` equal minibatches and runs ``step(carry, minibatch) -> (carry,
    metrics)`` on each, as a ``lax.scan`` over passes and minibatches (PPO's and PQN's update).

    Args:
      step: one gradient step on a minibatch, ``(carry, minibatch) -> (carry, metrics)``.
      carry: what the steps thread through (parameters, optimiser state).
      batch: a pytree of ``[B, ...]`` arrays; ``B`` must be divisible by ``num_minibatches``.
      key: the key of the shuffles (one split per pass).
      num_epochs: passes over the batch (static).
      num_minibatches: minibatches per pass (static).
      unroll: unroll both scans into straight-line code (``config.unroll_updates``).

    Returns:
      ``(carry, metrics)`` with every metric stacked ``[num_epochs, num_minibatches]``.
    """
    size = jax.tree.leaves(batch)[0].shape[0]
    m = num_minibatches
    if size % m:
        raise RLKitError(
            f"--num-minibatches: the {size} samples of a rollout must be divisible by it, got {m}"
        )
    # Every epoch's shuffle at once (one batched sort rather than one per epoch).
    perms = jax.vmap(jax.random.permutation, in_axes=(0, None))(
        jax.random.split(key, num_epochs), size
    )

    def epoch(carry, perm):
        minibatches = jax.tree.map(
            lambda x: jnp.take(x, perm, axis=0).reshape((m, size // m) + x.shape[1:]), batch
        )
        return jax.lax.scan(step, carry, minibatches, unroll=bool(unroll))

    return jax.lax.scan(epoch, carry, perms, unroll=bool(unroll))


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
    if not isinstance(values, dict):
        raise RLKitError(f"config: expected a JSON object, got {type(values).__name__}")
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
