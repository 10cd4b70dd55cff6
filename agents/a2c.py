"""A2C: synchronous n-step advantage actor-critic.

"Asynchronous Methods for Deep Reinforcement Learning", Mnih et al. (2016),
https://arxiv.org/abs/1602.01783, in its synchronous form (one learner, ``num_envs`` parallel envs),
as in OpenAI Baselines and Stable-Baselines3.

It shares everything but the update with PPO (the base ``agents.actor_critic.ActorCriticAgent``): the network, the
policy head, observation/reward normalisation and the advantage batch. One ``update`` takes a short
rollout ``[T, N]`` (``rollout_length`` around 5) and makes one gradient step on all of it:

    A_t = GAE(gamma, lambda) of the rollout; with gae_lambda = 1 it is the n-step advantage
          sum_{k=t}^{T-1} gamma^{k-t} r_k + gamma^{T-t} V(s_T) - V(s_t), cut at episode ends
          (no bootstrap after a termination, V(final_obs) after a truncation),
    L   = -mean(A_t log pi(a_t|s_t)) + vf_coef * mean(0.5 (V(s_t) - (A_t + V_old(s_t)))^2)
          - ent_coef * mean(H(pi(.|s_t))),

with no ratio clipping, no epochs and no minibatches; gradients are clipped to global norm
``max_grad_norm``, and the default optimiser is RMSprop (decay 0.99) as in the paper's baselines.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import chex
from flax import struct

from agents.actor_critic import ActorCriticAgent, ActorCriticConfig, ActorCriticState
from agents.base import INT32_MAX, Transition, hyperparameter, static_field
from agents.registry import register_agent

__all__ = ["A2C", "A2CConfig"]


@struct.dataclass
class A2CConfig(ActorCriticConfig):
    """A2C hyperparameters (Stable-Baselines3's defaults). Traced fields can be vmapped over."""

    total_timesteps: int = static_field(500_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(8, low=1, split=True, divisible=True)
    """Parallel environments per seed."""
    rollout_length: int = static_field(5, low=1)
    """Env steps each env takes between two updates (the n of the n-step returns)."""
    learning_rate: float = hyperparameter(7e-4, low=0.0, low_open=True)
    """Initial optimiser step size."""
    anneal_lr: bool = static_field(False)
    """Anneal the learning rate linearly from learning_rate to 0 over the run."""
    optimizer: Literal["adam", "rmsprop"] = static_field("rmsprop")
    """Optimiser: 'adam' or 'rmsprop' (decay 0.99, as in A2C/A3C)."""
    gae_lambda: float = hyperparameter(1.0, low=0.0, high=1.0)
    """GAE lambda: 1 gives the n-step advantage of A2C, below 1 trades variance for bias."""
    ent_coef: float = hyperparameter(0.0, low=0.0)
    """Weight of the entropy bonus."""
    normalize_advantages: bool = static_field(False)
    """Standardise advantages to zero mean and unit std (over the rollout)."""


class A2C(ActorCriticAgent):
    """Synchronous advantage actor-critic for discrete or continuous actions (module docstring).

    Continuous actions use the same diagonal Gaussian and ``action_squash`` ("clip" or "tanh",
    static) as PPO; the log-probability is that of the unsquashed sample.
    """

    name = "a2c"
    Config = A2CConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {
            "total_timesteps": 100_000,
            "learning_rate": 2e-3,
        },
        "Acrobot-v1": {
            "total_timesteps": 300_000,
            "learning_rate": 2e-3,
        },
        # Plain A2C needs many more steps than PPO here (one gradient step per 256 samples):
        # Adam, standardised advantages, normalised observations and rewards, a short horizon.
        "Pendulum-v1": {
            "total_timesteps": 3_000_000,
            "num_envs": 32,
            "rollout_length": 8,
            "learning_rate": 1.5e-3,
            "anneal_lr": True,
            "optimizer": "adam",
            "gamma": 0.95,
            "gae_lambda": 0.95,
            "normalize_advantages": True,
            "normalize_obs": True,
            "normalize_reward": True,
        },
        # As for PPO: a wide initial Gaussian finds the goal, reward scaling carries it.
        "MountainCarContinuous-v0": {
            "num_envs": 32,
            "rollout_length": 8,
            "log_std_init": 1.0,
            "normalize_obs": True,
            "normalize_reward": True,
        },
    }

    def update(
        self, config: A2CConfig, state: ActorCriticState, rollout: Transition, key: chex.PRNGKey
    ) -> tuple[ActorCriticState, dict]:
        """One gradient step on the whole rollout."""
        batch, state, metrics = self.prepare_batch(config, state, rollout)
        params, opt_state, step_metrics = self.gradient_step(
            config, state.params, state.opt_state, batch
        )
        metrics.update(step_metrics)
        metrics["learning_rate"] = self.learning_rate(config, state.opt_state)
        return state._replace(params=params, opt_state=opt_state), metrics


register_agent(A2C)
