"""scripts/bench_cnn.py: the row bookkeeping on hand-made results (the benchmark's training
processes are not run here: benchmarks are not timed tests)."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import bench_cnn  # noqa: E402


def test_ratio_rows_take_the_best_round_of_each_implementation():
    def r(sps, compile_s=2.0):
        return {"steps_per_s": sps, "compile_s": compile_s, "train_s": 1.0}

    results = {
        ("pqn", "Breakout", 3, "xla"): [r(1000.0, 4.0), r(1200.0, 5.0)],
        ("pqn", "Breakout", 3, "im2col"): [r(6000.0), r(5000.0)],
        ("pqn", "Breakout", 1, "xla"): [r(900.0)],
        ("pqn", "Breakout", 1, "im2col"): [r(1800.0)],
    }
    rows = bench_cnn.ratio_rows(results)
    assert [(x["seeds"], x["ratio"]) for x in rows] == [(1, pytest.approx(2.0)),
                                                       (3, pytest.approx(5.0))]
    assert rows[1]["xla_steps_per_s"] == 1200.0 and rows[1]["xla_compile_s"] == 5.0
