"""Preset pieces shared by agents: the MinAtar network and one preset for every MinAtar id, and
the Atari settings (the Nature-DQN network, reward clipping) for the ALE ids in ``ATARI_IDS``.

A preset is a dict of config fields (``Agent.PRESETS[env_id]``, see ``Agent.default_config``).
"""

from __future__ import annotations

from typing import Any

from envs.minatar import GAMES

__all__ = [
    "ATARI_IDS",
    "ATARI_SETTINGS",
    "MINATAR_CNN",
    "minatar_ids",
    "per_atari_game",
    "per_minatar_game",
]

#: The network of the MinAtar paper (Young and Tian, 2019, https://arxiv.org/abs/1903.03176):
#: one 3x3 convolution of 16 channels at stride 1 (ReLU), then a dense layer of 128 units.
MINATAR_CNN: dict[str, Any] = {
    "cnn_channels": (16,),
    "cnn_kernels": (3,),
    "cnn_strides": (1,),
    "cnn_dense": 128,
}


def minatar_ids() -> list[str]:
    """Every MinAtar env id: ``MinAtar/<Game>-v1`` (minimal action set) and ``-v0`` (all six)."""
    return [cls(minimal_action_set=m).id for cls in GAMES.values() for m in (True, False)]


def per_minatar_game(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{env_id: values}`` for every MinAtar id, each with ``MINATAR_CNN`` under ``values``."""
    return {env_id: {**MINATAR_CNN, **values} for env_id in minatar_ids()}


#: The ALE ids that get Atari presets (any other ``ALE/...`` id runs with ``--cnn`` defaults).
_ATARI_GAMES = ("Breakout", "Pong", "SpaceInvaders", "Seaquest", "BeamRider", "Qbert", "Enduro")
ATARI_IDS: tuple[str, ...] = tuple(f"ALE/{game}-v5" for game in _ATARI_GAMES)

#: Every agent's Atari settings: the Nature-DQN torso (Mnih et al., 2015: convolutions of 32 8x8
#: stride 4, 64 4x4 stride 2, 64 3x3 stride 1, then 512 units; uint8 frames scaled to [0, 1] in
#: the network), learning from the sign of the reward (the returns logged stay the game's) and
#: unrolled gradient steps (XLA's CPU backend runs convolution gradients inside a loop several
#: times slower; docs/benchmarks.md).
#: The torso is every config's default (``cnn="nature"``, ``cnn_channels=(32, 64, 64)``, ...), so
#: only the rest is set here (presets hold what differs from the defaults).
ATARI_SETTINGS: dict[str, Any] = {
    "sign_rewards": True,
    "unroll_updates": True,
}


def per_atari_game(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{env_id: values}`` for every id of ``ATARI_IDS``, each with ``ATARI_SETTINGS`` under
    ``values``."""
    return {env_id: {**ATARI_SETTINGS, **values} for env_id in ATARI_IDS}
