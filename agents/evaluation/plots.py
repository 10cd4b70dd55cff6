"""Learning curves from run directories' ``metrics.csv``: mean over seeds with a bootstrap band."""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np

from agents.runs import files
from rlkit.errors import RLKitError

__all__ = ["mean_and_band", "plot_learning_curves", "read_learning_curves", "smooth_curves"]


def read_learning_curves(run_dir: str) -> list[tuple[str, Any, Any]]:
    """Curves of a run's metrics.csv: ``[(label_suffix, env_steps [T], returns [R, T]), ...]``.

    metrics.csv is long format: one row per run (seed) per log event, with ``env_steps``, a run
    index (``run``, else ``seed``) and ``episode_return`` (empty when no episode ended in that
    interval). Each run's returns are put on the union of logged env steps (empty cells stay NaN).
    A sweep (config.json ``sweep_points`` with more than one point) gives one curve per point.
    """
    path = os.path.join(run_dir, files.METRICS_FILE)
    if not os.path.exists(path):
        raise RLKitError(f"--plot: {run_dir!r} has no metrics.csv")
    _, rows = files.read_metrics(path)
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
        try:
            ri = run_index[int(float(r[run_col])) if run_col else 0]
            values[ri, step_index[int(float(r["env_steps"]))]] = float(r["episode_return"])
        except (TypeError, ValueError):
            raise RLKitError(f"--plot: {path} has a malformed row {r!r}") from None
    steps_arr = np.asarray(steps, np.float64)

    groups = [("", list(range(len(run_ids))))]
    cfg_path = os.path.join(run_dir, files.CONFIG_FILE)
    if os.path.exists(cfg_path):
        try:
            cfg = files.read_json(cfg_path)
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
        except (RLKitError, ValueError, TypeError, AttributeError):
            pass  # no sweep grouping without a readable config.json
    return [(label, steps_arr, values[idx]) for label, idx in groups]


def smooth_curves(values, window: int):
    """Trailing moving average of each run's curve over ``window`` logged points (NaN-aware)."""
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
    dpi: int = 120,
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
      dpi: resolution of a raster image (the figure is 9 x 5.8 inches).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        raise RLKitError("--plot needs matplotlib (pip install 'rlkit[plot]')") from None
    if smooth < 0:
        raise RLKitError(f"--smooth: expected an integer >= 0, got {smooth}")
    curves = []
    for d in run_dirs:
        name = os.path.basename(os.path.normpath(d)) or d
        for suffix, steps, values in read_learning_curves(d):
            curves.append((name + suffix, steps, values))

    fig, ax = plt.subplots(figsize=(9, 5.8), dpi=dpi)
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
        ax.axhline(
            reward_threshold,
            color="0.35",
            linestyle="--",
            linewidth=1.2,
            label=f"reward threshold ({reward_threshold:g})",
        )
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
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        frameon=False,
        fontsize=9,
        ncol=2 if len(labels) > 2 else len(labels),
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format=os.path.splitext(path)[1].lstrip(".").lower() or "png")
    plt.close(fig)
    files.atomic_write_bytes(path, buf.getvalue())
    return path
