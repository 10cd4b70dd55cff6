"""Evaluate trained runs: a results table, eval.json / eval.csv, learning curves and videos.

    python scripts/evaluate.py runs/ppo-CartPole-v1-20261127-010203
    python scripts/evaluate.py runs/a runs/b --episodes 1000 --backend both --plot curves.png
    python scripts/evaluate.py runs/a --env CartPole-v1 --backend gymnasium --video videos/
    python scripts/evaluate.py runs/a runs/b --no-eval --plot curves.png   # learning curves only

Every seed of each run is evaluated for --episodes complete episodes (see ``agents.evaluation``).
The table has one row per run and backend: mean return and its 95% CI, IQM (interquartile mean)
and its 95% CI (stratified bootstrap over seeds and episodes, 2000 resamples) and the fraction of
episodes at or above the env's reward threshold. ``--backend both`` runs rlkit's JAX env and
Gymnasium's env and tests whether the two return distributions agree (a disagreement points at an
env bug). eval.json also holds CIs that resample the seeds too (``*_ci95_over_seeds``).

Output files go to --out: by default the run directory itself when one run is given (next to the
run's summary.json, which this never touches), else the current directory. eval.json holds every
episode's return and length; eval.csv one summary row per run and backend.

Bad input (missing run directory, checkpoint for another observation/action space, unknown env
id, a policy whose actions fall outside the action space) prints one line on stderr and exits with
status 2 (--debug adds the traceback). The work is done by ``agents.evaluation``; this script
parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import agents  # noqa: E402
from agents.evaluation import compare_distributions, evaluate  # noqa: E402
from agents.evaluation.plots import plot_learning_curves  # noqa: E402
from agents.evaluation.report import (  # noqa: E402
    format_agreements,
    format_table,
    summary_rows,
    write_outputs,
)
from agents.evaluation.video import VIDEO_EPISODES, record_video  # noqa: E402
from agents.runs.files import read_run_config  # noqa: E402
from envs.host import reward_threshold, rlkit_id  # noqa: E402
from rlkit.errors import RLKitError  # noqa: E402
from scripts import cli  # noqa: E402

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Evaluate trained rlkit runs (every seed), plot learning curves, record "
        "videos.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="training run directories")
    p.add_argument("--env", default=None, help="env id to evaluate on (default: each run's env)")
    p.add_argument(
        "--episodes", type=int, default=100, help="complete episodes per seed (default: 100)"
    )
    p.add_argument(
        "--backend",
        choices=["auto", "jax", "gymnasium", "both"],
        default="auto",
        help="jax: rlkit's env, one compiled program; gymnasium: Gymnasium's env on the host; "
        "both: run both and test that they agree; auto: jax when rlkit has the env, else gymnasium",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="evaluation seed: start states, action sampling, bootstrap (default: 0)",
    )
    p.add_argument(
        "--num-envs",
        type=int,
        default=None,
        help="Gymnasium backend: sub-envs per seed (default: 16)",
    )
    p.add_argument(
        "--max-episode-steps", type=int, default=None, help="override the env's time limit"
    )
    p.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of greedy/mean actions"
    )
    p.add_argument(
        "--out",
        default=None,
        help="directory for eval.json and eval.csv (default: the run dir when one run is given, "
        "else the current directory)",
    )
    p.add_argument(
        "--plot",
        default=None,
        metavar="FILE.png",
        help="draw learning curves from each RUN_DIR/metrics.csv (mean over seeds, 95%% CI band)",
    )
    p.add_argument(
        "--video",
        default=None,
        metavar="DIR",
        help=f"record {VIDEO_EPISODES} episodes per run (seed 0) into DIR: mp4 with moviepy, "
        "else animated GIF",
    )
    p.add_argument(
        "--smooth",
        type=int,
        default=0,
        help="--plot: moving-average window in log points (0: auto, about 1/25 of the curve; "
        "1: none)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip evaluation (plot / video only)")
    p.add_argument(
        "--policy", choices=("best", "last"), default=None,
        help="which saved policy of each run: the best one found by the greedy evaluations during "
        "training, or the last one (default: the run's --final-policy, best unless set otherwise)",
    )
    return p


# --------------------------------------------------------------------------------------------------
# Loading and evaluating
# --------------------------------------------------------------------------------------------------


def load_policy(run_dir: str, which: str | None = None):
    """``agents.load_policy`` for every seed of a run (a seam the tests can replace).

    ``which``: ``--policy`` (best, last, or None for the run's own ``--final-policy``)."""
    return agents.load_policy(run_dir, which=which)


def _check_run_dirs(run_dirs: list[str]) -> None:
    for d in run_dirs:
        if not os.path.isdir(d):
            raise RLKitError(f"RUN_DIR: run directory {d!r} does not exist")


def _backends(requested: str, env_id: str) -> list[str]:
    has_jax = rlkit_id(env_id) is not None
    if requested == "auto":
        return ["jax" if has_jax else "gymnasium"]
    if requested in ("jax", "both") and not has_jax:
        raise RLKitError(
            f"--backend {requested}: rlkit has no JAX env {env_id!r}; use --backend gymnasium"
        )
    return ["jax", "gymnasium"] if requested == "both" else [requested]


def evaluate_run(run_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate every seed of one run on each requested backend."""
    policy, run_env = load_policy(run_dir, args.policy)
    env_id = args.env or run_env
    results = {}
    for backend in _backends(args.backend, env_id):
        results[backend] = evaluate(
            policy,
            env_id,
            episodes=args.episodes,
            backend=backend,
            deterministic=not args.stochastic,
            seed=args.seed,
            num_envs=args.num_envs,
            max_episode_steps=args.max_episode_steps,
        )
    agreement = None
    if len(results) == 2:
        agreement = compare_distributions(results["jax"], results["gymnasium"])
    return {
        "run_dir": run_dir,
        "env_id": env_id,
        "policy": policy,
        "results": results,
        "agreement": agreement,
    }


# --------------------------------------------------------------------------------------------------
# Table and files
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def _check_args(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise RLKitError(f"--episodes: expected an integer >= 1, got {args.episodes}")
    if args.num_envs is not None and args.num_envs < 1:
        raise RLKitError(f"--num-envs: expected an integer >= 1, got {args.num_envs}")
    if args.max_episode_steps is not None and args.max_episode_steps < 1:
        raise RLKitError(
            f"--max-episode-steps: expected an integer >= 1, got {args.max_episode_steps}"
        )
    if args.no_eval and not (args.plot or args.video):
        raise RLKitError("--no-eval: nothing to do without --plot or --video")
    if args.plot and not args.plot.lower().endswith((".png", ".pdf", ".svg")):
        raise RLKitError(f"--plot: expected a .png, .pdf or .svg file name, got {args.plot!r}")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    _check_args(args)
    _check_run_dirs(args.run_dirs)
    records = []
    if not args.no_eval:
        for d in args.run_dirs:
            records.append(evaluate_run(d, args))
        print(format_table(summary_rows(records)))
        for line in format_agreements(records):
            print(line)
        out = args.out or (args.run_dirs[0] if len(args.run_dirs) == 1 else os.getcwd())
        json_path, csv_path = write_outputs(out, records, argv)
        print(f"wrote {json_path} and {csv_path}")
    if args.plot:
        env_id = args.env or (
            records[0]["env_id"] if records else read_run_config(args.run_dirs[0]).get("env")
        )
        plot_learning_curves(
            args.run_dirs, args.plot, reward_threshold=reward_threshold(env_id), env_id=env_id,
            smooth=args.smooth,
        )
        print(f"wrote {args.plot}")
    if args.video:
        for i, d in enumerate(args.run_dirs):
            if records:
                policy, env_id = records[i]["policy"], records[i]["env_id"]
            else:
                policy, run_env = load_policy(d, args.policy)
                env_id = args.env or run_env
            name = os.path.basename(os.path.normpath(d)) or f"run{i}"
            paths, fmt = record_video(
                policy, env_id, args.video, seed=args.seed, deterministic=not args.stochastic,
                name_prefix=name, max_episode_steps=args.max_episode_steps,
            )
            note = "" if fmt == "mp4" else " (GIF: moviepy is not installed)"
            print(f"wrote {len(paths)} {fmt} video(s) of {name} to {args.video}{note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv, debug = cli.pop_debug(list(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    args = build_parser().parse_args(argv)
    return cli.run_cli(lambda: run(args, argv), debug)


if __name__ == "__main__":
    sys.exit(main())
