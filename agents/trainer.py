"""The training job behind ``scripts/train.py``, shared by every agent.

``RunArgs`` holds what is not a hyperparameter (env, seeds, output, logging cadence). ``train`` builds the
agent and env, runs the compiled loop in jitted chunks (or the host loop for Gymnasium envs), and between
chunks updates the progress bar, writes ``metrics.csv`` and TensorBoard scalars and saves checkpoints.
At the end it saves the policy and evaluates it on Gymnasium's own env.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from agents import runner as runner_lib
from agents.base import Agent, config_from_dict, config_to_dict, stack_configs
from agents.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    read_run_config,
    save_checkpoint,
    save_policy_params,
    write_run_config,
)
from agents.registry import get_agent
from rlkit.errors import RLKitError

__all__ = ["RunArgs", "BuiltRun", "build", "build_from_run_config", "train", "parse_sweep"]


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
    save_buffer: bool = True
    """Include replay buffers in checkpoints (needed for an exact resume)."""
    eval_every: int | None = None
    """Env steps (per run) between greedy evaluations during training on the JAX env (0: none;
    default: total_timesteps / 20, at least 5,000); jitted chunks are made no longer than this."""
    eval_every_episodes: int = 16
    """Episodes of each greedy evaluation during training."""
    final_policy: Literal["best", "last"] = "best"
    """Policy to evaluate at the end and load by default: per run, the one that scored best in the
    evaluations during training, or the last one."""
    eval_episodes: int = 100
    """Episodes of the final greedy evaluation on Gymnasium's env (0 to skip)."""
    quiet: bool = False
    """No progress bar or summary printing."""


def parse_sweep(sweep: tuple[str, ...], config_cls: type) -> list[dict[str, float]]:
    """``("lr=1e-3,3e-4", "ent=0,0.01")`` -> grid of override dicts (row-major)."""
    if not sweep:
        return [{}]
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    axes = []
    for item in sweep:
        if "=" not in item:
            raise RLKitError(f"--sweep: expected NAME=V1,V2,..., got {item!r}")
        name, values = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in fields:
            raise RLKitError(f"--sweep: unknown hyperparameter {name!r}")
        if not fields[name].metadata.get("pytree_node", True):
            raise RLKitError(
                f"--sweep: {name!r} is a static field (shape or count); only traced "
                "hyperparameters can be swept in one program"
            )
        try:
            vals = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise RLKitError(f"--sweep: values of {name!r} must be numbers, got {values!r}") from None
        if not vals:
            raise RLKitError(f"--sweep: no values given for {name!r}")
        axes.append([(name, v) for v in vals])
    return [dict(combo) for combo in itertools.product(*axes)]


def _gymnasium_has(env_id: str) -> bool:
    import gymnasium

    try:
        gymnasium.spec(env_id)
        return True
    except Exception:
        return False


@dataclasses.dataclass
class BuiltRun:
    """Everything a run needs, built from RunArgs + config, before anything is written."""

    args: RunArgs
    agent: Agent
    config: Any  # unstacked config (the sweep's first point)
    run_configs: list  # one config per run (grid point x seed)
    overrides: list[dict]  # sweep point of each run
    backend: str
    venv: Any = None
    env_params: Any = None

    @property
    def num_runs(self) -> int:
        return len(self.run_configs)

    @property
    def stacked_config(self) -> Any | None:
        """Configs with a leading run axis when sweeping, else None (config shared by all runs)."""
        if all(not o for o in self.overrides):
            return None
        return stack_configs(self.run_configs)

    def config_for_policy(self) -> Any:
        return self.config

    def policy_params_template(self) -> Any:
        agent, config = self.agent, self.config

        def one(key):
            return agent.policy_params(agent.init(config, key))

        keys = jax.random.split(jax.random.PRNGKey(0), self.num_runs)
        return jax.eval_shape(jax.vmap(one), keys)


def build(args: RunArgs, config: Any) -> BuiltRun:
    """Validate args and config and build the agent and env; raises RLKitError on bad input."""
    import envs

    agent_cls = get_agent(args.agent)
    if not isinstance(config, agent_cls.Config):
        raise RLKitError(f"config: expected a {agent_cls.Config.__name__} for agent {args.agent!r}")
    if args.num_seeds < 1:
        raise RLKitError(f"--num-seeds: expected an integer >= 1, got {args.num_seeds}")
    for name in ("log_every", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise RLKitError(f"--{name.replace('_', '-')}: expected an integer >= 1")
    if args.eval_episodes < 0:
        raise RLKitError("--eval-episodes: expected an integer >= 0")
    if args.eval_every is not None and args.eval_every < 0:
        raise RLKitError("--eval-every: expected an integer >= 0 (0: no evaluations during training)")
    if args.eval_every_episodes < 1:
        raise RLKitError("--eval-every-episodes: expected an integer >= 1")
    for name in ("total_timesteps", "num_envs", "rollout_length"):
        if getattr(config, name) < 1:
            raise RLKitError(f"--{name.replace('_', '-')}: expected an integer >= 1")

    jax_env = args.env in envs.registered()
    backend = args.backend
    if backend == "auto":
        backend = "jax" if jax_env else "gymnasium"
    if backend == "jax" and not jax_env:
        raise envs.core._unknown(args.env)
    if backend == "gymnasium" and not _gymnasium_has(args.env):
        if jax_env:
            raise RLKitError(f"--env: {args.env!r} is not a Gymnasium id; use --backend jax")
        raise envs.core._unknown(args.env)
    overrides = parse_sweep(args.sweep, type(config))
    if backend == "gymnasium" and (args.num_seeds > 1 or len(overrides) > 1):
        raise RLKitError("--num-seeds/--sweep: the host (Gymnasium) backend trains one run at a time")

    if backend == "jax":
        venv, env_params = envs.wrappers.make_vec(args.env, config.num_envs)
        obs_space, act_space = venv.observation_space(env_params), venv.action_space(env_params)
    else:
        from envs.gymnasium import HostVecEnv, spaces_from_gymnasium
        import gymnasium

        probe = gymnasium.make(args.env)
        obs_space = spaces_from_gymnasium(probe.observation_space)
        act_space = spaces_from_gymnasium(probe.action_space)
        probe.close()
        venv, env_params = None, None
    agent = agent_cls(obs_space, act_space)
    run_configs = [config.replace(**o) for o in overrides for _ in range(args.num_seeds)]
    run_overrides = [o for o in overrides for _ in range(args.num_seeds)]
    return BuiltRun(args, agent, config, run_configs, run_overrides, backend, venv, env_params)


def build_from_run_config(cfg: dict) -> BuiltRun:
    """Rebuild a run from its ``config.json``."""
    try:
        agent_cls = get_agent(cfg["agent"])
        config = config_from_dict(agent_cls.Config, cfg["config"])
        run = cfg["run"]
        args = RunArgs(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in run.items()})
    except KeyError as e:
        raise RLKitError(f"config.json: missing field {e}") from None
    return build(args, config)


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------


class RunLogger:
    """metrics.csv (one row per run per log interval) and TensorBoard scalars."""

    def __init__(self, run_dir: str, num_runs: int, resume: bool):
        from tensorboardX import SummaryWriter

        self.path = os.path.join(run_dir, "metrics.csv")
        self.num_runs = num_runs
        self.fieldnames: list[str] | None = None
        self._rows_kept: list[dict] = []
        if resume and os.path.exists(self.path):
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.fieldnames = reader.fieldnames
                self._rows_kept = list(reader)
        self.writer = SummaryWriter(run_dir)

    def truncate_after(self, env_steps: int) -> None:
        """On resume, drop rows logged after the checkpoint we resume from, then rewrite the file."""
        rows = [r for r in self._rows_kept if int(float(r["env_steps"])) <= env_steps]
        if self.fieldnames:
            self._write_all(rows)

    def _write_all(self, rows: list[dict]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fieldnames)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)

    def log(self, env_steps: int, wall_time: float, sps: float, per_run: list[dict]) -> None:
        rows = []
        for r, m in enumerate(per_run):
            row = {"env_steps": env_steps, "run": r, "wall_time": f"{wall_time:.3f}", "sps": f"{sps:.1f}"}
            row.update({k: ("" if v is None or not np.isfinite(v) else f"{v:.6g}") for k, v in m.items()})
            rows.append(row)
        if self.fieldnames is None:
            self.fieldnames = list(rows[0].keys())
            with open(self.path, "w", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fieldnames).writeheader()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fieldnames, extrasaction="ignore")
            w.writerows(rows)
            f.flush()
        keys = per_run[0].keys()
        for k in keys:
            vals = [m[k] for m in per_run if m[k] is not None and np.isfinite(m[k])]
            if vals:
                self.writer.add_scalar(f"train/{k}", float(np.mean(vals)), env_steps)
            if self.num_runs > 1 and k == "episode_return":
                for r, m in enumerate(per_run):
                    if m[k] is not None and np.isfinite(m[k]):
                        self.writer.add_scalar(f"run{r}/{k}", m[k], env_steps)
        self.writer.add_scalar("train/sps", sps, env_steps)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def summarise_chunk(metrics: dict, num_runs: int) -> list[dict]:
    """Per-run summaries of a chunk's stacked metrics (leading axes [runs, iterations])."""
    m = jax.device_get(metrics)
    out = []
    for r in range(num_runs):
        count = float(np.sum(m["episode_count"][r]))
        row: dict[str, float | None] = {
            "seed": None,
            "episode_return": float(np.sum(m["episode_return_sum"][r]) / count) if count else None,
            "episode_length": float(np.sum(m["episode_length_sum"][r]) / count) if count else None,
            "episodes": count,
        }
        for k, v in m.items():
            if k in ("episode_return_sum", "episode_length_sum", "episode_count", "env_steps"):
                continue
            row[k] = float(np.mean(v[r]))
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------------
# The training job
# --------------------------------------------------------------------------------------------------


def _chunk_iterations(num_updates: int, target: int) -> int:
    """Updates per jitted chunk: ``target``, or a divisor of ``num_updates`` near it (one compile)."""
    target = max(1, min(target, num_updates))
    for d in range(target, max(1, target // 2) - 1, -1):
        if num_updates % d == 0:
            return d
    return target


def _default_out(args: RunArgs) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{args.agent}-{args.env.replace('/', '_')}-{stamp}")


def _run_config_payload(built: BuiltRun, out: str) -> dict:
    run = dataclasses.asdict(built.args)
    run["out"] = out
    run["resume"] = None
    return {
        "format": 1,
        "agent": built.args.agent,
        "env": built.args.env,
        "backend": built.backend,
        "num_runs": built.num_runs,
        "num_seeds": built.args.num_seeds,
        "sweep_points": [o for o in built.overrides[:: built.args.num_seeds]],
        "run": run,
        "config": config_to_dict(built.config),
    }


class _Progress:
    def __init__(self, total: int, initial: int, quiet: bool):
        self.bar = None
        if not quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True,
                file=sys.stderr, desc="train",
            )

    def update(self, n: int, **postfix) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: v for k, v in postfix.items() if v is not None}, refresh=False)
            self.bar.update(n)

    def write(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _say(args: RunArgs, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr, flush=True)


def train(args: RunArgs, config: Any) -> dict:
    """Run a whole training job. Returns a summary dict (also written to ``DIR/summary.json``)."""
    t_start = time.perf_counter()
    built = build(args, config)  # validates everything before any file is written
    out = args.resume or args.out or _default_out(args)
    payload = _run_config_payload(built, out)
    if args.resume:
        saved = read_run_config(args.resume)
        if not has_checkpoint(args.resume):
            raise RLKitError(f"--resume: run dir {args.resume!r} holds no checkpoint")
        diffs = _config_diffs(saved, payload)
        if diffs:
            raise RLKitError(
                "--resume: this config differs from the run's config.json in " + ", ".join(diffs)
            )
    else:
        if os.path.exists(os.path.join(out, "config.json")):
            raise RLKitError(f"--out: {out!r} already holds a run (use --resume {out} to continue)")
    os.makedirs(out, exist_ok=True)
    write_run_config(out, payload)
    if built.backend == "jax":
        summary = _train_compiled(built, out, t_start)
    else:
        summary = _train_host(built, out, t_start)
    summary["run_dir"] = out
    if args.eval_episodes > 0:
        summary["eval"] = _final_eval(built, out)
    summary["wall_time_s"] = time.perf_counter() - t_start
    from agents.checkpoint import atomic_write_text

    atomic_write_text(os.path.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    if not args.quiet:
        _print_summary(summary)
    return summary


def _config_diffs(saved: dict, new: dict) -> list[str]:
    diffs = []
    for key in ("agent", "env", "backend", "num_runs", "sweep_points"):
        if saved.get(key) != new.get(key):
            diffs.append(f"{key} ({saved.get(key)!r} != {new.get(key)!r})")
    for k in sorted(set(saved.get("config", {})) | set(new["config"])):
        if saved.get("config", {}).get(k) != new["config"].get(k):
            diffs.append(f"{k} ({saved['config'].get(k)!r} != {new['config'].get(k)!r})")
    if saved.get("run", {}).get("seed") != new["run"]["seed"]:
        diffs.append("seed")
    return diffs


def _eval_every(args: RunArgs, config: Any) -> int:
    """``--eval-every``, or by default about 20 evaluations per run (at most one per 5,000 steps)."""
    if args.eval_every is not None:
        return args.eval_every
    return max(5_000, int(config.total_timesteps) // 20)


class _BestTracker:
    """Greedy evaluations during training (JAX env) and, per run, the best policy found so far.

    Every ``--eval-every`` env steps each run's greedy policy plays ``--eval-every-episodes``
    episodes of the run's env (one compiled, vmapped program; keys derived from the env step, so a
    resumed run evaluates exactly as an uninterrupted one). A run's best policy is replaced when an
    evaluation scores at least as high as its best so far (the later of equal scores is kept). It is
    written to ``best_policy.msgpack`` with ``best_policy.json`` at every checkpoint.
    """

    def __init__(self, built: BuiltRun, every: int):
        from agents.evaluation import _jax_program

        agent, config = built.agent, built.config_for_policy()
        self.built = built
        self.episodes = built.args.eval_every_episodes
        self.every = every
        self._program = _jax_program.__wrapped__(
            lambda p, obs, key, det: agent.policy(config, p, obs, key, det), built.args.env, True
        )
        self.best_return = np.full(built.num_runs, -np.inf)
        self.best_step = np.full(built.num_runs, -1, np.int64)
        self.best_params = None

    def restore(self, out: str) -> None:
        from agents.checkpoint import BEST_POLICY_FILE, load_policy_params, read_best_meta

        meta = read_best_meta(out)
        if meta is None:
            return
        self.best_return = np.asarray(meta["eval_return"], np.float64)
        self.best_step = np.asarray(meta["env_steps"], np.int64)
        self.best_params = load_policy_params(
            out, self.built.policy_params_template(), BEST_POLICY_FILE
        )

    def due(self, prev_steps: int, env_steps: int, last: bool) -> bool:
        return self.every > 0 and (env_steps // self.every > prev_steps // self.every or last)

    def evaluate(self, rs, env_steps: int) -> np.ndarray:
        """Mean greedy return of each run's current policy; updates the best policies."""
        params = jax.device_get(jax.vmap(self.built.agent.policy_params)(rs.agent_state))
        key = jax.random.fold_in(jax.random.PRNGKey(self.built.args.seed + 20_000), env_steps)
        env_params = self.built.env_params
        ret = np.asarray(self._program(params, key, env_params, self.episodes)[0]).mean(axis=1)
        better = ret >= self.best_return
        if self.best_params is None:
            self.best_params = params
        else:
            self.best_params = jax.tree.map(
                lambda new, old: np.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
                params, self.best_params,
            )
        self.best_return = np.where(better, ret, self.best_return)
        self.best_step = np.where(better, env_steps, self.best_step)
        return ret

    def save(self, out: str) -> None:
        from agents.checkpoint import BEST_META, BEST_POLICY_FILE, atomic_write_text

        if self.best_params is None:
            return
        save_policy_params(out, self.best_params, BEST_POLICY_FILE)
        meta = {"eval_return": self.best_return.tolist(), "env_steps": self.best_step.tolist(),
                "episodes_per_evaluation": self.episodes}
        atomic_write_text(os.path.join(out, BEST_META), json.dumps(meta, indent=2) + "\n")


def _train_compiled(built: BuiltRun, out: str, t_start: float) -> dict:
    args, agent, config = built.args, built.agent, built.config
    venv, env_params = built.venv, built.env_params
    R = built.num_runs
    steps_per_update = config.steps_per_update
    num_updates = config.num_updates
    eval_every = _eval_every(args, config)
    every = min(args.log_every, eval_every) if eval_every > 0 else args.log_every
    per_chunk = _chunk_iterations(num_updates, max(1, every // steps_per_update))
    stacked = built.stacked_config
    cfg_axis = None if stacked is None else 0
    cfg_arg = config if stacked is None else stacked

    # vmap over the runs; with several local devices (one per CPU core, see
    # runner.cpu_devices_flag) each device takes an equal share of them.
    def init_all(cfg, keys):
        return runner_lib.vmap_runs(
            lambda c, k: runner_lib.init_runner(agent, venv, env_params, c, k),
            R, in_axes=(cfg_axis, 0),
        )(cfg, keys)

    def chunk_fn(n):
        chunk = runner_lib.make_train_chunk(agent, venv, env_params, n)
        return jax.jit(runner_lib.vmap_runs(chunk, R, in_axes=(cfg_axis, 0)), donate_argnums=1)

    keys = jax.random.split(jax.random.PRNGKey(args.seed), R)
    t0 = time.perf_counter()
    compiled_init, compiled = runner_lib.compile_init_and_chunk(
        init_all, (cfg_arg, keys), chunk_fn(per_chunk), lambda state: (cfg_arg, state), R
    )
    compile_s = time.perf_counter() - t0
    rs = compiled_init(cfg_arg, keys)
    done_updates = 0
    logger = RunLogger(out, R, resume=bool(args.resume))
    if args.resume:
        loaded, meta = load_checkpoint(out, rs)
        # Place the restored arrays as the fresh state is placed (split over devices or not).
        rs = jax.tree.map(lambda new, old: jax.device_put(new, old.sharding), loaded, rs)
        done_updates = int(meta["update_step"])
        logger.truncate_after(done_updates * steps_per_update)
        _say(args, f"resumed {out} at {done_updates * steps_per_update} env steps")
    tracker = _BestTracker(built, eval_every) if eval_every > 0 else None
    if tracker is not None and args.resume:
        tracker.restore(out)

    _say(args, f"[{args.agent} on {args.env}] {R} run(s), compiled in {compile_s:.2f} s "
         f"({per_chunk} updates x {steps_per_update} steps per chunk)")
    compiled_chunks = {per_chunk: compiled}

    total = num_updates * steps_per_update
    bar = _Progress(total, done_updates * steps_per_update, args.quiet)
    next_ckpt = (done_updates * steps_per_update // args.checkpoint_every + 1) * args.checkpoint_every
    t_train = time.perf_counter()
    steps_this_session = 0
    last_return = None
    while done_updates < num_updates:
        n = min(per_chunk, num_updates - done_updates)
        if n not in compiled_chunks:
            compiled_chunks[n] = chunk_fn(n).lower(cfg_arg, rs).compile()
        tc = time.perf_counter()
        rs, metrics = compiled_chunks[n](cfg_arg, rs)
        metrics = jax.device_get(metrics)
        done_updates += n
        env_steps = done_updates * steps_per_update
        steps_this_session += n * steps_per_update
        dt = time.perf_counter() - tc
        sps = n * steps_per_update * R / max(dt, 1e-9)
        per_run = summarise_chunk(metrics, R)
        for r, row in enumerate(per_run):
            row["seed"] = r % args.num_seeds
        if tracker is not None:
            evals = [None] * R
            if tracker.due(env_steps - n * steps_per_update, env_steps, done_updates >= num_updates):
                evals = tracker.evaluate(rs, env_steps).tolist()
            for row, value in zip(per_run, evals):
                row["eval_return"] = value
        logger.log(env_steps, time.perf_counter() - t_start, sps, per_run)
        rets = [row["episode_return"] for row in per_run if row["episode_return"] is not None]
        if rets:
            last_return = float(np.mean(rets))
        bar.update(n * steps_per_update, ret=None if last_return is None else f"{last_return:.1f}",
                   sps=f"{sps:,.0f}")
        if env_steps >= next_ckpt or done_updates >= num_updates:
            if tracker is not None:
                tracker.save(out)  # before the checkpoint: a resume never sees a stale best
            _checkpoint(built, out, rs, done_updates, env_steps)
            next_ckpt = (env_steps // args.checkpoint_every + 1) * args.checkpoint_every
    bar.close()
    logger.close()
    train_s = time.perf_counter() - t_train
    best = None
    if tracker is not None and tracker.best_params is not None:
        best = {"eval_return": tracker.best_return.tolist(), "env_steps": tracker.best_step.tolist()}
    return {
        "best_during_training": best,
        "agent": args.agent,
        "env": args.env,
        "runs": R,
        "env_steps_per_run": num_updates * steps_per_update,
        "compile_s": compile_s,
        "train_s": train_s,
        "steps_per_s": steps_this_session * R / max(train_s, 1e-9),
        "final_train_return": last_return,
    }


def _checkpoint(built: BuiltRun, out: str, rs, done_updates: int, env_steps: int) -> None:
    state = rs
    agent = built.agent
    if not built.args.save_buffer and hasattr(agent, "strip_buffer"):
        state = rs._replace(agent_state=jax.vmap(agent.strip_buffer)(rs.agent_state))
    save_checkpoint(out, state, {"env_steps": env_steps, "update_step": done_updates})
    policy_params = jax.vmap(agent.policy_params)(rs.agent_state)
    save_policy_params(out, policy_params)


def _train_host(built: BuiltRun, out: str, t_start: float) -> dict:
    from envs.gymnasium import HostVecEnv

    args, agent, config = built.args, built.agent, built.config
    henv = HostVecEnv(args.env, config.num_envs)
    act_fn, update_fn = runner_lib.make_host_fns(agent, config)
    rs = runner_lib.host_init(agent, henv, config, jax.random.PRNGKey(args.seed), args.seed)
    logger = RunLogger(out, 1, resume=bool(args.resume))
    steps_per_update = config.steps_per_update
    if args.resume:
        stacked = jax.tree.map(lambda x: x[None], rs.agent_state)
        state, meta = load_checkpoint(out, {"agent_state": stacked, "key": rs.key[None]})
        rs = rs._replace(
            agent_state=jax.tree.map(lambda x: x[0], state["agent_state"]),
            key=state["key"][0], update_step=int(meta["update_step"]),
        )
        logger.truncate_after(rs.update_step * steps_per_update)
        _say(args, f"resumed {out} at {rs.update_step * steps_per_update} env steps "
             "(host envs restart from a reset)")
    num_updates = config.num_updates
    per_log = max(1, args.log_every // steps_per_update)
    bar = _Progress(num_updates * steps_per_update, rs.update_step * steps_per_update, args.quiet)
    acc: list[dict] = []
    t_train = time.perf_counter()
    t_log = t_train
    start_updates = rs.update_step
    next_ckpt = (rs.update_step * steps_per_update // args.checkpoint_every + 1) * args.checkpoint_every
    last_return = None
    while rs.update_step < num_updates:
        rs, metrics = runner_lib.host_train_iteration(agent, henv, config, rs, act_fn, update_fn)
        acc.append(jax.device_get(metrics))
        env_steps = rs.update_step * steps_per_update
        if len(acc) >= per_log or rs.update_step >= num_updates:
            stackedm = {k: np.asarray([a[k] for a in acc])[None] for k in acc[0]}
            dt = time.perf_counter() - t_log
            sps = len(acc) * steps_per_update / max(dt, 1e-9)
            per_run = summarise_chunk(stackedm, 1)
            per_run[0]["seed"] = 0
            logger.log(env_steps, time.perf_counter() - t_start, sps, per_run)
            if per_run[0]["episode_return"] is not None:
                last_return = per_run[0]["episode_return"]
            bar.update(len(acc) * steps_per_update,
                       ret=None if last_return is None else f"{last_return:.1f}", sps=f"{sps:,.0f}")
            acc, t_log = [], time.perf_counter()
        if env_steps >= next_ckpt or rs.update_step >= num_updates:
            state = {"agent_state": jax.tree.map(lambda x: jnp.asarray(x)[None], rs.agent_state),
                     "key": rs.key[None]}
            save_checkpoint(out, state, {"env_steps": env_steps, "update_step": rs.update_step})
            save_policy_params(out, jax.tree.map(lambda x: jnp.asarray(x)[None],
                                                 agent.policy_params(rs.agent_state)))
            next_ckpt = (env_steps // args.checkpoint_every + 1) * args.checkpoint_every
    bar.close()
    logger.close()
    henv.close()
    train_s = time.perf_counter() - t_train
    return {
        "agent": args.agent,
        "env": args.env,
        "runs": 1,
        "env_steps_per_run": num_updates * steps_per_update,
        "compile_s": None,
        "train_s": train_s,
        "steps_per_s": (rs.update_step - start_updates) * steps_per_update / max(train_s, 1e-9),
        "final_train_return": last_return,
    }


def _final_eval(built: BuiltRun, out: str) -> dict | None:
    from agents.checkpoint import load_run_policy
    from agents.evaluation import evaluate

    args = built.args
    if not _gymnasium_has(args.env):
        _say(args, f"skipping final evaluation: {args.env!r} is not a Gymnasium id")
        return None
    from agents.checkpoint import resolve_policy_choice

    which = resolve_policy_choice(out, args.final_policy)
    policy = load_run_policy(out, which)
    t0 = time.perf_counter()
    result = evaluate(policy, args.env, episodes=args.eval_episodes, backend="gymnasium",
                      seed=args.seed + 10_000)
    summary = result.summary()
    summary["policy"] = which
    summary["eval_s"] = time.perf_counter() - t0
    return summary


def _print_summary(summary: dict) -> None:
    print(f"run dir: {summary['run_dir']}")
    print(
        f"trained {summary['runs']} run(s) x {summary['env_steps_per_run']:,} env steps in "
        f"{summary['train_s']:.1f} s ({summary['steps_per_s']:,.0f} steps/s"
        + (f", compile {summary['compile_s']:.1f} s)" if summary.get("compile_s") else ")")
    )
    best = summary.get("best_during_training")
    if best:
        print("best greedy evaluation during training, per run: " + ", ".join(
            f"{r:.1f} at {s:,} steps" for r, s in zip(best["eval_return"], best["env_steps"])))
    ev = summary.get("eval")
    if ev:
        print(_format_eval(ev))
    print(f"total wall time {summary['wall_time_s']:.1f} s")


def _format_eval(ev: dict) -> str:
    thr = ev.get("reward_threshold")
    lines = [
        f"evaluation on Gymnasium {ev.get('env_id')} ({ev.get('episodes_per_seed')} episodes x "
        f"{ev.get('num_seeds')} seed(s), greedy, {ev.get('policy', 'last')} policy): "
        f"mean {ev['mean']:.2f} +- {ev['std']:.2f}"
    ]
    if thr is not None:
        lines.append(
            f"  episodes at or above {thr:g}: {ev['fraction_at_threshold'] * 100:.0f}%"
        )
    per_seed = ev.get("per_seed_mean")
    if per_seed and len(per_seed) > 1:
        lines.append("  per seed: " + ", ".join(f"{m:.1f}" for m in per_seed))
    return "\n".join(lines)
