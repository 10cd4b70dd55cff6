"""The results pages of the documentation: learning curves and tables from real training runs.

    python scripts/make_results.py run            # train every missing run (one at a time)
    python scripts/make_results.py run --only dqn-CartPole-v1 --force
    python scripts/make_results.py render         # figures + docs/results/*.md from the data

``run`` trains each row of ``RUNS`` with ``scripts/train.py`` (the agent's preset for that env,
the seeds of its row), one run after another in a subprocess, into
``--runs-dir`` (default ``out/results-runs``), and copies the run's small files (metrics.csv,
summary.json, config.json) plus ``meta.json`` (the command, the machine, the date, the wall time
and the load average) into ``docs/results/data/<agent>-<env>/``. A run whose data is already
there is skipped unless ``--force`` is given.

``render`` needs no training: from ``docs/results/data`` it draws one learning-curve PNG per run
with ``agents.evaluation.plots.plot_learning_curves`` (mean over seeds, 95% bootstrap band) into
``docs/results/figures/`` and writes ``docs/results/index.md`` (the final-return table and the
speed table) and one page per agent, ``docs/results/<agent>.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

import agents
from agents.evaluation import EvalResult, evaluate
from agents.evaluation.plots import plot_learning_curves
from agents.runs.files import atomic_write_text, read_json, write_json
from envs.host import reward_threshold, rlkit_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results")
DATA = os.path.join(RESULTS, "data")
FIGURES = os.path.join(RESULTS, "figures")

#: (agent, env, seeds): every agent/env row of docs/benchmarks.md.
RUNS: list[tuple[str, str, int]] = [
    ("a2c", "CartPole-v1", 6),
    ("ppo", "CartPole-v1", 6),
    ("ppo", "Acrobot-v1", 6),
    ("ppo", "Pendulum-v1", 6),
    ("ppo", "MountainCarContinuous-v0", 6),
    ("dqn", "CartPole-v1", 8),
    ("dqn", "Acrobot-v1", 6),
    ("c51", "CartPole-v1", 5),
    ("dqn", "MountainCar-v0", 6),
    ("qrdqn", "CartPole-v1", 5),
    # The agents merged later, each on the env of its preset, 5 seeds.
    ("iqn", "CartPole-v1", 5),
    ("mdqn", "CartPole-v1", 5),
    ("rainbow", "CartPole-v1", 5),
    ("pqn", "CartPole-v1", 5),
    # The Q-learning family on Acrobot-v1 (issue 15), 5 seeds.
    ("c51", "Acrobot-v1", 5),
    ("qrdqn", "Acrobot-v1", 5),
    ("iqn", "Acrobot-v1", 5),
    ("mdqn", "Acrobot-v1", 5),
    ("rainbow", "Acrobot-v1", 5),
    ("pqn", "Acrobot-v1", 5),
    ("c51", "MountainCar-v0", 5),
    ("qrdqn", "MountainCar-v0", 5),
    ("iqn", "MountainCar-v0", 5),
    ("mdqn", "MountainCar-v0", 5),
    ("rainbow", "MountainCar-v0", 5),
    ("pqn", "MountainCar-v0", 5),
    ("impala", "CartPole-v1", 5),
    ("sac", "Pendulum-v1", 5),
    ("td3", "Pendulum-v1", 5),
    ("td3", "MountainCarContinuous-v0", 5),
    ("ddpg", "Pendulum-v1", 5),
    # Host envs (Gymnasium's Box2D), on the synchronous pipeline (the host loop's results bit for
    # bit, faster).
    ("dqn", "LunarLander-v3", 3),
    ("ppo", "LunarLander-v3", 5),
    ("impala", "LunarLander-v3", 5),
]
#: Extra train.py flags of some rows.
EXTRA_ARGS: dict[str, list[str]] = {
    "dqn-LunarLander-v3": ["--pipeline", "sync"],
    "ppo-LunarLander-v3": ["--pipeline", "sync"],
    "impala-LunarLander-v3": ["--pipeline", "sync"],
}
#: Logged points per run: --log-every is the preset's total_timesteps divided by this.
LOG_POINTS = 50
#: Resolution of the PNGs (about 80 kB each at 9 x 5.8 inches).
FIGURE_DPI = 90
#: Files of a run directory copied into the docs (all small).
COPIED = ("metrics.csv", "summary.json", "config.json")


def run_name(agent: str, env: str) -> str:
    return f"{agent}-{env}"


def machine() -> str:
    """One line describing this machine: CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()}, "
        f"Python {platform.python_version()}, CPU only"
    )


def preset_steps(agent: str, env: str) -> int:
    return int(agents.get_agent(agent).default_config(env).total_timesteps)


def _train(argv: list[str], name: str) -> float:
    """Run ``scripts/train.py argv`` in a subprocess; its wall time in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "scripts/train.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name}: train.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def _train_argv(agent: str, env: str, out: str) -> list[str]:
    log_every = max(1000, preset_steps(agent, env) // LOG_POINTS)
    return [
        "--agent",
        agent,
        "--env",
        env,
        "--log-every",
        str(log_every),
        "--out",
        out,
        "--quiet",
        *EXTRA_ARGS.get(run_name(agent, env), []),
    ]


def run_one(agent: str, env: str, seeds: int, runs_dir: str) -> dict:
    """Train one row of RUNS and copy its data into docs/results/data; returns its meta.json.

    On rlkit's own envs the seeds are one vmapped ``train.py --num-seeds`` program. On any other
    env (the host backend trains one run at a time) each seed is its own ``train.py --seed S``
    run with its final evaluation skipped; ``merge_host_runs`` then evaluates every seed's best
    policy on Gymnasium's env exactly as the final evaluation would and merges the runs into one
    run's files (``run`` and ``seed`` columns of metrics.csv = the seed).
    """
    name = run_name(agent, env)
    out = os.path.join(runs_dir, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    load_before = os.getloadavg()[0]
    if rlkit_id(env) is not None:
        argv = _train_argv(agent, env, out) + ["--num-seeds", str(seeds)]
        wall = _train(argv, name)
        command = "python scripts/train.py " + " ".join(a if a != out else "DIR" for a in argv)
        run_dirs = [out]
    else:
        run_dirs = [os.path.join(out, f"seed-{s}") for s in range(seeds)]
        wall = 0.0
        for s, d in enumerate(run_dirs):
            argv = _train_argv(agent, env, d) + ["--seed", str(s), "--eval-episodes", "0"]
            wall += _train(argv, name)
        command = (
            "python scripts/train.py "
            + " ".join(a if a != run_dirs[-1] else "DIR/seed-S" for a in argv).replace(
                f"--seed {seeds - 1}", "--seed S"
            )
            + f"  # for S in 0..{seeds - 1}"
        )
    meta = {
        "agent": agent,
        "env": env,
        "seeds": seeds,
        "command": command,
        "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "wall_s": round(wall, 1),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    dest = os.path.join(DATA, name)
    os.makedirs(dest, exist_ok=True)
    if len(run_dirs) == 1:
        for f in COPIED:
            shutil.copy(os.path.join(out, f), os.path.join(dest, f))
    else:
        merge_host_runs(run_dirs, dest)
    clean_paths(dest, out)
    write_json(os.path.join(dest, "meta.json"), meta)
    return meta


#: Episodes and seed of the final evaluation, as train.py's defaults make it.
FINAL_EVAL_EPISODES = 100
FINAL_EVAL_SEED = 10_000


def merge_host_runs(run_dirs: list[str], dest: str) -> None:
    """One run's metrics.csv, summary.json and config.json in ``dest`` from one run per seed.

    Every seed's best policy is evaluated for ``FINAL_EVAL_EPISODES`` greedy episodes on
    Gymnasium's env; the episodes of all seeds make one ``EvalResult``, so the CIs over seeds are
    those of a multi-seed run. Train times add up; the compile time is the mean over the runs.
    """
    results, summaries, rows, fields = [], [], [], None
    for s, d in enumerate(run_dirs):
        summaries.append(read_json(os.path.join(d, "summary.json")))
        policy, env_id = agents.load_policy(d, which="best")
        results.append(
            evaluate(
                policy,
                env_id,
                episodes=FINAL_EVAL_EPISODES,
                backend="gymnasium",
                seed=FINAL_EVAL_SEED + s,
            )
        )
        with open(os.path.join(d, "metrics.csv"), newline="") as f:
            reader = csv.DictReader(f)
            fields = fields or reader.fieldnames
            for row in reader:
                row["run"] = row["seed"] = str(s)
                rows.append(row)
    first = results[0]
    merged = EvalResult(
        returns=np.concatenate([r.returns for r in results]),
        lengths=np.concatenate([r.lengths for r in results]),
        env_id=first.env_id,
        backend=first.backend,
        reward_threshold=first.reward_threshold,
        seeds=tuple(range(len(results))),
        env_index=np.concatenate([r.env_index for r in results]),
        deterministic=first.deterministic,
        seed=first.seed,
    )
    train_s = sum(x["train_s"] for x in summaries)
    steps = sum(x["env_steps_per_run"] for x in summaries)
    best = [x.get("best_during_training") or {} for x in summaries]
    summary = {
        **summaries[0],
        "runs": len(run_dirs),
        "compile_s": float(np.mean([x["compile_s"] for x in summaries])),
        "train_s": train_s,
        "steps_per_s": steps / train_s,
        "final_train_return": float(np.mean([x["final_train_return"] for x in summaries])),
        "best_during_training": {
            k: [v for b in best for v in b.get(k, [])] for k in ("eval_return", "env_steps")
        },
        "eval": {**merged.summary(), "policy": "best"},
        "wall_time_s": sum(x["wall_time_s"] for x in summaries),
        "run_dir": os.path.dirname(run_dirs[0]),
    }
    write_json(os.path.join(dest, "summary.json"), summary)
    shutil.copy(os.path.join(run_dirs[0], "config.json"), os.path.join(dest, "config.json"))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: (int(r["env_steps"]), int(r["run"]))))
    atomic_write_text(os.path.join(dest, "metrics.csv"), buf.getvalue())


def clean_paths(dest: str, run_dir: str) -> None:
    """Replace the run directory's path by ``DIR`` in the copied JSON files (no machine paths)."""
    run_dir = os.path.abspath(run_dir)

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        if isinstance(x, str) and os.path.isabs(x) and x.startswith(run_dir):
            return "DIR" + x[len(run_dir) :]
        if isinstance(x, str) and os.path.abspath(x) == run_dir:
            return "DIR"
        return x

    for f in ("summary.json", "config.json"):
        path = os.path.join(dest, f)
        with open(path) as fh:
            data = clean(json.load(fh))
        write_json(path, data)


def cmd_run(args: argparse.Namespace) -> int:
    rows = [r for r in RUNS if not args.only or run_name(r[0], r[1]) in args.only]
    for agent, env, seeds in rows:
        name = run_name(agent, env)
        if not args.force and os.path.exists(os.path.join(DATA, name, "meta.json")):
            print(f"{name}: data present, skipped (--force to re-run)", flush=True)
            continue
        print(f"{name}: training {seeds} seeds ...", flush=True)
        meta = run_one(agent, env, seeds, args.runs_dir)
        print(f"{name}: done in {meta['wall_s']} s", flush=True)
    return 0


def data_dirs() -> list[str]:
    """Names of the runs in docs/results/data: RUNS' order first, then any others."""
    present = sorted(
        d for d in os.listdir(DATA) if os.path.isfile(os.path.join(DATA, d, "meta.json"))
    )
    order = [run_name(a, e) for a, e, _ in RUNS]
    return [n for n in order if n in present] + [n for n in present if n not in order]


def _read(name: str, f: str) -> dict:
    with open(os.path.join(DATA, name, f)) as fh:
        return json.load(fh)


def _ci(x) -> str:
    return f"[{x[0]:.1f}, {x[1]:.1f}]" if x else ""


def result_row(name: str) -> dict:
    """The figures of one run: final evaluation, speed, and how it was made."""
    meta, summary = _read(name, "meta.json"), _read(name, "summary.json")
    ev = summary.get("eval") or {}
    return {
        "name": name,
        "agent": meta["agent"],
        "env": meta["env"],
        "seeds": meta["seeds"],
        "steps": summary["env_steps_per_run"],
        "mean": ev.get("mean"),
        "ci": ev.get("mean_ci95_over_seeds"),
        "per_seed": ev.get("per_seed_mean") or [],
        "episodes": ev.get("episodes_per_seed"),
        "threshold": ev.get("reward_threshold"),
        "at_threshold": ev.get("fraction_at_threshold"),
        "compile_s": summary.get("compile_s"),
        "train_s": summary.get("train_s"),
        "steps_per_s": summary.get("steps_per_s"),
        "meta": meta,
    }


def _return_cells(r: dict) -> str:
    if r["mean"] is None:
        return "| (no final evaluation) | | |"
    seeds = ", ".join(f"{x:.1f}" for x in r["per_seed"])
    at = "" if r["at_threshold"] is None else f"{100 * r['at_threshold']:.0f}%"
    return f"| {r['mean']:.1f} | {_ci(r['ci'])} | {seeds} | {at} |"


RETURN_HEAD = [
    (
        "| agent | env | seeds | steps per seed | mean return | 95% CI over seeds | per seed "
        "| episodes >= threshold |"
    ),
    "|---|---|---:|---:|---:|---|---|---:|",
]
SPEED_HEAD = [
    (
        "| agent | env | seeds | compile (s) | train (s) | env steps/s (all seeds) | wall (s) "
        "| load average (before, after) | date |"
    ),
    "|---|---|---:|---:|---:|---:|---:|---|---|",
]


def _speed_row(r: dict) -> str:
    m = r["meta"]
    return (
        f"| {r['agent']} | {r['env']} | {r['seeds']} | {r['compile_s']:.1f} | {r['train_s']:.1f} "
        f"| {r['steps_per_s']:,.0f} | {m['wall_s']:.1f} "
        f"| {m['load_average_before']}, {m['load_average_after']} | {m['date']} |"
    )


FINAL_NOTE = (
    "Final return: the best policy of each seed (the one that scored best in the greedy "
    "evaluations during training, as `train.py` keeps it), evaluated greedily for the stated "
    "episodes per seed on Gymnasium's own env. The 95% CI resamples seeds, then episodes within "
    "them (`mean_ci95_over_seeds` of `agents.evaluation`), so it covers run-to-run variation."
)
CURVE_NOTE = (
    "The curves are the returns of the training episodes (exploration on) logged in each run's "
    "`metrics.csv`: mean over seeds, a 95% bootstrap band over seeds and the seeds as thin lines, "
    "drawn by `agents.evaluation.plots.plot_learning_curves` (the same as "
    "`scripts/evaluate.py DIR --no-eval --plot curves.png`)."
)


def render_figure(name: str) -> str:
    meta = _read(name, "meta.json")
    path = os.path.join(FIGURES, f"{name}.png")
    plot_learning_curves(
        [os.path.join(DATA, name)],
        path,
        reward_threshold=reward_threshold(meta["env"]),
        env_id=meta["env"],
        dpi=FIGURE_DPI,
    )
    return path


def agent_results_page(agent: str, rows: list[dict]) -> str:
    lines = [
        f"# Results: {agent}",
        "",
        f"Agent page: [{agent}](../agents/{agent}.md). {CURVE_NOTE}",
        "",
    ]
    for r in rows:
        m = r["meta"]
        lines += [
            f"## {r['env']}",
            "",
            f"![{r['name']} learning curves](figures/{r['name']}.png)",
            "",
            RETURN_HEAD[0],
            RETURN_HEAD[1],
            f"| {agent} | {r['env']} | {r['seeds']} | {r['steps']:,} " + _return_cells(r),
            "",
            "```bash",
            m["command"].replace(" DIR", " runs/" + r["name"]),
            "```",
            "",
            (
                f"Machine: {m['machine']}; {m['date']}; {m['wall_s']:.1f} s wall (compile "
                f"{r['compile_s']:.1f} s, training {r['train_s']:.1f} s), load average "
                f"{m['load_average_before']} before and {m['load_average_after']} after. "
                f"Data: `docs/results/data/{r['name']}/`."
            ),
            "",
        ]
    lines += [FINAL_NOTE, ""]
    return "\n".join(lines)


def index_page(rows: list[dict]) -> str:
    lines = [
        "# Results",
        "",
        (
            "Every agent and env of the [benchmarks](../benchmarks.md), trained with its preset (the "
            "seeds are in the tables: those of the benchmarks for the first agents, 3 for the agents "
            "added later). Each page below shows the learning curves; this page has the tables. "
            "All of it is regenerated by"
        ),
        "",
        "```bash",
        "nice -n 5 python scripts/make_results.py run      # trains the missing runs, one at a time",
        "python scripts/make_results.py render             # figures and these pages",
        "```",
        "",
        "| agent | envs |",
        "|---|---|",
    ]
    by_agent: dict[str, list[dict]] = {}
    for r in rows:
        by_agent.setdefault(r["agent"], []).append(r)
    for agent, agent_rows in by_agent.items():
        envs_cell = ", ".join(
            f"[{r['env']}]({agent}.md#{r['env'].lower().replace('.', '')})" for r in agent_rows
        )
        lines.append(f"| [{agent}]({agent}.md) | {envs_cell} |")
    lines += ["", "## Final returns", "", FINAL_NOTE, "", *RETURN_HEAD]
    for r in rows:
        lines.append(
            f"| {r['agent']} | {r['env']} | {r['seeds']} | {r['steps']:,} " + _return_cells(r)
        )
    machines = sorted({r["meta"]["machine"] for r in rows})
    lines += [
        "",
        "## Training speed",
        "",
        "The same runs: JAX compile time, training time and env steps per second over all seeds "
        "(seeds split over the CPU devices, as `train.py` does), and the wall time of the whole "
        "`train.py` call including the final evaluation. Machine: " + "; ".join(machines) + ". "
        "The machine was shared with other jobs (load average in the table), so wall times are "
        "upper bounds; the speed comparisons against other libraries, each measured side by side, "
        "are in [Benchmarks](../benchmarks.md).",
        "",
        *SPEED_HEAD,
    ]
    lines += [_speed_row(r) for r in rows]
    lines += ["", "## Commands", "", "```bash"]
    lines += [r["meta"]["command"].replace(" DIR", " runs/" + r["name"]) for r in rows]
    lines += ["```", ""]
    return "\n".join(lines), by_agent


def cmd_render(args: argparse.Namespace) -> int:
    rows = [result_row(n) for n in data_dirs()]
    for r in rows:
        path = render_figure(r["name"])
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path) / 1e3:.0f} kB)")
    text, by_agent = index_page(rows)
    atomic_write_text(os.path.join(RESULTS, "index.md"), text)
    for agent, agent_rows in by_agent.items():
        atomic_write_text(os.path.join(RESULTS, f"{agent}.md"), agent_results_page(agent, agent_rows))
    print(f"wrote docs/results/index.md and {len(by_agent)} agent page(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the runs of RUNS whose data is missing")
    r.add_argument("--only", nargs="*", default=None, help="names <agent>-<env> to run")
    r.add_argument("--force", action="store_true", help="re-run even when data is present")
    r.add_argument("--runs-dir", default=os.path.join(ROOT, "out", "results-runs"))
    sub.add_parser("render", help="figures and pages from docs/results/data")
    args = p.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    return cmd_render(args)


if __name__ == "__main__":
    raise SystemExit(main())
