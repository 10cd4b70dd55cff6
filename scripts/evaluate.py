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
status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlkit.errors import RLKitError  # noqa: E402

VIDEO_EPISODES = 3
CSV_FIELDS = [
    "run_dir",
    "env_id",
    "backend",
    "num_seeds",
    "episodes_per_seed",
    "mean",
    "mean_ci95_low",
    "mean_ci95_high",
    "iqm",
    "iqm_ci95_low",
    "iqm_ci95_high",
    "median",
    "std",
    "mean_length",
    "reward_threshold",
    "fraction_at_threshold",
    "agreement_p_value",
    "agreement_verdict",
]


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
    from agents.policy import load_policy as _load

    return _load(run_dir, which=which)


def _check_run_dirs(run_dirs: list[str]) -> None:
    for d in run_dirs:
        if not os.path.isdir(d):
            raise RLKitError(f"RUN_DIR: run directory {d!r} does not exist")


def _backends(requested: str, env_id: str) -> list[str]:
    import envs

    has_jax = env_id.removeprefix("rlkit/") in envs.registered()
    if requested == "auto":
        return ["jax" if has_jax else "gymnasium"]
    if requested in ("jax", "both") and not has_jax:
        raise RLKitError(
            f"--backend {requested}: rlkit has no JAX env {env_id!r} "
            f"(rlkit envs: {', '.join(envs.registered())}); use --backend gymnasium"
        )
    return ["jax", "gymnasium"] if requested == "both" else [requested]


def evaluate_run(run_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate every seed of one run on each requested backend."""
    from agents.evaluation import compare_distributions, evaluate

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


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat summary row per run and backend (the eval.csv rows)."""
    rows = []
    for rec in records:
        agreement = rec["agreement"] or {}
        for backend, result in rec["results"].items():
            s = result.summary()
            rows.append(
                {
                    "run_dir": rec["run_dir"],
                    "env_id": s["env_id"],
                    "backend": backend,
                    "num_seeds": s["num_seeds"],
                    "episodes_per_seed": s["episodes_per_seed"],
                    "mean": s["mean"],
                    "mean_ci95_low": s["mean_ci95"][0],
                    "mean_ci95_high": s["mean_ci95"][1],
                    "iqm": s["iqm"],
                    "iqm_ci95_low": s["iqm_ci95"][0],
                    "iqm_ci95_high": s["iqm_ci95"][1],
                    "median": s["median"],
                    "std": s["std"],
                    "mean_length": s["mean_length"],
                    "reward_threshold": s["reward_threshold"],
                    "fraction_at_threshold": s["fraction_at_threshold"],
                    "agreement_p_value": agreement.get("p_value"),
                    "agreement_verdict": agreement.get("verdict"),
                }
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of ``summary_rows``."""
    header = ["run", "backend", "seeds", "episodes", "mean", "mean 95% CI", "IQM", "IQM 95% CI",
              ">= threshold"]
    body = []
    for r in rows:
        frac = r["fraction_at_threshold"]
        thr = "-" if frac is None else f"{100 * frac:.0f}% (>= {r['reward_threshold']:g})"
        body.append(
            [
                os.path.basename(os.path.normpath(r["run_dir"])) or r["run_dir"],
                r["backend"],
                str(r["num_seeds"]),
                str(r["episodes_per_seed"]),
                _fmt(r["mean"]),
                f"[{_fmt(r['mean_ci95_low'])}, {_fmt(r['mean_ci95_high'])}]",
                _fmt(r["iqm"]),
                f"[{_fmt(r['iqm_ci95_low'])}, {_fmt(r['iqm_ci95_high'])}]",
                thr,
            ]
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    numeric = {2, 3, 4, 6}

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)


def format_agreements(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for rec in records:
        a = rec["agreement"]
        if a is None:
            continue
        name = os.path.basename(os.path.normpath(rec["run_dir"]))
        lines.append(
            f"{name}: jax vs gymnasium returns {a['verdict'].upper()} ({a['test']} p = "
            f"{a['p_value']:.3g}, means {a['mean_a']:.1f} vs {a['mean_b']:.1f}, 95% CIs "
            f"{'overlap' if a['ci_overlap'] else 'do not overlap'})"
        )
    return lines


def write_outputs(out_dir: str, records: list[dict[str, Any]], argv: list[str]) -> tuple[str, str]:
    """Write eval.json (every episode) and eval.csv (summary rows); returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    payload = {
        "command": ["scripts/evaluate.py", *argv],
        "runs": [
            {
                "run_dir": rec["run_dir"],
                "env_id": rec["env_id"],
                "results": {b: r.to_dict() for b, r in rec["results"].items()},
                "agreement": rec["agreement"],
            }
            for rec in records
        ],
    }
    json_path = os.path.join(out_dir, "eval.json")
    csv_path = os.path.join(out_dir, "eval.csv")
    with open(json_path, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for row in summary_rows(records):
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return json_path, csv_path


# --------------------------------------------------------------------------------------------------
# Learning curves
# --------------------------------------------------------------------------------------------------


def read_learning_curves(run_dir: str) -> list[tuple[str, Any, Any]]:
    """Curves of a run's metrics.csv: ``[(label_suffix, env_steps [T], returns [R, T]), ...]``.

    metrics.csv is long format: one row per run (seed) per log event, with ``env_steps``, a run
    index (``run``, else ``seed``) and ``episode_return`` (empty when no episode ended in that
    interval). Each run's returns are put on the union of logged env steps (empty cells stay NaN).
    A sweep (config.json ``sweep_points`` with more than one point) gives one curve per point.
    """
    import numpy as np

    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.exists(path):
        raise RLKitError(f"--plot: {run_dir!r} has no metrics.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise RLKitError(f"--plot: {path} has no rows")
    missing = {"env_steps", "episode_return"} - set(rows[0])
    if missing:
        raise RLKitError(f"--plot: {path} lacks column(s) {sorted(missing)}")
    run_col = next((c for c in ("run", "seed") if c in rows[0] and rows[0][c] != ""), None)
    steps = sorted({int(float(r["env_steps"])) for r in rows})
    step_index = {s: i for i, s in enumerate(steps)}
    run_ids = sorted({int(float(r[run_col])) if run_col else 0 for r in rows})
    run_index = {r: i for i, r in enumerate(run_ids)}
    values = np.full((len(run_ids), len(steps)), np.nan)
    for r in rows:
        if r["episode_return"] in ("", None):
            continue
        ri = run_index[int(float(r[run_col])) if run_col else 0]
        values[ri, step_index[int(float(r["env_steps"]))]] = float(r["episode_return"])
    steps_arr = np.asarray(steps, np.float64)

    groups = [("", list(range(len(run_ids))))]
    cfg_path = os.path.join(run_dir, "config.json")
    if os.path.exists(cfg_path):
        try:
            with open(cfg_path) as f:
                cfg = json.load(f)
            points = cfg.get("sweep_points") or []
            per_point = int(cfg.get("num_seeds") or 1)
            if len(points) > 1 and per_point * len(points) == len(run_ids):
                groups = [
                    (
                        " (" + ", ".join(f"{k}={v:g}" for k, v in point.items()) + ")",
                        list(range(i * per_point, (i + 1) * per_point)),
                    )
                    for i, point in enumerate(points)
                ]
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    return [(label, steps_arr, values[idx]) for label, idx in groups]


def smooth_curves(values, window: int):
    """Trailing moving average of each run's curve over ``window`` logged points (NaN-aware)."""
    import numpy as np

    if window <= 1:
        return values
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0)
    csum = np.cumsum(v, axis=1)
    ccount = np.cumsum(finite, axis=1)
    shifted_sum = np.concatenate([np.zeros_like(csum[:, :window]), csum[:, :-window]], axis=1)
    shifted_count = np.concatenate([np.zeros_like(ccount[:, :window]), ccount[:, :-window]], axis=1)
    total, count = csum - shifted_sum, ccount - shifted_count
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def mean_and_band(values, *, reps: int = 2000, seed: int = 0):
    """Mean over runs at each step and a 95% percentile-bootstrap band over runs (NaN-aware).

    The bootstrap resamples runs (seeds) with replacement at every step; unlike a t-interval it
    stays inside the range of the data, which matters with few seeds.

    Args:
      values: ``[R, T]`` returns (NaN where a run logged no finished episode).

    Returns:
      ``(mean [T], low [T], high [T])``; low/high are NaN where fewer than two runs have a value.
    """
    import numpy as np

    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    v = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, v.sum(axis=0) / np.maximum(count, 1), np.nan)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, values.shape[0], size=(reps, values.shape[0]))
        sums = v[idx].sum(axis=1)  # [reps, T]
        counts = finite[idx].sum(axis=1)
        boot = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0) if values.shape[1] else (mean, mean)
    low = np.where(count > 1, low, np.nan)
    high = np.where(count > 1, high, np.nan)
    return mean, low, high


def plot_learning_curves(
    run_dirs: list[str],
    path: str,
    *,
    reward_threshold: float | None = None,
    env_id: str | None = None,
    smooth: int = 0,
) -> str:
    """Draw the learning curves of ``run_dirs`` into ``path`` (PNG, PDF or SVG); returns ``path``.

    One line per run (label: the run directory's name; one per sweep point in a sweep): the mean
    episode return over seeds against env steps, a shaded 95% bootstrap band over seeds (none with
    one seed), thin lines for the individual seeds, and the env's reward threshold dashed.

    Args:
      run_dirs: run directories holding metrics.csv.
      path: output image file.
      reward_threshold: drawn as a horizontal dashed line when given.
      env_id: shown in the title.
      smooth: moving-average window in logged points applied to each seed's curve before
        averaging; 0 picks ``max(1, T // 25)`` for ``T`` logged points, 1 disables it.
    """
    try:
        import matplotlib
    except ImportError:
        raise RLKitError("--plot needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    if smooth < 0:
        raise RLKitError(f"--smooth: expected an integer >= 0, got {smooth}")
    curves = []
    for d in run_dirs:
        name = os.path.basename(os.path.normpath(d)) or d
        for suffix, steps, values in read_learning_curves(d):
            curves.append((name + suffix, steps, values))

    fig, ax = plt.subplots(figsize=(9, 5.8), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, steps, values) in enumerate(curves):
        color = colors[i % len(colors)]
        window = smooth if smooth > 0 else max(1, values.shape[1] // 25)
        values = smooth_curves(values, window)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = mean_and_band(values)
        ok = np.isfinite(mean)
        num_runs = values.shape[0]
        if num_runs > 1:
            for run_values in values:
                f = np.isfinite(run_values)
                ax.plot(steps[f], run_values[f], color=color, alpha=0.3, linewidth=0.7)
            band = ok & np.isfinite(low)
            ax.fill_between(steps[band], low[band], high[band], color=color, alpha=0.2, linewidth=0)
        detail = f"{num_runs} seeds" if num_runs > 1 else "1 seed"
        if window > 1:
            detail += f", moving average of {window}"
        ax.plot(steps[ok], mean[ok], color=color, linewidth=2.2, label=f"{label} ({detail})")
    if reward_threshold is not None:
        ax.axhline(reward_threshold, color="0.35", linestyle="--", linewidth=1.2,
                   label=f"reward threshold ({reward_threshold:g})")
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("episode return (training episodes)")
    title = "Learning curves" + (f": {env_id}" if env_id else "")
    note = "mean over seeds; shaded: 95% bootstrap CI over seeds; thin: individual seeds"
    ax.set_title(f"{title}\n{note}", fontsize=10.5)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(
            lambda x, _: f"{x / 1e6:g}M" if abs(x) >= 1e6 else (f"{x / 1e3:g}k" if x else "0")
        )
    )
    ax.set_xlim(left=0)
    ax.spines[["top", "right"]].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False,
              fontsize=9, ncol=2 if len(labels) > 2 else len(labels))
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _threshold_of(env_id: str | None) -> float | None:
    if not env_id:
        return None
    import envs

    rl_id = env_id.removeprefix("rlkit/")
    if rl_id in envs.registered():
        return envs.spec(rl_id).reward_threshold
    try:
        import gymnasium

        return gymnasium.spec(env_id).reward_threshold
    except Exception:
        return None


def _run_env(run_dir: str) -> str | None:
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path) as f:
            return json.load(f).get("env")
    except (OSError, ValueError, AttributeError):
        return None


# --------------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------------


def record_video(
    policy,
    env_id: str,
    out_dir: str,
    *,
    episodes: int = VIDEO_EPISODES,
    seed: int = 0,
    deterministic: bool = True,
    name_prefix: str = "eval",
    max_episode_steps: int | None = None,
) -> tuple[list[str], str]:
    """Record ``episodes`` episodes of seed 0 of ``policy`` on Gymnasium's ``env_id``.

    Uses ``gymnasium.wrappers.RecordVideo`` (mp4) when moviepy is installed; otherwise collects the
    ``rgb_array`` frames itself and writes one animated GIF per episode with Pillow (every second
    frame, so the GIF plays at real time at half the env's frame rate).

    Returns:
      ``(paths, format)`` with format "mp4" or "gif".
    """
    import gymnasium
    import jax
    import numpy as np

    import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)

    # Headless rendering: pygame needs no display or sound card for rgb_array frames.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    single = policy.select(0) if policy.num_seeds is not None else policy
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    try:
        env = gymnasium.make(env_id, render_mode="rgb_array", **kwargs)
    except gymnasium.error.Error as e:
        raise RLKitError(
            f"--video: cannot make {env_id!r} with render_mode='rgb_array' ({e})"
        ) from None
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise RLKitError(f"--video: {env_id!r} does not render rgb_array frames")
    os.makedirs(out_dir, exist_ok=True)
    try:
        import moviepy  # noqa: F401

        fmt = "mp4"
    except ImportError:
        fmt = "gif"
        try:
            from PIL import Image
        except ImportError:
            env.close()
            raise RLKitError("--video needs moviepy (mp4) or Pillow (GIF)") from None

    if fmt == "mp4":
        env = gymnasium.wrappers.RecordVideo(
            env, out_dir, episode_trigger=lambda _: True, name_prefix=name_prefix,
            disable_logger=True,
        )
    key = jax.random.PRNGKey(seed)
    fps = int(env.metadata.get("render_fps", 30) or 30)
    paths = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            frames = [env.render()] if fmt == "gif" else []
            done, t = False, 0
            while not done:
                k = jax.random.fold_in(jax.random.fold_in(key, ep), t)
                action = single(np.asarray(obs)[None], key=k, deterministic=deterministic)[0]
                obs, _, terminated, truncated, _ = env.step(action)
                done = bool(terminated or truncated)
                t += 1
                if fmt == "gif":
                    frames.append(env.render())
            if fmt == "gif":
                images = [Image.fromarray(np.asarray(f)) for f in frames[::2]]
                path = os.path.join(out_dir, f"{name_prefix}-episode-{ep}.gif")
                images[0].save(
                    path, save_all=True, append_images=images[1:], loop=0,
                    duration=max(20, int(round(2000 / fps))),
                )
                paths.append(path)
    finally:
        env.close()
    if fmt == "mp4":
        paths = sorted(
            os.path.join(out_dir, f) for f in os.listdir(out_dir)
            if f.startswith(name_prefix) and f.endswith(".mp4")
        )
    return paths, fmt


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
        env_id = args.env or (records[0]["env_id"] if records else _run_env(args.run_dirs[0]))
        plot_learning_curves(
            args.run_dirs, args.plot, reward_threshold=_threshold_of(env_id), env_id=env_id,
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
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    args = build_parser().parse_args(argv)
    import gymnasium

    try:
        return run(args, argv)
    except (RLKitError, OSError, gymnasium.error.Error) as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
