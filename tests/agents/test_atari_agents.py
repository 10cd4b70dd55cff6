"""Atari in the agents: the Nature-DQN torso of the presets, reward clipping, unrolled updates,
uint8 replay, and a tiny train.py run on ALE/Breakout-v5 (host backend)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
from agents.base import Transition, training_rewards
from agents.networks import CNN, ActorCritic, conv_spec
from agents.presets import ATARI_IDS
from envs.core import Box, Discrete

ATARI_OBS = Box(0, 255, (84, 84, 4), dtype=np.uint8)


@pytest.mark.parametrize("name", ["ppo", "dqn", "impala"])
def test_atari_presets_use_the_nature_cnn_and_reward_clipping(name):
    cls = agents.get_agent(name)
    for env_id in ("ALE/Breakout-v5", "ALE/Pong-v5"):
        assert env_id in ATARI_IDS
        config = cls.default_config(env_id)
        assert config.sign_rewards and config.unroll_updates and config.num_envs == 8
        spec = conv_spec(config, ATARI_OBS)
        assert (spec.channels, spec.kernels, spec.strides, spec.dense) == (
            (32, 64, 64), (8, 4, 3), (4, 2, 1), 512
        )
        assert spec.scale == pytest.approx(1 / 255)
    ppo = agents.get_agent("ppo").default_config("ALE/Breakout-v5")
    assert (ppo.rollout_length, ppo.num_epochs, ppo.num_minibatches) == (128, 4, 4)
    assert (ppo.learning_rate, ppo.clip_eps) == (2.5e-4, 0.1)


def test_nature_cnn_shapes_and_uint8_scaling():
    config = agents.get_agent("ppo").default_config("ALE/Breakout-v5")
    spec = conv_spec(config, ATARI_OBS)
    obs = np.random.default_rng(0).integers(0, 256, (3, 84, 84, 4)).astype(np.uint8)
    net = ActorCritic(action_dim=4, conv=spec)
    # Shapes only (the orthogonal init of the 3136 x 512 layer takes seconds on a CPU).
    params = jax.eval_shape(net.init, jax.random.PRNGKey(0), obs)
    logits, value = jax.eval_shape(net.apply, params, obs)
    assert logits.shape == (3, 4) and value.shape == (3,)
    kernels = [p["kernel"].shape for p in params["params"]["torso"].values()]
    assert kernels == [(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64), (7 * 7 * 64, 512)]
    # uint8 frames are scaled to [0, 1] inside the network: the same as float frames / 255
    # (a narrow dense layer, so the init is quick).
    narrow = dataclasses.replace(spec, dense=8)
    tp = jax.jit(CNN(narrow).init)(jax.random.PRNGKey(0), obs)
    unscaled = CNN(dataclasses.replace(narrow, scale=1.0))
    np.testing.assert_allclose(
        CNN(narrow).apply(tp, obs),
        unscaled.apply(tp, obs.astype(np.float32) / 255.0),
        atol=1e-5,
    )


def test_sign_rewards_clip_what_is_learned_not_the_input():
    config = agents.get_agent("ppo").default_config("ALE/Breakout-v5")
    r = jnp.array([0.0, 4.0, -7.5, 1.0, 0.25])
    np.testing.assert_array_equal(training_rewards(config, r), [0.0, 1.0, -1.0, 1.0, 1.0])
    plain = agents.get_agent("ppo").default_config("CartPole-v1")
    np.testing.assert_array_equal(training_rewards(plain, r), r)


def _image_rollout(t, n, shape, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, (t, n) + shape).astype(np.uint8)
    return Transition(
        obs=obs,
        action=rng.integers(0, 3, (t, n)).astype(np.int32),
        reward=rng.choice([0.0, 1.0, 4.0], (t, n)).astype(np.float32),
        terminated=np.zeros((t, n), bool),
        truncated=np.zeros((t, n), bool),
        next_obs=np.roll(obs, -1, axis=0),
        extras={},
    )


@pytest.mark.slow  # two PPO programs to compile (about 35 s on a loaded 2-core CPU)
def test_unrolled_updates_equal_the_scanned_ones():
    # A small image env, so both programs compile in seconds.
    space = Box(0, 255, (12, 12, 2), dtype=np.uint8)
    cls = agents.get_agent("ppo")
    small = {"cnn_channels": (4,), "cnn_kernels": (3,), "cnn_strides": (2,), "cnn_dense": 16,
             "num_envs": 2, "rollout_length": 8, "num_epochs": 2, "num_minibatches": 2,
             "total_timesteps": 64}
    agent = cls(space, Discrete(3))
    results = []
    for unroll in (False, True):
        config = cls.default_config(None, unroll_updates=unroll, **small)
        state = agent.init(config, jax.random.PRNGKey(0))
        rollout = _image_rollout(8, 2, space.shape)
        _, extras = jax.vmap(lambda o: agent.act(config, state, o, jax.random.PRNGKey(1)))(
            rollout.obs
        )
        rollout = rollout._replace(extras=extras)
        new_state, _ = jax.jit(lambda s, r: agent.update(config, s, r, jax.random.PRNGKey(2)))(
            state, rollout
        )
        results.append(new_state.params)
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_dqn_replay_keeps_uint8_frames():
    cls = agents.get_agent("dqn")
    config = cls.default_config(
        "ALE/Breakout-v5", buffer_size=64, num_envs=2, learning_starts=0, total_timesteps=1024
    )
    agent = cls(ATARI_OBS, Discrete(4))
    state = jax.eval_shape(lambda k: agent.init(config, k), jax.random.PRNGKey(0))
    frames = [x for x in jax.tree.leaves(state.buffer) if x.shape[-3:] == (84, 84, 4)]
    assert len(frames) == 2 and all(x.dtype == jnp.uint8 for x in frames)


def test_train_script_runs_ppo_on_breakout(tmp_path):
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from scripts import train as train_script

    out = str(tmp_path / "breakout")
    code = train_script.main([
        "--agent", "ppo", "--env", "ALE/Breakout-v5", "--total-timesteps", "256",
        "--num-envs", "2", "--rollout-length", "64", "--num-epochs", "1",
        "--num-minibatches", "2", "--cnn-dense", "32", "--eval-every", "0",
        "--eval-episodes", "0", "--quiet",
        "--out", out,
    ])
    assert code == 0
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["backend"] == "gymnasium" and config["config"]["sign_rewards"]
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["env_steps"]) == 256
    policy, env_id = agents.load_policy(out)
    assert env_id == "ALE/Breakout-v5"
    actions = policy(np.zeros((3, 84, 84, 4), np.uint8))
    assert actions.shape == (3,) and np.all((np.asarray(actions) >= 0) & (actions < 4))
