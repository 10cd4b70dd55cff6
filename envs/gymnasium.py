"""Bridges between rlkit environments and Gymnasium, in both directions.

Out (rlkit -> Gymnasium). Importing ``envs`` registers every rlkit env id with Gymnasium as
``rlkit/<id>``:

    import envs, gymnasium
    env = gymnasium.make("rlkit/CartPole-v1")                  # numpy in, numpy out
    venv = gymnasium.make_vec("rlkit/CartPole-v1", num_envs=8,
                              vectorization_mode="vector_entry_point")  # one jitted call per step

Code that does not import ``envs`` itself can name the module in the id, as Gymnasium allows:
``gymnasium.make("envs:rlkit/CartPole-v1")`` imports ``envs`` first. (Gymnasium 1.x has no
plugin entry points, so an installed package cannot register ids without being imported.)

The single env (``RLKitGymEnv``) runs the jitted rlkit env; Gymnasium's ``TimeLimit`` (added by
``gymnasium.make`` from the registered ``max_episode_steps``) is its only time limit. The vector
env (``RLKitVectorEnv``) has NEXT_STEP autoreset exactly like ``SyncVectorEnv``, or SAME_STEP on
request, and enforces the time limit itself. Both render ``rgb_array`` frames for the envs that
``envs.render`` can draw, and return writable numpy arrays. Call ``register_gymnasium_envs()``
again after registering your own env.

On a CPU, a script that steps a large vector env from Python goes faster after
``use_inline_cpu_dispatch()`` (called before JAX's first computation); see its docstring.

In (Gymnasium -> agents): ``envs.host.HostVecEnv`` steps any Gymnasium env id on the host.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from jax._src import xla_bridge as _jax_xla_bridge  # backends_are_initialized: no public form

from envs import core, render
from envs.host import gymnasium_id
from envs.wrappers import AutoResetWrapper, VecEnv, fused_split, fused_split_at
from rlkit.base import tree_select
from rlkit.errors import RLKitError

__all__ = [
    "RLKitGymEnv",
    "RLKitVectorEnv",
    "register_gymnasium_envs",
    "use_inline_cpu_dispatch",
]

#: Stands in for "no time limit" inside the single env, whose limit is Gymnasium's TimeLimit.
_NO_TIME_LIMIT = 2**31 - 1
_RENDER_FPS = 50


# --------------------------------------------------------------------------------------------------
# Out: rlkit envs as Gymnasium envs
# --------------------------------------------------------------------------------------------------


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


def _check_render_mode(cls_name: str, env_id: str, render_mode: str | None) -> None:
    if render_mode is None:
        return
    if render_mode != "rgb_array" or not render.has_renderer(env_id):
        modes = ["rgb_array"] if render.has_renderer(env_id) else []
        raise RLKitError(
            f"{cls_name}: render_mode must be None or one of {modes} for {env_id!r}, "
            f"got {render_mode!r}"
        )


def _render_modes(env_id: str) -> list[str]:
    return ["rgb_array"] if render.has_renderer(env_id) else []


class _Packer:
    """Packs a pytree of arrays into one flat uint32 vector, and back, bit for bit.

    A jitted call costs a fixed overhead per argument and per result, which dominates a single
    env's step; packing the key, state and params into one array each keeps that overhead to a
    minimum. 32-bit leaves are bitcast; 8- and 16-bit leaves and bools are widened; 64-bit leaves
    take two words.
    """

    def __init__(self, example: Any):
        leaves, self.treedef = jax.tree.flatten(example)
        self.specs = []
        offset = 0
        for leaf in leaves:
            shape, dtype = tuple(np.shape(leaf)), np.dtype(jnp.result_type(leaf))
            if dtype.itemsize not in (1, 2, 4, 8):
                raise RLKitError(f"cannot pack a leaf of dtype {dtype}")
            size = int(np.prod(shape, dtype=np.int64))
            words = 2 * size if dtype.itemsize == 8 else size
            self.specs.append((shape, dtype, offset, words))
            offset += words
        self.size = offset

    def pack(self, tree: Any) -> jax.Array:
        """``tree`` as a uint32 vector (inside or outside jit)."""
        parts = []
        for leaf, (_, dtype, _, _) in zip(self.treedef.flatten_up_to(tree), self.specs):
            x = jnp.asarray(leaf, dtype).reshape(-1)
            if dtype == np.bool_:
                x = x.astype(jnp.uint32)
            elif dtype.itemsize in (1, 2):
                x = jax.lax.bitcast_convert_type(x, np.dtype(f"uint{8 * dtype.itemsize}"))
                x = x.astype(jnp.uint32)
            else:
                x = jax.lax.bitcast_convert_type(x, jnp.uint32).reshape(-1)
            parts.append(x)
        return jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.uint32)

    def pack_host(self, tree: Any) -> np.ndarray:
        """``pack`` in numpy."""
        parts = []
        for leaf, (_, dtype, _, _) in zip(self.treedef.flatten_up_to(tree), self.specs):
            x = np.asarray(leaf, dtype).reshape(-1)
            if dtype == np.bool_ or dtype.itemsize in (1, 2):
                x = x.view(np.dtype(f"uint{8 * dtype.itemsize}")).astype(np.uint32)
            else:
                x = x.view(np.uint32)
            parts.append(x)
        return np.concatenate(parts) if parts else np.zeros((0,), np.uint32)

    def unpack(self, vec: jax.Array) -> Any:
        """The pytree packed in ``vec`` (inside or outside jit)."""
        leaves = []
        for shape, dtype, offset, words in self.specs:
            x = vec[offset : offset + words]
            if dtype == np.bool_:
                x = x.astype(jnp.bool_)
            elif dtype.itemsize in (1, 2):
                x = x.astype(np.dtype(f"uint{8 * dtype.itemsize}"))
                x = jax.lax.bitcast_convert_type(x, dtype)
            elif dtype.itemsize == 8:
                x = jax.lax.bitcast_convert_type(x.reshape(-1, 2), dtype)
            else:
                x = jax.lax.bitcast_convert_type(x, dtype)
            leaves.append(x.reshape(shape))
        return self.treedef.unflatten(leaves)

    def unpack_host(self, vec: np.ndarray) -> Any:
        """``unpack`` in numpy; the leaves are views of ``vec`` where the bits allow it."""
        leaves = []
        for shape, dtype, offset, words in self.specs:
            x = vec[offset : offset + words]
            if dtype == np.bool_ or dtype.itemsize in (1, 2):
                x = x.astype(np.dtype(f"uint{8 * dtype.itemsize}")).view(dtype)
            else:
                x = x.view(dtype)
            leaves.append(x if len(shape) == 1 else x.reshape(shape))
        return self.treedef.unflatten(leaves)


# Compiled programs are shared by every Gymnasium env of the same rlkit env class, id and params
# structure, so ``SyncVectorEnv`` of N copies compiles once, not N times.
_PROGRAM_CACHE: dict[tuple, Any] = {}


class _SingleProgram:
    """The single env's reset and step as jitted functions of one packed array.

    The array holds ``(key, state, params)`` (the carry, which stays on the device) followed by
    the packed outputs for the host: the observation after a reset, ``(obs, reward,
    terminated, truncated, info)`` after a step. Each step is one jitted call with two
    arguments (that array and the action) and one result, and one device-to-host copy. The
    params ride in the carry as traced values, so the step computes exactly what the jitted
    ``env.step`` computes with params as arguments.
    """

    def __init__(self, env: core.Environment, params: core.EnvParams):
        key = _seed_to_key(0)
        obs, state = jax.eval_shape(env.reset, key, params)
        action = jnp.zeros(env.action_space(params).shape, env.action_space(params).dtype)
        step_out = jax.eval_shape(env.step, key, state, action, params)
        self.carry_packer = _Packer((key, state, params))
        self.params_packer = _Packer(params)
        self.reset_packer = _Packer(obs)
        self.step_packer = _Packer((step_out[0], *step_out[2:]))  # obs, rew, term, trunc, info
        carry_packer, carry_size = self.carry_packer, self.carry_packer.size
        out_size = max(self.reset_packer.size, self.step_packer.size)
        self.carry_size = carry_size

        def with_out(carry, out):
            pad = jnp.zeros((out_size - out.shape[0],), jnp.uint32)
            return jnp.concatenate([carry, out, pad])

        def reset(key, packed_params):
            params = self.params_packer.unpack(packed_params)
            key, sub = fused_split(key)
            obs, state = env.reset(sub, params)
            carry = carry_packer.pack((key, state, params))
            return with_out(carry, self.reset_packer.pack(obs))

        def reset_continue(packed):
            key, _, params = carry_packer.unpack(packed[:carry_size])
            return reset(key, self.params_packer.pack(params))

        def step(packed, action):
            key, state, params = carry_packer.unpack(packed[:carry_size])
            key, sub = fused_split(key)
            obs, state, reward, terminated, truncated, info = env.step(sub, state, action, params)
            carry = carry_packer.pack((key, state, params))
            return with_out(
                carry, self.step_packer.pack((obs, reward, terminated, truncated, info))
            )

        self.reset = jax.jit(reset)
        self.reset_continue = jax.jit(reset_continue)
        self.step = jax.jit(step)
        # Where the host finds obs, reward and the flags when obs is one 32-bit leaf and info is
        # empty (every classic-control env): read straight from the packed words.
        specs = self.step_packer.specs
        self.fast_out = None
        if len(specs) == 4 and specs[0][1].itemsize == 4 and specs[0][1] != np.bool_:
            (shape, dtype, start, words), reward, terminated, truncated = specs
            base = carry_size
            self.fast_out = (
                base + start,
                base + start + words,
                dtype,
                shape,
                base + reward[2],
                base + terminated[2],
                base + truncated[2],
            )


def _program(env: core.Environment, env_id: str, params: Any, num_envs: int | None = None):
    """The shared ``_SingleProgram`` (``num_envs=None``) or ``_VectorProgram`` of an env."""
    cache_key = (type(env), env_id, jax.tree.structure(params), num_envs)
    if cache_key not in _PROGRAM_CACHE:
        if num_envs is None:
            _PROGRAM_CACHE[cache_key] = _SingleProgram(env, params)
        else:
            _PROGRAM_CACHE[cache_key] = _VectorProgram(env, params, num_envs)
    return _PROGRAM_CACHE[cache_key]


class RLKitGymEnv(gymnasium.Env):
    """A registered rlkit env as a ``gymnasium.Env`` (numpy in and out), over the jitted env.

    Made by ``gymnasium.make("rlkit/<id>")``, which adds the ``TimeLimit`` from the registered
    ``max_episode_steps``; this class itself never truncates, so the limit is applied once.
    ``reset(seed=s)`` makes the episode, and every episode after it until the next seed, a
    function of ``s``. Spaces are the rlkit spaces' ``to_gymnasium()``. Outputs are writable
    numpy arrays and Python scalars, bit for bit those of the jitted ``env.step``.

    The key and state stay on the device between steps, packed into one array, so a step is one
    small jitted call; ``rlkit_state`` reads the state back as a pytree of numpy values.
    ``render_mode="rgb_array"`` draws the state with ``envs.render`` (Gymnasium's own renderer
    for the classic-control envs).
    """

    # The modes some rlkit env supports (Gymnasium reads the class's before building the env);
    # each env's own ``metadata["render_modes"]`` lists what it supports.
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": _RENDER_FPS}

    def __init__(self, env_id: str, render_mode: str | None = None, **param_overrides):
        """Builds the env.

        Args:
          env_id: a registered rlkit id, e.g. ``"CartPole-v1"``.
          render_mode: None, or ``"rgb_array"`` for envs that ``envs.render`` can draw.
          **param_overrides: params fields to change, e.g. ``gravity=9.0``.
        """
        _check_render_mode("RLKitGymEnv", env_id, render_mode)
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
        self.metadata = {**type(self).metadata, "render_modes": _render_modes(env_id)}
        self.observation_space = env.observation_space(params).to_gymnasium()
        self.action_space = env.action_space(params).to_gymnasium()
        self._rlkit_action_space = env.action_space(params)
        self._action_dtype = np.dtype(env.action_space(params).dtype)
        self._action_shape = tuple(env.action_space(params).shape)
        self._program = _program(env, env_id, self.params)
        self._packed_params = jnp.asarray(self._program.params_packer.pack_host(self.params))
        # A Discrete action goes in as a Python int: the cheapest argument for a jitted call.
        self._int_action = isinstance(self.action_space, gymnasium.spaces.Discrete)
        if self._int_action:
            self._action_low = int(self.action_space.start)
            self._action_high = self._action_low + int(self.action_space.n)
        self._key: jax.Array | None = None  # only read by _reset_key: the key is in _carry
        self._carry = None
        self._last_action = None

    @property
    def rlkit_state(self) -> Any:
        """The current rlkit env state, as a pytree of numpy values (None before ``reset``)."""
        if self._carry is None:
            return None
        carry = np.array(self._carry)[: self._program.carry_size]
        return self._program.carry_packer.unpack_host(carry)[1]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Starts an episode. Returns ``(obs, info)``."""
        super().reset(seed=seed)
        if seed is not None or self._carry is None:
            self._carry = self._program.reset(_reset_key(self, seed), self._packed_params)
        else:  # continue from the key the last episode left
            self._carry = self._program.reset_continue(self._carry)
        self._last_action = None
        out = np.array(self._carry)[self._program.carry_size :]
        return self._program.reset_packer.unpack_host(out), {}

    def step(self, action):
        """One step. Returns ``(obs, reward, terminated, truncated, info)``, numpy/Python values."""
        if self._carry is None:
            raise gymnasium.error.ResetNeeded("Call reset before step.")
        if (
            self._int_action
            and isinstance(action, (int, np.integer))
            and not isinstance(action, (bool, np.bool_))
            and self._action_low <= action < self._action_high
        ):  # the common case, checked without building arrays
            action = int(action)
        else:
            core.check_action(self._rlkit_action_space, action, self.rlkit_id)
            action = np.asarray(action, dtype=self._action_dtype)
            if action.shape != self._action_shape:
                action = action.reshape(self._action_shape)
        program = self._program
        self._carry = program.step(self._carry, action)
        self._last_action = action
        if program.fast_out is not None:
            start, end, dtype, shape, i_rew, i_term, i_trunc = program.fast_out
            words = np.asarray(self._carry)
            obs = words[start:end].view(dtype).reshape(shape).copy()
            reward = float(words[i_rew : i_rew + 1].view(np.float32)[0])
            return obs, reward, bool(words[i_term]), bool(words[i_trunc]), {}
        out = np.array(self._carry)[program.carry_size :]
        obs, reward, terminated, truncated, info = program.step_packer.unpack_host(out)
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self):
        """The current frame, ``uint8 [H, W, 3]``, when ``render_mode == "rgb_array"``."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "You are calling render without a render_mode; pass render_mode='rgb_array' to "
                "gymnasium.make."
            )
            return None
        if self._carry is None:
            raise gymnasium.error.ResetNeeded("Call reset before render.")
        return render.render_frame(self.rlkit_id, self.rlkit_state, self.params, self._last_action)

    def close(self):
        """Nothing to release: the compiled programs are shared."""


# ``tree_select`` per sub-env: a [N] mask picks between two batched pytrees.
_batch_select = jax.vmap(tree_select)

_AUTORESET_BY_NAME = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


class _VectorProgram:
    """The vector env's reset and steps, jitted, over one packed carry ``(key, state, params)``.

    As in ``_SingleProgram``, the carry lives in one device array and each step's host outputs
    in another, so a step is a jitted call of a few arguments and two results, whatever the
    env's state looks like.

    NEXT_STEP: which sub-envs reset on a step is known before it (those that ended on the step
    before), so the host passes their indices, ``reset_idx`` (padded with ``num_envs`` to a
    power of two, so only a few sizes ever compile), and the step resets just those: every
    sub-env steps, then the listed ones are overwritten with a fresh start (reward 0, both
    flags False). SAME_STEP: ``VecEnv(AutoResetWrapper(env))``, which resets the sub-envs that
    ended inside the step, sparsely from ``VecEnv.SPARSE_FROM`` envs.
    """

    def __init__(self, env: core.Environment, params: core.EnvParams, num_envs: int):
        venv = VecEnv(AutoResetWrapper(env), num_envs)
        self.sparse_resets = venv.sparse_resets
        key = _seed_to_key(0)
        obs, state = jax.eval_shape(venv.reset, key, params)
        flags = jax.ShapeDtypeStruct((num_envs,), jnp.bool_)
        rewards = jax.ShapeDtypeStruct((num_envs,), jnp.float32)
        self.params_packer = _Packer(params)
        self.carry_packer = _Packer((key, state, params))
        self.reset_packer = _Packer(obs)
        self.next_packer = _Packer((obs, rewards, flags, flags))
        self.same_packer = _Packer((obs, rewards, flags, flags, obs))
        carry_packer = self.carry_packer
        v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
        v_reset = jax.vmap(env.reset, in_axes=(0, None))

        def reset_all(key, packed_params):
            params = self.params_packer.unpack(packed_params)
            key, sub = fused_split(key)
            obs, state = venv.reset(sub, params)
            return carry_packer.pack((key, state, params)), self.reset_packer.pack(obs)

        def reset_masked(carry, mask):
            key, state, params = carry_packer.unpack(carry)
            key, sub = fused_split(key)
            new_obs, new_state = venv.reset(sub, params)
            state = _batch_select(mask, new_state, state)
            return carry_packer.pack((key, state, params)), self.reset_packer.pack(new_obs)

        def step_same(carry, actions):
            key, state, params = carry_packer.unpack(carry)
            key, sub = fused_split(key)
            obs, state, reward, terminated, truncated, info = venv.step(sub, state, actions, params)
            out = (obs, reward, terminated, truncated, info["final_obs"])
            return carry_packer.pack((key, state, params)), self.same_packer.pack(out)

        def step_next(carry, actions, reset_idx):
            key, state, params = carry_packer.unpack(carry)
            # Computed once into buffers: left alone, XLA fuses a key's hash into every reader
            # and recomputes it per element, which made the resets cost more than the physics.
            key, key_step, key_reset = jax.lax.optimization_barrier(fused_split(key, 3))
            # Per-env step keys; XLA drops them for envs whose step reads no key.
            obs, state, reward, terminated, truncated, _ = v_step(
                fused_split(key_step, num_envs), state, actions, params
            )
            if reset_idx.shape[0]:
                reset_keys = fused_split_at(key_reset, num_envs, reset_idx)
                reset_obs, reset_state = v_reset(jax.lax.optimization_barrier(reset_keys), params)

                def put(stepped, reset):
                    return stepped.at[reset_idx].set(reset, mode="drop")  # drops the padding

                obs = jax.tree.map(put, obs, reset_obs)
                state = jax.tree.map(put, state, reset_state)
                resetting = put(jnp.zeros((num_envs,), jnp.bool_), True)
                reward = jnp.where(resetting, 0.0, reward)
                terminated = jnp.logical_and(terminated, ~resetting)
                truncated = jnp.logical_and(truncated, ~resetting)
            out = (obs, reward, terminated, truncated)
            return carry_packer.pack((key, state, params)), self.next_packer.pack(out)

        self.reset_all = jax.jit(reset_all)
        self.reset_masked = jax.jit(reset_masked)
        self.step_same = jax.jit(step_same)
        self.step_next = jax.jit(step_next)


def _padded_indices(mask: np.ndarray) -> np.ndarray:
    """The indices where ``mask`` is True, padded with ``len(mask)`` to 0 or a power of two >= 8."""
    idx = np.flatnonzero(mask).astype(np.int32)
    if idx.size == 0:
        return idx
    size = min(max(8, 1 << int(idx.size - 1).bit_length()), max(8, mask.size))
    out = np.full((size,), mask.size, np.int32)
    out[: idx.size] = idx
    return out


class RLKitVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of an rlkit env as a ``gymnasium.vector.VectorEnv``, one jit call a step.

    Made by ``gymnasium.make_vec("rlkit/<id>", num_envs, vectorization_mode="vector_entry_point")``;
    pass ``autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP`` (or ``"same_step"``) to
    ``make_vec`` for SAME_STEP autoreset. The time limit (``max_episode_steps``, passed by
    ``make_vec`` from the registration) is enforced inside the jitted step.

    - NEXT_STEP (the default, as ``SyncVectorEnv``'s): the step that ends a sub-env's episode
      returns its last observation; the next step ignores that sub-env's action and returns its
      reset observation with reward 0 and both flags False, while the other sub-envs step
      normally.
    - SAME_STEP: the step that ends an episode returns the next episode's first observation and
      puts the last one in ``info["final_obs"]`` (an object array, None for the sub-envs that did
      not end), with the mask ``info["_final_obs"]``, exactly as ``SyncVectorEnv`` does.

    Each ``step`` is one jitted call and one device-to-host transfer; the outputs are writable
    numpy arrays. ``reset(options={"reset_mask": mask})`` resets only the masked sub-envs, as in
    ``SyncVectorEnv``. ``render_mode="rgb_array"`` makes ``render()`` return a tuple of frames,
    one per sub-env, as ``SyncVectorEnv`` does.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_fps": _RENDER_FPS,
    }

    def __init__(
        self,
        num_envs: int = 1,
        env_id: str = "CartPole-v1",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **param_overrides,
    ):
        """Builds the vector env.

        Args:
          num_envs: number of sub-envs.
          env_id: a registered rlkit id.
          max_episode_steps: the time limit; None keeps the env's default.
          render_mode: None, or ``"rgb_array"`` for envs that ``envs.render`` can draw.
          autoreset_mode: ``AutoresetMode.NEXT_STEP`` / ``"next_step"`` (default) or
            ``AutoresetMode.SAME_STEP`` / ``"same_step"``.
          **param_overrides: params fields to change.
        """
        _check_render_mode("RLKitVectorEnv", env_id, render_mode)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise RLKitError(f"RLKitVectorEnv: num_envs must be a positive int, got {num_envs!r}")
        if isinstance(autoreset_mode, str) and autoreset_mode.lower() in _AUTORESET_BY_NAME:
            autoreset_mode = _AUTORESET_BY_NAME[autoreset_mode.lower()]
        if autoreset_mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise RLKitError(
                "RLKitVectorEnv: autoreset_mode must be AutoresetMode.NEXT_STEP or SAME_STEP "
                f"(or 'next_step' / 'same_step'), got {autoreset_mode!r}"
            )
        if max_episode_steps is not None:
            param_overrides["max_episode_steps"] = int(max_episode_steps)
        env, params = core.make(env_id, **param_overrides)
        self.rlkit_env = env
        self.rlkit_id = env_id
        self.params = params
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.autoreset_mode = autoreset_mode
        self.metadata = {
            **type(self).metadata,
            "render_modes": _render_modes(env_id),
            "autoreset_mode": autoreset_mode,
        }
        self.single_observation_space = env.observation_space(params).to_gymnasium()
        self.single_action_space = env.action_space(params).to_gymnasium()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rlkit_action_space = env.action_space(params)
        self._action_dtype = np.dtype(env.action_space(params).dtype)
        space = self._rlkit_action_space
        self._discrete_bounds = (
            (int(space.start), int(space.start) + int(space.n))
            if isinstance(space, core.Discrete)
            else None
        )
        self._program = _program(env, env_id, params, num_envs)
        self._packed_params = jnp.asarray(self._program.params_packer.pack_host(params))
        self._key: jax.Array | None = None  # only read by _reset_key: the key is in _carry
        self._carry = None
        self._obs = None  # the last returned obs, for a masked reset
        self._autoreset = np.zeros((num_envs,), np.bool_)  # NEXT_STEP: reset on the next step
        self._last_actions = None

    @property
    def rlkit_state(self) -> Any:
        """The current batched rlkit env state, as numpy values (None before ``reset``)."""
        if self._carry is None:
            return None
        return self._program.carry_packer.unpack_host(np.array(self._carry))[1]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Resets every sub-env (or those in ``options["reset_mask"]``). Returns ``(obs, {})``."""
        super().reset(seed=seed)
        mask = None if options is None else options.get("reset_mask")
        if mask is None or self._carry is None:
            self._carry, out = self._program.reset_all(_reset_key(self, seed), self._packed_params)
            obs = self._program.reset_packer.unpack_host(np.array(out))
            self._autoreset[:] = False
            self._last_actions = None
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise RLKitError(
                    f"reset: options['reset_mask'] must be a bool array of shape "
                    f"({self.num_envs},), got {mask.dtype} {mask.shape}"
                )
            self._carry, out = self._program.reset_masked(self._carry, mask)
            new_obs = self._program.reset_packer.unpack_host(np.array(out))
            obs = np.where(mask.reshape((-1,) + (1,) * (new_obs.ndim - 1)), new_obs, self._obs)
            self._autoreset &= ~mask
        self._obs = obs
        return obs, {}

    def step(self, actions):
        """Steps every sub-env. Returns ``(obs, rewards, terminations, truncations, info)``."""
        if self._carry is None:
            raise gymnasium.error.ResetNeeded("Call reset before step.")
        actions = self._checked_actions(actions)
        self._last_actions = actions
        info: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            reset_idx = _padded_indices(self._autoreset)
            self._carry, out = self._program.step_next(self._carry, actions, reset_idx)
            obs, reward, terminated, truncated = self._program.next_packer.unpack_host(
                np.array(out)
            )
            self._autoreset = terminated | truncated
        else:
            self._carry, out = self._program.step_same(self._carry, actions)
            obs, reward, terminated, truncated, final_obs = self._program.same_packer.unpack_host(
                np.array(out)
            )
            done = terminated | truncated
            if done.any():
                finals = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    finals[i] = final_obs[i]
                info = {
                    "final_obs": finals,
                    "_final_obs": done,
                    "final_info": {},
                    "_final_info": done,
                }
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def _checked_actions(self, actions) -> np.ndarray:
        """``actions`` as the env's action dtype, after ``core.check_action``'s checks.

        An integer array of shape ``(num_envs,)`` for a Discrete space (what a vector env is
        stepped with at every step) is checked with one min and one max; anything else, and any
        action outside the space, goes through ``core.check_action``, which names it.
        """
        a = np.asarray(actions)
        bounds = self._discrete_bounds
        if (
            bounds is None
            or a.dtype.kind not in "iu"
            or a.shape != (self.num_envs,)
            or a.min() < bounds[0]
            or a.max() >= bounds[1]
        ):
            core.check_action(self._rlkit_action_space, a, self.rlkit_id, batch=self.num_envs)
        return a.astype(self._action_dtype, copy=False)

    def render(self):
        """A tuple of ``rgb_array`` frames, one per sub-env (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gymnasium.logger.warn("You are calling render without a render_mode.")
            return None
        if self._carry is None:
            raise gymnasium.error.ResetNeeded("Call reset before render.")
        state = self.rlkit_state
        frames = []
        for i in range(self.num_envs):
            last = None if self._last_actions is None else self._last_actions[i]
            sub_state = jax.tree.map(lambda x, i=i: x[i], state)
            frames.append(render.render_frame(self.rlkit_id, sub_state, self.params, last))
        return tuple(frames)


def use_inline_cpu_dispatch() -> None:
    """Makes JAX run CPU computations on the calling thread: the lowest latency per env step.

    By default JAX hands each CPU computation but the tiniest (under about 1,000 flops, such as
    one CartPole step) to a worker thread and returns at once; a bridge step then waits for the
    result, and the hand-over and the wake-up cost tens of microseconds. A 4,096-env CartPole
    step computes in about 40 us on a 2-core CPU but took about 110 us to return through
    ``RLKitVectorEnv.step``; with inline dispatch it took about 60 us (docs/benchmarks.md). This
    sets JAX's ``jax_cpu_enable_async_dispatch`` option to False, which JAX reads once, when it
    creates its CPU backend: call it at the top of the script, before any JAX computation, as
    ``envs.gymnasium_bridge.use_inline_cpu_dispatch()`` (or ``jax.config.update(
    "jax_cpu_enable_async_dispatch", False)``). It is process-wide. Code that queues several
    computations before it waits for any (rlkit's ``train.py``, whose host loop overlaps its
    Python work with the update) is better off with JAX's default, which ``train.py`` keeps.

    Raises:
      RLKitError: if JAX's backends already exist with asynchronous dispatch, where the option
        would no longer take effect.
    """
    is_started = getattr(_jax_xla_bridge, "backends_are_initialized", None)
    started = is_started() if is_started is not None else False  # no check: set it regardless
    if started and jax.config.values.get("jax_cpu_enable_async_dispatch", True):
        raise RLKitError(
            "use_inline_cpu_dispatch: JAX's backends already exist, so jax_cpu_enable_async_"
            "dispatch can no longer change; call it before the first JAX computation (at the "
            "top of the script)"
        )
    jax.config.update("jax_cpu_enable_async_dispatch", False)


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


register_gymnasium_envs()
