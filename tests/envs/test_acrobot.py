"""Acrobot-v1 against Gymnasium's numpy ``AcrobotEnv``: the RK4 integrator in float64, one float32
step from thousands of states, whole episodes (truncated and terminated), the start distribution,
angle wrapping and params vmapped for domain randomisation."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control import acrobot as gym_acrobot
from gymnasium.envs.classic_control.acrobot import AcrobotEnv

import envs
from envs.acrobot import Acrobot, AcrobotParams, AcrobotState, _rk4, _wrap

N_STATES = 2000
PI = np.pi


def _state(s: np.ndarray, time=0) -> AcrobotState:
    """A (possibly batched) state from float32 rows ``[theta1, theta2, dtheta1, dtheta2]``."""
    s = np.asarray(s, np.float32)
    return AcrobotState(
        time=jnp.full(s.shape[:-1], time, jnp.int32),
        theta1=jnp.asarray(s[..., 0]),
        theta2=jnp.asarray(s[..., 1]),
        dtheta1=jnp.asarray(s[..., 2]),
        dtheta2=jnp.asarray(s[..., 3]),
    )


def _rows(state: AcrobotState) -> np.ndarray:
    return np.stack([state.theta1, state.theta2, state.dtheta1, state.dtheta2], -1)


def _gym_step(gym_env: AcrobotEnv, s: np.ndarray, action: int):
    gym_env.state = np.asarray(s, np.float64)
    obs, reward, terminated, truncated, _ = gym_env.step(int(action))
    return obs, reward, terminated, truncated, np.array(gym_env.state)


def _sample_states(rng: np.random.Generator, n: int, speed: float) -> np.ndarray:
    """Angles anywhere; velocities up to ``speed`` times their clip values."""
    return np.stack(
        [
            rng.uniform(-PI, PI, n),
            rng.uniform(-PI, PI, n),
            rng.uniform(-4 * PI, 4 * PI, n) * speed,
            rng.uniform(-9 * PI, 9 * PI, n) * speed,
        ],
        axis=1,
    ).astype(np.float32)


def _step_both(states, actions, params=None):
    env = Acrobot()
    params = env.default_params if params is None else params
    keys = jax.random.split(jax.random.key(0), len(states))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    out = jax.device_get(step(keys, _state(states), jnp.asarray(actions), params))
    gym_env = AcrobotEnv()
    gym_env.reset(seed=0)
    ref = [_gym_step(gym_env, s, a) for s, a in zip(states, actions)]
    return out, ref


def test_integrator_in_float64_matches_gymnasium_to_1e_10():
    """The same RK4 and wrap, run in float64, agree with Gymnasium's to rounding, over the whole
    velocity box: any float32 gap below is precision, not a different formula."""
    rng = np.random.default_rng(1)
    states = _sample_states(rng, 300, speed=1.0).astype(np.float64)
    actions = rng.integers(0, 3, 300)
    gym_env = AcrobotEnv()
    with jax.enable_x64(True):
        torques = jnp.asarray(actions - 1.0, jnp.float64)
        ours = jax.jit(jax.vmap(_rk4, in_axes=(0, 0, None)))(
            jnp.asarray(states), torques, AcrobotParams()
        )
        assert ours.dtype == jnp.float64
        wrapped = np.asarray(jax.jit(_wrap, static_argnums=(1, 2))(ours[:, :2], -PI, PI))
    ours = np.asarray(ours)
    for i, (s, a) in enumerate(zip(states, actions)):
        ref = gym_acrobot.rk4(gym_env._dsdt, np.append(s, a - 1.0), [0, gym_env.dt])
        np.testing.assert_allclose(ours[i], ref, rtol=1e-10, atol=1e-10)
        ref_wrapped = [gym_acrobot.wrap(x, -PI, PI) for x in ref[:2]]
        np.testing.assert_allclose(wrapped[i], ref_wrapped, atol=1e-12)


@pytest.mark.parametrize(
    "x, expected",
    [(0.5, 0.5), (PI, PI), (-PI, -PI), (PI + 0.5, -PI + 0.5), (3 * PI + 0.5, -PI + 0.5),
     (-PI - 0.5, PI - 0.5), (-5 * PI - 0.5, PI - 0.5), (3 * PI, PI)],
)  # fmt: skip
def test_wrap_by_hand(x, expected):
    assert float(_wrap(jnp.float32(x), -PI, PI)) == pytest.approx(expected, abs=1e-5)
    assert gym_acrobot.wrap(x, -PI, PI) == pytest.approx(expected, abs=1e-12)


def test_one_step_parity_with_gymnasium_over_random_states():
    rng = np.random.default_rng(0)
    states = _sample_states(rng, N_STATES, speed=0.5)
    actions = rng.integers(0, 3, N_STATES).astype(np.int32)
    (obs, next_state, reward, terminated, truncated, _), ref = _step_both(states, actions)
    ref_obs = np.stack([r[0] for r in ref])
    ref_next = np.stack([r[4] for r in ref])

    assert obs.dtype == np.float32 and obs.shape == (N_STATES, 6)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-5)
    # Angles compared through sin/cos: a value within rounding of +-pi may wrap to either end.
    ours_next = _rows(next_state)
    np.testing.assert_allclose(np.cos(ours_next[:, :2]), np.cos(ref_next[:, :2]), atol=1e-5)
    np.testing.assert_allclose(np.sin(ours_next[:, :2]), np.sin(ref_next[:, :2]), atol=1e-5)
    assert (np.abs(ours_next[:, :2]) <= np.float32(PI)).all()
    np.testing.assert_allclose(ours_next[:, 2:], ref_next[:, 2:], rtol=1e-5, atol=1e-5)

    ref_terminated = np.array([r[2] for r in ref])
    height = -np.cos(ref_next[:, 0]) - np.cos(ref_next[:, 0] + ref_next[:, 1])
    agree = (terminated == ref_terminated) | (np.abs(height - 1.0) < 1e-5)
    assert agree.all(), np.flatnonzero(~agree)
    assert 0.1 * N_STATES < ref_terminated.sum() < 0.9 * N_STATES
    np.testing.assert_array_equal(reward, np.where(terminated, 0.0, -1.0))
    np.testing.assert_array_equal(reward[terminated == ref_terminated], [
        r[1] for r, same in zip(ref, terminated == ref_terminated) if same
    ])  # fmt: skip
    assert not truncated.any()


def test_one_step_parity_at_full_speed_within_float32_cancellation():
    """Up to the velocity clips the accelerations reach hundreds of rad/s^2 and cancel; float32
    then keeps about 4 significant digits of the velocities. The float64 test above shows the
    formula is Gymnasium's; this one bounds the float32 gap and checks the clips."""
    rng = np.random.default_rng(3)
    states = _sample_states(rng, N_STATES, speed=1.0)
    actions = rng.integers(0, 3, N_STATES).astype(np.int32)
    (obs, *_), ref = _step_both(states, actions)
    ref_obs = np.stack([r[0] for r in ref])
    np.testing.assert_allclose(obs[:, :4], ref_obs[:, :4], atol=1e-4)
    np.testing.assert_allclose(obs[:, 4:], ref_obs[:, 4:], rtol=1e-5, atol=2e-3)
    clipped = np.isclose(np.abs(ref_obs[:, 4:]), [4 * PI, 9 * PI])
    assert clipped.sum() > 100  # the clips are exercised...
    # ...and hit exactly.
    expected = np.float32([4 * PI, 9 * PI])[np.nonzero(clipped)[1]]
    np.testing.assert_array_equal(np.abs(obs[:, 4:])[clipped], expected)


def _pump(obs: np.ndarray) -> int:
    """Torque along the second joint's velocity: swings up and reaches the goal in ~100 steps."""
    return 2 if obs[5] > 0 else 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_terminating_episode_matches_gymnasium(seed):
    gym_env = gymnasium.make("Acrobot-v1")
    ref_obs, _ = gym_env.reset(seed=seed)
    start = gym_env.unwrapped.state.astype(np.float32)
    actions, ref = [], []
    for _ in range(500):
        actions.append(_pump(ref_obs))
        ref_obs, reward, terminated, truncated, _ = gym_env.step(actions[-1])
        ref.append((ref_obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    assert ref[-1][2] and len(ref) < 200

    env, params = envs.make("Acrobot-v1")
    np.testing.assert_array_equal(env.get_obs(_state(start)), gym_env.reset(seed=seed)[0])

    def body(s, a):
        obs, s, reward, terminated, truncated, _ = env.step(jax.random.key(0), s, a, params)
        return s, (obs, reward, terminated, truncated)

    _, (obs, reward, terminated, truncated) = jax.lax.scan(
        body, _state(start), jnp.asarray(actions, jnp.int32)
    )
    # A chaotic double pendulum: float32 and float64 drift apart slowly (1e-6 after 50 steps,
    # 1e-4 after 120), yet the episode ends on the same step with the same rewards.
    ref_obs = np.stack([r[0] for r in ref])
    np.testing.assert_allclose(obs[:50], ref_obs[:50], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-4, atol=2e-4)
    np.testing.assert_array_equal(reward, [r[1] for r in ref])
    assert reward[-1] == 0.0 and (reward[:-1] == -1.0).all()
    np.testing.assert_array_equal(terminated, [r[2] for r in ref])
    np.testing.assert_array_equal(truncated, [r[3] for r in ref])


def test_random_episode_is_truncated_at_500_like_gymnasium():
    gym_env = gymnasium.make("Acrobot-v1")
    gym_env.reset(seed=5)
    start = gym_env.unwrapped.state.astype(np.float32)
    actions = np.random.default_rng(5).integers(0, 3, 500).astype(np.int32)
    ref = [gym_env.step(int(a))[:4] for a in actions]

    env, params = envs.make("Acrobot-v1")

    def body(s, a):
        obs, s, reward, terminated, truncated, _ = env.step(jax.random.key(0), s, a, params)
        return s, (obs, reward, terminated, truncated)

    final, (obs, reward, terminated, truncated) = jax.lax.scan(
        body, _state(start), jnp.asarray(actions)
    )
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(reward, -1.0)
    assert not np.asarray(terminated).any() and not any(r[2] for r in ref)
    np.testing.assert_array_equal(truncated, [r[3] for r in ref])
    np.testing.assert_array_equal(truncated, np.arange(1, 501) == 500)
    assert int(final.time) == 500


def test_reset_distribution():
    env, params = envs.make("Acrobot-v1")
    keys = jax.random.split(jax.random.key(1), 10_000)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    s = _rows(state)
    assert s.dtype == np.float32
    assert (s >= -0.1).all() and (s < 0.1).all()
    np.testing.assert_array_less(0.099, s.max(0))
    np.testing.assert_array_less(s.min(0), -0.099)
    np.testing.assert_allclose(s.mean(0), 0.0, atol=4e-3)
    np.testing.assert_allclose(s.std(0), 0.2 / np.sqrt(12), rtol=0.03)
    np.testing.assert_array_equal(state.time, 0)
    np.testing.assert_allclose(obs[:, 0], np.cos(s[:, 0]), rtol=1e-6)
    np.testing.assert_allclose(obs[:, 3], np.sin(s[:, 1]), rtol=1e-6)
    np.testing.assert_array_equal(obs[:, 4:], s[:, 2:])


def test_vmap_over_params_matches_gymnasium_with_the_same_constants():
    rng = np.random.default_rng(4)
    n = 48
    mass1 = rng.uniform(0.5, 2.0, n).astype(np.float32)
    mass2 = rng.uniform(0.5, 2.0, n).astype(np.float32)
    length1 = rng.uniform(0.5, 1.5, n).astype(np.float32)
    moi = rng.uniform(0.5, 1.5, n).astype(np.float32)
    states = _sample_states(rng, n, speed=0.3)
    actions = rng.integers(0, 3, n).astype(np.int32)

    params = jax.tree.map(lambda v: jnp.full((n,), v), AcrobotParams()).replace(
        link_mass_1=jnp.asarray(mass1),
        link_mass_2=jnp.asarray(mass2),
        link_length_1=jnp.asarray(length1),
        link_moi=jnp.asarray(moi),
    )
    env = Acrobot()
    obs, *_ = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, 0)))(
        jax.random.key(0), _state(states), jnp.asarray(actions), params
    )
    ref = []
    for i in range(n):
        gym_env = AcrobotEnv()
        gym_env.LINK_MASS_1, gym_env.LINK_MASS_2 = float(mass1[i]), float(mass2[i])
        gym_env.LINK_LENGTH_1, gym_env.LINK_MOI = float(length1[i]), float(moi[i])
        ref.append(_gym_step(gym_env, states[i], actions[i])[0])
    np.testing.assert_allclose(obs, np.stack(ref), rtol=1e-5, atol=1e-5)
    default_obs, *_ = jax.vmap(env.step, in_axes=(None, 0, 0))(
        jax.random.key(0), _state(states), jnp.asarray(actions)
    )
    assert np.abs(np.asarray(default_obs) - np.stack(ref)).max() > 1e-2


def test_torque_noise_uses_the_key():
    env, params = envs.make("Acrobot-v1", torque_noise_max=0.5)
    _, state = env.reset(jax.random.key(0), params)
    keys = jax.random.split(jax.random.key(1), 64)
    step = jax.jit(env.step)
    obs, *_ = jax.vmap(step, in_axes=(0, None, None, None))(keys, state, jnp.int32(1), params)
    assert len(np.unique(np.asarray(obs[:, 5]))) == 64  # each key, a different torque
    same, *_ = step(keys[0], state, jnp.int32(1), params)
    np.testing.assert_allclose(same, obs[0], rtol=1e-6, atol=1e-7)
    # Without noise (Gymnasium's default) the key is ignored.
    _, default = envs.make("Acrobot-v1")
    a, *_ = step(keys[0], state, jnp.int32(1), default)
    b, *_ = step(keys[1], state, jnp.int32(1), default)
    np.testing.assert_array_equal(a, b)
    # Torques in (-0.5, 0.5) land strictly between the outcomes of torques -1 and +1.
    lo, *_ = step(keys[0], state, jnp.int32(0), default)
    hi, *_ = step(keys[0], state, jnp.int32(2), default)
    noisy = np.asarray(obs[:, 5])
    assert min(lo[5], hi[5]) < noisy.min() < a[5] < noisy.max() < max(lo[5], hi[5])
