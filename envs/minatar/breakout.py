"""MinAtar Breakout, step for step the same as ``minatar.environments.breakout`` (1.0.15).

The paddle moves along the bottom row; the ball moves one cell diagonally per step, bounces off
the walls, the ceiling, the bricks (three rows, 1 to 3) and the paddle, and the episode
terminates when it reaches the bottom row beside the paddle. Breaking a brick gives +1; when
the ball comes down to the paddle's row with no bricks left, the three rows come back. A ball
that has just broken a brick passes through the next brick it meets (the reference's
``strike`` flag). The ball starts in row 3, at the left going down-right or at the right going
down-left, with equal probability.

Channels: ``paddle, ball, trail, brick``. Minimal actions: ``n l r``. No difficulty ramp.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp
from flax import struct

from envs.minatar.base import (
    LEFT,
    RIGHT,
    MinAtarEnv,
    MinAtarParams,
    MinAtarState,
    one_hot_grid,
    randint_from_word,
    stack_channels,
    uniform_from_word,
)
from envs.wrappers import fused_bits

__all__ = ["Breakout", "BreakoutNoise", "BreakoutState"]

# Ball directions as in the reference: 0 up-left, 1 up-right, 2 down-right, 3 down-left.
_DX = (-1, 1, 1, -1)
_DY = (-1, -1, 1, 1)


@struct.dataclass
class BreakoutState(MinAtarState):
    """The reference's game variables (int32 scalars unless noted).

    Attributes:
      ball_x, ball_y: the ball's cell; ``last_x, last_y`` its previous cell (the trail).
      ball_dir: 0 up-left, 1 up-right, 2 down-right, 3 down-left.
      pos: the paddle's column (row 9).
      brick_map: bool [10, 10], the bricks.
      strike: bool, the ball hit a brick on the previous step.
    """

    ball_x: chex.Array
    ball_y: chex.Array
    ball_dir: chex.Array
    pos: chex.Array
    brick_map: chex.Array
    strike: chex.Array
    last_x: chex.Array
    last_y: chex.Array


class BreakoutNoise(NamedTuple):
    """A step's random numbers: the sticky draw."""

    sticky: chex.Array


def _initial_bricks() -> chex.Array:
    rows = jnp.arange(10)
    return jnp.broadcast_to(((rows >= 1) & (rows <= 3))[:, None], (10, 10))


class Breakout(MinAtarEnv):
    """MinAtar Breakout: ``MinAtar/Breakout-v1`` (actions ``n l r``) and ``-v0`` (all six)."""

    game = "breakout"
    title = "Breakout"
    channels = ("paddle", "ball", "trail", "brick")
    minimal_actions = (0, 1, 3)
    num_words = 1

    def step_noise(self, key: chex.PRNGKey) -> BreakoutNoise:
        """The step's random numbers (the reference's ``rand()`` for the sticky action)."""
        return BreakoutNoise(sticky=uniform_from_word(self.step_words(key)[0]))

    def reset_noise(self, key: chex.PRNGKey) -> chex.Array:
        """The reset's ``randint(2)``: 0 starts the ball at the left, 1 at the right."""
        return randint_from_word(fused_bits(key, 1)[0], 2)

    def reset_game(self, key: chex.PRNGKey, params: MinAtarParams) -> BreakoutState:
        right = self.reset_noise(key) == 1
        x = jnp.where(right, 9, 0).astype(jnp.int32)
        i32 = lambda v: jnp.asarray(v, jnp.int32)
        return BreakoutState(
            time=i32(0),
            last_action=i32(0),
            terminal=jnp.asarray(False),
            ball_x=x,
            ball_y=i32(3),
            ball_dir=jnp.where(right, 3, 2).astype(jnp.int32),
            pos=i32(4),
            brick_map=_initial_bricks(),
            strike=jnp.asarray(False),
            last_x=x,
            last_y=i32(3),
        )

    def step_game(
        self, state: BreakoutState, action: chex.Array, noise: BreakoutNoise, params: MinAtarParams
    ) -> tuple[BreakoutState, chex.Array]:
        pos = jnp.clip(state.pos + (action == RIGHT) - (action == LEFT), 0, 9)
        d = state.ball_dir
        dx = jnp.where((d == 1) | (d == 2), 1, -1)
        dy = jnp.where(d >= 2, 1, -1)
        new_x = state.ball_x + dx
        new_y = state.ball_y + dy
        # Walls flip the horizontal direction (0 <-> 1, 2 <-> 3).
        wall = (new_x < 0) | (new_x > 9)
        new_x = jnp.clip(new_x, 0, 9)
        d = jnp.where(wall, d ^ 1, d)
        # Then exactly one of: ceiling, brick, bottom row.
        ceiling = new_y < 0
        new_y = jnp.maximum(new_y, 0)
        cell = one_hot_grid(new_y, new_x)
        on_brick = ~ceiling & jnp.any(cell & state.brick_map)
        hit = on_brick & ~state.strike
        bottom = ~ceiling & ~on_brick & (new_y == 9)
        bricks = jnp.where(hit, state.brick_map & ~cell, state.brick_map)
        bricks = jnp.where(bottom & ~jnp.any(bricks), _initial_bricks(), bricks)
        paddle_straight = bottom & (state.ball_x == pos)
        paddle_corner = bottom & ~paddle_straight & (new_x == pos)
        terminal = bottom & ~paddle_straight & ~paddle_corner
        flip_y = ceiling | hit | paddle_straight  # 0 <-> 3, 1 <-> 2
        d = jnp.where(flip_y, 3 - d, jnp.where(paddle_corner, d ^ 2, d))
        new_y = jnp.where(hit | paddle_straight | paddle_corner, state.ball_y, new_y)
        new_state = state.replace(
            ball_x=new_x,
            ball_y=new_y,
            ball_dir=d,
            pos=pos,
            brick_map=bricks,
            strike=on_brick,
            last_x=state.ball_x,
            last_y=state.ball_y,
            terminal=terminal,
        )
        return new_state, hit.astype(jnp.float32)

    def get_obs(self, state: BreakoutState, params: MinAtarParams | None = None) -> chex.Array:
        """The [10, 10, 4] bool observation: paddle, ball, trail, bricks."""
        del params
        return stack_channels(
            [
                one_hot_grid(9, state.pos),
                one_hot_grid(state.ball_y, state.ball_x),
                one_hot_grid(state.last_y, state.last_x),
                state.brick_map,
            ]
        )
