"""What SAC, TD3 and DDPG share: a replay-based actor-critic for continuous (Box) actions.

``ContinuousAgent`` is an ``agents.off_policy.OffPolicyAgent`` (replay, n-step windows, prioritised
replay, the learning-starts mask, Polyak target updates) with:

* **action scaling in one place**: the actor acts in ``[-1, 1]^A``; ``to_env`` maps onto the
  env's Box, ``a_env = low + (a + 1) (high - low) / 2`` (``rlkit.rescale_action``), and
  ``from_env`` maps the env actions of a rollout back before they are stored, so the critics and
  the replay buffer only see ``[-1, 1]`` actions. The bounds must be finite.
* **stacked critics**: ``num_critics`` state-action critics ``Q_i(s, a)`` whose parameters are
  stacked on a leading axis and applied with ``jax.vmap`` over that axis (one batched program,
  not a Python loop); the target is built from ``min_i Q_i`` (clipped double Q, Fujimoto et al.,
  2018, https://arxiv.org/abs/1802.09477) and the critic loss is
  ``sum_i mean_b w_b (Q_i(s_b, a_b) - y_b)^2 / 2``.
* **n-step targets** from ``n_step_window``: ``y = sum_{k<K} gamma^k r_k + gamma^K (1 -
  terminated_{K-1}) V'(s')``, ``s' = next_obs_{K-1}``: a truncated step bootstraps, a terminated
  one does not.
* **Polyak targets**: ``theta' <- tau theta + (1 - tau) theta'`` for the networks named by
  ``target_networks`` every ``target_update_interval`` learner steps.
* optional **observation normalisation** (``rlkit.running_statistics``: raw observations are
  stored; the running statistics, updated from each rollout, standardise them when sampled and
  when acting) and **LayerNorm critics** (``critic_layer_norm``).
* **uniform random actions** in the Box before ``learning_starts`` env steps.
* **gradient steps per update** from ``utd`` (gradient steps per env step):
  ``gradient_steps = round(utd * num_envs * rollout_length)`` unless ``gradient_steps`` is set.

A subclass gives the actor (``actor_network``), its exploring and evaluation actions
(``explore``, ``mean_action``), its learner step and the names of its target networks.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import rlkit
from agents.base import (
    INT32_MAX,
    Transition,
    hyperparameter,
    make_optimizer,
    static_field,
)
from agents.networks import ContinuousQNetwork, activation_fn
from agents.off_policy import (
    OffPolicyAgent,
    OffPolicyConfig,
    OffPolicyState,
    bootstrap_obs,
    n_step_window,
)
from agents.parallel import data_axis_names
from envs.core import Box, Space
from rlkit.errors import RLKitError

__all__ = [
    "ContinuousAgent",
    "ContinuousConfig",
    "ContinuousLearner",
    "critic_loss",
    "stacked_q_values",
]


@struct.dataclass
class ContinuousConfig(OffPolicyConfig):
    """Fields SAC, TD3 and DDPG share (the replay fields are ``OffPolicyConfig``'s)."""

    total_timesteps: int = static_field(100_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(1, low=1, split=True, divisible=True)
    """Parallel environments per seed."""
    rollout_length: int = static_field(1, low=1)
    """Env steps each env takes between two updates (the train frequency is num_envs * this)."""
    learning_rate: float = hyperparameter(3e-4, low=0.0, low_open=True)
    """Adam step size of the actor, the critics (and SAC's temperature)."""
    max_grad_norm: float = hyperparameter(1000.0, low=0.0, low_open=True)
    """Clip each network's gradient to this global norm (large: effectively off, as in SB3)."""
    batch_size: int = static_field(256, low=1, split=True, divisible=True)
    """Windows sampled from the replay buffer per gradient step."""
    buffer_size: int = static_field(1_000_000, low=1, split=True)
    """Replay capacity in transitions per seed (each env keeps buffer_size // num_envs)."""
    learning_starts: int = hyperparameter(100, low=0, split=True)
    """Env steps of uniformly random actions before gradient steps begin."""
    utd: float = static_field(1.0, low=0.0)
    """Update-to-data ratio: gradient steps per env step (summed over envs), used when
    --gradient-steps is 0: gradient_steps = round(utd * num_envs * rollout_length)."""
    gradient_steps: int = static_field(0, low=0)
    """Gradient steps per update; 0 (the default) derives them from --utd."""
    target_update_interval: int = hyperparameter(1, low=1)
    """Gradient steps between Polyak target updates."""
    tau: float = hyperparameter(0.005, low=0.0, low_open=True, high=1.0)
    """Polyak step of a target update: 1.0 copies the online networks."""
    n_step: int = static_field(1, low=1)
    """Rewards summed before bootstrapping (stopping early at episode ends)."""
    actor_hidden: tuple[int, ...] = static_field((256, 256))
    """Hidden layer widths of the actor."""
    critic_hidden: tuple[int, ...] = static_field((256, 256))
    """Hidden layer widths of each critic."""
    activation: str = static_field("relu")
    """Hidden activation: relu, tanh, elu, gelu or silu."""
    num_critics: int = static_field(2, low=1)
    """Critics Q_1..Q_C (stacked, vmapped); targets use their minimum."""
    critic_layer_norm: bool = static_field(False)
    """LayerNorm after every hidden layer of the critics (before the activation)."""
    normalize_obs: bool = static_field(False)
    """Standardise observations with running statistics (updated from each rollout)."""
    obs_clip: float = hyperparameter(10.0, low=0.0, low_open=True)
    """Clip normalised observations to [-obs_clip, obs_clip]."""


class ContinuousLearner(NamedTuple):
    """The learner state inside ``OffPolicyState.learner``."""

    params: dict  # {"actor": ..., "critic": stacked [C, ...]} (+ SAC's "log_alpha")
    target_params: dict  # the networks of ``target_networks``: {"critic": ...} (+ "actor")
    opt_state: dict  # one optimiser state per entry of params
    obs_norm: Any  # rlkit.RunningMeanStd of observations (unchanged without normalize_obs)
    noise: chex.Array  # [N, A] exploration noise carried between env steps (OU); else zeros
    step: chex.Array  # int32: learner steps applied (TD3's delayed actor updates)


def stacked_q_values(apply_fn, critic_params: Any, obs: chex.Array, action: chex.Array):
    """``Q_i(s, a)`` of every critic: ``apply_fn`` vmapped over the stacked parameters.

    Args:
      apply_fn: ``apply_fn(params, obs [B, D], action [B, A]) -> [B]`` for one critic.
      critic_params: the critics' parameters, stacked on a leading axis ``[C, ...]``.
      obs: observations ``[B, D]``.
      action: actions in ``[-1, 1]``, ``[B, A]``.

    Returns:
      ``[C, B]`` action values.
    """
    return jax.vmap(apply_fn, in_axes=(0, None, None))(critic_params, obs, action)


def critic_loss(
    q: chex.Array, target: chex.Array, weights: chex.Array
) -> tuple[chex.Array, chex.Array]:
    """``sum_i mean_b w_b (Q_i(s_b, a_b) - y_b)^2 / 2`` with ``y`` held fixed.

    Args:
      q: ``[C, B]`` values of the taken actions.
      target: ``[B]`` targets (no gradient flows into them).
      weights: ``[B]`` importance weights (ones without prioritised replay).

    Returns:
      ``(loss, td [B])`` where ``td = y - mean_i Q_i`` sets prioritised-replay priorities.
    """
    target = jax.lax.stop_gradient(target)
    per_item = 0.5 * jnp.square(q - target[None])
    loss = jnp.sum(jnp.mean(weights[None] * per_item, axis=-1))
    return loss, target - jnp.mean(q, axis=0)


class ContinuousAgent(OffPolicyAgent):
    """Base of SAC, TD3 and DDPG; see the module docstring."""

    Config = ContinuousConfig
    #: The networks (keys of ``params``) that have Polyak target copies.
    target_networks: ClassVar[tuple[str, ...]] = ("critic",)

    def __init__(self, observation_space: Space, action_space: Space):
        super().__init__(observation_space, action_space)
        if len(observation_space.shape) != 1:
            raise RLKitError(
                f"{self.name}: observation_space must be a vector [D], "
                f"got shape {tuple(observation_space.shape)}"
            )

    # -- structure -------------------------------------------------------------------------------

    def check_action_space(self, action_space: Space) -> None:
        if not isinstance(action_space, Box) or len(action_space.shape) != 1:
            raise RLKitError(f"{self.name}: action_space must be a Box [A], got {action_space!r}")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise RLKitError(
                f"{self.name}: action_space must have finite bounds, got {action_space!r}"
            )

    def check_config(self, config: ContinuousConfig) -> None:
        super().check_config(config)
        if config.utd <= 0 and config.gradient_steps == 0:
            raise RLKitError(f"--utd: expected a value > 0, got {config.utd}")
        activation_fn(config.activation)
        for name in ("actor_hidden", "critic_hidden"):
            widths = tuple(getattr(config, name))
            if not widths or min(widths) < 1:
                raise RLKitError(
                    f"--{name.replace('_', '-')}: expected positive widths, got {widths}"
                )

    def grad_steps_per_update(self, config: ContinuousConfig) -> int:
        """``gradient_steps`` if set, else ``max(1, round(utd * num_envs * rollout_length))``."""
        if config.gradient_steps:
            return int(config.gradient_steps)
        return max(1, round(config.utd * config.steps_per_update))

    @property
    def action_dim(self) -> int:
        return int(self.action_space.shape[0])

    def to_env(self, action: chex.Array) -> chex.Array:
        """Actions ``[N, A]`` in ``[-1, 1]`` onto the env's Box (``rlkit.rescale_action``)."""
        low, high = self.action_space.low, self.action_space.high
        return jax.vmap(rlkit.rescale_action, in_axes=(0, None, None))(action, low, high)

    def from_env(self, action: chex.Array) -> chex.Array:
        """The inverse of ``to_env`` (clipped to ``[-1, 1]``), for actions ``[..., A]``."""
        lead = (None,) * (action.ndim - 1)
        low = jnp.asarray(self.action_space.low, jnp.float32)[lead]
        high = jnp.asarray(self.action_space.high, jnp.float32)[lead]
        scaled = 2.0 * (action.astype(jnp.float32) - low) / (high - low) - 1.0
        return jnp.clip(scaled, -1.0, 1.0)

    def critic_network(self, config: ContinuousConfig) -> ContinuousQNetwork:
        return ContinuousQNetwork(
            tuple(config.critic_hidden), config.activation, config.critic_layer_norm
        )

    def actor_network(self, config: ContinuousConfig) -> Any:
        """The actor module (flax); ``mean_action`` and ``explore`` interpret its output."""
        raise NotImplementedError

    def optimizer(self, config: ContinuousConfig) -> optax.GradientTransformation:
        """``agents.base.make_optimizer`` with Adam (one instance per network), on the network's
        parameters flattened into one vector (``optax.flatten``): the same arithmetic in a few
        large fusions instead of a few per parameter leaf, which made a one-gradient-step SAC
        update of 64x64 networks 1.7x faster on a CPU (docs/benchmarks.md)."""
        return optax.flatten(
            make_optimizer(
                config,
                self.grad_steps_per_update(config),
                optax.scale_by_adam(eps=config.adam_eps),
            )
        )

    def normalize(self, config: ContinuousConfig, obs_norm: Any, obs: chex.Array) -> chex.Array:
        """Observations as the networks see them (standardised if ``normalize_obs``)."""
        obs = obs.astype(jnp.float32)
        if not config.normalize_obs:
            return obs
        return rlkit.running_stats_normalize(obs_norm, obs, clip=config.obs_clip)

    def q_values(self, config: ContinuousConfig, critic_params, obs, action) -> chex.Array:
        """``[C, B]`` values of every critic (``stacked_q_values``)."""
        return stacked_q_values(self.critic_network(config).apply, critic_params, obs, action)

    # -- hooks of OffPolicyAgent -----------------------------------------------------------------

    def replay_steps(self, rollout: Transition) -> dict:
        """The base's fields, with the actions mapped back to ``[-1, 1]`` (``from_env``)."""
        steps = super().replay_steps(rollout)
        steps["action"] = self.from_env(rollout.action)
        return steps

    def extra_init(self, config: ContinuousConfig, key: chex.PRNGKey) -> dict:
        """Parameters beyond the actor and critics (SAC's temperature); default none."""
        return {}

    def learner_init(self, config: ContinuousConfig, key: chex.PRNGKey) -> ContinuousLearner:
        k_actor, k_critic, k_extra = jax.random.split(key, 3)
        obs = jnp.zeros((1, self.observation_space.shape[0]), jnp.float32)
        act = jnp.zeros((1, self.action_dim), jnp.float32)
        critic = self.critic_network(config)
        critic_keys = jax.random.split(k_critic, config.num_critics)
        params = {
            "actor": self.actor_network(config).init(k_actor, obs),
            "critic": jax.vmap(lambda k: critic.init(k, obs, act))(critic_keys),
            **self.extra_init(config, k_extra),
        }
        opt = self.optimizer(config)
        return ContinuousLearner(
            params=params,
            target_params={name: params[name] for name in self.target_networks},
            opt_state={name: opt.init(p) for name, p in params.items()},
            obs_norm=rlkit.running_stats_init(self.observation_space.shape[0]),
            noise=jnp.zeros((config.num_envs, self.action_dim), jnp.float32),
            step=jnp.zeros((), jnp.int32),
        )

    def target_update(self, config: ContinuousConfig, learner: ContinuousLearner):
        """Polyak step of the ``target_networks`` towards the online ones."""
        online = {name: learner.params[name] for name in self.target_networks}
        return learner._replace(
            target_params=optax.incremental_update(online, learner.target_params, config.tau)
        )

    def next_noise(
        self, config: ContinuousConfig, learner: ContinuousLearner, rollout: Transition
    ) -> chex.Array:
        """The exploration noise carried into the next rollout; default: unchanged."""
        return learner.noise

    def update(
        self,
        config: ContinuousConfig,
        state: OffPolicyState,
        rollout: Transition,
        key: chex.PRNGKey,
    ) -> tuple[OffPolicyState, dict]:
        """Fold the rollout into the observation statistics and carry the exploration noise,
        then the base's update (store, masked gradient steps, target updates)."""
        learner = state.learner
        obs_norm = learner.obs_norm
        if config.normalize_obs:
            obs_norm = rlkit.running_stats_update(
                obs_norm, rollout.obs.astype(jnp.float32), axis_name=data_axis_names()
            )
        learner = learner._replace(
            obs_norm=obs_norm, noise=self.next_noise(config, learner, rollout)
        )
        return super().update(config, state._replace(learner=learner), rollout, key)

    # -- pieces of a learner step ----------------------------------------------------------------

    def window(self, config: ContinuousConfig, learner: ContinuousLearner, batch: dict) -> tuple:
        """``(obs, action, reward_sum, discount, next_obs)`` of a batch of windows ``[B, n]``:
        observations normalised, ``discount = gamma^K (1 - terminated_{K-1})``."""
        n = config.n_step
        reward_sum, discount, last = n_step_window(
            batch["reward"][:, :n],
            batch["terminated"][:, :n],
            batch["truncated"][:, :n],
            config.gamma,
        )
        obs = self.normalize(config, learner.obs_norm, batch["obs"][:, 0])
        next_obs = bootstrap_obs(batch["next_obs"][:, :n], last)
        next_obs = self.normalize(config, learner.obs_norm, next_obs)
        return obs, batch["action"][:, 0], reward_sum, discount, next_obs

    def apply_gradients(self, config, learner: ContinuousLearner, name: str, grads) -> tuple:
        """One optimiser step of ``params[name]``: ``(params, opt_state, grad_norm)``."""
        opt = self.optimizer(config)
        updates, opt_state = opt.update(grads, learner.opt_state[name], learner.params[name])
        params = dict(learner.params)
        params[name] = optax.apply_updates(learner.params[name], updates)
        opt_states = dict(learner.opt_state)
        opt_states[name] = opt_state
        return params, opt_states, optax.tree.norm(grads)

    def critic_step(self, config, learner: ContinuousLearner, obs, action, target, weights):
        """One optimiser step of the critics on ``critic_loss`` towards ``target``.

        Returns:
          ``(learner, loss, td [K, B], q [K, B], grad_norm)``.
        """

        def q_loss(critic_params):
            q = self.q_values(config, critic_params, obs, action)
            loss, td = critic_loss(q, target, weights)
            return loss, (td, q)

        (loss, (td, q)), grads = jax.value_and_grad(q_loss, has_aux=True)(learner.params["critic"])
        params, opt_state, norm = self.apply_gradients(config, learner, "critic", grads)
        return learner._replace(params=params, opt_state=opt_state), loss, td, q, norm

    # -- acting ----------------------------------------------------------------------------------

    def mean_action(self, config: ContinuousConfig, actor_params: Any, obs: chex.Array):
        """The deterministic policy in ``[-1, 1]``: ``[N, D] -> [N, A]``."""
        raise NotImplementedError

    def explore(
        self, config: ContinuousConfig, learner: ContinuousLearner, obs: chex.Array, key
    ) -> tuple[chex.Array, dict]:
        """Exploring actions in ``[-1, 1]`` and extras for normalised ``obs [N, D]``."""
        raise NotImplementedError

    def act(self, config: ContinuousConfig, state: OffPolicyState, obs: chex.Array, key):
        """Exploring actions in the env's Box; uniformly random before ``learning_starts``."""
        learner = state.learner
        k_explore, k_random = jax.random.split(key)
        action, extras = self.explore(
            config, learner, self.normalize(config, learner.obs_norm, obs), k_explore
        )
        uniform = jax.random.uniform(k_random, action.shape, action.dtype, -1.0, 1.0)
        action = jnp.where(state.env_steps < config.learning_starts, uniform, action)
        return self.to_env(action), extras

    def policy_params(self, state: OffPolicyState) -> Any:
        return {"actor": state.learner.params["actor"], "obs_norm": state.learner.obs_norm}

    def policy(
        self,
        config: ContinuousConfig,
        policy_params: Any,
        obs: chex.Array,
        key: chex.PRNGKey,
        deterministic: bool = True,
    ) -> chex.Array:
        """The deterministic policy in the env's Box (``deterministic=False``: as ``sample``)."""
        obs = self.normalize(config, policy_params["obs_norm"], obs)
        if deterministic:
            action = self.mean_action(config, policy_params["actor"], obs)
        else:
            action = self.sample_action(config, policy_params["actor"], obs, key)
        return self.to_env(action)

    def sample_action(self, config: ContinuousConfig, actor_params, obs, key) -> chex.Array:
        """A stochastic evaluation action in ``[-1, 1]``; default: the deterministic one."""
        return self.mean_action(config, actor_params, obs)
