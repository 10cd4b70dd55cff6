"""envs.host: HostVecEnv against single Gymnasium envs, its replayable state, and the id helpers."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)
from envs import core, host
from rlkit.errors import RLKitError


def _reference_loop(env_id, num_envs, seed, actions):
    """Single Gymnasium envs stepped by hand: episode k of sub-env i reset with its episode seed."""
    envs_ = [gymnasium.make(env_id) for _ in range(num_envs)]
    episode = [0] * num_envs
    obs = np.stack([e.reset(seed=host.episode_seed(seed, i, 0))[0] for i, e in enumerate(envs_)])
    first_obs, steps = obs.copy(), []
    for a in actions:
        next_obs, final_obs = [], []
        rewards, terms, truncs = [], [], []
        for i, e in enumerate(envs_):
            o, r, te, tr, _ = e.step(a[i])
            final_obs.append(o)
            rewards.append(r)
            terms.append(te)
            truncs.append(tr)
            if te or tr:
                episode[i] += 1
                o = e.reset(seed=host.episode_seed(seed, i, episode[i]))[0]
            next_obs.append(o)
        steps.append(
            {
                "next_obs": np.stack(next_obs),
                "final_obs": np.stack(final_obs),
                "reward": np.array(rewards),
                "terminated": np.array(terms),
                "truncated": np.array(truncs),
            }
        )
    return first_obs, steps


def _check_host_against_reference(henv, env_id, seed, actions):
    obs = henv.reset()
    first_obs, ref = _reference_loop(env_id, henv.num_envs, seed, actions)
    np.testing.assert_array_equal(obs, first_obs)
    returns = np.zeros(henv.num_envs)
    lengths = np.zeros(henv.num_envs, int)
    boundaries = 0
    for t, a in enumerate(actions):
        next_obs, reward, terminated, truncated, final_obs, info = henv.step(a)
        for name, value in [
            ("next_obs", next_obs),
            ("final_obs", final_obs),
            ("reward", reward),
            ("terminated", terminated),
            ("truncated", truncated),
        ]:
            np.testing.assert_allclose(value, ref[t][name], rtol=1e-6, err_msg=f"{name} at {t}")
            assert value.flags.writeable, name
        assert reward.dtype == np.float32
        done = terminated | truncated
        returns += ref[t]["reward"]
        lengths += 1
        np.testing.assert_array_equal(info["returned_episode"], done)
        np.testing.assert_allclose(info["episode_return"], returns, rtol=1e-5)
        np.testing.assert_array_equal(info["episode_length"], lengths)
        np.testing.assert_array_equal(next_obs[~done], final_obs[~done])
        assert not np.any(np.all(next_obs[done] == final_obs[done], axis=-1))
        boundaries += done.sum()
        returns[done] = 0
        lengths[done] = 0
    return boundaries


def test_host_vec_env_cartpole_matches_single_envs():
    actions = np.random.default_rng(0).integers(0, 2, (70, 3))
    with host.HostVecEnv("CartPole-v1", 3, seed=11) as henv:
        assert henv.observation_space == gymnasium.make("CartPole-v1").observation_space
        assert henv.action_space == gymnasium.spaces.Discrete(2)
        assert _check_host_against_reference(henv, "CartPole-v1", 11, actions) >= 3


def test_host_vec_env_async_and_rlkit_ids():
    actions = np.random.default_rng(2).integers(0, 2, (40, 2))
    with host.HostVecEnv("CartPole-v1", 2, seed=4, vectorization_mode="async") as henv:
        assert _check_host_against_reference(henv, "CartPole-v1", 4, actions) >= 1
    with host.HostVecEnv("rlkit/CartPole-v1", 2, seed=9) as henv:
        first = henv.reset()
        np.testing.assert_array_equal(first, henv.reset())  # reset restarts episode 0
        assert _check_host_against_reference(henv, "rlkit/CartPole-v1", 9, actions) >= 1


def test_host_vec_env_lunar_lander():
    pytest.importorskip("Box2D")
    actions = np.random.default_rng(3).integers(0, 4, (160, 2))
    with host.HostVecEnv("LunarLander-v3", 2) as henv:
        assert henv.observation_space.shape == (8,) and henv.action_space.n == 4
        assert _check_host_against_reference(henv, "LunarLander-v3", 0, actions) >= 1


@pytest.mark.parametrize("env_id, n_actions", [("CartPole-v1", 2), ("Pendulum-v1", None)])
def test_state_dict_puts_a_new_env_exactly_where_the_old_one_is(env_id, n_actions):
    rng = np.random.default_rng(5)

    def act(n):
        if n_actions:
            return rng.integers(0, n_actions, (n,))
        return rng.uniform(-2.0, 2.0, (n, 1)).astype(np.float32)

    a = host.HostVecEnv(env_id, 3, seed=7)
    obs_a = a.reset()
    for _ in range(57):  # several CartPole episodes end on the way
        obs_a = a.step(act(3))[0]
    state = a.state_dict()
    b = host.HostVecEnv(env_id, 3, seed=0)
    np.testing.assert_array_equal(b.load_state_dict(state), obs_a)
    for _ in range(120):
        actions = act(3)
        out_a, out_b = a.step(actions), b.step(actions)
        for x, y in zip(out_a[:5], out_b[:5]):
            np.testing.assert_array_equal(x, y)
        for k in ("returned_episode", "episode_return", "episode_length"):
            np.testing.assert_array_equal(out_a[5][k], out_b[5][k])
    a.close()
    b.close()


def test_host_vec_env_errors():
    with pytest.raises(RLKitError, match="vectorization_mode"):
        host.HostVecEnv("CartPole-v1", 2, vectorization_mode="vector_entry_point")
    with pytest.raises(RLKitError, match="num_envs"):
        host.HostVecEnv("CartPole-v1", 0)
    with pytest.raises(RLKitError, match="Gymnasium env id"):
        host.HostVecEnv("CartPol-v1", 1)
    henv = host.HostVecEnv("CartPole-v1", 1)
    with pytest.raises(RLKitError, match="reset"):
        henv.step(np.array([0]))
    with pytest.raises(RLKitError, match="malformed"):
        henv.load_state_dict({"episode": [0]})
    henv.close()


def test_spaces_from_gymnasium_round_trip():
    for space in [
        gymnasium.spaces.Discrete(3, start=1),
        gymnasium.spaces.Box(-1.0, 2.0, (2, 3), np.float32),
        gymnasium.make("CartPole-v1").observation_space,
        gymnasium.spaces.Box(0, 255, (4,), np.uint8),
    ]:
        ours = host.spaces_from_gymnasium(space)
        assert isinstance(ours, (core.Discrete, core.Box))
        assert ours.to_gymnasium() == space
    with pytest.raises(RLKitError, match="space"):
        host.spaces_from_gymnasium(gymnasium.spaces.MultiDiscrete([2, 3]))


def test_env_id_helpers():
    assert host.gymnasium_id("CartPole-v1") == "rlkit/CartPole-v1"
    assert host.gymnasium_id("ns/Env-v0") == "rlkit/ns.Env-v0"
    assert host.rlkit_id("CartPole-v1") == "CartPole-v1"
    assert host.rlkit_id("rlkit/CartPole-v1") == "CartPole-v1"
    assert host.rlkit_id("LunarLander-v3") is None and host.rlkit_id("rlkit/Nope-v0") is None
    assert host.is_gymnasium_id("LunarLander-v3") and not host.is_gymnasium_id("Nope-v9")
    assert host.reward_threshold("rlkit/CartPole-v1") == 475.0
    assert host.reward_threshold("Acrobot-v1") == -100.0
    assert host.reward_threshold("Nope-v9") is None and host.reward_threshold(None) is None


def test_rlkit_id_inverts_gymnasium_id_for_ids_with_a_slash(monkeypatch):
    monkeypatch.setitem(core._REGISTRY, "TestSuite/Probe-v0", lambda: core.make("CartPole-v1")[0])
    assert host.gymnasium_id("TestSuite/Probe-v0") == "rlkit/TestSuite.Probe-v0"
    assert host.rlkit_id("rlkit/TestSuite.Probe-v0") == "TestSuite/Probe-v0"
