"""DQN: Q-learning from a replay buffer, with Double-Q targets, n-step returns and a target network.

"Human-level control through deep reinforcement learning", Mnih et al. (2015),
https://www.nature.com/articles/nature14236, with the usual refinements:
Double Q-learning targets (van Hasselt, Guez and Silver, 2016, https://arxiv.org/abs/1509.06461),
an optional dueling head (Wang et al., 2016, https://arxiv.org/abs/1511.06581), n-step returns
(Sutton and Barto, section 7.1), optional proportional prioritised replay (Schaul et al., 2016,
https://arxiv.org/abs/1511.05952), and bootstrapping at time-limit truncations (Pardo et al., 2018,
https://arxiv.org/abs/1712.00378).

It is an ``agents.value_based.ValueBasedAgent`` (on ``agents.off_policy.OffPolicyAgent``): the
bases store rollouts in the replay buffer, run ``gradient_steps`` masked learner steps with target
updates and optional prioritised replay, act epsilon-greedily and take the Adam steps. A DQN
learner step is one Adam step on

    y = sum_{k<K} gamma^k r_k + gamma^K (1 - terminated_{K-1}) Q_target(s', argmax_a Q(s', a)),
    s' = next_obs_{K-1}
    loss = mean_i w_i huber(y_i - Q(s_i, a_i))

where the window stops after ``n_step`` steps or at the first step that ended an episode, ``s'``
is the true next observation (the final observation at an episode end), and ``w`` are the
importance weights (1 without prioritised replay). A terminated step does not bootstrap; a
truncated one bootstraps on ``Q(s')``. With ``double_q=False`` the bootstrap is
``max_a Q_target(s', a)``. Actions are epsilon-greedy, uniformly random before ``learning_starts``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.base import hyperparameter, static_field
from agents.networks import QNetwork, conv_spec
from agents.off_policy import bootstrap_obs, n_step_window
from agents.presets import per_atari_game, per_minatar_game
from agents.registry import register_agent
from agents.value_based import (
    ACROBOT_PRESET,
    CARTPOLE_PRESET,
    MOUNTAINCAR_PRESET,
    ValueBasedAgent,
    ValueBasedConfig,
    ValueBasedLearner,
    epsilon,
)
from rlkit.errors import RLKitError

__all__ = ["DQN", "DQNConfig", "DQNLearner", "dqn_loss", "td_errors", "epsilon"]


@struct.dataclass
class DQNConfig(ValueBasedConfig):
    """DQN hyperparameters (exploration and network fields are ``ValueBasedConfig``'s, the replay
    fields ``OffPolicyConfig``'s). Traced fields can be vmapped over; static fields fix the
    program."""

    loss: str = static_field("huber")
    """TD loss: 'huber' or 'l2'."""
    huber_delta: float = hyperparameter(1.0, low=0.0, low_open=True)
    """Where the Huber loss turns from quadratic to linear."""


#: The learner state of DQN inside ``OffPolicyState.learner`` (the value-based base's).
DQNLearner = ValueBasedLearner


# --------------------------------------------------------------------------------------------------
# Building blocks (top-level so tests and other agents can reuse them)
# --------------------------------------------------------------------------------------------------


def td_errors(
    apply_fn, params: Any, target_params: Any, config: DQNConfig, batch: dict
) -> tuple[chex.Array, chex.Array]:
    """TD errors ``y - Q(s, a)`` of a batch of windows, with gradient flowing into ``Q(s, a)`` only.

    Args:
      apply_fn: ``apply_fn(params, obs [..., obs_dim]) -> Q [..., A]``.
      params: online network parameters.
      target_params: target network parameters.
      config: the DQN config (``gamma``, ``n_step``, ``double_q``).
      batch: dict of ``[B, L, ...]`` arrays with keys obs, action, reward, terminated, truncated,
        next_obs (``L >= n_step``; only the first ``n_step`` steps are used).

    Returns:
      ``(td [B], q_taken [B])``.
    """
    n = config.n_step
    obs, action = batch["obs"][:, 0], batch["action"][:, 0]
    q_tm1 = apply_fn(params, obs)
    q_taken = rlkit.batched_index(q_tm1, action)
    if n == 1:
        next_obs = batch["next_obs"][:, 0]
        q_t_value = jax.lax.stop_gradient(apply_fn(target_params, next_obs))
        # discount_t = gamma * (1 - terminated); a truncated step still bootstraps on Q(next_obs).
        discount = config.gamma * (1.0 - batch["terminated"][:, 0].astype(q_tm1.dtype))
        reward = batch["reward"][:, 0]
        if config.double_q:
            q_t_selector = jax.lax.stop_gradient(apply_fn(params, next_obs))
            td = jax.vmap(rlkit.double_q_learning)(
                q_tm1, action, reward, discount, q_t_value, q_t_selector
            )
        else:
            td = jax.vmap(rlkit.q_learning)(q_tm1, action, reward, discount, q_t_value)
        return td, q_taken

    # n > 1: the window stops at its first step that ended an episode, and only that step's
    # next observation is bootstrapped on (a truncated step's, not a terminated one's), so the
    # target networks run on one observation per window rather than on all n.
    reward_sum, discount, last = n_step_window(
        batch["reward"][:, :n], batch["terminated"][:, :n], batch["truncated"][:, :n], config.gamma
    )
    next_obs = bootstrap_obs(batch["next_obs"][:, :n], last)
    q_t_value = jax.lax.stop_gradient(apply_fn(target_params, next_obs))  # [B, A]
    if config.double_q:
        q_t_selector = jax.lax.stop_gradient(apply_fn(params, next_obs))
        next_values = rlkit.batched_index(q_t_value, jnp.argmax(q_t_selector, axis=-1))
    else:
        next_values = jnp.max(q_t_value, axis=-1)
    target = jax.lax.stop_gradient(reward_sum + discount * next_values)
    return target - q_taken, q_taken


def dqn_loss(
    params: Any,
    target_params: Any,
    apply_fn,
    config: DQNConfig,
    batch: dict,
    weights: chex.Array,
) -> tuple[chex.Array, tuple[chex.Array, chex.Array]]:
    """Weighted mean TD loss (Huber or L2) of a batch; see ``td_errors``.

    Returns:
      ``(loss, (td [B], q_taken [B]))``.
    """
    td, q_taken = td_errors(apply_fn, params, target_params, config, batch)
    if config.loss == "huber":
        per_item = rlkit.huber_loss(td, config.huber_delta)
    else:
        per_item = rlkit.l2_loss(td)
    return jnp.mean(weights * per_item), (td, q_taken)


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


class DQN(ValueBasedAgent):
    """Deep Q-network agent for discrete actions (see the module docstring for the update)."""

    name = "dqn"
    Config = DQNConfig
    #: Per-env settings; each entry holds only what differs from the ``DQNConfig`` defaults.
    #: How they were chosen, and what they reach, is in docs/benchmarks.md.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": CARTPOLE_PRESET,
        "Acrobot-v1": ACROBOT_PRESET,
        "MountainCar-v0": MOUNTAINCAR_PRESET,
        # After RL Zoo's LunarLander DQN (one gradient step per env step, hard target copies),
        # with 3-step Double-Q returns and an annealed step size.
        "LunarLander-v3": {
            "total_timesteps": 200_000,
            "rollout_length": 16,
            "gradient_steps": 64,
            "learning_rate": 6.3e-4,
            "anneal_lr": True,
            "batch_size": 128,
            "tau": 1.0,
            "target_update_interval": 250,
            "exploration_fraction": 0.1,
            "exploration_final_eps": 0.05,
            "hidden": (256, 256),
        },
        # MinAtar (every game, both action sets), after the MinAtar paper's DQN: its network,
        # a 100k buffer, a hard target copy every 1000 env steps, epsilon 1 -> 0.1 over the first
        # 100k steps; with Adam, 3-step Double-Q targets and one gradient step per 4 env steps.
        **per_minatar_game(
            {
                "total_timesteps": 5_000_000,
                "num_envs": 8,
                "rollout_length": 16,
                "gradient_steps": 32,
                "learning_starts": 5_000,
                "learning_rate": 1e-4,
                "adam_eps": 1.5e-4,
                "tau": 1.0,
                "target_update_interval": 250,
                "exploration_fraction": 0.02,
                "exploration_final_eps": 0.1,
            }
        ),
        # Atari (ALE/<Game>-v5 of ATARI_IDS), after CleanRL's dqn_atari: Adam 1e-4, batch 32, 80k
        # steps before learning, one gradient step per 4 env steps, a hard target copy every 1000
        # env steps (250 gradient steps), epsilon 1 -> 0.01 over the first 10% of 10M steps; with
        # 3-step Double-Q targets. The buffer keeps the default 100k transitions (uint8 frames,
        # obs and next_obs: about 5.6 GB), sized for a 24 GB machine rather than the paper's 1M.
        **per_atari_game(
            {
                "total_timesteps": 10_000_000,
                "num_envs": 8,
                "rollout_length": 16,
                "gradient_steps": 32,
                "batch_size": 32,
                "learning_starts": 80_000,
                "learning_rate": 1e-4,
                "adam_eps": 1.5e-4,
                "tau": 1.0,
                "target_update_interval": 250,
                "exploration_fraction": 0.1,
                "exploration_final_eps": 0.01,
            }
        ),
    }

    _LOSSES = ("huber", "l2")

    def network(self, config: DQNConfig) -> QNetwork:
        return QNetwork(
            num_actions=self.num_actions,
            hidden=tuple(config.hidden),
            activation=config.activation,
            dueling=config.dueling,
            conv=conv_spec(config, self.observation_space),
        )

    def check_config(self, config: DQNConfig) -> None:
        super().check_config(config)
        if config.loss not in self._LOSSES:
            raise RLKitError(f"--loss: expected one of {self._LOSSES}, got {config.loss!r}")

    def loss(self, config: DQNConfig, params, target_params, batch, weights, key):
        """``dqn_loss`` with this agent's network."""
        return dqn_loss(params, target_params, self.network(config).apply, config, batch, weights)

    def loss_metrics(self, per_item: chex.Array, q_taken: chex.Array) -> dict:
        return {"q_mean": jnp.mean(q_taken), "td_abs_mean": jnp.mean(jnp.abs(per_item))}


register_agent(DQN)
