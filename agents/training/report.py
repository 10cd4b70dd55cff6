"""What a training job shows and logs: progress bar, chunk summaries, TensorBoard, the summary."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["Progress", "TensorBoard", "format_eval", "print_summary", "say", "summarise_chunk"]

#: Per-update metrics the runners add for episode bookkeeping (summed into episode_return etc.).
EPISODE_KEYS = ("episode_return_sum", "episode_length_sum", "episode_count", "env_steps")


def summarise_chunk(metrics: dict, num_runs: int) -> list[dict]:
    """Per-run summaries of a chunk's stacked metrics (leading axes [runs, iterations])."""
    m = metrics
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
            if k in EPISODE_KEYS:
                continue
            row[k] = float(np.mean(v[r]))
        out.append(row)
    return out


class Progress:
    """A tqdm progress bar over env steps on stderr (nothing when ``quiet``)."""

    def __init__(self, total: int, initial: int, quiet: bool):
        self.bar = None
        if not quiet:
            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="step",
                unit_scale=True,
                dynamic_ncols=True,
                file=sys.stderr,
                desc="train",
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


def say(quiet: bool, msg: str) -> None:
    """Print ``msg`` on stderr unless ``quiet``."""
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _summary_writer():
    """tensorboardX's ``SummaryWriter``, imported without torch.

    tensorboardX imports torch when it is installed (about 1.2 s per process, for graph and
    embedding helpers rlkit does not use); scalars need only protobuf. Unless torch is already
    imported, it is hidden for the duration of the import.
    """
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` fail fast
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class TensorBoard:
    """TensorBoard scalars of a run directory: per-metric means over runs, per-run returns."""

    def __init__(self, run_dir: str, num_runs: int):
        self.writer = _summary_writer()(run_dir)
        self.num_runs = num_runs

    def log(self, env_steps: int, sps: float, per_run: list[dict[str, Any]]) -> None:
        for k in per_run[0]:
            vals = [m[k] for m in per_run if m.get(k) is not None and np.isfinite(m[k])]
            if vals:
                self.writer.add_scalar(f"train/{k}", float(np.mean(vals)), env_steps)
            if self.num_runs > 1 and k in ("episode_return", "eval_return"):
                for r, m in enumerate(per_run):
                    if m.get(k) is not None and np.isfinite(m[k]):
                        self.writer.add_scalar(f"run{r}/{k}", m[k], env_steps)
        self.writer.add_scalar("train/sps", sps, env_steps)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def print_summary(summary: dict) -> None:
    print(f"run dir: {summary['run_dir']}")
    print(
        f"trained {summary['runs']} run(s) x {summary['env_steps_per_run']:,} env steps in "
        f"{summary['train_s']:.1f} s ({summary['steps_per_s']:,.0f} steps/s"
        + (f", compile {summary['compile_s']:.1f} s)" if summary.get("compile_s") else ")")
    )
    best = summary.get("best_during_training")
    if best:
        print(
            "best greedy evaluation during training, per run: "
            + ", ".join(
                f"{r:.1f} at {s:,} steps" for r, s in zip(best["eval_return"], best["env_steps"])
            )
        )
    ev = summary.get("eval")
    if ev:
        print(format_eval(ev))
    print(f"total wall time {summary['wall_time_s']:.1f} s")


def format_eval(ev: dict) -> str:
    thr = ev.get("reward_threshold")
    lines = [
        f"evaluation on {'Gymnasium ' if ev.get('backend') == 'gymnasium' else ''}"
        f"{ev.get('env_id')} ({ev.get('episodes_per_seed')} episodes x "
        f"{ev.get('num_seeds')} seed(s), greedy, {ev.get('policy', 'last')} policy): "
        f"mean {ev['mean']:.2f} +- {ev['std']:.2f}"
    ]
    if thr is not None:
        lines.append(f"  episodes at or above {thr:g}: {ev['fraction_at_threshold'] * 100:.0f}%")
    per_seed = ev.get("per_seed_mean")
    if per_seed and len(per_seed) > 1:
        lines.append("  per seed: " + ", ".join(f"{m:.1f}" for m in per_seed))
    return "\n".join(lines)
