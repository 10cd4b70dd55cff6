"""Device-resident experience replay as pure functions over an explicit state.

The buffer keeps each env's steps in time order, ``[capacity, num_envs, ...]`` per leaf, so a
sample can take ``sequence_length`` consecutive steps of one env (the window an n-step target
needs). All sizes are static; every function is pure and works under ``jax.jit`` and ``jax.vmap`` (e.g. over seeds):

    from rlkit import replay
    state = replay.init(example_step, capacity=25_000, num_envs=4)
    state = replay.add(state, rollout)                        # leaves [T, num_envs, ...]
    batch = replay.sample(state, key, batch_size=64, sequence_length=3)
    batch.experience                                           # leaves [64, 3, ...]

Prioritised replay (proportional variant of Schaul et al., 2016) samples windows with probability
``P(i) = p_i^alpha / sum_k p_k^alpha`` (``sample_prioritized``), corrects the bias with
``importance_weights`` and learns new priorities with ``update_priorities``.

Unlike the rest of rlkit, these functions act on a whole buffer, not on one transition. The
functions are used through the module (``rlkit.replay.add``); only the two state types are re-exported flat.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import RLKitError, check

__all__ = ["ReplaySample", "ReplayState"]

Array = chex.Array


class ReplayState(NamedTuple):
    """The buffer: storage, priorities and the write head.

    ``data`` leaves are ``[capacity, num_envs, ...]``. Time slot ``write_index`` is written next;
    the ``size`` slots before it (modulo ``capacity``) hold data, the oldest at
    ``(write_index - size) % capacity``.
    """

    data: Any
    priorities: Array  # [capacity, num_envs] float32, raw priorities (before the exponent alpha)
    max_priority: Array  # float32 scalar: priority given to newly added steps
    write_index: Array  # int32 scalar
    size: Array  # int32 scalar, number of filled time slots (<= capacity)

    @property
    def capacity(self) -> int:
        return self.priorities.shape[0]

    @property
    def num_envs(self) -> int:
        return self.priorities.shape[1]


class ReplaySample(NamedTuple):
    """A batch of windows: ``experience`` leaves are ``[batch_size, sequence_length, ...]``.

    ``time_index`` and ``env_index`` (``[batch_size]``) locate each window's first step, for
    ``update_priorities``; ``probability`` is the chance that a single draw picks that window.
    """

    experience: Any
    time_index: Array
    env_index: Array
    probability: Array


def init(example: Any, capacity: int, num_envs: int) -> ReplayState:
    """An empty buffer with room for ``capacity`` steps of each of ``num_envs`` envs.

    Args:
      example: one step of one env, a pytree of arrays (only shapes and dtypes are used).
      capacity: time slots per env (static); the buffer holds ``capacity * num_envs`` steps.
      num_envs: number of envs whose steps are added side by side (static).

    Returns:
      An empty ``ReplayState``.
    """
    if int(capacity) < 1:
        raise RLKitError(f"replay.init: capacity must be a positive integer, got {capacity!r}")
    if int(num_envs) < 1:
        raise RLKitError(f"replay.init: num_envs must be a positive integer, got {num_envs!r}")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, num_envs) + jnp.shape(x), jnp.asarray(x).dtype), example
    )
    return ReplayState(
        data=data,
        priorities=jnp.zeros((capacity, num_envs), jnp.float32),
        max_priority=jnp.ones((), jnp.float32),
        write_index=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def add(state: ReplayState, batch: Any) -> ReplayState:
    """Writes ``T`` time-major steps of every env at the write head, overwriting the oldest.

    New steps get priority ``state.max_priority``.

    Args:
      state: the buffer.
      batch: a pytree with the structure of the buffer's data, leaves ``[T, num_envs, ...]`` with
        ``T <= capacity`` (static).

    Returns:
      The buffer with the steps added.
    """
    leaves, treedef = jax.tree.flatten(batch)
    store_leaves, store_def = jax.tree.flatten(state.data)
    if treedef != store_def:
        raise RLKitError(
            f"replay.add: batch must have the structure of the stored data {store_def}, "
            f"got {treedef}"
        )
    steps = None
    for i, (x, s) in enumerate(zip(leaves, store_leaves)):
        if x.ndim != s.ndim or tuple(x.shape[1:]) != tuple(s.shape[1:]):
            raise RLKitError(
                f"replay.add: batch leaf {i} must have shape "
                f"[T, {', '.join(map(str, s.shape[1:]))}]"
                f" (time-major, num_envs={state.num_envs}), got {tuple(x.shape)}"
            )
        if steps is None:
            steps = x.shape[0]
        elif x.shape[0] != steps:
            raise RLKitError(
                f"replay.add: all batch leaves must have the same T, got {steps} and {x.shape[0]}"
            )
    if steps is None or steps > state.capacity:
        raise RLKitError(
            f"replay.add: batch must have 1 <= T <= capacity ({state.capacity}) steps, got {steps}"
        )
    slots = (state.write_index + jnp.arange(steps)) % state.capacity
    data = jax.tree.map(lambda s, x: s.at[slots].set(x.astype(s.dtype)), state.data, batch)
    priorities = state.priorities.at[slots].set(state.max_priority)
    return ReplayState(
        data=data,
        priorities=priorities,
        max_priority=state.max_priority,
        write_index=((state.write_index + steps) % state.capacity).astype(jnp.int32),
        size=jnp.minimum(state.size + steps, state.capacity).astype(jnp.int32),
    )


def num_windows(state: ReplayState, sequence_length: int = 1) -> Array:
    """Number of windows of ``sequence_length`` consecutive stored steps per env (int32 scalar).

    A window never crosses the write head: its steps are all stored and in time order.
    """
    return jnp.maximum(state.size - sequence_length + 1, 0).astype(jnp.int32)


def can_sample(state: ReplayState, sequence_length: int = 1) -> Array:
    """Whether at least one window of ``sequence_length`` steps is stored (bool scalar)."""
    return num_windows(state, sequence_length) > 0


def _oldest(state: ReplayState) -> Array:
    return (state.write_index - state.size) % state.capacity


def _gather(state: ReplayState, start: Array, env_index: Array, sequence_length: int) -> Any:
    """Windows from physical slots ``start [B]`` of envs ``env_index [B]``: ``[B, L, ...]``."""
    slots = (start[:, None] + jnp.arange(sequence_length)[None, :]) % state.capacity
    envs = jnp.broadcast_to(env_index[:, None], slots.shape)
    return jax.tree.map(lambda x: x[slots, envs], state.data)


def _check_sample_args(batch_size: int, sequence_length: int, state: ReplayState) -> None:
    if int(batch_size) < 1:
        raise RLKitError(f"replay: batch_size must be a positive integer, got {batch_size!r}")
    if not 1 <= int(sequence_length) <= state.capacity:
        raise RLKitError(
            f"replay: sequence_length must be in [1, capacity={state.capacity}], "
            f"got {sequence_length!r}"
        )


def sample(
    state: ReplayState, key: chex.PRNGKey, batch_size: int, sequence_length: int = 1
) -> ReplaySample:
    """Uniformly samples ``batch_size`` windows (with replacement) of consecutive steps of one env.

    Every (env, window start) pair that ``num_windows`` counts is equally likely. When nothing can
    be sampled yet (``can_sample`` is False) the result holds stale or zero data; mask its use.

    Args:
      state: the buffer.
      key: a PRNG key.
      batch_size: number of windows (static).
      sequence_length: steps per window (static), e.g. ``n`` for n-step targets.

    Returns:
      A ``ReplaySample`` with leaves ``[batch_size, sequence_length, ...]``.
    """
    _check_sample_args(batch_size, sequence_length, state)
    k_time, k_env = jax.random.split(key)
    windows = num_windows(state, sequence_length)
    offset = jax.random.randint(k_time, (batch_size,), 0, jnp.maximum(windows, 1))
    env_index = jax.random.randint(k_env, (batch_size,), 0, state.num_envs)
    start = (_oldest(state) + offset) % state.capacity
    probability = jnp.full(
        (batch_size,), 1.0 / jnp.maximum(windows * state.num_envs, 1), jnp.float32
    )
    return ReplaySample(
        experience=_gather(state, start, env_index, sequence_length),
        time_index=start.astype(jnp.int32),
        env_index=env_index.astype(jnp.int32),
        probability=probability,
    )


def _window_mask(state: ReplayState, sequence_length: int) -> Array:
    """``[capacity]`` bool: the time slots where a valid window starts."""
    logical = (jnp.arange(state.capacity) - _oldest(state)) % state.capacity
    return logical < num_windows(state, sequence_length)


def sampling_probabilities(
    state: ReplayState, sequence_length: int = 1, priority_exponent: float = 0.6
) -> Array:
    """Proportional prioritised sampling distribution over window starts, ``[capacity, num_envs]``.

        P(i) = p_i^alpha / sum_k p_k^alpha     (over valid window starts; 0 elsewhere)

    See "Prioritized Experience Replay" by Schaul, Quan, Antonoglou and Silver (2016),
    https://arxiv.org/abs/1511.05952, eq. (1). ``alpha = 0`` gives uniform sampling.
    """
    valid = _window_mask(state, sequence_length)[:, None]
    scaled = jnp.where(valid, state.priorities**priority_exponent, 0.0)
    return scaled / jnp.maximum(jnp.sum(scaled), jnp.finfo(jnp.float32).tiny)


def sample_prioritized(
    state: ReplayState,
    key: chex.PRNGKey,
    batch_size: int,
    sequence_length: int = 1,
    priority_exponent: float = 0.6,
) -> ReplaySample:
    """Samples windows with probability proportional to ``priority^alpha`` (prioritised replay).

    See "Prioritized Experience Replay" by Schaul et al. (2016), https://arxiv.org/abs/1511.05952:

        P(i) = p_i^alpha / sum_k p_k^alpha

    The draw is stratified (appendix B.2.1): the cumulative mass is cut into ``batch_size`` equal
    ranges and one window is drawn from each, so each draw still has marginal probability
    ``P(i)`` and the batch covers the distribution more evenly. The cost is one cumulative sum over
    the whole buffer per call, vectorised instead of a sequential sum-tree descent.

    Args:
      state: the buffer.
      key: a PRNG key.
      batch_size: number of windows (static).
      sequence_length: steps per window (static).
      priority_exponent: alpha >= 0 (may be traced); 0 is uniform.

    Returns:
      A ``ReplaySample``; ``probability`` holds ``P(i)`` for ``importance_weights``.
    """
    _check_sample_args(batch_size, sequence_length, state)
    probs = sampling_probabilities(state, sequence_length, priority_exponent).reshape(-1)
    cdf = jnp.cumsum(probs)
    total = cdf[-1]
    u = (jnp.arange(batch_size) + jax.random.uniform(key, (batch_size,))) / batch_size * total
    u = jnp.minimum(u, jnp.nextafter(total, jnp.zeros_like(total)))
    flat = jnp.searchsorted(cdf, u, side="right")
    flat = jnp.clip(flat, 0, probs.shape[0] - 1)
    start, env_index = flat // state.num_envs, flat % state.num_envs
    return ReplaySample(
        experience=_gather(state, start, env_index, sequence_length),
        time_index=start.astype(jnp.int32),
        env_index=env_index.astype(jnp.int32),
        probability=probs[flat],
    )


def importance_weights(probability: Array, num_items: Array, beta: Array) -> Array:
    """Importance-sampling weights that correct prioritised sampling, normalised by their max.

    See "Prioritized Experience Replay" by Schaul et al. (2016), https://arxiv.org/abs/1511.05952,
    section 3.4:

        w_i = (N * P(i))^(-beta) / max_j w_j

    with the max over the batch, so weights only scale updates down. ``beta`` is annealed from its
    initial value to 1 over training.

    Args:
      probability: ``P(i)`` of each sampled item, ``[B]`` float.
      num_items: ``N``, the number of items that could have been sampled (scalar).
      beta: the exponent in [0, 1] (scalar, may be traced).

    Returns:
      Weights ``[B]`` in (0, 1].
    """
    check("importance_weights", chex.assert_rank, {"probability": probability}, 1)
    check("importance_weights", chex.assert_type, {"probability": probability}, float)
    n = jnp.asarray(num_items, probability.dtype)
    w = (n * jnp.maximum(probability, jnp.finfo(probability.dtype).tiny)) ** (-beta)
    return w / jnp.max(w)


def update_priorities(
    state: ReplayState, time_index: Array, env_index: Array, priorities: Array
) -> ReplayState:
    """Sets the priorities of sampled windows (e.g. ``|TD error| + eps``) and tracks their max.

    Args:
      state: the buffer.
      time_index: ``[B]`` int, ``ReplaySample.time_index``.
      env_index: ``[B]`` int, ``ReplaySample.env_index``.
      priorities: ``[B]`` float, new non-negative priorities (before the exponent alpha).

    Returns:
      The buffer with the new priorities; ``max_priority`` is the max ever set.
    """
    check(
        "update_priorities",
        chex.assert_rank,
        {"time_index": time_index, "env_index": env_index, "priorities": priorities},
        1,
    )
    check(
        "update_priorities",
        chex.assert_type,
        {"time_index": time_index, "env_index": env_index, "priorities": priorities},
        [int, int, float],
    )
    check(
        "update_priorities",
        chex.assert_equal_shape,
        {"time_index": time_index, "env_index": env_index, "priorities": priorities},
    )
    priorities = priorities.astype(jnp.float32)
    return state._replace(
        priorities=state.priorities.at[time_index, env_index].set(priorities),
        max_priority=jnp.maximum(state.max_priority, jnp.max(priorities)),
    )
