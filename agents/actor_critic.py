"""The on-policy actor-critic base that PPO, A2C (and IMPALA) build on.

It holds what these agents share: the config fields (``ActorCriticConfig``), the state, the policy
head (categorical, or diagonal Gaussian with clip or tanh squashing), observation and reward
normalisation, the GAE batch of a rollout (``prepare_batch``), the loss and the optimiser step.
A subclass implements ``update`` (which samples, how many gradient steps) and may override
``policy_loss`` and ``value_loss``; see ``agents.ppo`` and ``agents.a2c``.

Advantages come from ``rlkit.gae_from_rollout`` with ``values = V(obs)`` stored by ``act`` and
``next_values = V(next_obs)``, where ``next_obs`` is the true next observation (the final one at an
episode end): a terminated step does not bootstrap, a truncated one bootstraps on ``V(final_obs)``.

Continuous actions: a diagonal Gaussian with a state-independent, learned ``log_std``
(``agents.networks.ActorCritic(continuous=True)``). A sample ``u`` is mapped into the action Box by
``action_squash``: ``"clip"`` clips ``u`` to ``[low, high]``; ``"tanh"`` maps it to
``low + (tanh(u) + 1) (high - low) / 2``. Either way the log-probability in the loss (and the
entropy) is the Gaussian one of the unsquashed sample ``u``, which ``act`` stores in
``extras["raw_action"]``: for ``"tanh"`` the Jacobian of the squash is the same in numerator and
denominator of a ratio, so a ratio is exact; for ``"clip"`` it is the usual approximation. The
evaluation policy uses the mean, squashed the same way.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import rlkit
from agents.base import (
    INT32_MAX,
    Agent,
    BaseConfig,
    Transition,
    current_learning_rate,
    hyperparameter,
    make_optimizer,
    static_field,
    training_rewards,
)
from agents.networks import ActorCritic, activation_fn, conv_spec
from agents.parallel import data_axis_names, data_mean
from envs.core import Box, Discrete, Space
from rlkit.errors import RLKitError

__all__ = [
    "ActorCriticAgent",
    "ActorCriticBatch",
    "ActorCriticConfig",
    "ActorCriticPolicyParams",
    "ActorCriticState",
]


# --------------------------------------------------------------------------------------------------
# Configs and state
# --------------------------------------------------------------------------------------------------


@struct.dataclass
class ActorCriticConfig(BaseConfig):
    """Fields every on-policy actor-critic agent (PPO, A2C) has."""

    total_timesteps: int = static_field(500_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(4, low=1, split=True, divisible=True)
    """Parallel environments per seed."""
    rollout_length: int = static_field(128, low=1)
    """Env steps each env takes between two updates."""
    learning_rate: float = hyperparameter(2.5e-4, low=0.0, low_open=True)
    """Initial optimiser step size."""
    anneal_lr: bool = static_field(True)
    """Anneal the learning rate linearly from learning_rate to 0 over the run."""
    optimizer: Literal["adam", "rmsprop"] = static_field("adam")
    """Optimiser: 'adam' or 'rmsprop' (decay 0.99, as in A2C/A3C)."""
    adam_eps: float = hyperparameter(1e-5, low=0.0)
    """Epsilon of the optimiser's denominator (Adam or RMSprop)."""
    max_grad_norm: float = hyperparameter(0.5, low=0.0, low_open=True)
    """Clip the gradient to this global norm (optax.clip_by_global_norm)."""
    gamma: float = hyperparameter(0.99, low=0.0, high=1.0)
    """Discount factor."""
    gae_lambda: float = hyperparameter(0.95, low=0.0, high=1.0)
    """GAE lambda: 0 is the one-step TD error, 1 the n-step return to the rollout's end."""
    ent_coef: float = hyperparameter(0.01, low=0.0)
    """Weight of the entropy bonus."""
    vf_coef: float = hyperparameter(0.5, low=0.0)
    """Weight of the value loss."""
    normalize_advantages: bool = static_field(True)
    """Standardise advantages to zero mean and unit std (per minibatch)."""
    hidden: tuple[int, ...] = static_field((64, 64))
    """Hidden layer widths of the actor and of the critic (separate MLPs)."""
    activation: str = static_field("tanh")
    """Hidden activation: relu, tanh, elu, gelu or silu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions only)."""
    action_squash: Literal["clip", "tanh"] = static_field("clip")
    """Continuous actions: 'clip' the Gaussian sample to the Box, or 'tanh' squash and rescale."""
    normalize_obs: bool = static_field(False)
    """Normalise observations by running mean/std (frozen into the evaluation policy)."""
    obs_clip: float = hyperparameter(10.0, low=0.0, low_open=True)
    """Clip normalised observations to [-obs_clip, obs_clip]."""
    normalize_reward: bool = static_field(False)
    """Scale rewards by a running std of the discounted return (training only)."""
    reward_clip: float = hyperparameter(10.0, low=0.0, low_open=True)
    """Clip scaled rewards to [-reward_clip, reward_clip]."""


class ActorCriticState(NamedTuple):
    """Everything an on-policy actor-critic learner carries between updates."""

    params: Any
    opt_state: Any
    obs_norm: Any  # rlkit.RunningMeanStd of observations (unused if normalize_obs=False)
    reward_norm: Any  # rlkit.RewardScalingState: per-env discounted return and its statistics


class ActorCriticPolicyParams(NamedTuple):
    """What the evaluation policy needs: network params and the frozen observation statistics."""

    params: Any
    obs_norm: Any


class ActorCriticBatch(NamedTuple):
    """A flat batch of samples ``[B, ...]`` for the loss."""

    obs: chex.Array  # normalised observations
    action: chex.Array  # int index (discrete) or the unsquashed Gaussian sample (continuous)
    log_prob: chex.Array  # behaviour log-probability of ``action``
    value: chex.Array  # V(obs) at collection time
    advantage: chex.Array
    target: chex.Array  # advantage + value


# --------------------------------------------------------------------------------------------------
# The shared actor-critic agent
# --------------------------------------------------------------------------------------------------


class ActorCriticAgent(Agent):
    """Shared pieces of PPO and A2C: policy head, normalisers, GAE batch, loss, optimiser.

    Subclasses implement ``update`` (how many gradient steps on which samples) and may override
    ``policy_loss`` and ``value_loss`` (PPO clips both).
    """

    Config = ActorCriticConfig

    _SQUASH = ("clip", "tanh")
    _OPTIMIZERS = ("adam", "rmsprop")

    def check_action_space(self, action_space: Space) -> None:
        if isinstance(action_space, Discrete):
            return
        if isinstance(action_space, Box):
            if len(action_space.shape) != 1:
                raise RLKitError(
                    f"{self.name}: a Box action_space must be 1-D, got shape {action_space.shape}"
                )
            return
        raise RLKitError(f"{self.name}: action_space must be Discrete or Box, got {action_space!r}")

    @property
    def continuous(self) -> bool:
        return isinstance(self.action_space, Box)

    @property
    def action_dim(self) -> int:
        return self.action_space.shape[0] if self.continuous else self.action_space.n

    def network(self, config: ActorCriticConfig) -> ActorCritic:
        return ActorCritic(
            action_dim=self.action_dim,
            continuous=self.continuous,
            hidden=tuple(config.hidden),
            activation=config.activation,
            conv=conv_spec(config, self.observation_space),
        )

    def check_config(self, config: ActorCriticConfig) -> None:
        """The base checks, then the static choices and the action bounds ``tanh`` needs."""
        super().check_config(config)
        if config.action_squash not in self._SQUASH:
            raise RLKitError(
                f"--action-squash: expected one of {self._SQUASH}, got {config.action_squash!r}"
            )
        if config.optimizer not in self._OPTIMIZERS:
            raise RLKitError(
                f"--optimizer: expected one of {self._OPTIMIZERS}, got {config.optimizer!r}"
            )
        activation_fn(config.activation)
        conv_spec(config, self.observation_space)
        if (
            self.continuous
            and config.action_squash == "tanh"
            and not (
                np.all(np.isfinite(self.action_space.low))
                and np.all(np.isfinite(self.action_space.high))
            )
        ):
            raise RLKitError(
                f"--action-squash: 'tanh' needs finite action bounds, got {self.action_space!r}"
            )

    # -- optimiser ---------------------------------------------------------------------------------

    def optimizer(self, config: ActorCriticConfig) -> optax.GradientTransformation:
        """``agents.base.make_optimizer`` with Adam or RMSprop (decay 0.99)."""
        if config.optimizer == "adam":
            scale = optax.scale_by_adam(eps=config.adam_eps)
        else:
            scale = optax.scale_by_rms(decay=0.99, eps=config.adam_eps)
        return make_optimizer(config, self.grad_steps_per_update(config), scale)

    def learning_rate(self, config: ActorCriticConfig, opt_state: Any) -> chex.Array:
        """The step size of the next optimiser step (``agents.base.current_learning_rate``)."""
        return current_learning_rate(config, self.grad_steps_per_update(config), opt_state)

    # -- normalisation -----------------------------------------------------------------------------

    def normalize_obs(
        self, config: ActorCriticConfig, obs_norm: Any, obs: chex.Array
    ) -> chex.Array:
        """Observations as the network sees them: standardised and clipped if ``normalize_obs``."""
        if not config.normalize_obs:
            return obs if len(self.observation_space.shape) == 3 else obs.astype(jnp.float32)
        obs = obs.astype(jnp.float32)
        return rlkit.running_stats_normalize(obs_norm, obs, clip=config.obs_clip)

    def scale_rewards(
        self, config: ActorCriticConfig, reward_norm: Any, rollout: Transition
    ) -> tuple[chex.Array, Any]:
        """Rewards for the advantages and the new scaler state (unchanged if not normalising)."""
        reward = training_rewards(config, rollout.reward)
        if not config.normalize_reward:
            return reward, reward_norm
        done = jnp.logical_or(rollout.terminated, rollout.truncated)

        def step(scaler, inputs):
            reward_t, done_t = inputs
            scaler = rlkit.reward_scaling_update(
                scaler, reward_t, done_t, config.gamma, axis_name=data_axis_names()
            )
            return scaler, rlkit.reward_scaling_apply(scaler, reward_t, clip=config.reward_clip)

        reward_norm, scaled = jax.lax.scan(step, reward_norm, (reward, done))
        return scaled, reward_norm

    # -- the policy head ---------------------------------------------------------------------------

    def _bounds(self) -> tuple[chex.Array, chex.Array]:
        return (
            jnp.asarray(self.action_space.low, jnp.float32),
            jnp.asarray(self.action_space.high, jnp.float32),
        )

    def env_action(self, config: ActorCriticConfig, raw: chex.Array) -> chex.Array:
        """Maps an unsquashed Gaussian sample ``[B, D]`` into the action Box (``action_squash``)."""
        low, high = self._bounds()
        if config.action_squash == "clip":
            return jnp.clip(raw, low[None], high[None])
        return jax.vmap(rlkit.rescale_action, in_axes=(0, None, None))(jnp.tanh(raw), low, high)

    def log_prob_entropy(self, head: Any, action: chex.Array) -> tuple[chex.Array, chex.Array]:
        """Per-sample ``(log pi(action), entropy)`` ``[B]`` of the network's policy head.

        Args:
          head: logits ``[B, A]`` (discrete) or ``(mean, log_std)`` ``[B, D]`` (continuous).
          action: int indices ``[B]`` or unsquashed samples ``[B, D]``.
        """
        if self.continuous:
            mean, log_std = head
            log_prob = jax.vmap(rlkit.diag_gaussian_log_prob)(mean, log_std, action)
            entropy = jax.vmap(rlkit.diag_gaussian_entropy)(log_std)
        else:
            log_prob = jax.vmap(rlkit.softmax_log_prob)(head, action)
            entropy = jax.vmap(rlkit.softmax_entropy)(head)
        return log_prob, entropy

    def _sample(self, config: ActorCriticConfig, head: Any, key: chex.PRNGKey):
        """``(env_action, stored_action, log_prob)`` for a batch of policy heads."""
        if self.continuous:
            mean, log_std = head
            keys = jax.random.split(key, mean.shape[0])
            raw = jax.vmap(rlkit.diag_gaussian_sample)(keys, mean, log_std)
            log_prob, _ = self.log_prob_entropy(head, raw)
            return self.env_action(config, raw), raw, log_prob
        keys = jax.random.split(key, head.shape[0])
        index = jax.vmap(rlkit.softmax_sample)(keys, head)
        log_prob, _ = self.log_prob_entropy(head, index)
        return index + self.action_space.start, index, log_prob

    # -- pure functions ----------------------------------------------------------------------------

    def init(self, config: ActorCriticConfig, key: chex.PRNGKey) -> ActorCriticState:
        obs_shape = tuple(self.observation_space.shape)
        params = self.network(config).init(key, jnp.zeros((1,) + obs_shape, jnp.float32))
        if self.continuous:
            inner = dict(params["params"])
            inner["log_std"] = jnp.full((self.action_dim,), config.log_std_init, jnp.float32)
            params = {**params, "params": inner}
        return ActorCriticState(
            params=params,
            opt_state=self.optimizer(config).init(jax.flatten_util.ravel_pytree(params)[0]),
            obs_norm=rlkit.running_stats_init(obs_shape),
            reward_norm=rlkit.reward_scaling_init(config.num_envs),
        )

    def act(self, config: ActorCriticConfig, state: ActorCriticState, obs: chex.Array, key):
        """Samples actions; ``extras`` holds ``log_prob``, ``value`` (and ``raw_action``)."""
        x = self.normalize_obs(config, state.obs_norm, obs)
        head, value = self.network(config).apply(state.params, x)
        action, stored, log_prob = self._sample(config, head, key)
        extras = {"log_prob": log_prob, "value": value}
        if self.continuous:
            extras["raw_action"] = stored
        return action, extras

    def stored_action(self, rollout: Transition) -> chex.Array:
        """The action whose log-probability the loss uses: the index, or the unsquashed sample."""
        if self.continuous:
            return rollout.extras["raw_action"]
        return rollout.action.astype(jnp.int32) - self.action_space.start

    def prepare_batch(
        self, config: ActorCriticConfig, state: ActorCriticState, rollout: Transition
    ) -> tuple[ActorCriticBatch, ActorCriticState, dict]:
        """GAE advantages and value targets of a rollout, flattened to ``[T * N]``.

        Returns the batch, the state with updated normaliser statistics (observation statistics
        take this rollout into account only after the batch was normalised with the old ones,
        which ``act`` used), and a few metrics.
        """
        chex.assert_rank(rollout.reward, 2)
        t_len, n_envs = rollout.reward.shape
        obs = self.normalize_obs(config, state.obs_norm, rollout.obs)
        next_obs = self.normalize_obs(config, state.obs_norm, rollout.next_obs)
        _, next_values = self.network(config).apply(state.params, next_obs)
        values = rollout.extras["value"]
        rewards, reward_norm = self.scale_rewards(config, state.reward_norm, rollout)
        gae = jax.vmap(rlkit.gae_from_rollout, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)
        advantages, targets = gae(
            rewards,
            values,
            next_values,
            rollout.terminated,
            rollout.truncated,
            config.gamma,
            config.gae_lambda,
        )
        advantages = jax.lax.stop_gradient(advantages)
        targets = jax.lax.stop_gradient(targets)

        def flat(x):
            return x.reshape((t_len * n_envs,) + x.shape[2:])

        batch = ActorCriticBatch(
            obs=flat(obs),
            action=flat(self.stored_action(rollout)),
            log_prob=flat(rollout.extras["log_prob"]),
            value=flat(values),
            advantage=flat(advantages),
            target=flat(targets),
        )
        obs_norm = state.obs_norm
        if config.normalize_obs:
            obs_norm = rlkit.running_stats_update(
                obs_norm, flat(rollout.obs.astype(jnp.float32)), axis_name=data_axis_names()
            )
        metrics = {
            "advantage_mean": jnp.mean(advantages),
            "value_mean": jnp.mean(values),
            "reward_scaled_mean": jnp.mean(rewards),
        }
        return batch, state._replace(obs_norm=obs_norm, reward_norm=reward_norm), metrics

    def policy_loss(
        self,
        config: ActorCriticConfig,
        log_prob: chex.Array,
        batch: ActorCriticBatch,
        advantage: chex.Array,
    ) -> tuple[chex.Array, dict]:
        """The plain policy-gradient term ``-mean(A log pi(a|s))`` (Williams, 1992); PPO overrides.

        Computed through ``rlkit.clipped_surrogate_pg_loss`` with the ratio to a stopped copy of
        the current policy, ``exp(log pi - stop_gradient(log pi))``: it is 1 in value and has
        gradient ``grad log pi``, and an infinite clip width never clips, so the gradient is
        exactly ``-mean(A grad log pi)`` for discrete and continuous policies alike.
        """
        self_ratio = jnp.exp(log_prob - jax.lax.stop_gradient(log_prob))
        return rlkit.clipped_surrogate_pg_loss(self_ratio, advantage, jnp.inf), {}

    def value_loss(
        self, config: ActorCriticConfig, value: chex.Array, batch: ActorCriticBatch
    ) -> chex.Array:
        """``mean(0.5 (V(s) - target)^2)``; PPO overrides it with the optional clipped form."""
        return jnp.mean(rlkit.l2_loss(value, batch.target))

    def loss(
        self, config: ActorCriticConfig, params: Any, batch: ActorCriticBatch
    ) -> tuple[chex.Array, dict]:
        """The actor-critic loss of a flat batch; ``(loss, metrics)``.

        ``L = policy_loss + vf_coef * value_loss - ent_coef * mean(H)``, with the advantages
        standardised over the batch first if ``normalize_advantages``.
        """
        head, value = self.network(config).apply(params, batch.obs)
        log_prob, entropy = self.log_prob_entropy(head, batch.action)
        adv = batch.advantage
        if config.normalize_advantages:
            if data_axis_names() is None:
                adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
            else:  # the statistics of the whole minibatch, over the run's data shards
                mean = data_mean(jnp.mean(adv))
                std = jnp.sqrt(data_mean(jnp.mean(jnp.square(adv - mean))))
                adv = (adv - mean) / (std + 1e-8)
        pg_loss, metrics = self.policy_loss(config, log_prob, batch, adv)
        value_loss = self.value_loss(config, value, batch)
        entropy = jnp.mean(entropy)
        total = pg_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        metrics.update(loss=total, pg_loss=pg_loss, value_loss=value_loss, entropy=entropy)
        return total, metrics

    def gradient_step(
        self, config: ActorCriticConfig, params: Any, opt_state: Any, batch: ActorCriticBatch
    ) -> tuple[Any, Any, dict]:
        """One optimiser step on ``loss``; returns ``(params, opt_state, metrics)``."""
        grads, metrics = jax.grad(self.loss, argnums=1, has_aux=True)(config, params, batch)
        # The optimiser works on one flat vector: a few large fused ops instead of a few per layer.
        flat_params, unravel = jax.flatten_util.ravel_pytree(params)
        flat_grads, _ = jax.flatten_util.ravel_pytree(grads)
        updates, opt_state = self.optimizer(config).update(flat_grads, opt_state, flat_params)
        metrics["grad_norm"] = optax.tree.norm(flat_grads)
        return unravel(flat_params + updates), opt_state, metrics

    def policy_params(self, state: ActorCriticState) -> ActorCriticPolicyParams:
        return ActorCriticPolicyParams(params=state.params, obs_norm=state.obs_norm)

    def policy(
        self,
        config: ActorCriticConfig,
        policy_params: ActorCriticPolicyParams,
        obs: chex.Array,
        key: chex.PRNGKey,
        deterministic: bool = True,
    ) -> chex.Array:
        x = self.normalize_obs(config, policy_params.obs_norm, obs)
        head, _ = self.network(config).apply(policy_params.params, x)
        if not deterministic:
            return self._sample(config, head, key)[0]
        if self.continuous:
            return self.env_action(config, head[0])
        return jnp.argmax(head, axis=-1).astype(jnp.int32) + self.action_space.start
