"""Runners: drive an agent's pure functions over environments.

Compiled runner (``envs`` environments): ``collect_rollout`` and ``train_iteration`` are pure and run
under ``jax.jit``; ``make_train`` gives ``train(config, key)``, the whole training run as one function of a
config pytree and a key, so

    train = make_train(agent, "CartPole-v1", config)
    jax.jit(jax.vmap(train, in_axes=(None, 0)))(config, keys)            # seeds
    jax.jit(jax.vmap(train, in_axes=(0, None)))(stack_configs(cs), key)  # hyperparameter sweep

On a machine with several local devices (several GPUs, or a CPU split into one device per core with
``agents.runner.cpu_devices_flag``), ``vmap_runs`` spreads the runs axis over them:

    jax.jit(vmap_runs(train, len(keys), in_axes=(None, 0)))(config, keys)

``make_train_chunk`` gives the same loop cut into chunks of ``num_iterations`` updates so the host can
report, log and checkpoint between chunks (``agents.trainer`` does that).

Host runner (any Gymnasium env id): ``host_train_iteration`` steps an ``envs.gymnasium.HostVecEnv`` in
Python with jitted ``act`` and ``update`` and produces the same ``Transition`` format.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from agents.base import Agent, Transition

__all__ = [
    "RunnerState",
    "init_runner",
    "collect_rollout",
    "train_iteration",
    "make_train",
    "make_train_chunk",
    "episode_metrics",
    "HostRunnerState",
    "host_init",
    "host_train_iteration",
    "make_host_fns",
    "vmap_runs",
    "run_devices",
    "cpu_devices_flag",
    "ONCE_COMPILER_OPTIONS",
    "compile_once",
    "compile_init_and_chunk",
    "runs_sharding",
]


class RunnerState(NamedTuple):
    """The carry of the compiled training loop."""

    agent_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.PRNGKey
    update_step: chex.Array  # int32: updates done so far


def cpu_devices_flag(xla_flags: str | None = None) -> str:
    """``XLA_FLAGS`` with one host (CPU) device per available core, unless it already sets a count.

    XLA runs one program on one CPU device largely on one core, and on a small CPU the vmapped seeds
    of an agent are arithmetic-bound, so a vmapped program gains little from its batch there. With
    one host device per core, ``vmap_runs`` gives each core its own share of the runs. Set this in
    ``os.environ["XLA_FLAGS"]`` before JAX initialises its backends (``scripts/train.py`` and
    ``scripts/benchmark.py`` do). It changes nothing for a single run or on an accelerator.

    Args:
      xla_flags: the current flags (default: ``os.environ.get("XLA_FLAGS", "")``).

    Returns:
      The flags with ``--xla_force_host_platform_device_count=<cores>`` added where missing.
    """
    import os

    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    if "xla_force_host_platform_device_count" in flags:
        return flags
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return f"{flags} --xla_force_host_platform_device_count={max(1, cores)}".strip()


#: XLA compiler options for a program that runs once per training run (its init): no LLVM
#: optimisation of the generated code. Such a program runs in microseconds either way, and the
#: skipped optimisation is about half its compile time (PPO's CartPole init: 0.75 s against 1.5 s).
ONCE_COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 0}


def compile_once(fn: Callable, *args: Any) -> Callable:
    """``jax.jit(fn)`` compiled for ``args`` with ``ONCE_COMPILER_OPTIONS``.

    For programs that run once, such as a run's ``init_runner``: they compile in about half the
    time and run a little slower, which costs nothing when they run once. The result accepts
    arguments of the same shapes, dtypes and shardings as ``args``.
    """
    return jax.jit(fn).lower(*args).compile(ONCE_COMPILER_OPTIONS)


def compile_init_and_chunk(
    init: Callable,
    init_args: tuple,
    chunk: Callable,
    chunk_args: Callable[[Any], tuple],
    num_runs: int | None = None,
) -> tuple[Callable, Callable]:
    """Compiles a run's init program and its training-chunk program at the same time.

    The init is lowered first and compiled with ``ONCE_COMPILER_OPTIONS`` in a second thread,
    while this thread lowers and compiles the chunk for the init's output shapes (XLA releases
    the GIL while it compiles, so on a machine with two or more cores the two overlap; PPO on
    CartPole: 2.25 s instead of 2.63 s on 2 cores). Nothing runs; call the results.

    Args:
      init: ``init(*init_args) -> state``.
      init_args: arrays (or ``jax.ShapeDtypeStruct``) to compile ``init`` for.
      chunk: the chunk function, jitted (``jax.jit(..., donate_argnums=...)``) or plain.
      chunk_args: maps the init's output, as ``jax.ShapeDtypeStruct`` leaves, to the chunk's
        arguments.
      num_runs: when ``init`` is mapped with ``vmap_runs(..., num_runs)``, its output's sharding
        over devices is ``runs_sharding(num_runs)``, and the chunk is compiled for it.

    Returns:
      ``(compiled_init, compiled_chunk)``.
    """
    import threading

    lowered_init = jax.jit(init).lower(*init_args)
    result: dict[str, Any] = {}

    def compile_init():
        try:
            result["init"] = lowered_init.compile(ONCE_COMPILER_OPTIONS)
        except BaseException as e:  # re-raised in the calling thread
            result["error"] = e

    thread = threading.Thread(target=compile_init, name="rlkit-compile-init", daemon=True)
    thread.start()
    try:
        state = lowered_init.out_info
        sharding = None if num_runs is None else runs_sharding(num_runs)
        if sharding is not None:
            state = jax.tree.map(
                lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), state
            )
        jitted = chunk if hasattr(chunk, "lower") else jax.jit(chunk)
        compiled_chunk = jitted.lower(*chunk_args(state)).compile()
    finally:
        thread.join()
    if "error" in result:
        raise result["error"]
    return result["init"], compiled_chunk


def runs_sharding(num_runs: int):
    """How ``vmap_runs(fn, num_runs)`` places its outputs: split along the leading runs axis over
    ``run_devices(num_runs)`` when there are several, else None (the default device)."""
    devices = run_devices(num_runs)
    if len(devices) == 1:
        return None
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(_runs_mesh(devices), PartitionSpec("runs"))


def _runs_mesh(devices: list):
    """The one-axis mesh (axis ``"runs"``) that ``vmap_runs`` splits runs over."""
    from jax.sharding import Mesh

    return Mesh(np.asarray(devices), ("runs",))


def run_devices(num_runs: int) -> list:
    """The local devices ``vmap_runs`` spreads ``num_runs`` runs over.

    All local devices of the default backend when there are several and their number divides
    ``num_runs`` (each then gets the same number of runs); otherwise just the default device.
    """
    devices = jax.local_devices()
    if len(devices) > 1 and num_runs % len(devices) == 0:
        return devices
    return devices[:1]


def vmap_runs(fn: Callable, num_runs: int, in_axes: Any = 0) -> Callable:
    """``jax.vmap(fn, in_axes)`` over a leading runs axis of size ``num_runs``, spread over devices.

    With one device (see ``run_devices``) this is exactly ``jax.vmap(fn, in_axes)``. With D > 1
    devices, the runs axis of every mapped input and of every output is split into D equal blocks
    (``jax.shard_map`` over a one-axis mesh), and each device runs the vmapped ``fn`` over its block;
    runs never communicate, so each run computes what it would alone. Use it inside ``jax.jit``.

    Args:
      fn: the per-run function.
      num_runs: size of the runs axis (the leading axis of the mapped inputs).
      in_axes: ``jax.vmap``'s ``in_axes``: 0 for mapped arguments, None for shared ones (only 0 and
        None are supported, per positional argument).

    Returns:
      The mapped function, with every output's leading axis the runs axis.
    """
    mapped = jax.vmap(fn, in_axes=in_axes)
    devices = run_devices(num_runs)
    if len(devices) == 1:
        return mapped
    from jax.sharding import PartitionSpec

    mesh = _runs_mesh(devices)

    def spec(axis):
        if axis is None:
            return PartitionSpec()
        if axis != 0:
            raise ValueError(f"vmap_runs: in_axes entries must be 0 or None, got {axis!r}")
        return PartitionSpec("runs")

    def call(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"vmap_runs: {len(args)} arguments but in_axes={in_axes!r}")
        sharded = jax.shard_map(
            mapped, mesh=mesh, in_specs=tuple(spec(a) for a in axes),
            out_specs=PartitionSpec("runs"),
            # The runs are independent; skip the varying-across-devices type checks, which would
            # otherwise reject agents' scans whose carries start from constants.
            check_vma=False,
        )
        return sharded(*args)

    return call


def _vec_env(env_or_id, num_envs: int, env_params=None):
    from envs.wrappers import make_vec

    venv, params = make_vec(env_or_id, num_envs)
    return venv, (params if env_params is None else env_params)


def init_runner(agent: Agent, venv, env_params, config, key: chex.PRNGKey) -> RunnerState:
    """Fresh agent and env state for one seed."""
    key, k_agent, k_env = jax.random.split(key, 3)
    agent_state = agent.init(config, k_agent)
    obs, env_state = venv.reset(k_env, env_params)
    return RunnerState(agent_state, env_state, obs, key, jnp.zeros((), jnp.int32))


def episode_metrics(info: dict) -> dict:
    """Sums and counts of the episodes completed in a rollout (from ``EpisodeStatistics`` info)."""
    done = info["returned_episode"]
    return {
        "episode_return_sum": jnp.sum(jnp.where(done, info["episode_return"], 0.0)),
        "episode_length_sum": jnp.sum(jnp.where(done, info["episode_length"], 0)).astype(jnp.float32),
        "episode_count": jnp.sum(done).astype(jnp.float32),
    }


def collect_rollout(
    agent: Agent, venv, env_params, config, rs: RunnerState
) -> tuple[RunnerState, Transition, dict]:
    """``config.rollout_length`` steps of every env with the agent's exploring ``act``."""

    def step(carry: RunnerState, _):
        key, k_act, k_env = jax.random.split(carry.key, 3)
        action, extras = agent.act(config, carry.agent_state, carry.obs, k_act)
        obs, env_state, reward, terminated, truncated, info = venv.step(
            k_env, carry.env_state, action, env_params
        )
        tr = Transition(
            carry.obs, action, reward, terminated, truncated, info["final_obs"], extras
        )
        carry = carry._replace(env_state=env_state, obs=obs, key=key)
        return carry, (tr, episode_metrics(info))

    rs, (rollout, ep) = jax.lax.scan(step, rs, None, length=config.rollout_length)
    return rs, rollout, jax.tree.map(jnp.sum, ep)


def train_iteration(agent: Agent, venv, env_params, config, rs: RunnerState):
    """Collect one rollout and update once. Returns ``(rs, metrics)``."""
    rs, rollout, ep = collect_rollout(agent, venv, env_params, config, rs)
    key, k_update = jax.random.split(rs.key)
    agent_state, metrics = agent.update(config, rs.agent_state, rollout, k_update)
    rs = rs._replace(agent_state=agent_state, key=key, update_step=rs.update_step + 1)
    metrics = dict(metrics)
    metrics.update(ep)
    metrics["env_steps"] = rs.update_step * config.num_envs * config.rollout_length
    return rs, metrics


def make_train_chunk(agent: Agent, venv, env_params, num_iterations: int) -> Callable:
    """``chunk(config, rs) -> (rs, metrics [num_iterations])``: pure, jit and vmap freely."""

    def chunk(config, rs: RunnerState):
        def body(rs, _):
            return train_iteration(agent, venv, env_params, config, rs)

        return jax.lax.scan(body, rs, None, length=num_iterations)

    return chunk


def make_train(agent_or_name, env, config, env_params=None) -> Callable:
    """``train(config, key) -> (RunnerState, metrics)``: a whole training run as one pure function.

    Args:
      agent_or_name: an ``Agent`` instance, or a registered agent name (``"dqn"``, ``"ppo"``...).
      env: an ``envs`` env id or ``Environment``.
      config: the config whose static fields (``num_envs``, sizes) fix the program's shapes.
      env_params: env params (default: the env's defaults).
    """
    venv, env_params = _vec_env(env, config.num_envs, env_params)
    if isinstance(agent_or_name, str):
        from agents.registry import get_agent

        agent = get_agent(agent_or_name)(venv.observation_space(env_params), venv.action_space(env_params))
    else:
        agent = agent_or_name
    num_updates = config.num_updates

    def train(config, key):
        rs = init_runner(agent, venv, env_params, config, key)
        return make_train_chunk(agent, venv, env_params, num_updates)(config, rs)

    return train


# --------------------------------------------------------------------------------------------------
# Host runner over Gymnasium envs
# --------------------------------------------------------------------------------------------------


class HostRunnerState(NamedTuple):
    agent_state: Any
    obs: np.ndarray
    key: chex.PRNGKey
    update_step: int


def host_init(agent: Agent, henv, config, key: chex.PRNGKey, seed: int) -> HostRunnerState:
    key, k_agent = jax.random.split(key)
    obs = henv.reset(seed=seed)
    agent_state = compile_once(lambda k: agent.init(config, k), k_agent)(k_agent)
    return HostRunnerState(agent_state, obs, key, 0)


def host_train_iteration(
    agent: Agent, henv, config, rs: HostRunnerState, act_fn: Callable, update_fn: Callable
) -> tuple[HostRunnerState, dict]:
    """One rollout on the host env and one update.

    ``act_fn(state, obs, key)`` and ``update_fn(state, rollout, key)`` are the agent's ``act`` and
    ``update`` with ``config`` bound and jitted (``make_host_fns``). Per env step there is one
    device call and one transfer back (action and extras together); the rollout is stacked on the
    host and sent to the device once.
    """
    steps = []
    ep_ret, ep_len, ep_cnt = 0.0, 0.0, 0.0
    keys = np.asarray(jax.random.split(rs.key, config.rollout_length + 2))
    obs = rs.obs
    for t in range(config.rollout_length):
        action, extras = jax.device_get(act_fn(rs.agent_state, obs, keys[t + 2]))
        next_obs, reward, terminated, truncated, final_obs, info = henv.step(action)
        steps.append(Transition(obs, action, reward, terminated, truncated, final_obs, extras))
        done = info["returned_episode"]
        ep_ret += float(np.sum(np.where(done, info["episode_return"], 0.0)))
        ep_len += float(np.sum(np.where(done, info["episode_length"], 0)))
        ep_cnt += float(np.sum(done))
        obs = next_obs
    rollout = jax.tree.map(lambda *xs: np.stack(xs), *steps)
    rollout = rollout._replace(
        obs=rollout.obs.astype(np.float32),
        next_obs=rollout.next_obs.astype(np.float32),
        reward=rollout.reward.astype(np.float32),
        terminated=rollout.terminated.astype(np.bool_),
        truncated=rollout.truncated.astype(np.bool_),
    )
    agent_state, metrics = update_fn(rs.agent_state, jax.device_put(rollout), keys[1])
    rs = HostRunnerState(agent_state, obs, jnp.asarray(keys[0]), rs.update_step + 1)
    metrics = dict(metrics)
    metrics.update(
        episode_return_sum=ep_ret,
        episode_length_sum=ep_len,
        episode_count=ep_cnt,
        env_steps=rs.update_step * config.num_envs * config.rollout_length,
    )
    return rs, metrics


def make_host_fns(agent: Agent, config) -> tuple[Callable, Callable]:
    """Jitted ``act(state, obs, key)`` and ``update(state, rollout, key)`` with ``config`` bound.

    Binding the config avoids flattening and transferring every hyperparameter on each env step.
    """
    act = jax.jit(lambda state, obs, key: agent.act(config, state, obs, key))
    update = jax.jit(lambda state, rollout, key: agent.update(config, state, rollout, key))
    return act, update
