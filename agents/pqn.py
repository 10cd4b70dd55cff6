"""PQN: parallelised Q-learning with LayerNorm and Q(lambda), no replay buffer, no target network.

"Simplifying Deep Temporal Difference Learning", Gallici et al. (2024),
https://arxiv.org/abs/2407.04811: many parallel envs decorrelate the data that a replay buffer
would, and LayerNorm in the Q-network keeps TD learning stable without a target network. Peng's
Q(lambda) returns (Peng and Williams, 1996) are computed over each rollout, and time-limit
truncations bootstrap (Pardo et al., 2018, https://arxiv.org/abs/1712.00378).

PQN is rollout-based like PPO. One ``update`` call on a rollout ``[T, N]`` of ``N`` parallel envs:

1. computes the action values of every step's true next observation ``s'_t`` (the final one at
   an episode end) with the current network, and per env the Q(lambda) returns
   (``rlkit.q_lambda_from_rollout``, stopped gradients)

       G_t = r_t + gamma (1 - terminated_t) B_t,
       B_t = max_a Q(s'_t, a)                                    if done_t or t = T - 1,
       B_t = (1 - lambda) max_a Q(s'_t, a) + lambda G_{t+1}       otherwise,

   so a terminated step does not bootstrap, a truncated one bootstraps on its final
   observation, and no return crosses an episode boundary;
2. runs ``num_epochs`` shuffled passes over the ``T * N`` samples, ``num_minibatches``
   minibatches each (``agents.base.minibatch_epochs``), with one optimiser step per minibatch on

       L = mean_i 0.5 (Q(s_i, a_i) - G_i)^2,

   the gradient clipped to global norm ``max_grad_norm`` (``agents.base.make_optimizer``, RAdam or
   Adam, the learning rate optionally annealed to 0);
3. advances the env-step counter that the exploration rate follows.

Actions are epsilon-greedy; epsilon decays linearly from ``exploration_initial_eps`` to
``exploration_final_eps`` over ``exploration_fraction`` of the run and is constant within a
rollout. The Q-network is an MLP (vector observations) or a CNN (images) whose hidden layers are
layer-normalised before their activations (``layer_norm``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
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
    minibatch_epochs,
    static_field,
    training_rewards,
)
from agents.networks import QNetwork, activation_fn, conv_spec
from agents.presets import per_minatar_game
from agents.registry import register_agent
from rlkit.errors import RLKitError

__all__ = ["PQN", "PQNBatch", "PQNConfig", "PQNState", "pqn_epsilon", "pqn_loss", "pqn_targets"]


@struct.dataclass
class PQNConfig(BaseConfig):
    """PQN hyperparameters. Traced fields can be vmapped over; static fields fix the program."""

    total_timesteps: int = static_field(500_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(16, low=1, split=True, divisible=True)
    """Parallel environments per seed (PQN's decorrelation comes from many of them)."""
    rollout_length: int = static_field(128, low=1)
    """Env steps each env takes between two updates (the Q(lambda) horizon)."""
    num_epochs: int = static_field(4, low=1)
    """Passes over each rollout."""
    num_minibatches: int = static_field(16, low=1)
    """Minibatches per pass; num_envs * rollout_length must be divisible by it."""
    learning_rate: float = hyperparameter(3e-4, low=0.0, low_open=True)
    """Initial optimiser step size."""
    anneal_lr: bool = static_field(False)
    """Anneal the step size linearly to 0 over the run (constant within an update)."""
    optimizer: Literal["radam", "adam"] = static_field("radam")
    """Optimiser: 'radam' (rectified Adam, as PQN uses) or 'adam'."""
    adam_eps: float = hyperparameter(1e-8, low=0.0)
    """Epsilon of the optimiser's denominator."""
    max_grad_norm: float = hyperparameter(10.0, low=0.0, low_open=True)
    """Clip the gradient to this global norm (optax.clip_by_global_norm)."""
    gamma: float = hyperparameter(0.99, low=0.0, high=1.0)
    """Discount factor."""
    q_lambda: float = hyperparameter(0.9, low=0.0, high=1.0)
    """Q(lambda) mixing: 0 is the one-step Q-learning target, 1 the return to the rollout's end."""
    exploration_fraction: float = static_field(0.2, low=0.0, high=1.0)
    """Fraction of total_timesteps over which epsilon decays linearly."""
    exploration_initial_eps: float = hyperparameter(1.0, low=0.0, high=1.0)
    """Epsilon at the start of the decay."""
    exploration_final_eps: float = hyperparameter(0.05, low=0.0, high=1.0)
    """Epsilon after the decay (also the sampling policy's epsilon)."""
    hidden: tuple[int, ...] = static_field((128, 128))
    """Hidden layer widths of the Q-network (vector observations)."""
    activation: str = static_field("relu")
    """Hidden activation: relu, tanh, elu, gelu or silu."""
    layer_norm: bool = static_field(True)
    """Layer-normalise the Q-network's hidden layers before their activations."""


class PQNState(NamedTuple):
    """Everything PQN carries between updates."""

    params: Any
    opt_state: Any
    env_steps: chex.Array  # int32: env steps taken so far (summed over envs); epsilon follows it


class PQNBatch(NamedTuple):
    """A flat batch of samples ``[B, ...]`` for the loss."""

    obs: chex.Array
    action: chex.Array  # int32 action indices
    target: chex.Array  # Q(lambda) returns, gradients stopped


# --------------------------------------------------------------------------------------------------
# Building blocks (top-level so tests and other agents can reuse them)
# --------------------------------------------------------------------------------------------------


def pqn_epsilon(config: PQNConfig, env_steps: chex.Array) -> chex.Array:
    """Exploration rate after ``env_steps``: linear from the initial to the final epsilon over
    ``exploration_fraction * total_timesteps`` steps, then constant."""
    schedule = optax.linear_schedule(
        config.exploration_initial_eps,
        config.exploration_final_eps,
        max(1, int(config.exploration_fraction * config.total_timesteps)),
    )
    return schedule(env_steps)


def pqn_targets(apply_fn: Any, params: Any, config: PQNConfig, rollout: Transition) -> chex.Array:
    """Q(lambda) returns ``[T, N]`` of a rollout, gradients stopped.

    Args:
      apply_fn: ``apply_fn(params, obs [..., *obs_shape]) -> Q [..., A]``.
      params: network parameters (those that collected the rollout).
      config: the PQN config (``gamma``, ``q_lambda``).
      rollout: a time-major ``Transition`` ``[T, N, ...]`` whose ``next_obs`` is each step's true
        next observation (the final one at an episode end).
    """
    next_q = jax.lax.stop_gradient(apply_fn(params, rollout.next_obs))  # [T, N, A]
    returns = jax.vmap(rlkit.q_lambda_from_rollout, in_axes=(1, 1, 1, 1, None, None), out_axes=1)(
        training_rewards(config, rollout.reward).astype(next_q.dtype),
        next_q,
        rollout.terminated,
        rollout.truncated,
        config.gamma,
        config.q_lambda,
    )
    return jax.lax.stop_gradient(returns)


def pqn_loss(apply_fn: Any, params: Any, batch: PQNBatch) -> tuple[chex.Array, chex.Array]:
    """``mean(0.5 (Q(s, a) - G)^2)`` of a batch; returns ``(loss, Q(s, a) [B])``."""
    q_taken = rlkit.batched_index(apply_fn(params, batch.obs), batch.action)
    return jnp.mean(rlkit.l2_loss(q_taken, batch.target)), q_taken


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


class PQN(Agent):
    """Parallelised Q-learning for discrete actions (see the module docstring for the update)."""

    name = "pqn"
    Config = PQNConfig
    #: Per-env settings; each entry holds only what differs from the ``PQNConfig`` defaults.
    #: How they were chosen, and what they reach, is in docs/benchmarks.md.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # 16 envs x 128 steps as rejax's PQN, with 8 minibatches x 4 epochs (32 steps a rollout
        # instead of 80), 64x64 layers and lr 1e-3, so the CLI default trains in seconds.
        "CartPole-v1": {
            "total_timesteps": 196_608,
            "num_minibatches": 8,
            "hidden": (64, 64),
            "learning_rate": 1e-3,
        },
        # The PQNConfig defaults (500k steps, 16 envs x 128 steps, 16 minibatches x 4 epochs,
        # 128x128, RAdam lr 3e-4); the CartPole settings left two seeds in five at -500.
        "Acrobot-v1": {},
        # The defaults over 1M steps, with lr 1e-3 and gamma 0.98 (a 2x2 sweep of lr and gamma,
        # 3 seeds each: 11 of the 12 runs >= -110; docs/benchmarks.md).
        "MountainCar-v0": {"total_timesteps": 1_000_000, "learning_rate": 1e-3, "gamma": 0.98},
        # MinAtar (every game, both action sets): the MinAtar paper's network (layer-normalised),
        # with the settings of the PQN paper's MinAtar runs (Gallici et al., 2024; its public
        # configuration): 128 envs x 32 steps, 2 epochs of 32 minibatches, Adam 5e-4 annealed,
        # lambda 0.65, epsilon 1 -> 0.05 over the first 10%; 5M steps (the MinAtar paper's budget).
        **per_minatar_game(
            {
                "total_timesteps": 5_000_000,
                "num_envs": 128,
                "rollout_length": 32,
                "num_epochs": 2,
                "num_minibatches": 32,
                "optimizer": "adam",
                "learning_rate": 5e-4,
                "anneal_lr": True,
                "q_lambda": 0.65,
                "exploration_fraction": 0.1,
            }
        ),
    }

    _OPTIMIZERS = ("radam", "adam")

    @property
    def num_actions(self) -> int:
        return self.action_space.n

    def network(self, config: PQNConfig) -> QNetwork:
        return QNetwork(
            num_actions=self.num_actions,
            hidden=tuple(config.hidden),
            activation=config.activation,
            conv=conv_spec(config, self.observation_space),
            layer_norm=config.layer_norm,
        )

    def grad_steps_per_update(self, config: PQNConfig) -> int:
        return config.num_epochs * config.num_minibatches

    def optimizer(self, config: PQNConfig) -> optax.GradientTransformation:
        """``agents.base.make_optimizer`` with RAdam or Adam."""
        if config.optimizer == "radam":
            scale = optax.scale_by_radam(eps=config.adam_eps)
        else:
            scale = optax.scale_by_adam(eps=config.adam_eps)
        return make_optimizer(config, self.grad_steps_per_update(config), scale)

    def check_config(self, config: PQNConfig) -> None:
        super().check_config(config)
        if config.optimizer not in self._OPTIMIZERS:
            raise RLKitError(
                f"--optimizer: expected one of {self._OPTIMIZERS}, got {config.optimizer!r}"
            )
        if config.steps_per_update % config.num_minibatches:
            raise RLKitError(
                f"--num-minibatches: expected a divisor of num_envs * rollout_length "
                f"({config.steps_per_update}), got {config.num_minibatches}"
            )
        activation_fn(config.activation)
        conv_spec(config, self.observation_space)

    # -- pure functions --------------------------------------------------------------------------

    def init(self, config: PQNConfig, key: chex.PRNGKey) -> PQNState:
        dummy_obs = jnp.zeros((1,) + tuple(self.observation_space.shape), jnp.float32)
        params = self.network(config).init(key, dummy_obs)
        return PQNState(params, self.optimizer(config).init(params), jnp.zeros((), jnp.int32))

    def _epsilon_greedy(self, q: chex.Array, eps: chex.Numeric, key: chex.PRNGKey) -> chex.Array:
        keys = jax.random.split(key, q.shape[0])
        actions = jax.vmap(rlkit.epsilon_greedy_sample, in_axes=(0, 0, None))(keys, q, eps)
        return actions.astype(jnp.int32)

    def act(self, config: PQNConfig, state: PQNState, obs: chex.Array, key: chex.PRNGKey):
        """Epsilon-greedy actions; epsilon follows ``state.env_steps``, which ``update`` advances,
        so it is constant within a rollout."""
        q = self.network(config).apply(state.params, obs)
        return self._epsilon_greedy(q, pqn_epsilon(config, state.env_steps), key), {}

    def update(
        self, config: PQNConfig, state: PQNState, rollout: Transition, key: chex.PRNGKey
    ) -> tuple[PQNState, dict]:
        """Q(lambda) returns of the rollout, then ``num_epochs`` x ``num_minibatches`` steps."""
        chex.assert_rank(rollout.reward, 2)
        apply_fn = self.network(config).apply
        targets = pqn_targets(apply_fn, state.params, config, rollout)
        t_len, n_envs = rollout.reward.shape

        def flat(x):
            return x.reshape((t_len * n_envs,) + x.shape[2:])

        batch = PQNBatch(
            obs=flat(rollout.obs),
            action=flat(rollout.action.astype(jnp.int32)),
            target=flat(targets),
        )
        optimizer = self.optimizer(config)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            (loss, q_taken), grads = jax.value_and_grad(
                lambda p: pqn_loss(apply_fn, p, minibatch), has_aux=True
            )(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            metrics = {
                "loss": loss,
                "q_mean": jnp.mean(q_taken),
                "grad_norm": optax.tree.norm(grads),
            }
            return (optax.apply_updates(params, updates), opt_state), metrics

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
        metrics["target_mean"] = jnp.mean(targets)
        metrics["epsilon"] = pqn_epsilon(config, state.env_steps)
        metrics["learning_rate"] = current_learning_rate(
            config, self.grad_steps_per_update(config), state.opt_state
        )
        env_steps = state.env_steps + jnp.asarray(t_len * n_envs, jnp.int32)
        return PQNState(params, opt_state, env_steps), metrics

    def policy_params(self, state: PQNState) -> Any:
        return state.params

    def policy(
        self,
        config: PQNConfig,
        policy_params: Any,
        obs: chex.Array,
        key: chex.PRNGKey,
        deterministic: bool = True,
    ) -> chex.Array:
        q = self.network(config).apply(policy_params, obs)
        if deterministic:
            return jnp.argmax(q, axis=-1).astype(jnp.int32)
        return self._epsilon_greedy(q, config.exploration_final_eps, key)


register_agent(PQN)
