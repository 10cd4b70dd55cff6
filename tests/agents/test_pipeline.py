"""Tests of agents.training.pipeline: sync equals the host backend, exact resume, bounded lag in
async mode, and errors or interrupts in the actor that stop the run instead of hanging it."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
import time

import gymnasium
import jax
import numpy as np
import pytest
from gymnasium.envs.classic_control import CartPoleEnv

import agents
from agents.runs.spec import RunArgs, build
from agents.training.pipeline import PipelineBackend, _ActorEnvs
from envs.host import HostVecEnv
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script

# DQN that learns from its second update on: 4 envs x 16 steps, 8 gradient steps of 32.
DQN = ["--agent", "dqn", "--env", "CartPole-v1", "--backend", "gymnasium", "--quiet"]
DQN += ["--total-timesteps", "1024", "--rollout-length", "16", "--gradient-steps", "8"]
DQN += ["--batch-size", "32", "--learning-starts", "64", "--eval-episodes", "0"]
DQN += ["--eval-every", "0", "--log-every", "128", "--checkpoint-every", "512"]
PPO = ["--agent", "ppo", "--env", "CartPole-v1", "--backend", "gymnasium", "--quiet"]
PPO += ["--total-timesteps", "512", "--num-envs", "2", "--rollout-length", "32"]
PPO += ["--eval-episodes", "0", "--eval-every", "0", "--log-every", "128"]


def _actor_threads():
    return [t for t in threading.enumerate() if t.name.startswith("rlkit-actor")]


def _rows(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {k: v for k, v in r.items() if k not in ("wall_time", "sps", "policy_lag")} for r in rows
    ]


def _last_params(out):
    policy, _ = agents.load_policy(out, which="last")
    return jax.tree.leaves(policy.params)


def _same_run(a, b):
    assert _rows(a) == _rows(b)
    for x, y in zip(_last_params(a), _last_params(b)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("argv", [DQN, PPO], ids=["dqn", "ppo"])
def test_sync_pipeline_is_the_host_backend_bit_for_bit(tmp_path, argv):
    host, pipe = str(tmp_path / "host"), str(tmp_path / "pipe")
    assert train_script.main([*argv, "--out", host]) == 0
    assert train_script.main([*argv, "--out", pipe, "--pipeline", "sync"]) == 0
    _same_run(host, pipe)
    rows = _rows(host)
    assert float(rows[-1]["loss"]) != 0.0  # it learned


def _kill_after_first_checkpoint(monkeypatch, backend_cls):
    """Make ``backend_cls.save`` raise KeyboardInterrupt after writing the 512-step checkpoint."""
    original = backend_cls.save

    def kill_after_first(self, out, meta):
        original(self, out, meta)
        if meta["env_steps"] == 512:
            raise KeyboardInterrupt

    monkeypatch.setattr(backend_cls, "save", kill_after_first)
    return lambda: monkeypatch.setattr(backend_cls, "save", original)


@pytest.mark.parametrize("actors", [1, 2])
def test_sync_pipeline_resumes_exactly(tmp_path, monkeypatch, actors):
    argv = [*DQN, "--pipeline", "sync", "--pipeline-actors", str(actors)]
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert train_script.main([*argv, "--out", full]) == 0
    undo = _kill_after_first_checkpoint(monkeypatch, PipelineBackend)
    assert train_script.main([*argv, "--out", part]) == 130
    undo()
    assert not _actor_threads()
    with open(os.path.join(part, "checkpoint.json")) as f:
        assert json.load(f).get("pipeline_actors", 1) == actors
    assert train_script.main(["--resume", part, "--quiet"]) == 0
    _same_run(full, part)


def test_two_sync_actors_are_deterministic(tmp_path):
    """Two actors (2 envs and a key chain each): the same seed gives the same run."""
    argv = [*DQN, "--pipeline", "sync", "--pipeline-actors", "2"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train_script.main([*argv, "--out", a]) == 0
    assert train_script.main([*argv, "--out", b]) == 0
    _same_run(a, b)
    rows = _rows(a)
    assert float(rows[-1]["loss"]) != 0.0 and int(rows[-1]["env_steps"]) == 1024
    with open(os.path.join(a, "metrics.csv"), newline="") as f:
        assert all(float(r["policy_lag"]) == 0.0 for r in csv.DictReader(f))


def test_one_actor_checkpoint_resumes_on_the_host_backend(tmp_path, monkeypatch):
    """A one-actor pipeline writes the host backend's checkpoint: --pipeline off resumes it and
    ends where the host backend's uninterrupted run ends."""
    host, part = str(tmp_path / "host"), str(tmp_path / "part")
    assert train_script.main([*DQN, "--out", host]) == 0
    undo = _kill_after_first_checkpoint(monkeypatch, PipelineBackend)
    assert train_script.main([*DQN, "--out", part, "--pipeline", "sync"]) == 130
    undo()
    assert train_script.main(["--resume", part, "--quiet", "--pipeline", "off"]) == 0
    _same_run(host, part)


def test_two_actor_checkpoint_needs_two_actors(tmp_path, monkeypatch, capsys):
    part = str(tmp_path / "part")
    undo = _kill_after_first_checkpoint(monkeypatch, PipelineBackend)
    argv = [*DQN, "--out", part, "--pipeline", "sync", "--pipeline-actors", "2"]
    assert train_script.main(argv) == 130
    undo()
    capsys.readouterr()
    assert train_script.main(["--resume", part, "--quiet", "--pipeline-actors", "1"]) == 2
    assert "resume it with --pipeline-actors 2" in capsys.readouterr().err


def test_the_actors_envs_are_the_runs_envs():
    """Two actors' envs (2 + 2) play the episodes the run's 4 envs play with one actor, and their
    env state goes through a checkpoint's list."""
    split, whole = _ActorEnvs("CartPole-v1", 4, 2, seed=3), HostVecEnv("CartPole-v1", 4, seed=3)
    try:
        np.testing.assert_array_equal(split.reset(), whole.reset())
        actions = np.asarray([0, 1, 1, 0])
        for _ in range(30):  # past the first episode ends: the reset seeds agree too
            got = np.concatenate([e.step(a)[0] for e, a in zip(split.envs, np.split(actions, 2))])
            np.testing.assert_array_equal(got, whole.step(actions)[0])
        state = split.state_dict()
        assert isinstance(state, list) and len(state) == 2
        # A list may come back from msgpack as a dict keyed "0", "1".
        np.testing.assert_array_equal(split.load_state_dict({str(i): x for i, x in enumerate(state)}), got)
        np.testing.assert_array_equal(split.load_state_dict(state), got)
        with pytest.raises(RLKitError, match="2 pipeline actors"):
            split.load_state_dict(state[:1])
    finally:
        split.close()
        whole.close()


def _backend(mode, max_lag=1, actors=1, actor_device=None):
    """A started PPO pipeline on Gymnasium's CartPole, 2 envs x 16 steps per update."""
    args = RunArgs(
        agent="ppo",
        env="CartPole-v1",
        backend="gymnasium",
        pipeline=mode,
        pipeline_max_lag=max_lag,
        pipeline_actors=actors,
        pipeline_actor_device=actor_device,
        quiet=True,
    )
    config = agents.PPO.default_config(
        "CartPole-v1", total_timesteps=2048, num_envs=2, rollout_length=16
    )
    built = build(args, config)
    backend = PipelineBackend(built, 8, mode, max_lag, actors=actors, actor_device=actor_device)
    backend.start()
    return backend


@pytest.mark.parametrize("actors", [1, 2])
def test_async_lag_is_bounded_and_logged(actors):
    """A slow learner: the actors run ahead, never by more than max_lag updates."""
    backend = _backend("async", max_lag=2, actors=actors)
    try:
        update = backend.update_fn

        def slow_update(*a):
            out = update(*a)
            jax.block_until_ready(out)
            time.sleep(0.05)
            return out

        backend.update_fn = slow_update
        metrics = backend.run(12)
        lag = metrics["policy_lag"][0]
        assert lag.shape == (12,)
        assert lag.max() == 2 and lag.min() >= 0
        assert backend.state.update_step == 12
        assert np.all(np.isfinite(metrics["loss"]))
    finally:
        backend.close()


class _CrashingCartPole(CartPoleEnv):
    """CartPole that raises on its own 50th step (each copy counts its own steps, so which
    rollout fails does not depend on how the actors' threads interleave)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= 50:
            raise RuntimeError("simulator exploded")
        return super().step(action)


gymnasium.register("rlkit-test/CrashingCartPole-v0", _CrashingCartPole, max_episode_steps=500)


@pytest.mark.parametrize(("mode", "actors"), [("sync", 1), ("async", 1), ("sync", 2), ("async", 2)])
def test_actor_error_stops_the_run_and_keeps_the_checkpoint(tmp_path, capsys, mode, actors):
    out = str(tmp_path / "crash")
    argv = ["--agent", "ppo", "--env", "rlkit-test/CrashingCartPole-v0", "--quiet"]
    argv += ["--total-timesteps", "512", "--num-envs", "2", "--rollout-length", "16"]
    argv += ["--eval-episodes", "0", "--eval-every", "0", "--log-every", "64"]
    argv += ["--checkpoint-every", "64", "--pipeline", mode, "--out", out]
    argv += ["--pipeline-actors", str(actors)]
    t0 = time.perf_counter()
    assert train_script.main(argv) == 2
    assert time.perf_counter() - t0 < 120
    err = capsys.readouterr().err
    # Each env takes 16 steps per rollout: its 50th step is in rollout 4, in either actor.
    who = "the actor" if actors == 1 else r"actor [01] of 2 \(envs [01] to [01]\)"
    assert re.search(f"{who} failed while collecting rollout 4 ", err), err
    assert "simulator exploded" in err
    with open(os.path.join(out, "checkpoint.json")) as f:
        assert json.load(f)["env_steps"] == 64
    policy, _ = agents.load_policy(out)
    assert policy(np.zeros((1, 4), np.float32)).shape == (1,)
    assert not _actor_threads()


def test_interrupt_in_the_learner_stops_the_actor_within_seconds():
    backend = _backend("async", max_lag=1)
    calls = []
    update = backend.update_fn

    def interrupted(*a):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return update(*a)

    backend.update_fn = interrupted
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        backend.run(8)
    backend.close()
    assert time.perf_counter() - t0 < 30
    assert not _actor_threads()


def test_pipeline_flags_are_checked(tmp_path):
    with pytest.raises(RLKitError, match="--pipeline"):
        build(RunArgs(agent="ppo", pipeline="sometimes"), agents.PPO.default_config())
    with pytest.raises(RLKitError, match="--pipeline-max-lag"):
        build(
            RunArgs(agent="ppo", pipeline="async", pipeline_max_lag=0), agents.PPO.default_config()
        )
    with pytest.raises(RLKitError, match="--backend gymnasium"):
        build(RunArgs(agent="ppo", pipeline="sync"), agents.PPO.default_config())

    host = {"agent": "ppo", "env": "CartPole-v1", "backend": "gymnasium"}
    four = agents.PPO.default_config("CartPole-v1", num_envs=4)
    with pytest.raises(RLKitError, match=r"--pipeline-actors: .*--num-envs a multiple of 3"):
        build(RunArgs(**host, pipeline="sync", pipeline_actors=3), four)
    with pytest.raises(RLKitError, match="--pipeline-actors: expected an integer >= 1"):
        build(RunArgs(**host, pipeline="sync", pipeline_actors=0), four)
    with pytest.raises(RLKitError, match="--pipeline-actors: .*--pipeline sync[|]async"):
        build(RunArgs(**host, pipeline_actors=2), four)
    count = len(jax.devices())
    with pytest.raises(RLKitError, match=rf"--pipeline-actor-device: .*\[0, {count - 1}\]"):
        build(RunArgs(**host, pipeline="sync", pipeline_actor_device=count), four)
    assert build(RunArgs(**host, pipeline="async", pipeline_actors=4), four).num_runs == 1


# Run in a child process with two CPU devices: the same sync run with acting on device 1 and on
# the default device; prints where act's outputs and the learner's state live, and the results.
_ON_TWO_DEVICES = """
import json, sys
sys.path.insert(0, sys.argv[1])
import jax, numpy as np
from tests.agents.test_pipeline import _backend
assert len(jax.devices()) == 2, jax.devices()
out = {}
for device in (None, 1):
    backend = _backend("sync", actors=2, actor_device=device)
    act, seen = backend.act_fn, set()
    def recording(*a):
        res = act(*a)
        seen.update(str(d) for x in jax.tree.leaves(res) for d in x.devices())
        return res
    backend.act_fn = recording
    try:
        metrics = backend.run(4)
        learner = {str(d) for x in jax.tree.leaves(backend.state.agent_state) for d in x.devices()}
        params = [np.asarray(p).tolist() for p in jax.tree.leaves(backend.policy_params())]
    finally:
        backend.close()
    out[str(device)] = dict(
        act=sorted(seen), learner=sorted(learner), params=params,
        metrics={k: np.asarray(v).tolist() for k, v in metrics.items()},
    )
out["devices"] = [str(d) for d in jax.devices()]
print(json.dumps(out))
"""


def test_actors_act_on_the_chosen_device():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
    )
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", _ON_TWO_DEVICES, ROOT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    first, second = out["devices"]
    assert out["None"]["act"] == [first] and out["1"]["act"] == [second]
    assert out["None"]["learner"] == out["1"]["learner"] == [first]
    assert out["1"]["metrics"] == out["None"]["metrics"]  # sync: the same run on either device
    assert out["1"]["params"] == out["None"]["params"]
