"""Pendulum-v1 against Gymnasium's numpy ``PendulumEnv``: hand-computed steps, one step from
thousands of states, a whole (truncated) episode, the start distribution and params vmapped for
domain randomisation."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control import pendulum as gym_pendulum
from gymnasium.envs.classic_control.pendulum import PendulumEnv

import envs
from envs.pendulum import Pendulum, PendulumParams, PendulumState, angle_normalize

N_STATES = 2000
PI = np.pi


def _state(s: np.ndarray, time=0) -> PendulumState:
    s = np.asarray(s, np.float32)
    return PendulumState(
        time=jnp.full(s.shape[:-1], time, jnp.int32),
        theta=jnp.asarray(s[..., 0]),
        theta_dot=jnp.asarray(s[..., 1]),
    )


def _gym_step(gym_env, s, a):
    gym_env.state = np.asarray(s, np.float64)
    obs, reward, terminated, truncated, _ = gym_env.step(np.asarray(a, np.float32))
    return obs, reward, terminated, truncated, np.array(gym_env.state)


def _torque(u):
    return jnp.asarray([u], jnp.float32)


def test_one_step_by_hand():
    env = Pendulum()
    # Upright and still, full torque: cost 0.001 * 2^2; theta_dot' = 3 u dt = 0.3, theta' = 0.015.
    obs, state, reward, term, trunc, info = env.step(
        jax.random.key(0), _state([0.0, 0.0]), _torque(2.0)
    )
    np.testing.assert_allclose([state.theta, state.theta_dot], [0.015, 0.3], rtol=1e-6)
    np.testing.assert_allclose(obs, [np.cos(0.015), np.sin(0.015), 0.3], rtol=1e-6)
    assert float(reward) == pytest.approx(-0.004, rel=1e-6)
    assert (bool(term), bool(trunc), info, int(state.time)) == (False, False, {}, 1)
    # A torque beyond max_torque is clipped, in the dynamics and in the cost.
    _, clipped, r_clipped, *_ = env.step(jax.random.key(0), _state([0.0, 0.0]), _torque(5.0))
    assert float(clipped.theta_dot) == pytest.approx(0.3) and float(r_clipped) == float(reward)
    # Horizontal (theta = pi/2), no torque: cost (pi/2)^2, theta_dot' = 15 dt = 0.75.
    _, state, reward, *_ = env.step(jax.random.key(0), _state([PI / 2, 0.0]), _torque(0.0))
    assert float(state.theta_dot) == pytest.approx(0.75, rel=1e-6)
    assert float(reward) == pytest.approx(-((PI / 2) ** 2), rel=1e-6)
    # The speed clip: 7.9 + 0.75 would be 8.65.
    _, state, reward, *_ = env.step(jax.random.key(0), _state([PI / 2, 7.9]), _torque(0.0))
    assert float(state.theta_dot) == 8.0
    assert float(reward) == pytest.approx(-((PI / 2) ** 2 + 0.1 * 7.9**2), rel=1e-6)


def test_angle_normalize_matches_gymnasium():
    x = np.linspace(-20.0, 20.0, 4001).astype(np.float32)
    ours = np.asarray(angle_normalize(jnp.asarray(x)))
    ref = gym_pendulum.angle_normalize(x.astype(np.float64))
    # Equal as angles (a value within rounding of -pi may come out as +pi in one of them).
    np.testing.assert_allclose(np.cos(ours), np.cos(ref), atol=1e-5)
    np.testing.assert_allclose(np.sin(ours), np.sin(ref), atol=1e-5)
    assert (ours >= -np.float32(PI)).all() and (ours <= np.float32(PI)).all()
    assert float(angle_normalize(jnp.float32(3 * PI / 2))) == pytest.approx(-PI / 2, abs=1e-6)


def test_one_step_parity_with_gymnasium_over_random_states():
    rng = np.random.default_rng(0)
    # theta is never wrapped in the state, so sample several turns; speeds up to the clip and
    # torques a third beyond max_torque.
    states = np.stack([rng.uniform(-3 * PI, 3 * PI, N_STATES), rng.uniform(-8, 8, N_STATES)], 1)
    states = states.astype(np.float32)
    actions = rng.uniform(-3.0, 3.0, (N_STATES, 1)).astype(np.float32)
    env, params = envs.make("Pendulum-v1")
    keys = jax.random.split(jax.random.key(0), N_STATES)
    obs, next_state, reward, terminated, truncated, _ = jax.device_get(
        jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(
            keys, _state(states), jnp.asarray(actions), params
        )
    )
    gym_env = PendulumEnv()
    gym_env.reset(seed=0)
    ref = [_gym_step(gym_env, s, a) for s, a in zip(states, actions)]
    ref_next = np.stack([r[4] for r in ref])
    assert obs.dtype == np.float32 and obs.shape == (N_STATES, 3)
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(next_state.theta, ref_next[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(next_state.theta_dot, ref_next[:, 1], rtol=1e-5, atol=1e-5)
    # The cost's normalised angle jumps at +-pi, where float32 and float64 may land on either side.
    ref_reward = np.array([r[1] for r in ref])
    near_pi = np.abs(np.abs(gym_pendulum.angle_normalize(states[:, 0].astype(np.float64))) - PI)
    ok = np.isclose(reward, ref_reward, rtol=1e-5, atol=1e-5) | (near_pi < 1e-5)
    assert ok.all(), np.flatnonzero(~ok)
    assert (np.abs(ref_next[:, 1]) == 8.0).sum() > 50  # the speed clip is exercised
    assert not terminated.any() and not any(r[2] for r in ref)
    assert not truncated.any()


def test_episode_matches_gymnasium_and_is_truncated_at_200():
    gym_env = gymnasium.make("Pendulum-v1")
    gym_env.reset(seed=11)
    start = np.asarray(gym_env.unwrapped.state, np.float32)
    actions = np.random.default_rng(11).uniform(-2.0, 2.0, (200, 1)).astype(np.float32)
    ref = [gym_env.step(a)[:4] for a in actions]

    env, params = envs.make("Pendulum-v1")

    def body(s, a):
        obs, s, reward, terminated, truncated, _ = env.step(jax.random.key(0), s, a, params)
        return s, (obs, reward, terminated, truncated)

    final, (obs, reward, terminated, truncated) = jax.lax.scan(
        body, _state(start), jnp.asarray(actions)
    )
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(obs[:50], np.stack([r[0] for r in ref[:50]]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reward, [r[1] for r in ref], rtol=1e-4, atol=1e-4)
    assert not np.asarray(terminated).any()
    np.testing.assert_array_equal(truncated, [r[3] for r in ref])
    np.testing.assert_array_equal(truncated, np.arange(1, 201) == 200)
    assert int(final.time) == 200


def test_reset_distribution():
    env, params = envs.make("Pendulum-v1")
    keys = jax.random.split(jax.random.key(1), 10_000)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    theta, theta_dot = np.asarray(state.theta), np.asarray(state.theta_dot)
    assert theta.dtype == theta_dot.dtype == np.float32
    assert (np.abs(theta) <= np.float32(PI)).all() and (np.abs(theta_dot) <= 1.0).all()
    assert theta.min() < -3.13 and theta.max() > 3.13
    assert theta_dot.min() < -0.999 and theta_dot.max() > 0.999
    assert abs(theta.mean()) < 0.06 and abs(theta_dot.mean()) < 0.02  # 3.3 standard errors
    np.testing.assert_allclose(
        [theta.std(), theta_dot.std()], [2 * PI / np.sqrt(12), 2 / np.sqrt(12)], rtol=0.03
    )
    np.testing.assert_allclose(obs, np.stack([np.cos(theta), np.sin(theta), theta_dot], 1), 1e-6)


def test_vmap_over_params_matches_gymnasium_with_the_same_constants():
    rng = np.random.default_rng(6)
    n = 64
    values = {
        "g": rng.uniform(5.0, 15.0, n),
        "m": rng.uniform(0.5, 2.0, n),
        "l": rng.uniform(0.5, 2.0, n),
    }
    values = {k: v.astype(np.float32) for k, v in values.items()}
    states = np.stack([rng.uniform(-PI, PI, n), rng.uniform(-4, 4, n)], 1).astype(np.float32)
    actions = rng.uniform(-2.0, 2.0, (n, 1)).astype(np.float32)
    params = jax.tree.map(lambda v: jnp.full((n,), v), PendulumParams()).replace(
        **{k: jnp.asarray(v) for k, v in values.items()}
    )
    env = Pendulum()
    obs, _, reward, *_ = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, 0)))(
        jax.random.key(0), _state(states), jnp.asarray(actions), params
    )
    ref = []
    for i in range(n):
        gym_env = PendulumEnv(g=float(values["g"][i]))
        gym_env.m, gym_env.l = float(values["m"][i]), float(values["l"][i])
        ref.append(_gym_step(gym_env, states[i], actions[i]))
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reward, [r[1] for r in ref], rtol=1e-5, atol=1e-5)
    default_obs, *_ = jax.vmap(env.step, in_axes=(None, 0, 0))(
        jax.random.key(0), _state(states), jnp.asarray(actions)
    )
    assert np.abs(np.asarray(default_obs) - np.stack([r[0] for r in ref])).max() > 1e-2
