"""QR-DQN: distributional Q-learning by quantile regression, from a replay buffer.

"Distributional Reinforcement Learning with Quantile Regression", Dabney, Rowland, Bellemare and
Munos (2018), https://arxiv.org/abs/1710.10044, with DQN's refinements: Double-Q action selection
(van Hasselt, Guez and Silver, 2016, https://arxiv.org/abs/1509.06461), an optional dueling head
(Wang et al., 2016, https://arxiv.org/abs/1511.06581), n-step returns, optional prioritised replay
(Schaul et al., 2016, https://arxiv.org/abs/1511.05952) and bootstrapping at time-limit
truncations (Pardo et al., 2018, https://arxiv.org/abs/1712.00378).

The network gives, per action, ``num_quantiles`` values ``theta_j(s, a)`` at the quantile
midpoints ``tau_j = (2 j + 1) / (2 num_quantiles)``; ``Q(s, a) = mean_j theta_j(s, a)``. It is an
``agents.value_based.ValueBasedAgent``; a learner step is one Adam step on

    R = sum_{k<K} gamma^k r_k,   gamma_t = gamma^K (1 - terminated_{K-1}),   s' = next_obs_{K-1}
    a* = argmax_a Q(s', a)              (argmax_a Q_target(s', a) with double_q=False)
    T_j = R + gamma_t theta_target_j(s', a*)
    loss = mean_b w_b sum_i mean_j |tau_i - 1[T_j - theta_i(s_b, a_b) < 0]| rho_kappa(T_j - theta_i)

where the window stops after ``n_step`` steps or at its first step that ended an episode
(``agents.off_policy.n_step_window``), ``rho_kappa`` is the Huber loss with threshold
``huber_kappa`` and ``w`` are the importance weights (1 without prioritised replay). A terminated
step does not bootstrap; a truncated one does. The per-window loss is the priority with
prioritised replay. Actions are epsilon-greedy on ``Q`` (``agents.dqn.epsilon``), uniformly
random before ``learning_starts``; the policy is greedy on ``Q``, the mean of the quantiles.

``rlkit.quantile_q_learning`` takes the Huber threshold as a static number; to keep ``huber_kappa``
a traced hyperparameter the loss uses ``rho_kappa(u) = kappa^2 rho_1(u / kappa)`` (the weights
``|tau - 1[u < 0]|`` do not change when ``u`` is scaled by ``kappa > 0``): quantile values and
rewards are divided by kappa, the loss computed with threshold 1 and multiplied by kappa^2.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
from flax import struct

import rlkit
from agents.base import hyperparameter, static_field
from agents.networks import DistributionalQNetwork, conv_spec
from agents.off_policy import bootstrap_obs, n_step_window
from agents.registry import register_agent
from agents.value_based import (
    ACROBOT_PRESET,
    CARTPOLE_PRESET,
    MOUNTAINCAR_PRESET,
    ValueBasedAgent,
    ValueBasedConfig,
    ValueBasedLearner,
)

__all__ = ["QRDQN", "QRDQNConfig", "QRDQNLearner", "qrdqn_loss", "quantile_levels"]


@struct.dataclass
class QRDQNConfig(ValueBasedConfig):
    """QR-DQN hyperparameters (exploration, network and replay fields are ``ValueBasedConfig``'s).
    Traced fields can be vmapped over; static fields fix the program."""

    num_quantiles: int = static_field(51, low=1)
    """Quantiles of the return distribution per action."""
    huber_kappa: float = hyperparameter(1.0, low=0.0, low_open=True)
    """Huber threshold kappa of the quantile regression loss."""


#: The learner state of QR-DQN inside ``OffPolicyState.learner`` (the value-based base's).
QRDQNLearner = ValueBasedLearner


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def quantile_levels(num_quantiles: int) -> chex.Array:
    """The quantile midpoints ``tau_j = (2 j + 1) / (2 num_quantiles)``, ``[num_quantiles]``."""
    return (jnp.arange(num_quantiles, dtype=jnp.float32) + 0.5) / num_quantiles


def qrdqn_loss(
    params: Any,
    target_params: Any,
    apply_fn,
    config: QRDQNConfig,
    batch: dict,
    weights: chex.Array,
) -> tuple[chex.Array, tuple[chex.Array, chex.Array]]:
    """Weighted mean quantile regression loss of a batch of windows (module docstring).

    Args:
      params: online network parameters.
      target_params: target network parameters.
      apply_fn: ``apply_fn(params, obs [B, ...]) -> quantile values [B, A, num_quantiles]``.
      config: the config (``gamma``, ``n_step``, ``double_q``, ``huber_kappa``).
      batch: dict of ``[B, L, ...]`` arrays with keys obs, action, reward, terminated, truncated,
        next_obs (``L >= n_step``; only the first ``n_step`` steps are used).
      weights: ``[B]`` importance weights.

    Returns:
      ``(loss, (per-window loss [B], Q(s, a) [B]))``.
    """
    n = config.n_step
    obs, action = batch["obs"][:, 0], batch["action"][:, 0]
    # rlkit's quantile layout is [N, A] (quantiles first); the network's is [A, N].
    dist_tm1 = jnp.swapaxes(apply_fn(params, obs), -1, -2)  # [B, N, A]
    reward, discount, last = n_step_window(
        batch["reward"][:, :n], batch["terminated"][:, :n], batch["truncated"][:, :n], config.gamma
    )
    next_obs = bootstrap_obs(batch["next_obs"][:, :n], last)
    dist_t = jnp.swapaxes(jax.lax.stop_gradient(apply_fn(target_params, next_obs)), -1, -2)
    if config.double_q:
        selector = jnp.swapaxes(jax.lax.stop_gradient(apply_fn(params, next_obs)), -1, -2)
    else:
        selector = dist_t
    tau = quantile_levels(config.num_quantiles)
    kappa = jnp.asarray(config.huber_kappa, dist_tm1.dtype)
    loss_fn = functools.partial(rlkit.quantile_q_learning, huber_param=1.0)
    per_item = (
        jax.vmap(loss_fn, in_axes=(0, None, 0, 0, 0, 0, 0))(
            dist_tm1 / kappa, tau, action, reward / kappa, discount, selector, dist_t / kappa
        )
        * kappa**2
    )
    q_taken = rlkit.batched_index(jnp.mean(dist_tm1, axis=1), action)
    return jnp.mean(weights * per_item), (per_item, q_taken)


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


class QRDQN(ValueBasedAgent):
    """Quantile-regression distributional Q-learning for discrete actions (module docstring)."""

    name = "qrdqn"
    Config = QRDQNConfig
    #: Per-env settings; each entry holds only what differs from the ``QRDQNConfig`` defaults.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # 11 quantiles instead of 51: the loss compares every pair of quantiles.
        "CartPole-v1": {**CARTPOLE_PRESET, "num_quantiles": 11},
        "Acrobot-v1": {**ACROBOT_PRESET, "num_quantiles": 11},
        # DQN's, with 11 quantiles (5 of 5 seeds >= -110; docs/benchmarks.md).
        "MountainCar-v0": {**MOUNTAINCAR_PRESET, "num_quantiles": 11},
    }

    def network(self, config: QRDQNConfig) -> DistributionalQNetwork:
        return DistributionalQNetwork(
            num_actions=self.num_actions,
            num_atoms=config.num_quantiles,
            hidden=tuple(config.hidden),
            activation=config.activation,
            dueling=config.dueling,
            conv=conv_spec(config, self.observation_space),
        )

    def q_values(self, config: QRDQNConfig, params: Any, obs: chex.Array, key=None) -> chex.Array:
        """``Q(obs, .) [N, A]``, the means of the predicted quantiles."""
        return jnp.mean(self.network(config).apply(params, obs), axis=-1)

    def loss(self, config: QRDQNConfig, params, target_params, batch, weights, key):
        """``qrdqn_loss`` with this agent's network."""
        return qrdqn_loss(params, target_params, self.network(config).apply, config, batch, weights)


register_agent(QRDQN)
