"""Preset pieces shared by agents: the MinAtar network and one preset for every MinAtar id.

A preset is a dict of config fields (``Agent.PRESETS[env_id]``, see ``Agent.default_config``).
"""

from __future__ import annotations

from typing import Any

from envs.minatar import GAMES

__all__ = ["MINATAR_CNN", "minatar_ids", "per_minatar_game"]

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
