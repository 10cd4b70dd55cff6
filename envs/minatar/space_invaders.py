"""MinAtar Space Invaders, step for step the same as ``minatar.environments.space_invaders``.

The cannon moves along the bottom row and fires upward (at most every 5 steps). A block of 4 x 6
aliens moves sideways one cell every ``alien_move_timer`` steps, and down one row (reversing) when
it reaches an edge; it moves faster as it shrinks (the interval is ``min(aliens left,
enemy_move_interval)``). Every 10 steps the alien nearest the cannon's column (the lowest one in
the nearest column holding aliens, ties to the left) drops a bullet. Each alien shot gives +1;
the episode terminates when an alien or an alien bullet reaches the cannon, or the aliens turn
while in the bottom row. A cleared wave is replaced by a new one and, with difficulty ramping,
``enemy_move_interval`` drops by one, from 12 down to 6.

Channels: ``cannon, alien, alien_left, alien_right, friendly_bullet, enemy_bullet``. Minimal
actions: ``n l r f``. The game draws no random numbers apart from the sticky action.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.minatar.base import (
    FIRE,
    LEFT,
    RIGHT,
    MinAtarEnv,
    MinAtarParams,
    MinAtarState,
    one_hot_grid,
    stack_channels,
    uniform_from_word,
)

__all__ = ["SpaceInvaders", "SpaceInvadersNoise", "SpaceInvadersState"]

SHOT_COOL_DOWN = 5
ENEMY_MOVE_INTERVAL = 12
ENEMY_SHOT_INTERVAL = 10
_IDX = np.arange(10, dtype=np.int32)


@struct.dataclass
class SpaceInvadersState(MinAtarState):
    """The reference's game variables.

    Attributes:
      pos: the cannon's column (row 9).
      alien_map, f_bullet_map, e_bullet_map: bool [10, 10] grids of aliens, the cannon's
        bullets and the aliens' bullets.
      alien_dir: -1 (moving left) or +1.
      enemy_move_interval: the longest interval between alien moves (12, ramping down to 6).
      alien_move_timer, alien_shot_timer, shot_timer: steps until the aliens move, shoot, and
        until the cannon may fire.
      ramp_index: waves cleared with a ramp.
    """

    pos: chex.Array
    alien_map: chex.Array
    f_bullet_map: chex.Array
    e_bullet_map: chex.Array
    alien_dir: chex.Array
    enemy_move_interval: chex.Array
    alien_move_timer: chex.Array
    alien_shot_timer: chex.Array
    ramp_index: chex.Array
    shot_timer: chex.Array


class SpaceInvadersNoise(NamedTuple):
    """A step's random numbers: the sticky draw."""

    sticky: chex.Array


def _initial_aliens() -> chex.Array:
    return ((_IDX <= 3)[:, None]) & ((_IDX >= 2) & (_IDX <= 7))[None, :]


class SpaceInvaders(MinAtarEnv):
    """MinAtar Space Invaders: ``MinAtar/SpaceInvaders-v1`` (``n l r f``) and ``-v0``."""

    game = "space_invaders"
    title = "SpaceInvaders"
    channels = (
        "cannon",
        "alien",
        "alien_left",
        "alien_right",
        "friendly_bullet",
        "enemy_bullet",
    )
    minimal_actions = (0, 1, 3, 5)
    num_words = 1

    def step_noise(self, key: chex.PRNGKey) -> SpaceInvadersNoise:
        """The step's random numbers (the sticky draw)."""
        return SpaceInvadersNoise(sticky=uniform_from_word(self.step_words(key)[0]))

    def reset_game(self, key: chex.PRNGKey, params: MinAtarParams) -> SpaceInvadersState:
        del key  # the start is deterministic
        i32 = lambda v: jnp.asarray(v, jnp.int32)
        empty = jnp.zeros((10, 10), jnp.bool_)
        return SpaceInvadersState(
            time=i32(0),
            last_action=i32(0),
            terminal=jnp.asarray(False),
            pos=i32(5),
            alien_map=_initial_aliens(),
            f_bullet_map=empty,
            e_bullet_map=empty,
            alien_dir=i32(-1),
            enemy_move_interval=i32(ENEMY_MOVE_INTERVAL),
            alien_move_timer=i32(ENEMY_MOVE_INTERVAL),
            alien_shot_timer=i32(ENEMY_SHOT_INTERVAL),
            ramp_index=i32(0),
            shot_timer=i32(0),
        )

    def step_game(
        self,
        state: SpaceInvadersState,
        action: chex.Array,
        noise: SpaceInvadersNoise,
        params: MinAtarParams,
    ) -> tuple[SpaceInvadersState, chex.Array]:
        no_row = jnp.zeros((1, 10), jnp.bool_)
        fire = (action == FIRE) & (state.shot_timer == 0)
        f_bullets = state.f_bullet_map | (fire & one_hot_grid(9, state.pos))
        shot_timer = jnp.where(fire, SHOT_COOL_DOWN, state.shot_timer)
        pos = jnp.clip(state.pos - (action == LEFT) + (action == RIGHT), 0, 9)
        at_cannon = _IDX == pos  # [10], the bottom row's cell of the cannon

        # Bullets: the cannon's move up, the aliens' down.
        f_bullets = jnp.concatenate([f_bullets[1:], no_row], axis=0)
        e_bullets = jnp.concatenate([no_row, state.e_bullet_map[:-1]], axis=0)
        aliens = state.alien_map
        terminal = jnp.any(e_bullets[9] & at_cannon) | jnp.any(aliens[9] & at_cannon)

        # Aliens move: sideways, or down and turn at an edge.
        move = state.alien_move_timer == 0
        count = jnp.sum(aliens)
        alien_move_timer = jnp.where(
            move, jnp.minimum(count, state.enemy_move_interval), state.alien_move_timer
        )
        turn = move & (
            (jnp.any(aliens[:, 0]) & (state.alien_dir < 0))
            | (jnp.any(aliens[:, 9]) & (state.alien_dir > 0))
        )
        alien_dir = jnp.where(turn, -state.alien_dir, state.alien_dir)
        terminal = terminal | (turn & jnp.any(aliens[9]))
        down = jnp.concatenate([aliens[-1:], aliens[:-1]], axis=0)
        left = jnp.concatenate([aliens[:, 1:], aliens[:, :1]], axis=1)
        right = jnp.concatenate([aliens[:, -1:], aliens[:, :-1]], axis=1)
        side = jnp.where(alien_dir < 0, left, right)
        aliens = jnp.where(move, jnp.where(turn, down, side), aliens)
        terminal = terminal | (move & jnp.any(aliens[9] & at_cannon))

        # The alien nearest the cannon's column shoots.
        shoot = state.alien_shot_timer == 0
        columns = jnp.any(aliens, axis=0)
        score = jnp.where(columns, jnp.abs(_IDX - pos) * 16 + _IDX, 1 << 10)
        col = jnp.argmin(score)
        in_col = jnp.any(aliens & (_IDX == col)[None, :], axis=1)
        row = jnp.max(jnp.where(in_col, _IDX, -1))
        e_bullets = e_bullets | (shoot & one_hot_grid(row, col))
        alien_shot_timer = jnp.where(shoot, ENEMY_SHOT_INTERVAL, state.alien_shot_timer)

        kill = aliens & f_bullets
        reward = jnp.sum(kill)
        aliens = aliens & ~kill
        f_bullets = f_bullets & ~kill

        # A cleared wave comes back, a little faster with ramping.
        cleared = ~jnp.any(aliens)
        ramp = cleared & (state.enemy_move_interval > 6) & params.difficulty_ramping
        new_state = state.replace(
            pos=pos,
            alien_map=aliens | (cleared & _initial_aliens()),
            f_bullet_map=f_bullets,
            e_bullet_map=e_bullets,
            alien_dir=alien_dir,
            enemy_move_interval=state.enemy_move_interval - ramp,
            alien_move_timer=alien_move_timer - 1,
            alien_shot_timer=alien_shot_timer - 1,
            ramp_index=state.ramp_index + ramp,
            shot_timer=shot_timer - (shot_timer > 0),
            terminal=terminal,
        )
        return new_state, reward.astype(jnp.float32)

    def get_obs(self, state: SpaceInvadersState, params: MinAtarParams | None = None) -> chex.Array:
        """The [10, 10, 6] bool observation."""
        del params
        aliens = state.alien_map
        return stack_channels(
            [
                one_hot_grid(9, state.pos),
                aliens,
                aliens & (state.alien_dir < 0),
                aliens & (state.alien_dir > 0),
                state.f_bullet_map,
                state.e_bullet_map,
            ]
        )
