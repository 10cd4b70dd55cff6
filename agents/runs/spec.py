"""What a training run is, before anything runs: its arguments, its runs and their configs.

``RunArgs`` holds the options of a run that are not hyperparameters (env, backend, seeds, sweep,
output, cadences). ``build(args, config)`` validates them with the agent config, resolves the env
and its spaces and expands seeds x sweep points into one config per run (``BuiltRun``), raising
RLKitError on any bad input before a file is written. ``run_configs`` rebuilds those per-run
configs from a run directory's ``config.json``, which is how a saved policy gets each run's own
config without rebuilding the job or its env.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import time
from typing import Any, Literal

import gymnasium
import jax
import numpy as np

import envs
from agents.base import Agent, check_field_ranges, config_from_dict, config_to_dict, stack_configs
from agents.parallel import MeshShape, local_config, parse_mesh
from agents.registry import get_agent
from agents.runs import files
from envs.host import is_gymnasium_id, make_gymnasium, rlkit_id, spaces_from_gymnasium
from rlkit.errors import RLKitError

__all__ = [
    "RunArgs",
    "BuiltRun",
    "build",
    "parse_sweep",
    "run_configs",
    "run_config_payload",
    "config_diffs",
    "default_out",
    "args_from_run_config",
    "load_run",
    "policy_params_template",
    "resolve_backend",
    "env_spaces",
    "BACKENDS",
    "check_pipeline_layout",
]

BACKENDS = ("auto", "jax", "gymnasium")
#: The values of ``--pipeline`` (``agents.training.pipeline``).
PIPELINE_MODES = ("off", "sync", "async")


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """Options of a training run that are not hyperparameters of the agent."""

    agent: str = "dqn"
    """Agent to train (see agents.registered_agents())."""
    env: str = "CartPole-v1"
    """Env id: an rlkit env (compiled loop) or any Gymnasium id (host loop)."""
    backend: Literal["auto", "jax", "gymnasium"] = "auto"
    """Where envs run: auto = rlkit's JAX env when the id has one, else Gymnasium on the host."""
    seed: int = 0
    """Base random seed; seed s of --num-seeds uses an independent key derived from it."""
    num_seeds: int = 1
    """Independent seeds trained together as one vmapped program."""
    sweep: tuple[str, ...] = ()
    """Hyperparameter grid, e.g. --sweep learning_rate=1e-3,3e-4 ent_coef=0,0.01 (x num-seeds)."""
    out: str | None = None
    """Run directory (default: runs/<agent>-<env>-<time>)."""
    resume: str | None = None
    """Continue the run in this directory from its last checkpoint."""
    log_every: int = 10_000
    """Env steps (per seed) between progress/log updates; also the size of a jitted chunk."""
    checkpoint_every: int = 50_000
    """Env steps (per seed) between checkpoints (one is also written at the end)."""
    eval_every: int | None = None
    """Env steps (per run) between greedy evaluations during training (0: none; default:
    total_timesteps / 20, at least 5,000); chunks are made no longer than this."""
    eval_every_episodes: int = 16
    """Episodes of each greedy evaluation during training."""
    final_policy: Literal["best", "last"] = "best"
    """Policy to evaluate at the end and load by default: per run, the one that scored best in the
    evaluations during training, or the last one."""
    eval_episodes: int = 100
    """Episodes of the final greedy evaluation on Gymnasium's env (0 to skip)."""
    quiet: bool = False
    """No progress bar or summary printing."""
    pipeline: Literal["off", "sync", "async"] = "off"
    """Host envs: 'sync' or 'async' runs the actors (env steps) and the learner in their own
    threads; 'sync' trains on data of the current policy (with one actor the same results as
    'off'), 'async' lets the actors lag by up to --pipeline-max-lag updates while the learner
    trains."""
    pipeline_max_lag: int = 1
    """--pipeline async: the most updates the acting policy may lag the learner (>= 1)."""
    pipeline_actors: int = 1
    """--pipeline: K actor threads, each stepping num_envs / K of the envs with its own key chain;
    every update trains on the K rollouts together (num_envs must be divisible by K)."""
    pipeline_actor_device: int | None = None
    """--pipeline: index into jax.devices() of the device the actors act on (the learner stays
    on the default device); default: the default device."""
    mesh: str | None = None
    """Device mesh of the compiled backend, e.g. runs=4,data=2: runs split over 'runs' devices,
    each run's env batch (and replay) over 'data' devices with averaged gradients. Default: no
    data axis, the runs over every device (see docs/scaling.md)."""
    coordinator_address: str | None = None
    """Several processes (hosts): HOST:PORT of process 0's coordinator (jax.distributed); with
    --num-processes and --process-id. Picked up from the cluster (SLURM, ...) when left out."""
    num_processes: int | None = None
    """Several processes: how many take part (with --coordinator-address)."""
    process_id: int | None = None
    """Several processes: this process's index in [0, --num-processes)."""


def _field_is_int(f: dataclasses.Field) -> bool:
    return f.type in (int, "int")


def parse_sweep(sweep: tuple[str, ...], config_cls: type) -> list[dict[str, float]]:
    """``("lr=1e-3,3e-4", "ent=0,0.01")`` -> grid of override dicts (row-major).

    Each name must be a traced field of ``config_cls``, given once; values must be finite numbers,
    and whole numbers for integer fields.
    """
    if not sweep:
        return [{}]
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    axes = []
    seen = set()
    for item in sweep:
        if "=" not in item:
            raise RLKitError(f"--sweep: expected NAME=V1,V2,..., got {item!r}")
        name, values = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in fields:
            close = [n for n in fields if n.startswith(name[:4])]
            hint = f" (close: {', '.join(close[:3])})" if close else ""
            raise RLKitError(f"--sweep: unknown hyperparameter {name!r}{hint}")
        if name in seen:
            raise RLKitError(f"--sweep: {name!r} is given twice; give each name once")
        seen.add(name)
        if not fields[name].metadata.get("pytree_node", True):
            raise RLKitError(
                f"--sweep: {name!r} is a static field (shape or count); only traced "
                "hyperparameters can be swept in one program"
            )
        try:
            vals = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise RLKitError(
                f"--sweep: values of {name!r} must be numbers, got {values!r}"
            ) from None
        if not vals:
            raise RLKitError(f"--sweep: no values given for {name!r}")
        for v in vals:
            if not math.isfinite(v):
                raise RLKitError(f"--sweep: values of {name!r} must be finite, got {v}")
            if _field_is_int(fields[name]) and v != int(v):
                raise RLKitError(f"--sweep: {name!r} is an integer field, got {v}")
        if _field_is_int(fields[name]):
            vals = [int(v) for v in vals]
        axes.append([(name, v) for v in vals])
    return [dict(combo) for combo in itertools.product(*axes)]


def run_configs(config: Any, sweep_points: list[dict], num_seeds: int) -> list[Any]:
    """One config per run: every sweep point, each repeated for ``num_seeds`` seeds."""
    return [config.replace(**point) for point in sweep_points for _ in range(num_seeds)]


@dataclasses.dataclass
class BuiltRun:
    """Everything a run needs, validated, before anything is written."""

    args: RunArgs
    agent: Agent
    config: Any  # the config before sweep overrides
    configs: list  # one config per run (sweep point x seed)
    sweep_points: list[dict]  # the grid of overrides, one per point
    backend: str  # "jax" or "gymnasium"
    env_id: str  # the id the backend runs: an rlkit id for "jax", a Gymnasium id otherwise
    mesh_shape: MeshShape = MeshShape()  # the device grid of the compiled backend (--mesh)

    @property
    def num_runs(self) -> int:
        return len(self.configs)

    @property
    def swept(self) -> bool:
        return any(self.sweep_points)

    @property
    def stacked_configs(self) -> Any:
        """Every run's config with a leading run axis (``agents.base.stack_configs``)."""
        return stack_configs(self.configs)

    def policy_params_template(self) -> Any:
        """Shapes and dtypes of the stacked evaluation parameters (nothing is computed)."""
        return policy_params_template(self.agent, self.stacked_configs, self.num_runs)


def policy_params_template(agent: Agent, stacked_configs: Any, num_runs: int) -> Any:
    """Shapes of ``vmap(agent.policy_params(agent.init(config, key)))`` over the runs."""

    def one(config, key):
        return agent.policy_params(agent.init(config, key))

    keys = jax.random.split(jax.random.PRNGKey(0), num_runs)
    return jax.eval_shape(jax.vmap(one), stacked_configs, keys)


def _check_args(args: RunArgs) -> None:
    if args.backend not in BACKENDS:
        raise RLKitError(f"--backend: expected one of {BACKENDS}, got {args.backend!r}")
    for name in (
        "seed",
        "num_seeds",
        "log_every",
        "checkpoint_every",
        "eval_episodes",
        "eval_every_episodes",
    ):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise RLKitError(f"--{name.replace('_', '-')}: expected an integer, got {value!r}")
    if args.num_seeds < 1:
        raise RLKitError(f"--num-seeds: expected an integer >= 1, got {args.num_seeds}")
    for name in ("log_every", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise RLKitError(f"--{name.replace('_', '-')}: expected an integer >= 1")
    if args.eval_episodes < 0:
        raise RLKitError("--eval-episodes: expected an integer >= 0")
    if args.eval_every is not None and args.eval_every < 0:
        raise RLKitError(
            "--eval-every: expected an integer >= 0 (0: no evaluations during training)"
        )
    if args.eval_every_episodes < 1:
        raise RLKitError("--eval-every-episodes: expected an integer >= 1")
    if args.pipeline not in PIPELINE_MODES:
        raise RLKitError(f"--pipeline: expected one of {PIPELINE_MODES}, got {args.pipeline!r}")
    lag = args.pipeline_max_lag
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
        raise RLKitError(f"--pipeline-max-lag: expected an integer >= 1, got {lag!r}")
    for name in ("num_processes", "process_id"):
        value = getattr(args, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0
        ):
            raise RLKitError(f"--{name.replace('_', '-')}: expected an integer >= 0, got {value!r}")
    if args.final_policy not in ("best", "last"):
        raise RLKitError(f"--final-policy: expected 'best' or 'last', got {args.final_policy!r}")


def check_pipeline_layout(actors: int, actor_device: int | None, num_envs: int) -> None:
    """Check ``--pipeline-actors`` against ``--num-envs`` (equal groups) and
    ``--pipeline-actor-device`` against ``jax.devices()``; RLKitError naming the flag."""
    if isinstance(actors, bool) or not isinstance(actors, (int, np.integer)) or actors < 1:
        raise RLKitError(f"--pipeline-actors: expected an integer >= 1, got {actors!r}")
    if int(num_envs) % int(actors):
        raise RLKitError(
            f"--pipeline-actors: {actors} actors each step an equal share of the envs; expected "
            f"--num-envs a multiple of {actors} (got --num-envs {num_envs}), or --pipeline-actors "
            f"a divisor of {num_envs}"
        )
    if actor_device is None:
        return
    count = len(jax.devices())
    if (
        isinstance(actor_device, bool)
        or not isinstance(actor_device, (int, np.integer))
        or not 0 <= actor_device < count
    ):
        raise RLKitError(
            f"--pipeline-actor-device: expected an index into jax.devices() in [0, {count - 1}] "
            f"({count} device(s)), got {actor_device!r}"
        )


def resolve_backend(env_id: str, backend: str) -> tuple[str, str]:
    """``(backend, env id)`` for ``--env``/``--backend``: "jax" runs an rlkit env, "gymnasium" any
    Gymnasium id on the host; "auto" picks "jax" whenever rlkit has the env."""
    own = rlkit_id(env_id)
    if backend == "auto":
        backend = "jax" if own is not None else "gymnasium"
    if backend == "jax":
        if own is None:
            hint = " (a Gymnasium id: use --backend gymnasium)" if is_gymnasium_id(env_id) else ""
            try:
                envs.make(env_id)
            except RLKitError as e:
                raise RLKitError(f"--env: {e}{hint}") from None
        return "jax", own
    if not is_gymnasium_id(env_id):
        known = sorted(set(envs.registered()) | set(gymnasium.registry))
        close = difflib.get_close_matches(env_id, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise RLKitError(
            f"--env: unknown env id {env_id!r}: neither an rlkit env nor a Gymnasium id.{hint}"
        )
    return "gymnasium", env_id


def env_spaces(backend: str, env_id: str) -> tuple[Any, Any]:
    """The observation and action spaces (``envs`` spaces) of the env a backend will run."""
    if backend == "jax":
        env, params = envs.make(env_id)
        return env.observation_space(params), env.action_space(params)
    try:
        probe = make_gymnasium(env_id)
    except gymnasium.error.DependencyNotInstalled as e:
        extra = " (pip install 'rlkit[box2d]')" if "box2d" in str(e).lower() else ""
        raise RLKitError(
            f"--env: {env_id!r} needs a package that is not installed{extra}: {e}"
        ) from None
    except gymnasium.error.Error as e:
        raise RLKitError(f"--env: cannot make {env_id!r}: {e}") from None
    try:
        return (
            spaces_from_gymnasium(probe.observation_space),
            spaces_from_gymnasium(probe.action_space),
        )
    finally:
        probe.close()


def build(args: RunArgs, config: Any) -> BuiltRun:
    """Validate ``args`` and ``config`` and build the agent; RLKitError on any bad input."""
    _check_args(args)
    agent_cls = get_agent(args.agent)
    if not isinstance(config, agent_cls.Config):
        raise RLKitError(f"config: expected a {agent_cls.Config.__name__} for agent {args.agent!r}")
    check_field_ranges(config)
    backend, env_id = resolve_backend(args.env, args.backend)
    if args.pipeline != "off" and backend != "gymnasium":
        raise RLKitError(
            f"--pipeline: {args.pipeline!r} runs host envs; use it with --backend gymnasium"
        )
    actors_set = args.pipeline_actors != 1 or args.pipeline_actor_device is not None
    if args.pipeline == "off" and actors_set:
        flag = "--pipeline-actors" if args.pipeline_actors != 1 else "--pipeline-actor-device"
        raise RLKitError(f"{flag}: sets up the pipeline's actors; use it with --pipeline sync|async")
    if args.pipeline != "off":
        check_pipeline_layout(args.pipeline_actors, args.pipeline_actor_device, config.num_envs)
    sweep_points = parse_sweep(args.sweep, type(config))
    if backend == "gymnasium" and (args.num_seeds > 1 or len(sweep_points) > 1):
        raise RLKitError(
            "--num-seeds/--sweep: the host (Gymnasium) backend trains one run at a time"
        )
    mesh_shape = parse_mesh(args.mesh)
    if backend == "gymnasium" and mesh_shape != MeshShape():
        raise RLKitError("--mesh: the host (Gymnasium) backend runs on one device")
    obs_space, act_space = env_spaces(backend, env_id)
    agent = agent_cls(obs_space, act_space)
    configs = run_configs(config, sweep_points, args.num_seeds)
    # The data shards of a run: the mesh's data axis, or on the host one env pool per process.
    shards = mesh_shape.data if backend == "jax" else jax.process_count()
    for point, run_config in zip(sweep_points, configs[:: args.num_seeds]):
        try:
            agent.check_config(run_config)
            # What each shard runs must be a valid config too.
            agent.check_config(local_config(run_config, shards))
        except RLKitError as e:
            where = f" (sweep point {point})" if point else ""
            raise RLKitError(f"{e}{where}") from None
    return BuiltRun(args, agent, config, configs, sweep_points, backend, env_id, mesh_shape)


def default_out(args: RunArgs) -> str:
    """``runs/<agent>-<env>-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{args.agent}-{args.env.replace('/', '_')}-{stamp}")


def run_config_payload(built: BuiltRun, out: str) -> dict:
    """The ``config.json`` of a run."""
    run = dataclasses.asdict(built.args)
    run["out"] = out
    run["resume"] = None
    return {
        "format": files.FORMAT_VERSION,
        "agent": built.args.agent,
        "env": built.args.env,
        "env_id": built.env_id,
        "backend": built.backend,
        "observation_space": files.space_to_json(built.agent.observation_space),
        "action_space": files.space_to_json(built.agent.action_space),
        "num_runs": built.num_runs,
        "num_seeds": built.args.num_seeds,
        "sweep_points": built.sweep_points,
        "run": run,
        "config": config_to_dict(built.config),
    }


def args_from_run_config(cfg: dict, **replace: Any) -> RunArgs:
    """The ``RunArgs`` stored in a ``config.json`` (``replace`` overrides fields)."""
    run = cfg.get("run")
    if not isinstance(run, dict):
        raise RLKitError("config.json: missing or malformed 'run' section")
    known = {f.name for f in dataclasses.fields(RunArgs)}
    unknown = sorted(set(run) - known)
    if unknown:
        raise RLKitError(f"config.json: unknown run option(s) {unknown}")
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in run.items()}
    values.update(replace)
    return RunArgs(**values)


def config_diffs(saved: dict, new: dict, defaults: dict | None = None) -> list[str]:
    """What differs between a saved ``config.json`` and a new run's, for ``--resume``.

    ``defaults`` (the agent config's defaults, as ``config_to_dict`` writes them) stands in for
    the fields a saved config lacks: a run written before a field existed ran with its default,
    as ``load_run`` reads it."""
    diffs = []
    for key in ("agent", "env", "backend", "num_runs", "sweep_points"):
        if saved.get(key) != new.get(key):
            diffs.append(f"{key} ({saved.get(key)!r} != {new.get(key)!r})")
    saved_config = {**(defaults or {}), **(saved.get("config") or {})}
    for k in sorted(set(saved_config) | set(new["config"])):
        if saved_config.get(k) != new["config"].get(k):
            diffs.append(f"{k} ({saved_config.get(k)!r} != {new['config'].get(k)!r})")
    if (saved.get("run") or {}).get("seed") != new["run"]["seed"]:
        diffs.append("seed")
    return diffs


def load_run(cfg: dict) -> tuple[Agent, Any, list[dict], int]:
    """``(agent, base config, sweep points, num_seeds)`` from a ``config.json``, built from the
    spaces it stores (no env is made)."""
    try:
        agent_cls = get_agent(cfg["agent"])
        config = config_from_dict(agent_cls.Config, cfg["config"])
        obs_space = files.space_from_json(cfg["observation_space"])
        act_space = files.space_from_json(cfg["action_space"])
        points = cfg.get("sweep_points") or [{}]
        num_seeds = int(cfg.get("num_seeds") or 1)
    except KeyError as e:
        raise RLKitError(f"config.json: missing field {e}") from None
    except TypeError as e:
        raise RLKitError(f"config.json: malformed ({e})") from None
    return agent_cls(obs_space, act_space), config, points, num_seeds
