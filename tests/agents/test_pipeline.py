"""Tests of agents.training.pipeline: sync equals the host backend, exact resume, bounded lag in
async mode, and errors or interrupts in the actor that stop the run instead of hanging it."""

from __future__ import annotations

import csv
import json
import os
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
from agents.training.pipeline import PipelineBackend
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


def test_sync_pipeline_resumes_exactly(tmp_path, monkeypatch):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert train_script.main([*DQN, "--out", full, "--pipeline", "sync"]) == 0
    original = PipelineBackend.save

    def kill_after_first(self, out, meta):
        original(self, out, meta)
        if meta["env_steps"] == 512:
            raise KeyboardInterrupt

    monkeypatch.setattr(PipelineBackend, "save", kill_after_first)
    assert train_script.main([*DQN, "--out", part, "--pipeline", "sync"]) == 130
    monkeypatch.setattr(PipelineBackend, "save", original)
    assert not _actor_threads()
    assert train_script.main(["--resume", part, "--quiet"]) == 0
    _same_run(full, part)


def _backend(mode, max_lag=1):
    """A started PPO pipeline on Gymnasium's CartPole, 2 envs x 16 steps per update."""
    args = RunArgs(
        agent="ppo",
        env="CartPole-v1",
        backend="gymnasium",
        pipeline=mode,
        pipeline_max_lag=max_lag,
        quiet=True,
    )
    config = agents.PPO.default_config(
        "CartPole-v1", total_timesteps=2048, num_envs=2, rollout_length=16
    )
    built = build(args, config)
    backend = PipelineBackend(built, 8, mode, max_lag)
    backend.start()
    return backend


def test_async_lag_is_bounded_and_logged():
    """A slow learner: the actor runs ahead, never by more than max_lag updates."""
    backend = _backend("async", max_lag=2)
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
    """CartPole whose every copy raises after 100 steps in total (counted over its copies)."""

    steps = 0

    def step(self, action):
        _CrashingCartPole.steps += 1
        if _CrashingCartPole.steps > 100:
            raise RuntimeError("simulator exploded")
        return super().step(action)


gymnasium.register("rlkit-test/CrashingCartPole-v0", _CrashingCartPole, max_episode_steps=500)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_actor_error_stops_the_run_and_keeps_the_checkpoint(tmp_path, capsys, mode):
    _CrashingCartPole.steps = 0
    out = str(tmp_path / "crash")
    argv = ["--agent", "ppo", "--env", "rlkit-test/CrashingCartPole-v0", "--quiet"]
    argv += ["--total-timesteps", "512", "--num-envs", "2", "--rollout-length", "16"]
    argv += ["--eval-episodes", "0", "--eval-every", "0", "--log-every", "64"]
    argv += ["--checkpoint-every", "64", "--pipeline", mode, "--out", out]
    t0 = time.perf_counter()
    assert train_script.main(argv) == 2
    assert time.perf_counter() - t0 < 120
    err = capsys.readouterr().err
    assert "the actor failed while collecting rollout 4" in err and "simulator exploded" in err
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
