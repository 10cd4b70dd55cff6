"""CartPole-v1 against Gymnasium's numpy ``CartPoleEnv``: one step from thousands of states, whole
episodes, the start distribution, the termination boundary and params vmapped for domain
randomisation. The checks every classic-control env shares are in ``test_classic_control.py``."""

import math

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

import envs
from envs.cartpole import CartPole, CartPoleParams, CartPoleState

N_STATES = 2000
THETA_LIMIT = 12 * 2 * math.pi / 360


def _state(s: np.ndarray, time=0) -> CartPoleState:
    """A (possibly batched) state from float32 rows ``[x, x_dot, theta, theta_dot]``."""
    s = np.asarray(s, np.float32)
    return CartPoleState(
        time=jnp.full(s.shape[:-1], time, jnp.int32),
        x=jnp.asarray(s[..., 0]),
        x_dot=jnp.asarray(s[..., 1]),
        theta=jnp.asarray(s[..., 2]),
        theta_dot=jnp.asarray(s[..., 3]),
    )


def _rows(state: CartPoleState) -> np.ndarray:
    return np.stack([state.x, state.x_dot, state.theta, state.theta_dot], -1)


def _gym_step(gym_env: CartPoleEnv, s: np.ndarray, action: int):
    """Step Gymnasium's env from state ``s`` (float32 values, stepped in float64 by Gymnasium)."""
    gym_env.state = np.asarray(s, np.float64)
    gym_env.steps_beyond_terminated = None
    obs, reward, terminated, truncated, _ = gym_env.step(int(action))
    return obs, reward, terminated, truncated, gym_env.state.copy()


def _near_boundary(next_state: np.ndarray, tol: float = 1e-5) -> np.ndarray:
    """Where float32 and float64 may legitimately disagree about termination."""
    return (np.abs(np.abs(next_state[:, 0]) - 2.4) < tol) | (
        np.abs(np.abs(next_state[:, 2]) - THETA_LIMIT) < tol
    )


def _sample_states(rng: np.random.Generator, n: int) -> np.ndarray:
    """Broad states; a quarter with the cart at the edge, another quarter with the pole there."""
    s = np.stack(
        [
            rng.uniform(-2.6, 2.6, n),
            rng.uniform(-3.0, 3.0, n),
            rng.uniform(-0.25, 0.25, n),
            rng.uniform(-3.5, 3.5, n),
        ],
        axis=1,
    )
    sign = rng.choice([-1.0, 1.0], n)
    q = n // 4
    s[:q, 0] = sign[:q] * (2.4 + rng.uniform(-0.05, 0.05, q))
    s[q : 2 * q, 2] = sign[q : 2 * q] * (THETA_LIMIT + rng.uniform(-0.05, 0.05, q))
    return s.astype(np.float32)


def test_one_step_matches_hand_computed_values():
    # From rest with F = +10: temp = 10/1.1, theta_acc = -temp / (0.5 (4/3 - 0.1/1.1)) = -600/41,
    # x_acc = temp - 0.05 theta_acc / 1.1 = 400/41; Euler with tau = 0.02 moves only the velocities.
    env = CartPole()
    zero = _state(np.zeros(4))
    obs, state, reward, terminated, truncated, info = env.step(
        jax.random.key(0), zero, jnp.int32(1)
    )
    np.testing.assert_allclose(obs, [0.0, 8 / 41, 0.0, -12 / 41], rtol=1e-6)
    assert (reward, bool(terminated), bool(truncated), info) == (1.0, False, False, {})
    assert int(state.time) == 1
    obs, *_ = env.step(jax.random.key(0), zero, jnp.int32(0))
    np.testing.assert_allclose(obs, [0.0, -8 / 41, 0.0, 12 / 41], rtol=1e-6)


def test_one_step_parity_with_gymnasium_over_random_states():
    rng = np.random.default_rng(0)
    states = _sample_states(rng, N_STATES)
    actions = rng.integers(0, 2, N_STATES).astype(np.int32)

    env, params = envs.make("CartPole-v1")
    keys = jax.random.split(jax.random.key(0), N_STATES)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, next_state, reward, terminated, truncated, _ = jax.device_get(
        step(keys, _state(states), jnp.asarray(actions), params)
    )

    gym_env = CartPoleEnv()
    gym_env.reset(seed=0)
    ref = [_gym_step(gym_env, s, a) for s, a in zip(states, actions)]
    ref_obs = np.stack([r[0] for r in ref])
    ref_reward = np.array([r[1] for r in ref], np.float32)
    ref_terminated = np.array([r[2] for r in ref])
    ref_next = np.stack([r[4] for r in ref])

    assert obs.dtype == np.float32 and obs.shape == (N_STATES, 4)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-5)
    ours_next = _rows(next_state)
    np.testing.assert_allclose(ours_next, ref_next, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(reward, ref_reward)
    agree = (terminated == ref_terminated) | _near_boundary(ref_next)
    assert agree.all(), np.flatnonzero(~agree)
    # The sample must exercise both outcomes near the boundary, or the check above is weak.
    assert 0.2 * N_STATES < ref_terminated.sum() < 0.8 * N_STATES
    assert not truncated.any()
    np.testing.assert_array_equal(next_state.time, 1)


@pytest.mark.parametrize(
    "state, action, terminated",
    [
        ([2.39, 0.45, 0.0, 0.0], 1, False),  # x' = 2.399
        ([2.39, 0.55, 0.0, 0.0], 1, True),  # x' = 2.401
        ([-2.39, -0.55, 0.0, 0.0], 0, True),
        ([0.0, 0.0, THETA_LIMIT - 0.005, 0.2], 1, False),  # theta' = limit - 0.001
        ([0.0, 0.0, THETA_LIMIT - 0.005, 0.3], 1, True),  # theta' = limit + 0.001
        ([0.0, 0.0, -THETA_LIMIT + 0.005, -0.3], 0, True),
    ],
)
def test_termination_boundary(state, action, terminated):
    env = CartPole()
    _, _, reward, term, _, _ = env.step(jax.random.key(0), _state(state), jnp.int32(action))
    _, ref_reward, ref_term, _, _ = _gym_step(CartPoleEnv(), np.float32(state), action)
    assert bool(term) == ref_term == terminated
    assert float(reward) == ref_reward == 1.0  # +1 on the terminating step too


@pytest.mark.parametrize("seed", range(6))
def test_episode_matches_gymnasium_from_its_reset(seed):
    """Same start state, same random actions, whole episode: obs, rewards and the end step agree."""
    gym_env = gymnasium.make("CartPole-v1")
    ref_obs0, _ = gym_env.reset(seed=seed)
    env, params = envs.make("CartPole-v1")
    state = _state(gym_env.unwrapped.state.astype(np.float32))
    np.testing.assert_array_equal(env.get_obs(state), ref_obs0)

    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 2, 500).astype(np.int32)
    ref = []
    for a in actions:
        obs, reward, terminated, truncated, _ = gym_env.step(int(a))
        ref.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    n = len(ref)

    def body(s, a):
        obs, s, reward, terminated, truncated, _ = env.step(jax.random.key(0), s, a, params)
        return s, (obs, reward, terminated, truncated)

    _, (obs, reward, terminated, truncated) = jax.lax.scan(body, state, jnp.asarray(actions[:n]))
    # Float32 against float64 through unstable dynamics: the gap grows about 7x every 25 steps, so
    # it stays within 1e-5 over a random-action episode (tens of steps).
    np.testing.assert_allclose(obs, np.stack([r[0] for r in ref]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(reward, [r[1] for r in ref])
    np.testing.assert_array_equal(terminated, [r[2] for r in ref])
    np.testing.assert_array_equal(truncated, [r[3] for r in ref])
    assert ref[-1][2]  # random actions drop the pole well before the time limit


def _balance(obs: np.ndarray, rng: np.random.Generator) -> int:
    """A crude balancing controller with 10% random actions; it survives 500 steps."""
    if rng.random() < 0.1:
        return int(rng.integers(2))
    return int(obs[2] + 0.3 * obs[3] + 0.01 * obs[0] + 0.1 * obs[1] > 0)


def test_balanced_episode_is_truncated_at_500_like_gymnasium_time_limit():
    """Both envs run the same controller on their own observations for a whole 500-step episode."""
    gym_env = gymnasium.make("CartPole-v1")
    ref_obs, _ = gym_env.reset(seed=3)
    start = gym_env.unwrapped.state.astype(np.float32)
    rng = np.random.default_rng(3)
    ref_actions, ref_flags = [], []
    for _ in range(500):
        ref_actions.append(_balance(ref_obs, rng))
        ref_obs, _, ref_term, ref_trunc, _ = gym_env.step(ref_actions[-1])
        ref_flags.append((ref_term, ref_trunc))

    env, params = envs.make("CartPole-v1")
    step = jax.jit(env.step)
    state, obs = _state(start), env.get_obs(_state(start))
    rng = np.random.default_rng(3)
    flags = []
    for _ in range(500):
        action = _balance(np.asarray(obs), rng)
        obs, state, _, term, trunc, _ = step(jax.random.key(0), state, jnp.int32(action), params)
        flags.append((bool(term), bool(trunc)))
    # Truncated exactly at step 500, never terminated, in both.
    assert ref_flags == flags == [(False, False)] * 499 + [(False, True)]
    assert int(state.time) == 500

    # Open-loop replay of Gymnasium's actions: float32 and float64 part ways through the unstable
    # upright equilibrium (about 7x per 25 steps; a property of the physics, not a defect).
    def body(s, a):
        obs, s, *_ = env.step(jax.random.key(0), s, a, params)
        return s, obs

    gym_env.reset(seed=3)
    ref_obs = np.stack([gym_env.step(a)[0] for a in ref_actions[:100]])
    _, obs = jax.lax.scan(body, _state(start), jnp.asarray(ref_actions[:100], jnp.int32))
    gaps = np.abs(np.asarray(obs) - ref_obs).max(1)
    assert gaps[:75].max() < 1e-5
    assert gaps.max() < 1e-4


def test_reset_distribution():
    env, params = envs.make("CartPole-v1")
    keys = jax.random.split(jax.random.key(1), 10_000)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    obs = np.asarray(obs)
    assert obs.shape == (10_000, 4) and obs.dtype == np.float32
    assert (obs >= -0.05).all() and (obs < 0.05).all()
    np.testing.assert_array_less(obs.max(0), 0.05)
    np.testing.assert_array_less(0.0499, obs.max(0))
    np.testing.assert_array_less(obs.min(0), -0.0499)
    np.testing.assert_allclose(obs.mean(0), 0.0, atol=2e-3)  # std of the mean is 3e-4
    np.testing.assert_allclose(obs.std(0), 0.1 / math.sqrt(12), rtol=0.03)
    # Coordinates are not copies of one another.
    assert np.abs(np.corrcoef(obs.T) - np.eye(4)).max() < 0.05
    np.testing.assert_array_equal(state.time, 0)
    np.testing.assert_array_equal(_rows(state), obs)


def test_derived_constants_are_properties():
    params = CartPoleParams(masspole=0.3, length=0.7, masscart=2.0)
    assert params.total_mass == pytest.approx(2.3)
    assert params.polemass_length == pytest.approx(0.21)  # masspole * length, not masspole + length
    assert "total_mass" not in CartPoleParams.__dataclass_fields__
    assert "polemass_length" not in CartPoleParams.__dataclass_fields__


def test_vmap_over_params_matches_gymnasium_with_the_same_constants():
    """Domain randomisation: one vmapped step over 64 physics settings equals 64 Gymnasium envs."""
    rng = np.random.default_rng(2)
    n = 64
    masspole = rng.uniform(0.05, 0.5, n).astype(np.float32)
    length = rng.uniform(0.25, 1.0, n).astype(np.float32)
    masscart = rng.uniform(0.5, 2.0, n).astype(np.float32)
    gravity = rng.uniform(8.0, 12.0, n).astype(np.float32)
    force_mag = rng.uniform(5.0, 15.0, n).astype(np.float32)
    states = _sample_states(rng, n) * np.float32(0.5)
    actions = rng.integers(0, 2, n).astype(np.int32)

    env = CartPole()
    # Every field batched (shape (n,)); five of them vary.
    params = jax.tree.map(lambda v: jnp.full((n,), v), CartPoleParams()).replace(
        masspole=jnp.asarray(masspole),
        length=jnp.asarray(length),
        masscart=jnp.asarray(masscart),
        gravity=jnp.asarray(gravity),
        force_mag=jnp.asarray(force_mag),
    )
    step = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, 0)))
    obs, *_ = step(jax.random.key(0), _state(states), jnp.asarray(actions), params)

    ref = []
    for i in range(n):
        gym_env = CartPoleEnv()
        gym_env.masspole, gym_env.length = float(masspole[i]), float(length[i])
        gym_env.masscart, gym_env.gravity = float(masscart[i]), float(gravity[i])
        gym_env.force_mag = float(force_mag[i])
        gym_env.total_mass = gym_env.masspole + gym_env.masscart
        gym_env.polemass_length = gym_env.masspole * gym_env.length
        ref.append(_gym_step(gym_env, states[i], actions[i])[0])
    np.testing.assert_allclose(obs, np.stack(ref), rtol=1e-5, atol=1e-5)
    # The constants matter: default physics gives a different answer.
    default_obs, *_ = jax.vmap(env.step, in_axes=(None, 0, 0))(
        jax.random.key(0), _state(states), jnp.asarray(actions)
    )
    assert np.abs(np.asarray(default_obs) - np.stack(ref)).max() > 1e-2
