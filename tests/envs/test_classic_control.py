"""Checks every classic-control env shares: ids, spaces and specs equal to Gymnasium's, the
registry, param overrides, the time limit, jit/vmap/scan and no recompilation. Physics parity with
Gymnasium is tested per env in ``test_cartpole.py``, ``test_acrobot.py``, ``test_mountain_car.py``
and ``test_pendulum.py``."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.core import Box, Discrete
from rlkit.errors import RLKitError

IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]

#: Gymnasium's registry, written out so a change on either side is caught.
EXPECTED_SPEC = {
    "CartPole-v1": (500, 475.0),
    "Acrobot-v1": (500, -100.0),
    "MountainCar-v0": (200, -110.0),
    "MountainCarContinuous-v0": (999, 90.0),
    "Pendulum-v1": (200, None),
}


def _sample_actions(env, params, key, n=None):
    space = env.action_space(params)
    if n is None:
        return space.sample(key)
    return jax.vmap(space.sample)(jax.random.split(key, n))


def test_all_classic_control_ids_are_registered():
    assert set(IDS) <= set(envs.registered())
    assert envs.registered() == sorted(envs.registered())


@pytest.mark.parametrize("env_id", IDS)
def test_spec_matches_gymnasium(env_id):
    ref = gymnasium.spec(env_id)
    spec = envs.spec(env_id)
    assert (spec.max_episode_steps, spec.reward_threshold) == EXPECTED_SPEC[env_id]
    assert spec.max_episode_steps == ref.max_episode_steps
    assert spec.reward_threshold == ref.reward_threshold
    env, params = envs.make(env_id)
    assert env.id == env_id and env.name == env_id
    assert params.max_episode_steps == ref.max_episode_steps


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_equal_gymnasium(env_id):
    env, params = envs.make(env_id)
    ref = gymnasium.make(env_id).unwrapped
    obs_space, action_space = env.observation_space(params), env.action_space(params)
    assert obs_space.to_gymnasium() == ref.observation_space
    assert action_space.to_gymnasium() == ref.action_space
    # Exact bounds, not just allclose (which gymnasium's __eq__ uses).
    np.testing.assert_array_equal(obs_space.low, ref.observation_space.low)
    np.testing.assert_array_equal(obs_space.high, ref.observation_space.high)
    assert obs_space.dtype == jnp.float32
    if isinstance(action_space, Box):
        np.testing.assert_array_equal(action_space.low, ref.action_space.low)
        np.testing.assert_array_equal(action_space.high, ref.action_space.high)
        assert action_space.shape == (1,) and action_space.dtype == jnp.float32
    else:
        assert isinstance(action_space, Discrete) and action_space.dtype == jnp.int32
    # A default-params call gives the same spaces.
    assert env.observation_space().to_gymnasium() == ref.observation_space


def test_unknown_id_lists_ids_and_suggests_the_closest():
    with pytest.raises(RLKitError) as err:
        envs.make("CartPol-v1")
    msg = str(err.value)
    assert "'CartPol-v1'" in msg
    assert "Did you mean 'CartPole-v1'?" in msg
    for env_id in IDS:
        assert env_id in msg
    with pytest.raises(RLKitError, match="Did you mean 'MountainCar-v0'"):
        envs.make("MountainCar-v1")


def test_make_with_param_overrides():
    env, params = envs.make("CartPole-v1", masspole=0.2, max_episode_steps=7)
    assert params.masspole == 0.2 and params.max_episode_steps == 7
    assert params.polemass_length == pytest.approx(0.1)  # derived constants follow
    env, params = envs.make("Pendulum-v1", g=9.81)
    assert params.g == 9.81 and params.max_episode_steps == 200
    _, default = envs.make("Pendulum-v1")
    state = env.reset(jax.random.key(0), params)[1].replace(theta=jnp.float32(1.0))
    action = jnp.zeros((1,), jnp.float32)
    obs_g, *_ = env.step(jax.random.key(0), state, action, params)
    obs_default, *_ = env.step(jax.random.key(0), state, action, default)
    assert not np.allclose(obs_g, obs_default)
    with pytest.raises(RLKitError, match="gravity"):  # Pendulum's field is `g`, not `gravity`
        envs.make("Pendulum-v1", gravity=9.81)


@pytest.mark.parametrize("env_id", IDS)
def test_reset_gives_float32_obs_inside_the_space_and_time_zero(env_id):
    env, params = envs.make(env_id)
    keys = jax.random.split(jax.random.key(0), 512)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    space = env.observation_space(params)
    assert obs.dtype == jnp.float32 and obs.shape == (512, *space.shape)
    assert bool(jax.vmap(space.contains)(obs).all())
    assert state.time.dtype == jnp.int32
    np.testing.assert_array_equal(state.time, 0)
    np.testing.assert_array_equal(jax.vmap(env.get_obs, in_axes=(0, None))(state, params), obs)
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.float32, jnp.int32) and leaf.shape == (512,)
    # Different keys give different starts, the same key the same start.
    assert len(np.unique(np.asarray(obs), axis=0)) == 512
    np.testing.assert_array_equal(env.reset(keys[3], params)[0], obs[3])


@pytest.mark.parametrize("env_id", IDS)
def test_truncated_exactly_at_the_time_limit_and_separate_from_terminated(env_id):
    limit = 7
    env, params = envs.make(env_id, max_episode_steps=limit)
    _, state = env.reset(jax.random.key(0), params)

    def body(state, key):
        k_act, k_step = jax.random.split(key)
        action = _sample_actions(env, params, k_act)
        _, state, reward, terminated, truncated, info = env.step(k_step, state, action, params)
        return state, (state.time, reward, terminated, truncated, info)

    _, (time, reward, terminated, truncated, info) = jax.lax.scan(
        body, state, jax.random.split(jax.random.key(1), 10)
    )
    assert info == {}  # a fixed (empty) structure, so it scans
    np.testing.assert_array_equal(time, np.arange(1, 11))
    # None of these envs can terminate within 10 steps from a start state.
    assert not np.asarray(terminated).any()
    np.testing.assert_array_equal(truncated, np.arange(1, 11) >= limit)
    assert reward.dtype == jnp.float32
    assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_


@pytest.mark.parametrize("env_id", IDS)
def test_jit_matches_no_jit_and_second_call_does_not_recompile(env_id):
    env, params = envs.make(env_id)
    traces = 0

    def step(key, state, action, params):
        nonlocal traces
        traces += 1
        return env.step(key, state, action, params)

    jitted = jax.jit(step)
    k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
    _, state = env.reset(k0, params)
    action = _sample_actions(env, params, k1)
    out_jit = jitted(k2, state, action, params)
    out_nojit = env.step(k2, state, action, params)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), out_jit, out_nojit
    )
    # New state, action and param values of the same structure: no new trace.
    other = jax.tree.map(lambda v: v + 1 if isinstance(v, int) else v * 1.01, params)
    _, state2 = env.reset(k1, params)
    jitted(k0, state2, _sample_actions(env, params, k2), other)
    jitted(k1, out_jit[1], action, params)
    assert traces == 1


@pytest.mark.parametrize("env_id", IDS)
def test_vmap_over_keys_states_and_actions(env_id):
    env, params = envs.make(env_id)
    n = 16
    keys = jax.random.split(jax.random.key(0), n)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = _sample_actions(env, params, jax.random.key(1), n)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, _, reward, terminated, truncated, info = step(keys, state, actions, params)
    assert obs.shape == (n, *env.observation_space(params).shape)
    assert reward.shape == terminated.shape == truncated.shape == (n,)
    assert info == {}
    # Each row equals the unbatched step on that row.
    for i in (0, n - 1):
        row = jax.tree.map(lambda x, i=i: x[i], state)
        ref = env.step(keys[i], row, actions[i], params)
        np.testing.assert_allclose(obs[i], ref[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(reward[i], ref[2], rtol=1e-6)


@pytest.mark.parametrize("env_id", IDS)
def test_step_checks_action_rank_and_type(env_id):
    env, params = envs.make(env_id)
    _, state = env.reset(jax.random.key(0), params)
    if isinstance(env.action_space(params), Discrete):
        bad = [jnp.zeros((1,), jnp.int32), jnp.float32(1.0)]
    else:
        bad = [jnp.float32(0.5), jnp.zeros((1, 1), jnp.float32), jnp.zeros((1,), jnp.int32)]
    for action in bad:
        with pytest.raises(AssertionError):
            env.step(jax.random.key(0), state, action, params)
