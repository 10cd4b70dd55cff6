"""C51: categorical distributional Q-learning from a replay buffer.

"A Distributional Perspective on Reinforcement Learning", Bellemare, Dabney and Munos (2017),
https://arxiv.org/abs/1707.06887, with DQN's refinements: Double-Q action selection (van Hasselt,
Guez and Silver, 2016, https://arxiv.org/abs/1509.06461), an optional dueling head (Wang et al.,
2016, https://arxiv.org/abs/1511.06581), n-step returns, optional prioritised replay (Schaul et
al., 2016, https://arxiv.org/abs/1511.05952) and bootstrapping at time-limit truncations (Pardo et
al., 2018, https://arxiv.org/abs/1712.00378).

The network gives, per action, logits over ``num_atoms`` fixed atoms
``z_i = v_min + i (v_max - v_min) / (num_atoms - 1)``; ``Q(s, a) = sum_i p_i(s, a) z_i`` with
``p(s, a) = softmax(logits(s, a))``. It is an ``agents.value_based.ValueBasedAgent``; a learner
step is one Adam step on

    R = sum_{k<K} gamma^k r_k,   gamma_t = gamma^K (1 - terminated_{K-1}),   s' = next_obs_{K-1}
    a* = argmax_a Q(s', a)              (argmax_a Q_target(s', a) with double_q=False)
    target = Phi_z(R + gamma_t z, p_target(s', a*))
    loss = mean_b w_b (-sum_i target_i log p_i(s_b, a_b))

where the window stops after ``n_step`` steps or at its first step that ended an episode
(``agents.off_policy.n_step_window``), ``Phi_z`` is the projection onto the atoms
(``rlkit.categorical_l2_project``) and ``w`` are the importance weights (1 without prioritised
replay). A terminated step does not bootstrap; a truncated one does. The per-window
cross-entropy is the priority with prioritised replay. Actions are epsilon-greedy on ``Q``
(``agents.dqn.epsilon``), uniformly random before ``learning_starts``; the policy is greedy on
``Q``, the mean of the distribution.
"""

from __future__ import annotations

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
from rlkit.errors import RLKitError

__all__ = ["C51", "C51Config", "C51Learner", "atoms", "c51_loss", "mean_q"]


@struct.dataclass
class C51Config(ValueBasedConfig):
    """C51 hyperparameters (exploration, network and replay fields are ``ValueBasedConfig``'s).
    Traced fields can be vmapped over; static fields fix the program.

    The default support [0, 100] covers CartPole-v1 with gamma 0.99: its rewards are 1 per
    step, so returns lie in [0, 1 / (1 - 0.99)] = [0, 100]. Other envs need their own range.
    """

    num_atoms: int = static_field(51, low=2)
    """Atoms of the categorical return distribution."""
    v_min: float = hyperparameter(0.0)
    """Smallest atom (the support's lower end)."""
    v_max: float = hyperparameter(100.0)
    """Largest atom (the support's upper end); must exceed v_min."""


#: The learner state of C51 inside ``OffPolicyState.learner`` (the value-based base's).
C51Learner = ValueBasedLearner


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def atoms(config: C51Config) -> chex.Array:
    """The support ``[num_atoms]``: evenly spaced from ``v_min`` to ``v_max``."""
    return jnp.linspace(config.v_min, config.v_max, config.num_atoms, dtype=jnp.float32)


def mean_q(logits: chex.Array, support: chex.Array) -> chex.Array:
    """Action values ``[..., A]``, the means of the distributions of ``logits [..., A, N]``."""
    return jax.nn.softmax(logits, axis=-1) @ support


def c51_loss(
    params: Any,
    target_params: Any,
    apply_fn,
    config: C51Config,
    batch: dict,
    weights: chex.Array,
    target_apply_fn=None,
) -> tuple[chex.Array, tuple[chex.Array, chex.Array]]:
    """Weighted mean cross-entropy of a batch of windows (module docstring).

    Args:
      params: online network parameters.
      target_params: target network parameters.
      apply_fn: ``apply_fn(params, obs [B, ...]) -> logits [B, A, num_atoms]``, the online
        network (on ``s`` and, with ``double_q``, on ``s'`` for the bootstrap action).
      config: the config (``gamma``, ``n_step``, ``double_q``, the support).
      batch: dict of ``[B, L, ...]`` arrays with keys obs, action, reward, terminated, truncated,
        next_obs (``L >= n_step``; only the first ``n_step`` steps are used).
      weights: ``[B]`` importance weights.
      target_apply_fn: the target network's ``apply_fn`` (default ``apply_fn``); Rainbow passes
        one with its own noise sample.

    Returns:
      ``(loss, (per-window cross-entropy [B], Q(s, a) [B]))``.
    """
    target_apply_fn = apply_fn if target_apply_fn is None else target_apply_fn
    n = config.n_step
    support = atoms(config)
    obs, action = batch["obs"][:, 0], batch["action"][:, 0]
    logits_tm1 = apply_fn(params, obs)  # [B, A, N]
    reward, discount, last = n_step_window(
        batch["reward"][:, :n], batch["terminated"][:, :n], batch["truncated"][:, :n], config.gamma
    )
    next_obs = bootstrap_obs(batch["next_obs"][:, :n], last)
    logits_t = jax.lax.stop_gradient(target_apply_fn(target_params, next_obs))
    if config.double_q:
        selector = mean_q(jax.lax.stop_gradient(apply_fn(params, next_obs)), support)
        per_item = jax.vmap(
            rlkit.categorical_double_q_learning, in_axes=(None, 0, 0, 0, 0, None, 0, 0)
        )(support, logits_tm1, action, reward, discount, support, logits_t, selector)
    else:
        per_item = jax.vmap(rlkit.categorical_q_learning, in_axes=(None, 0, 0, 0, 0, None, 0))(
            support, logits_tm1, action, reward, discount, support, logits_t
        )
    q_taken = rlkit.batched_index(mean_q(logits_tm1, support), action)
    return jnp.mean(weights * per_item), (per_item, q_taken)


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


class C51(ValueBasedAgent):
    """Categorical distributional Q-learning for discrete actions (module docstring)."""

    name = "c51"
    Config = C51Config
    #: Per-env settings; each entry holds only what differs from the ``C51Config`` defaults.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # 21 atoms instead of 51: the projection costs O(atoms^2) per window.
        "CartPole-v1": {**CARTPOLE_PRESET, "num_atoms": 21},
        # DQN's, with the 51 atoms on [-100, 0] (the returns are negative; 21 atoms left one
        # seed in five at -107.5).
        "Acrobot-v1": {**ACROBOT_PRESET, "v_min": -100.0, "v_max": 0.0},
        # DQN's, with the 51 atoms on [-50, 0] (gamma 0.98 bounds the discounted return of -1
        # per step by -50; 5 of 5 seeds >= -110, docs/benchmarks.md).
        "MountainCar-v0": {**MOUNTAINCAR_PRESET, "v_min": -50.0, "v_max": 0.0},
    }

    def network(self, config: C51Config) -> DistributionalQNetwork:
        return DistributionalQNetwork(
            num_actions=self.num_actions,
            num_atoms=config.num_atoms,
            hidden=tuple(config.hidden),
            activation=config.activation,
            dueling=config.dueling,
            conv=conv_spec(config, self.observation_space),
        )

    def q_values(self, config: C51Config, params: Any, obs: chex.Array, key=None) -> chex.Array:
        """``Q(obs, .) [N, A]``, the means of the predicted distributions."""
        return mean_q(self.network(config).apply(params, obs), atoms(config))

    def check_config(self, config: C51Config) -> None:
        super().check_config(config)
        if not config.v_min < config.v_max:
            raise RLKitError(
                f"--v-min/--v-max: expected v_min < v_max, got {config.v_min} and {config.v_max}"
            )

    def loss(self, config: C51Config, params, target_params, batch, weights, key):
        """``c51_loss`` with this agent's network."""
        return c51_loss(params, target_params, self.network(config).apply, config, batch, weights)


register_agent(C51)
