"""MinAtar Freeway, step for step the same as ``minatar.environments.freeway`` (1.0.15).

The chicken starts at the bottom (row 9, column 4) and may move up or down one row at most every
third step. Reaching the top row gives +1 and puts it back at the bottom, and re-draws every
car's speed and direction (positions are kept). Eight cars, one in each of rows 1 to 8, drive
left or right and wrap around; a car with speed ``s`` in 1..5 moves one cell every ``s`` steps
(every ``s + 1``-th step, counting the reference's timer). Being hit sends the chicken back to
the bottom. The game ends after 2500 steps: the reference's ``terminate_timer`` starts at 2500,
drops by one per step and the game is terminal when it goes below 0, on the 2501st step. That
is the reference Gymnasium env's ``terminated``, and it is reported as ``terminated`` here too
(the remaining time is not in the observation; see docs/envs.md).

Channels: ``chicken, car, speed1, speed2, speed3, speed4, speed5`` (the trail behind each car
in the channel of its speed). Minimal actions: ``n u d``. No difficulty ramp.

Random numbers: each car's speed is the reference's ``randint(1, 6)``, from one word's top 23
bits, and its direction is that word's lowest bit (the reference's ``sign(rand() - 0.5)``; the
``rand()`` it stands for is reported as 0.25 or 0.75 by ``reset_noise``/``step_noise``).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.minatar.base import (
    DOWN,
    UP,
    MinAtarEnv,
    MinAtarParams,
    MinAtarState,
    one_hot_grid,
    randint_from_word,
    stack_channels,
    uniform_from_word,
)
from envs.wrappers import fused_bits

__all__ = ["Freeway", "FreewayNoise", "FreewayState"]

PLAYER_SPEED = 3
TIME_LIMIT = 2500
_COLS = np.arange(10, dtype=np.int32)
_NONE = np.full((1,), -10, np.int32)


@struct.dataclass
class FreewayState(MinAtarState):
    """The reference's game variables.

    Attributes:
      car_x: int32 [8], car ``i``'s column (it drives in row ``i + 1``).
      car_timer: int32 [8], steps until car ``i`` moves next (0: it moves this step).
      car_speed: int32 [8], the signed speed: its magnitude is the move interval, its sign the
        direction (positive: right).
      pos: the chicken's row (column 4).
      move_timer: steps until the chicken may move again.
      terminate_timer: the reference's countdown; the game ends when it goes below 0.
    """

    car_x: chex.Array
    car_timer: chex.Array
    car_speed: chex.Array
    pos: chex.Array
    move_timer: chex.Array
    terminate_timer: chex.Array


class FreewayNoise(NamedTuple):
    """A step's random numbers: the sticky draw and the cars' new speeds, if the chicken scores.

    ``speeds`` is int32 [8] signed; ``directions_u`` is float64-exact float32 [8], the uniform
    the reference's direction draw stands for (0.25 for left, 0.75 for right).
    """

    sticky: chex.Array
    speeds: chex.Array
    directions_u: chex.Array


def _speeds(words: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Signed speeds and the direction uniforms from 8 words."""
    magnitude = 1 + randint_from_word(words, 5)
    right = (words & np.uint32(1)).astype(jnp.bool_)
    return jnp.where(right, magnitude, -magnitude), jnp.where(right, 0.75, 0.25).astype(jnp.float32)


class Freeway(MinAtarEnv):
    """MinAtar Freeway: ``MinAtar/Freeway-v1`` (actions ``n u d``) and ``-v0`` (all six)."""

    game = "freeway"
    title = "Freeway"
    channels = ("chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5")
    minimal_actions = (0, 2, 4)
    num_words = 9

    def step_noise(self, key: chex.PRNGKey) -> FreewayNoise:
        """The step's random numbers: word 0 the sticky draw, words 1 to 8 the cars' speeds."""
        words = self.step_words(key)
        speeds, directions_u = _speeds(words[1:])
        return FreewayNoise(uniform_from_word(words[0]), speeds, directions_u)

    def reset_words(self, key: chex.PRNGKey) -> chex.Array:
        """The reset's 8 random words, one per car."""
        return fused_bits(key, 8)

    def reset_noise(self, key: chex.PRNGKey) -> FreewayNoise:
        """The reset's random numbers (``sticky`` is unused and 1)."""
        speeds, directions_u = _speeds(self.reset_words(key))
        return FreewayNoise(jnp.ones((), jnp.float32), speeds, directions_u)

    def reset_game(self, key: chex.PRNGKey, params: MinAtarParams) -> FreewayState:
        speeds = self.reset_noise(key).speeds
        i32 = lambda v: jnp.asarray(v, jnp.int32)
        return FreewayState(
            time=i32(0),
            last_action=i32(0),
            terminal=jnp.asarray(False),
            car_x=jnp.zeros((8,), jnp.int32),
            car_timer=jnp.abs(speeds),
            car_speed=speeds,
            pos=i32(9),
            move_timer=i32(PLAYER_SPEED),
            terminate_timer=i32(TIME_LIMIT),
        )

    def step_game(
        self, state: FreewayState, action: chex.Array, noise: FreewayNoise, params: MinAtarParams
    ) -> tuple[FreewayState, chex.Array]:
        ready = state.move_timer == 0
        up = (action == UP) & ready
        down = (action == DOWN) & ready
        move_timer = jnp.where(up | down, PLAYER_SPEED, state.move_timer)
        pos = jnp.clip(state.pos - up + down, 0, 9)
        win = pos == 0
        speed = jnp.where(win, noise.speeds, state.car_speed)
        timer = jnp.where(win, jnp.abs(noise.speeds), state.car_timer)
        pos = jnp.where(win, 9, pos)
        # Only the car in the chicken's row can hit it, before or after that car moves.
        in_row = jnp.arange(1, 9, dtype=jnp.int32) == pos
        moving = timer == 0
        x = state.car_x + jnp.where(moving, jnp.where(speed > 0, 1, -1), 0)
        x = jnp.where(x < 0, 9, jnp.where(x > 9, 0, x))
        hit = jnp.any(in_row & ((state.car_x == 4) | (moving & (x == 4))))
        pos = jnp.where(hit, 9, pos)
        terminate_timer = state.terminate_timer - 1
        new_state = state.replace(
            car_x=x,
            car_timer=jnp.where(moving, jnp.abs(speed), timer - 1),
            car_speed=speed,
            pos=pos,
            move_timer=move_timer - (move_timer > 0),
            terminate_timer=terminate_timer,
            terminal=terminate_timer < 0,
        )
        return new_state, win.astype(jnp.float32)

    def get_obs(self, state: FreewayState, params: MinAtarParams | None = None) -> chex.Array:
        """The [10, 10, 7] bool observation: chicken, cars, and each car's trail by speed."""
        del params

        # Per-row vectors padded to 10 rows with a column that matches nothing (rows 0 and 9
        # have no car); each channel is then one comparison (padding grids is slow on CPU).
        def rows(v):
            return jnp.concatenate([_NONE, v, _NONE])[:, None]

        back = state.car_x - jnp.where(state.car_speed > 0, 1, -1)
        back = jnp.where(back < 0, 9, jnp.where(back > 9, 0, back))
        cols = _COLS[None, :]
        magnitude = rows(jnp.abs(state.car_speed))
        trail = rows(back) == cols
        return stack_channels(
            [one_hot_grid(state.pos, 4), rows(state.car_x) == cols]
            + [trail & (magnitude == s) for s in range(1, 6)]
        )
