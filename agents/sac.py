"""SAC: soft actor-critic with twin critics and a learned entropy temperature.

"Soft Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement Learning with a Stochastic
Actor", Haarnoja et al. (2018), https://arxiv.org/abs/1801.01290, with the automatic temperature
of "Soft Actor-Critic Algorithms and Applications", Haarnoja et al. (2018),
https://arxiv.org/abs/1812.05905.

It is an ``agents.continuous.ContinuousAgent`` (replay, action scaling, stacked critics, Polyak
targets, n-step windows). The actor is a tanh-squashed Gaussian, ``a = tanh(u)``,
``u ~ N(mu(s), sigma(s))``, with ``log pi(a|s) = log N(u) - sum_d log(1 - tanh(u_d)^2)``
(``rlkit.tanh_gaussian_log_prob``). One learner step on a batch of windows, ``alpha = exp(log
alpha)``:

    a' ~ pi(.|s'),   y = sum_{k<K} gamma^k r_k
                         + gamma^K (1 - terminated_{K-1}) (min_i Q'_i(s', a') - alpha log pi(a'|s'))
    L_Q = sum_i mean_b w_b (Q_i(s, a) - y)^2 / 2                        (critics, Adam step)
    L_pi = mean_b (alpha log pi(a~|s) - min_i Q_i(s, a~)),  a~ ~ pi(.|s) reparameterised
    L_alpha = -mean_b log alpha (log pi(a~|s) + H_target),   H_target = -dim(A) by default

in that order (the actor uses the critics after their step). ``Q'`` are Polyak copies of the
critics; there is no target actor. The evaluation policy is ``tanh(mu(s))``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.base import hyperparameter, static_field
from agents.continuous import ContinuousAgent, ContinuousConfig, ContinuousLearner
from agents.networks import GaussianActor
from agents.registry import register_agent

__all__ = ["SAC", "SACConfig", "sample_squashed", "soft_q_target"]


@struct.dataclass
class SACConfig(ContinuousConfig):
    """SAC hyperparameters (shared fields are ``ContinuousConfig``'s)."""

    init_alpha: float = hyperparameter(1.0, low=0.0, low_open=True)
    """Initial entropy temperature alpha (learned from there)."""
    learn_alpha: bool = static_field(True)
    """Learn log-alpha towards the target entropy; False keeps alpha = --init-alpha."""
    target_entropy: float | None = static_field(None)
    """Target entropy of the policy; None: -dim(A)."""


def sample_squashed(key: chex.PRNGKey, mean: chex.Array, log_std: chex.Array):
    """Reparameterised tanh-Gaussian actions and log-probabilities for a batch ``[B, A]``.

    Returns:
      ``(action [B, A] in (-1, 1), log_prob [B])`` (``rlkit.tanh_gaussian_sample`` and
      ``rlkit.tanh_gaussian_log_prob`` with the exact pre-squash sample).
    """
    # One draw for the whole batch (the same as ``rlkit.tanh_gaussian_sample`` row by row, with
    # one key instead of B): u = mean + exp(log_std) z, a = tanh(u).
    pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    action = jnp.tanh(pre_tanh)
    log_prob = jax.vmap(lambda m, s, u: rlkit.tanh_gaussian_log_prob(m, s, pre_tanh=u))(
        mean, log_std, pre_tanh
    )
    return action, log_prob


def soft_q_target(
    reward_sum: chex.Array,
    discount: chex.Array,
    q_next: chex.Array,
    log_prob_next: chex.Array,
    alpha: chex.Numeric,
) -> chex.Array:
    """``y = reward_sum + discount * (min_i Q'_i(s', a') - alpha log pi(a'|s'))``.

    Args:
      reward_sum: ``[B]`` discounted n-step reward sums.
      discount: ``[B]`` bootstrap discounts, ``gamma^K (1 - terminated)``.
      q_next: ``[C, B]`` target critics' values of ``(s', a')``.
      log_prob_next: ``[B]`` ``log pi(a'|s')``.
      alpha: the entropy temperature.

    Returns:
      ``[B]`` targets.
    """
    return reward_sum + discount * (jnp.min(q_next, axis=0) - alpha * log_prob_next)


class SAC(ContinuousAgent):
    """Soft actor-critic for Box actions (see the module docstring for the update)."""

    name = "sac"
    Config = SACConfig
    target_networks = ("critic",)
    #: Per-env settings; only what differs from the ``SACConfig`` defaults. How they were chosen,
    #: and what they reach, is in docs/benchmarks.md.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "Pendulum-v1": {
            "total_timesteps": 10_000,
            "buffer_size": 10_000,
            "learning_rate": 1e-3,
            "actor_hidden": (64, 64),
            "critic_hidden": (64, 64),
        },
    }

    def actor_network(self, config: SACConfig) -> GaussianActor:
        return GaussianActor(self.action_dim, tuple(config.actor_hidden), config.activation)

    def target_entropy(self, config: SACConfig) -> float:
        if config.target_entropy is None:
            return -float(self.action_dim)
        return float(config.target_entropy)

    def extra_init(self, config: SACConfig, key: chex.PRNGKey) -> dict:
        return {"log_alpha": jnp.log(jnp.asarray(config.init_alpha, jnp.float32))}

    def alpha(self, config: SACConfig, params: dict) -> chex.Array:
        if not config.learn_alpha:
            return jnp.asarray(config.init_alpha, jnp.float32)
        return jnp.exp(params["log_alpha"])

    def mean_action(self, config: SACConfig, actor_params: Any, obs: chex.Array) -> chex.Array:
        mean, _ = self.actor_network(config).apply(actor_params, obs)
        return jnp.tanh(mean)

    def sample_action(self, config: SACConfig, actor_params, obs, key) -> chex.Array:
        mean, log_std = self.actor_network(config).apply(actor_params, obs)
        return sample_squashed(key, mean, log_std)[0]

    def explore(self, config: SACConfig, learner: ContinuousLearner, obs, key):
        return self.sample_action(config, learner.params["actor"], obs, key), {}

    def learner_step(self, config: SACConfig, learner: ContinuousLearner, batch, weights, key):
        """Critic, actor and temperature steps (module docstring)."""
        k_next, k_pi = jax.random.split(key)
        actor = self.actor_network(config)
        obs, action, reward_sum, discount, next_obs = self.window(config, learner, batch)
        alpha = self.alpha(config, learner.params)

        mean, log_std = actor.apply(learner.params["actor"], next_obs)
        next_action, next_log_prob = sample_squashed(k_next, mean, log_std)
        q_next = self.q_values(config, learner.target_params["critic"], next_obs, next_action)
        target = soft_q_target(reward_sum, discount, q_next, next_log_prob, alpha)

        learner, loss_q, td, q, critic_norm = self.critic_step(
            config, learner, obs, action, target, weights
        )

        def pi_loss(actor_params):
            mean, log_std = actor.apply(actor_params, obs)
            new_action, log_prob = sample_squashed(k_pi, mean, log_std)
            q_pi = jnp.min(self.q_values(config, learner.params["critic"], obs, new_action), 0)
            return jnp.mean(alpha * log_prob - q_pi), log_prob

        (loss_pi, log_prob), grads = jax.value_and_grad(pi_loss, has_aux=True)(
            learner.params["actor"]
        )
        params, opt_state, actor_norm = self.apply_gradients(config, learner, "actor", grads)
        learner = learner._replace(params=params, opt_state=opt_state)

        if config.learn_alpha:
            gap = jax.lax.stop_gradient(log_prob + self.target_entropy(config))
            grads = jax.grad(lambda la: -jnp.mean(la * gap))(learner.params["log_alpha"])
            params, opt_state, _ = self.apply_gradients(config, learner, "log_alpha", grads)
            learner = learner._replace(params=params, opt_state=opt_state)
        learner = learner._replace(step=learner.step + 1)
        metrics = {
            "critic_loss": loss_q,
            "actor_loss": loss_pi,
            "q_mean": jnp.mean(q),
            "alpha": alpha,
            "entropy": -jnp.mean(log_prob),
            "critic_grad_norm": critic_norm,
            "actor_grad_norm": actor_norm,
        }
        return learner, td, metrics


register_agent(SAC)
