"""Bridges between rlkit environments and Gymnasium, in both directions.

Out (rlkit -> Gymnasium). Importing this module registers every rlkit env id with Gymnasium as
``rlkit/<id>``:

    import envs, gymnasium
    env = gymnasium.make("rlkit/CartPole-v1")                  # numpy in, numpy out
    venv = gymnasium.make_vec("rlkit/CartPole-v1", num_envs=8,
                              vectorization_mode="vector_entry_point")  # one jitted call per step

(``gymnasium.make("envs:rlkit/CartPole-v1")`` imports ``envs`` first, for code that has not.)
The single env (``RLKitGymEnv``) runs the jitted rlkit env; Gymnasium's ``TimeLimit`` (added by
``gymnasium.make`` from the registered ``max_episode_steps``) is its only time limit. The vector
env (``RLKitVectorEnv``) has NEXT_STEP autoreset exactly like ``SyncVectorEnv`` and enforces the
time limit itself. Call ``register_gymnasium_envs()`` again after registering your own env.

In (Gymnasium -> agents). ``HostVecEnv`` steps any Gymnasium env id on the host with SAME_STEP
autoreset and returns the same transition format as ``envs.wrappers.make_vec``:

    henv = HostVecEnv("LunarLander-v3", num_envs=4, seed=0)
    obs = henv.reset()
    next_obs, reward, terminated, truncated, final_obs, info = henv.step(actions)
    # transition: (obs, actions, reward, terminated, truncated, final_obs); then obs = next_obs

so no transition is a dummy one, and ``final_obs`` is the observation to bootstrap from.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs import core
from envs.wrappers import VecEnv, fused_split
from rlkit.base import tree_select
from rlkit.errors import RLKitError

__all__ = [
    "HostVecEnv",
    "RLKitGymEnv",
    "RLKitVectorEnv",
    "gymnasium_id",
    "register_gymnasium_envs",
    "spaces_from_gymnasium",
]

#: Stands in for "no time limit" inside the single env, whose limit is Gymnasium's TimeLimit.
_NO_TIME_LIMIT = 2**31 - 1
_NAMESPACE = "rlkit"


# --------------------------------------------------------------------------------------------------
# Out: rlkit envs as Gymnasium envs
# --------------------------------------------------------------------------------------------------


def gymnasium_id(env_id: str) -> str:
    """The Gymnasium id of an rlkit env: ``"CartPole-v1" -> "rlkit/CartPole-v1"``.

    A ``/`` inside the rlkit id (Gymnasium allows only one namespace) becomes ``.``.
    """
    return f"{_NAMESPACE}/{env_id.replace('/', '.')}"


def _seed_to_key(seed: Any) -> jax.Array:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RLKitError(f"seed must be a non-negative int or None, got {seed!r}")
    return jax.random.PRNGKey(int(seed) % 2**32)


def _reset_key(env: Any, seed: Any) -> jax.Array:
    """The key a Gymnasium-side ``reset(seed=...)`` continues from: a new one from ``seed``, else
    the env's current key, else one drawn from its ``np_random`` (already seeded by ``super()``)."""
    if seed is not None:
        return _seed_to_key(seed)
    if env._key is None:
        return _seed_to_key(int(env.np_random.integers(2**31)))
    return env._key


def _host(tree: Any) -> Any:
    """Numpy copies of a pytree of device arrays, in one transfer."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


# Jitted functions are shared by every Gymnasium env of the same rlkit env class and id, so
# ``SyncVectorEnv`` of N copies compiles once, not N times (env objects hold no state).
_JIT_CACHE: dict[tuple, tuple] = {}


def _single_fns(env: core.Environment, env_id: str) -> tuple:
    cache_key = ("single", type(env), env_id)
    if cache_key not in _JIT_CACHE:

        def reset(key, params):
            key, sub = fused_split(key)
            obs, state = env.reset(sub, params)
            return key, state, obs

        def step(key, state, action, params):
            key, sub = fused_split(key)
            obs, state, reward, terminated, truncated, info = env.step(sub, state, action, params)
            return key, state, (obs, reward, terminated, truncated, info)

        _JIT_CACHE[cache_key] = (jax.jit(reset), jax.jit(step))
    return _JIT_CACHE[cache_key]


class RLKitGymEnv(gymnasium.Env):
    """A registered rlkit env as a ``gymnasium.Env`` (numpy in and out), over the jitted env.

    Made by ``gymnasium.make("rlkit/<id>")``, which adds the ``TimeLimit`` from the registered
    ``max_episode_steps``; this class itself never truncates, so the limit is applied once.
    ``reset(seed=s)`` makes the episode, and every episode after it until the next seed, a
    function of ``s``. Spaces are the rlkit spaces' ``to_gymnasium()``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, env_id: str, render_mode: str | None = None, **param_overrides):
        """Builds the env.

        Args:
          env_id: a registered rlkit id, e.g. ``"CartPole-v1"``.
          render_mode: None, or ``"rgb_array"`` for an env that has a pure
            ``render_rgb(state, params)`` (the MinAtar games).
          **param_overrides: params fields to change, e.g. ``gravity=9.0``.
        """
        if render_mode is not None and (
            render_mode != "rgb_array" or not hasattr(core.make(env_id)[0], "render_rgb")
        ):
            raise RLKitError(
                f"RLKitGymEnv: render_mode must be None (or 'rgb_array' for an env with "
                f"render_rgb), got {render_mode!r} for {env_id!r}"
            )
        if "max_episode_steps" in param_overrides:
            raise RLKitError(
                "RLKitGymEnv: pass max_episode_steps to gymnasium.make, which applies it as the "
                "TimeLimit, not as an env param"
            )
        env, params = core.make(env_id, **param_overrides)
        self.rlkit_env = env
        self.rlkit_id = env_id
        self.params = params.replace(max_episode_steps=_NO_TIME_LIMIT)
        self.render_mode = render_mode
        self._render_fn = jax.jit(env.render_rgb) if render_mode is not None else None
        self.observation_space = env.observation_space(params).to_gymnasium()
        self.action_space = env.action_space(params).to_gymnasium()
        self._action_dtype = np.dtype(env.action_space(params).dtype)
        self._reset_fn, self._step_fn = _single_fns(env, env_id)
        self._key: jax.Array | None = None
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Starts an episode. Returns ``(obs, info)``."""
        super().reset(seed=seed)
        self._key = _reset_key(self, seed)
        self._key, self._state, obs = self._reset_fn(self._key, self.params)
        return np.asarray(obs), {}

    def step(self, action):
        """One step. Returns ``(obs, reward, terminated, truncated, info)``, numpy/Python values."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Call reset before step.")
        action = np.asarray(action, dtype=self._action_dtype)
        self._key, self._state, out = self._step_fn(self._key, self._state, action, self.params)
        obs, reward, terminated, truncated, info = _host(out)
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self):
        """The current frame, uint8 [H, W, 3], with ``render_mode="rgb_array"``; else None."""
        if self._render_fn is None or self._state is None:
            return None
        return np.asarray(self._render_fn(self._state, self.params))


# ``tree_select`` per sub-env: a [N] mask picks between two batched pytrees.
_batch_select = jax.vmap(tree_select)


def _vector_fns(env: core.Environment, env_id: str, num_envs: int) -> tuple:
    cache_key = ("vector", type(env), env_id, num_envs)
    if cache_key not in _JIT_CACHE:
        venv = VecEnv(env, num_envs)

        def reset(key, state, obs, reset_mask, params):
            key, sub = fused_split(key)
            new_obs, new_state = venv.reset(sub, params)
            if state is not None:
                new_obs, new_state = _batch_select(reset_mask, (new_obs, new_state), (obs, state))
            return key, new_state, new_obs

        def step(key, state, autoreset, actions, params):
            # NEXT_STEP: a sub-env whose episode ended on the previous step is reset instead of
            # stepped; its action is ignored and it reports reward 0 and both flags False.
            key, key_step, key_reset = fused_split(key, 3)
            obs, next_state, reward, terminated, truncated, _ = venv.step(
                key_step, state, actions, params
            )
            reset_obs, reset_state = venv.reset(key_reset, params)
            obs, next_state = _batch_select(autoreset, (reset_obs, reset_state), (obs, next_state))
            reward = jnp.where(autoreset, 0.0, reward)
            terminated = jnp.logical_and(terminated, ~autoreset)
            truncated = jnp.logical_and(truncated, ~autoreset)
            next_autoreset = jnp.logical_or(terminated, truncated)
            return key, next_state, next_autoreset, (obs, reward, terminated, truncated)

        _JIT_CACHE[cache_key] = (jax.jit(reset), jax.jit(step))
    return _JIT_CACHE[cache_key]


class RLKitVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of an rlkit env as a ``gymnasium.vector.VectorEnv``, one jit call a step.

    Made by ``gymnasium.make_vec("rlkit/<id>", num_envs, vectorization_mode="vector_entry_point")``.
    Autoreset is NEXT_STEP, exactly as ``SyncVectorEnv``'s default: the step that ends a
    sub-env's episode returns its last observation; the next step ignores that sub-env's action
    and returns its reset observation with reward 0 and both flags False, while the other
    sub-envs step normally. The time limit (``max_episode_steps``, passed by ``make_vec`` from
    the registration) is enforced inside the jitted step. Each ``step`` is one jitted call and
    one device-to-host transfer. ``reset(options={"reset_mask": mask})`` resets only the masked
    sub-envs, as in ``SyncVectorEnv``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        env_id: str = "CartPole-v1",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **param_overrides,
    ):
        """Builds the vector env.

        Args:
          num_envs: number of sub-envs.
          env_id: a registered rlkit id.
          max_episode_steps: the time limit; None keeps the env's default.
          render_mode: must be None.
          **param_overrides: params fields to change.
        """
        if render_mode is not None:
            raise RLKitError(f"RLKitVectorEnv: render_mode must be None, got {render_mode!r}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise RLKitError(f"RLKitVectorEnv: num_envs must be a positive int, got {num_envs!r}")
        if max_episode_steps is not None:
            param_overrides["max_episode_steps"] = int(max_episode_steps)
        env, params = core.make(env_id, **param_overrides)
        self.rlkit_env = env
        self.rlkit_id = env_id
        self.params = params
        self.num_envs = num_envs
        self.render_mode = None
        self.metadata = dict(type(self).metadata)
        self.single_observation_space = env.observation_space(params).to_gymnasium()
        self.single_action_space = env.action_space(params).to_gymnasium()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._action_dtype = np.dtype(env.action_space(params).dtype)
        self._reset_fn, self._step_fn = _vector_fns(env, env_id, num_envs)
        self._key: jax.Array | None = None
        self._state = None
        self._obs = None
        self._autoreset = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Resets every sub-env (or those in ``options["reset_mask"]``). Returns ``(obs, {})``."""
        super().reset(seed=seed)
        self._key = _reset_key(self, seed)
        mask = None if options is None else options.get("reset_mask")
        if mask is None or self._state is None:
            mask = np.ones((self.num_envs,), np.bool_)
            self._key, self._state, obs = self._reset_fn(self._key, None, None, mask, self.params)
            self._autoreset = jnp.zeros((self.num_envs,), jnp.bool_)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise RLKitError(
                    f"reset: options['reset_mask'] must be a bool array of shape "
                    f"({self.num_envs},), got {mask.dtype} {mask.shape}"
                )
            self._key, self._state, obs = self._reset_fn(
                self._key, self._state, self._obs, mask, self.params
            )
            self._autoreset = jnp.logical_and(self._autoreset, ~mask)
        self._obs = obs
        return np.asarray(obs), {}

    def step(self, actions):
        """Steps every sub-env. Returns ``(obs, rewards, terminations, truncations, {})``."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Call reset before step.")
        actions = np.asarray(actions, dtype=self._action_dtype)
        self._key, self._state, self._autoreset, out = self._step_fn(
            self._key, self._state, self._autoreset, actions, self.params
        )
        self._obs = out[0]
        obs, reward, terminated, truncated = _host(out)
        return obs, reward, terminated, truncated, {}


def register_gymnasium_envs() -> list[str]:
    """Registers every rlkit env id with Gymnasium as ``rlkit/<id>``; idempotent.

    ``max_episode_steps`` and ``reward_threshold`` come from ``envs.spec(id)``. An id already
    registered with the same spec is left alone; one whose spec changed is replaced.

    Returns:
      The Gymnasium ids of all rlkit envs.
    """
    ids = []
    for env_id in core.registered():
        env_spec = core.spec(env_id)
        gym_id = gymnasium_id(env_id)
        ids.append(gym_id)
        kwargs = {"env_id": env_id}
        existing = gymnasium.registry.get(gym_id)
        if existing is not None:
            if (
                existing.max_episode_steps == env_spec.max_episode_steps
                and existing.reward_threshold == env_spec.reward_threshold
                and existing.kwargs == kwargs
            ):
                continue
            del gymnasium.registry[gym_id]
        gymnasium.register(
            id=gym_id,
            entry_point=f"{__name__}:RLKitGymEnv",
            vector_entry_point=f"{__name__}:RLKitVectorEnv",
            max_episode_steps=env_spec.max_episode_steps,
            reward_threshold=env_spec.reward_threshold,
            kwargs=kwargs,
        )
    return ids


# --------------------------------------------------------------------------------------------------
# In: Gymnasium envs on the host, in the agents' transition format
# --------------------------------------------------------------------------------------------------


def spaces_from_gymnasium(space: gymnasium.Space) -> core.Space:
    """The rlkit space (``envs.Discrete`` or ``envs.Box``) equal to a Gymnasium space.

    Args:
      space: a ``gymnasium.spaces.Discrete`` or ``gymnasium.spaces.Box``.

    Returns:
      The matching ``envs.core.Discrete`` or ``envs.core.Box``.
    """
    if isinstance(space, gymnasium.spaces.Discrete):
        return core.Discrete(int(space.n), start=int(space.start))
    if isinstance(space, gymnasium.spaces.Box):
        return core.Box(space.low, space.high, tuple(space.shape), dtype=space.dtype)
    raise RLKitError(
        f"spaces_from_gymnasium: space must be a gymnasium Discrete or Box, got {space!r}"
    )


_VECTORIZATION_MODES = ("sync", "async")
_AUTORESET_MODES = ("same_step", "next_step")


class HostVecEnv:
    """N copies of any Gymnasium env on the host, giving ``make_vec``'s transition format.

    Built on ``gymnasium.make_vec``, with SAME_STEP autoreset: the step that ends a sub-env's
    episode also resets it, so every step is a real transition. (With ``autoreset_mode=
    "next_step"``, Gymnasium's NEXT_STEP vector env is used and each ended sub-env is reset with
    ``reset_mask`` right after the step, so its dummy transition never happens; both modes give
    the same transitions for the same seed.)

    ``step`` returns ``(next_obs, reward, terminated, truncated, final_obs, info)`` where
    ``next_obs`` is what the agent acts on next (a reset observation where an episode ended) and
    ``final_obs`` is the observation each sub-env's step reached (equal to ``next_obs`` elsewhere).
    ``info`` holds Gymnasium's infos plus ``returned_episode``, ``episode_return`` and
    ``episode_length`` with the meaning of ``envs.wrappers.EpisodeStatistics``. Rewards are
    float32 like the JAX envs'.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        vectorization_mode: str = "sync",
        seed: int | None = None,
        autoreset_mode: str = "same_step",
        **make_kwargs,
    ):
        """Creates the vector env.

        Args:
          env_id: any Gymnasium id, e.g. ``"CartPole-v1"`` or ``"rlkit/CartPole-v1"``.
          num_envs: number of sub-envs.
          vectorization_mode: ``"sync"`` (one process) or ``"async"`` (one spawned process per
            sub-env; spawned rather than forked, because forking a process with JAX threads can
            deadlock).
          seed: seed of the first ``reset`` when it is given none (sub-env i gets ``seed + i``).
          autoreset_mode: ``"same_step"`` (default) or ``"next_step"`` (see the class docstring).
          **make_kwargs: passed to ``gymnasium.make`` for each sub-env.
        """
        if vectorization_mode not in _VECTORIZATION_MODES:
            raise RLKitError(
                f"HostVecEnv: vectorization_mode must be one of {_VECTORIZATION_MODES}, "
                f"got {vectorization_mode!r}"
            )
        if autoreset_mode not in _AUTORESET_MODES:
            raise RLKitError(
                f"HostVecEnv: autoreset_mode must be one of {_AUTORESET_MODES}, "
                f"got {autoreset_mode!r}"
            )
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise RLKitError(f"HostVecEnv: num_envs must be a positive int, got {num_envs!r}")
        mode = AutoresetMode.SAME_STEP if autoreset_mode == "same_step" else AutoresetMode.NEXT_STEP
        vector_kwargs: dict[str, Any] = {"autoreset_mode": mode}
        if vectorization_mode == "async":
            # Forking a process that runs JAX threads can deadlock; start workers afresh.
            vector_kwargs["context"] = "spawn"
        self.envs = gymnasium.make_vec(
            env_id,
            num_envs,
            vectorization_mode=vectorization_mode,
            vector_kwargs=vector_kwargs,
            **make_kwargs,
        )
        self.autoreset_mode = self.envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.env_id = env_id
        self.num_envs = num_envs
        self.observation_space = self.envs.single_observation_space
        self.action_space = self.envs.single_action_space
        self._seed = seed
        self._obs = None
        self._episode_return = np.zeros((num_envs,), np.float64)
        self._episode_length = np.zeros((num_envs,), np.int32)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Resets every sub-env (sub-env i with ``seed + i``). Returns obs ``[N, ...]``."""
        if seed is None:
            seed, self._seed = self._seed, None
        obs, _ = self.envs.reset(seed=seed)
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        self._obs = obs
        return obs

    def step(self, actions) -> tuple:
        """Steps every sub-env once.

        Args:
          actions: ``[N, ...]`` actions.

        Returns:
          ``(next_obs, reward, terminated, truncated, final_obs, info)``, numpy arrays with
          leading axis N; see the class docstring.
        """
        if self._obs is None:
            raise RLKitError("HostVecEnv.step: call reset() first")
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        terminated = np.asarray(terminated, np.bool_)
        truncated = np.asarray(truncated, np.bool_)
        done = terminated | truncated
        info = dict(info)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            final_obs = np.array(obs, copy=True)
            has_final = info.pop("_final_obs", np.zeros((self.num_envs,), np.bool_))
            finals = info.pop("final_obs", None)
            for i in np.flatnonzero(has_final):
                final_obs[i] = finals[i]
            next_obs = obs
        else:  # NEXT_STEP: reset the ended sub-envs now, so the next step is a real one.
            final_obs = np.array(obs, copy=True)
            next_obs = obs
            if done.any():
                next_obs, reset_info = self.envs.reset(options={"reset_mask": done})
                if reset_info:
                    info["reset_info"] = reset_info
        self._episode_return += reward
        self._episode_length += 1
        info["returned_episode"] = done
        info["episode_return"] = self._episode_return.astype(np.float32)
        info["episode_length"] = self._episode_length.copy()
        self._episode_return[done] = 0.0
        self._episode_length[done] = 0
        self._obs = next_obs
        reward = np.asarray(reward, np.float32)
        return next_obs, reward, terminated, truncated, final_obs, info

    def close(self) -> None:
        """Closes the sub-envs (and their processes in async mode)."""
        self.envs.close()

    def __enter__(self) -> HostVecEnv:  # noqa: PYI034 (Self needs Python 3.11)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HostVecEnv({self.env_id!r}, num_envs={self.num_envs})"


register_gymnasium_envs()
