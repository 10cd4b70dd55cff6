"""Stable-Baselines3 on the Gymnasium bridge, along SB3's default path: its env checker,
``make_vec_env`` (which asks for ``render_mode="rgb_array"``) and a short PPO run (which writes
into the reward array it gets back)."""

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)

sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env


@pytest.mark.parametrize("env_id", ["rlkit/CartPole-v1", "rlkit/Pendulum-v1"])
def test_sb3_env_checker_passes(env_id):
    check_env(gymnasium.make(env_id), warn=True)  # raises on any contract violation


def test_make_vec_env_default_path_renders_and_returns_writable_arrays():
    pytest.importorskip("pygame")
    venv = make_vec_env("rlkit/CartPole-v1", n_envs=2, seed=0)
    assert venv.render_mode == "rgb_array"  # what make_vec_env passes by default
    obs = venv.reset()
    assert obs.shape == (2, 4) and obs.flags.writeable
    obs, rewards, _dones, _infos = venv.step(np.array([0, 1]))
    rewards[0] += 1.0
    assert rewards[0] == 2.0
    frames = venv.get_images()
    assert len(frames) == 2 and frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8
    venv.close()


def test_ppo_runs_a_few_hundred_steps():
    venv = make_vec_env("rlkit/CartPole-v1", n_envs=2, seed=0)
    model = sb3.PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    # Truncated episodes are bootstrapped: SB3 adds gamma * V(final obs) to the reward array in
    # place, which needs writable rewards. A 20-step limit makes sure it happens.
    venv = make_vec_env("rlkit/CartPole-v1", n_envs=2, seed=1, env_kwargs={"max_episode_steps": 20})
    model = sb3.PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert model.num_timesteps == 128
