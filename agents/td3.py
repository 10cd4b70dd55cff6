"""TD3: twin delayed deep deterministic policy gradient.

"Addressing Function Approximation Error in Actor-Critic Methods", Fujimoto, van Hoof and Meger
(2018), https://arxiv.org/abs/1802.09477.

It is an ``agents.continuous.ContinuousAgent`` (replay, action scaling, stacked critics, Polyak
targets, n-step windows). The actor is deterministic, ``mu(s) = tanh(f(s))`` in ``[-1, 1]^A``.
One learner step on a batch of windows:

    a' = clip(mu'(s') + clip(sigma~ eps, -c, c), -1, 1),  eps ~ N(0, I)  (target policy smoothing)
    y = sum_{k<K} gamma^k r_k + gamma^K (1 - terminated_{K-1}) min_i Q'_i(s', a')  (clipped double Q)
    L_Q = sum_i mean_b w_b (Q_i(s, a) - y)^2 / 2                           (critics, every step)
    L_mu = -mean_b Q_1(s, mu(s))                         (actor, every policy_delay-th step)

with ``sigma~ = target_policy_noise`` and ``c = target_noise_clip``; ``mu'`` and ``Q'`` are
Polyak copies, updated every ``target_update_interval`` steps (``policy_delay`` by default, as
in the paper). Exploration adds Gaussian noise ``N(0, action_noise^2)`` to ``mu(s)``
(``rlkit.add_gaussian_noise``) or Ornstein-Uhlenbeck noise (``exploration="ou"``,
``rlkit.ornstein_uhlenbeck_noise``: ``n_t = (1 - ou_damping) n_{t-1} + action_noise z_t``,
reset to 0 when an episode ends), then clips to ``[-1, 1]``; all noise is in the actor's
``[-1, 1]`` units, i.e. relative to half the Box's width. The OU noise of each env is part of
the agent state (``ContinuousLearner.noise``); because ``act`` does not return a new state, it
is carried through the rollout's extras and stored by ``update``, which is why OU exploration
needs ``rollout_length`` 1. The evaluation policy is ``mu(s)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.base import Transition, hyperparameter, static_field
from agents.continuous import ContinuousAgent, ContinuousConfig, ContinuousLearner
from agents.networks import DeterministicActor
from agents.registry import register_agent
from rlkit.errors import RLKitError

__all__ = ["TD3", "TD3Config", "clipped_double_q_target", "smoothed_target_action"]


@struct.dataclass
class TD3Config(ContinuousConfig):
    """TD3 hyperparameters (shared fields are ``ContinuousConfig``'s)."""

    learning_rate: float = hyperparameter(1e-3, low=0.0, low_open=True)
    """Adam step size of the actor and the critics."""
    policy_delay: int = static_field(2, low=1)
    """Critic steps per actor step (delayed policy updates)."""
    target_update_interval: int = hyperparameter(2, low=1)
    """Gradient steps between Polyak target updates (policy_delay, as in the paper)."""
    target_policy_noise: float = hyperparameter(0.2, low=0.0)
    """Standard deviation of the target policy smoothing noise ([-1, 1] action units)."""
    target_noise_clip: float = hyperparameter(0.5, low=0.0)
    """Clip the smoothing noise to [-c, c]."""
    exploration: str = static_field("gaussian")
    """Exploration noise: 'gaussian' (independent) or 'ou' (Ornstein-Uhlenbeck; rollout length 1)."""
    action_noise: float = hyperparameter(0.1, low=0.0)
    """Standard deviation of the exploration noise (of the OU innovation), [-1, 1] units."""
    ou_damping: float = hyperparameter(0.15, low=0.0, low_open=True, high=1.0)
    """OU mean reversion per step: n_t = (1 - damping) n_{t-1} + action_noise z_t."""


def smoothed_target_action(
    key: chex.PRNGKey, mu_next: chex.Array, noise_std: chex.Numeric, noise_clip: chex.Numeric
) -> chex.Array:
    """Target policy smoothing: ``clip(mu'(s') + clip(noise_std eps, -c, c), -1, 1)``.

    Args:
      key: PRNG key.
      mu_next: ``[B, A]`` target actor's actions in ``[-1, 1]``.
      noise_std: standard deviation of ``noise_std * eps``.
      noise_clip: ``c``.

    Returns:
      ``[B, A]`` smoothed actions in ``[-1, 1]``.
    """
    noise = jax.random.normal(key, mu_next.shape, mu_next.dtype) * noise_std
    return jnp.clip(mu_next + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def clipped_double_q_target(
    reward_sum: chex.Array, discount: chex.Array, q_next: chex.Array
) -> chex.Array:
    """``y = reward_sum + discount * min_i Q'_i(s', a')`` for ``q_next [C, B]``."""
    return reward_sum + discount * jnp.min(q_next, axis=0)


class TD3(ContinuousAgent):
    """TD3 for Box actions (see the module docstring for the update)."""

    name = "td3"
    Config = TD3Config
    target_networks = ("actor", "critic")
    _EXPLORATION = ("gaussian", "ou")
    #: Per-env settings; only what differs from the config defaults. How they were chosen, and
    #: what they reach, is in docs/benchmarks.md.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "Pendulum-v1": {
            "total_timesteps": 15_000,
            "buffer_size": 15_000,
            "learning_rate": 1e-3,
            "gamma": 0.98,
            "tau": 0.01,
            "actor_hidden": (64, 64),
            "critic_hidden": (64, 64),
        },
        # Ornstein-Uhlenbeck exploration with innovation 0.5 (docs/benchmarks.md).
        "MountainCarContinuous-v0": {
            "total_timesteps": 30_000,
            "buffer_size": 30_000,
            "learning_starts": 1000,
            "exploration": "ou",
            "action_noise": 0.5,
            "actor_hidden": (64, 64),
            "critic_hidden": (64, 64),
        },
    }

    def check_config(self, config: TD3Config) -> None:
        super().check_config(config)
        if config.exploration not in self._EXPLORATION:
            raise RLKitError(
                f"--exploration: expected one of {self._EXPLORATION}, got {config.exploration!r}"
            )
        if config.exploration == "ou" and config.rollout_length != 1:
            raise RLKitError(
                "--rollout-length: Ornstein-Uhlenbeck exploration (--exploration ou) carries its "
                f"noise from one env step to the next through update; expected 1, got "
                f"{config.rollout_length}"
            )

    def actor_network(self, config: TD3Config) -> DeterministicActor:
        return DeterministicActor(self.action_dim, tuple(config.actor_hidden), config.activation)

    def mean_action(self, config: TD3Config, actor_params: Any, obs: chex.Array) -> chex.Array:
        return self.actor_network(config).apply(actor_params, obs)

    def explore(self, config: TD3Config, learner: ContinuousLearner, obs, key):
        mu = self.mean_action(config, learner.params["actor"], obs)
        keys = jax.random.split(key, mu.shape[0])
        if config.exploration == "ou":
            noise = jax.vmap(rlkit.ornstein_uhlenbeck_noise, in_axes=(0, 0, None, None))(
                keys, learner.noise, config.ou_damping, config.action_noise
            )
            return jnp.clip(mu + noise, -1.0, 1.0), {"noise": noise}
        noisy = jax.vmap(rlkit.add_gaussian_noise, in_axes=(0, 0, None))(
            keys, mu, config.action_noise
        )
        return jnp.clip(noisy, -1.0, 1.0), {}

    def next_noise(self, config: TD3Config, learner: ContinuousLearner, rollout: Transition):
        """OU: the last step's noise, zeroed where that step ended an episode."""
        if config.exploration != "ou":
            return learner.noise
        ended = jnp.logical_or(rollout.terminated[-1], rollout.truncated[-1])
        return jnp.where(ended[:, None], 0.0, rollout.extras["noise"][-1])

    def learner_step(self, config: TD3Config, learner: ContinuousLearner, batch, weights, key):
        """A critic step, and an actor step every ``policy_delay`` steps (module docstring)."""
        actor = self.actor_network(config)
        obs, action, reward_sum, discount, next_obs = self.window(config, learner, batch)
        mu_next = actor.apply(learner.target_params["actor"], next_obs)
        next_action = smoothed_target_action(
            key, mu_next, config.target_policy_noise, config.target_noise_clip
        )
        q_next = self.q_values(config, learner.target_params["critic"], next_obs, next_action)
        target = clipped_double_q_target(reward_sum, discount, q_next)

        learner, loss_q, td, q, critic_norm = self.critic_step(
            config, learner, obs, action, target, weights
        )

        def pi_loss(actor_params):
            first = jax.tree.map(lambda x: x[0], learner.params["critic"])
            new_action = actor.apply(actor_params, obs)
            return -jnp.mean(self.critic_network(config).apply(first, obs, new_action))

        def actor_step(learner):
            loss, grads = jax.value_and_grad(pi_loss)(learner.params["actor"])
            params, opt_state, norm = self.apply_gradients(config, learner, "actor", grads)
            return learner._replace(params=params, opt_state=opt_state), loss, norm

        def no_actor_step(learner):
            return learner, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)

        learner, loss_pi, actor_norm = jax.lax.cond(
            learner.step % config.policy_delay == 0, actor_step, no_actor_step, learner
        )
        learner = learner._replace(step=learner.step + 1)
        metrics = {
            "critic_loss": loss_q,
            "actor_loss": loss_pi,  # 0 on the steps without an actor step
            "q_mean": jnp.mean(q),
            "critic_grad_norm": critic_norm,
            "actor_grad_norm": actor_norm,
        }
        return learner, td, metrics


register_agent(TD3)
