"""DDPG: deep deterministic policy gradient.

"Continuous control with deep reinforcement learning", Lillicrap et al. (2016),
https://arxiv.org/abs/1509.02971.

DDPG is TD3 (``agents.td3``) with one critic, no target policy smoothing and an actor step on
every critic step, so it reuses TD3's learner step with those settings as its defaults. One
learner step on a batch of windows:

    y = sum_{k<K} gamma^k r_k + gamma^K (1 - terminated_{K-1}) Q'(s', mu'(s'))
    L_Q = mean_b w_b (Q(s, a) - y)^2 / 2
    L_mu = -mean_b Q(s, mu(s))

with Polyak targets ``Q'``, ``mu'`` (``tau``). Exploration is Gaussian (``rlkit.add_gaussian_noise``)
or, as in the paper, Ornstein-Uhlenbeck noise (``--exploration ou``,
``rlkit.ornstein_uhlenbeck_noise``; its state is part of the agent state, see ``agents.td3``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from flax import struct

from agents.base import hyperparameter, static_field
from agents.registry import register_agent
from agents.td3 import TD3, TD3Config

__all__ = ["DDPG", "DDPGConfig"]


@struct.dataclass
class DDPGConfig(TD3Config):
    """DDPG hyperparameters: TD3's fields with DDPG's defaults."""

    num_critics: int = static_field(1, low=1)
    """Critics (DDPG has one; more gives TD3's clipped double Q)."""
    policy_delay: int = static_field(1, low=1)
    """Critic steps per actor step (1: no delay)."""
    target_update_interval: int = hyperparameter(1, low=1)
    """Gradient steps between Polyak target updates."""
    target_policy_noise: float = hyperparameter(0.0, low=0.0)
    """Target policy smoothing noise (0: none, as in DDPG)."""


class DDPG(TD3):
    """DDPG for Box actions (see the module docstring)."""

    name = "ddpg"
    Config = DDPGConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "Pendulum-v1": {
            "total_timesteps": 10_000,
            "buffer_size": 10_000,
            "learning_rate": 1e-3,
            "actor_hidden": (64, 64),
            "critic_hidden": (64, 64),
        },
    }


register_agent(DDPG)
