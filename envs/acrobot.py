"""Acrobot-v1 as a pure JAX environment, step for step the same as Gymnasium's ``AcrobotEnv``.

Two links hang from a fixed pivot; a torque of -1, 0 or +1 (actions 0, 1, 2) acts on the joint
between them, and the goal is to swing the free end above the bar: ``-cos(t1) - cos(t1 + t2) > 1``.
References: R. S. Sutton, "Generalization in reinforcement learning: successful examples using
sparse coarse coding", NIPS 1996; Sutton and Barto, "Reinforcement Learning: An Introduction",
1998. The dynamics are the book's (Gymnasium's default ``book_or_nips = "book"``):

    d1 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos t2) + I1 + I2
    d2 = m2 (lc2^2 + l1 lc2 cos t2) + I2
    phi2 = m2 lc2 g cos(t1 + t2 - pi/2)
    phi1 = -m2 l1 lc2 dt2^2 sin t2 - 2 m2 l1 lc2 dt2 dt1 sin t2 + (m1 lc1 + m2 l1) g cos(t1 - pi/2)
           + phi2
    ddt2 = (a + d2/d1 phi1 - m2 l1 lc2 dt1^2 sin t2 - phi2) / (m2 lc2^2 + I2 - d2^2/d1)
    ddt1 = -(d2 ddt2 + phi1) / d1

integrated by one classical Runge-Kutta (RK4) step of ``dt = 0.2`` with the torque held fixed; then
the angles are wrapped into ``[-pi, pi]`` and the velocities clipped to ``[-4 pi, 4 pi]`` and
``[-9 pi, 9 pi]``. The reward is -1 per step and 0 on the terminating step; the episode is
truncated at 500 steps. The start state is uniform in ``[-0.1, 0.1)^4``. The observation is
``[cos t1, sin t1, cos t2, sin t2, dt1, dt2]``.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Box, Discrete, Environment, EnvParams, EnvState

__all__ = ["Acrobot", "AcrobotParams", "AcrobotState"]


@struct.dataclass
class AcrobotState(EnvState):
    """Gymnasium's ``env.unwrapped.state`` ``(theta1, theta2, dtheta1, dtheta2)``, plus ``time``."""

    theta1: chex.Array
    theta2: chex.Array
    dtheta1: chex.Array
    dtheta2: chex.Array


@struct.dataclass
class AcrobotParams(EnvParams):
    """Physics constants (Gymnasium's defaults) and the time limit.

    ``link_moi`` is the moment of inertia of both links. Gymnasium's ``LINK_LENGTH_2`` only draws
    the second link and has no field here. ``torque_noise_max`` (0 in Gymnasium) adds uniform noise
    in ``[-torque_noise_max, torque_noise_max]`` to the torque; it is static, so changing it
    recompiles, and a zero value costs no random draw.
    """

    dt: float = 0.2
    link_length_1: float = 1.0
    link_mass_1: float = 1.0
    link_mass_2: float = 1.0
    link_com_pos_1: float = 0.5
    link_com_pos_2: float = 0.5
    link_moi: float = 1.0
    gravity: float = 9.8
    max_vel_1: float = 4 * math.pi
    max_vel_2: float = 9 * math.pi
    torque_noise_max: float = struct.field(pytree_node=False, default=0.0)
    max_episode_steps: int = 500


def _wrap(x: chex.Array, low: float, high: float) -> chex.Array:
    """Shifts ``x`` by whole periods ``high - low`` into ``[low, high]``; the edges stay put."""
    period = high - low
    up = jnp.ceil((low - x) / period)  # periods to add when x < low
    down = jnp.ceil((x - high) / period)  # periods to subtract when x > high
    return jnp.where(x < low, x + up * period, jnp.where(x > high, x - down * period, x))


def _derivatives(s: chex.Array, torque: chex.Array, params: AcrobotParams) -> chex.Array:
    """``d/dt [t1, t2, dt1, dt2]`` under the book's equations, for a fixed torque."""
    theta1, theta2, dtheta1, dtheta2 = s[0], s[1], s[2], s[3]
    m1, m2 = params.link_mass_1, params.link_mass_2
    l1, lc1, lc2 = params.link_length_1, params.link_com_pos_1, params.link_com_pos_2
    i1 = i2 = params.link_moi
    g = params.gravity
    cos2, sin2 = jnp.cos(theta2), jnp.sin(theta2)
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + i2
    phi2 = m2 * lc2 * g * jnp.cos(theta1 + theta2 - jnp.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * sin2
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
        + (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1 - jnp.pi / 2)
        + phi2
    )
    ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * sin2 - phi2) / (
        m2 * lc2**2 + i2 - d2**2 / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])


def _rk4(s: chex.Array, torque: chex.Array, params: AcrobotParams) -> chex.Array:
    """One classical Runge-Kutta step of length ``params.dt``."""
    h = params.dt
    k1 = _derivatives(s, torque, params)
    k2 = _derivatives(s + h / 2 * k1, torque, params)
    k3 = _derivatives(s + h / 2 * k2, torque, params)
    k4 = _derivatives(s + h * k3, torque, params)
    return s + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


class Acrobot(Environment[AcrobotState, AcrobotParams]):
    """Acrobot-v1: ``Discrete(3)`` torques ``(-1, 0, +1)``, 6-dimensional float32 observation."""

    id = "Acrobot-v1"
    reward_threshold = -100.0

    @property
    def default_params(self) -> AcrobotParams:
        return AcrobotParams()

    def reset_env(
        self, key: chex.PRNGKey, params: AcrobotParams
    ) -> tuple[chex.Array, AcrobotState]:
        """Samples both angles and both velocities uniformly from ``[-0.1, 0.1)``.

        Args:
          key: a PRNG key.
          params: the env params.

        Returns:
          ``(obs, state)`` with ``state.time == 0``.
        """
        init = jax.random.uniform(key, (4,), jnp.float32, minval=-0.1, maxval=0.1)
        state = AcrobotState(
            time=jnp.asarray(0, jnp.int32),
            theta1=init[0],
            theta2=init[1],
            dtheta1=init[2],
            dtheta2=init[3],
        )
        return self.get_obs(state, params), state

    def step_env(
        self, key: chex.PRNGKey, state: AcrobotState, action: chex.Array, params: AcrobotParams
    ) -> tuple[chex.Array, AcrobotState, chex.Array, chex.Array, dict]:
        """One RK4 step of the double pendulum with torque ``action - 1``.

        Args:
          key: a PRNG key, used only when ``params.torque_noise_max > 0``.
          state: the current state.
          action: int scalar in ``{0, 1, 2}``.
          params: the env params.

        Returns:
          ``(obs, state, reward, terminated, info)``; reward is -1, or 0 on the terminating step.
        """
        action = jnp.asarray(action)
        chex.assert_rank(action, 0)
        chex.assert_type(action, int)
        torque = (action - 1).astype(jnp.float32)
        if params.torque_noise_max > 0:
            noise_max = params.torque_noise_max
            torque = torque + jax.random.uniform(
                key, (), jnp.float32, minval=-noise_max, maxval=noise_max
            )
        s = jnp.stack([state.theta1, state.theta2, state.dtheta1, state.dtheta2])
        ns = _rk4(s, torque, params)
        f32 = jnp.float32
        new_state = AcrobotState(
            time=state.time + 1,
            theta1=_wrap(ns[0], -math.pi, math.pi).astype(f32),
            theta2=_wrap(ns[1], -math.pi, math.pi).astype(f32),
            dtheta1=jnp.clip(ns[2], -params.max_vel_1, params.max_vel_1).astype(f32),
            dtheta2=jnp.clip(ns[3], -params.max_vel_2, params.max_vel_2).astype(f32),
        )
        height = -jnp.cos(new_state.theta1) - jnp.cos(new_state.theta2 + new_state.theta1)
        terminated = height > 1.0
        reward = jnp.where(terminated, 0.0, -1.0).astype(jnp.float32)
        return self.get_obs(new_state, params), new_state, reward, terminated, {}

    def get_obs(self, state: AcrobotState, params: AcrobotParams | None = None) -> chex.Array:
        """The observation ``[cos t1, sin t1, cos t2, sin t2, dt1, dt2]``, float32 of shape (6,)."""
        del params
        return jnp.stack(
            [
                jnp.cos(state.theta1),
                jnp.sin(state.theta1),
                jnp.cos(state.theta2),
                jnp.sin(state.theta2),
                state.dtheta1,
                state.dtheta2,
            ]
        ).astype(jnp.float32)

    def observation_space(self, params: AcrobotParams | None = None) -> Box:
        """``Box(-high, high)`` with ``high = [1, 1, 1, 1, max_vel_1, max_vel_2]``."""
        params = self.default_params if params is None else params
        high = np.asarray(
            [1.0, 1.0, 1.0, 1.0, float(params.max_vel_1), float(params.max_vel_2)], np.float32
        )
        return Box(-high, high, (6,), jnp.float32)

    def action_space(self, params: AcrobotParams | None = None) -> Discrete:
        """``Discrete(3)``: torques -1, 0 and +1."""
        return Discrete(3)
