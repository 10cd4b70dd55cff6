"""Environments as pure, jittable functions with Gymnasium's semantics, plus bridges to Gymnasium.

    import envs
    env, params = envs.make("CartPole-v1")
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
"""

from envs.core import (  # noqa: F401
    Box,
    Discrete,
    Environment,
    EnvParams,
    EnvSpec,
    EnvState,
    Space,
    make,
    register,
    registered,
    spec,
)
from envs import classic_control  # noqa: F401  (registers the built-in envs)
from envs import minatar  # noqa: F401  (registers MinAtar/<Game>-v0 and -v1)
from envs import wrappers  # noqa: F401
from envs import gymnasium as gymnasium_bridge  # noqa: F401  (registers rlkit/<id> with Gymnasium)

__all__ = [
    "Box",
    "Discrete",
    "Environment",
    "EnvParams",
    "EnvSpec",
    "EnvState",
    "Space",
    "make",
    "minatar",
    "register",
    "registered",
    "spec",
    "wrappers",
    "gymnasium_bridge",
]
