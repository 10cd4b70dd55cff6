"""Atari (``ALE/<Game>-v5``) through ale-py's Gymnasium envs, with the standard preprocessing.

``ALE/...`` ids are ale-py's own Gymnasium envs (``pip install 'rlkit[atari]'``; the wheel ships
the ROMs). Every place that makes a Gymnasium env for rlkit (``envs.host.make_gymnasium`` and
``make_gymnasium_vec``: training's ``HostVecEnv``, evaluation, videos, the space probe) makes an
Atari id through ``atari_make_kwargs`` and ``atari_preprocessing``, so training and evaluation see
the same observations:

* the base env is made with ``frameskip=1`` and ale-py's v5 defaults otherwise: sticky actions
  (``repeat_action_probability=0.25``, per emulator frame), the minimal action set
  (``full_action_space=False``) and the 108,000-frame cut (a truncation);
* ``gymnasium.wrappers.AtariPreprocessing``: up to 30 no-op actions at reset, each action repeated
  for 4 frames with the max over the last 2, 84x84 grey ``uint8``, no episode end at a lost life
  (the return is the game's, in training and in evaluation);
* ``gymnasium.wrappers.FrameStackObservation`` of the last 4 frames (the reset frame repeated at
  the start), with the stack moved last: observations are ``uint8 [84, 84, 4]``, the image layout
  ``[H, W, C]`` of rlkit's CNN torsos (which scale ``uint8`` to [0, 1]).

Rewards stay the game's: reward clipping is the agent's (``sign_rewards`` of its config), so the
logged episode returns are the game scores.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformObservation

__all__ = [
    "ATARI_NAMESPACE",
    "FRAME_STACK",
    "atari_make_kwargs",
    "atari_preprocessing",
    "is_atari_id",
]

#: The Gymnasium namespace of ale-py's envs.
ATARI_NAMESPACE = "ALE"
#: Frames per observation.
FRAME_STACK = 4


def is_atari_id(env_id: Any) -> bool:
    """Whether ``env_id`` names one of ale-py's Gymnasium envs (``"ALE/<Game>-v5"``)."""
    return isinstance(env_id, str) and env_id.startswith(ATARI_NAMESPACE + "/")


def atari_make_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``gymnasium.make`` for an ALE id's base env: ``frameskip=1`` (the
    frame skip and max-pooling are ``atari_preprocessing``'s); the rest are ale-py's v5 defaults."""
    return {"frameskip": 1}


def _stack_last(obs: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(obs), 0, -1)


def atari_preprocessing(env: gymnasium.Env) -> gymnasium.Env:
    """The standard Atari preprocessing around a base env made with ``atari_make_kwargs``.

    Args:
      env: an ale-py env made with ``frameskip=1``.

    Returns:
      The wrapped env: observations ``uint8 [84, 84, 4]`` (see the module docstring).
    """
    env = AtariPreprocessing(
        env,
        noop_max=30,
        frame_skip=4,
        screen_size=84,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    env = FrameStackObservation(env, FRAME_STACK)
    stacked = env.observation_space
    space = gymnasium.spaces.Box(
        low=_stack_last(stacked.low), high=_stack_last(stacked.high), dtype=stacked.dtype
    )
    return TransformObservation(env, _stack_last, space)
