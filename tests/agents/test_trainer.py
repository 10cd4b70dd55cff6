"""The shared training job: run directory, logs, checkpoints, exact resume, errors, load_policy.

A small linear agent keeps these tests about the machinery, not about learning.
"""

from __future__ import annotations

import csv
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct

import agents
from agents.evaluation import evaluate
from agents.training.backends import CompiledBackend, HostBackend
from agents.training.best import eval_seed
from agents.base import Agent, BaseConfig, static_field
from agents.registry import register_agent

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script  # noqa: E402


@struct.dataclass
class LinearConfig(BaseConfig):
    learning_rate: float = 0.05
    """Step size."""
    epsilon: float = 0.2
    """Random-action probability."""
    total_timesteps: int = static_field(2048)
    num_envs: int = static_field(4)
    rollout_length: int = static_field(32)


class LinearAgent(Agent):
    """Linear action preferences, pushed towards rewarded actions; enough to test the machinery."""

    name = "test-linear"
    Config = LinearConfig
    PRESETS = {"default": {}}

    def _dims(self):
        return self.observation_space.shape[0], self.action_space.n

    def init(self, config, key):
        d, a = self._dims()
        w = 0.01 * jax.random.normal(key, (d, a))
        opt = optax.sgd(1.0)
        return {"w": w, "opt": opt.init(w), "count": jnp.zeros((), jnp.int32)}

    def act(self, config, state, obs, key):
        k1, k2 = jax.random.split(key)
        greedy = jnp.argmax(obs @ state["w"], axis=-1)
        rand = jax.random.randint(k1, greedy.shape, 0, self._dims()[1])
        explore = jax.random.uniform(k2, greedy.shape) < config.epsilon
        return jnp.where(explore, rand, greedy).astype(jnp.int32), {}

    def update(self, config, state, rollout, key):
        onehot = jax.nn.one_hot(rollout.action, self._dims()[1])
        grad = -jnp.einsum("tnd,tna->da", rollout.obs, onehot * rollout.reward[..., None])
        grad = grad / rollout.reward.size
        upd, opt = optax.sgd(1.0).update(config.learning_rate * grad, state["opt"])
        w = optax.apply_updates(state["w"], upd)
        metrics = {"grad_norm": jnp.linalg.norm(grad), "loss": jnp.sum(grad**2) + state["count"]}
        return {"w": w, "opt": opt, "count": state["count"] + 1}, metrics

    def policy_params(self, state):
        return {"w": state["w"]}

    def policy(self, config, policy_params, obs, key, deterministic=True):
        return jnp.argmax(obs @ policy_params["w"], axis=-1).astype(jnp.int32)


register_agent(LinearAgent)

BASE = ["--agent", "test-linear", "--env", "CartPole-v1", "--eval-episodes", "0", "--quiet",
        "--log-every", "256", "--checkpoint-every", "512"]


def _run(tmp_path, name, *extra):
    out = str(tmp_path / name)
    code = train_script.main(BASE + ["--out", out, *extra])
    return code, out


def W(policy):
    """The stacked linear weights of a loaded policy."""
    return np.asarray(policy.params["params"]["w"])


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_directory_contents(tmp_path):
    code, out = _run(tmp_path, "a", "--num-seeds", "2")
    assert code == 0
    files = os.listdir(out)
    for name in ("config.json", "metrics.csv", "checkpoint.json", "policy.msgpack", "summary.json"):
        assert name in files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert not any(f.startswith(".tmp-") for f in files)
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["agent"] == "test-linear" and cfg["env"] == "CartPole-v1"
    assert cfg["config"]["learning_rate"] == 0.05 and cfg["num_runs"] == 2
    rows = _read_csv(os.path.join(out, "metrics.csv"))
    # 2048 steps / 128 per update = 16 updates; 256-step chunks = 2 updates -> 8 chunks, x 2 seeds.
    assert len(rows) == 16
    assert sorted({r["seed"] for r in rows}) == ["0", "1"]
    assert int(rows[-1]["env_steps"]) == 2048
    # A random-ish CartPole policy finishes episodes of ~10-60 steps: the logged returns are real.
    returns = [float(r["episode_return"]) for r in rows if r["episode_return"]]
    assert returns and all(5 <= x <= 500 for x in returns)
    ckpt = json.load(open(os.path.join(out, "checkpoint.json")))
    assert ckpt["env_steps"] == 2048
    # Only the latest checkpoint data file is kept.
    assert [f for f in files if f.startswith("checkpoint-")] == ["checkpoint-2048.msgpack"]


def _full_and_resumed(tmp_path, monkeypatch, *extra):
    """An uninterrupted run, and the same run killed after its 1024-step checkpoint and resumed."""
    code, full = _run(tmp_path, "full", *extra)
    assert code == 0

    backend_cls = HostBackend if "gymnasium" in extra else CompiledBackend
    original = backend_cls.save

    def kill_after_first(self, out, meta):
        original(self, out, meta)
        if meta["env_steps"] == 1024:
            raise KeyboardInterrupt

    monkeypatch.setattr(backend_cls, "save", kill_after_first)
    code, part = _run(tmp_path, "part", *extra)
    assert code == 130
    assert json.load(open(os.path.join(part, "checkpoint.json")))["env_steps"] == 1024
    monkeypatch.setattr(backend_cls, "save", original)

    assert train_script.main(["--resume", part, "--quiet"]) == 0
    return full, part


def _same_rows(a, b):
    """metrics.csv rows equal in every column but the clock's (wall_time, sps)."""
    rows_a = _read_csv(os.path.join(a, "metrics.csv"))
    rows_b = _read_csv(os.path.join(b, "metrics.csv"))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_time", "sps")}  # noqa: E731
                          for r in rows]
    assert strip(rows_a) == strip(rows_b)
    return rows_a


def test_resume_matches_uninterrupted_run(tmp_path, monkeypatch):
    full, part = _full_and_resumed(tmp_path, monkeypatch)
    pa, _ = agents.load_policy(full)
    pb, _ = agents.load_policy(part)
    np.testing.assert_array_equal(W(pa), W(pb))
    _same_rows(full, part)


def test_host_resume_matches_uninterrupted_run(tmp_path, monkeypatch):
    """The host (Gymnasium) loop: killed after a checkpoint and resumed, it ends bit for bit
    where the uninterrupted run ends (the envs are put back by replaying their episodes)."""
    full, part = _full_and_resumed(
        tmp_path, monkeypatch, "--backend", "gymnasium", "--eval-every", "512",
        "--eval-every-episodes", "2",
    )
    pa, _ = agents.load_policy(full, which="last")
    pb, _ = agents.load_policy(part, which="last")
    np.testing.assert_array_equal(W(pa), W(pb))
    rows = _same_rows(full, part)
    assert int(rows[-1]["env_steps"]) == 2048
    assert json.load(open(os.path.join(full, "best_policy.json"))) == json.load(
        open(os.path.join(part, "best_policy.json"))
    )


def test_host_backend_keeps_a_best_policy(tmp_path):
    code, out = _run(tmp_path, "hostbest", "--backend", "gymnasium", "--total-timesteps", "1024",
                     "--eval-every", "512", "--eval-every-episodes", "3")
    assert code == 0
    rows = _read_csv(os.path.join(out, "metrics.csv"))
    evals = [(int(r["env_steps"]), float(r["eval_return"])) for r in rows if r["eval_return"]]
    assert [s for s, _ in evals] == [512, 1024]
    meta = json.load(open(os.path.join(out, "best_policy.json")))
    top = max(ret for _, ret in evals)
    assert meta["eval_return"] == [pytest.approx(top)]
    best, _ = agents.load_policy(out, which="best")
    # Re-evaluating the best params on Gymnasium with that evaluation's seed scores the same.
    result = evaluate(best, "CartPole-v1", episodes=3, backend="gymnasium",
                      seed=eval_seed(0, meta["env_steps"][0]))
    assert result.mean() == pytest.approx(top)


def test_load_policy_single_and_multi_seed(tmp_path):
    code, out = _run(tmp_path, "multi", "--num-seeds", "3")
    assert code == 0
    policy, env_id = agents.load_policy(out)
    assert env_id == "CartPole-v1" and policy.num_seeds == 3
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    actions = [policy(obs, seed=s) for s in range(3)]
    assert all(a.shape == (5,) and set(np.unique(a)) <= {0, 1} for a in actions)
    one, _ = agents.load_policy(out, seed=2)
    assert one.num_seeds is None
    np.testing.assert_array_equal(one(obs), actions[2])
    w = W(policy)
    np.testing.assert_array_equal(actions[2], np.argmax(obs @ w[2], axis=-1))


def test_sweep_trains_grid_in_one_program(tmp_path):
    code, out = _run(tmp_path, "sweep", "--sweep", "learning_rate=0.0,0.1", "--num-seeds", "2")
    assert code == 0
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["num_runs"] == 4
    assert cfg["sweep_points"] == [{"learning_rate": 0.0}, {"learning_rate": 0.1}]
    policy, _ = agents.load_policy(out)
    w = W(policy)
    # Each run's policy carries its own sweep point's config.
    np.testing.assert_allclose(policy.params["config"].learning_rate, [0.0, 0.0, 0.1, 0.1])
    # learning_rate 0 leaves the weights at their (seeded) init; 0.1 moves them.
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    for r in range(2):
        k_agent = jax.random.split(keys[r], 3)[1]
        np.testing.assert_allclose(w[r], 0.01 * jax.random.normal(k_agent, (4, 2)), rtol=1e-6)
    assert not np.allclose(w[2], w[0])


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--agent", "dqnn"], "unknown agent 'dqnn'. Did you mean 'dqn'?"),
        (["--agent", "test-linear", "--env", "CartPol-v1"], "Did you mean 'CartPole-v1'"),
        (["--agent", "test-linear", "--num-seeds", "0"], "--num-seeds"),
        (["--agent", "test-linear", "--sweep", "num_envs=1,2"], "static field"),
        (["--agent", "test-linear", "--sweep", "bogus=1"], "unknown hyperparameter 'bogus'"),
        (["--resume", "/nonexistent/run"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    out = str(tmp_path / "never")
    code = train_script.main(argv + ["--out", out, "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not os.path.exists(out)


def test_bad_flag_value_exits_2(capsys):
    assert train_script.main(["--agent", "test-linear", "--learning-rate", "fast"]) == 2


def test_resume_errors(tmp_path, capsys):
    code, out = _run(tmp_path, "r")
    assert code == 0
    # A different config is refused, naming the field.
    assert train_script.main(["--resume", out, "--learning-rate", "0.5", "--quiet"]) == 2
    assert "learning_rate" in capsys.readouterr().err
    # A corrupt checkpoint is refused with a clear message, not a traceback.
    meta = json.load(open(os.path.join(out, "checkpoint.json")))
    with open(os.path.join(out, meta["file"]), "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01\x02\x03")
    assert train_script.main(["--resume", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "Traceback" not in err
    # A directory without a checkpoint is refused.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(open(os.path.join(out, "config.json")).read())
    assert train_script.main(["--resume", str(empty), "--quiet"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_resume_reads_a_field_missing_from_an_older_config_as_its_default(tmp_path, capsys):
    code, out = _run(tmp_path, "r")
    assert code == 0
    path = os.path.join(out, "config.json")
    cfg = json.load(open(path))
    assert cfg["config"]["cnn_impl"] == "auto"
    del cfg["config"]["cnn_impl"]  # as a run written before the field existed
    with open(path, "w") as f:
        json.dump(cfg, f)
    assert train_script.main(["--resume", out, "--quiet"]) == 0
    # A value other than the default is still a difference, named.
    assert train_script.main(["--resume", out, "--cnn-impl", "xla", "--quiet"]) == 2
    assert "cnn_impl ('auto' != 'xla')" in capsys.readouterr().err


def test_out_dir_with_existing_run_is_refused(tmp_path, capsys):
    code, out = _run(tmp_path, "x")
    assert code == 0
    assert train_script.main(BASE + ["--out", out]) == 2
    assert "--resume" in capsys.readouterr().err


def test_help_lists_every_flag(capsys):
    assert train_script.main(["--agent", "test-linear", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--env", "--seed", "--num-seeds", "--total-timesteps", "--out", "--resume",
                 "--log-every", "--checkpoint-every", "--eval-episodes", "--quiet",
                 "--learning-rate", "--epsilon", "--sweep"):
        assert flag in text, flag
    assert "Random-action probability." in text


def test_host_backend_trains_on_gymnasium_env_and_resumes(tmp_path):
    code, out = _run(tmp_path, "host", "--backend", "gymnasium", "--total-timesteps", "1024")
    assert code == 0
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["backend"] == "gymnasium"
    rows = _read_csv(os.path.join(out, "metrics.csv"))
    assert int(rows[-1]["env_steps"]) == 1024
    returns = [float(r["episode_return"]) for r in rows if r["episode_return"]]
    # Returns come from Gymnasium's own CartPole episodes: +1 a step, so at least 8 and at most 500.
    assert returns and all(8 <= x <= 500 for x in returns)
    policy, env_id = agents.load_policy(out)
    assert env_id == "CartPole-v1" and policy.num_seeds == 1
    assert policy(np.zeros((3, 4), np.float32)).shape == (3,)
    # The host backend trains one run at a time.
    assert train_script.main(BASE + ["--out", str(tmp_path / "h2"), "--backend", "gymnasium",
                                     "--num-seeds", "2"]) == 2


def test_best_policy_is_the_best_evaluated_snapshot(tmp_path):
    code, out = _run(tmp_path, "best", "--num-seeds", "2", "--eval-every", "512",
                     "--eval-every-episodes", "4")
    assert code == 0
    rows = _read_csv(os.path.join(out, "metrics.csv"))
    evals = [(int(r["env_steps"]), int(r["run"]), float(r["eval_return"]))
             for r in rows if r["eval_return"]]
    # 2048 steps, evaluated every 512 (chunks of 256): at 512, 1024, 1536 and 2048, for both runs.
    assert sorted({s for s, _, _ in evals}) == [512, 1024, 1536, 2048]
    meta = json.load(open(os.path.join(out, "best_policy.json")))
    best, _ = agents.load_policy(out, which="best")
    last, _ = agents.load_policy(out, which="last")
    default, _ = agents.load_policy(out)
    for run in range(2):
        scores = [(ret, step) for step, r, ret in evals if r == run]
        top = max(ret for ret, _ in scores)
        assert meta["eval_return"][run] == pytest.approx(top)
        # The later of equal best scores is kept.
        assert meta["env_steps"][run] == max(step for ret, step in scores if ret == top)
        # Re-evaluating the saved best params with that evaluation's seed gives its score again.
        result = evaluate(best, "CartPole-v1", episodes=4, seed=eval_seed(0, meta["env_steps"][run]))
        assert result.per_seed_mean()[run] == pytest.approx(meta["eval_return"][run])
    np.testing.assert_array_equal(W(default), W(best))
    with pytest.raises(Exception, match="which"):
        agents.load_policy(out, which="median")
    # The last policy is the parameters at the end of training, which the best need not be.
    assert W(last).shape == W(best).shape


def test_no_evaluations_means_no_best_policy(tmp_path):
    code, out = _run(tmp_path, "nobest", "--eval-every", "0")
    assert code == 0
    assert not os.path.exists(os.path.join(out, "best_policy.msgpack"))
    default, _ = agents.load_policy(out)
    last, _ = agents.load_policy(out, which="last")
    np.testing.assert_array_equal(W(default), W(last))
    with pytest.raises(Exception, match="best_policy.msgpack"):
        agents.load_policy(out, which="best")


def test_resume_keeps_the_best_policy(tmp_path, monkeypatch):
    full, part = _full_and_resumed(
        tmp_path, monkeypatch, "--eval-every", "256", "--eval-every-episodes", "2"
    )
    assert json.load(open(os.path.join(full, "best_policy.json"))) == json.load(
        open(os.path.join(part, "best_policy.json"))
    )
    pa, _ = agents.load_policy(full, which="best")
    pb, _ = agents.load_policy(part, which="best")
    np.testing.assert_array_equal(W(pa), W(pb))
    _same_rows(full, part)


@pytest.mark.parametrize("flag, value", [("--eval-every", "-1"), ("--eval-every-episodes", "0")])
def test_bad_eval_every_values_exit_2(tmp_path, capsys, flag, value):
    code, out = _run(tmp_path, "bad", flag, value)
    assert code == 2
    err = capsys.readouterr().err
    assert flag in err and len(err.strip().splitlines()) == 1


_TENSORBOARD_SCRIPT = """
import glob, os, struct, sys
from agents.training.report import TensorBoard
tb = TensorBoard(sys.argv[1], 2)
tb.log(128, 1000.0, [{"episode_return": 7.0}, {"episode_return": 8.0}])
tb.close()
assert "torch" not in sys.modules, "tensorboardX pulled in torch"
from tensorboardX.proto import event_pb2
(path,) = glob.glob(os.path.join(sys.argv[1], "events.out.tfevents*"))
data, values = open(path, "rb").read(), {}
while data:
    (n,) = struct.unpack("<Q", data[:8])
    event = event_pb2.Event.FromString(data[12 : 12 + n])
    data = data[16 + n :]
    for v in event.summary.value:
        values[v.tag] = (event.step, v.simple_value)
print(sorted(values.items()))
assert values["train/episode_return"] == (128, 7.5), values
assert values["run1/episode_return"] == (128, 8.0), values
assert values["train/sps"] == (128, 1000.0), values
import torch  # still importable afterwards
"""


def test_tensorboard_scalars_written_without_importing_torch(tmp_path):
    """TensorBoard scalars (mean over runs, per-run returns, sps) read back from the event file,
    in a fresh process in which tensorboardX was imported without torch; torch itself can still
    be imported afterwards (skipped where torch is not installed: then nothing is hidden)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch not installed: tensorboardX cannot import it anyway")
    proc = subprocess.run(
        [sys.executable, "-c", _TENSORBOARD_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
