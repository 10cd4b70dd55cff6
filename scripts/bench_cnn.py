"""Benchmark the image torso's two convolutions (``--cnn-impl xla`` against ``im2col``).

Each row is one ``python scripts/train.py --agent A --env MinAtar/<Game>-v1 --num-seeds S
--cnn-impl I`` process with the agent's MinAtar preset, a short budget (``--total-timesteps``),
no evaluations and no final evaluation; the two implementations of a row alternate (xla, im2col,
xla, im2col, ... for ``--repeats`` rounds) so that both see the same machine load. Reported per
row: the env steps per second of training summed over the seeds (``summary.json``'s
``steps_per_s``: compile excluded), the compile time, and the ratio im2col / xla of the best
round. The two compute the same convolution (equal up to float rounding), so the runs train the
same way; what differs is how XLA runs it: a convolution whose kernel is vmapped over seeds
becomes a grouped convolution, slow on XLA's CPU backend, while ``im2col`` stays a matrix product
(``agents.networks.im2col_conv``).

    python scripts/benchmark.py cnn [--agents pqn] [--games Breakout Seaquest] [--seeds 1 3]
        [--total-timesteps 65536] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPLS = ("xla", "im2col")

__all__ = ["IMPLS", "main", "ratio_rows", "train_row"]


def train_row(agent: str, game: str, seeds: int, steps: int, impl: str) -> dict[str, Any]:
    """One ``train.py`` process; its ``summary.json`` figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--agent", agent,
               "--env", f"MinAtar/{game}-v1", "--num-seeds", str(seeds),
               "--total-timesteps", str(steps), "--cnn-impl", impl, "--eval-every", "0",
               "--eval-episodes", "0", "--quiet", "--out", out]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT)
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
    return {
        "steps_per_s": float(summary["steps_per_s"]),
        "compile_s": float(summary["compile_s"] or 0.0),
        "train_s": float(summary["train_s"]),
    }


def ratio_rows(results: dict[tuple, list[dict]]) -> list[dict[str, Any]]:
    """Per (agent, game, seeds): the best round of each implementation and im2col / xla."""
    rows = []
    keys = sorted({k[:3] for k in results})
    for agent, game, seeds in keys:
        best = {
            impl: max(results[(agent, game, seeds, impl)], key=lambda r: r["steps_per_s"])
            for impl in IMPLS
        }
        rows.append({
            "agent": agent, "game": game, "seeds": seeds,
            **{f"{impl}_steps_per_s": best[impl]["steps_per_s"] for impl in IMPLS},
            **{f"{impl}_compile_s": best[impl]["compile_s"] for impl in IMPLS},
            "ratio": best["im2col"]["steps_per_s"] / best["xla"]["steps_per_s"],
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", nargs="+", default=["pqn"])
    p.add_argument("--games", nargs="+", default=["Breakout", "Seaquest"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 3])
    p.add_argument("--total-timesteps", type=int, default=65_536,
                   help="env steps per seed of each run (default 65536)")
    p.add_argument("--repeats", type=int, default=1, help="rounds of xla/im2col pairs")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    a = p.parse_args(argv)
    results: dict[tuple, list[dict]] = {}
    for agent in a.agents:
        for game in a.games:
            for seeds in a.seeds:
                for _ in range(a.repeats):
                    for impl in IMPLS:
                        r = train_row(agent, game, seeds, a.total_timesteps, impl)
                        results.setdefault((agent, game, seeds, impl), []).append(r)
                        print(f"{agent} {game} seeds={seeds} {impl}: "
                              f"{r['steps_per_s']:,.0f} env steps/s, compile {r['compile_s']:.1f} s",
                              flush=True)
    rows = ratio_rows(results)
    print("\n| agent | game | seeds | xla steps/s | im2col steps/s | im2col / xla | "
          "compile xla / im2col (s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['agent']} | {r['game']} | {r['seeds']} | {r['xla_steps_per_s']:,.0f} | "
              f"{r['im2col_steps_per_s']:,.0f} | {r['ratio']:.2f}x | "
              f"{r['xla_compile_s']:.1f} / {r['im2col_compile_s']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
