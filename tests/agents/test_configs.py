"""Agent configs: presets hold only what differs, check_config runs once before tracing, field
ranges are checked, one learning-rate schedule, and each sweep point's policy uses its own config."""

from __future__ import annotations

import dataclasses
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
from agents.base import check_field_ranges, learning_rate_schedule
from agents.dqn import DQN
from agents.runtime.loop import make_train
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script  # noqa: E402


@pytest.mark.parametrize("name", ["dqn", "ppo", "a2c", "c51", "qrdqn", "iqn", "mdqn", "rainbow", "pqn"])
def test_presets_hold_only_what_differs_from_the_defaults(name):
    cls = agents.get_agent(name)
    defaults = {f.name: f.default for f in dataclasses.fields(cls.Config)}
    for env_id, preset in cls.PRESETS.items():
        same = {k: v for k, v in preset.items() if defaults[k] == v}
        assert not same, f"{name} preset {env_id} repeats defaults {same}"
        config = cls.default_config(env_id)
        check_field_ranges(config)
        assert all(getattr(config, k) == v for k, v in preset.items())


def test_check_config_runs_once_on_the_concrete_config(monkeypatch):
    calls = []
    original = DQN.check_config

    def counting(self, config):
        calls.append(type(config.learning_rate))
        original(self, config)

    monkeypatch.setattr(DQN, "check_config", counting)
    config = DQN.default_config(
        "CartPole-v1", total_timesteps=512, learning_starts=256, buffer_size=1024, gradient_steps=2
    )
    train = make_train("dqn", "CartPole-v1", config)
    jax.jit(train)(config, jax.random.key(0))
    assert calls == [float]  # once, with Python values: never on tracers inside init or update


def test_field_ranges_name_the_flag():
    config = DQN.default_config("CartPole-v1")
    check_field_ranges(config)
    for field, value, needle in [
        ("gamma", 1.5, "--gamma: expected a value <= 1"),
        ("learning_rate", 0.0, "--learning-rate: expected a value > 0"),
        ("learning_rate", float("nan"), "--learning-rate: expected a finite number"),
        ("tau", 2.0, "--tau"),
        ("learning_starts", 1.5, "--learning-starts: expected an integer"),
        ("batch_size", 0, "--batch-size: expected a value >= 1"),
    ]:
        with pytest.raises(RLKitError, match=needle):
            check_field_ranges(config.replace(**{field: value}))


def test_one_schedule_for_every_agent():
    """DQN and PPO anneal the same way: constant within an update, lower by lr/num_updates after."""
    for cls in (agents.DQN, agents.PPO, agents.A2C):
        config = cls.Config(
            anneal_lr=True,
            learning_rate=1e-3,
            total_timesteps=10 * 512,
            num_envs=4,
            rollout_length=128,
        )
        assert config.num_updates == 10
        steps = 3
        rates = learning_rate_schedule(config, steps)(jnp.arange(0, 33))
        np.testing.assert_allclose(rates[:3], 1e-3, rtol=1e-6)
        np.testing.assert_allclose(rates[3:6], 9e-4, rtol=1e-6)
        np.testing.assert_allclose(rates[30:], 0.0, atol=1e-12)


def test_sweep_point_policy_uses_its_own_config(tmp_path):
    """A swept field the policy reads (DQN's exploration_final_eps, used by the sampling policy):
    the eps=0 run acts greedily, the eps=1 run uniformly at random."""
    out = str(tmp_path / "sweep")
    code = train_script.main(
        [
            "--agent",
            "dqn",
            "--total-timesteps",
            "1024",
            "--learning-starts",
            "512",
            "--buffer-size",
            "1024",
            "--gradient-steps",
            "2",
            "--eval-episodes",
            "0",
            "--eval-every",
            "0",
            "--quiet",
            "--out",
            out,
            "--sweep",
            "exploration_final_eps=0,1",
        ]
    )
    assert code == 0
    policy, _ = agents.load_policy(out)
    obs = np.random.default_rng(0).normal(size=(512, 4)).astype(np.float32)
    greedy = [policy(obs, seed=r) for r in range(2)]
    sampled = [policy(obs, seed=r, key=jax.random.key(3), deterministic=False) for r in range(2)]
    np.testing.assert_array_equal(sampled[0], greedy[0])  # eps = 0: exactly greedy
    agree = float(np.mean(sampled[1] == greedy[1]))  # eps = 1: a coin flip
    assert 0.35 < agree < 0.65, agree
    # The same through the evaluation library: run 1 (random) scores far below run 0.
    from agents.evaluation import evaluate

    result = evaluate(policy, "CartPole-v1", episodes=16, deterministic=False)
    assert result.per_seed_mean()[1] < 40.0
