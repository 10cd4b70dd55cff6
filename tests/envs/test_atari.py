"""envs.atari through envs.host: the standard preprocessing against Gymnasium's wrappers made by
hand, exact resume of a host Atari env, and the error when ale-py is missing."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation  # noqa: E402

from envs import atari, host  # noqa: E402
from rlkit.errors import RLKitError  # noqa: E402

ENV_ID = "ALE/Breakout-v5"


def _by_hand(seed):
    """The reference: ale-py's env at frameskip 1 under Gymnasium's own wrappers."""
    host.register_reference(ENV_ID)
    env = gymnasium.make(ENV_ID, frameskip=1)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    env = FrameStackObservation(env, 4)
    obs, _ = env.reset(seed=seed)
    return env, obs


def test_preprocessing_matches_gymnasium_wrappers_by_hand():
    ours = host.make_gymnasium(ENV_ID)
    assert ours.observation_space.shape == (84, 84, 4)
    assert ours.observation_space.dtype == np.uint8
    ref, ref_obs = _by_hand(seed=3)
    obs, _ = ours.reset(seed=3)
    np.testing.assert_array_equal(obs, np.moveaxis(ref_obs, 0, -1))
    actions = np.random.default_rng(0).integers(0, 4, 150)
    total = 0.0
    for a in actions:
        obs, r, te, tr, _ = ours.step(int(a))
        ref_obs, ref_r, ref_te, ref_tr, _ = ref.step(int(a))
        np.testing.assert_array_equal(obs, np.moveaxis(ref_obs, 0, -1))
        assert (r, te, tr) == (ref_r, ref_te, ref_tr)
        total += r
        if te or tr:
            break
    # The frames really move (the stack differs from its first frame) and rewards are raw.
    assert not np.array_equal(obs[..., 0], obs[..., -1]) or total > 0
    ours.close()
    ref.close()


def test_host_vec_env_steps_the_preprocessed_env_with_episode_seeds():
    with host.HostVecEnv(ENV_ID, 2, seed=5) as henv:
        assert henv.observation_space.shape == (84, 84, 4)
        obs = henv.reset()
        ref, ref_obs = _by_hand(host.episode_seed(5, 1, 0))
        np.testing.assert_array_equal(obs[1], np.moveaxis(ref_obs, 0, -1))
        for a in np.random.default_rng(1).integers(0, 4, 20):
            obs, reward, *_ = henv.step(np.array([0, a]))
            ref_obs, ref_r, *_ = ref.step(int(a))
            np.testing.assert_array_equal(obs[1], np.moveaxis(ref_obs, 0, -1))
            assert reward[1] == ref_r
        ref.close()


def test_host_atari_env_resumes_exactly_from_state_dict():
    rng = np.random.default_rng(2)
    with host.HostVecEnv(ENV_ID, 2, seed=7) as henv, host.HostVecEnv(ENV_ID, 2, seed=0) as other:
        henv.reset()
        for a in rng.integers(0, 4, (40, 2)):
            obs = henv.step(a)[0]
        state = henv.state_dict()
        other.reset()
        np.testing.assert_array_equal(other.load_state_dict(state), obs)
        for a in rng.integers(0, 4, (30, 2)):
            a_out, b_out = henv.step(a), other.step(a)
            for x, y in zip(a_out[:5], b_out[:5]):
                np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(
                a_out[5]["episode_return"], b_out[5]["episode_return"]
            )


def test_missing_ale_py_names_the_flag_and_the_extra(monkeypatch):
    real_import = host.importlib.import_module

    def no_ale(name, *args, **kwargs):
        if name == "ale_py":
            raise ImportError("No module named 'ale_py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(host.importlib, "import_module", no_ale)
    monkeypatch.setattr(host, "_in_registry", lambda env_id: False)
    monkeypatch.setattr(host, "_REGISTERED", set())
    with pytest.raises(RLKitError, match=r"--env: 'ALE/Pong-v5'.*pip install 'rlkit\[atari\]'"):
        host.HostVecEnv("ALE/Pong-v5", 1)
    # Other namespaces are untouched: a MinAtar id without minatar is just unknown.
    assert atari.is_atari_id("ALE/Pong-v5") and not atari.is_atari_id("MinAtar/Breakout-v1")
