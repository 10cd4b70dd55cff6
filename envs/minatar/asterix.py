"""MinAtar Asterix, step for step the same as ``minatar.environments.asterix`` (1.0.15).

The player moves in the four directions within rows 1 to 8. Enemies and gold appear at the left
or right edge of a free row (one entity per row, rows 1 to 8) and cross the screen; picking up
gold gives +1, touching an enemy terminates the episode. A new entity spawns every
``spawn_speed`` steps (it starts at 10) and entities move every ``move_speed`` steps (it starts
at 5). With difficulty ramping, every 101 steps ``spawn_speed`` drops by one (down to 1) and on
every second of these ramps ``move_speed`` does too (down to 1), as in the reference.

Channels: ``player, enemy, trail, gold``. Minimal actions: ``n l u r d``.

Random numbers of a step: the sticky draw, then, when an entity spawns, ``rand() < 1/2`` (it
starts at the left and moves right), ``rand() < 1/3`` (it is gold) and ``randint(n_free)`` (which
of the free rows), one word each.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.minatar.base import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    MinAtarEnv,
    MinAtarParams,
    MinAtarState,
    one_hot_grid,
    randint_from_word,
    stack_channels,
    uniform_from_word,
)

__all__ = ["Asterix", "AsterixNoise", "AsterixState"]

RAMP_INTERVAL = 100
INIT_SPAWN_SPEED = 10
INIT_MOVE_INTERVAL = 5
_ROWS = np.arange(1, 9, dtype=np.int32)
_COLS = np.arange(10, dtype=np.int32)
_NONE = np.full((1,), -10, np.int32)


@struct.dataclass
class AsterixState(MinAtarState):
    """The reference's game variables.

    Attributes:
      entity_x: int32 [8], the column of the entity in row ``i + 1``.
      entity_active: bool [8], row ``i + 1`` holds an entity.
      entity_right: bool [8], it moves right (it spawned at the left edge).
      entity_gold: bool [8], it is gold (else an enemy).
      player_x, player_y: the player's cell.
      spawn_speed, spawn_timer: steps between spawns, and until the next one.
      move_speed, move_timer: steps between entity moves, and until the next one.
      ramp_timer, ramp_index: steps until the next difficulty ramp, and the ramps so far.
    """

    entity_x: chex.Array
    entity_active: chex.Array
    entity_right: chex.Array
    entity_gold: chex.Array
    player_x: chex.Array
    player_y: chex.Array
    spawn_speed: chex.Array
    spawn_timer: chex.Array
    move_speed: chex.Array
    move_timer: chex.Array
    ramp_timer: chex.Array
    ramp_index: chex.Array


class AsterixNoise(NamedTuple):
    """A step's random numbers (float32 uniforms, and the raw word of the row choice)."""

    sticky: chex.Array
    spawn_lr: chex.Array
    spawn_gold: chex.Array
    slot_word: chex.Array


class Asterix(MinAtarEnv):
    """MinAtar Asterix: ``MinAtar/Asterix-v1`` (actions ``n l u r d``) and ``-v0`` (all six)."""

    game = "asterix"
    title = "Asterix"
    channels = ("player", "enemy", "trail", "gold")
    minimal_actions = (0, 1, 2, 3, 4)
    num_words = 4

    def step_noise(self, key: chex.PRNGKey) -> AsterixNoise:
        """The step's random numbers, one word each."""
        words = self.step_words(key)
        return AsterixNoise(
            uniform_from_word(words[0]),
            uniform_from_word(words[1]),
            uniform_from_word(words[2]),
            words[3],
        )

    def reset_game(self, key: chex.PRNGKey, params: MinAtarParams) -> AsterixState:
        del key  # the start is deterministic
        i32 = lambda v: jnp.asarray(v, jnp.int32)
        no = jnp.zeros((8,), jnp.bool_)
        return AsterixState(
            time=i32(0),
            last_action=i32(0),
            terminal=jnp.asarray(False),
            entity_x=jnp.zeros((8,), jnp.int32),
            entity_active=no,
            entity_right=no,
            entity_gold=no,
            player_x=i32(5),
            player_y=i32(5),
            spawn_speed=i32(INIT_SPAWN_SPEED),
            spawn_timer=i32(INIT_SPAWN_SPEED),
            move_speed=i32(INIT_MOVE_INTERVAL),
            move_timer=i32(INIT_MOVE_INTERVAL),
            ramp_timer=i32(RAMP_INTERVAL),
            ramp_index=i32(0),
        )

    def step_game(
        self, state: AsterixState, action: chex.Array, noise: AsterixNoise, params: MinAtarParams
    ) -> tuple[AsterixState, chex.Array]:
        # Spawn into a free row, chosen uniformly among the free ones.
        spawn = state.spawn_timer == 0
        right = noise.spawn_lr < 0.5
        free = ~state.entity_active
        k = randint_from_word(noise.slot_word, jnp.maximum(jnp.sum(free), 1))
        chosen = spawn & free & (jnp.cumsum(free) == k + 1)
        x = jnp.where(chosen, jnp.where(right, 0, 9), state.entity_x)
        active = state.entity_active | chosen
        moves_right = jnp.where(chosen, right, state.entity_right)
        gold = jnp.where(chosen, noise.spawn_gold < 1 / 3, state.entity_gold)
        spawn_timer = jnp.where(spawn, state.spawn_speed, state.spawn_timer)

        px = jnp.clip(state.player_x - (action == LEFT) + (action == RIGHT), 0, 9)
        py = jnp.clip(state.player_y - (action == UP) + (action == DOWN), 1, 8)

        # Contact before the entities move ...
        touch = active & (x == px) & (_ROWS == py)
        reward = jnp.sum(touch & gold)
        terminal = jnp.any(touch & ~gold)
        active = active & ~(touch & gold)
        # ... and after, if they move this step.
        move = state.move_timer == 0
        x = jnp.where(move & active, x + jnp.where(moves_right, 1, -1), x)
        active = active & ((x >= 0) & (x <= 9))
        touch = move & active & (x == px) & (_ROWS == py)
        reward = reward + jnp.sum(touch & gold)
        terminal = terminal | jnp.any(touch & ~gold)
        active = active & ~(touch & gold)
        move_timer = jnp.where(move, state.move_speed, state.move_timer)

        # Difficulty ramp.
        spawn_speed, move_speed = state.spawn_speed, state.move_speed
        ramping = params.difficulty_ramping & ((spawn_speed > 1) | (move_speed > 1))
        ramp_now = ramping & (state.ramp_timer < 0)
        new_state = state.replace(
            entity_x=x,
            entity_active=active,
            entity_right=moves_right,
            entity_gold=gold,
            player_x=px,
            player_y=py,
            spawn_timer=spawn_timer - 1,
            move_timer=move_timer - 1,
            spawn_speed=spawn_speed - (ramp_now & (spawn_speed > 1)),
            move_speed=move_speed - (ramp_now & (move_speed > 1) & (state.ramp_index % 2 == 1)),
            ramp_index=state.ramp_index + ramp_now,
            ramp_timer=jnp.where(ramp_now, RAMP_INTERVAL, state.ramp_timer - (ramping & ~ramp_now)),
            terminal=terminal,
        )
        return new_state, reward.astype(jnp.float32)

    def get_obs(self, state: AsterixState, params: MinAtarParams | None = None) -> chex.Array:
        """The [10, 10, 4] bool observation: player, enemies, trails, gold."""
        del params

        # Per-row vectors padded to 10 rows with a column that matches nothing (rows 0 and 9
        # hold no entity); each channel is then one comparison (padding grids is slow on CPU).
        def rows(v):
            return jnp.concatenate([_NONE, v, _NONE])[:, None]

        x = jnp.where(state.entity_active, state.entity_x, -10)
        back = jnp.where(state.entity_active, x - jnp.where(state.entity_right, 1, -1), -10)
        gold = rows(state.entity_gold.astype(jnp.int32)) == 1
        here = rows(x) == _COLS[None, :]
        return stack_channels(
            [
                one_hot_grid(state.player_y, state.player_x),
                here & ~gold,
                rows(back) == _COLS[None, :],
                here & gold,
            ]
        )
