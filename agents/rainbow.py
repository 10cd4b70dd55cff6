"""Rainbow: C51 with dueling, noisy nets, n-step returns, prioritised replay and Double Q.

"Rainbow: Combining Improvements in Deep Reinforcement Learning", Hessel et al. (2018),
https://arxiv.org/abs/1710.02298: categorical returns (Bellemare, Dabney and Munos, 2017,
https://arxiv.org/abs/1707.06887), a dueling head (Wang et al., 2016,
https://arxiv.org/abs/1511.06581), noisy nets with factorised Gaussian noise (Fortunato et al.,
2018, https://arxiv.org/abs/1706.10295), n-step returns, proportional prioritised replay (Schaul
et al., 2016, https://arxiv.org/abs/1511.05952) with the cross-entropy as priority, and Double-Q
action selection (van Hasselt, Guez and Silver, 2016, https://arxiv.org/abs/1509.06461), plus
bootstrapping at time-limit truncations (Pardo et al., 2018, https://arxiv.org/abs/1712.00378).

It is ``agents.c51.C51`` with other defaults (``dueling``, ``prioritized``, ``n_step=3``,
``double_q``, no epsilon-greedy exploration after ``learning_starts``) and a network whose head
layers are ``agents.networks.NoisyDense`` (``sigma0 = noisy_sigma0``). A learner step is one Adam
step on C51's loss (``agents.c51.c51_loss``) with one noise sample ``xi`` for the online network
and one ``xi'`` for the target network:

    R = sum_{k<K} gamma^k r_k,   gamma_t = gamma^K (1 - terminated_{K-1}),   s' = next_obs_{K-1}
    a* = argmax_a Q(s', a; xi)
    target = Phi_z(R + gamma_t z, p_target(s', a*; xi'))
    loss = mean_b w_b (-sum_i target_i log p_i(s_b, a_b; xi))

where ``Phi_z`` is the projection onto the atoms (``rlkit.categorical_l2_project``). Acting draws
fresh noise at every env step and is greedy on the noisy ``Q`` (epsilon 0 by default, uniformly
random before ``learning_starts``); the evaluation policy is greedy on the noise-free ``Q`` (the
mean weights).
"""

from __future__ import annotations

from typing import Any, ClassVar

import chex
import jax
from flax import struct

from agents.base import hyperparameter, static_field
from agents.c51 import C51, C51Config, atoms, c51_loss, mean_q
from agents.dqn import DQN
from agents.networks import DistributionalQNetwork, conv_spec
from agents.presets import minatar_ids
from agents.registry import register_agent

__all__ = ["Rainbow", "RainbowConfig"]


@struct.dataclass
class RainbowConfig(C51Config):
    """Rainbow hyperparameters: ``C51Config``'s with Rainbow's defaults, and the noisy nets.
    Traced fields can be vmapped over; static fields fix the program."""

    dueling: bool = static_field(True)
    """Dueling head: logits = V + A - mean_a(A), per atom."""
    prioritized: bool = static_field(True)
    """Proportional prioritised replay (the cross-entropy is the priority)."""
    exploration_initial_eps: float = hyperparameter(0.0, low=0.0, high=1.0)
    """Epsilon at the start of the decay (after learning_starts); 0: noisy nets explore."""
    exploration_final_eps: float = hyperparameter(0.0, low=0.0, high=1.0)
    """Epsilon after the decay; 0: noisy nets explore."""
    noisy: bool = static_field(True)
    """Noisy head layers (factorised Gaussian noise); False gives C51 with Rainbow's other parts."""
    noisy_sigma0: float = static_field(0.5, low=0.0)
    """sigma0 of the noisy layers: the noise scales start at sigma0 / sqrt(inputs)."""


class Rainbow(C51):
    """Rainbow for discrete actions (module docstring)."""

    name = "rainbow"
    Config = RainbowConfig
    #: C51's CartPole preset with 64 gradient steps per update (with 32 the 50k steps were not
    #: enough) and a 20k buffer: prioritised sampling costs O(buffer) per gradient step.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "CartPole-v1": {**C51.PRESETS["CartPole-v1"], "gradient_steps": 64, "buffer_size": 20_000},
        # C51's, with CartPole's replay changes. It keeps C51's epsilon schedule, which on top of
        # the noisy nets gives epsilon 0 -> 0.05 (Rainbow starts at 0): without it one seed in
        # five stayed at -107.2 (docs/benchmarks.md).
        "Acrobot-v1": {**C51.PRESETS["Acrobot-v1"], "gradient_steps": 64, "buffer_size": 20_000},
        # C51's with the noisy head off and C51's epsilon 1 -> 0.07: prioritised replay, dueling,
        # double Q and 3-step windows stay. With the noisy head, six tries left 4 or 5 seeds of 5
        # at -200 (docs/benchmarks.md, "The Q-learning family on Acrobot-v1").
        "MountainCar-v0": {
            **C51.PRESETS["MountainCar-v0"],
            "noisy": False,
            "exploration_initial_eps": 1.0,
        },
        # MinAtar (every game, both action sets): DQN's MinAtar preset (the MinAtar paper's
        # network, buffer and target copies; Adam 1e-4, 8 envs x 16 steps, 32 gradient steps)
        # without its epsilon schedule, so Rainbow's parts stay at the Rainbow paper's values (the
        # config defaults): noisy heads and no epsilon, 51 atoms on [0, 100] (MinAtar's rewards
        # are non-negative), 3-step double-Q targets, dueling, prioritised replay (exponent 0.6,
        # beta 0.4 -> 1). About 460 env steps/s on one CPU core (docs/benchmarks.md).
        **{
            env_id: {
                k: v for k, v in DQN.PRESETS[env_id].items() if not k.startswith("exploration_")
            }
            for env_id in minatar_ids()
        },
    }

    def network(self, config: RainbowConfig) -> DistributionalQNetwork:
        return DistributionalQNetwork(
            num_actions=self.num_actions,
            num_atoms=config.num_atoms,
            hidden=tuple(config.hidden),
            activation=config.activation,
            dueling=config.dueling,
            conv=conv_spec(config, self.observation_space),
            noisy=config.noisy,
            sigma0=config.noisy_sigma0,
        )

    def q_values(
        self, config: RainbowConfig, params: Any, obs: chex.Array, key: chex.PRNGKey | None = None
    ) -> chex.Array:
        """``Q(obs, .) [N, A]``, the means of the distributions; with ``key``, of the network
        with fresh noise, else of its mean weights."""
        noise_key = None if key is None else jax.random.fold_in(key, 1)
        return mean_q(self.network(config).apply(params, obs, noise_key), atoms(config))

    def loss(self, config: RainbowConfig, params, target_params, batch, weights, key):
        """``agents.c51.c51_loss`` with one noise sample for the online network and one for the
        target network."""
        net = self.network(config)
        k_online, k_target = jax.random.split(key)
        return c51_loss(
            params,
            target_params,
            lambda p, o: net.apply(p, o, k_online),
            config,
            batch,
            weights,
            target_apply_fn=lambda p, o: net.apply(p, o, k_target),
        )


register_agent(Rainbow)
