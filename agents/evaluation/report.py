"""The tables and files of an evaluation of run directories (``scripts/evaluate.py``).

``records`` are dicts ``{"run_dir", "env_id", "results": {backend: EvalResult}, "agreement"}``.
``eval.json`` holds every episode's return and length; ``eval.csv`` one summary row per run and
backend. Both are written atomically.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

from agents.runs import files
from rlkit.errors import RLKitError

__all__ = ["CSV_FIELDS", "format_agreements", "format_table", "summary_rows", "write_outputs"]

EVAL_JSON = "eval.json"
EVAL_CSV = "eval.csv"
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
    header = [
        "run",
        "backend",
        "seeds",
        "episodes",
        "mean",
        "mean 95% CI",
        "IQM",
        "IQM 95% CI",
        ">= threshold",
    ]
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
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise RLKitError(f"--out: cannot create {out_dir} ({e.strerror or e})") from None
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
    json_path = os.path.join(out_dir, EVAL_JSON)
    csv_path = os.path.join(out_dir, EVAL_CSV)
    files.write_json(json_path, payload)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for row in summary_rows(records):
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    files.atomic_write_text(csv_path, buf.getvalue())
    return json_path, csv_path
