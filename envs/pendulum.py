"""Pendulum-v1 as a pure JAX environment, step for step the same as Gymnasium's ``PendulumEnv``.

Swing a frictionless pendulum up and hold it upright (``theta = 0``) with a bounded torque. With
``u = clip(a, -max_torque, max_torque)`` and ``norm(theta)`` the angle wrapped into ``[-pi, pi)``,
one semi-implicit Euler step of length ``dt = 0.05`` is

    cost       = norm(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2        (reward = -cost)
    theta_dot' = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt, +-max_speed)
    theta'     = theta + theta_dot' dt

The cost is charged on the state before the step. The episode never terminates and is truncated
at 200 steps. The start state is uniform: ``theta`` in ``[-pi, pi)``, ``theta_dot`` in ``[-1, 1)``.
The observation is ``[cos theta, sin theta, theta_dot]``; ``theta`` itself is never wrapped.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Box, Environment, EnvParams, EnvState

__all__ = ["Pendulum", "PendulumParams", "PendulumState", "angle_normalize"]


@struct.dataclass
class PendulumState(EnvState):
    """Gymnasium's ``env.unwrapped.state`` ``(theta, theta_dot)`` as float32, plus ``time``."""

    theta: chex.Array
    theta_dot: chex.Array


@struct.dataclass
class PendulumParams(EnvParams):
    """Physics constants (Gymnasium's defaults; ``g`` is Gymnasium's constructor argument)."""

    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # Gymnasium's name for the length
    max_episode_steps: int = 200


def angle_normalize(x: chex.Array) -> chex.Array:
    """Wraps an angle into ``[-pi, pi)``: ``((x + pi) mod 2 pi) - pi``.

    Args:
      x: angles in radians.

    Returns:
      The equivalent angles in ``[-pi, pi)``.
    """
    return jnp.mod(x + jnp.pi, 2 * jnp.pi) - jnp.pi


class Pendulum(Environment[PendulumState, PendulumParams]):
    """Pendulum-v1: ``Box(-2, 2, (1,))`` torque; obs ``[cos theta, sin theta, theta_dot]``."""

    id = "Pendulum-v1"
    reward_threshold = None

    @property
    def default_params(self) -> PendulumParams:
        return PendulumParams()

    def reset_env(
        self, key: chex.PRNGKey, params: PendulumParams
    ) -> tuple[chex.Array, PendulumState]:
        """Samples ``theta`` from ``[-pi, pi)`` and ``theta_dot`` from ``[-1, 1)``.

        Args:
          key: a PRNG key.
          params: the env params.

        Returns:
          ``(obs, state)`` with ``state.time == 0``.
        """
        high = jnp.asarray([math.pi, 1.0], jnp.float32)
        init = jax.random.uniform(key, (2,), jnp.float32, minval=-high, maxval=high)
        state = PendulumState(time=jnp.asarray(0, jnp.int32), theta=init[0], theta_dot=init[1])
        return self.get_obs(state, params), state

    def step_env(
        self, key: chex.PRNGKey, state: PendulumState, action: chex.Array, params: PendulumParams
    ) -> tuple[chex.Array, PendulumState, chex.Array, chex.Array, dict]:
        """One step of the pendulum.

        Args:
          key: a PRNG key (unused: the dynamics are deterministic).
          state: the current state.
          action: float array of shape (1,), the torque; clipped to ``[-max_torque, max_torque]``.
          params: the env params.

        Returns:
          ``(obs, state, reward, terminated, info)``; ``terminated`` is always False.
        """
        del key
        action = jnp.asarray(action)
        chex.assert_shape(action, (1,))
        chex.assert_type(action, float)
        u = jnp.clip(action[0], -params.max_torque, params.max_torque)
        theta, theta_dot = state.theta, state.theta_dot
        cost = jnp.square(angle_normalize(theta)) + 0.1 * jnp.square(theta_dot) + 0.001 * u**2
        g, m, length, dt = params.g, params.m, params.l, params.dt
        new_theta_dot = (
            theta_dot + (3 * g / (2 * length) * jnp.sin(theta) + 3.0 / (m * length**2) * u) * dt
        )
        new_theta_dot = jnp.clip(new_theta_dot, -params.max_speed, params.max_speed)
        new_state = PendulumState(
            time=state.time + 1,
            theta=(theta + new_theta_dot * dt).astype(jnp.float32),
            theta_dot=new_theta_dot.astype(jnp.float32),
        )
        terminated = jnp.asarray(False)
        return self.get_obs(new_state, params), new_state, -cost, terminated, {}

    def get_obs(self, state: PendulumState, params: PendulumParams | None = None) -> chex.Array:
        """The observation ``[cos theta, sin theta, theta_dot]``, float32 of shape (3,)."""
        del params
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot]).astype(
            jnp.float32
        )

    def observation_space(self, params: PendulumParams | None = None) -> Box:
        """``Box(-high, high)`` with ``high = [1, 1, max_speed]``."""
        params = self.default_params if params is None else params
        high = np.asarray([1.0, 1.0, float(params.max_speed)], np.float32)
        return Box(-high, high, (3,), jnp.float32)

    def action_space(self, params: PendulumParams | None = None) -> Box:
        """``Box(-max_torque, max_torque, (1,))``."""
        params = self.default_params if params is None else params
        max_torque = float(params.max_torque)
        return Box(-max_torque, max_torque, (1,), jnp.float32)
