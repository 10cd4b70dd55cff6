"""``rgb_array`` frames of rlkit env states, for the Gymnasium bridges.

A renderer is a host-side function ``render(state, params, last_action) -> uint8 [H, W, 3]`` over
a state pytree of numpy values. The classic-control envs are drawn by Gymnasium's own env classes
(``gymnasium.envs.classic_control``, which need ``pygame``): the rlkit state is copied into a
Gymnasium env of the same id, together with every param field that env also has (so a longer
pole is drawn longer), and that env's ``render()`` draws it. The frames are therefore Gymnasium's
frames, pixel for pixel, for the same state.

    frame = envs.render.render_frame("CartPole-v1", state, params)   # [400, 600, 3] uint8

Register a renderer for your own env with ``register_renderer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from rlkit.errors import RLKitError

__all__ = [
    "GymnasiumRenderer",
    "PureRenderer",
    "has_renderer",
    "register_renderer",
    "render_frame",
]

Renderer = Callable[[Any, Any, Any], np.ndarray]
_RENDERERS: dict[str, Renderer] = {}


class GymnasiumRenderer:
    """Draws an rlkit state with the ``render()`` of the Gymnasium env that it reproduces.

    Args:
      gymnasium_id: the Gymnasium env whose ``render()`` draws, e.g. ``"CartPole-v1"``.
      to_gymnasium_state: maps the rlkit state (numpy leaves) to that env's ``state`` attribute.
      last_action_attr: the Gymnasium env's attribute holding the last action, drawn by some
        envs (Pendulum's ``last_u``); set to ``to_last_action(action, params)``, or None after a
        reset.
      to_last_action: maps the last action to that attribute's value (default: unchanged).
    """

    def __init__(
        self,
        gymnasium_id: str,
        to_gymnasium_state: Callable[[Any], Any],
        last_action_attr: str | None = None,
        to_last_action: Callable[[Any, Any], Any] | None = None,
    ):
        self.gymnasium_id = gymnasium_id
        self.to_gymnasium_state = to_gymnasium_state
        self.last_action_attr = last_action_attr
        self.to_last_action = to_last_action or (lambda action, params: action)
        self._env = None

    def __call__(self, state: Any, params: Any, last_action: Any = None) -> np.ndarray:
        if self._env is None:
            import gymnasium

            self._env = gymnasium.make(self.gymnasium_id, render_mode="rgb_array").unwrapped
        env = self._env
        for field in getattr(params, "__dataclass_fields__", {}):
            if field != "max_episode_steps" and hasattr(env, field):
                setattr(env, field, getattr(params, field))
        env.state = self.to_gymnasium_state(state)
        if self.last_action_attr is not None:
            value = None if last_action is None else self.to_last_action(last_action, params)
            setattr(env, self.last_action_attr, value)
        return env.render()

    def close(self) -> None:
        """Closes the Gymnasium env (and its pygame surface)."""
        if self._env is not None:
            self._env.close()
            self._env = None


class PureRenderer:
    """The renderer of an env whose class draws itself: a pure ``render_rgb(state, params)``,
    jitted once (the MinAtar games)."""

    def __init__(self, env: Any):
        self._render = jax.jit(env.render_rgb)

    def __call__(self, state: Any, params: Any, last_action: Any = None) -> np.ndarray:
        return np.asarray(self._render(state, params))


def register_renderer(env_id: str, renderer: Renderer, *, overwrite: bool = False) -> None:
    """Registers the ``rgb_array`` renderer of an rlkit env id.

    Args:
      env_id: the rlkit id, e.g. ``"CartPole-v1"``.
      renderer: ``renderer(state, params, last_action) -> uint8 [H, W, 3]``; ``state`` has numpy
        leaves, ``last_action`` is None right after a reset.
      overwrite: replace an existing renderer.
    """
    if env_id in _RENDERERS and not overwrite:
        raise RLKitError(f"register_renderer: {env_id!r} already has a renderer (overwrite=True)")
    _RENDERERS[env_id] = renderer


def has_renderer(env_id: str) -> bool:
    """Whether ``env_id`` can be rendered as ``rgb_array``."""
    return env_id in _RENDERERS


def render_frame(env_id: str, state: Any, params: Any, last_action: Any = None) -> np.ndarray:
    """The ``rgb_array`` frame of one (unbatched) state of env ``env_id``.

    Args:
      env_id: a registered rlkit id with a renderer.
      state: the env state, with numpy (or JAX) leaves.
      params: the env params.
      last_action: the action that led to ``state`` (None after a reset).

    Returns:
      ``uint8 [H, W, 3]``.
    """
    if env_id not in _RENDERERS:
        raise RLKitError(
            f"render: env {env_id!r} has no rgb_array renderer; envs with one: {sorted(_RENDERERS)}"
        )
    return _RENDERERS[env_id](state, params, last_action)


def _f64(*leaves: Any) -> np.ndarray:
    return np.array([float(x) for x in leaves], np.float64)


register_renderer(
    "CartPole-v1",
    GymnasiumRenderer("CartPole-v1", lambda s: _f64(s.x, s.x_dot, s.theta, s.theta_dot)),
)
register_renderer(
    "Acrobot-v1",
    GymnasiumRenderer("Acrobot-v1", lambda s: _f64(s.theta1, s.theta2, s.dtheta1, s.dtheta2)),
)
register_renderer(
    "MountainCar-v0",
    GymnasiumRenderer("MountainCar-v0", lambda s: _f64(s.position, s.velocity)),
)
register_renderer(
    "MountainCarContinuous-v0",
    GymnasiumRenderer("MountainCarContinuous-v0", lambda s: _f64(s.position, s.velocity)),
)
register_renderer(
    "Pendulum-v1",
    GymnasiumRenderer(
        "Pendulum-v1",
        lambda s: _f64(s.theta, s.theta_dot),
        "last_u",
        # Gymnasium keeps the clipped torque as a float.
        lambda u, p: float(np.clip(np.ravel(u)[0], -p.max_torque, p.max_torque)),
    ),
)
