"""Tests for envs.gymnax_compat: the gymnax view of rlkit envs (contract by hand, then against
gymnax itself where installed) and gymnax envs as rlkit envs."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import gymnax_compat
from rlkit.errors import RLKitError

THETA_LIMIT = 12 * 2 * math.pi / 360


def _gymnax_loop(env, params, key, num_envs, steps, legacy):
    """A PureJaxRL-style loop written against gymnax's API only: vmapped reset and step, in a
    scan, random actions. Returns the per-step obs, reward, done and info, batched."""
    key, key_reset = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(key_reset, num_envs), params
    )
    n = env.action_space(params).n

    def body(carry, key):
        obs, state = carry
        key_act, key_step = jax.random.split(key)
        action = jax.random.randint(key_act, (num_envs,), 0, n)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key_step, num_envs), state, action, params
        )
        if legacy:
            next_obs, next_state, reward, done, info = out
        else:
            next_obs, next_state, reward, terminated, truncated, info = out
            done = jnp.logical_or(terminated, truncated)
        return (next_obs, next_state), (obs, next_obs, reward, done, info)

    _, traj = jax.lax.scan(body, (obs, state), jax.random.split(key, steps))
    return jax.tree.map(np.asarray, traj)


# ------------------------------------------------------------------------------------------------
# The contract, by hand (no gymnax needed)
# ------------------------------------------------------------------------------------------------


def test_plain_rlkit_step_never_resets_which_is_what_gymnax_loops_trip_over():
    env, params = envs.make("CartPole-v1")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    flags = []
    for t in range(60):
        obs, state, _reward, terminated, _truncated, _ = env.step(None, state, 1, params)
        flags.append(bool(terminated))
    first = flags.index(True)
    assert all(flags[first:]) and abs(obs[2]) > 3 * THETA_LIMIT  # the pole kept falling


@pytest.mark.parametrize("legacy", [False, True])
def test_view_resets_inside_step_and_keeps_the_final_observation(legacy):
    view, params = envs.make_gymnax("CartPole-v1", legacy=legacy, max_episode_steps=30)
    assert isinstance(view, gymnax_compat.GymnaxView) and view.name == "CartPole-v1"
    assert view.num_actions == 2 and view.action_space(params).n == 2
    assert view.observation_space(params).shape == (4,)
    traj = _gymnax_loop(view, params, jax.random.PRNGKey(1), 8, 300, legacy)
    _obs, next_obs, reward, done, info = traj
    final = info["final_observation"]
    np.testing.assert_array_equal(info["final_obs"], final)
    assert done.sum() >= 8 * 300 / 30  # at least one end per 30 steps
    terminated, truncated = info["terminated"], info["truncated"]
    np.testing.assert_array_equal(done, terminated | truncated)
    assert truncated.any() and terminated.any()
    np.testing.assert_array_equal(info["discount"], 1.0 - terminated)
    np.testing.assert_array_equal(reward, 1.0)
    # Where an episode ended: the returned obs starts a new episode; the final obs is the end.
    assert np.all(np.abs(next_obs[done]) <= 0.05)
    theta_end = final[terminated][:, 2]
    x_end = final[terminated][:, 0]
    assert np.all((np.abs(theta_end) > THETA_LIMIT) | (np.abs(x_end) > 2.4))
    # Elsewhere the final obs is the returned obs, and no obs is past the termination bounds.
    np.testing.assert_array_equal(final[~done], next_obs[~done])
    assert np.all(np.abs(next_obs[..., 2]) <= THETA_LIMIT)
    # Episode lengths: steps between ends; none reaches past the limit of 30.
    for i in range(8):
        ends = np.flatnonzero(done[:, i])
        assert np.all(np.diff(ends) <= 30)
        np.testing.assert_array_equal(truncated[ends, i], np.diff(np.r_[-1, ends]) == 30)


def test_view_step_env_does_not_reset_and_legacy_done_includes_the_time_limit():
    for legacy in (False, True):
        view, params = envs.make_gymnax("CartPole-v1", legacy=legacy, max_episode_steps=3)
        _, state = view.reset(jax.random.PRNGKey(0), params)
        for _ in range(3):
            _obs, state, _reward, ended, info = view.step_env(None, state, 0, params)
        assert bool(info["truncated"]) and not bool(info["terminated"])
        assert bool(ended) == legacy  # gymnax < 1.0: done includes the time limit
        assert int(state.time) == 3


def test_gymnax_view_errors():
    with pytest.raises(RLKitError, match="env"):
        envs.gymnax_view("CartPole-v1")
    env, _ = envs.make("CartPole-v1")
    with pytest.raises(RLKitError, match="legacy"):
        envs.gymnax_view(env, legacy="yes")
    with pytest.raises(RLKitError, match="gymnax:<id>"):
        envs.make("nosuchsuite:CartPole-v1")


# ------------------------------------------------------------------------------------------------
# Against gymnax
# ------------------------------------------------------------------------------------------------


def test_view_runs_gymnax_code_like_gymnax():
    gymnax = pytest.importorskip("gymnax")
    genv, gparams = gymnax.make("CartPole-v1")
    legacy = (
        len(
            jax.eval_shape(
                genv.step,
                jax.random.PRNGKey(0),
                genv.reset(jax.random.PRNGKey(0), gparams)[1],
                0,
                gparams,
            )
        )
        == 5
    )
    view, params = envs.make_gymnax("CartPole-v1", legacy=legacy)
    assert view.num_actions == genv.num_actions
    assert view.observation_space(params).shape == genv.observation_space(gparams).shape
    assert view.action_space(params).n == genv.action_space(gparams).n
    ours = _gymnax_loop(view, params, jax.random.PRNGKey(2), 16, 400, legacy)
    theirs = _gymnax_loop(genv, gparams, jax.random.PRNGKey(2), 16, 400, legacy)
    for a, b in zip(ours[:4], theirs[:4]):
        assert a.shape == b.shape and a.dtype.kind == b.dtype.kind
    # Random play: the same distribution of episode lengths (about 22 steps), and every
    # post-episode obs a fresh start, on both.
    lengths = []
    for done in (ours[3], theirs[3]):
        ends = [np.diff(np.r_[-1, np.flatnonzero(done[:, i])]) for i in range(16)]
        lengths.append(np.concatenate(ends))
    assert len(lengths[0]) > 200 and len(lengths[1]) > 200
    assert abs(lengths[0].mean() - lengths[1].mean()) < 0.15 * lengths[1].mean()
    for obs_after, done in ((ours[1], ours[3]), (theirs[1], theirs[3])):
        assert np.all(np.abs(obs_after[done]) <= 0.05)


def test_view_physics_matches_gymnax_step_env():
    gymnax = pytest.importorskip("gymnax")
    genv, gparams = gymnax.make("CartPole-v1")
    view, params = envs.make_gymnax("CartPole-v1")
    rng = np.random.default_rng(0)
    for _ in range(40):
        x = rng.uniform(-0.2, 0.2, 4).astype(np.float32)
        action = int(rng.integers(2))
        _, g_state = genv.reset(jax.random.PRNGKey(0), gparams)
        g_state = g_state.replace(x=x[0], x_dot=x[1], theta=x[2], theta_dot=x[3])
        _, state = view.reset(jax.random.PRNGKey(0), params)
        state = state.replace(x=x[0], x_dot=x[1], theta=x[2], theta_dot=x[3])
        g_obs, _, _, g_done, _ = genv.step_env(jax.random.PRNGKey(0), g_state, action, gparams)
        obs, _, _, terminated, _ = view.step_env(jax.random.PRNGKey(0), state, action, params)
        np.testing.assert_allclose(obs, g_obs, rtol=1e-5, atol=1e-7)
        assert bool(terminated) == bool(g_done)


def test_from_gymnax_keeps_termination_and_truncation_apart():
    gymnax = pytest.importorskip("gymnax")
    genv, gparams = gymnax.make("CartPole-v1")
    env, params = envs.from_gymnax("CartPole-v1")
    assert isinstance(env, gymnax_compat.GymnaxEnv) and env.name == "gymnax:CartPole-v1"
    assert params.max_episode_steps == 500 and params.inner == gparams
    assert env.action_space(params).n == 2
    assert env.observation_space(params).shape == (4,)
    made, made_params = envs.make("gymnax:CartPole-v1", max_episode_steps=7)
    assert isinstance(made, gymnax_compat.GymnaxEnv) and made_params.max_episode_steps == 7
    # Non-resetting steps, bit for bit gymnax's jitted step_env; pushing right ends the episode.
    obs, state = env.reset(jax.random.PRNGKey(3), params)
    g_state = state
    step, g_step = jax.jit(env.step), jax.jit(genv.step_env)
    for t in range(40):
        obs, state, reward, terminated, truncated, _ = step(None, state, 1, params)
        g_obs, g_state, _, g_done, _ = g_step(None, g_state, 1, gparams)
        np.testing.assert_array_equal(obs, g_obs)
        assert reward.dtype == jnp.float32 and not bool(truncated)
        assert bool(terminated) == bool(g_done)
        if terminated:
            break
    assert bool(terminated) and int(state.time) == t + 1 < 40
    # The time limit truncates without terminating.
    obs, state = made.reset(jax.random.PRNGKey(4), made_params)
    flags = []
    for t in range(7):
        obs, state, _, terminated, truncated, _ = made.step(None, state, t % 2, made_params)
        flags.append((bool(terminated), bool(truncated)))
    assert flags == [(False, False)] * 6 + [(False, True)]
    # rlkit's autoreset stack runs it: final obs kept, statistics counted.
    venv, vparams = envs.wrappers.make_vec("gymnax:CartPole-v1", 4, max_episode_steps=10)
    obs, vstate = venv.reset(jax.random.PRNGKey(5), vparams)
    ends = 0
    for t in range(25):
        obs, vstate, _, _te, _tr, info = venv.step(
            jax.random.PRNGKey(t), vstate, jnp.full((4,), t % 2), vparams
        )
        ends += int(info["returned_episode"].sum())
        assert np.all(np.asarray(info["episode_length"]) <= 10)
    assert ends >= 8


def test_train_py_trains_and_evaluates_on_a_gymnax_env(tmp_path):
    """``train.py --env gymnax:<id>`` runs compiled on the adapter (no Gymnasium env exists for
    it), and the final evaluation runs on that same env (backend jax)."""
    pytest.importorskip("gymnax")
    from scripts import train as train_script  # the layer rule allows tests -> scripts

    out = str(tmp_path / "run")
    argv = [
        "--agent", "ppo", "--env", "gymnax:CartPole-v1", "--total-timesteps", "1024",
        "--num-envs", "4", "--rollout-length", "32", "--eval-every", "0",
        "--final-policy", "last", "--eval-episodes", "3", "--quiet", "--out", out,
    ]  # fmt: skip
    assert train_script.main(argv) == 0
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["backend"] == "jax" and summary["env"] == "gymnax:CartPole-v1"
    assert summary["eval"]["backend"] == "jax" and summary["eval"]["episodes"] == 3
    assert 1 <= summary["eval"]["mean"] <= 500

