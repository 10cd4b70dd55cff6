"""IQN: implicit quantile networks, distributional Q-learning at sampled quantile fractions.

"Implicit Quantile Networks for Distributional Reinforcement Learning", Dabney, Ostrovski, Silver
and Munos (2018), https://arxiv.org/abs/1806.06923, with DQN's refinements: Double-Q action
selection (van Hasselt, Guez and Silver, 2016, https://arxiv.org/abs/1509.06461), an optional
dueling head (Wang et al., 2016, https://arxiv.org/abs/1511.06581), n-step returns, optional
prioritised replay (Schaul et al., 2016, https://arxiv.org/abs/1511.05952) and bootstrapping at
time-limit truncations (Pardo et al., 2018, https://arxiv.org/abs/1712.00378).

The network (``agents.networks.ImplicitQuantileNetwork``) maps an observation and fractions
``tau`` to quantile values ``Z_tau(s, a) = f(psi(s) * phi(tau))_a``, ``phi`` the ReLU layer on
the cosine basis ``cos(pi i tau), i < num_cosines`` (``rlkit.quantile_cosine_embedding``). It is
an ``agents.value_based.ValueBasedAgent``; a learner step is one Adam step on

    R = sum_{k<K} gamma^k r_k,   gamma_t = gamma^K (1 - terminated_{K-1}),   s' = next_obs_{K-1}
    tau_i, tau'_j, tau''_k ~ U(0, 1)   (N, N' and K fractions per window, drawn afresh each step)
    a* = argmax_a mean_k Z_{tau''_k}(s', a)   (online network; the target with double_q=False)
    T_j = R + gamma_t Z^target_{tau'_j}(s', a*)
    u_ij = T_j - Z_{tau_i}(s_b, a_b)
    loss = mean_b w_b sum_i mean_j |tau_i - 1[u_ij < 0]| rho_kappa(u_ij)

(``rlkit.quantile_q_learning`` at the sampled fractions), where the window stops after
``n_step`` steps or at its first step that ended an episode (``agents.off_policy.n_step_window``),
``rho_kappa`` is the Huber loss with threshold ``huber_kappa`` and ``w`` are the importance
weights. A terminated step does not bootstrap; a truncated one does. The per-window loss is the
priority with prioritised replay.

Actions are epsilon-greedy on ``Q(s, a) = mean_k Z_{tau_k}(s, a)`` over ``num_quantile_samples``
fractions sampled at each step (``agents.value_based.epsilon``), uniformly random before
``learning_starts``. The evaluation policy is deterministic: greedy on the mean over the
``num_quantile_samples`` quantile midpoints ``tau_k = (2 k + 1) / (2 K)``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.base import static_field
from agents.networks import ImplicitQuantileNetwork, conv_spec
from agents.off_policy import bootstrap_obs, n_step_window
from agents.qrdqn import quantile_levels
from agents.registry import register_agent
from agents.value_based import (
    ACROBOT_PRESET,
    CARTPOLE_PRESET,
    MOUNTAINCAR_PRESET,
    ValueBasedAgent,
    ValueBasedConfig,
)

__all__ = ["IQN", "IQNConfig", "iqn_loss"]

#: The fractions and cosines of the Acrobot-v1 and MountainCar-v0 presets: 8 fractions each for
#: N, N' and K, and 16 cosines.
_EIGHT_FRACTIONS: dict = {
    "num_tau_samples": 8,
    "num_tau_prime_samples": 8,
    "num_quantile_samples": 8,
    "num_cosines": 16,
}


@struct.dataclass
class IQNConfig(ValueBasedConfig):
    """IQN hyperparameters (exploration, network and replay fields are ``ValueBasedConfig``'s).
    Traced fields can be vmapped over; static fields fix the program. The defaults of the
    fraction counts are the paper's (N = N' = 64, K = 32, n = 64)."""

    num_tau_samples: int = static_field(64, low=1)
    """N: fractions tau_i sampled per window for the online quantiles."""
    num_tau_prime_samples: int = static_field(64, low=1)
    """N': fractions tau'_j sampled per window for the target quantiles."""
    num_quantile_samples: int = static_field(32, low=1)
    """K: fractions that estimate Q for action selection (sampled; midpoints for evaluation)."""
    num_cosines: int = static_field(64, low=1)
    """n: cosine basis functions of the fraction embedding."""
    huber_kappa: float = static_field(1.0, low=0.0)
    """Huber threshold kappa of the quantile regression loss (0: absolute error)."""


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def iqn_loss(
    params: Any,
    target_params: Any,
    apply_fn,
    config: IQNConfig,
    batch: dict,
    weights: chex.Array,
    key: chex.PRNGKey,
) -> tuple[chex.Array, tuple[chex.Array, chex.Array]]:
    """Weighted mean quantile regression loss at sampled fractions (module docstring).

    Args:
      params: online network parameters.
      target_params: target network parameters.
      apply_fn: ``apply_fn(params, obs [B, ...], tau [B, M]) -> quantile values [B, M, A]``.
      config: the config (``gamma``, ``n_step``, ``double_q``, the fraction counts, kappa).
      batch: dict of ``[B, L, ...]`` arrays with keys obs, action, reward, terminated, truncated,
        next_obs (``L >= n_step``; only the first ``n_step`` steps are used).
      weights: ``[B]`` importance weights.
      key: draws the fractions tau, tau' and tau''.

    Returns:
      ``(loss, (per-window loss [B], Q(s, a) [B]))``, ``Q`` the mean over the sampled tau.
    """
    n = config.n_step
    obs, action = batch["obs"][:, 0], batch["action"][:, 0]
    size = obs.shape[0]
    reward, discount, last = n_step_window(
        batch["reward"][:, :n], batch["terminated"][:, :n], batch["truncated"][:, :n], config.gamma
    )
    next_obs = bootstrap_obs(batch["next_obs"][:, :n], last)
    k_tau, k_target, k_select = jax.random.split(key, 3)
    tau = jax.random.uniform(k_tau, (size, config.num_tau_samples))
    tau_target = jax.random.uniform(k_target, (size, config.num_tau_prime_samples))
    tau_select = jax.random.uniform(k_select, (size, config.num_quantile_samples))
    dist_tm1 = apply_fn(params, obs, tau)  # [B, N, A]: rlkit's quantile layout
    dist_t = jax.lax.stop_gradient(apply_fn(target_params, next_obs, tau_target))  # [B, N', A]
    selector_params = params if config.double_q else target_params
    selector = jax.lax.stop_gradient(apply_fn(selector_params, next_obs, tau_select))  # [B, K, A]
    loss_fn = functools.partial(rlkit.quantile_q_learning, huber_param=float(config.huber_kappa))
    per_item = jax.vmap(loss_fn)(dist_tm1, tau, action, reward, discount, selector, dist_t)
    q_taken = rlkit.batched_index(jnp.mean(dist_tm1, axis=1), action)
    return jnp.mean(weights * per_item), (per_item, q_taken)


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


class IQN(ValueBasedAgent):
    """Implicit-quantile distributional Q-learning for discrete actions (module docstring)."""

    name = "iqn"
    Config = IQNConfig
    #: Per-env settings; each entry holds only what differs from the ``IQNConfig`` defaults.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # 4 fractions each for N, N' and K and 32-wide layers: the network runs on every
        # (window, fraction) pair, so its cost grows with batch x fractions x width^2 (8 each
        # took 45 s for `train.py --agent iqn` idle; 4 each: 5 of 5 seeds >= 475).
        "CartPole-v1": {
            **CARTPOLE_PRESET,
            "num_tau_samples": 4,
            "num_tau_prime_samples": 4,
            "num_quantile_samples": 4,
            "num_cosines": 16,
            "hidden": (32, 32),
        },
        # DQN's, with 8 fractions each for N, N' and K (the CartPole preset has 4) and 16 cosines.
        "Acrobot-v1": {**ACROBOT_PRESET, **_EIGHT_FRACTIONS},
        # DQN's, with Acrobot's 8 fractions and 16 cosines (docs/benchmarks.md).
        "MountainCar-v0": {**MOUNTAINCAR_PRESET, **_EIGHT_FRACTIONS},
    }

    def network(self, config: IQNConfig) -> ImplicitQuantileNetwork:
        return ImplicitQuantileNetwork(
            num_actions=self.num_actions,
            hidden=tuple(config.hidden),
            activation=config.activation,
            dueling=config.dueling,
            conv=conv_spec(config, self.observation_space),
            num_cosines=config.num_cosines,
        )

    def q_values(
        self, config: IQNConfig, params: Any, obs: chex.Array, key: chex.PRNGKey | None = None
    ) -> chex.Array:
        """``Q(obs, .) [N, A]``: the mean over ``num_quantile_samples`` fractions, sampled from
        ``key``, or the quantile midpoints when ``key`` is None."""
        k = config.num_quantile_samples
        if key is None:
            tau = jnp.broadcast_to(quantile_levels(k), (obs.shape[0], k))
        else:
            tau = jax.random.uniform(jax.random.fold_in(key, 1), (obs.shape[0], k))
        return jnp.mean(self.network(config).apply(params, obs, tau), axis=-2)

    def init_params(self, config: IQNConfig, key: chex.PRNGKey) -> Any:
        dummy_obs = jnp.zeros((1,) + tuple(self.observation_space.shape), jnp.float32)
        dummy_tau = jnp.full((1, config.num_quantile_samples), 0.5, jnp.float32)
        return self.network(config).init(key, dummy_obs, dummy_tau)

    def loss(self, config: IQNConfig, params, target_params, batch, weights, key):
        """``iqn_loss`` with this agent's network."""
        apply_fn = self.network(config).apply
        return iqn_loss(params, target_params, apply_fn, config, batch, weights, key)


register_agent(IQN)
