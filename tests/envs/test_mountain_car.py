"""MountainCar-v0 and MountainCarContinuous-v0 against Gymnasium's numpy envs: hand-computed steps,
the left wall and the goal, one step from thousands of states, whole episodes (terminated and
truncated), the start distribution and params vmapped for domain randomisation."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv

import envs
from envs.mountain_car import (
    MountainCar,
    MountainCarContinuous,
    MountainCarContinuousParams,
    MountainCarParams,
    MountainCarState,
)

N_STATES = 2000
DISCRETE, CONTINUOUS = "MountainCar-v0", "MountainCarContinuous-v0"
GYM_CLASS = {DISCRETE: MountainCarEnv, CONTINUOUS: Continuous_MountainCarEnv}
GOAL = {DISCRETE: 0.5, CONTINUOUS: 0.45}


def _state(s: np.ndarray, time=0) -> MountainCarState:
    s = np.asarray(s, np.float32)
    return MountainCarState(
        time=jnp.full(s.shape[:-1], time, jnp.int32),
        position=jnp.asarray(s[..., 0]),
        velocity=jnp.asarray(s[..., 1]),
    )


def _gym_action(env_id, a):
    return int(a) if env_id == DISCRETE else np.asarray(a, np.float32)


def _gym_step(gym_env, env_id, s, a):
    gym_env.state = np.asarray(s, np.float64)
    obs, reward, terminated, truncated, _ = gym_env.step(_gym_action(env_id, a))
    return obs, reward, terminated, truncated


def _sample(env_id, rng, n):
    """States over the whole box, with a quarter at the left wall and a quarter at the goal."""
    s = np.stack([rng.uniform(-1.2, 0.6, n), rng.uniform(-0.07, 0.07, n)], 1)
    q = n // 4
    s[:q, 0] = rng.uniform(-1.2, -1.1, q)
    s[:q, 1] = rng.uniform(-0.07, 0.01, q)
    s[q : 2 * q, 0] = GOAL[env_id] + rng.uniform(-0.05, 0.02, q)
    s[q : 2 * q, 1] = rng.uniform(-0.01, 0.03, q)
    if env_id == DISCRETE:
        actions = rng.integers(0, 3, n).astype(np.int32)
    else:  # a third of the pushes beyond the [-1, 1] clip
        actions = rng.uniform(-1.5, 1.5, (n, 1)).astype(np.float32)
    return s.astype(np.float32), actions


@pytest.mark.parametrize(
    "state, action, expected_obs, terminated",
    [
        # v' = 0.001 - 0.0025 cos(-1.5) = 0.000823157..., x' = -0.5 + v'
        ([-0.5, 0.0], 2, [-0.49917684, 0.00082315702], False),
        # At the valley floor x = -pi/6 gravity vanishes: no push, no motion.
        ([-np.pi / 6, 0.0], 1, [-np.pi / 6, 0.0], False),
        # Into the left wall: position clipped to -1.2 and the velocity zeroed.
        ([-1.19, -0.05], 0, [-1.2, 0.0], False),
        # Over the goal moving right: terminated.
        ([0.49, 0.02], 1, [0.49 + 0.02 - 0.0025 * np.cos(1.47), 0.02 - 0.0025 * np.cos(1.47)], True),
        # Past the goal but moving left: not terminated (velocity must be >= 0).
        ([0.51, -0.001], 1, [0.51 - 0.001 - 0.0025 * np.cos(1.53), -0.001 - 0.0025 * np.cos(1.53)],
         False),
    ],
)  # fmt: skip
def test_discrete_step_by_hand(state, action, expected_obs, terminated):
    env = MountainCar()
    obs, _, reward, term, trunc, info = env.step(
        jax.random.key(0), _state(state), jnp.int32(action)
    )
    np.testing.assert_allclose(obs, expected_obs, rtol=1e-6, atol=1e-9)
    assert (float(reward), bool(term), bool(trunc), info) == (-1.0, terminated, False, {})
    ref = _gym_step(MountainCarEnv(), DISCRETE, state, action)
    np.testing.assert_allclose(obs, ref[0], rtol=1e-6, atol=1e-9)
    assert (ref[1], ref[2]) == (-1.0, terminated)


@pytest.mark.parametrize(
    "action, push, reward",
    [(0.5, 0.5, -0.025), (-1.0, -1.0, -0.1), (3.0, 1.0, -0.9), (-2.0, -1.0, -0.4)],
)
def test_continuous_clips_the_push_but_charges_the_action(action, push, reward):
    env = MountainCarContinuous()
    state = _state([-np.pi / 6, 0.0])  # valley floor: only the push moves the car
    obs, _, r, term, _, _ = env.step(jax.random.key(0), state, jnp.asarray([action], jnp.float32))
    np.testing.assert_allclose(obs[1], push * 0.0015, rtol=1e-5, atol=1e-10)
    assert float(r) == pytest.approx(reward, rel=1e-6) and not bool(term)
    ref = _gym_step(Continuous_MountainCarEnv(), CONTINUOUS, [-np.pi / 6, 0.0], [action])
    assert ref[1] == pytest.approx(reward, rel=1e-6)


def test_continuous_goal_reward():
    env = MountainCarContinuous()
    _, _, r, term, _, _ = env.step(
        jax.random.key(0), _state([0.44, 0.03]), jnp.asarray([0.5], jnp.float32)
    )
    assert bool(term) and float(r) == pytest.approx(100.0 - 0.025, rel=1e-7)


@pytest.mark.parametrize("env_id", [DISCRETE, CONTINUOUS])
def test_one_step_parity_with_gymnasium_over_random_states(env_id):
    rng = np.random.default_rng(0)
    states, actions = _sample(env_id, rng, N_STATES)
    env, params = envs.make(env_id)
    keys = jax.random.split(jax.random.key(0), N_STATES)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, next_state, reward, terminated, truncated, _ = jax.device_get(
        step(keys, _state(states), jnp.asarray(actions), params)
    )
    gym_env = GYM_CLASS[env_id]()
    gym_env.reset(seed=0)
    ref = [_gym_step(gym_env, env_id, s, a) for s, a in zip(states, actions)]
    ref_obs = np.stack([r[0] for r in ref])
    ref_reward = np.array([r[1] for r in ref])
    ref_terminated = np.array([r[2] for r in ref])

    assert obs.dtype == np.float32 and obs.shape == (N_STATES, 2)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.stack([next_state.position, next_state.velocity], 1), obs)
    np.testing.assert_allclose(reward, ref_reward, rtol=1e-5, atol=1e-6)
    ambiguous = (np.abs(ref_obs[:, 0] - GOAL[env_id]) < 1e-6) | (np.abs(ref_obs[:, 1]) < 1e-7)
    agree = (terminated == ref_terminated) | ambiguous
    assert agree.all(), np.flatnonzero(~agree)
    # The sample reaches the goal, hits the wall and stops there.
    assert 0.05 * N_STATES < ref_terminated.sum() < 0.5 * N_STATES
    at_wall = ref_obs[:, 0] == np.float32(-1.2)
    assert at_wall.sum() > 100 and (obs[at_wall, 1] == 0).all()
    assert not truncated.any()


def _pump(env_id, obs):
    """Push along the velocity: reaches the goal in about 100 steps."""
    if env_id == DISCRETE:
        return 2 if obs[1] >= 0 else 0
    return np.asarray([1.5 if obs[1] >= 0 else -1.5], np.float32)  # beyond the clip


def _scan_episode(env_id, start, actions):
    env, params = envs.make(env_id)

    def body(s, a):
        obs, s, reward, terminated, truncated, _ = env.step(jax.random.key(0), s, a, params)
        return s, (obs, reward, terminated, truncated)

    actions = jnp.asarray(np.asarray(actions), jnp.int32 if env_id == DISCRETE else jnp.float32)
    final, out = jax.lax.scan(body, _state(start), actions)
    return final, jax.device_get(out)


@pytest.mark.parametrize("env_id", [DISCRETE, CONTINUOUS])
@pytest.mark.parametrize("seed", [0, 1])
def test_terminating_episode_matches_gymnasium(env_id, seed):
    gym_env = gymnasium.make(env_id)
    ref_obs, _ = gym_env.reset(seed=seed)
    start = np.asarray(gym_env.unwrapped.state, np.float32)
    actions, ref = [], []
    while True:
        actions.append(_pump(env_id, ref_obs))
        ref_obs, reward, terminated, truncated, _ = gym_env.step(actions[-1])
        ref.append((ref_obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    assert ref[-1][2] and len(ref) < 200
    _, (obs, reward, terminated, truncated) = _scan_episode(env_id, start, actions)
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reward, [r[1] for r in ref], rtol=1e-6)
    np.testing.assert_array_equal(terminated, [r[2] for r in ref])
    np.testing.assert_array_equal(truncated, [r[3] for r in ref])


@pytest.mark.parametrize("env_id, limit", [(DISCRETE, 200), (CONTINUOUS, 999)])
def test_random_episode_is_truncated_at_the_limit_like_gymnasium(env_id, limit):
    gym_env = gymnasium.make(env_id)
    gym_env.reset(seed=7)
    start = np.asarray(gym_env.unwrapped.state, np.float32)
    rng = np.random.default_rng(7)
    if env_id == DISCRETE:
        actions = rng.integers(0, 3, limit).astype(np.int32)
    else:
        actions = rng.uniform(-1.0, 1.0, (limit, 1)).astype(np.float32)
    ref = [gym_env.step(_gym_action(env_id, a))[:4] for a in actions]
    final, (obs, reward, terminated, truncated) = _scan_episode(env_id, start, actions)
    # Rounding differences accumulate to about 7e-6 in position over 999 steps.
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reward, [r[1] for r in ref], rtol=1e-5, atol=1e-7)
    assert not terminated.any() and not any(r[2] for r in ref)
    np.testing.assert_array_equal(truncated, [r[3] for r in ref])
    np.testing.assert_array_equal(truncated, np.arange(1, limit + 1) == limit)
    assert int(final.time) == limit


@pytest.mark.parametrize("env_id", [DISCRETE, CONTINUOUS])
def test_reset_distribution(env_id):
    env, params = envs.make(env_id)
    keys = jax.random.split(jax.random.key(1), 10_000)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    pos = np.asarray(state.position)
    assert pos.dtype == np.float32
    assert (pos >= -0.6).all() and (pos < -0.4).all()
    assert pos.min() < -0.599 and pos.max() > -0.401
    assert abs(pos.mean() + 0.5) < 2e-3
    np.testing.assert_allclose(pos.std(), 0.2 / np.sqrt(12), rtol=0.03)
    np.testing.assert_array_equal(state.velocity, 0.0)
    np.testing.assert_array_equal(obs, np.stack([pos, np.zeros_like(pos)], 1))


@pytest.mark.parametrize("env_id", [DISCRETE, CONTINUOUS])
def test_vmap_over_params_matches_gymnasium_with_the_same_constants(env_id):
    rng = np.random.default_rng(5)
    n = 64
    states, actions = _sample(env_id, rng, n)
    if env_id == DISCRETE:
        fields = {"force": (0.0005, 0.002), "gravity": (0.001, 0.004)}
        params = MountainCarParams()
    else:  # Gymnasium's continuous car hard-codes its gravity; vary what it lets us set
        fields = {"power": (0.0005, 0.003), "goal_position": (0.3, 0.5)}
        params = MountainCarContinuousParams()
    values = {k: rng.uniform(lo, hi, n).astype(np.float32) for k, (lo, hi) in fields.items()}
    params = jax.tree.map(lambda v: jnp.full((n,), v), params).replace(
        **{k: jnp.asarray(v) for k, v in values.items()}
    )
    env = envs.make(env_id)[0]
    obs, _, reward, terminated, *_ = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, 0)))(
        jax.random.key(0), _state(states), jnp.asarray(actions), params
    )
    ref = []
    for i in range(n):
        gym_env = GYM_CLASS[env_id]()
        for k, v in values.items():
            setattr(gym_env, k, float(v[i]))
        ref.append(_gym_step(gym_env, env_id, states[i], actions[i]))
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(reward, [r[1] for r in ref], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(terminated, [r[2] for r in ref])
    default_obs, *_ = jax.vmap(env.step, in_axes=(None, 0, 0))(
        jax.random.key(0), _state(states), jnp.asarray(actions)
    )
    assert np.abs(np.asarray(default_obs) - np.stack([r[0] for r in ref])).max() > 1e-4
