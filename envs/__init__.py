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
    register_prefix,
    registered,
    spec,
)
from envs import classic_control  # noqa: F401  (registers the built-in envs)
from envs import minatar  # noqa: F401  (registers MinAtar/<Game>-v0 and -v1)
from envs import wrappers  # noqa: F401
from envs import gymnasium as gymnasium_bridge  # noqa: F401  (registers rlkit/<id> with Gymnasium)
from envs import render  # noqa: F401
from envs.brax_compat import from_brax  # noqa: F401  (registers the "brax:" prefix)
from envs.gymnax_compat import (  # noqa: F401  (registers the "gymnax:" prefix)
    from_gymnax,
    gymnax_view,
    make_gymnax,
)

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
    "register_prefix",
    "registered",
    "spec",
    "wrappers",
    "gymnasium_bridge",
    "render",
    "from_brax",
    "from_gymnax",
    "gymnax_view",
    "make_gymnax",
]
