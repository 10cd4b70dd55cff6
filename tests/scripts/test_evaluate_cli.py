"""scripts/evaluate.py: table and files, both backends, plots, videos, one-line errors.

A real run directory comes from ``scripts/train.py`` with a tiny agent whose policy is a
hand-written CartPole controller that does not learn (its update is the identity), so the
evaluation has a known answer: every episode lasts 500 steps.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from agents.base import Agent, BaseConfig, static_field
from agents.policy import Policy
from agents.registry import register_agent
from envs.core import Box, Discrete

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from agents.evaluation import plots  # noqa: E402
from scripts import evaluate as evaluate_script  # noqa: E402
from scripts import train as train_script  # noqa: E402

GOOD = (0.0, 0.0, 1.0, 0.5)


@struct.dataclass
class HeuristicConfig(BaseConfig):
    gain: float = 0.5
    """Weight of the pole's angular velocity."""
    total_timesteps: int = static_field(512)
    num_envs: int = static_field(4)
    rollout_length: int = static_field(32)


class HeuristicAgent(Agent):
    """Pushes towards ``theta + gain * theta_dot`` (plus a small seeded cart term); never learns."""

    name = "test-eval-heuristic"
    Config = HeuristicConfig
    PRESETS = {"default": {}}

    def init(self, config, key):
        cart = 0.02 * jax.random.uniform(key, (2,))
        w = jnp.concatenate([cart, jnp.stack([jnp.asarray(1.0), jnp.asarray(config.gain)])])
        return {"w": w.astype(jnp.float32)}

    def act(self, config, state, obs, key):
        return (obs @ state["w"] > 0).astype(jnp.int32), {}

    def update(self, config, state, rollout, key):
        return state, {"zero": jnp.zeros(())}

    def policy_params(self, state):
        return {"w": state["w"]}

    def policy(self, config, policy_params, obs, key, deterministic=True):
        return (obs @ policy_params["w"] > 0).astype(jnp.int32)


register_agent(HeuristicAgent)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "heuristic")
    code = train_script.main(
        ["--agent", "test-eval-heuristic", "--env", "CartPole-v1", "--num-seeds", "2",
         "--eval-episodes", "0", "--quiet", "--log-every", "128", "--out", out]
    )
    assert code == 0
    return out


def _main(argv, capsys):
    code = evaluate_script.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(code, err, needle):
    assert code == 2
    err = err.strip()
    assert err.startswith("error: ") and needle in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------------


def test_both_backends_table_and_files(run_dir, capsys):
    code, out, err = _main([run_dir, "--backend", "both", "--episodes", "16"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["run", "backend", "seeds", "episodes", "mean"]
    rows = [line.split() for line in lines[2:4]]
    assert [r[1] for r in rows] == ["jax", "gymnasium"]
    assert all(r[0] == "heuristic" and r[2] == "2" and r[3] == "16" and r[4] == "500.0"
               for r in rows)
    assert "100% (>= 475)" in lines[2]
    assert "AGREE" in out
    # Default --out with one run: the run directory itself.
    with open(os.path.join(run_dir, "eval.json")) as f:
        payload = json.load(f)
    (record,) = payload["runs"]
    assert record["env_id"] == "CartPole-v1"
    assert record["agreement"]["verdict"] == "agree"
    for backend in ("jax", "gymnasium"):
        res = record["results"][backend]
        assert np.array(res["returns"]).shape == (2, 16)
        assert np.all(np.array(res["returns"]) == 500.0)
        assert res["iqm"] == 500.0 and res["mean_ci95"] == [500.0, 500.0]
    with open(os.path.join(run_dir, "eval.csv"), newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["backend"] for r in csv_rows] == ["jax", "gymnasium"]
    assert float(csv_rows[0]["fraction_at_threshold"]) == 1.0
    assert csv_rows[1]["agreement_verdict"] == "agree"


def test_out_dir_and_several_runs(run_dir, tmp_path, capsys):
    out_dir = tmp_path / "results"
    code, out, err = _main(
        [run_dir, run_dir, "--backend", "gymnasium", "--episodes", "4", "--num-envs", "2",
         "--max-episode-steps", "30", "--out", out_dir], capsys
    )
    assert code == 0, err
    payload = json.loads((out_dir / "eval.json").read_text())
    assert len(payload["runs"]) == 2
    assert payload["runs"][0]["results"]["gymnasium"]["returns"] == [[30.0] * 4] * 2
    assert "0% (>= 475)" in out


def test_plot_from_run_and_synthetic_metrics(run_dir, tmp_path, capsys):
    # A second run with 3 seeds, a learning trend, noise, and intervals with no finished episode.
    other = tmp_path / "synthetic-run"
    other.mkdir()
    rng = np.random.default_rng(0)
    with open(other / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["env_steps", "run", "seed", "episode_return", "loss"])
        for step in range(1000, 100_001, 1000):
            for s in range(3):
                value = 500 / (1 + math.exp(-(step - 40_000 - 5000 * s) / 8000))
                cell = "" if rng.random() < 0.1 else f"{value + rng.normal(0, 30):.2f}"
                w.writerow([step, s, s, cell, 0.1])
    png = tmp_path / "curves.png"
    code, out, err = _main([run_dir, other, "--no-eval", "--plot", png], capsys)
    assert code == 0, err
    assert png.exists() and png.stat().st_size > 20_000
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_learning_curve_reading_and_band(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "metrics.csv").write_text(
        "env_steps,run,seed,episode_return\n"
        "100,0,0,1\n100,1,1,3\n"
        "200,0,0,2\n200,1,1,\n"
    )
    ((label, steps, values),) = plots.read_learning_curves(str(d))
    assert label == "" and steps.tolist() == [100.0, 200.0]
    np.testing.assert_array_equal(values, [[1.0, 2.0], [3.0, np.nan]])
    mean, low, high = plots.mean_and_band(values)
    np.testing.assert_array_equal(mean, [2.0, 2.0])
    # Resampling two seeds {1, 3}: the mean is 1, 2 or 3, so the 95% band is [1, 3].
    assert (low[0], high[0]) == (1.0, 3.0)
    assert np.isnan(low[1]) and np.isnan(high[1])  # one seed only: no band
    smoothed = plots.smooth_curves(np.array([[1.0, np.nan, 3.0, 5.0]]), 2)
    np.testing.assert_array_equal(smoothed, [[1.0, 1.0, 3.0, 4.0]])


def test_video(run_dir, tmp_path, capsys):
    video_dir = tmp_path / "video"
    code, out, err = _main(
        [run_dir, "--no-eval", "--video", video_dir, "--max-episode-steps", "12"], capsys
    )
    assert code == 0, err
    files = sorted(os.listdir(video_dir))
    assert len(files) == 3 and all(f.endswith((".gif", ".mp4")) for f in files)
    if files[0].endswith(".gif"):
        from PIL import Image

        with Image.open(video_dir / files[0]) as im:
            # 13 frames, every second one kept (Pillow may merge identical neighbours).
            assert im.size == (600, 400) and 2 <= im.n_frames <= 7
        assert "GIF: moviepy is not installed" in out


# --------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2
# --------------------------------------------------------------------------------------------------


def test_missing_run_dir(tmp_path, capsys):
    code, _, err = _main([tmp_path / "nope"], capsys)
    _assert_one_line_error(code, err, "does not exist")


def test_directory_that_is_not_a_run(tmp_path, capsys):
    code, _, err = _main([tmp_path], capsys)
    _assert_one_line_error(code, err, "config.json")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--env", "Acrobot-v1", "--backend", "gymnasium"], "different observation or action"),
        (["--env", "CartPole-v9"], "CartPole-v9"),
        (["--env", "CartPole-v9", "--backend", "gymnasium"], "unknown Gymnasium env id"),
        (["--env", "LunarLander-v3", "--backend", "jax"], "rlkit has no JAX env"),
        (["--episodes", "0"], "--episodes"),
        (["--no-eval"], "--no-eval"),
        (["--plot", "curves.txt"], "--plot"),
    ],
)
def test_bad_input_exits_2(run_dir, capsys, extra, needle):
    code, _, err = _main([run_dir, *extra], capsys)
    _assert_one_line_error(code, err, needle)


def test_policy_with_actions_outside_the_space(run_dir, monkeypatch, capsys):
    def bad_apply(p, obs, key, deterministic=True):
        return jnp.full(obs.shape[:1], 7, jnp.int32)

    policy = Policy(bad_apply, jnp.zeros(4), None, "CartPole-v1",
                    Box(-np.inf, np.inf, (4,)), Discrete(2))
    monkeypatch.setattr(evaluate_script, "load_policy", lambda d, which=None: (policy, "CartPole-v1"))
    for backend in ("jax", "gymnasium"):
        code, _, err = _main([run_dir, "--backend", backend, "--episodes", "2"], capsys)
        _assert_one_line_error(code, err, "action 7")
