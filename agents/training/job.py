"""The training job behind ``scripts/train.py``: one loop for every agent and every backend.

``train(args, config)`` validates everything (``agents.runs.spec.build``) before it writes a
file, then, holding the run directory's lock, drives a ``Backend`` in chunks of updates. Between
chunks it checks the metrics for divergence, logs ``metrics.csv`` and TensorBoard, updates the
progress bar, evaluates the greedy policies every ``--eval-every`` env steps (keeping each run's
best), and checkpoints every ``--checkpoint-every``. Chunk sizes divide the number of updates, so
the compiled program is built once, and a resumed run replays exactly the same chunks: it ends
bit for bit where an uninterrupted run ends, on either backend. At the end it evaluates the chosen
policy on Gymnasium's own env and writes ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import numpy as np

from agents.base import config_to_dict
from agents.evaluation import evaluate
from agents.policy import load_policy, resolve_policy_choice
from agents.runs import files
from agents.runs.spec import (
    BuiltRun,
    RunArgs,
    build,
    config_diffs,
    default_out,
    run_config_payload,
)
from agents.runtime.devices import RunMesh, is_writer
from agents.training.backends import Backend
from agents.training.best import BestTracker, finite_runs
from agents.training.pipeline import make_backend
from agents.training.report import Progress, TensorBoard, print_summary, say, summarise_chunk
from envs.core import is_suite_id
from envs.host import is_gymnasium_id
from rlkit.errors import RLKitError

__all__ = ["Divergence", "chunk_updates", "eval_every", "train"]

#: A run whose loss grew this many times over its first logged value is reported in the logs.
LOSS_GROWTH_WARNING = 1e3


class Divergence(RLKitError):
    """A non-finite metric or parameter stopped training (the last good checkpoint is kept)."""


def chunk_updates(num_updates: int, target: int) -> int:
    """Updates per chunk: ``target``, or a divisor of ``num_updates`` near it (one compile)."""
    target = max(1, min(target, num_updates))
    for d in range(target, max(1, target // 2) - 1, -1):
        if num_updates % d == 0:
            return d
    return target


def eval_every(args: RunArgs, config: Any) -> int:
    """``--eval-every``, or by default about 20 evaluations per run (at most one per 5,000 steps)."""
    if args.eval_every is not None:
        return args.eval_every
    return max(5_000, int(config.total_timesteps) // 20)


def _prepare_out(args: RunArgs, built: BuiltRun) -> tuple[str, dict]:
    out = args.resume or args.out or default_out(args)
    payload = run_config_payload(built, out)
    if args.resume:
        saved = files.read_run_config(args.resume)
        if not files.has_checkpoint(args.resume):
            raise RLKitError(
                f"--resume: run dir {args.resume!r} holds no checkpoint (it stopped before its "
                f"first one); start it again with --out {args.resume}"
            )
        diffs = config_diffs(saved, payload, config_to_dict(type(built.config)()))
        if diffs:
            raise RLKitError(
                "--resume: this config differs from the run's config.json in " + ", ".join(diffs)
            )
    elif os.path.lexists(out):
        if not os.path.isdir(out):
            raise RLKitError(f"--out: {out!r} exists and is not a directory")
        if files.has_checkpoint(out):
            raise RLKitError(f"--out: {out!r} already holds a run (use --resume {out} to continue)")
        if os.listdir(out) and not os.path.exists(os.path.join(out, files.CONFIG_FILE)):
            raise RLKitError(f"--out: {out!r} is a non-empty directory that is not a run directory")
    return out, payload


def _check_divergence(
    metrics: dict, done_updates: int, n: int, steps_per_update: int, last_good: int
) -> None:
    for k, v in metrics.items():
        a = np.asarray(v)
        if a.dtype.kind != "f" or np.all(np.isfinite(a)):
            continue
        run, i = np.argwhere(~np.isfinite(a.reshape(a.shape[0], -1)))[0]
        update = done_updates - n + int(i) + 1
        raise Divergence(
            f"run {int(run)}: {k} became {a.reshape(a.shape[0], -1)[run, i]} at update {update} "
            f"(env step {update * steps_per_update}); training stopped, {_kept(last_good)}. "
            "Lower --learning-rate or --max-grad-norm?"
        )


def _kept(last_good: int) -> str:
    if last_good:
        return f"the last good checkpoint ({last_good} env steps) is kept"
    return "no checkpoint had been written (start again with the same --out)"


def _loop(built: BuiltRun, backend: Backend, out: str, t_start: float) -> dict:
    args, config = built.args, built.config
    R = built.num_runs
    steps_per_update = config.steps_per_update
    num_updates = config.num_updates
    every_eval = eval_every(args, config)
    per_chunk = backend.updates_per_chunk

    writer = is_writer()  # with several processes, process 0 alone writes the run directory
    metrics_out = files.MetricsWriter(out, resume=bool(args.resume)) if writer else _NoFiles()
    tb = TensorBoard(out, R) if writer else _NoFiles()
    done_updates = 0
    first_loss = [None] * R  # each run's first logged non-zero |loss|, for loss_growth
    if args.resume:
        meta = backend.restore(out)
        done_updates = int(meta["update_step"])
        first_loss = list(meta.get("first_loss") or first_loss)
        metrics_out.truncate_after(done_updates * steps_per_update)
        say(args.quiet, f"resumed {out} at {done_updates * steps_per_update} env steps")
    tracker = None
    if every_eval > 0:
        tracker = BestTracker(built, every_eval, backend.eval_backend, backend.policy_params())
        if args.resume:
            tracker.restore(out)
    compiled = f", compiled in {backend.compile_s:.2f} s" if backend.compile_s else ""
    say(
        args.quiet,
        f"[{args.agent} on {args.env}, {built.backend} backend] {R} run(s){compiled} "
        f"({per_chunk} updates x {steps_per_update} steps per chunk)",
    )

    bar = Progress(num_updates * steps_per_update, done_updates * steps_per_update, args.quiet)
    next_ckpt = (
        done_updates * steps_per_update // args.checkpoint_every + 1
    ) * args.checkpoint_every
    last_good = done_updates * steps_per_update
    t_train = time.perf_counter()
    steps_this_session = 0
    last_return = None
    warned = [False] * R
    try:
        while done_updates < num_updates:
            n = min(per_chunk, num_updates - done_updates)
            tc = time.perf_counter()
            metrics = backend.run(n)
            dt = time.perf_counter() - tc
            done_updates += n
            env_steps = done_updates * steps_per_update
            _check_divergence(metrics, done_updates, n, steps_per_update, last_good)
            steps_this_session += n * steps_per_update
            sps = n * steps_per_update * R / max(dt, 1e-9)
            per_run = summarise_chunk(metrics, R)
            for r, row in enumerate(per_run):
                row["seed"] = r % args.num_seeds
                if "loss" not in row:
                    continue
                loss = row["loss"]
                if loss != 0.0:  # 0 until learning starts (masked updates)
                    first_loss[r] = first_loss[r] or abs(loss)
                growth = abs(loss) / first_loss[r] if first_loss[r] else None
                row["loss_growth"] = growth  # logged: |loss| over its first logged value
                if growth is not None and growth > LOSS_GROWTH_WARNING and not warned[r]:
                    warned[r] = True
                    message = (
                        f"warning: run {r}'s loss grew from {first_loss[r]:.3g} to "
                        f"{loss:.3g} by env step {env_steps} (diverging?)"
                    )
                    bar.write(message)
            if tracker is not None:
                evals = [None] * R
                if tracker.due(
                    env_steps - n * steps_per_update, env_steps, done_updates >= num_updates
                ):
                    evals = tracker.evaluate(backend.policy_params(), env_steps).tolist()
                for row, value in zip(per_run, evals):
                    row["eval_return"] = value
            rows = [
                {
                    "env_steps": env_steps,
                    "run": r,
                    "wall_time": f"{time.perf_counter() - t_start:.3f}",
                    "sps": f"{sps:.1f}",
                    **row,
                }
                for r, row in enumerate(per_run)
            ]
            metrics_out.write(rows)
            tb.log(env_steps, sps, per_run)
            rets = [row["episode_return"] for row in per_run if row["episode_return"] is not None]
            if rets:
                last_return = float(np.mean(rets))
            bar.update(
                n * steps_per_update,
                ret=None if last_return is None else f"{last_return:.1f}",
                sps=f"{sps:,.0f}",
            )
            if env_steps >= next_ckpt or done_updates >= num_updates:
                params = backend.policy_params()
                bad = np.flatnonzero(~finite_runs(params))
                if bad.size:
                    raise Divergence(
                        f"run {int(bad[0])}: a policy parameter became non-finite by env step "
                        f"{env_steps}; training stopped, {_kept(last_good)}"
                    )
                if tracker is not None and writer:
                    tracker.save(out)  # before the checkpoint: a resume never sees a stale best
                backend.save(  # every process takes part (it gathers the state); 0 writes
                    out,
                    {"env_steps": env_steps, "update_step": done_updates, "first_loss": first_loss},
                )
                if writer:
                    files.save_policy_params(out, params)
                last_good = env_steps
                next_ckpt = (env_steps // args.checkpoint_every + 1) * args.checkpoint_every
    finally:
        bar.close()
        tb.close()
    train_s = time.perf_counter() - t_train
    best = None
    if tracker is not None and tracker.has_best:
        best = {
            "eval_return": tracker.best_return.tolist(),
            "env_steps": tracker.best_step.tolist(),
        }
    return {
        "best_during_training": best,
        "agent": args.agent,
        "env": args.env,
        "backend": built.backend,
        "runs": R,
        "env_steps_per_run": num_updates * steps_per_update,
        "compile_s": backend.compile_s,
        "train_s": train_s,
        "steps_per_s": steps_this_session * R / max(train_s, 1e-9),
        "final_train_return": last_return,
    }


def _run_backend(built: BuiltRun, out: str, t_start: float) -> dict:
    """Build the backend, run the training loop, close the backend; the loop's summary."""
    args, config = built.args, built.config
    every_eval = eval_every(args, config)
    every = min(args.log_every, every_eval) if every_eval > 0 else args.log_every
    per_chunk = chunk_updates(config.num_updates, max(1, every // config.steps_per_update))
    backend = make_backend(built, per_chunk)
    try:
        backend.start()
        summary = _loop(built, backend, out, t_start)
    finally:
        backend.close()
    summary["run_dir"] = out
    return summary


def _final_eval(built: BuiltRun, out: str) -> dict | None:
    args = built.args
    if is_gymnasium_id(args.env):
        backend = "gymnasium"
    elif is_suite_id(args.env):
        backend = "jax"  # another JAX suite's env (gymnax, Brax): the adapter runs that env itself
    else:
        say(args.quiet, f"skipping final evaluation: {args.env!r} is not a Gymnasium id")
        return None
    which = resolve_policy_choice(out, args.final_policy)
    policy, _ = load_policy(out, which=which)
    t0 = time.perf_counter()
    result = evaluate(
        policy, args.env, episodes=args.eval_episodes, backend=backend, seed=args.seed + 10_000
    )
    summary = result.summary()
    summary["policy"] = which
    summary["eval_s"] = time.perf_counter() - t0
    return summary


class _NoFiles:
    """What a process other than 0 has instead of the log writers: nothing is written."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def train(args: RunArgs, config: Any) -> dict:
    """Run a whole training job. Returns a summary dict (also written to ``DIR/summary.json``).

    With several processes (``agents.training.distributed``) every process calls it with the
    same arguments; process 0 writes the run directory, prints and evaluates at the end.
    """
    t_start = time.perf_counter()
    if jax.process_count() > 1:
        if not (args.out or args.resume):
            raise RLKitError(
                "--out: a job of several processes needs the run directory named (--out DIR "
                "on a filesystem every process sees)"
            )
        if not is_writer():
            args = dataclasses.replace(args, quiet=True)
    built = build(args, config)  # validates everything before any file is written
    if built.backend == "jax":
        RunMesh(built.num_runs, built.mesh_shape)  # --mesh against the devices there are
    if not is_writer():  # the same loop over this process's shards, writing nothing
        summary = _run_backend(built, args.resume or args.out, t_start)
        summary["wall_time_s"] = time.perf_counter() - t_start
        return summary
    out, payload = _prepare_out(args, built)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise RLKitError(f"--out: cannot create {out!r} ({e.strerror or e})") from None
    with files.lock(out):
        files.clean_stale(out)
        if not args.resume:
            files.write_run_config(out, payload)
        summary = _run_backend(built, out, t_start)
        if args.eval_episodes > 0:
            summary["eval"] = _final_eval(built, out)
        summary["wall_time_s"] = time.perf_counter() - t_start
        files.write_json(os.path.join(out, files.SUMMARY_FILE), summary)
    if not args.quiet:
        print_summary(summary)
    return summary
