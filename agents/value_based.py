"""The value-based base that DQN and the Q-learning family (C51, QR-DQN, IQN, M-DQN, Rainbow)
build on.

It sits on ``agents.off_policy.OffPolicyAgent`` (replay, the masked ``lax.scan`` of learner
steps, target updates, prioritised replay) and owns what every Q-learning agent repeats:

* the config fields of exploration and of the Q-network (``ValueBasedConfig``);
* the learner state ``ValueBasedLearner(params, target_params, opt_state)``, initialised with the
  target equal to the online parameters, and the optimiser (``agents.base.make_optimizer`` with
  Adam);
* epsilon-greedy acting on ``Q`` with the schedule of ``epsilon``: uniformly random before
  ``learning_starts``, then a linear decay from ``exploration_initial_eps`` to
  ``exploration_final_eps`` over ``exploration_fraction * total_timesteps`` env steps;
* a learner step: one Adam step on the agent's ``loss``, ``theta <- theta + Adam(grad_theta L)``,
  with the metrics loss, q_mean, grad_norm and learning_rate;
* the greedy evaluation policy ``argmax_a Q(s, a)`` (epsilon-greedy with
  ``exploration_final_eps`` when not deterministic).

A subclass supplies its ``network`` and its ``loss``; it may override ``q_values`` (how action
values come out of the network: a mean over atoms or quantiles, sampled quantile fractions, noisy
weights) and ``init_params`` (for networks that take more inputs than the observation).
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.base import current_learning_rate, hyperparameter, make_optimizer, static_field
from agents.networks import activation_fn, conv_spec
from agents.off_policy import (
    OffPolicyAgent,
    OffPolicyConfig,
    OffPolicyState,
    epsilon_greedy_actions,
)

__all__ = [
    "ACROBOT_PRESET",
    "CARTPOLE_PRESET",
    "MOUNTAINCAR_PRESET",
    "ValueBasedAgent",
    "ValueBasedConfig",
    "ValueBasedLearner",
    "epsilon",
]

#: The CartPole-v1 preset of the Q-learning agents: 50k steps, Adam at 2e-3 annealed to 0,
#: batches of 128 (128 gradient steps per 256 env steps). DQN uses it as it is; C51, QR-DQN, IQN,
#: M-DQN and Rainbow extend it with what differs for them (``{**CARTPOLE_PRESET, ...}``: smaller
#: distributions, which is where their time goes on a CPU). The figures are in docs/benchmarks.md.
CARTPOLE_PRESET: dict = {
    "total_timesteps": 50_000,
    "learning_rate": 2e-3,
    "anneal_lr": True,
    "batch_size": 128,
}

#: DQN's Acrobot-v1 preset (50k steps, hard target copies every 128 gradient steps); the other
#: Q-learning agents extend it as they do ``CARTPOLE_PRESET``.
ACROBOT_PRESET: dict = {
    "total_timesteps": 50_000,
    "buffer_size": 50_000,
    "tau": 1.0,
    "target_update_interval": 128,
    "exploration_fraction": 0.12,
    "exploration_final_eps": 0.05,
}

#: DQN's MountainCar-v0 preset, after RL Zoo's MountainCar DQN, with 3-step returns and 128x128
#: layers; the other Q-learning agents extend it (C51, QR-DQN, IQN and M-DQN; PQN has its own).
MOUNTAINCAR_PRESET: dict = {
    "total_timesteps": 200_000,
    "learning_rate": 4e-3,
    "batch_size": 128,
    "buffer_size": 10_000,
    "gamma": 0.98,
    "tau": 1.0,
    "target_update_interval": 300,
    "exploration_fraction": 0.2,
    "exploration_final_eps": 0.07,
    "hidden": (128, 128),
}


@struct.dataclass
class ValueBasedConfig(OffPolicyConfig):
    """Exploration and Q-network fields shared by the Q-learning agents (the replay fields are
    ``OffPolicyConfig``'s). Traced fields can be vmapped over; static fields fix the program."""

    exploration_fraction: float = static_field(0.16, low=0.0, high=1.0)
    """Fraction of total_timesteps over which epsilon decays linearly."""
    exploration_initial_eps: float = hyperparameter(1.0, low=0.0, high=1.0)
    """Epsilon at the start of the decay."""
    exploration_final_eps: float = hyperparameter(0.04, low=0.0, high=1.0)
    """Epsilon after the decay."""
    double_q: bool = static_field(True)
    """Double-Q targets: the online network picks the bootstrap action, the target values it."""
    dueling: bool = static_field(False)
    """Dueling head: Q = V + A - mean(A) (per atom or quantile for distributional agents)."""
    hidden: tuple[int, ...] = static_field((64, 64))
    """Hidden layer widths of the Q-network (vector observations)."""
    activation: str = static_field("relu")
    """Hidden activation: relu, tanh, elu, gelu or silu."""


class ValueBasedLearner(NamedTuple):
    """The learner state of a value-based agent inside ``OffPolicyState.learner``."""

    params: Any
    target_params: Any
    opt_state: Any


def epsilon(config: ValueBasedConfig, env_steps: chex.Array) -> chex.Array:
    """Exploration rate after ``env_steps``: 1 before ``learning_starts``, then linear decay."""
    schedule = optax.linear_schedule(
        config.exploration_initial_eps,
        config.exploration_final_eps,
        max(1, int(config.exploration_fraction * config.total_timesteps)),
    )
    return jnp.where(env_steps < config.learning_starts, 1.0, schedule(env_steps))


class ValueBasedAgent(OffPolicyAgent):
    """Base of the Q-learning agents for discrete actions (see the module docstring)."""

    Config = ValueBasedConfig

    @property
    def num_actions(self) -> int:
        return self.action_space.n

    # -- what a subclass supplies ---------------------------------------------------------------

    @abc.abstractmethod
    def network(self, config: ValueBasedConfig) -> nn.Module:
        """The flax module whose parameters are learned."""

    @abc.abstractmethod
    def loss(
        self,
        config: ValueBasedConfig,
        params: Any,
        target_params: Any,
        batch: dict,
        weights: chex.Array,
        key: chex.PRNGKey,
    ) -> tuple[chex.Array, tuple[chex.Array, chex.Array]]:
        """The loss of a batch of windows, differentiated with respect to ``params``.

        Args:
          config: the config.
          params: online network parameters.
          target_params: target network parameters.
          batch: dict of ``[B, n_step, ...]`` arrays (the fields of ``replay_steps``).
          weights: ``[B]`` importance weights (ones without prioritised replay).
          key: randomness of the step (sampled quantile fractions, network noise).

        Returns:
          ``(loss, (per_item [B], q_taken [B]))``: ``|per_item|`` sets new priorities.
        """

    def q_values(
        self,
        config: ValueBasedConfig,
        params: Any,
        obs: chex.Array,
        key: chex.PRNGKey | None = None,
    ) -> chex.Array:
        """Action values ``Q(obs, .) [N, A]``. ``key`` is the acting randomness (None: the
        deterministic values the greedy policy uses); the default network ignores it."""
        return self.network(config).apply(params, obs)

    def init_params(self, config: ValueBasedConfig, key: chex.PRNGKey) -> Any:
        """The network's initial parameters, from a dummy observation batch of one."""
        dummy_obs = jnp.zeros((1,) + tuple(self.observation_space.shape), jnp.float32)
        return self.network(config).init(key, dummy_obs)

    def loss_metrics(self, per_item: chex.Array, q_taken: chex.Array) -> dict:
        """Metrics of a learner step computed from the loss's outputs (besides loss, grad_norm
        and learning_rate)."""
        return {"q_mean": jnp.mean(q_taken)}

    # -- shared structure -----------------------------------------------------------------------

    def optimizer(self, config: ValueBasedConfig) -> optax.GradientTransformation:
        """``agents.base.make_optimizer`` with Adam."""
        return make_optimizer(
            config, self.grad_steps_per_update(config), optax.scale_by_adam(eps=config.adam_eps)
        )

    def check_config(self, config: ValueBasedConfig) -> None:
        """The off-policy checks, then the activation and the image torso."""
        super().check_config(config)
        activation_fn(config.activation)
        conv_spec(config, self.observation_space)

    # -- pure functions -------------------------------------------------------------------------

    def learner_init(self, config: ValueBasedConfig, key: chex.PRNGKey) -> ValueBasedLearner:
        params = self.init_params(config, key)
        return ValueBasedLearner(params, params, self.optimizer(config).init(params))

    def act(
        self, config: ValueBasedConfig, state: OffPolicyState, obs: chex.Array, key: chex.PRNGKey
    ):
        """Epsilon-greedy actions on ``q_values``; epsilon follows ``state.env_steps``, which
        ``update`` advances, so it is constant within a rollout (uniformly random before
        ``learning_starts``)."""
        q = self.q_values(config, state.learner.params, obs, key)
        return epsilon_greedy_actions(q, epsilon(config, state.env_steps), key), {}

    def learner_step(
        self,
        config: ValueBasedConfig,
        learner: ValueBasedLearner,
        batch: dict,
        weights: chex.Array,
        key: chex.PRNGKey,
    ):
        """One Adam step on ``loss``."""
        (loss, (per_item, q_taken)), grads = jax.value_and_grad(
            lambda p: self.loss(config, p, learner.target_params, batch, weights, key),
            has_aux=True,
        )(learner.params)
        updates, opt_state = self.optimizer(config).update(grads, learner.opt_state, learner.params)
        params = optax.apply_updates(learner.params, updates)
        metrics = {
            "loss": loss,
            **self.loss_metrics(per_item, q_taken),
            "grad_norm": optax.tree.norm(grads),
            "learning_rate": current_learning_rate(
                config, self.grad_steps_per_update(config), learner.opt_state
            ),
        }
        return learner._replace(params=params, opt_state=opt_state), per_item, metrics

    def extra_metrics(self, config: ValueBasedConfig, state: OffPolicyState) -> dict:
        return {"epsilon": epsilon(config, state.env_steps)}

    def policy_params(self, state: OffPolicyState) -> Any:
        return state.learner.params

    def policy(
        self,
        config: ValueBasedConfig,
        policy_params: Any,
        obs: chex.Array,
        key: chex.PRNGKey,
        deterministic: bool = True,
    ) -> chex.Array:
        """Greedy on the deterministic ``q_values``; epsilon-greedy with
        ``exploration_final_eps`` on the acting ``q_values`` when not ``deterministic``."""
        if deterministic:
            q = self.q_values(config, policy_params, obs)
            return jnp.argmax(q, axis=-1).astype(jnp.int32)
        q = self.q_values(config, policy_params, obs, key)
        return epsilon_greedy_actions(q, config.exploration_final_eps, key)
