"""DQN: Q-learning from a replay buffer, with Double-Q targets, n-step returns and a target network.

"Human-level control through deep reinforcement learning", Mnih et al. (2015),
https://www.nature.com/articles/nature14236, with the usual refinements:
Double Q-learning targets (van Hasselt, Guez and Silver, 2016, https://arxiv.org/abs/1509.06461),
an optional dueling head (Wang et al., 2016, https://arxiv.org/abs/1511.06581), n-step returns
(Sutton and Barto, section 7.1), optional proportional prioritised replay (Schaul et al., 2016,
https://arxiv.org/abs/1511.05952), and bootstrapping at time-limit truncations (Pardo et al., 2018,
https://arxiv.org/abs/1712.00378).

One ``update`` call:

1. writes the rollout ``[T, N]`` into the replay buffer (``rlkit.replay``: per-env, time-major, so a
   sample can take ``n_step`` consecutive steps of one env);
2. runs ``gradient_steps`` Adam steps (``lax.scan``), each on a batch of ``batch_size`` windows:

       y = sum_{k<K} gamma^k r_k + gamma^K (1 - terminated_{K-1}) Q_target(s', argmax_a Q(s', a)),
       s' = next_obs_{K-1}
       loss = mean_i w_i huber(y_i - Q(s_i, a_i))

   where the window stops after ``n_step`` steps or at the first step that ended an episode, ``s'``
   is the true next observation (the final observation at an episode end), and the importance
   weights ``w`` are 1 without prioritised replay. A terminated step does not bootstrap; a truncated
   one bootstraps on ``Q(s')``. With ``double_q=False`` the bootstrap is ``max_a Q_target(s', a)``;
3. moves the target network towards the online one every ``target_update_interval`` gradient steps:
   ``target <- tau * online + (1 - tau) * target`` (``tau=1``: a hard copy).

Before ``learning_starts`` env steps the agent acts uniformly at random and the gradient steps are
computed but masked out (``jnp.where``, so the program is the same for every seed in a vmap).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

import rlkit
from agents.base import Agent, BaseConfig, Transition, static_field
from agents.networks import QNetwork
from agents.registry import register_agent
from rlkit import replay
from rlkit.errors import RLKitError

__all__ = ["DQN", "DQNConfig", "DQNState", "dqn_loss", "td_errors"]


@struct.dataclass
class DQNConfig(BaseConfig):
    """DQN hyperparameters. Traced fields can be vmapped over; static fields fix the program."""

    total_timesteps: int = static_field(100_000)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(4)
    """Parallel environments per seed."""
    rollout_length: int = static_field(64)
    """Env steps each env takes between two updates (the train frequency is num_envs * this)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    anneal_lr: bool = static_field(False)
    """Decay the step size linearly towards 0 over the run's gradient steps."""
    adam_eps: float = 1e-8
    """Adam's epsilon (numerical stability term of the denominator)."""
    max_grad_norm: float = 10.0
    """Clip the gradient to this global norm (optax.clip_by_global_norm)."""
    gamma: float = 0.99
    """Discount factor."""
    batch_size: int = static_field(64)
    """Windows sampled from the replay buffer per gradient step."""
    buffer_size: int = static_field(100_000)
    """Replay capacity in transitions per seed (each env keeps buffer_size // num_envs)."""
    learning_starts: int = 1000
    """Env steps of uniformly random play before gradient steps begin."""
    gradient_steps: int = static_field(128)
    """Gradient steps per update (per rollout)."""
    target_update_interval: int = 16
    """Gradient steps between target-network updates."""
    tau: float = 0.1
    """Polyak step of a target update: 1.0 copies the online network."""
    exploration_fraction: float = static_field(0.16)
    """Fraction of total_timesteps over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of the decay."""
    exploration_final_eps: float = 0.04
    """Epsilon after the decay."""
    double_q: bool = static_field(True)
    """Double-Q targets: the online network picks the bootstrap action, the target values it."""
    dueling: bool = static_field(False)
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = static_field(3)
    """Rewards summed before bootstrapping (stopping early at episode ends)."""
    loss: str = static_field("huber")
    """TD loss: 'huber' or 'l2'."""
    huber_delta: float = 1.0
    """Where the Huber loss turns from quadratic to linear."""
    hidden: tuple[int, ...] = static_field((64, 64))
    """Hidden layer widths of the Q-network."""
    activation: str = static_field("relu")
    """Hidden activation: relu, tanh, elu, gelu or silu."""
    prioritized: bool = static_field(False)
    """Proportional prioritised replay instead of uniform sampling (O(buffer) per gradient step)."""
    priority_exponent: float = 0.6
    """Prioritised replay alpha: P(i) proportional to priority^alpha."""
    priority_beta_start: float = 0.4
    """Importance-weight exponent at the start; annealed linearly to 1 over training."""
    priority_eps: float = 1e-6
    """Added to |TD error| to form a priority, so no window gets probability 0."""


class DQNState(NamedTuple):
    """Everything a DQN learner carries between updates."""

    params: Any
    target_params: Any
    opt_state: Any
    buffer: replay.ReplayState
    env_steps: chex.Array  # int32: env steps stored so far (summed over envs)
    num_updates: chex.Array  # int32: gradient steps applied (after learning_starts)


# --------------------------------------------------------------------------------------------------
# Building blocks (top-level so tests and other agents can reuse them)
# --------------------------------------------------------------------------------------------------


def _network(config: DQNConfig, num_actions: int) -> QNetwork:
    return QNetwork(
        num_actions=num_actions,
        hidden=tuple(config.hidden),
        activation=config.activation,
        dueling=config.dueling,
    )


def _optimizer(config: DQNConfig) -> optax.GradientTransformation:
    learning_rate = config.learning_rate
    if config.anneal_lr:
        learning_rate = optax.linear_schedule(
            config.learning_rate, 0.0, config.num_updates * config.gradient_steps
        )
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adam(learning_rate, eps=config.adam_eps),
    )


def epsilon(config: DQNConfig, env_steps: chex.Array) -> chex.Array:
    """Exploration rate after ``env_steps``: 1 before ``learning_starts``, then linear decay."""
    schedule = optax.linear_schedule(
        config.exploration_initial_eps,
        config.exploration_final_eps,
        max(1, int(config.exploration_fraction * config.total_timesteps)),
    )
    return jnp.where(env_steps < config.learning_starts, 1.0, schedule(env_steps))


def priority_beta(config: DQNConfig, env_steps: chex.Array) -> chex.Array:
    """Importance-weight exponent: linear from ``priority_beta_start`` to 1 over training."""
    return optax.linear_schedule(config.priority_beta_start, 1.0, config.total_timesteps)(env_steps)


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


def _select(pred: chex.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


class DQN(Agent):
    """Deep Q-network agent for discrete actions (see the module docstring for the update)."""

    name = "dqn"
    Config = DQNConfig
    #: Tuned per env (5 seeds each, greedy evaluation after training). The fields not
    #: listed take the ``DQNConfig`` defaults, which are the CartPole settings.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "CartPole-v1": {
            # The final greedy policy of DQN on CartPole is erratic from seed to seed; annealing
            # the step size to 0 and batches of 128 settle it more often (8-seed sets, final
            # policy: 7/8 and 7/8 at >= 475 against 5/8 for lr 1e-3 without annealing). The
            # trainer's evaluations during training then keep each run's best policy.
            "total_timesteps": 50_000,
            "num_envs": 4,
            "rollout_length": 64,  # 256 env steps per update ...
            "gradient_steps": 128,  # ... and 128 gradient steps on batches of 128
            "learning_rate": 2e-3,
            "anneal_lr": True,
            "batch_size": 128,
            "buffer_size": 100_000,
            "learning_starts": 1000,
            "gamma": 0.99,
            "n_step": 3,
            "tau": 0.1,
            "target_update_interval": 16,
            "exploration_fraction": 0.16,
            "exploration_final_eps": 0.04,
            "hidden": (64, 64),
        },
        "Acrobot-v1": {
            "total_timesteps": 50_000,
            "num_envs": 4,
            "rollout_length": 64,
            "gradient_steps": 128,
            "learning_rate": 1e-3,
            "buffer_size": 50_000,
            "learning_starts": 1000,
            "n_step": 3,
            "tau": 1.0,
            "target_update_interval": 128,
            "exploration_fraction": 0.12,
            "exploration_final_eps": 0.05,
            "hidden": (64, 64),
        },
        "MountainCar-v0": {
            # After RL Zoo's MountainCar DQN (lr 4e-3, batch 128, buffer 10k, gamma 0.98, target
            # every 600 env steps, 0.5 gradient steps per env step, epsilon 0.2 -> 0.07), with
            # 3-step returns, 128x128 instead of 256x256, and 200k steps instead of 120k.
            # DQN is erratic here: 15 seeds averaged about -110, one seed in five far worse.
            "total_timesteps": 200_000,
            "num_envs": 4,
            "rollout_length": 64,
            "gradient_steps": 128,
            "learning_rate": 4e-3,
            "batch_size": 128,
            "buffer_size": 10_000,
            "learning_starts": 1000,
            "gamma": 0.98,
            "n_step": 3,
            "tau": 1.0,
            "target_update_interval": 300,
            "exploration_fraction": 0.2,
            "exploration_final_eps": 0.07,
            "hidden": (128, 128),
        },
        "LunarLander-v3": {
            # After RL Zoo's LunarLander DQN (lr 6.3e-4, batch 128, 256x256, gamma 0.99, one
            # gradient step per env step, hard target copy every 250 steps), with 3-step Double-Q
            # returns, a 100k buffer, epsilon 1 -> 0.05 over 20k steps, a linearly annealed step
            # size and 200k steps instead of 100k. Host runner: seeds 0-4 scored 260, 243, 243,
            # 251 and 238 (greedy, 100 episodes each; 78-98% of episodes >= 200), ~330 s each.
            "total_timesteps": 200_000,
            "num_envs": 4,
            "rollout_length": 16,  # 64 env steps per update ...
            "gradient_steps": 64,  # ... and 64 gradient steps on batches of 128
            "learning_rate": 6.3e-4,
            "anneal_lr": True,  # without it the final policy of some seeds degraded
            "batch_size": 128,
            "buffer_size": 100_000,
            "learning_starts": 1000,
            "gamma": 0.99,
            "n_step": 3,
            "tau": 1.0,
            "target_update_interval": 250,
            "exploration_fraction": 0.1,
            "exploration_final_eps": 0.05,
            "hidden": (256, 256),
        },
    }

    _LOSSES = ("huber", "l2")

    @property
    def num_actions(self) -> int:
        return self.action_space.n

    def network(self, config: DQNConfig) -> QNetwork:
        return _network(config, self.num_actions)

    def _check_config(self, config: DQNConfig) -> None:
        if config.loss not in self._LOSSES:
            raise RLKitError(f"dqn: loss must be one of {self._LOSSES}, got {config.loss!r}")
        if config.n_step < 1:
            raise RLKitError(f"dqn: n_step must be >= 1, got {config.n_step}")
        capacity = config.buffer_size // config.num_envs
        if capacity < max(config.rollout_length, config.n_step):
            raise RLKitError(
                f"dqn: buffer_size // num_envs ({capacity}) must be >= rollout_length "
                f"({config.rollout_length}) and n_step ({config.n_step})"
            )

    # -- pure functions --------------------------------------------------------------------------

    def init(self, config: DQNConfig, key: chex.PRNGKey) -> DQNState:
        self._check_config(config)
        dummy_obs = jnp.zeros((1,) + tuple(self.observation_space.shape), jnp.float32)
        params = self.network(config).init(key, dummy_obs)
        example = {
            "obs": jnp.zeros(self.observation_space.shape, jnp.float32),
            "action": jnp.zeros((), jnp.int32),
            "reward": jnp.zeros((), jnp.float32),
            "terminated": jnp.zeros((), jnp.bool_),
            "truncated": jnp.zeros((), jnp.bool_),
            "next_obs": jnp.zeros(self.observation_space.shape, jnp.float32),
        }
        buffer = replay.init(example, config.buffer_size // config.num_envs, config.num_envs)
        return DQNState(
            params=params,
            target_params=params,
            opt_state=_optimizer(config).init(params),
            buffer=buffer,
            env_steps=jnp.zeros((), jnp.int32),
            num_updates=jnp.zeros((), jnp.int32),
        )

    def act(self, config: DQNConfig, state: DQNState, obs: chex.Array, key: chex.PRNGKey):
        """Epsilon-greedy actions; epsilon follows ``state.env_steps``, which ``update`` advances,
        so it is constant within a rollout (uniformly random before ``learning_starts``)."""
        q = self.network(config).apply(state.params, obs)
        eps = epsilon(config, state.env_steps)
        keys = jax.random.split(key, obs.shape[0])
        action = jax.vmap(rlkit.epsilon_greedy_sample, in_axes=(0, 0, None))(keys, q, eps)
        return action, {}

    def _gradient_step(self, config: DQNConfig, learning: chex.Array, carry, key):
        params, target_params, opt_state, buffer, num_updates, env_steps = carry
        apply_fn = self.network(config).apply
        n = config.n_step
        if config.prioritized:
            sample = replay.sample_prioritized(
                buffer, key, config.batch_size, n, config.priority_exponent
            )
            num_items = replay.num_windows(buffer, n) * buffer.num_envs
            weights = replay.importance_weights(
                sample.probability, num_items, priority_beta(config, env_steps)
            )
        else:
            sample = replay.sample(buffer, key, config.batch_size, n)
            weights = jnp.ones((config.batch_size,), jnp.float32)
        (loss, (td, q_taken)), grads = jax.value_and_grad(dqn_loss, has_aux=True)(
            params, target_params, apply_fn, config, sample.experience, weights
        )
        updates, new_opt_state = _optimizer(config).update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        params = _select(learning, new_params, params)
        opt_state = _select(learning, new_opt_state, opt_state)
        num_updates = num_updates + learning.astype(jnp.int32)
        sync = learning & (num_updates % config.target_update_interval == 0)
        target_params = _select(
            sync, optax.incremental_update(params, target_params, config.tau), target_params
        )
        if config.prioritized:
            new_buffer = replay.update_priorities(
                buffer, sample.time_index, sample.env_index, jnp.abs(td) + config.priority_eps
            )
            buffer = buffer._replace(  # select the priorities only, not the stored data
                priorities=jnp.where(learning, new_buffer.priorities, buffer.priorities),
                max_priority=jnp.where(learning, new_buffer.max_priority, buffer.max_priority),
            )
        metrics = {
            "loss": loss,
            "q_mean": jnp.mean(q_taken),
            "td_abs_mean": jnp.mean(jnp.abs(td)),
            "grad_norm": optax.tree.norm(grads),
        }
        return (params, target_params, opt_state, buffer, num_updates, env_steps), metrics

    def update(self, config: DQNConfig, state: DQNState, rollout: Transition, key: chex.PRNGKey):
        steps = {
            "obs": rollout.obs.astype(jnp.float32),
            "action": rollout.action.astype(jnp.int32),
            "reward": rollout.reward.astype(jnp.float32),
            "terminated": rollout.terminated.astype(jnp.bool_),
            "truncated": rollout.truncated.astype(jnp.bool_),
            "next_obs": rollout.next_obs.astype(jnp.float32),
        }
        buffer = replay.add(state.buffer, steps)
        env_steps = state.env_steps + rollout.reward.shape[0] * rollout.reward.shape[1]
        learning = (env_steps >= config.learning_starts) & replay.can_sample(buffer, config.n_step)

        carry = (state.params, state.target_params, state.opt_state, buffer, state.num_updates,
                 env_steps)
        keys = jax.random.split(key, config.gradient_steps)
        carry, metrics = jax.lax.scan(
            lambda c, k: self._gradient_step(config, learning, c, k), carry, keys
        )
        params, target_params, opt_state, buffer, num_updates, _ = carry
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics = {k: jnp.where(learning, v, 0.0) for k, v in metrics.items()}
        metrics["epsilon"] = epsilon(config, state.env_steps)
        metrics["learning"] = learning.astype(jnp.float32)
        new_state = DQNState(params, target_params, opt_state, buffer, env_steps, num_updates)
        return new_state, metrics

    def policy_params(self, state: DQNState) -> Any:
        return state.params

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
