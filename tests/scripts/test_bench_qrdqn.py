"""scripts/bench_qrdqn.py: the settings translation, the parsing of a run and the summary shape.

The benchmark itself (two training processes per seed) is not run here: benchmarks are not timed
tests. These check its bookkeeping on hand-made inputs.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from types import SimpleNamespace

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import bench_qrdqn

#: QRDQN.PRESETS["CartPole-v1"]'s values (as docs/benchmarks.md lists them), without importing JAX.
PRESET = SimpleNamespace(
    num_envs=4, total_timesteps=50_000, anneal_lr=True, learning_rate=2e-3, buffer_size=100_000,
    learning_starts=1000, batch_size=128, tau=0.1, gamma=0.99, rollout_length=64,
    gradient_steps=128, n_step=3, target_update_interval=16, steps_per_update=256,
    exploration_fraction=0.16, exploration_initial_eps=1.0, exploration_final_eps=0.04,
    max_grad_norm=10.0, num_quantiles=11, hidden=(64, 64), activation="relu", adam_eps=1e-8,
)


def test_sb3_settings_translate_the_preset():
    s = bench_qrdqn.sb3_settings(PRESET)
    kw = s["kwargs"]
    assert s["n_envs"] == 4 and s["total_timesteps"] == 50_000 and s["anneal_lr"] is True
    # One Polyak step every 16 learner steps, 128 learner steps per 256 env steps: every 32.
    assert kw["target_update_interval"] == 32 and kw["tau"] == 0.1
    assert kw["train_freq"] == [64, "step"] and kw["gradient_steps"] == 128
    assert kw["batch_size"] == 128 and kw["n_steps"] == 3 and kw["learning_rate"] == 2e-3
    assert kw["policy_kwargs"] == {
        "n_quantiles": 11, "net_arch": [64, 64], "activation_fn": "ReLU",
        "optimizer_kwargs": {"eps": 1e-8},
    }
    json.dumps(s)  # goes to the SB3 process as JSON


def test_rlkit_times_reads_the_first_evaluation_at_475(tmp_path):
    rows = [
        {"env_steps": 3840, "run": 0, "wall_time": "20.0", "eval_return": "120.5"},
        {"env_steps": 7680, "run": 0, "wall_time": "24.0", "eval_return": ""},
        {"env_steps": 11520, "run": 0, "wall_time": "30.0", "eval_return": "480.0"},
        {"env_steps": 15360, "run": 0, "wall_time": "35.0", "eval_return": "500.0"},
    ]
    with open(tmp_path / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "summary.json").write_text(json.dumps({"wall_time_s": 40.0}))
    r = bench_qrdqn.rlkit_times(str(tmp_path), process_s=50.0)
    assert [e[0] for e in r["evaluations"]] == [3840, 11520, 15360]
    assert r["reached_at"] == 11520 and r["inrun_s"] == 30.0
    assert r["process_s"] == pytest.approx(40.0)  # 50 s minus the 10 s after that evaluation
    (tmp_path / "summary.json").write_text(json.dumps({"wall_time_s": 40.0}))
    never = bench_qrdqn.rlkit_times(str(tmp_path), process_s=50.0, threshold=501.0)
    assert never["reached_at"] is None and never["process_s"] is None


def test_summary_medians_ratios_and_seeds_that_never_reach():
    def row(lib, seed, t):
        return {"library": lib, "seed": seed, "reached_at": None if t is None else 1,
                "process_s": t, "inrun_s": None if t is None else t - 5}

    rows = [row("rlkit", 0, 10.0), row("sb3-contrib", 0, 70.0), row("rlkit", 1, 20.0),
            row("sb3-contrib", 1, None), row("rlkit", 2, 12.0), row("sb3-contrib", 2, 50.0)]
    s = bench_qrdqn.summarise(rows)
    assert s["rlkit"]["median_process_s"] == 12.0 and s["rlkit"]["not_reached"] == []
    assert s["sb3-contrib"]["median_process_s"] == 60.0
    assert s["sb3-contrib"]["not_reached"] == [1] and s["sb3-contrib"]["reached"] == [0, 2]
    assert s["ratio_process"] == pytest.approx(5.0)
    assert s["ratio_inrun"] == pytest.approx(55.0 / 7.0)
    assert math.isnan(bench_qrdqn.summarise([row("rlkit", 0, None)])["ratio_process"])


def test_bad_counts_are_refused_with_the_flag(capsys):
    with pytest.raises(SystemExit):
        bench_qrdqn.main(["--seeds", "0"])
    assert "--seeds: expected an integer >= 1, got 0" in capsys.readouterr().err
