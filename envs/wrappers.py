"""Pure, jittable wrappers: autoreset with the final observation, episode statistics, vectorisation.

Every wrapper is itself an ``Environment`` with the same ``reset(key, params)`` and
``step(key, state, action, params)`` signatures; a wrapper that needs memory keeps it in its own
state dataclass around the inner state (gymnax style). ``params`` are always the innermost env's
params, shared by every layer.

The one vectorised env that every agent uses is built by ``make_vec``:

    venv, params = envs.wrappers.make_vec("CartPole-v1", num_envs=8)
    obs, state = venv.reset(key, params)                      # obs [8, 4]
    obs, state, reward, terminated, truncated, info = venv.step(key, state, actions, params)
    # info["final_obs"]: the true last observation of each sub-env's step (== obs where not done)
    # info["returned_episode"], info["episode_return"], info["episode_length"]: episode statistics

so a transition for learning is ``(obs, action, reward, terminated, truncated,
next_obs=info["final_obs"])`` and the agent acts next on the returned ``obs``.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvParams, Space, override_params, make
from rlkit.base import tree_select
from rlkit.errors import RLKitError

__all__ = [
    "AutoResetWrapper",
    "EpisodeStatistics",
    "EpisodeStatisticsState",
    "VecEnv",
    "Wrapper",
    "fused_bits",
    "fused_split",
    "fused_split_at",
    "fused_uniform",
    "make_vec",
    "step_reads_key",
]


# --------------------------------------------------------------------------------------------------
# Random numbers that fuse
# --------------------------------------------------------------------------------------------------
#
# On CPU, JAX lowers its threefry hash to a rolled loop of five iterations. Each call is then a
# loop of its own that XLA cannot fuse with the arithmetic around it, and with a batch of keys
# (a vmapped reset) every iteration writes the whole batch out to memory. In a vectorised env
# step, where the physics is a few dozen flops, those loops cost most of the time. The two
# helpers below compute the same bits as ``jax.random.split`` and ``jax.random.uniform`` with
# plain array operations, which XLA fuses into the step. They fall back to ``jax.random`` for
# keys of other PRNG implementations and for the non-partitionable threefry mode, so their
# values always equal ``jax.random``'s.

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = 0x1BD11BDA


def _rotate_left(x: chex.Array, bits: int) -> chex.Array:
    return (x << np.uint32(bits)) | (x >> np.uint32(32 - bits))


def _threefry2x32(k0, k1, x0, x1) -> tuple[chex.Array, chex.Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
    SC 2011), unrolled. uint32 inputs broadcast together; returns the two output words."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(_KEY_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + ks[(block + 1) % 3]
        x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def _threefry_words(key: chex.PRNGKey) -> tuple[chex.Array, chex.Array] | None:
    """The two key words if ``key`` is one threefry key that the fused path handles, else None."""
    if not jax.config.jax_threefry_partitionable:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != () or str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        data = jax.random.key_data(key)
    else:
        if key.shape != (2,) or key.dtype != jnp.uint32:
            return None
        if str(jax.config.jax_default_prng_impl) != "threefry2x32":
            return None
        data = key
    return data[0], data[1]


@functools.partial(jax.jit, static_argnames=("num",))
def fused_split(key: chex.PRNGKey, num: int = 2) -> chex.PRNGKey:
    """``jax.random.split(key, num)``, bit for bit, as fusible array operations.

    Args:
      key: one PRNG key (typed or raw uint32[2]).
      num: number of keys.

    Returns:
      ``num`` keys, of the same kind as ``key``: equal to ``jax.random.split(key, num)``.
    """
    if _threefry_words(key) is None:
        return jax.random.split(key, num)
    return _split_at(key, num, jnp.arange(num, dtype=jnp.uint32))


def fused_split_at(key: chex.PRNGKey, num: int, index: chex.Array) -> chex.PRNGKey:
    """``jax.random.split(key, num)[index]``, bit for bit, hashing only the keys at ``index``.

    Args:
      key: one PRNG key (typed or raw uint32[2]).
      num: the number of keys ``jax.random.split`` would make.
      index: int array of indices; an index ``>= num`` (padding) gives some valid key.

    Returns:
      The keys, with the shape of ``index`` in front.
    """
    return _split_at(key, num, jnp.asarray(index))


def fused_bits(key: chex.PRNGKey, num: int) -> chex.Array:
    """``jax.random.bits(key, (num,), jnp.uint32)``, bit for bit, as fusible array operations.

    For the few random words an env step draws (one hash per word, unrolled, so XLA fuses them
    with the arithmetic that reads them). Keys that the fused path does not handle go to
    ``jax.random.bits``.

    Args:
      key: one PRNG key (typed or raw uint32[2]).
      num: number of 32-bit words (static).

    Returns:
      uint32 words of shape ``(num,)``, equal to ``jax.random.bits(key, (num,), jnp.uint32)``.
    """
    words = _threefry_words(key)
    if words is None:
        return jax.random.bits(key, (num,), jnp.uint32)
    b0, b1 = _threefry2x32(
        words[0], words[1], jnp.zeros((num,), jnp.uint32), jnp.arange(num, dtype=jnp.uint32)
    )
    return b0 ^ b1


def fused_uniform(
    key: chex.PRNGKey,
    shape: tuple[int, ...] = (),
    dtype: Any = jnp.float32,
    minval: float | chex.Array = 0.0,
    maxval: float | chex.Array = 1.0,
) -> chex.Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)`` from the same bits, fusible.

    For the few numbers an env reset draws (float32, at most 64 of them); anything else is
    passed to ``jax.random.uniform``. Each number is hashed on its own, so every consumer fuses
    with just the hash it reads. The random bits are ``jax.random.uniform``'s; the floats are
    too, up to the rounding of the last multiply-add, which XLA may or may not contract into an
    FMA depending on what it is fused with (at most one float32 ulp, as for
    ``jax.random.uniform`` itself in different contexts).

    Args:
      key: one PRNG key.
      shape: output shape.
      dtype: output dtype.
      minval: lower bound (inclusive), broadcastable to ``shape``.
      maxval: upper bound (exclusive), broadcastable to ``shape``.

    Returns:
      Uniform samples in ``[minval, maxval)``, equal to ``jax.random.uniform``'s.
    """
    return _fused_uniform(key, tuple(int(d) for d in shape), np.dtype(dtype), minval, maxval)


@functools.partial(jax.jit, static_argnames=("shape", "dtype"))
def _fused_uniform(key, shape, dtype, minval, maxval):
    # Compiled as a unit, so that even outside jit the last multiply-add rounds as in
    # jax.random.uniform (which is jitted too).
    size = int(np.prod(shape, dtype=np.int64))
    words = _threefry_words(key)
    if words is None or dtype != np.float32 or size > 64:
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    bits = []
    for i in range(size):
        b0, b1 = _threefry2x32(words[0], words[1], np.uint32(0), np.uint32(i))
        bits.append(b0 ^ b1)
    bits = jnp.stack(bits).reshape(shape) if size else jnp.zeros(shape, jnp.uint32)
    # 23 random mantissa bits under the exponent of 1.0 give a float in [1, 2).
    one = np.uint32(0x3F800000)
    floats = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | one, jnp.float32) - 1.0
    lo, hi = jnp.asarray(minval, jnp.float32), jnp.asarray(maxval, jnp.float32)
    lo = jnp.reshape(lo, (1,) * (len(shape) - lo.ndim) + lo.shape)
    hi = jnp.reshape(hi, (1,) * (len(shape) - hi.ndim) + hi.shape)
    return jnp.maximum(lo, floats * (hi - lo) + lo)


def step_reads_key(
    env: Environment, key: chex.PRNGKey, state: Any, action: chex.Array, params: EnvParams
) -> bool:
    """Whether ``env.step`` reads its key at all, found by tracing it once (no computation).

    Deterministic dynamics (CartPole, MountainCar, Pendulum) ignore the step key; for them the
    autoreset can give the whole key to the reset instead of splitting it, which halves the
    per-step key derivation. The answer errs on the safe side: a key passed on to any operation
    counts as read, even if that operation ends up not using it.

    Args:
      env: the environment whose ``step`` is inspected.
      key: an example key (only shapes and dtypes matter, for all four examples).
      state: an example env state.
      action: an example action.
      params: example env params.

    Returns:
      True when the key feeds into the traced computation.
    """
    jaxpr = jax.make_jaxpr(env.step)(key, state, action, params).jaxpr
    # Compare by identity: jaxpr variables and literals differ across JAX versions in hashability.
    key_ids = {id(v) for v in jaxpr.invars[: len(jax.tree.leaves(key))]}
    used = [id(v) for v in jaxpr.outvars]
    for eqn in jaxpr.eqns:
        used.extend(id(v) for v in eqn.invars)
    return any(i in key_ids for i in used)


class Wrapper(Environment):
    """Base wrapper: forwards params, spaces and names to the wrapped env ``self.env``."""

    #: True when, for an ``AutoResetWrapper`` inside this wrapper, "step, then reset the ended
    #: episode" gives the same state as this wrapper's own ``reset`` with that reset's key. Then a
    #: ``VecEnv`` may do the resets for only the sub-envs that ended (see ``VecEnv``).
    commutes_with_autoreset: bool = False

    def __init__(self, env: Environment):
        if not isinstance(env, Environment):
            raise RLKitError(f"{type(self).__name__}: env must be an envs.Environment, got {env!r}")
        self.env = env

    @property
    def id(self) -> str:  # type: ignore[override]
        return self.env.id

    @property
    def reward_threshold(self) -> float | None:  # type: ignore[override]
        return self.env.reward_threshold

    @property
    def unwrapped(self) -> Environment:
        """The innermost, unwrapped environment."""
        env = self.env
        while isinstance(env, Wrapper):
            env = env.env
        return env

    @property
    def default_params(self) -> EnvParams:
        return self.env.default_params

    def observation_space(self, params: EnvParams | None = None) -> Space:
        return self.env.observation_space(params)

    def action_space(self, params: EnvParams | None = None) -> Space:
        return self.env.action_space(params)

    def reset(self, key: chex.PRNGKey, params: EnvParams | None = None):
        return self.env.reset(key, self.default_params if params is None else params)

    def step(self, key: chex.PRNGKey, state: Any, action: chex.Array, params=None):
        return self.env.step(key, state, action, self.default_params if params is None else params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


class AutoResetWrapper(Wrapper):
    """Starts the next episode inside the step that ends one, keeping the true last observation.

    On a step that terminates or truncates, the returned ``obs`` and ``state`` are those of a fresh
    episode (reset with a key derived from the step key), while ``reward``, ``terminated`` and
    ``truncated`` are the ending step's. ``info["final_obs"]`` is the observation the step actually
    reached: the bootstrap observation for a truncated episode. On other steps
    ``info["final_obs"] == obs``. This is Gymnasium's SAME_STEP autoreset, so there are no dummy
    transitions: every step is a real transition ``(obs, action, reward, final_obs)``.

    The reset is computed on every step and chosen with ``where`` (a branch would become a select
    under ``vmap`` anyway). When the inner step does not read its key (see ``step_reads_key``),
    the whole key goes to the reset; otherwise it is split into a step key and a reset key.

    The state is the inner env's state, unchanged.
    """

    def __init__(self, env: Environment, step_uses_key: bool | None = None):
        """Wraps ``env``.

        Args:
          env: the environment to autoreset.
          step_uses_key: whether ``env.step`` needs its key; None (the default) finds out by
            tracing the step once. Pass True to always split the key.
        """
        super().__init__(env)
        self.step_uses_key = step_uses_key

    def step(self, key: chex.PRNGKey, state: Any, action: chex.Array, params=None):
        """Steps, and resets where the episode ended.

        Args:
          key: PRNG key for this step (and for the reset, if one happens).
          state: inner env state.
          action: the action.
          params: env params (defaults to ``default_params``).

        Returns:
          ``(obs, state, reward, terminated, truncated, info)`` with ``obs``/``state`` of the next
          episode where ``terminated | truncated``, and ``info["final_obs"]`` the reached obs.
        """
        params = self.default_params if params is None else params
        uses_key = self.step_uses_key
        if uses_key is None:
            uses_key = step_reads_key(self.env, key, state, action, params)
        if uses_key:
            key_step, key_reset = fused_split(key)
        else:
            key_step = key_reset = key
        obs_step, state_step, reward, terminated, truncated, info = self.env.step(
            key_step, state, action, params
        )
        obs_reset, state_reset = self.env.reset(key_reset, params)
        done = jnp.logical_or(terminated, truncated)
        obs = tree_select(done, obs_reset, obs_step)
        state = tree_select(done, state_reset, state_step)
        info = {**info, "final_obs": obs_step}
        return obs, state, reward, terminated, truncated, info


class _FinalObsOnly(Wrapper):
    """``AutoResetWrapper``'s step without the reset: adds ``info["final_obs"] = obs``. A sparse
    ``VecEnv`` steps this and then resets just the sub-envs that ended."""

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward, terminated, truncated, {**info, "final_obs": obs}


@struct.dataclass
class EpisodeStatisticsState:
    """``env_state`` plus the running return and length of the current episode."""

    env_state: Any
    episode_return: chex.Array
    episode_length: chex.Array


class EpisodeStatistics(Wrapper):
    """Tracks the undiscounted return and length of each episode.

    Adds to ``info``:

    - ``"returned_episode"``: bool, an episode ended (terminated or truncated) on this step;
    - ``"episode_return"``: float32, the return of the episode up to and including this step, so
      the completed episode's return where ``returned_episode``;
    - ``"episode_length"``: int32, likewise the number of steps.

    Read them as ``episode_return[returned_episode]``. The running totals restart at zero after
    an ending step, whether or not an inner wrapper has already reset the env.
    """

    # After an ending step the totals are zero, as after ``reset``.
    commutes_with_autoreset = True

    def reset(self, key: chex.PRNGKey, params: EnvParams | None = None):
        obs, env_state = self.env.reset(key, self.default_params if params is None else params)
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.zeros((), jnp.float32),
            episode_length=jnp.zeros((), jnp.int32),
        )
        return obs, state

    def step(self, key: chex.PRNGKey, state: EpisodeStatisticsState, action, params=None):
        params = self.default_params if params is None else params
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        episode_return = state.episode_return + jnp.asarray(reward, jnp.float32)
        episode_length = state.episode_length + 1
        new_state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0, episode_length),
        )
        info = {
            **info,
            "returned_episode": done,
            "episode_return": episode_return,
            "episode_length": episode_length,
        }
        return obs, new_state, reward, terminated, truncated, info


class VecEnv(Wrapper):
    """``num_envs`` independent copies of an env, stepped in one ``vmap``.

    ``reset(key, params)`` and ``step(key, state, actions, params)`` take ONE key and split it
    into ``num_envs`` per-env keys (one split per call; with ``num_envs == 1`` the key itself is
    the sub-env's key, so a one-env ``VecEnv`` draws exactly what the single env would).
    ``params`` are shared (not batched).
    Every output gains a leading axis of size ``num_envs``; ``actions`` must have it too.
    ``observation_space``/``action_space`` are those of a single env.

    Sparse resets. Vmapped, an ``AutoResetWrapper`` computes a reset for every sub-env on every
    step and keeps the few it needs (under ``vmap`` a branch is a select), so on a CPU with many
    envs the reset's random-number hashing costs as much as the physics. When the wrapped env is an
    ``AutoResetWrapper``, possibly inside wrappers that ``commutes_with_autoreset`` (``make_vec``'s
    stack is), the ``VecEnv`` can instead step every sub-env without resetting and then reset only
    those whose episode ended, ``reset_budget`` at a time (a ``lax.while_loop`` runs more rounds on
    the rare steps where more ended). Each reset uses the very key the per-env autoreset would
    have used, so the outputs are the same, value for value, as with dense resets; only the cost
    differs. ``sparse_resets=None`` (the default) turns this on from 512 envs, where it is faster
    on CPU.

    To vary params per env (domain randomisation), ``jax.vmap`` the single env yourself with
    ``in_axes=(0, 0, 0, 0)``.
    """

    #: ``num_envs`` from which ``sparse_resets=None`` resets sparsely.
    SPARSE_FROM = 512

    def __init__(
        self,
        env: Environment,
        num_envs: int,
        sparse_resets: bool | None = None,
        reset_budget: int | None = None,
    ):
        """Vectorises ``env``.

        Args:
          env: the per-env environment (usually ``EpisodeStatistics(AutoResetWrapper(env))``).
          num_envs: number of copies.
          sparse_resets: reset only the sub-envs that ended (True), always compute every reset
            (False), or decide by ``num_envs`` (None). Ignored when ``env`` has no
            ``AutoResetWrapper`` that allows it.
          reset_budget: sub-envs reset per round when sparse (default ``max(32, num_envs // 16)``).
        """
        super().__init__(env)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise RLKitError(f"VecEnv: num_envs must be a positive int, got {num_envs!r}")
        if sparse_resets is not None and not isinstance(sparse_resets, bool):
            raise RLKitError(f"VecEnv: sparse_resets must be True, False or None, got {sparse_resets!r}")
        if reset_budget is not None and (
            isinstance(reset_budget, bool) or not isinstance(reset_budget, int) or reset_budget < 1
        ):
            raise RLKitError(f"VecEnv: reset_budget must be a positive int, got {reset_budget!r}")
        self.num_envs = num_envs
        self.reset_budget = min(num_envs, reset_budget or max(32, num_envs // 16))
        stack = _no_reset_stack(env)
        if sparse_resets is None:
            sparse_resets = num_envs >= self.SPARSE_FROM
        self._sparse = stack if (sparse_resets and stack is not None and num_envs > 1) else None

    @property
    def sparse_resets(self) -> bool:
        """Whether this env resets only the sub-envs that ended."""
        return self._sparse is not None

    def reset(self, key: chex.PRNGKey, params: EnvParams | None = None):
        """Resets all sub-envs. Returns ``(obs [N, ...], state)``."""
        params = self.default_params if params is None else params
        return jax.vmap(self.env.reset, in_axes=(0, None))(self._keys(key), params)

    def step(self, key: chex.PRNGKey, state: Any, actions: chex.Array, params=None):
        """Steps all sub-envs with ``actions`` of leading size ``num_envs``.

        Returns:
          ``(obs, state, reward, terminated, truncated, info)``, each with leading axis N.
        """
        params = self.default_params if params is None else params
        leaves = jax.tree.leaves(actions)
        if not leaves or any(jnp.ndim(a) < 1 or jnp.shape(a)[0] != self.num_envs for a in leaves):
            shapes = [jnp.shape(a) for a in leaves]
            raise RLKitError(
                f"VecEnv.step: actions must have leading axis num_envs={self.num_envs}, "
                f"got shape(s) {shapes}"
            )
        if self._sparse is not None:
            return self._sparse_step(key, state, actions, params)
        keys = self._keys(key)
        return jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)

    def _sparse_step(self, key, state, actions, params):
        no_reset, autoreset = self._sparse
        n, budget = self.num_envs, self.reset_budget
        uses_key = autoreset.step_uses_key
        if uses_key is None:
            first = functools.partial(jax.tree.map, lambda x: x[0])
            uses_key = step_reads_key(no_reset, key, first(state), first(actions), params)
        env_keys = self._keys(key, materialize=False)  # dropped when nothing reads them
        # The per-env autoreset splits its key in two when its step reads a key (see there).
        step_keys = jax.vmap(lambda k: fused_split(k)[0])(env_keys) if uses_key else env_keys
        obs, state, reward, terminated, truncated, info = jax.vmap(
            no_reset.step, in_axes=(0, 0, 0, None)
        )(step_keys, state, actions, params)

        ended = jnp.cumsum(jnp.logical_or(terminated, truncated).astype(jnp.int32))  # [N]
        total = ended[-1]

        def more(carry):
            return carry[0] * budget < total

        def reset_round(carry):
            j, obs, state = carry
            # Sub-envs number j*budget+1 ... (j+1)*budget among those that ended; n where none.
            idx = jnp.searchsorted(ended, j * budget + jnp.arange(1, budget + 1), side="left")
            keys = _materialize(_split_at(key, n, jnp.minimum(idx, n - 1)))
            if uses_key:
                keys = jax.vmap(lambda k: fused_split(k)[1])(keys)
            new_obs, new_state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, params)
            put = functools.partial(jax.tree.map, lambda a, b: a.at[idx].set(b, mode="drop"))
            return j + 1, put(obs, new_obs), put(state, new_state)

        _, obs, state = jax.lax.while_loop(more, reset_round, (jnp.int32(0), obs, state))
        return obs, state, reward, terminated, truncated, info

    def _keys(self, key: chex.PRNGKey, materialize: bool = True) -> chex.PRNGKey:
        """One key per sub-env (``jax.random.split``'s keys, computed by ``fused_split``).

        With ``materialize`` the keys are computed once into an array (``_materialize``) rather
        than fused into each of their readers; without, XLA may drop the hashes nobody reads.
        """
        if self.num_envs == 1:
            return jnp.expand_dims(key, 0)
        keys = fused_split(key, self.num_envs)
        return _materialize(keys) if materialize else keys

    def __repr__(self) -> str:
        return f"VecEnv({self.env!r}, num_envs={self.num_envs})"


def _materialize(keys: chex.PRNGKey) -> chex.PRNGKey:
    """``keys``, computed once into a buffer (``lax.optimization_barrier``).

    A sub-env's key feeds every number its reset draws (CartPole's four start values are four
    hashes of it). Left to itself, XLA fuses the key's own hash into each of those readers' loops,
    which makes the program much slower to compile and no faster to run (figures in
    docs/design.md). Keys are ``num_envs`` x 2 words, so storing them costs nothing.
    """
    return jax.lax.optimization_barrier(keys)


def _split_at(key: chex.PRNGKey, num: int, index: chex.Array) -> chex.PRNGKey:
    """``jax.random.split(key, num)[index]`` for an int array ``index``, hashing only those keys
    (``fused_split`` is this for every index)."""
    words = _threefry_words(key)
    if words is None:
        return jax.random.split(key, num)[index]
    b0, b1 = _threefry2x32(words[0], words[1], jnp.zeros_like(index, jnp.uint32),
                           index.astype(jnp.uint32))
    data = jnp.stack([b0, b1], axis=-1)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))
    return data


def _no_reset_stack(env: Environment) -> tuple[Environment, AutoResetWrapper] | None:
    """``(env with its AutoResetWrapper replaced by _FinalObsOnly, that AutoResetWrapper)``, when
    ``env`` is an ``AutoResetWrapper`` inside wrappers that all ``commutes_with_autoreset``."""
    layers = []
    inner = env
    while isinstance(inner, Wrapper) and type(inner) is not AutoResetWrapper:
        if not inner.commutes_with_autoreset:
            return None
        layers.append(inner)
        inner = inner.env
    if type(inner) is not AutoResetWrapper:
        return None
    stack: Environment = _FinalObsOnly(inner.env)
    for layer in reversed(layers):
        outer = copy.copy(layer)
        outer.env = stack
        stack = outer
    return stack, inner


def make_vec(
    env_id_or_env: str | Environment,
    num_envs: int,
    *,
    sparse_resets: bool | None = None,
    **param_overrides,
) -> tuple[VecEnv, EnvParams]:
    """The vectorised env every agent uses: ``VecEnv(EpisodeStatistics(AutoResetWrapper(env)))``.

    The statistics sit outside the autoreset so they see every real step exactly once, with the
    ending step's reward and flags, and keep their own counters (the reset inside the autoreset
    does not need to touch them).

    Args:
      env_id_or_env: a registered id (``"CartPole-v1"``) or an ``Environment`` instance.
      num_envs: number of parallel copies.
      sparse_resets: see ``VecEnv`` (None: from ``VecEnv.SPARSE_FROM`` envs on); the outputs
        are the same either way.
      **param_overrides: params fields to change, e.g. ``max_episode_steps=200``.

    Returns:
      ``(venv, params)``. ``venv.num_envs`` is the batch size; ``venv.observation_space()`` and
      ``venv.action_space()`` are a single env's spaces.
    """
    if isinstance(env_id_or_env, str):
        env, params = make(env_id_or_env, **param_overrides)
    elif isinstance(env_id_or_env, Environment):
        env = env_id_or_env
        params = override_params(env.default_params, param_overrides, "make_vec")
    else:
        raise RLKitError(
            "make_vec: env_id_or_env must be an env id or an envs.Environment, "
            f"got {env_id_or_env!r}"
        )
    venv = VecEnv(EpisodeStatistics(AutoResetWrapper(env)), num_envs, sparse_resets=sparse_resets)
    return venv, params
