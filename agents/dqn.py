"""DQN: Q-learning from a replay buffer, with Double-Q targets, n-step returns and a target network.

"Human-level control through deep reinforcement learning", Mnih et al. (2015),
https://www.nature.com/articles/nature14236, with the usual refinements:
Double Q-learning targets (van Hasselt, Guez and Silver, 2016, https://arxiv.org/abs/1509.06461),
an optional dueling head (Wang et al., 2016, https://arxiv.org/abs/1511.06581), n-step returns
(Sutton and Barto, section 7.1), optional proportional prioritised replay (Schaul et al., 2016,
https://arxiv.org/abs/1511.05952), and bootstrapping at time-limit truncations (Pardo et al., 2018,
https://arxiv.org/abs/1712.00378).

It is an ``agents.off_policy.OffPolicyAgent``: the base stores rollouts in the replay buffer and runs
``gradient_steps`` masked learner steps with target updates and optional prioritised replay. A
DQN learner step is one Adam step on

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

from typing import Any, ClassVar, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

import rlkit
from agents.base import current_learning_rate, hyperparameter, make_optimizer, static_field
from agents.networks import QNetwork, activation_fn, conv_spec
from agents.off_policy import OffPolicyAgent, OffPolicyConfig, OffPolicyState
from agents.presets import per_minatar_game
from agents.registry import register_agent
from rlkit.errors import RLKitError

__all__ = ["DQN", "DQNConfig", "DQNLearner", "dqn_loss", "td_errors", "epsilon"]


@struct.dataclass
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters (the replay fields are ``OffPolicyConfig``'s). Traced fields can be
    vmapped over; static fields fix the program."""

    exploration_fraction: float = static_field(0.16, low=0.0, high=1.0)
    """Fraction of total_timesteps over which epsilon decays linearly."""
    exploration_initial_eps: float = hyperparameter(1.0, low=0.0, high=1.0)
    """Epsilon at the start of the decay."""
    exploration_final_eps: float = hyperparameter(0.04, low=0.0, high=1.0)
    """Epsilon after the decay."""
    double_q: bool = static_field(True)
    """Double-Q targets: the online network picks the bootstrap action, the target values it."""
    dueling: bool = static_field(False)
    """Dueling head: Q = V + A - mean(A)."""
    loss: str = static_field("huber")
    """TD loss: 'huber' or 'l2'."""
    huber_delta: float = hyperparameter(1.0, low=0.0, low_open=True)
    """Where the Huber loss turns from quadratic to linear."""
    hidden: tuple[int, ...] = static_field((64, 64))
    """Hidden layer widths of the Q-network (vector observations)."""
    activation: str = static_field("relu")
    """Hidden activation: relu, tanh, elu, gelu or silu."""


class DQNLearner(NamedTuple):
    """The learner state of DQN inside ``OffPolicyState.learner``."""

    params: Any
    target_params: Any
    opt_state: Any


# --------------------------------------------------------------------------------------------------
# Building blocks (top-level so tests and other agents can reuse them)
# --------------------------------------------------------------------------------------------------


def epsilon(config: DQNConfig, env_steps: chex.Array) -> chex.Array:
    """Exploration rate after ``env_steps``: 1 before ``learning_starts``, then linear decay."""
    schedule = optax.linear_schedule(
        config.exploration_initial_eps,
        config.exploration_final_eps,
        max(1, int(config.exploration_fraction * config.total_timesteps)),
    )
    return jnp.where(env_steps < config.learning_starts, 1.0, schedule(env_steps))


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
    next_obs = batch["next_obs"][:, :n]
    q_t_value = jax.lax.stop_gradient(apply_fn(target_params, next_obs))  # [B, n, A]
    q_t_selector = jax.lax.stop_gradient(apply_fn(params, next_obs)) if config.double_q else None
    reward = batch["reward"][:, :n]
    terminated = batch["terminated"][:, :n]
    # discount_t = gamma * (1 - terminated); a truncated step still bootstraps on Q(next_obs).
    discount = config.gamma * (1.0 - terminated.astype(q_tm1.dtype))

    if n == 1:
        if config.double_q:
            td = jax.vmap(rlkit.double_q_learning)(
                q_tm1, action, reward[:, 0], discount[:, 0], q_t_value[:, 0], q_t_selector[:, 0]
            )
        else:
            td = jax.vmap(rlkit.q_learning)(
                q_tm1, action, reward[:, 0], discount[:, 0], q_t_value[:, 0]
            )
        return td, q_taken

    # n > 1: the bootstrap value of every step of the window, then rlkit's n-step return, which
    # stops at the first terminated (no bootstrap) or truncated (bootstrap on Q(s')) step.
    if config.double_q:
        next_values = rlkit.batched_index(q_t_value, jnp.argmax(q_t_selector, axis=-1))
    else:
        next_values = jnp.max(q_t_value, axis=-1)
    gamma = jnp.asarray(config.gamma, reward.dtype)
    returns = jax.vmap(
        lambda r, v, te, tr: rlkit.n_step_returns_from_rollout(
            r, v, te, tr, gamma, n, stop_target_gradients=True
        )
    )(reward, next_values, terminated, batch["truncated"][:, :n])
    return returns[:, 0] - q_taken, q_taken


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


class DQN(OffPolicyAgent):
    """Deep Q-network agent for discrete actions (see the module docstring for the update)."""

    name = "dqn"
    Config = DQNConfig
    #: Per-env settings; each entry holds only what differs from the ``DQNConfig`` defaults.
    #: How they were chosen, and what they reach, is in docs/benchmarks.md.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {
            "total_timesteps": 50_000,
            "learning_rate": 2e-3,
            "anneal_lr": True,
            "batch_size": 128,
        },
        "Acrobot-v1": {
            "total_timesteps": 50_000,
            "buffer_size": 50_000,
            "tau": 1.0,
            "target_update_interval": 128,
            "exploration_fraction": 0.12,
            "exploration_final_eps": 0.05,
        },
        # After RL Zoo's MountainCar DQN, with 3-step returns and 128x128 layers.
        "MountainCar-v0": {
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
        },
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
                "batch_size": 64,
                "buffer_size": 100_000,
                "learning_starts": 5_000,
                "learning_rate": 1e-4,
                "adam_eps": 1.5e-4,
                "tau": 1.0,
                "target_update_interval": 250,
                "exploration_fraction": 0.02,
                "exploration_final_eps": 0.1,
            }
        ),
    }

    _LOSSES = ("huber", "l2")

    @property
    def num_actions(self) -> int:
        return self.action_space.n

    def network(self, config: DQNConfig) -> QNetwork:
        return QNetwork(
            num_actions=self.num_actions,
            hidden=tuple(config.hidden),
            activation=config.activation,
            dueling=config.dueling,
            conv=conv_spec(config, self.observation_space),
        )

    def optimizer(self, config: DQNConfig) -> optax.GradientTransformation:
        """``agents.base.make_optimizer`` with Adam."""
        return make_optimizer(
            config, self.grad_steps_per_update(config), optax.scale_by_adam(eps=config.adam_eps)
        )

    def check_config(self, config: DQNConfig) -> None:
        super().check_config(config)
        if config.loss not in self._LOSSES:
            raise RLKitError(f"--loss: expected one of {self._LOSSES}, got {config.loss!r}")
        activation_fn(config.activation)
        conv_spec(config, self.observation_space)

    # -- pure functions --------------------------------------------------------------------------

    def learner_init(self, config: DQNConfig, key: chex.PRNGKey) -> DQNLearner:
        dummy_obs = jnp.zeros((1,) + tuple(self.observation_space.shape), jnp.float32)
        params = self.network(config).init(key, dummy_obs)
        return DQNLearner(params, params, self.optimizer(config).init(params))

    def act(self, config: DQNConfig, state: OffPolicyState, obs: chex.Array, key: chex.PRNGKey):
        """Epsilon-greedy actions; epsilon follows ``state.env_steps``, which ``update`` advances,
        so it is constant within a rollout (uniformly random before ``learning_starts``)."""
        q = self.network(config).apply(state.learner.params, obs)
        eps = epsilon(config, state.env_steps)
        keys = jax.random.split(key, obs.shape[0])
        action = jax.vmap(rlkit.epsilon_greedy_sample, in_axes=(0, 0, None))(keys, q, eps)
        return action, {}

    def learner_step(self, config: DQNConfig, learner: DQNLearner, batch, weights, key):
        """One Adam step on ``dqn_loss``."""
        (loss, (td, q_taken)), grads = jax.value_and_grad(dqn_loss, has_aux=True)(
            learner.params, learner.target_params, self.network(config).apply, config, batch,
            weights,
        )
        updates, opt_state = self.optimizer(config).update(grads, learner.opt_state, learner.params)
        params = optax.apply_updates(learner.params, updates)
        metrics = {
            "loss": loss,
            "q_mean": jnp.mean(q_taken),
            "td_abs_mean": jnp.mean(jnp.abs(td)),
            "grad_norm": optax.tree.norm(grads),
            "learning_rate": current_learning_rate(
                config, self.grad_steps_per_update(config), learner.opt_state
            ),
        }
        return DQNLearner(params, learner.target_params, opt_state), td, metrics

    def extra_metrics(self, config: DQNConfig, state: OffPolicyState) -> dict:
        return {"epsilon": epsilon(config, state.env_steps)}

    def policy_params(self, state: OffPolicyState) -> Any:
        return state.learner.params

    def policy(
        self,
        config: DQNConfig,
        policy_params: Any,
        obs: chex.Array,
        key: chex.PRNGKey,
        deterministic: bool = True,
    ) -> chex.Array:
        q = self.network(config).apply(policy_params, obs)
        if deterministic:
            return jnp.argmax(q, axis=-1).astype(jnp.int32)
        keys = jax.random.split(key, obs.shape[0])
        return jax.vmap(rlkit.epsilon_greedy_sample, in_axes=(0, 0, None))(
            keys, q, config.exploration_final_eps
        )


register_agent(DQN)
