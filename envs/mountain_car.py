"""MountainCar-v0 and MountainCarContinuous-v0 as pure JAX environments, step for step the same as
Gymnasium's ``MountainCarEnv`` and ``Continuous_MountainCarEnv``.

An under-powered car sits in a valley shaped like ``sin(3 x)`` and must rock back and forth to reach
the flag on the right hill. Reference: A. Moore, "Efficient memory-based learning for robot
control", PhD thesis, University of Cambridge, 1990. With ``F`` the push, one step is

    v' = clip(v + F - gravity cos(3 x), -max_speed, max_speed)
    x' = clip(x + v', min_position, max_position);  v' = 0 if x' == min_position and v' < 0

and the episode terminates when ``x' >= goal_position and v' >= goal_velocity``.

* MountainCar-v0: actions 0, 1, 2 push with ``F = (action - 1) * force``; reward -1 per step; goal
  at 0.5; truncated at 200 steps.
* MountainCarContinuous-v0: a float32 action of shape (1,), clipped to ``[-1, 1]``, pushes with
  ``F = clip(a) * power``; reward ``100 * terminated - 0.1 * a^2`` where ``a`` is the action as
  given (Gymnasium charges the unclipped action); goal at 0.45; truncated at 999 steps.

Both start at a position uniform in ``[-0.6, -0.4)`` with zero velocity.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Box, Discrete, Environment, EnvParams, EnvState

__all__ = [
    "MountainCar",
    "MountainCarContinuous",
    "MountainCarContinuousParams",
    "MountainCarParams",
    "MountainCarState",
]


@struct.dataclass
class MountainCarState(EnvState):
    """Gymnasium's ``env.unwrapped.state`` ``(position, velocity)`` as float32, plus ``time``."""

    position: chex.Array
    velocity: chex.Array


@struct.dataclass
class MountainCarParams(EnvParams):
    """MountainCar-v0's constants (Gymnasium's defaults) and time limit."""

    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.5
    goal_velocity: float = 0.0
    force: float = 0.001
    gravity: float = 0.0025
    max_episode_steps: int = 200


@struct.dataclass
class MountainCarContinuousParams(EnvParams):
    """MountainCarContinuous-v0's constants (Gymnasium's defaults) and time limit."""

    min_action: float = -1.0
    max_action: float = 1.0
    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.45
    goal_velocity: float = 0.0
    power: float = 0.0015
    gravity: float = 0.0025
    max_episode_steps: int = 999


def _move(
    state: MountainCarState, push: chex.Array, params: EnvParams
) -> tuple[MountainCarState, chex.Array]:
    """The shared car physics; returns the next state and ``terminated``."""
    velocity = state.velocity + (push - params.gravity * jnp.cos(3 * state.position))
    velocity = jnp.clip(velocity, -params.max_speed, params.max_speed)
    position = jnp.clip(state.position + velocity, params.min_position, params.max_position)
    # Clipping returns min_position itself, so the equality test is exact, as in Gymnasium.
    velocity = jnp.where((position == params.min_position) & (velocity < 0), 0.0, velocity)
    new_state = MountainCarState(
        time=state.time + 1,
        position=position.astype(jnp.float32),
        velocity=velocity.astype(jnp.float32),
    )
    terminated = (new_state.position >= params.goal_position) & (
        new_state.velocity >= params.goal_velocity
    )
    return new_state, terminated


def _reset(key: chex.PRNGKey) -> MountainCarState:
    return MountainCarState(
        time=jnp.asarray(0, jnp.int32),
        position=jax.random.uniform(key, (), jnp.float32, minval=-0.6, maxval=-0.4),
        velocity=jnp.asarray(0.0, jnp.float32),
    )


def _get_obs(state: MountainCarState) -> chex.Array:
    return jnp.stack([state.position, state.velocity]).astype(jnp.float32)


def _observation_space(params: EnvParams) -> Box:
    low = np.asarray([float(params.min_position), -float(params.max_speed)], np.float32)
    high = np.asarray([float(params.max_position), float(params.max_speed)], np.float32)
    return Box(low, high, (2,), jnp.float32)


class MountainCar(Environment[MountainCarState, MountainCarParams]):
    """MountainCar-v0: ``Discrete(3)`` (left, none, right), observation ``[position, velocity]``."""

    id = "MountainCar-v0"
    reward_threshold = -110.0

    @property
    def default_params(self) -> MountainCarParams:
        return MountainCarParams()

    def reset_env(
        self, key: chex.PRNGKey, params: MountainCarParams
    ) -> tuple[chex.Array, MountainCarState]:
        """Position uniform in ``[-0.6, -0.4)``, velocity 0.

        Args:
          key: a PRNG key.
          params: the env params.

        Returns:
          ``(obs, state)`` with ``state.time == 0``.
        """
        state = _reset(key)
        return self.get_obs(state, params), state

    def step_env(
        self,
        key: chex.PRNGKey,
        state: MountainCarState,
        action: chex.Array,
        params: MountainCarParams,
    ) -> tuple[chex.Array, MountainCarState, chex.Array, chex.Array, dict]:
        """One step of the car.

        Args:
          key: a PRNG key (unused: the dynamics are deterministic).
          state: the current state.
          action: int scalar in ``{0, 1, 2}``: push left, no push, push right.
          params: the env params.

        Returns:
          ``(obs, state, reward, terminated, info)``; reward is -1 on every step.
        """
        del key
        action = jnp.asarray(action)
        chex.assert_rank(action, 0)
        chex.assert_type(action, int)
        push = (action - 1).astype(jnp.float32) * params.force
        new_state, terminated = _move(state, push, params)
        reward = jnp.asarray(-1.0, jnp.float32)
        return self.get_obs(new_state, params), new_state, reward, terminated, {}

    def get_obs(
        self, state: MountainCarState, params: MountainCarParams | None = None
    ) -> chex.Array:
        """The observation ``[position, velocity]``, float32 of shape (2,)."""
        del params
        return _get_obs(state)

    def observation_space(self, params: MountainCarParams | None = None) -> Box:
        """``Box([min_position, -max_speed], [max_position, max_speed])``."""
        return _observation_space(self.default_params if params is None else params)

    def action_space(self, params: MountainCarParams | None = None) -> Discrete:
        """``Discrete(3)``: push left, no push, push right."""
        return Discrete(3)


class MountainCarContinuous(Environment[MountainCarState, MountainCarContinuousParams]):
    """MountainCarContinuous-v0: ``Box(-1, 1, (1,))`` push, observation ``[position, velocity]``."""

    id = "MountainCarContinuous-v0"
    reward_threshold = 90.0

    @property
    def default_params(self) -> MountainCarContinuousParams:
        return MountainCarContinuousParams()

    def reset_env(
        self, key: chex.PRNGKey, params: MountainCarContinuousParams
    ) -> tuple[chex.Array, MountainCarState]:
        """Position uniform in ``[-0.6, -0.4)``, velocity 0.

        Args:
          key: a PRNG key.
          params: the env params.

        Returns:
          ``(obs, state)`` with ``state.time == 0``.
        """
        state = _reset(key)
        return self.get_obs(state, params), state

    def step_env(
        self,
        key: chex.PRNGKey,
        state: MountainCarState,
        action: chex.Array,
        params: MountainCarContinuousParams,
    ) -> tuple[chex.Array, MountainCarState, chex.Array, chex.Array, dict]:
        """One step of the car under a continuous push.

        Args:
          key: a PRNG key (unused: the dynamics are deterministic).
          state: the current state.
          action: float array of shape (1,); clipped to ``[min_action, max_action]`` for the push.
          params: the env params.

        Returns:
          ``(obs, state, reward, terminated, info)``; reward is ``100 * terminated - 0.1 a^2``
          with ``a`` the unclipped action, as in Gymnasium.
        """
        del key
        action = jnp.asarray(action)
        chex.assert_shape(action, (1,))
        chex.assert_type(action, float)
        a = action[0]
        push = jnp.clip(a, params.min_action, params.max_action) * params.power
        new_state, terminated = _move(state, push, params)
        reward = jnp.where(terminated, 100.0, 0.0) - 0.1 * jnp.square(a)
        return self.get_obs(new_state, params), new_state, reward, terminated, {}

    def get_obs(
        self, state: MountainCarState, params: MountainCarContinuousParams | None = None
    ) -> chex.Array:
        """The observation ``[position, velocity]``, float32 of shape (2,)."""
        del params
        return _get_obs(state)

    def observation_space(self, params: MountainCarContinuousParams | None = None) -> Box:
        """``Box([min_position, -max_speed], [max_position, max_speed])``."""
        return _observation_space(self.default_params if params is None else params)

    def action_space(self, params: MountainCarContinuousParams | None = None) -> Box:
        """``Box(min_action, max_action, (1,))``."""
        params = self.default_params if params is None else params
        return Box(float(params.min_action), float(params.max_action), (1,), jnp.float32)
