"""IMPALA: actor-critic with V-trace off-policy corrections.

"IMPALA: Scalable Distributed Deep-RL with Importance Weighted Actor-Learner Architectures",
Espeholt et al. (2018), https://arxiv.org/abs/1802.01561.

It builds on the actor-critic base ``agents.actor_critic`` (network, policy head, normalisers,
optimiser, ``gradient_step``). ``act`` stores the behaviour policy's log-probability
``log mu(a_t|x_t)``; one ``update`` takes a time-major rollout ``[T, N]`` and makes one gradient
step on all of it. With the learner's current parameters ``V`` and ``pi``:

    rho_t   = pi(a_t|x_t) / mu(a_t|x_t)                         (from the stored log mu)
    delta_t = min(rho_bar, rho_t) (r_t + gamma_t V(x'_t) - V(x_t)),   gamma_t = gamma (1 - term_t)
    v_t     = V(x_t) + delta_t + gamma_t c_t (v_{t+1} - V(x_{t+1})),  c_t = lambda min(1, rho_t)
    A_t     = min(rho_bar_pg, rho_t) (r_t + gamma_t q'_{t+1} - V(x_t)),
              q'_{t+1} = lambda v_{t+1} + (1 - lambda) V(x'_t)   (rlax's form; v_{t+1} if lambda = 1)
    L       = -mean(A_t log pi(a_t|x_t)) + vf_coef mean(0.5 (v_t - V(x_t))^2) - ent_coef mean(H)

computed per env by ``rlkit.vtrace_td_error_and_advantage`` (targets and advantages carry no
gradient). ``x'_t`` is the true next observation (``Transition.next_obs``, the final one at an
episode end): a terminated step does not bootstrap (``gamma_t = 0``); a truncated step bootstraps
on ``V(final_obs)`` and cuts the trace there (``c_t = 0``, and ``q'_{t+1} = V(x'_t)`` in its
advantage), so nothing flows back from the next episode. The last step of the rollout bootstraps
on ``V(x'_{T-1})``.

With ``num_epochs`` or ``num_minibatches`` above 1 (both 1 by default, the paper's learner) an
update makes ``num_epochs`` shuffled passes over the rollout's envs, one gradient step per group
of ``num_envs / num_minibatches`` envs, each on their whole unroll; V-trace is recomputed with the
learner's current parameters at every step, so after the first step ``rho`` is no longer 1 and
the clipped ratios correct for the drift (the paper's replay experiments reuse data the same way).

On the compiled backend and the synchronous host loops the behaviour policy is the learner's
(``rho = 1``): IMPALA is then an n-step (lambda) actor-critic with V-trace targets. With an
asynchronous actor (``agents.training.pipeline``) the behaviour parameters lag the learner's by a
few updates, and the clipped ratios correct for it. The paper's optimiser is RMSprop
(decay 0.99, epsilon 0.01) with global-norm gradient clipping at 40.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.actor_critic import ActorCriticAgent, ActorCriticConfig, ActorCriticState
from agents.base import INT32_MAX, Transition, hyperparameter, minibatch_epochs, static_field
from agents.parallel import data_axis_names
from agents.presets import per_atari_game
from agents.registry import register_agent
from rlkit.errors import RLKitError

__all__ = ["IMPALA", "ImpalaBatch", "ImpalaConfig"]


@struct.dataclass
class ImpalaConfig(ActorCriticConfig):
    """IMPALA hyperparameters (the paper's Atari settings where they apply)."""

    total_timesteps: int = static_field(1_000_000, low=1, high=INT32_MAX, split=True)
    """Env steps to train for, summed over the parallel envs of one seed."""
    num_envs: int = static_field(8, low=1, split=True, divisible=True)
    """Parallel environments per seed."""
    rollout_length: int = static_field(20, low=1)
    """Env steps each env takes between two updates (the unroll length of V-trace)."""
    learning_rate: float = hyperparameter(6e-4, low=0.0, low_open=True)
    """Initial optimiser step size."""
    optimizer: Literal["adam", "rmsprop"] = static_field("rmsprop")
    """Optimiser: 'rmsprop' (decay 0.99, as in the paper) or 'adam'."""
    adam_eps: float = hyperparameter(0.01, low=0.0)
    """Epsilon of the optimiser's denominator (the paper's RMSprop uses 0.01)."""
    max_grad_norm: float = hyperparameter(40.0, low=0.0, low_open=True)
    """Clip the gradient to this global norm (optax.clip_by_global_norm)."""
    gae_lambda: float = hyperparameter(1.0, low=0.0, high=1.0)
    """V-trace's lambda (c_t = lambda min(1, rho_t)); 1 in the paper."""
    clip_rho_threshold: float = hyperparameter(1.0, low=0.0, low_open=True)
    """rho_bar: clip of the importance ratios in the value targets."""
    clip_pg_rho_threshold: float = hyperparameter(1.0, low=0.0, low_open=True)
    """Clip of the importance ratios in the policy-gradient advantages."""
    normalize_advantages: bool = static_field(False)
    """Standardise the advantages to zero mean and unit std (over the rollout or minibatch)."""
    num_epochs: int = static_field(1, low=1)
    """Passes over each rollout. 1 is the paper's learner; more reuse the rollout, as the paper's
    replay experiments do, with the V-trace ratios correcting for the learner's drift."""
    num_minibatches: int = static_field(1, low=1)
    """Gradient steps per pass, each on the whole unroll of ``num_envs / num_minibatches`` envs
    (V-trace runs along time, so a rollout is split by env, not by step)."""


class ImpalaBatch(NamedTuple):
    """A time-major rollout ``[T, N, ...]`` as the loss reads it."""

    obs: chex.Array  # normalised observations
    next_obs: chex.Array  # normalised true next observations (the final one at an episode end)
    action: chex.Array  # int index (discrete) or the unsquashed Gaussian sample (continuous)
    behaviour_log_prob: chex.Array  # log mu(a_t|x_t), stored by ``act``
    reward: chex.Array  # (scaled) rewards
    terminated: chex.Array
    truncated: chex.Array


class IMPALA(ActorCriticAgent):
    """Importance-weighted actor-learner with V-trace targets (see the module docstring)."""

    name = "impala"
    Config = ImpalaConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Short unrolls and many updates, as for A2C (results: docs/benchmarks.md).
        "CartPole-v1": {
            "total_timesteps": 100_000,
            "num_envs": 8,
            "rollout_length": 5,
            "learning_rate": 2e-3,
            "anneal_lr": False,
            "adam_eps": 1e-5,
            "max_grad_norm": 0.5,
            "ent_coef": 0.0,
        },
        # Host env (Box2D), on the host backend or a pipeline: 32 envs x 256 steps, 4 passes of
        # 16 gradient steps (2 envs' unrolls each, V-trace recomputed per step), Adam 3e-4
        # annealed, gamma 0.999, lambda 0.98, entropy 0.01, normalised advantages; one pass of
        # one step per rollout (the paper's learner) falls into hovering (docs/benchmarks.md).
        "LunarLander-v3": {
            "total_timesteps": 3_000_000,
            "num_envs": 32,
            "rollout_length": 256,
            "num_epochs": 4,
            "num_minibatches": 16,
            "optimizer": "adam",
            "learning_rate": 3e-4,
            "adam_eps": 1e-5,
            "max_grad_norm": 0.5,
            "gamma": 0.999,
            "gae_lambda": 0.98,
            "ent_coef": 0.01,
            "normalize_advantages": True,
        },
        # Atari (ALE/<Game>-v5 of ATARI_IDS): the paper's settings (Espeholt et al., 2018, the
        # shallow network's): unrolls of 20, RMSprop lr 6e-4 (eps 0.01) annealed, gradient norm
        # 40, entropy 0.01, rewards clipped; 8 envs and 10M steps; the Nature-DQN torso
        # (all ImpalaConfig defaults but the step count).
        **per_atari_game({"total_timesteps": 10_000_000}),
    }

    def vtrace_targets(
        self,
        config: ImpalaConfig,
        batch: ImpalaBatch,
        values: chex.Array,
        next_values: chex.Array,
        log_prob: chex.Array,
    ) -> tuple[chex.Array, chex.Array, chex.Array]:
        """V-trace targets ``v_t``, policy-gradient advantages and ratios ``rho_t``, all ``[T, N]``.

        Args:
          config: the agent config.
          batch: the rollout.
          values: ``V(x_t)`` under the learner's parameters, ``[T, N]``.
          next_values: ``V(x'_t)``, ``[T, N]``.
          log_prob: ``log pi(a_t|x_t)`` under the learner's parameters, ``[T, N]``.

        Returns:
          ``(targets, pg_advantages, rhos)``, without gradient.
        """
        values = jax.lax.stop_gradient(values)
        next_values = jax.lax.stop_gradient(next_values)
        rho = jnp.exp(jax.lax.stop_gradient(log_prob) - batch.behaviour_log_prob)
        not_terminated = 1.0 - batch.terminated.astype(jnp.float32)
        not_truncated = 1.0 - batch.truncated.astype(jnp.float32)
        discount = config.gamma * not_terminated
        lambda_ = config.gae_lambda * not_truncated  # cuts the trace at a truncation
        out = jax.vmap(
            rlkit.vtrace_td_error_and_advantage,
            in_axes=(1, 1, 1, 1, 1, 1, None, None),
            out_axes=1,
        )(
            values,
            next_values,
            batch.reward,
            discount,
            rho,
            lambda_,
            config.clip_rho_threshold,
            config.clip_pg_rho_threshold,
        )
        # With lambda_t = 0 the primitive bootstraps step t's advantage on V(x_{t+1}), the next
        # episode's first value; a truncated step bootstraps on V(x'_t) instead.
        q = jnp.where(batch.truncated, batch.reward + discount * next_values, out.q_estimate)
        pg_advantage = jnp.minimum(config.clip_pg_rho_threshold, rho) * (q - values)
        targets = out.errors + values
        return jax.lax.stop_gradient(targets), jax.lax.stop_gradient(pg_advantage), rho

    def loss(
        self, config: ImpalaConfig, params: Any, batch: ImpalaBatch
    ) -> tuple[chex.Array, dict]:
        """The IMPALA loss of a rollout; ``(loss, metrics)`` (module docstring)."""
        t_len, n_envs = batch.reward.shape
        net = self.network(config)

        def flat(x):
            return x.reshape((t_len * n_envs,) + x.shape[2:])

        def unflat(x):
            return x.reshape((t_len, n_envs))

        head, value = net.apply(params, flat(batch.obs))
        _, next_value = net.apply(params, flat(batch.next_obs))
        log_prob, entropy = self.log_prob_entropy(head, flat(batch.action))
        targets, advantage, rho = self.vtrace_targets(
            config, batch, unflat(value), unflat(next_value), unflat(log_prob)
        )
        advantage = flat(advantage)
        if config.normalize_advantages:
            advantage = (advantage - jnp.mean(advantage)) / (jnp.std(advantage) + 1e-8)
        pg_loss, metrics = self.policy_loss(config, log_prob, batch, advantage)
        value_loss = jnp.mean(rlkit.l2_loss(value, flat(targets)))
        entropy = jnp.mean(entropy)
        total = pg_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        metrics.update(
            loss=total,
            pg_loss=pg_loss,
            value_loss=value_loss,
            entropy=entropy,
            rho_mean=jnp.mean(rho),
            rho_clipped_fraction=jnp.mean((rho > config.clip_rho_threshold).astype(jnp.float32)),
            advantage_mean=jnp.mean(advantage),
            value_mean=jnp.mean(value),
        )
        return total, metrics

    def make_batch(
        self, config: ImpalaConfig, state: ActorCriticState, rollout: Transition
    ) -> tuple[ImpalaBatch, ActorCriticState]:
        """The loss's batch of a rollout, and the state with updated normaliser statistics
        (observation statistics take this rollout into account after it was normalised)."""
        chex.assert_rank(rollout.reward, 2)
        reward, reward_norm = self.scale_rewards(config, state.reward_norm, rollout)
        batch = ImpalaBatch(
            obs=self.normalize_obs(config, state.obs_norm, rollout.obs),
            next_obs=self.normalize_obs(config, state.obs_norm, rollout.next_obs),
            action=self.stored_action(rollout),
            behaviour_log_prob=rollout.extras["log_prob"],
            reward=reward,
            terminated=rollout.terminated,
            truncated=rollout.truncated,
        )
        obs_norm = state.obs_norm
        if config.normalize_obs:
            obs = rollout.obs.astype(jnp.float32)
            obs_norm = rlkit.running_stats_update(
                obs_norm, obs.reshape((-1,) + obs.shape[2:]), axis_name=data_axis_names()
            )
        return batch, state._replace(obs_norm=obs_norm, reward_norm=reward_norm)

    def grad_steps_per_update(self, config: ImpalaConfig) -> int:
        return config.num_epochs * config.num_minibatches

    def check_config(self, config: ImpalaConfig) -> None:
        super().check_config(config)
        if config.num_envs % config.num_minibatches:
            raise RLKitError(
                "--num-minibatches: IMPALA splits a rollout by env, so it must divide --num-envs "
                f"({config.num_envs}), got {config.num_minibatches}"
            )

    def update(
        self, config: ImpalaConfig, state: ActorCriticState, rollout: Transition, key: chex.PRNGKey
    ) -> tuple[ActorCriticState, dict]:
        """One gradient step on the whole rollout, or ``num_epochs`` passes of
        ``num_minibatches`` steps, each on the whole unroll of a group of envs."""
        batch, state = self.make_batch(config, state, rollout)
        if self.grad_steps_per_update(config) == 1:
            params, opt_state, metrics = self.gradient_step(
                config, state.params, state.opt_state, batch
            )
        else:

            def swap(tree):  # [T, N, ...] <-> [N, T, ...]
                return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), tree)

            def minibatch_step(carry, env_major):
                params, opt_state, metrics = self.gradient_step(
                    config, *carry, swap(env_major)
                )
                return (params, opt_state), metrics

            (params, opt_state), metrics = minibatch_epochs(
                minibatch_step,
                (state.params, state.opt_state),
                swap(batch),
                key,
                config.num_epochs,
                config.num_minibatches,
                unroll=config.unroll_updates,
            )
            metrics = jax.tree.map(jnp.mean, metrics)
        metrics["learning_rate"] = self.learning_rate(config, state.opt_state)
        return state._replace(params=params, opt_state=opt_state), metrics


register_agent(IMPALA)
