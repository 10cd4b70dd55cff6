"""What the five MinAtar games share: params, sticky actions, action sets and random draws.

MinAtar (K. Young and T. Tian, "MinAtar: An Atari-inspired testbed for thorough and reproducible
reinforcement learning experiments", 2019) renders each game on a 10 x 10 grid of boolean
channels. The reference is the ``minatar`` package (1.0.15). There, one game step is

    if u_sticky < sticky_action_prob: a = last_action        (u_sticky uniform in [0, 1))
    last_action = a
    reward, terminal = game.act(a)

where ``a`` is one of the six game actions ``n l u r d f`` (no-op, left, up, right, down, fire).
The ``-v0`` ids take all six; the ``-v1`` ids take the game's minimal action set, whose index
``i`` means game action ``minimal_actions[i]``. Sticky actions act on the game action.

Every random number a step needs is drawn from its key up front, as a few 32-bit words, and
turned into the numbers the reference draws from its ``numpy.random.RandomState``: a uniform
float ``u = (w >> 9) * 2**-23`` in [0, 1) where it calls ``rand()``, and an integer in
``[0, n)`` as ``((w >> 9) * n) >> 23`` where it calls ``randint(n)``. Each game's
``step_noise(key)`` returns them, so a test can feed the reference the very same numbers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Box, Discrete, Environment, EnvParams, EnvState
from envs.wrappers import fused_bits
from rlkit.base import tree_select
from rlkit.errors import RLKitError

__all__ = [
    "ACTION_NAMES",
    "DOWN",
    "FIRE",
    "LEFT",
    "NOOP",
    "NO_TIME_LIMIT",
    "RIGHT",
    "UP",
    "MinAtarEnv",
    "MinAtarParams",
    "MinAtarState",
    "one_hot_grid",
    "palette",
    "randint_from_word",
    "stack_channels",
    "uniform_from_word",
]

#: The six game actions, in the reference's order: no-op, left, up, right, down, fire.
ACTION_NAMES = ("n", "l", "u", "r", "d", "f")
NOOP, LEFT, UP, RIGHT, DOWN, FIRE = range(6)

#: The default ``max_episode_steps``: the reference's Gymnasium envs have no time limit.
NO_TIME_LIMIT = 2**31 - 1

_MANTISSA = np.float32(2.0**-23)


def uniform_from_word(word: chex.Array) -> chex.Array:
    """A float32 uniform in [0, 1) from the top 23 bits of a uint32 word: ``(w >> 9) * 2**-23``."""
    return (word >> np.uint32(9)).astype(jnp.float32) * _MANTISSA


def randint_from_word(word: chex.Array, n: chex.Array) -> chex.Array:
    """An int32 in ``[0, n)`` (``1 <= n <= 255``) from the top 23 bits of a uint32 word.

    ``((w >> 9) * n) >> 23``: uniform up to a relative bias below ``2**-23 n``.
    """
    top = (word >> np.uint32(9)).astype(jnp.int32)
    return (top * jnp.asarray(n, jnp.int32)) >> 23


@struct.dataclass
class MinAtarState(EnvState):
    """Fields every MinAtar state has: ``time``, the game action taken last and ``terminal``."""

    last_action: chex.Array
    terminal: chex.Array


@struct.dataclass
class MinAtarParams(EnvParams):
    """Params of every MinAtar game, with the reference's defaults.

    Attributes:
      sticky_action_prob: probability that a step repeats the previous game action instead of
        the one given (``minatar.Environment``'s ``sticky_action_prob``).
      difficulty_ramping: whether the game speeds up as it goes (``difficulty_ramping``);
        Breakout and Freeway do not ramp and ignore it.
      max_episode_steps: the time limit. The reference has none, so the default is
        ``NO_TIME_LIMIT``; episodes end only when the game reports terminal.
    """

    sticky_action_prob: float = 0.1
    difficulty_ramping: bool = True
    max_episode_steps: int = NO_TIME_LIMIT


class MinAtarEnv(Environment):
    """Base of the MinAtar games: sticky actions, the action set, spaces and terminal freezing.

    A subclass sets ``game`` (the reference's module name), ``channels`` (the observation's
    channel names in order), ``minimal_actions`` and ``num_words`` (random words per step, the
    sticky draw included), and implements ``reset_game``, ``step_game`` and ``get_obs``.

    As in the reference, a step taken after the game has ended changes nothing but
    ``last_action`` and ``time`` and gives reward 0 with ``terminated`` True.
    """

    game: str = ""
    title: str = ""
    channels: tuple[str, ...] = ()
    minimal_actions: tuple[int, ...] = tuple(range(6))
    num_words: int = 1

    def __init__(self, minimal_action_set: bool = True):
        """Builds the game.

        Args:
          minimal_action_set: True for the ``-v1`` action space (the game's minimal set), False
            for ``-v0`` (all six actions).
        """
        if not isinstance(minimal_action_set, bool):
            raise RLKitError(
                f"{type(self).__name__}: minimal_action_set must be a bool, "
                f"got {minimal_action_set!r}"
            )
        self.minimal_action_set = minimal_action_set
        self.action_set = self.minimal_actions if minimal_action_set else tuple(range(6))
        self.id = f"MinAtar/{self.title}-v{1 if minimal_action_set else 0}"

    @property
    def default_params(self) -> MinAtarParams:
        return MinAtarParams()

    @property
    def num_channels(self) -> int:
        """Number of observation channels."""
        return len(self.channels)

    def observation_space(self, params: MinAtarParams | None = None) -> Box:
        """``Box(0, 1, (10, 10, C), bool)``, as the reference's Gymnasium env."""
        return Box(0, 1, (10, 10, self.num_channels), jnp.bool_)

    def action_space(self, params: MinAtarParams | None = None) -> Discrete:
        """``Discrete(len(action_set))``: index ``i`` is game action ``action_set[i]``."""
        return Discrete(len(self.action_set))

    # ----------------------------------------------------------------------------------------
    # What a game implements
    # ----------------------------------------------------------------------------------------

    def step_noise(self, key: chex.PRNGKey) -> NamedTuple:
        """The random numbers one step draws from ``key`` (the sticky draw is ``sticky``)."""
        raise NotImplementedError

    def reset_game(self, key: chex.PRNGKey, params: MinAtarParams) -> MinAtarState:
        raise NotImplementedError

    def step_game(
        self, state: Any, action: chex.Array, noise: NamedTuple, params: MinAtarParams
    ) -> tuple[Any, chex.Array]:
        """One ``act`` of the game with game action ``action``; returns ``(state, reward)``."""
        raise NotImplementedError

    def get_obs(self, state: Any, params: MinAtarParams | None = None) -> chex.Array:
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------
    # The Environment interface
    # ----------------------------------------------------------------------------------------

    def reset_env(self, key: chex.PRNGKey, params: MinAtarParams) -> tuple[chex.Array, Any]:
        """Starts a game. ``last_action`` starts at 0 (no-op), as in a new reference env.

        Args:
          key: a PRNG key.
          params: the env params.

        Returns:
          ``(obs, state)`` with ``state.time == 0``.
        """
        state = self.reset_game(key, params)
        return self.get_obs(state, params), state

    def step_env(
        self, key: chex.PRNGKey, state: Any, action: chex.Array, params: MinAtarParams
    ) -> tuple[chex.Array, Any, chex.Array, chex.Array, dict]:
        """One step: the action set, the sticky action, then the game's ``act``.

        Args:
          key: a PRNG key (the sticky draw and the game's spawns).
          state: the current state.
          action: int scalar in ``[0, len(action_set))``.
          params: the env params.

        Returns:
          ``(obs, state, reward, terminated, info)``; ``terminated`` is the game's terminal flag.
        """
        action = jnp.asarray(action)
        chex.assert_rank(action, 0)
        chex.assert_type(action, int)
        noise = self.step_noise(key)
        if self.minimal_action_set and self.action_set != tuple(range(6)):
            game_action = jnp.asarray(self.action_set, jnp.int32)[action]
        else:
            game_action = action.astype(jnp.int32)
        sticky = noise.sticky < params.sticky_action_prob
        game_action = jnp.where(sticky, state.last_action, game_action)
        stepped, reward = self.step_game(state, game_action, noise, params)
        # A game that has ended stays as it is (the reference's act returns at once).
        stepped = tree_select(state.terminal, state, stepped)
        reward = jnp.where(state.terminal, 0.0, reward)
        stepped = stepped.replace(time=state.time + 1, last_action=game_action)
        return self.get_obs(stepped, params), stepped, reward, stepped.terminal, {}

    def render_rgb(
        self, state: Any, params: MinAtarParams | None = None, scale: int = 16
    ) -> chex.Array:
        """An RGB picture of the state: uint8 ``[10 * scale, 10 * scale, 3]``.

        Each cell takes the colour of its highest set channel (``palette(C)``), black if none.

        Args:
          state: the state to draw.
          params: the env params.
          scale: pixels per cell side.

        Returns:
          The frame, for ``render_mode="rgb_array"`` and videos.
        """
        obs = self.get_obs(state, params)
        level = jnp.max(
            obs * jnp.arange(1, self.num_channels + 1, dtype=jnp.int32)[None, None, :], axis=-1
        )
        image = jnp.asarray(palette(self.num_channels))[level]
        return jnp.repeat(jnp.repeat(image, scale, axis=0), scale, axis=1)

    def step_words(self, key: chex.PRNGKey) -> chex.Array:
        """The ``num_words`` random uint32 words a step draws from ``key``."""
        return fused_bits(key, self.num_words)


def palette(num_channels: int) -> np.ndarray:
    """uint8 [C + 1, 3] colours: black for an empty cell, then C hues around the colour wheel."""
    hues = np.arange(num_channels) / num_channels
    # A bright HSV wheel (saturation 0.8, value 1): each channel its own hue.
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
    rgb = 1.0 - 0.8 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    colours = np.concatenate([np.zeros((1, 3)), rgb])
    return np.round(colours * 255).astype(np.uint8)


def one_hot_grid(y: chex.Array, x: chex.Array) -> chex.Array:
    """A [10, 10] bool grid with one cell set, at row ``y`` and column ``x`` (none if outside)."""
    rows = jnp.arange(10, dtype=jnp.int32)
    return (rows[:, None] == y) & (rows[None, :] == x)


def stack_channels(channels: list[chex.Array]) -> chex.Array:
    """[10, 10] bool grids into one [10, 10, C] observation."""
    return jnp.stack(channels, axis=-1)
