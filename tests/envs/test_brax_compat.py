"""envs.from_brax on one cheap Brax env (inverted_pendulum, spring backend): terminated and
truncated kept apart, and the same steps as Brax's own env and EpisodeWrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
import envs
from envs import brax_compat
from rlkit.errors import RLKitError

brax_envs = pytest.importorskip("brax.envs")


@pytest.mark.slow  # about 30 s, mostly Brax's compile
def test_from_brax_inverted_pendulum_flags_and_parity():
    env, params = envs.make("brax:inverted_pendulum:spring")
    assert isinstance(env, brax_compat.BraxEnv) and env.name == "brax:inverted_pendulum"
    assert params.max_episode_steps == 1000
    assert env.observation_space(params).shape == (4,) and env.action_space(params).shape == (1,)
    # Brax's own env, wrapped as brax.envs.create wraps it (time limit 3, no autoreset).
    theirs = brax_envs.create(
        "inverted_pendulum", episode_length=3, auto_reset=False, backend="spring"
    )

    def rollout(key, params, action):
        obs, state = env.reset(key, params)
        their_state = theirs.reset(key)

        def body(carry, _):
            state, their_state = carry
            obs, state, reward, terminated, truncated, _ = env.step(None, state, action, params)
            their_state = theirs.step(their_state, action)
            ours = (obs, reward, terminated, truncated)
            brax = (
                their_state.obs,
                their_state.reward,
                their_state.done,
                their_state.info["truncation"],
            )
            return (state, their_state), (ours, brax)

        _, out = jax.lax.scan(body, (state, their_state), None, length=40)
        return obs, their_state.obs, out

    def run_allowing_rank_promotion(*args):
        with jax.numpy_rank_promotion("allow"):  # Brax's own env needs it
            return rollout(*args)

    run = jax.jit(run_allowing_rank_promotion)
    key = jax.random.PRNGKey(0)
    # Pushing one way topples the pendulum: terminated, not truncated.
    first, their_first, ((obs, reward, terminated, truncated), brax) = run(
        key, params, jnp.ones((1,))
    )
    np.testing.assert_array_equal(first, their_first)
    end = int(np.argmax(np.asarray(terminated)))
    assert 2 < end < 39 and not np.asarray(truncated)[: end + 1].any()
    np.testing.assert_array_equal(obs[: end + 1], brax[0][: end + 1])
    np.testing.assert_array_equal(reward[: end + 1], brax[1][: end + 1])
    assert obs.dtype == jnp.float32 and reward.dtype == jnp.float32
    # A time limit of 3 with a zero action: truncated at 3, not terminated, where Brax's
    # EpisodeWrapper says done=1 and truncation=1.
    _, _, ((obs, reward, terminated, truncated), brax) = run(
        key, params.replace(max_episode_steps=3), jnp.zeros((1,))
    )
    assert list(np.asarray(truncated)[:3]) == [False, False, True]
    assert not np.asarray(terminated)[:3].any()
    assert float(brax[2][2]) == 1.0 and float(brax[3][2]) == 1.0
    np.testing.assert_array_equal(obs[:3], brax[0][:3])
    # An env made by brax.envs.create is unwrapped, keeping its episode length.
    _unwrapped, unwrapped_params = envs.from_brax(theirs)
    assert unwrapped_params.max_episode_steps == 3
    with pytest.raises(RLKitError, match="brax_env"):
        envs.from_brax(object())
    with pytest.raises(RLKitError, match="no env"):
        envs.from_brax("no_such_env")


def test_from_brax_fast_env_truncates_at_the_time_limit_and_ppo_learns_on_it():
    """Brax's own trivial test env ('fast': reward = position, a positive action accelerates;
    it never terminates) compiles in seconds: the time limit gives truncated, never terminated,
    the steps equal Brax's EpisodeWrapper's, and PPO learns to accelerate on it, compiled."""
    env, params = envs.make("brax:fast")
    params = params.replace(max_episode_steps=4)
    theirs = brax_envs.create("fast", episode_length=4, auto_reset=False)

    def rollout(key, action):
        _, state = env.reset(key, params)
        their_state = theirs.reset(key)

        def body(carry, _):
            state, their_state = carry
            obs, state, reward, terminated, truncated, _ = env.step(None, state, action, params)
            their_state = theirs.step(their_state, action)
            return (state, their_state), (
                (obs, reward, terminated, truncated),
                (their_state.obs, their_state.reward, their_state.info["truncation"]),
            )

        return jax.lax.scan(body, (state, their_state), None, length=4)[1]

    (obs, reward, terminated, truncated), (t_obs, t_reward, t_trunc) = jax.jit(rollout)(
        jax.random.PRNGKey(0), jnp.ones((1,))
    )
    assert list(np.asarray(truncated)) == [False, False, False, True]
    assert not np.asarray(terminated).any() and float(t_trunc[-1]) == 1.0
    np.testing.assert_array_equal(obs, t_obs)
    np.testing.assert_array_equal(reward, t_reward)

    config = agents.PPO.default_config(
        None,
        total_timesteps=8192,
        num_envs=8,
        rollout_length=32,
        learning_rate=3e-3,
        ent_coef=0.0,
    )
    agent = agents.PPO(env.observation_space(params), env.action_space(params))
    train = agents.make_train(agent, env, config, params.replace(max_episode_steps=32))
    _, metrics = jax.jit(train)(config, jax.random.PRNGKey(0))
    ret = np.asarray(metrics["episode_return_sum"])
    cnt = np.asarray(metrics["episode_count"])
    first = ret[:4].sum() / max(cnt[:4].sum(), 1)
    last = ret[-4:].sum() / max(cnt[-4:].sum(), 1)
    # Accelerating on every step earns the most; zero-mean noise earns about half of it.
    assert last > 1.3 * first > 0, (first, last)
