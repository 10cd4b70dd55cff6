"""MinAtar Seaquest, step for step the same as ``minatar.environments.seaquest`` (1.0.15).

The player's submarine (two cells: front and back) moves in rows 0 to 8 and fires torpedoes
forward (at most every 5 steps). Enemy fish and submarines enter rows 1 to 8 from either side and
cross the screen (one cell every ``move_speed + 1`` steps); enemy submarines fire bullets every
11 steps. Shooting an enemy gives +1. Divers cross the screen too; touching one picks it up (at
most 6 aboard). Oxygen (200) drops by one per step below the surface. Surfacing (reaching row 0
after being below) with at least one diver restores the oxygen and drops one diver; with 6
divers it drops all of them and gives ``oxygen * 10 // 200`` extra reward; every surfacing
ramps the difficulty (enemies spawn more often, and on every second surfacing move faster).
The episode terminates when the submarine is hit by an enemy or an enemy bullet, runs out of
oxygen, or surfaces with no diver. This is the game as fixed in ``minatar`` 1.0.11, where the
oxygen runs out at 0 and the oxygen bonus uses the oxygen left (and, as in the reference, the
diver count after surfacing with 6 divers is -1, which shows as an empty gauge).

Channels: ``sub_front, sub_back, friendly_bullet, trail, enemy_bullet, enemy_fish, enemy_sub,
oxygen_guage, diver_guage, diver``. All six actions are in the minimal set.

The reference keeps its entities in Python lists, in spawn order, and visits them newest
first. Here they live in fixed-size arrays, each entity tagged with the step it spawned on,
which gives the same order where it matters: a torpedo hits the oldest fish in its cell, else
the oldest submarine; an enemy moving into a torpedo takes it if it is a submarine, else the
newest fish; divers are picked up newest first. The arrays hold ``MAX_ENEMIES`` enemies (the
game has at most 30 at once: one spawn a step at most, and at the fastest they leave the
screen within 30 steps), ``MAX_DIVERS`` divers and ``MAX_TORPEDOES`` torpedoes; each enemy slot
carries the one bullet its submarine may have in flight (a submarine fires every 11 steps and a
bullet is gone within 10).

Random numbers of a step, one word each: the sticky draw; for an enemy spawn ``rand() < 1/2``
(it enters at the left), ``rand() < 1/3`` (it is a submarine) and ``randint(1, 9)`` (its row);
for a diver spawn ``rand() < 1/2`` and ``randint(1, 9)``.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.minatar.base import (
    DOWN,
    FIRE,
    LEFT,
    RIGHT,
    UP,
    MinAtarEnv,
    MinAtarParams,
    MinAtarState,
    randint_from_word,
    uniform_from_word,
)

__all__ = [
    "MAX_DIVERS",
    "MAX_ENEMIES",
    "MAX_TORPEDOES",
    "Seaquest",
    "SeaquestNoise",
    "SeaquestState",
]

MAX_OXYGEN = 200
INIT_SPAWN_SPEED = 20
DIVER_SPAWN_SPEED = 30
INIT_MOVE_INTERVAL = 5
SHOT_COOL_DOWN = 5
ENEMY_SHOT_INTERVAL = 10
DIVER_MOVE_INTERVAL = 5
MAX_ENEMIES = 32
MAX_DIVERS = 4
MAX_TORPEDOES = 3
_IDX = np.arange(10, dtype=np.int32)
_NEVER = np.int32(2**31 - 1)


@struct.dataclass
class SeaquestState(MinAtarState):
    """The reference's game variables, its entity lists as fixed-size arrays.

    Attributes:
      sub_x, sub_y: the submarine's front cell; ``sub_or`` True when it faces right.
      oxygen, diver_count: oxygen left and divers aboard.
      e_spawn_speed, e_spawn_timer, d_spawn_timer: enemy spawn interval, steps until the next
        enemy and the next diver.
      move_speed: enemy move interval; ``ramp_index``: ramps so far.
      shot_timer: steps until the submarine may fire; ``surface``: it is at the surface and
        has surfaced already.
      enemy_*: [MAX_ENEMIES] fish and submarines: cell, direction (``right``), ``is_sub``,
        ``move_timer``, ``shot_timer`` (submarines), ``born`` (the step it spawned on) and
        ``active``.
      e_bullet_*: [MAX_ENEMIES] the bullet fired by the submarine in the same slot.
      diver_*: [MAX_DIVERS] divers: cell, direction, move timer, ``born``, ``active``.
      torpedo_*: [MAX_TORPEDOES] the submarine's torpedoes: cell, direction, ``active``.
    """

    sub_x: chex.Array
    sub_y: chex.Array
    sub_or: chex.Array
    oxygen: chex.Array
    diver_count: chex.Array
    e_spawn_speed: chex.Array
    e_spawn_timer: chex.Array
    d_spawn_timer: chex.Array
    move_speed: chex.Array
    ramp_index: chex.Array
    shot_timer: chex.Array
    surface: chex.Array
    enemy_x: chex.Array
    enemy_y: chex.Array
    enemy_right: chex.Array
    enemy_is_sub: chex.Array
    enemy_move_timer: chex.Array
    enemy_shot_timer: chex.Array
    enemy_born: chex.Array
    enemy_active: chex.Array
    e_bullet_x: chex.Array
    e_bullet_y: chex.Array
    e_bullet_right: chex.Array
    e_bullet_active: chex.Array
    diver_x: chex.Array
    diver_y: chex.Array
    diver_right: chex.Array
    diver_timer: chex.Array
    diver_born: chex.Array
    diver_active: chex.Array
    torpedo_x: chex.Array
    torpedo_y: chex.Array
    torpedo_right: chex.Array
    torpedo_active: chex.Array


class SeaquestNoise(NamedTuple):
    """A step's random numbers (float32 uniforms, int32 rows)."""

    sticky: chex.Array
    enemy_lr: chex.Array
    enemy_sub: chex.Array
    enemy_row: chex.Array
    diver_lr: chex.Array
    diver_row: chex.Array


def _first(free: chex.Array) -> chex.Array:
    """A mask of the first True entry of ``free`` (all False if none)."""
    index = jnp.arange(free.shape[0], dtype=jnp.int32)
    return free & (index == jnp.argmax(free))


def _step_x(x: chex.Array, right: chex.Array) -> chex.Array:
    return x + jnp.where(right, 1, -1)


def _inside(x: chex.Array) -> chex.Array:
    return (x >= 0) & (x <= 9)


class Seaquest(MinAtarEnv):
    """MinAtar Seaquest: ``MinAtar/Seaquest-v1`` and ``-v0`` (both all six actions)."""

    game = "seaquest"
    title = "Seaquest"
    channels = (
        "sub_front",
        "sub_back",
        "friendly_bullet",
        "trail",
        "enemy_bullet",
        "enemy_fish",
        "enemy_sub",
        "oxygen_guage",
        "diver_guage",
        "diver",
    )
    minimal_actions = (0, 1, 2, 3, 4, 5)
    num_words = 6

    def step_noise(self, key: chex.PRNGKey) -> SeaquestNoise:
        """The step's random numbers, one word each."""
        w = self.step_words(key)
        return SeaquestNoise(
            uniform_from_word(w[0]),
            uniform_from_word(w[1]),
            uniform_from_word(w[2]),
            1 + randint_from_word(w[3], 8),
            uniform_from_word(w[4]),
            1 + randint_from_word(w[5], 8),
        )

    def reset_game(self, key: chex.PRNGKey, params: MinAtarParams) -> SeaquestState:
        del key  # the start is deterministic
        i32 = lambda v: jnp.asarray(v, jnp.int32)
        no = jnp.asarray(False)

        def ints(n):
            return jnp.zeros((n,), jnp.int32)

        def bools(n):
            return jnp.zeros((n,), jnp.bool_)

        e, d, t = MAX_ENEMIES, MAX_DIVERS, MAX_TORPEDOES
        return SeaquestState(
            time=i32(0),
            last_action=i32(0),
            terminal=no,
            sub_x=i32(5),
            sub_y=i32(0),
            sub_or=no,
            oxygen=i32(MAX_OXYGEN),
            diver_count=i32(0),
            e_spawn_speed=i32(INIT_SPAWN_SPEED),
            e_spawn_timer=i32(INIT_SPAWN_SPEED),
            d_spawn_timer=i32(DIVER_SPAWN_SPEED),
            move_speed=i32(INIT_MOVE_INTERVAL),
            ramp_index=i32(0),
            shot_timer=i32(0),
            surface=jnp.asarray(True),
            enemy_x=ints(e),
            enemy_y=ints(e),
            enemy_right=bools(e),
            enemy_is_sub=bools(e),
            enemy_move_timer=ints(e),
            enemy_shot_timer=ints(e),
            enemy_born=ints(e),
            enemy_active=bools(e),
            e_bullet_x=ints(e),
            e_bullet_y=ints(e),
            e_bullet_right=bools(e),
            e_bullet_active=bools(e),
            diver_x=ints(d),
            diver_y=ints(d),
            diver_right=bools(d),
            diver_timer=ints(d),
            diver_born=ints(d),
            diver_active=bools(d),
            torpedo_x=ints(t),
            torpedo_y=ints(t),
            torpedo_right=bools(t),
            torpedo_active=bools(t),
        )

    def step_game(
        self, s: SeaquestState, action: chex.Array, noise: SeaquestNoise, params: MinAtarParams
    ) -> tuple[SeaquestState, chex.Array]:
        # 1. An enemy spawns, unless its row holds an enemy going the other way.
        spawn = s.e_spawn_timer == 0
        lr = noise.enemy_lr < 0.5
        blocked = jnp.any(s.enemy_active & (s.enemy_y == noise.enemy_row) & (s.enemy_right != lr))
        slot = _first(~s.enemy_active) & spawn & ~blocked
        ex = jnp.where(slot, jnp.where(lr, 0, 9), s.enemy_x)
        ey = jnp.where(slot, noise.enemy_row, s.enemy_y)
        e_right = jnp.where(slot, lr, s.enemy_right)
        e_sub = jnp.where(slot, noise.enemy_sub < 1 / 3, s.enemy_is_sub)
        e_move = jnp.where(slot, s.move_speed, s.enemy_move_timer)
        e_shot = jnp.where(slot, ENEMY_SHOT_INTERVAL, s.enemy_shot_timer)
        e_born = jnp.where(slot, s.time, s.enemy_born)
        e_active = s.enemy_active | slot
        e_spawn_timer = jnp.where(spawn, s.e_spawn_speed, s.e_spawn_timer)

        # 2. A diver spawns.
        d_spawn = s.d_spawn_timer == 0
        d_lr = noise.diver_lr < 0.5
        d_slot = _first(~s.diver_active) & d_spawn
        dx = jnp.where(d_slot, jnp.where(d_lr, 0, 9), s.diver_x)
        dy = jnp.where(d_slot, noise.diver_row, s.diver_y)
        d_right = jnp.where(d_slot, d_lr, s.diver_right)
        d_timer = jnp.where(d_slot, DIVER_MOVE_INTERVAL, s.diver_timer)
        d_born = jnp.where(d_slot, s.time, s.diver_born)
        d_active = s.diver_active | d_slot
        d_spawn_timer = jnp.where(d_spawn, DIVER_SPAWN_SPEED, s.d_spawn_timer)

        # 3. The player fires or moves.
        fire = (action == FIRE) & (s.shot_timer == 0)
        t_slot = _first(~s.torpedo_active) & fire
        tx = jnp.where(t_slot, s.sub_x, s.torpedo_x)
        ty = jnp.where(t_slot, s.sub_y, s.torpedo_y)
        t_right = jnp.where(t_slot, s.sub_or, s.torpedo_right)
        t_active = s.torpedo_active | t_slot
        shot_timer = jnp.where(fire, SHOT_COOL_DOWN, s.shot_timer)
        left, right = action == LEFT, action == RIGHT
        px = jnp.clip(s.sub_x - left + right, 0, 9)
        py = jnp.clip(s.sub_y - (action == UP) + (action == DOWN), 0, 8)
        sub_or = jnp.where(left, False, jnp.where(right, True, s.sub_or))

        # 4. Torpedoes move; each hits the oldest fish in its cell, else the oldest submarine.
        tx = _step_x(tx, t_right)
        t_active = t_active & _inside(tx)
        same = (
            t_active[:, None]
            & e_active[None, :]
            & (tx[:, None] == ex[None, :])
            & (ty[:, None] == ey[None, :])
        )  # [torpedo, enemy]
        fish_here = same & ~e_sub[None, :]
        target = jnp.where(jnp.any(fish_here, axis=1, keepdims=True), fish_here, same)
        oldest = jnp.min(jnp.where(target, e_born[None, :], _NEVER), axis=1, keepdims=True)
        struck = jnp.any(target & (e_born[None, :] == oldest), axis=0)
        t_hit = jnp.any(target, axis=1)
        reward = jnp.sum(t_hit)
        t_active = t_active & ~t_hit
        e_active = e_active & ~struck

        # 5. Divers, newest first: picked up if touched (room for 6), else they move.
        at_sub = (dy == py) & d_active
        d_moving = d_timer == 0
        d_next = _step_x(dx, d_right)
        wants = at_sub & ((dx == px) | (d_moving & (d_next == px)))
        ahead = jnp.sum(wants[None, :] & (d_born[None, :] > d_born[:, None]), axis=1)
        picked = wants & (s.diver_count + ahead < 6)
        diver_count = s.diver_count + jnp.sum(picked)
        dx = jnp.where(d_moving, d_next, dx)
        d_active = d_active & ~picked & _inside(dx)
        d_timer = jnp.where(d_moving, DIVER_MOVE_INTERVAL, d_timer - 1)

        # 6 and 8. Enemies (submarines, then fish) touch the player or move.
        at_player = (ex == px) & (ey == py)
        terminal = jnp.any(e_active & at_player)
        e_moving = e_move == 0
        ex_next = jnp.where(e_moving, _step_x(ex, e_right), ex)
        gone = e_moving & ~_inside(ex_next)
        at_player = e_moving & ~gone & (ex_next == px) & (ey == py)
        terminal = terminal | jnp.any(e_active & at_player)
        # An enemy that moves onto a torpedo takes it: submarines first, then the newest.
        onto = (
            t_active[:, None]
            & (e_active & e_moving & ~gone & ~at_player)[None, :]
            & (tx[:, None] == ex_next[None, :])
            & (ty[:, None] == ey[None, :])
        )
        rank = jnp.where(e_sub, e_born + (1 << 30), e_born)
        best = jnp.max(jnp.where(onto, rank[None, :], -1), axis=1, keepdims=True)
        taken = onto & (rank[None, :] == best)
        rammed = jnp.any(taken, axis=0)
        reward = reward + jnp.sum(rammed)
        t_active = t_active & ~jnp.any(taken, axis=1)
        # Submarines present at this point fire, even one that just left or was hit.
        shoots = e_active & e_sub & (e_shot == 0)
        e_shot = jnp.where(shoots, ENEMY_SHOT_INTERVAL, e_shot - 1)
        b_x = jnp.where(shoots, ex_next, s.e_bullet_x)
        b_y = jnp.where(shoots, ey, s.e_bullet_y)
        b_right = jnp.where(shoots, e_right, s.e_bullet_right)
        b_active = s.e_bullet_active | shoots
        e_move = jnp.where(e_moving, s.move_speed, e_move - 1)
        ex = ex_next
        e_active = e_active & ~gone & ~rammed

        # 7. Enemy bullets move.
        b_hit = b_active & (b_y == py) & (b_x == px)
        b_x = _step_x(b_x, b_right)
        b_active = b_active & _inside(b_x)
        b_hit = b_hit | (b_active & (b_y == py) & (b_x == px))
        terminal = terminal | jnp.any(b_hit)

        # 9. Timers, oxygen and surfacing.
        terminal = terminal | (s.oxygen <= 0)
        below = py > 0
        surfacing = ~below & ~s.surface
        terminal = terminal | (surfacing & (diver_count == 0))
        surfaced = surfacing & (diver_count != 0)
        full = diver_count == 6
        reward = reward + jnp.where(surfaced & full, s.oxygen * 10 // MAX_OXYGEN, 0)
        diver_count = jnp.where(surfaced, jnp.where(full, 0, diver_count) - 1, diver_count)
        ramp = surfaced & params.difficulty_ramping & ((s.e_spawn_speed > 1) | (s.move_speed > 2))
        move_speed = s.move_speed - (ramp & (s.move_speed > 2) & (s.ramp_index % 2 == 1))
        new_state = s.replace(
            sub_x=px,
            sub_y=py,
            sub_or=sub_or,
            oxygen=jnp.where(below, s.oxygen - 1, jnp.where(surfaced, MAX_OXYGEN, s.oxygen)),
            diver_count=diver_count,
            e_spawn_speed=s.e_spawn_speed - (ramp & (s.e_spawn_speed > 1)),
            e_spawn_timer=e_spawn_timer - (e_spawn_timer > 0),
            d_spawn_timer=d_spawn_timer - (d_spawn_timer > 0),
            move_speed=move_speed,
            ramp_index=s.ramp_index + ramp,
            shot_timer=shot_timer - (shot_timer > 0),
            surface=jnp.where(below, False, s.surface | surfaced),
            enemy_x=ex,
            enemy_y=ey,
            enemy_right=e_right,
            enemy_is_sub=e_sub,
            enemy_move_timer=e_move,
            enemy_shot_timer=e_shot,
            enemy_born=e_born,
            enemy_active=e_active,
            e_bullet_x=b_x,
            e_bullet_y=b_y,
            e_bullet_right=b_right,
            e_bullet_active=b_active,
            diver_x=dx,
            diver_y=dy,
            diver_right=d_right,
            diver_timer=d_timer,
            diver_born=d_born,
            diver_active=d_active,
            torpedo_x=tx,
            torpedo_y=ty,
            torpedo_right=t_right,
            torpedo_active=t_active,
            terminal=terminal,
        )
        return new_state, reward.astype(jnp.float32)

    def get_obs(self, state: SeaquestState, params: MinAtarParams | None = None) -> chex.Array:
        """The [10, 10, 10] bool observation, drawn with one scatter of every entity's cell."""
        del params
        s = state
        c = self.num_channels

        def cells(y, x, channel, active):
            # Flat indices into [10, 10, C]; inactive or off-screen cells point past the end.
            ok = active & _inside(x)
            return jnp.where(ok, (y * 10 + x) * c + channel, 100 * c)

        def trail(x, right):
            return x - jnp.where(right, 1, -1)

        enemies_ch = jnp.where(s.enemy_is_sub, 6, 5)
        back = jnp.where(s.sub_or, s.sub_x - 1, s.sub_x + 1)
        one = jnp.ones((1,), jnp.bool_)
        index = jnp.concatenate(
            [
                cells(s.sub_y, s.sub_x, 0, one),
                cells(s.sub_y, back, 1, one),
                cells(s.torpedo_y, s.torpedo_x, 2, s.torpedo_active),
                cells(s.e_bullet_y, s.e_bullet_x, 4, s.e_bullet_active),
                cells(s.enemy_y, s.enemy_x, enemies_ch, s.enemy_active),
                cells(s.enemy_y, trail(s.enemy_x, s.enemy_right), 3, s.enemy_active),
                cells(s.diver_y, s.diver_x, 9, s.diver_active),
                cells(s.diver_y, trail(s.diver_x, s.diver_right), 3, s.diver_active),
            ]
        )
        flat = jnp.zeros((100 * c,), jnp.bool_).at[index].set(True, mode="drop")
        grid = flat.reshape(10, 10, c)
        oxygen = _IDX < jnp.maximum(s.oxygen, 0) * 10 // MAX_OXYGEN
        divers = (_IDX >= 9 - s.diver_count) & (_IDX < 9)
        gauges = jnp.zeros((10, 10, 2), jnp.bool_).at[9].set(jnp.stack([oxygen, divers], -1))
        return jnp.concatenate([grid[..., :7], gauges, grid[..., 9:]], axis=-1)
