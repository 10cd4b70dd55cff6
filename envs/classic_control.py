"""Registers the classic-control environments under Gymnasium's ids.

========================  =========================  =================  ================
id                        class                      max_episode_steps  reward_threshold
========================  =========================  =================  ================
CartPole-v1               ``CartPole``               500                475
Acrobot-v1                ``Acrobot``                500                -100
MountainCar-v0            ``MountainCar``            200                -110
MountainCarContinuous-v0  ``MountainCarContinuous``  999                90
Pendulum-v1               ``Pendulum``               200                None
========================  =========================  =================  ================

Each is step for step the same as the numpy env in ``gymnasium.envs.classic_control`` (float32
here, float64 there), tested against it in ``tests/envs``.
"""

from envs.acrobot import Acrobot, AcrobotParams, AcrobotState
from envs.cartpole import CartPole, CartPoleParams, CartPoleState
from envs.core import register
from envs.mountain_car import (
    MountainCar,
    MountainCarContinuous,
    MountainCarContinuousParams,
    MountainCarParams,
    MountainCarState,
)
from envs.pendulum import Pendulum, PendulumParams, PendulumState

__all__ = [
    "Acrobot",
    "AcrobotParams",
    "AcrobotState",
    "CartPole",
    "CartPoleParams",
    "CartPoleState",
    "MountainCar",
    "MountainCarContinuous",
    "MountainCarContinuousParams",
    "MountainCarParams",
    "MountainCarState",
    "Pendulum",
    "PendulumParams",
    "PendulumState",
]

for _env in (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum):
    register(_env.id, _env)
del _env
