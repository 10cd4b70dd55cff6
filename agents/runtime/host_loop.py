"""The host loop over Gymnasium envs: jitted ``act`` and ``update``, env steps in Python.

``host_train_iteration`` steps an ``envs.host.HostVecEnv`` with the agent's jitted ``act`` and
produces the same ``Transition`` rollouts as the compiled loop (``host_collect``), then calls the
jitted ``update`` (``host_learn``). The two halves are separate so that a pipelined backend can
run them in different threads (``agents.training.pipeline``).

Per-call overhead is what limits a host run with small networks, so only observations, actions
and rewards cross between host and device: the key chain stays on the device (split inside
``act``), ``update`` may donate the agent state (the replay buffer is then written in place), an
update's metrics come back packed in one vector (``PackedMetrics``) and are fetched once per chunk
(``stack_metrics``), and ``host_learn_and_act`` computes an update and the next rollout's first
action in one device call (``make_host_update_act``). None of this changes what is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from agents.base import Agent, Transition
from agents.parallel import DataAxis, bind_data_axis, data_mean, fold_in_shard
from agents.runtime.compile import compile_once

__all__ = [
    "HostRollout",
    "HostRunnerState",
    "PackedMetrics",
    "host_collect",
    "host_init",
    "host_learn",
    "host_learn_and_act",
    "host_train_iteration",
    "make_host_fns",
    "make_host_update_act",
    "make_process_update",
    "stack_metrics",
]


class HostRunnerState(NamedTuple):
    """The carry of the host loop (the env's own state lives in the ``HostVecEnv``)."""

    agent_state: Any
    obs: np.ndarray
    key: chex.PRNGKey
    update_step: int


def host_init(agent: Agent, henv, config, key: chex.PRNGKey) -> HostRunnerState:
    """Fresh agent state (its init compiled once, see ``compile_once``) and reset envs."""
    key, k_agent = jax.random.split(key)
    obs = henv.reset()
    agent_state = compile_once(lambda k: agent.init(config, k), k_agent)(k_agent)
    return HostRunnerState(agent_state, obs, key, 0)


class HostRollout(NamedTuple):
    """One rollout collected on the host, with what its update needs (``host_collect``)."""

    rollout: Transition  # numpy, time-major [T, N, ...]
    obs: np.ndarray  # the observations the next rollout starts from
    key: chex.PRNGKey  # the key of the next rollout (a device array)
    update_key: chex.PRNGKey  # the key of this rollout's update (a device array)
    episode_stats: tuple[float, float, float]  # return sum, length sum, count of ended episodes


@jax.tree_util.register_pytree_node_class
class PackedMetrics:
    """An update's float32 scalar metrics packed into one vector (one transfer, not one per
    metric); the names travel as static data. ``unpack`` gives the dict back."""

    def __init__(self, values: Any, names: tuple[str, ...], others: dict):
        self.values, self.names, self.others = values, names, others

    def tree_flatten(self):
        return (self.values, self.others), self.names

    @classmethod
    def tree_unflatten(cls, names, children):
        return cls(children[0], names, children[1])

    @classmethod
    def pack(cls, metrics: dict) -> PackedMetrics:
        """Inside a jitted function: the float32 scalars go into ``values``, the rest as is."""
        metrics = {k: jnp.asarray(v) for k, v in metrics.items()}
        names = tuple(
            k for k, v in metrics.items() if v.shape == () and v.dtype == jnp.float32
        )
        values = jnp.stack([metrics[k] for k in names]) if names else jnp.zeros((0,), jnp.float32)
        return cls(values, names, {k: v for k, v in metrics.items() if k not in names})

    def unpack(self) -> dict:
        """The metrics as a dict (entries of ``values`` stay 0-d slices: fetch first)."""
        out = {k: self.values[i] for i, k in enumerate(self.names)}
        out.update(self.others)
        return out


def host_collect(
    henv,
    config,
    agent_state: Any,
    obs: np.ndarray,
    key: chex.PRNGKey,
    act_fn: Callable,
    first: tuple | None = None,
) -> HostRollout:
    """One rollout of ``config.rollout_length`` steps on the host env from ``obs``.

    ``act_fn(state, obs, key, t)`` is the agent's jitted ``act`` (``make_host_fns``): ``key`` is
    split into the next rollout's key, the update's key and one key per env step on the device,
    so the keys depend on nothing but the run's seed and never come to the host. Per env step
    there is one device call and one transfer back (action and extras together); the rollout is
    stacked on the host. ``first``, if given, is what ``act_fn`` returns for step 0 (computed
    with the previous update by ``host_learn_and_act``).
    """
    T = config.rollout_length
    obs_l, act_l, rew_l, term_l, trunc_l, next_l, extras_l = [], [], [], [], [], [], []
    done_l, ret_l, len_l = [], [], []
    next_key = update_key = None
    for t in range(T):
        if t == 0 and first is not None:
            action, extras, next_key, update_key = first
        else:
            action, extras, next_key, update_key = act_fn(agent_state, obs, key, np.int32(t))
        action, extras = jax.device_get((action, extras))
        next_obs, reward, terminated, truncated, final_obs, info = henv.step(action)
        obs_l.append(obs)
        act_l.append(action)
        rew_l.append(reward)
        term_l.append(terminated)
        trunc_l.append(truncated)
        next_l.append(final_obs)
        extras_l.append(extras)
        done_l.append(info["returned_episode"])
        ret_l.append(info["episode_return"])
        len_l.append(info["episode_length"])
        obs = next_obs
    # Episode statistics: per step sums over the envs, accumulated step by step in float64.
    done = np.stack(done_l)
    ep_ret, ep_len, ep_cnt = 0.0, 0.0, 0.0
    for r, n, c in zip(
        np.where(done, np.stack(ret_l), 0.0).sum(axis=1),
        np.where(done, np.stack(len_l), 0).sum(axis=1),
        done.sum(axis=1),
    ):
        ep_ret += float(r)
        ep_len += float(n)
        ep_cnt += float(c)
    rollout = Transition(
        obs=_observations(np.stack(obs_l)),
        action=np.stack(act_l),
        reward=np.stack(rew_l).astype(np.float32, copy=False),
        terminated=np.stack(term_l).astype(np.bool_, copy=False),
        truncated=np.stack(trunc_l).astype(np.bool_, copy=False),
        next_obs=_observations(np.stack(next_l)),
        extras=jax.tree.map(lambda *xs: np.stack(xs), *extras_l),
    )
    return HostRollout(rollout, obs, next_key, update_key, (ep_ret, ep_len, ep_cnt))


def _observations(obs: np.ndarray) -> np.ndarray:
    """Observations as the update takes them: float32, except uint8 images (Atari frames), which
    stay uint8 (a quarter of the transfer; the CNN torso scales them)."""
    return obs if obs.dtype == np.uint8 else obs.astype(np.float32, copy=False)


def host_learn(
    config, agent_state: Any, collected: HostRollout, update_step: int, update_fn: Callable
) -> tuple[Any, dict]:
    """The update on a collected rollout: ``(agent_state, metrics)``, where ``update_step`` is
    the number of updates done before this one; the metrics add the episode statistics and the
    env steps after it. Nothing is fetched from the device (``stack_metrics`` fetches a chunk's
    metrics at once), so the next rollout's Python work overlaps the update."""
    agent_state, metrics = update_fn(agent_state, collected.rollout, collected.update_key)
    return agent_state, _with_episode_stats(config, metrics, collected, update_step)


def host_learn_and_act(
    config, agent_state: Any, collected: HostRollout, update_step: int, update_act_fn: Callable
) -> tuple[Any, dict, tuple]:
    """``host_learn``, and in the same device call the next rollout's first ``act`` (on
    ``collected.obs`` with ``collected.key``, the updated state): ``(agent_state, metrics,
    first)``, ``first`` being what ``host_collect`` takes. One device call per env step instead
    of two when ``rollout_length`` is 1. ``update_act_fn`` is ``make_host_update_act``'s."""
    agent_state, metrics, first = update_act_fn(
        agent_state, collected.rollout, collected.update_key, collected.obs, collected.key
    )
    return agent_state, _with_episode_stats(config, metrics, collected, update_step), first


def _with_episode_stats(config, metrics: Any, collected: HostRollout, update_step: int) -> dict:
    ep_ret, ep_len, ep_cnt = collected.episode_stats
    metrics = {"device": metrics} if isinstance(metrics, PackedMetrics) else dict(metrics)
    metrics.update(
        episode_return_sum=ep_ret,
        episode_length_sum=ep_len,
        episode_count=ep_cnt,
        env_steps=(update_step + 1) * config.num_envs * config.rollout_length,
    )
    return metrics


def stack_metrics(steps: list[dict]) -> dict[str, np.ndarray]:
    """The metrics of a chunk's updates (``host_learn``'s), fetched in one transfer and stacked
    as numpy ``[1, updates]`` per metric."""
    steps = jax.device_get(steps)
    rows = []
    for m in steps:
        packed = m.pop("device", None)
        rows.append({**packed.unpack(), **m} if packed is not None else m)
    return {k: np.asarray([m[k] for m in rows])[None] for k in rows[0]}


def host_train_iteration(
    agent: Agent,
    henv,
    config,
    rs: HostRunnerState,
    act_fn: Callable,
    update_fn: Callable,
    update_act_fn: Callable | None = None,
    first: tuple | None = None,
) -> tuple[HostRunnerState, dict, tuple | None]:
    """One rollout on the host env (``host_collect``) and one update: ``(rs, metrics, first)``.

    ``act_fn(state, obs, key, t)`` and ``update_fn(state, rollout, key)`` are the agent's ``act``
    and ``update`` with ``config`` bound and jitted (``make_host_fns``). With ``update_act_fn``
    (``make_host_update_act``'s) the update also computes the next rollout's first action
    (``host_learn_and_act``), returned as ``first`` for the next iteration to pass back in;
    without it the update is ``host_learn``'s and ``first`` is None. ``first`` (given) is step 0
    of this rollout, computed by the previous iteration.
    """
    collected = host_collect(henv, config, rs.agent_state, rs.obs, rs.key, act_fn, first)
    if update_act_fn is not None:
        agent_state, metrics, first = host_learn_and_act(
            config, rs.agent_state, collected, rs.update_step, update_act_fn
        )
    else:
        agent_state, metrics = host_learn(
            config, rs.agent_state, collected, rs.update_step, update_fn
        )
        first = None
    rs = HostRunnerState(agent_state, collected.obs, collected.key, rs.update_step + 1)
    return rs, metrics, first


def make_host_fns(agent: Agent, config, donate: bool = False) -> tuple[Callable, Callable]:
    """Jitted ``act(state, obs, key, t)`` and ``update(state, rollout, key)`` with ``config`` bound.

    ``act`` splits the rollout's ``key`` into ``config.rollout_length + 2`` keys on the device and
    acts with key ``t + 2`` of them; it returns ``(action, extras, next_key, update_key)``, the
    next rollout's key (key 0) and this rollout's update key (key 1) staying on the device.
    ``update`` returns ``(state, PackedMetrics)``. With ``donate`` the update reuses the agent
    state's buffers (the replay buffer is written in place, not copied); the state passed in is
    then deleted, so only a caller that never reads it again may donate.

    Binding the config avoids flattening and transferring every hyperparameter on each env step.
    """
    def act(state, obs, key, t):
        return _act_at(agent, config, state, obs, key, t)

    def update(state, rollout, key):
        state, metrics = agent.update(config, state, rollout, key)
        return state, PackedMetrics.pack(dict(metrics))

    return jax.jit(act), jax.jit(update, donate_argnums=0 if donate else ())


def make_host_update_act(agent: Agent, config, donate: bool = False) -> Callable:
    """Jitted ``update_act(state, rollout, key, next_obs, next_key)``: ``update`` (as
    ``make_host_fns``'s) and then ``act`` at step 0 of the next rollout with the new state,
    in one program: ``(state, PackedMetrics, (action, extras, next_key, update_key))``.

    An optimisation barrier separates the two halves, so XLA compiles the ``act`` half as it
    compiles ``act`` alone and the actions are those the separate calls give, bit for bit."""

    def update_act(state, rollout, key, next_obs, next_key):
        state, metrics = agent.update(config, state, rollout, key)
        state = jax.lax.optimization_barrier(state)
        first = _act_at(agent, config, state, next_obs, next_key, 0)
        return state, PackedMetrics.pack(dict(metrics)), first

    return jax.jit(update_act, donate_argnums=0 if donate else ())


def _act_at(agent: Agent, config, state, obs, key, t):
    """``act`` at step ``t`` of the rollout whose key is ``key`` (``host_collect``)."""
    keys = jax.random.split(key, config.rollout_length + 2)
    action, extras = agent.act(config, state, obs, keys[t + 2])
    return action, extras, keys[0], keys[1]


def make_process_update(agent: Agent, config) -> Callable:
    """``update(state, rollout, key)`` of a run whose envs are split over the job's processes.

    Each process steps its own pool of host envs (``config`` is one process's share, see
    ``agents.parallel.local_config``) and keeps its own agent state on its first local device;
    the update runs as one program over a ``data`` mesh axis of one device per process, so the
    gradients (and normaliser statistics) are averaged over every process's rollout and the
    parameters stay equal. Takes and returns this process's state; the metrics are averaged.
    """
    devices = [
        next(d for d in jax.devices() if d.process_index == p) for p in range(jax.process_count())
    ]
    mesh = Mesh(np.asarray(devices, dtype=object), ("data",))
    axis = DataAxis(("data",), (len(devices),))
    shard = NamedSharding(mesh, PartitionSpec("data"))

    def per_process(state, rollout, key):
        state, rollout = jax.tree.map(lambda x: x[0], (state, rollout))
        with bind_data_axis(axis):
            state, metrics = agent.update(config, state, rollout, fold_in_shard(key))
            metrics = data_mean(dict(metrics))
        return jax.tree.map(lambda x: jnp.asarray(x)[None], (state, metrics))

    program = jax.jit(
        jax.shard_map(
            per_process,
            mesh=mesh,
            in_specs=(PartitionSpec("data"), PartitionSpec("data"), PartitionSpec()),
            out_specs=PartitionSpec("data"),
            check_vma=False,
        )
    )
    local_device = devices[jax.process_index()]

    def to_global(x):
        x = jax.device_put(jnp.asarray(x)[None], local_device)
        return jax.make_array_from_single_device_arrays(
            (len(devices),) + x.shape[1:], shard, [x]
        )

    def update(state, rollout, key):
        state, metrics = program(  # the key as host data: replicated, on no device in particular
            jax.tree.map(to_global, state), jax.tree.map(to_global, rollout), np.asarray(key)
        )
        return jax.tree.map(lambda x: x.addressable_data(0)[0], (state, metrics))

    return update
