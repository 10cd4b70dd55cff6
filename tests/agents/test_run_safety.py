"""Run directories and inputs that cannot hurt the user: crafted metadata, symlinks, a full disk,
NaN hyperparameters, divergence, locks, retries after bad values, and one-line errors."""

from __future__ import annotations

import errno
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from agents.base import Agent, BaseConfig, static_field
from agents.registry import register_agent
from agents.runs import files
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import evaluate as evaluate_script  # noqa: E402
from scripts import train as train_script  # noqa: E402


@struct.dataclass
class NanConfig(BaseConfig):
    learning_rate: float = 0.05
    """Step size."""
    nan_at: int = 1_000_000
    """The update from which the loss (and, one later, the weights) become NaN."""
    total_timesteps: int = static_field(2048)
    num_envs: int = static_field(4)
    rollout_length: int = static_field(32)


class NanAgent(Agent):
    """A linear agent that diverges on purpose at update ``nan_at``."""

    name = "test-nan"
    Config = NanConfig

    def init(self, config, key):
        return {"w": 0.01 * jax.random.normal(key, (4, 2)), "count": jnp.zeros((), jnp.int32)}

    def act(self, config, state, obs, key):
        return jnp.argmax(obs @ state["w"], axis=-1).astype(jnp.int32), {}

    def update(self, config, state, rollout, key):
        count = state["count"] + 1
        bad = count >= config.nan_at
        w = state["w"] + config.learning_rate * jnp.mean(rollout.obs) * jnp.ones((4, 2))
        w = jnp.where(count > config.nan_at, jnp.nan, w)
        loss = jnp.where(bad, jnp.nan, 1.0)
        return {"w": w, "count": count}, {"loss": loss}

    def policy_params(self, state):
        return {"w": state["w"]}

    def policy(self, config, policy_params, obs, key, deterministic=True):
        return jnp.argmax(obs @ policy_params["w"], axis=-1).astype(jnp.int32)


register_agent(NanAgent)

BASE = ["--agent", "test-nan", "--eval-episodes", "0", "--quiet", "--log-every", "256",
        "--checkpoint-every", "512"]


def _train(*argv):
    return train_script.main(BASE + list(argv))


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- paths named by the run directory -------------------------------------------------------------


def test_crafted_checkpoint_json_cannot_delete_outside(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("x")
    d = tmp_path / "d"
    d.mkdir()
    (d / "checkpoint.json").write_text(json.dumps({"file": "../victim", "env_steps": 0}))
    assert _train("--out", str(d)) == 2
    _one_line_error(capsys, "already holds a run")
    assert victim.read_text() == "x"
    # A real run whose checkpoint.json is edited to name an outside file: resume refuses it,
    # and the next checkpoint does not delete it.
    run = tmp_path / "run"
    assert _train("--out", str(run)) == 0
    meta = json.loads((run / "checkpoint.json").read_text())
    os.replace(run / meta["file"], tmp_path / "outside.msgpack")
    meta["file"] = "../outside.msgpack"
    (run / "checkpoint.json").write_text(json.dumps(meta))
    assert train_script.main(["--resume", str(run), "--quiet"]) == 2
    _one_line_error(capsys, "leaves the run directory")
    assert (tmp_path / "outside.msgpack").exists()


def test_inside_refuses_escapes_and_links(tmp_path):
    (tmp_path / "run").mkdir()
    run = str(tmp_path / "run")
    for bad in ("../x", "/etc/passwd", "a/b", "", ".", None, 3):
        with pytest.raises(RLKitError):
            files.inside(run, bad)
    os.symlink(str(tmp_path / "elsewhere"), os.path.join(run, "link"))
    with pytest.raises(RLKitError, match="link"):
        files.inside(run, "link")
    assert files.inside(run, "policy.msgpack") == os.path.join(run, "policy.msgpack")


def test_symlinks_are_replaced_never_written_through(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--out", str(run), "--eval-every", "0") == 0
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(str(victim), str(run / "eval.json"))
    code = evaluate_script.main([str(run), "--episodes", "2", "--backend", "jax"])
    assert code == 0
    capsys.readouterr()
    assert victim.read_text() == "keep" and not os.path.islink(run / "eval.json")
    json.loads((run / "eval.json").read_text())
    # metrics.csv as a symlink: a resume refuses to append through it.
    os.unlink(run / "metrics.csv")
    os.symlink(str(victim), str(run / "metrics.csv"))
    assert train_script.main(["--resume", str(run), "--quiet"]) == 2
    _one_line_error(capsys, "symbolic link")
    assert victim.read_text() == "keep"


def test_atomic_files_have_ordinary_permissions_and_stale_temps_go(tmp_path):
    run = tmp_path / "run"
    assert _train("--out", str(run), "--eval-every", "0") == 0
    (run / ".tmp-killed").write_bytes(b"x" * 100)  # what a write killed half-way leaves
    assert train_script.main(["--resume", str(run), "--quiet"]) == 0
    assert not (run / ".tmp-killed").exists()
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.json", "policy.msgpack", "checkpoint.json", "summary.json"):
        assert (os.stat(run / name).st_mode & 0o777) == (0o666 & ~umask), name


def test_policy_and_checksum_are_one_file(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--out", str(run), "--eval-every", "0") == 0
    assert not (run / "policy.msgpack.sha256").exists()
    data = bytearray((run / "policy.msgpack").read_bytes())
    data[-5] ^= 0xFF
    (run / "policy.msgpack").write_bytes(bytes(data))
    assert evaluate_script.main([str(run), "--episodes", "1"]) == 2
    _one_line_error(capsys, "policy.msgpack")


def test_a_locked_run_dir_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--out", str(run), "--total-timesteps", "1024") == 0
    with files.lock(str(run)):
        assert train_script.main(["--resume", str(run), "--quiet"]) == 2
    _one_line_error(capsys, "another process")


# -- bad values before anything is written --------------------------------------------------------


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--total-timesteps", "100000000000000"], "--total-timesteps"),
        (["--sweep", "learning_rate=nan,1e-3"], "finite"),
        (["--sweep", "learning_rate=1,2", "learning_rate=3"], "twice"),
        (["--sweep", "nan_at=1.5,100"], "integer"),
        (["--env", "LunarLandr-v3"], "Did you mean 'LunarLander-v3'"),
    ],
)
def test_bad_values_exit_2_and_write_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "never"
    assert _train("--out", str(out), *argv) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--agent", "dqn", "--gamma", "1.5"], "--gamma"),
        (["--agent", "dqn", "--n-step", "0"], "--n-step"),
        (["--agent", "dqn", "--gradient-steps", "0"], "--gradient-steps"),
        (["--agent", "dqn", "--batch-size", "100000", "--buffer-size", "1024"], "--batch-size"),
        (["--agent", "ppo", "--num-minibatches", "0"], "--num-minibatches"),
        (["--agent", "ppo", "--num-epochs", "0"], "--num-epochs"),
        (["--agent", "ppo", "--gae-lambda", "-3"], "--gae-lambda"),
        (["--agent", "ppo", "--clip-eps", "-1"], "--clip-eps"),
        (["--agent", "ppo", "--learning-rate", "-1"], "--learning-rate"),
    ],
)
def test_agent_value_checks_and_the_retry(tmp_path, capsys, argv, needle):
    out = tmp_path / "d"
    assert train_script.main(argv + ["--out", str(out), "--quiet", "--eval-episodes", "0"]) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["--learning-rate", "fast"], "--learning-rate"),
    (["--num-envs", "2.5"], "--num-envs"),
    (["--no-such-flag", "1"], "--no-such-flag"),
])
def test_a_wrong_type_or_unknown_flag_gives_one_line(tmp_path, capsys, argv, needle):
    assert _train("--out", str(tmp_path / "never"), *argv) == 2
    _one_line_error(capsys, needle)


def test_retry_after_a_bad_value_and_after_a_kill_before_the_first_checkpoint(tmp_path):
    out = tmp_path / "d"
    assert _train("--out", str(out), "--learning-rate", "nan") == 2
    assert _train("--out", str(out), "--total-timesteps", "512") == 0
    # A run killed before its first checkpoint leaves config.json and no checkpoint: the same
    # --out starts it again.
    out2 = tmp_path / "killed"
    assert _train("--out", str(out2), "--total-timesteps", "512") == 0
    for name in os.listdir(out2):
        if name.startswith("checkpoint"):
            os.unlink(out2 / name)
    assert _train("--out", str(out2), "--total-timesteps", "512") == 0
    assert files.has_checkpoint(str(out2))


def test_hand_edited_config_json_gives_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--out", str(run), "--total-timesteps", "512") == 0
    cfg = json.loads((run / "config.json").read_text())
    cfg["run"]["bogus"] = 1
    (run / "config.json").write_text(json.dumps(cfg))
    assert train_script.main(["--resume", str(run), "--quiet"]) == 2
    _one_line_error(capsys, "bogus")
    del cfg["run"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert train_script.main(["--resume", str(run), "--quiet"]) == 2
    _one_line_error(capsys, "'run'")
    (run / "config.json").write_text("{not json")
    assert train_script.main(["--resume", str(run), "--quiet"]) == 2
    _one_line_error(capsys, "config.json")


def test_garbled_metrics_csv_gives_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--out", str(run), "--total-timesteps", "512") == 0
    (run / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage\n\x00")
    assert evaluate_script.main([str(run), "--no-eval", "--plot", str(tmp_path / "c.png")]) == 2
    _one_line_error(capsys, "metrics.csv")
    (run / "metrics.csv").write_text("env_steps,run,episode_return\nabc,0,1\n")
    assert evaluate_script.main([str(run), "--no-eval", "--plot", str(tmp_path / "c.png")]) == 2
    _one_line_error(capsys, "metrics.csv")


# -- a full disk ------------------------------------------------------------------------------


def test_a_full_disk_gives_one_line(tmp_path, capsys, monkeypatch):
    real_fdopen = os.fdopen

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    out = tmp_path / "full"
    assert _train("--out", str(out)) == 2
    _one_line_error(capsys, "no space left")
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_a_real_small_tmpfs(tmp_path, capsys):
    """On a 1 MB tmpfs (where the test may mount one) the checkpoint no longer fits."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=1m tmpfs {mnt} 2>/dev/null"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        code = train_script.main(["--agent", "dqn", "--total-timesteps", "2048",
                                  "--eval-episodes", "0", "--quiet", "--out", str(mnt / "run")])
        assert code == 2
        _one_line_error(capsys, "no space left")
    finally:
        os.system(f"umount {mnt}")


# -- divergence -------------------------------------------------------------------------------


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    # 16 updates of 128 steps; checkpoints every 512 steps (4 updates); NaN loss from update 6.
    assert _train("--out", str(out), "--nan-at", "6", "--eval-every", "256",
                  "--eval-every-episodes", "2") == 2
    err = _one_line_error(capsys, "run 0: loss became nan at update 6")
    assert "last good checkpoint (512 env steps)" in err
    assert json.loads((out / "checkpoint.json").read_text())["env_steps"] == 512
    best = json.loads((out / "best_policy.json").read_text())
    assert all(np.isfinite(best["eval_return"])) and max(best["env_steps"]) <= 512
    # The kept checkpoint resumes (and diverges again at the same update).
    assert train_script.main(["--resume", str(out), "--quiet"]) == 2


# -- env actions --------------------------------------------------------------------------------


def test_out_of_space_actions(capsys):
    import envs
    from jax.experimental import checkify

    env, params = envs.make("CartPole-v1")
    _, state = env.reset(jax.random.key(0), params)
    for bad in (5, -1, 0.7):
        with pytest.raises(RLKitError, match="outside the action space"):
            env.step(jax.random.key(1), state, bad, params)
    env.step(jax.random.key(1), state, 1, params)
    step = checkify.checkify(jax.jit(env.checked_step))
    err, _ = step(jax.random.key(1), state, jnp.int32(5), params)
    with pytest.raises(Exception, match="outside the action space"):
        err.throw()
    err, _ = step(jax.random.key(1), state, jnp.int32(1), params)
    err.throw()
    # Through the Gymnasium bridge, single and vector, as Gymnasium's own envs assert.
    import gymnasium

    genv = gymnasium.make("rlkit/CartPole-v1")
    genv.reset(seed=0)
    for bad in (5, -1, 0.7, np.float32(1.5)):
        with pytest.raises(RLKitError, match="outside the action space"):
            genv.step(bad)
    genv.step(1)
    venv = gymnasium.make_vec("rlkit/CartPole-v1", 3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    with pytest.raises(RLKitError, match="7 is outside"):
        venv.step(np.array([0, 7, 1]))
    venv.step(np.array([0, 1, 1]))
    # Box actions: a wrong shape is an error; values out of bounds are clipped, as Gymnasium's
    # Pendulum does.
    penv = gymnasium.make("rlkit/Pendulum-v1")
    penv.reset(seed=0)
    with pytest.raises(RLKitError, match="outside"):
        penv.step(np.array([1.0, 2.0], np.float32))
    penv.step(np.array([3.0], np.float32))



def test_spaces_round_trip_through_json_and_constant_bounds_are_one_number():
    from envs.core import Box, Discrete

    image = Box(0, 255, (84, 84, 4), dtype=np.uint8)
    d = files.space_to_json(image)
    assert d["low"] == [0.0] and d["high"] == [255.0]
    back = files.space_from_json(json.loads(json.dumps(d)))
    assert back.shape == (84, 84, 4) and np.dtype(back.dtype) == np.uint8
    np.testing.assert_array_equal(back.low, np.zeros((84, 84, 4)))
    np.testing.assert_array_equal(back.high, np.full((84, 84, 4), 255.0))
    mixed = Box(np.array([-1.0, -np.inf]), np.array([2.0, np.inf]), (2,), dtype=np.float32)
    d = files.space_to_json(mixed)
    assert d["low"] == [-1.0, "-inf"] and d["high"] == [2.0, "inf"]
    back = files.space_from_json(json.loads(json.dumps(d)))
    np.testing.assert_array_equal(back.low, mixed.low)
    np.testing.assert_array_equal(back.high, mixed.high)
    # Full lists, as config.json files written before held them, still load.
    full = {**files.space_to_json(image), "low": [0.0] * (84 * 84 * 4)}
    np.testing.assert_array_equal(files.space_from_json(full).low, np.zeros((84, 84, 4)))
    assert files.space_to_json(Discrete(3)) == {"type": "Discrete", "n": 3, "start": 0}
