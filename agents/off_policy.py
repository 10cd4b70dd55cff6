"""The off-policy base that DQN (and the Q-learning family, SAC, TD3, DDPG) build on.

An off-policy agent stores every transition in a replay buffer (``rlkit.replay``: per env,
time-major, so a sample can take ``n_step`` consecutive steps of one env) and learns from batches
sampled from it. ``OffPolicyAgent.update`` does the part they all share; one call on a rollout
``[T, N]``:

1. writes the rollout into the buffer (``replay_steps`` chooses the stored fields and dtypes);
2. runs ``gradient_steps`` learner steps (``lax.scan``), each on ``batch_size`` windows of
   ``n_step`` steps, sampled uniformly or, with ``prioritized``, proportionally to
   ``priority^priority_exponent`` with importance weights ``(N P(i))^-beta / max`` (Schaul et al.,
   2016, https://arxiv.org/abs/1511.05952), beta annealed from ``priority_beta_start`` to 1;
   the agent's ``learner_step`` computes the loss and applies its optimiser step(s);
3. every ``target_update_interval`` learner steps moves the target parameters towards the online
   ones, ``target <- tau * online + (1 - tau) * target`` (``target_update``; ``tau = 1`` copies);
4. with ``prioritized``, sets the sampled windows' priorities to ``|td| + priority_eps``.

Before ``learning_starts`` env steps (and until the buffer holds a full window) the learner steps
are computed but masked out with ``jnp.where``, so the program is the same for every seed in a
vmap. A subclass implements ``learner_init``, ``learner_step``, ``act``, ``policy_params`` and
``policy``, and may override ``replay_steps``, ``target_update`` and ``extra_metrics``.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import chex
import jax
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
    hyperparameter,
    static_field,
    training_rewards,
)
from rlkit import replay
from rlkit.errors import RLKitError

__all__ = [
    "OffPolicyAgent",
    "OffPolicyConfig",
    "OffPolicyState",
    "bootstrap_obs",
    "epsilon_greedy_actions",
    "n_step_window",
    "select_tree",
]


@struct.dataclass
class OffPolicyConfig(BaseConfig):
    """Fields every replay-based agent has. Traced fields can be vmapped over."""

    total_timesteps: int = static_field(100_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(4, low=1, split=True, divisible=True)
    """Parallel environments per seed."""
    rollout_length: int = static_field(64, low=1)
    """Env steps each env takes between two updates (the train frequency is num_envs * this)."""
    learning_rate: float = hyperparameter(1e-3, low=0.0, low_open=True)
    """Adam step size."""
    anneal_lr: bool = static_field(False)
    """Anneal the step size linearly to 0 over the run (constant within an update)."""
    adam_eps: float = hyperparameter(1e-8, low=0.0)
    """Adam's epsilon (numerical stability term of the denominator)."""
    max_grad_norm: float = hyperparameter(10.0, low=0.0, low_open=True)
    """Clip the gradient to this global norm (optax.clip_by_global_norm)."""
    gamma: float = hyperparameter(0.99, low=0.0, high=1.0)
    """Discount factor."""
    batch_size: int = static_field(64, low=1, split=True, divisible=True)
    """Windows sampled from the replay buffer per gradient step."""
    buffer_size: int = static_field(100_000, low=1, split=True)
    """Replay capacity in transitions per seed (each env keeps buffer_size // num_envs)."""
    learning_starts: int = hyperparameter(1000, low=0, split=True)
    """Env steps of uniformly random play before gradient steps begin."""
    gradient_steps: int = static_field(128, low=1)
    """Gradient steps per update (per rollout)."""
    target_update_interval: int = hyperparameter(16, low=1)
    """Gradient steps between target-network updates."""
    tau: float = hyperparameter(0.1, low=0.0, low_open=True, high=1.0)
    """Polyak step of a target update: 1.0 copies the online network."""
    n_step: int = static_field(3, low=1)
    """Rewards summed before bootstrapping (stopping early at episode ends)."""
    prioritized: bool = static_field(False)
    """Proportional prioritised replay instead of uniform sampling (O(buffer) per gradient step)."""
    priority_exponent: float = hyperparameter(0.6, low=0.0)
    """Prioritised replay alpha: P(i) proportional to priority^alpha."""
    priority_beta_start: float = hyperparameter(0.4, low=0.0, high=1.0)
    """Importance-weight exponent at the start; annealed linearly to 1 over training."""
    priority_eps: float = hyperparameter(1e-6, low=0.0, low_open=True)
    """Added to |TD error| to form a priority, so no window gets probability 0."""


class OffPolicyState(NamedTuple):
    """Everything a replay-based agent carries between updates."""

    learner: Any  # the agent's parameters, target parameters and optimiser state(s)
    buffer: replay.ReplayState
    env_steps: chex.Array  # int32: env steps stored so far (summed over envs)
    num_updates: chex.Array  # int32: learner steps applied (after learning_starts)


def select_tree(pred: chex.Array, on_true: Any, on_false: Any) -> Any:
    """``jnp.where(pred, a, b)`` leaf by leaf over two pytrees of the same structure."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def n_step_window(
    reward: chex.Array, terminated: chex.Array, truncated: chex.Array, gamma: chex.Numeric
) -> tuple[chex.Array, chex.Array, chex.Array]:
    """The n-step reward sum, bootstrap discount and bootstrap step of replay windows.

    A window of ``n`` steps (the last axis) stops after its first step that ended an episode;
    with ``K`` the number of steps kept and ``j = K - 1`` the last of them:

        reward_sum = sum_{k<K} gamma^k r_k
        discount = gamma^K (1 - terminated_j)

    so the target is ``reward_sum + discount * V(next_obs_j)``: a truncated step still
    bootstraps, a terminated one does not. Every n-step agent's target goes through it (DQN's
    ``td_errors`` too), so the target networks run on one observation per window
    (``bootstrap_obs``).

    Args:
      reward: rewards, float ``[..., n]``.
      terminated: whether each step terminated its episode, bool or 0/1 ``[..., n]``.
      truncated: whether each step was cut by a time limit, bool or 0/1 ``[..., n]``.
      gamma: the discount factor, a scalar.

    Returns:
      ``(reward_sum [...], discount [...], last [...])``, ``last`` (int32) being ``j``.
    """
    n = reward.shape[-1]
    terminated = terminated.astype(bool)
    ended = terminated | truncated.astype(bool)
    last = jnp.where(jnp.any(ended, axis=-1), jnp.argmax(ended, axis=-1), n - 1).astype(jnp.int32)
    steps = jax.lax.broadcasted_iota(jnp.int32, reward.shape, reward.ndim - 1)
    gamma = jnp.asarray(gamma, reward.dtype)
    powers = gamma ** steps.astype(reward.dtype)
    reward_sum = jnp.sum(jnp.where(steps <= last[..., None], powers * reward, 0.0), axis=-1)
    terminal = jnp.take_along_axis(terminated, last[..., None], axis=-1)[..., 0]
    discount = gamma ** (last + 1).astype(reward.dtype) * (1.0 - terminal.astype(reward.dtype))
    return reward_sum, discount, last


def bootstrap_obs(next_obs: chex.Array, last: chex.Array) -> chex.Array:
    """``next_obs[b, last[b]]`` of windows ``next_obs [B, L, ...]``: each window's ``s'``."""
    return jax.vmap(lambda o, j: o[j])(next_obs, last)


def epsilon_greedy_actions(q: chex.Array, eps: chex.Numeric, key: chex.PRNGKey) -> chex.Array:
    """Epsilon-greedy actions ``[N]`` (int32) for action values ``q [N, A]``, one key per row."""
    keys = jax.random.split(key, q.shape[0])
    actions = jax.vmap(rlkit.epsilon_greedy_sample, in_axes=(0, 0, None))(keys, q, eps)
    return actions.astype(jnp.int32)


def priority_beta(config: OffPolicyConfig, env_steps: chex.Array) -> chex.Array:
    """Importance-weight exponent: linear from ``priority_beta_start`` to 1 over training."""
    return optax.linear_schedule(config.priority_beta_start, 1.0, config.total_timesteps)(env_steps)


class OffPolicyAgent(Agent):
    """Base of replay-based agents; see the module docstring for ``update``."""

    Config = OffPolicyConfig

    def check_config(self, config: OffPolicyConfig) -> None:
        """The base checks, then the buffer against the rollout, the window and the batch."""
        super().check_config(config)
        capacity = config.buffer_size // config.num_envs
        if capacity < max(config.rollout_length, config.n_step):
            raise RLKitError(
                f"--buffer-size: expected at least num_envs * max(rollout_length, n_step) = "
                f"{config.num_envs * max(config.rollout_length, config.n_step)}, "
                f"got {config.buffer_size}"
            )
        if config.batch_size > config.buffer_size:
            raise RLKitError(
                f"--batch-size: expected at most --buffer-size ({config.buffer_size}), "
                f"got {config.batch_size}"
            )

    def grad_steps_per_update(self, config: OffPolicyConfig) -> int:
        return config.gradient_steps

    # -- hooks ---------------------------------------------------------------------------------

    def observation_dtype(self) -> Any:
        """The dtype observations are stored in: the space's own for images, else float32."""
        if len(self.observation_space.shape) == 3:
            return np.dtype(self.observation_space.dtype)
        return jnp.float32

    def action_dtype(self) -> Any:
        return jnp.int32 if not hasattr(self.action_space, "low") else jnp.float32

    def replay_steps(self, rollout: Transition) -> dict:
        """The fields of a rollout ``[T, N, ...]`` that go into the buffer, as stored."""
        obs_dtype = self.observation_dtype()
        return {
            "obs": rollout.obs.astype(obs_dtype),
            "action": rollout.action.astype(self.action_dtype()),
            "reward": rollout.reward.astype(jnp.float32),
            "terminated": rollout.terminated.astype(jnp.bool_),
            "truncated": rollout.truncated.astype(jnp.bool_),
            "next_obs": rollout.next_obs.astype(obs_dtype),
        }

    def replay_example(self) -> dict:
        """One stored step (shapes and dtypes), for the buffer's layout."""
        obs = jnp.zeros(self.observation_space.shape, self.observation_dtype())
        action = jnp.zeros(tuple(getattr(self.action_space, "shape", ())), self.action_dtype())
        one = Transition(obs[None, None], action[None, None], jnp.zeros((1, 1)),
                         jnp.zeros((1, 1), bool), jnp.zeros((1, 1), bool), obs[None, None], {})
        return jax.tree.map(lambda x: x[0, 0], self.replay_steps(one))

    @abc.abstractmethod
    def learner_init(self, config: OffPolicyConfig, key: chex.PRNGKey) -> Any:
        """The learner state: parameters, target parameters and optimiser state(s)."""

    @abc.abstractmethod
    def learner_step(
        self,
        config: OffPolicyConfig,
        learner: Any,
        batch: dict,
        weights: chex.Array,
        key: chex.PRNGKey,
    ) -> tuple[Any, chex.Array, dict]:
        """One learning step on a batch of windows.

        Args:
          config: the config.
          learner: the learner state.
          batch: dict of ``[B, n_step, ...]`` arrays (the fields of ``replay_steps``).
          weights: ``[B]`` importance weights (ones without prioritised replay).
          key: randomness for the step (target noise, sampled actions, ...).

        Returns:
          ``(learner, td [B], metrics)``: ``|td|`` sets new priorities; metrics are scalars.
        """

    def target_update(self, config: OffPolicyConfig, learner: Any) -> Any:
        """Polyak step of the target parameters: ``learner.target_params`` towards
        ``learner.params`` by ``config.tau`` (a learner NamedTuple with both fields)."""
        return learner._replace(
            target_params=optax.incremental_update(
                learner.params, learner.target_params, config.tau
            )
        )

    def extra_metrics(self, config: OffPolicyConfig, state: OffPolicyState) -> dict:
        """Metrics added to every update's (for example DQN's epsilon)."""
        return {}

    # -- pure functions ------------------------------------------------------------------------

    def init(self, config: OffPolicyConfig, key: chex.PRNGKey) -> OffPolicyState:
        buffer = replay.init(
            self.replay_example(), config.buffer_size // config.num_envs, config.num_envs
        )
        return OffPolicyState(
            learner=self.learner_init(config, key),
            buffer=buffer,
            env_steps=jnp.zeros((), jnp.int32),
            num_updates=jnp.zeros((), jnp.int32),
        )

    def _gradient_step(self, config: OffPolicyConfig, learning: chex.Array, carry, key):
        learner, buffer, num_updates, env_steps = carry
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
        new_learner, td, metrics = self.learner_step(
            config, learner, sample.experience, weights, jax.random.fold_in(key, 1)
        )
        learner = select_tree(learning, new_learner, learner)
        num_updates = num_updates + learning.astype(jnp.int32)
        sync = learning & (num_updates % config.target_update_interval == 0)
        learner = select_tree(sync, self.target_update(config, learner), learner)
        if config.prioritized:
            new_buffer = replay.update_priorities(
                buffer, sample.time_index, sample.env_index, jnp.abs(td) + config.priority_eps
            )
            buffer = buffer._replace(  # select the priorities only, not the stored data
                priorities=jnp.where(learning, new_buffer.priorities, buffer.priorities),
                max_priority=jnp.where(learning, new_buffer.max_priority, buffer.max_priority),
            )
        return (learner, buffer, num_updates, env_steps), metrics

    def update(
        self,
        config: OffPolicyConfig,
        state: OffPolicyState,
        rollout: Transition,
        key: chex.PRNGKey,
    ) -> tuple[OffPolicyState, dict]:
        """Store the rollout, then ``gradient_steps`` masked learner steps (module docstring)."""
        rewards = training_rewards(config, rollout.reward)
        buffer = replay.add(state.buffer, self.replay_steps(rollout._replace(reward=rewards)))
        env_steps = state.env_steps + rollout.reward.shape[0] * rollout.reward.shape[1]
        learning = (env_steps >= config.learning_starts) & replay.can_sample(buffer, config.n_step)
        carry = (state.learner, buffer, state.num_updates, env_steps)
        keys = jax.random.split(key, self.grad_steps_per_update(config))
        carry, metrics = jax.lax.scan(
            lambda c, k: self._gradient_step(config, learning, c, k),
            carry,
            keys,
            unroll=bool(config.unroll_updates),
        )
        learner, buffer, num_updates, _ = carry
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics = {k: jnp.where(learning, v, 0.0) for k, v in metrics.items()}
        metrics.update(self.extra_metrics(config, state))
        metrics["learning"] = learning.astype(jnp.float32)
        return OffPolicyState(learner, buffer, env_steps, num_updates), metrics
