"""PPO: proximal policy optimisation with a clipped surrogate, GAE and minibatch epochs.

"Proximal Policy Optimization Algorithms", Schulman et al. (2017), https://arxiv.org/abs/1707.06347,
with the details of "The 37 Implementation Details of PPO" (Huang et al., 2022) as PureJaxRL and
CleanRL use them, and bootstrapping at time-limit truncations (Pardo et al., 2018,
https://arxiv.org/abs/1712.00378).

It builds on the actor-critic base ``agents.actor_critic`` (policy head, normalisers, GAE batch).

One ``update`` call on a rollout ``[T, N]``:

1. normalises ``obs`` and ``next_obs`` with the running statistics that ``act`` used (so the first
   ratio is 1), and scales the rewards by a running std of the discounted return (optional);
2. computes GAE per env with ``rlkit.gae_from_rollout``: ``values = V(obs)`` from ``act``,
   ``next_values = V(next_obs)`` where ``next_obs`` is the true next observation (the final one at
   an episode end), so a terminated step does not bootstrap and a truncated step bootstraps on
   ``V(final_obs)``; ``targets = advantages + values``;
3. runs ``num_epochs`` passes over the ``T * N`` samples, each shuffled into ``num_minibatches``
   minibatches (``lax.scan`` over both), with one Adam step per minibatch on

       L = L_clip(r, A) + vf_coef * L_V - ent_coef * H,    r = pi(a|s) / pi_old(a|s),
       L_clip = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A))       (rlkit.clipped_surrogate_pg_loss)
       L_V    = mean(0.5 (V(s) - target)^2), or with ``clip_value`` the PPO2 clipped form
                mean(max(0.5 (V - target)^2, 0.5 (V_old + clip(V - V_old, -eps, eps) - target)^2))

   where ``A`` is normalised per minibatch (``normalize_advantages``), the gradient is clipped to
   global norm ``max_grad_norm`` and the learning rate anneals linearly to 0 (``anneal_lr``);
4. updates the observation statistics with this rollout's observations (for the next rollout).

Continuous actions: see ``agents.actor_critic``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.actor_critic import (
    ActorCriticAgent,
    ActorCriticBatch,
    ActorCriticConfig,
    ActorCriticState,
)
from agents.base import Transition, hyperparameter, minibatch_epochs, static_field
from agents.presets import per_atari_game, per_minatar_game
from agents.registry import register_agent
from rlkit.errors import RLKitError

__all__ = ["PPO", "PPOConfig"]


@struct.dataclass
class PPOConfig(ActorCriticConfig):
    """PPO hyperparameters. Traced fields can be vmapped over; static fields fix the program."""

    num_epochs: int = static_field(4, low=1)
    """Passes over each rollout."""
    num_minibatches: int = static_field(4, low=1)
    """Minibatches per pass; num_envs * rollout_length must be divisible by it."""
    clip_eps: float = hyperparameter(0.2, low=0.0, low_open=True)
    """Clipping half-width of the probability ratio (and of the value change with clip_value)."""
    clip_value: bool = static_field(True)
    """Clip the value loss around the rollout's values, PPO2 style, with the same clip_eps."""



# --------------------------------------------------------------------------------------------------
# PPO
# --------------------------------------------------------------------------------------------------


class PPO(ActorCriticAgent):
    """Proximal policy optimisation, discrete or continuous actions (see the module docstring).

    ``action_squash`` (static): how a Gaussian sample ``u`` becomes an env action, ``"clip"``
    (``clip(u, low, high)``) or ``"tanh"`` (``low + (tanh(u) + 1)(high - low) / 2``). The ratio
    always uses the Gaussian log-probability of ``u`` itself.
    """

    name = "ppo"
    Config = PPOConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # PureJaxRL's settings with 8 envs x 64 steps, lr 1e-3 and 200k steps (instead of 4 x 128,
        # 2.5e-4 and 500k), so the CLI default trains in seconds (results: docs/benchmarks.md).
        "CartPole-v1": {
            "total_timesteps": 200_000,
            "num_envs": 8,
            "rollout_length": 64,
            "learning_rate": 1e-3,
        },
        "Acrobot-v1": {
            "total_timesteps": 300_000,
            "num_envs": 8,
            "rollout_length": 64,
            "learning_rate": 1e-3,
            "ent_coef": 0.0,
        },
        # Host env (Box2D): RL Zoo's LunarLander PPO (16 envs x 1024 steps, 4 epochs of
        # minibatches of 64, lr 3e-4 constant, gamma 0.999, GAE 0.98, entropy 0.01, no value
        # clipping, 1M steps); the reference run for IMPALA's wall time (docs/benchmarks.md).
        "LunarLander-v3": {
            "total_timesteps": 1_000_000,
            "num_envs": 16,
            "rollout_length": 1024,
            "num_minibatches": 256,
            "learning_rate": 3e-4,
            "anneal_lr": False,
            "gamma": 0.999,
            "gae_lambda": 0.98,
            "clip_value": False,
        },
        # Continuous control: normalised observations and rewards, a shorter horizon.
        "Pendulum-v1": {
            "num_envs": 16,
            "num_epochs": 10,
            "num_minibatches": 8,
            "learning_rate": 1e-3,
            "gamma": 0.95,
            "ent_coef": 0.0,
            "normalize_obs": True,
            "normalize_reward": True,
        },
        # The +100 at the goal must be found before the action cost teaches "do nothing": a wide
        # initial Gaussian (log_std 1, std e) over 32 envs finds it, reward scaling carries it.
        "MountainCarContinuous-v0": {
            "total_timesteps": 300_000,
            "num_envs": 32,
            "rollout_length": 64,
            "num_epochs": 10,
            "learning_rate": 3e-4,
            "ent_coef": 0.0,
            "log_std_init": 1.0,
            "normalize_obs": True,
            "normalize_reward": True,
        },
        # MinAtar (every game, both action sets): the MinAtar paper's network, 64 envs x 128
        # steps, 8 minibatches, 5M steps (the paper's budget).
        **per_minatar_game(
            {
                "total_timesteps": 5_000_000,
                "num_envs": 64,
                "num_minibatches": 8,
                "learning_rate": 5e-4,
                "activation": "relu",
            }
        ),
        # Atari (ALE/<Game>-v5 of ATARI_IDS): CleanRL's ppo_atari settings (Huang et al., 2022):
        # 8 envs x 128 steps, 4 epochs of 4 minibatches, clip 0.1, lr 2.5e-4 annealed, entropy
        # 0.01, value 0.5, gradient norm 0.5, 10M steps (the defaults but for envs, clip, steps).
        **per_atari_game({"total_timesteps": 10_000_000, "num_envs": 8, "clip_eps": 0.1}),
    }

    def grad_steps_per_update(self, config: PPOConfig) -> int:
        return config.num_epochs * config.num_minibatches

    def check_config(self, config: PPOConfig) -> None:
        super().check_config(config)
        if config.steps_per_update % config.num_minibatches:
            raise RLKitError(
                f"--num-minibatches: expected a divisor of num_envs * rollout_length "
                f"({config.steps_per_update}), got {config.num_minibatches}"
            )

    def policy_loss(
        self,
        config: PPOConfig,
        log_prob: chex.Array,
        batch: ActorCriticBatch,
        advantage: chex.Array,
    ) -> tuple[chex.Array, dict]:
        """PPO's clipped surrogate with ``r = exp(log pi(a|s) - batch.log_prob)``."""
        log_ratio = log_prob - batch.log_prob
        ratio = jnp.exp(log_ratio)
        loss = rlkit.clipped_surrogate_pg_loss(ratio, advantage, config.clip_eps)
        metrics = {
            # k3 estimator of KL(old || new) (Schulman, 2020), and how often the ratio was clipped.
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
            "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > config.clip_eps).astype(jnp.float32)),
        }
        return loss, metrics

    def value_loss(
        self, config: PPOConfig, value: chex.Array, batch: ActorCriticBatch
    ) -> chex.Array:
        """``mean(0.5 (V - target)^2)``, or with ``clip_value`` the PPO2 pessimistic clipped form
        ``mean(max(0.5 (V - target)^2, 0.5 (V_old + clip(V - V_old, -eps, eps) - target)^2))``."""
        loss = rlkit.l2_loss(value, batch.target)
        if config.clip_value:
            clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
            loss = jnp.maximum(loss, rlkit.l2_loss(clipped, batch.target))
        return jnp.mean(loss)

    def update(
        self, config: PPOConfig, state: ActorCriticState, rollout: Transition, key: chex.PRNGKey
    ) -> tuple[ActorCriticState, dict]:
        """GAE on the rollout, then ``num_epochs`` x ``num_minibatches`` clipped-surrogate steps."""
        batch, state, batch_metrics = self.prepare_batch(config, state, rollout)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            params, opt_state, metrics = self.gradient_step(config, params, opt_state, minibatch)
            return (params, opt_state), metrics

        (params, opt_state), metrics = minibatch_epochs(
            minibatch_step,
            (state.params, state.opt_state),
            batch,
            key,
            config.num_epochs,
            config.num_minibatches,
            unroll=config.unroll_updates,
        )
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics.update(batch_metrics)
        metrics["learning_rate"] = self.learning_rate(config, state.opt_state)
        return state._replace(params=params, opt_state=opt_state), metrics


register_agent(PPO)
