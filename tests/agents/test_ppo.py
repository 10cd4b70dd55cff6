"""Tests of agents.ppo: the loss by hand, GAE at truncations, normalisers, jit/vmap, learning."""

from __future__ import annotations

import functools
import importlib.util
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import envs
import rlkit
from agents.base import Transition, learning_rate_schedule, stack_configs
from agents.actor_critic import ActorCriticBatch
from agents.ppo import PPO, PPOConfig
from agents.registry import get_agent
from agents.runs.spec import env_spaces, resolve_backend
from agents.runtime.loop import make_train
from envs.atari import is_atari_id
from rlkit.errors import RLKitError

#: ale-py and OpenCV (the ``[atari]`` extra): without them an ALE id is an error, not an env.
ATARI_INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("ale_py", "cv2"))


@functools.cache
def _agent(env_id: str, cls=PPO):
    """The agent for ``env_id`` with jitted methods, shared by the tests (one compile each)."""
    env, params = envs.make(env_id)
    agent = cls(env.observation_space(params), env.action_space(params))
    agent.j = types.SimpleNamespace(
        init=jax.jit(agent.init),
        act=jax.jit(agent.act),
        act_seq=jax.jit(jax.vmap(agent.act, in_axes=(None, None, 0, 0))),
        prepare_batch=jax.jit(agent.prepare_batch),
        loss=jax.jit(agent.loss),
        update=jax.jit(agent.update),
        policy=jax.jit(agent.policy, static_argnames="deterministic"),
    )
    return agent


#: A small config most tests share (so they share compiled programs): rollouts are [4, 2].
BASE = PPOConfig(num_envs=2, rollout_length=4, num_minibatches=2, num_epochs=2, normalize_obs=True)


def _rollout(agent, config, state, key, obs_scale=1.0, obs_shift=0.0):
    """A random but valid rollout ``[T, N]`` with extras from the agent's own ``act``."""
    t_len, n_envs = config.rollout_length, config.num_envs
    obs_dim = agent.observation_space.shape[0]
    k_obs, k_next, k_act, k_rew = jax.random.split(key, 4)
    obs = obs_shift + obs_scale * jax.random.normal(k_obs, (t_len, n_envs, obs_dim))
    next_obs = obs_shift + obs_scale * jax.random.normal(k_next, (t_len, n_envs, obs_dim))
    action, extras = agent.j.act_seq(config, state, obs, jax.random.split(k_act, t_len))
    reward = jax.random.normal(k_rew, (t_len, n_envs))
    flags = jnp.zeros((t_len, n_envs), bool)
    return Transition(obs, action, reward, flags, flags, next_obs, extras)


# --------------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize_advantages", [False, True])
def test_loss_matches_hand_computation(normalize_advantages):
    agent = _agent("CartPole-v1")
    config = BASE.replace(
        normalize_advantages=normalize_advantages,
        clip_eps=0.2,
        vf_coef=0.5,
        ent_coef=0.01,
        clip_value=True,
    )
    state = agent.j.init(BASE, jax.random.PRNGKey(0))
    obs = jnp.asarray(
        [
            [0.1, -0.2, 0.03, 0.5],
            [1.0, 0.0, -0.1, 0.2],
            [-0.5, 0.4, 0.2, -1.0],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    action = jnp.asarray([0, 1, 1, 0], jnp.int32)
    logits, value = agent.network(config).apply(state.params, obs)
    logits, value = np.asarray(logits, np.float64), np.asarray(value, np.float64)
    log_pi = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    new_logp = log_pi[np.arange(4), np.asarray(action)]
    # Old log-probs chosen so that sample 1 (r < 1 - eps, A < 0) and sample 2 (r > 1 + eps, A > 0)
    # are clipped and samples 0 and 3 are not.
    old_logp = new_logp + np.array([0.0, 0.5, -0.5, 0.1])
    adv = np.array([1.0, -1.0, 1.0, -2.0])
    # Old values: sample 0's value moved by more than clip_eps away from it, towards the target,
    # so the clipped value loss is the larger one there.
    old_value = value + np.array([0.5, 0.05, -0.05, 0.0])
    target = value + np.array([-1.0, 0.3, 0.2, -0.1])
    batch = ActorCriticBatch(
        obs=obs,
        action=action,
        log_prob=jnp.asarray(old_logp, jnp.float32),
        value=jnp.asarray(old_value, jnp.float32),
        advantage=jnp.asarray(adv, jnp.float32),
        target=jnp.asarray(target, jnp.float32),
    )
    total, metrics = agent.j.loss(config, state.params, batch)

    a = (adv - adv.mean()) / (adv.std() + 1e-8) if normalize_advantages else adv
    ratio = np.exp(new_logp - old_logp)
    pg = -np.mean(np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a))
    v_clipped = old_value + np.clip(value - old_value, -0.2, 0.2)
    vl = np.mean(np.maximum(0.5 * (value - target) ** 2, 0.5 * (v_clipped - target) ** 2))
    ent = np.mean(-np.sum(np.exp(log_pi) * log_pi, -1))
    np.testing.assert_allclose(metrics["pg_loss"], pg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["value_loss"], vl, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["entropy"], ent, rtol=1e-5)
    np.testing.assert_allclose(total, pg + 0.5 * vl - 0.01 * ent, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["clip_fraction"], 0.5)
    # The clipped value loss differs from the plain one on this batch, so the flag matters.
    plain = np.mean(0.5 * (value - target) ** 2)
    assert abs(vl - plain) > 1e-3
    _, unclipped = agent.j.loss(config.replace(clip_value=False), state.params, batch)
    np.testing.assert_allclose(unclipped["value_loss"], plain, rtol=1e-5, atol=1e-6)


def test_clipped_samples_get_no_policy_gradient():
    """Samples whose ratio is clipped on the pessimistic side contribute no policy gradient."""
    agent = _agent("CartPole-v1")
    config = BASE.replace(normalize_advantages=False, ent_coef=0.0, vf_coef=0.0)
    state = agent.j.init(BASE, jax.random.PRNGKey(1))
    obs = jax.random.normal(jax.random.PRNGKey(2), (2, 4))
    action = jnp.asarray([0, 1], jnp.int32)
    logits, value = agent.network(config).apply(state.params, obs)
    logp = jax.nn.log_softmax(logits)[jnp.arange(2), action]

    def grads(shift, adv):
        batch = ActorCriticBatch(obs, action, logp + shift, value, adv, value)
        return jax.grad(lambda p: agent.j.loss(config, p, batch)[0])(state.params)

    # r = exp(-0.5) < 0.8 with A < 0: clipped, zero gradient; A > 0: not clipped.
    g_clipped = grads(jnp.asarray([0.5, 0.5]), jnp.asarray([-1.0, -1.0]))
    g_free = grads(jnp.asarray([0.5, 0.5]), jnp.asarray([1.0, 1.0]))
    assert float(optax.tree.norm(g_clipped)) == 0.0
    assert float(optax.tree.norm(g_free)) > 1e-4


# --------------------------------------------------------------------------------------------------
# GAE as the agent uses it
# --------------------------------------------------------------------------------------------------


def test_truncation_bootstraps_from_final_obs_and_termination_does_not():
    agent = _agent("CartPole-v1")
    gamma, lam = 0.9, 0.8
    config = BASE.replace(gamma=gamma, gae_lambda=lam)
    state = agent.j.init(config, jax.random.PRNGKey(0))
    rollout = _rollout(agent, config, state, jax.random.PRNGKey(3))
    # Env 0 ends an episode at step 1 of T = 4; env 1 runs on.
    flag = jnp.asarray([[False, False], [True, False], [False, False], [False, False]])
    none = jnp.zeros_like(flag)
    truncated = rollout._replace(truncated=flag, terminated=none)
    terminated = rollout._replace(truncated=none, terminated=flag)
    batch_tr, _, _ = agent.j.prepare_batch(config, state, truncated)
    batch_te, _, _ = agent.j.prepare_batch(config, state, terminated)

    next_obs = rlkit.running_stats_normalize(state.obs_norm, rollout.next_obs[:, 0], clip=10.0)
    _, v_next = agent.network(config).apply(state.params, next_obs)
    r = np.asarray(rollout.reward[:, 0], np.float64)
    v = np.asarray(rollout.extras["value"][:, 0], np.float64)
    vn = np.asarray(v_next, np.float64)

    def hand(bootstrap_at_1):
        delta = r + gamma * vn - v
        delta[1] = r[1] + (gamma * vn[1] if bootstrap_at_1 else 0.0) - v[1]
        adv = np.zeros(4)
        adv[3] = delta[3]  # the rollout's last step bootstraps on V(next_obs)
        adv[2] = delta[2] + gamma * lam * adv[3]
        adv[1] = delta[1]  # the episode ended at step 1: the trace is cut either way
        adv[0] = delta[0] + gamma * lam * adv[1]
        return adv

    env0 = slice(0, None, 2)  # the batch is time-major [T * N]: env 0 is every other entry
    np.testing.assert_allclose(batch_tr.advantage[env0], hand(True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch_te.advantage[env0], hand(False), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch_tr.target[env0], hand(True) + v, rtol=1e-5, atol=1e-6)
    # The two differ exactly by the bootstrap gamma * V(final_obs) at the boundary (and its trace).
    diff = np.asarray(batch_tr.advantage - batch_te.advantage)
    np.testing.assert_allclose(diff[2], gamma * vn[1], rtol=1e-5)
    np.testing.assert_allclose(diff[0], gamma * lam * gamma * vn[1], rtol=1e-5)
    np.testing.assert_allclose(diff[4:], 0.0, atol=1e-6)
    np.testing.assert_allclose(diff[1::2], 0.0, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# Normalisers
# --------------------------------------------------------------------------------------------------


def test_obs_normaliser_updates_in_update_and_is_frozen_in_policy_params():
    agent = _agent("CartPole-v1")
    config = BASE
    state0 = agent.j.init(config, jax.random.PRNGKey(0))
    rollout = _rollout(agent, config, state0, jax.random.PRNGKey(1), obs_scale=2.0, obs_shift=5.0)

    # The batch is normalised with the statistics act used (the initial ones: mean 0, var 1).
    batch, _, _ = agent.j.prepare_batch(config, state0, rollout)
    np.testing.assert_allclose(
        batch.obs, jnp.clip(rollout.obs.reshape(8, 4) / np.sqrt(1 + 1e-8), -10, 10), rtol=1e-6
    )
    state1, _ = agent.j.update(config, state0, rollout, jax.random.PRNGKey(2))
    flat = np.asarray(rollout.obs).reshape(8, 4)
    np.testing.assert_allclose(state1.obs_norm.mean, flat.mean(0), rtol=1e-4)
    np.testing.assert_allclose(state1.obs_norm.var, flat.var(0), rtol=1e-3)

    pparams = agent.policy_params(state1)
    obs = jnp.asarray([[5.0, 5.0, 5.0, 5.0], [7.0, 3.0, 5.0, 6.0]])
    logits, _ = agent.network(config).apply(
        state1.params, rlkit.running_stats_normalize(state1.obs_norm, obs, clip=10.0)
    )
    expected = jnp.argmax(logits, -1)
    np.testing.assert_array_equal(
        agent.j.policy(config, pparams, obs, jax.random.PRNGKey(0)), expected
    )
    # Training on: the statistics move, but the saved policy params keep the old ones.
    rollout2 = _rollout(agent, config, state1, jax.random.PRNGKey(3), obs_shift=-3.0)
    state2, _ = agent.j.update(config, state1, rollout2, jax.random.PRNGKey(4))
    assert not np.allclose(state2.obs_norm.mean, state1.obs_norm.mean)
    np.testing.assert_array_equal(pparams.obs_norm.mean, state1.obs_norm.mean)
    # act is pure: it reads the statistics and returns no state.
    out = agent.j.act(config, state1, obs, jax.random.PRNGKey(5))
    assert len(out) == 2 and set(out[1]) == {"log_prob", "value"}


def test_reward_scaling_uses_running_return_std():
    agent = _agent("CartPole-v1")
    config = BASE.replace(normalize_reward=True, gamma=0.5)
    state = agent.j.init(config, jax.random.PRNGKey(0))
    rollout = _rollout(agent, config, state, jax.random.PRNGKey(1))
    rollout = rollout._replace(
        reward=jnp.asarray([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0], [0.0, 1.0]])
    )
    rewards, scaler = jax.jit(agent.scale_rewards)(config, state.reward_norm, rollout)
    # By hand: R_t = 0.5 R_{t-1} + r_t per env; the variance of every R seen so far scales r_t.
    seen, ret, expected = [], np.zeros(2), []
    for r in np.asarray(rollout.reward, np.float64):
        ret = 0.5 * ret + r
        seen.extend(ret)
        expected.append(np.clip(r / np.sqrt(np.var(seen) + 1e-8), -10, 10))
    np.testing.assert_allclose(rewards, np.stack(expected), rtol=1e-5)
    np.testing.assert_allclose(scaler.returns, ret, rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Continuous actions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("squash", ["clip", "tanh"])
def test_continuous_actions_within_bounds_and_log_prob_of_raw_sample(squash):
    agent = _agent("Pendulum-v1")
    low, high = agent.action_space.low, agent.action_space.high
    config = BASE.replace(action_squash=squash, log_std_init=2.0)  # std e^2: far outside [-2, 2]
    state = agent.j.init(config, jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (256, 3))
    action, extras = agent.j.act(config, state, obs, jax.random.PRNGKey(2))
    assert action.shape == (256, 1) and action.dtype == jnp.float32
    action, raw = np.asarray(action), np.asarray(extras["raw_action"])
    assert np.all(action >= low) and np.all(action <= high)
    assert np.mean(np.abs(raw) > high) > 0.5  # the raw samples do leave the box
    (mean, log_std), _ = agent.network(config).apply(state.params, obs)
    np.testing.assert_allclose(log_std, 2.0)
    expected_logp = jax.vmap(rlkit.diag_gaussian_log_prob)(mean, log_std, raw)
    np.testing.assert_allclose(extras["log_prob"], expected_logp, rtol=1e-6)
    if squash == "clip":
        np.testing.assert_allclose(action, np.clip(raw, low, high))
    else:
        np.testing.assert_allclose(action, low + (np.tanh(raw) + 1) * (high - low) / 2, rtol=1e-5)
    greedy = np.asarray(
        agent.j.policy(config, agent.policy_params(state), obs * 100, jax.random.PRNGKey(3))
    )
    assert np.all(greedy >= low) and np.all(greedy <= high)
    sampled = np.asarray(
        agent.j.policy(
            config, agent.policy_params(state), obs, jax.random.PRNGKey(3), deterministic=False
        )
    )
    assert np.all(sampled >= low) and np.all(sampled <= high)


def test_continuous_update_runs_and_first_ratio_is_one():
    agent = _agent("Pendulum-v1")
    config = BASE.replace(action_squash="tanh")
    state = agent.j.init(config, jax.random.PRNGKey(0))
    rollout = _rollout(agent, config, state, jax.random.PRNGKey(1))
    batch, _, _ = agent.j.prepare_batch(config, state, rollout)
    _, metrics = agent.j.loss(config, state.params, batch)
    np.testing.assert_allclose(metrics["approx_kl"], 0.0, atol=1e-6)
    np.testing.assert_allclose(metrics["clip_fraction"], 0.0)
    new_state, metrics = agent.j.update(config, state, rollout, jax.random.PRNGKey(2))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not np.allclose(new_state.params["params"]["log_std"], state.params["params"]["log_std"])


# --------------------------------------------------------------------------------------------------
# Compilation, jit and vmap
# --------------------------------------------------------------------------------------------------


def test_no_recompilation_on_second_call():
    agent = _agent("CartPole-v1")
    config = BASE
    traces = {"act": 0, "update": 0}

    def act(config, state, obs, key):
        traces["act"] += 1
        return agent.j.act(config, state, obs, key)

    def update(config, state, rollout, key):
        traces["update"] += 1
        return agent.update(config, state, rollout, key)

    act_j, update_j = jax.jit(act), jax.jit(update)
    state = agent.j.init(config, jax.random.PRNGKey(0))
    for i in range(3):
        rollout = _rollout(agent, config, state, jax.random.PRNGKey(i))
        act_j(config, state, rollout.obs[0], jax.random.PRNGKey(i))
        state, _ = update_j(config, state, rollout, jax.random.PRNGKey(i))
    # A config with other traced values (learning rate) reuses the program too.
    update_j(config.replace(learning_rate=1e-3), state, rollout, jax.random.PRNGKey(9))
    assert traces == {"act": 1, "update": 1}


def test_learning_rate_anneals_linearly():
    agent = _agent("CartPole-v1")
    config = PPOConfig(
        total_timesteps=4 * 8 * 10,
        num_envs=4,
        rollout_length=8,
        num_epochs=2,
        num_minibatches=4,
        learning_rate=1e-3,
    )
    assert config.num_updates == 10
    counts = jnp.asarray([0, 7, 8, 16, 80, 200])
    steps = agent.grad_steps_per_update(config)
    np.testing.assert_allclose(
        learning_rate_schedule(config, steps)(counts), [1e-3, 1e-3, 9e-4, 8e-4, 0.0, 0.0],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        learning_rate_schedule(config.replace(anneal_lr=False), steps)(counts[4]), 1e-3
    )
    # The agent reports the rate of its optimiser state's next step.
    state = agent.init(config, jax.random.PRNGKey(0))
    np.testing.assert_allclose(agent.learning_rate(config, state.opt_state), 1e-3)


# This nested vmap once hung at 0% CPU on 2 cores: JAX's orthogonal init became a batched LAPACK QR
# whose batch split deadlocked XLA's CPU thread pool. agents.networks.orthogonal avoids LAPACK.
def test_whole_loop_under_jit_vmaps_over_seeds_and_stacked_configs():
    """One compiled program: a grid of 2 learning rates (stacked config) x 2 seeds (keys)."""
    config = PPOConfig(
        total_timesteps=2 * 2 * 16, num_envs=2, rollout_length=16, num_minibatches=2, num_epochs=1
    )
    agent = _agent("CartPole-v1")
    train = make_train(agent, "CartPole-v1", config)

    def final_params(cfg, key):
        rs, metrics = train(cfg, key)
        return rs.agent_state.params, metrics

    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    configs = stack_configs(
        [config.replace(learning_rate=1e-2), config.replace(learning_rate=1e-4)]
    )
    grid = jax.vmap(jax.vmap(final_params, in_axes=(None, 0)), in_axes=(0, None))
    params, metrics = jax.jit(grid)(configs, keys)
    kernel = np.asarray(params["params"]["actor_head"]["kernel"])  # [config, seed, ...]

    assert kernel.shape[:2] == (2, 2) and metrics["env_steps"].shape == (2, 2, 2)
    np.testing.assert_array_equal(metrics["env_steps"][0, 0], [32, 64])
    np.testing.assert_allclose(
        metrics["learning_rate"][:, :, 0], [[1e-2, 1e-2], [1e-4, 1e-4]], rtol=1e-6
    )
    assert not np.allclose(kernel[0, 0], kernel[0, 1])  # seeds differ
    assert not np.allclose(kernel[0, 0], kernel[1, 0])  # learning rates differ
    # Same key, same init: the bigger learning rate moved the params further in the same steps.
    init = np.asarray(
        agent.j.init(config, jax.random.split(keys[0], 3)[1]).params["params"]["actor_head"][
            "kernel"
        ]
    )
    assert np.abs(kernel[0, 0] - init).sum() > 10 * np.abs(kernel[1, 0] - init).sum()


# --------------------------------------------------------------------------------------------------
# Config checks and presets
# --------------------------------------------------------------------------------------------------


def test_bad_config_values_raise_rlkit_error():
    agent = _agent("Pendulum-v1")
    with pytest.raises(RLKitError, match="action-squash"):
        agent.check_config(PPOConfig(action_squash="sigmoid"))
    with pytest.raises(RLKitError, match="num-minibatches"):
        agent.check_config(PPOConfig(num_envs=3, rollout_length=5, num_minibatches=4))
    with pytest.raises(RLKitError, match="optimizer"):
        agent.check_config(PPOConfig(optimizer="sgd"))
    for field, value in [("gae_lambda", -3.0), ("clip_eps", -1.0), ("gamma", 1.5),
                         ("learning_rate", -1.0), ("learning_rate", float("inf")),
                         ("num_epochs", 0), ("num_minibatches", 0)]:
        with pytest.raises(RLKitError, match="--" + field.replace("_", "-")):
            agent.check_config(PPOConfig(**{field: value}))
    env, params = envs.make("CartPole-v1")
    with pytest.raises(RLKitError, match="action_space"):
        PPO(env.observation_space(params), envs.Box(-1.0, 1.0, (2, 2)))


def test_registered_and_presets_build():
    assert get_agent("ppo") is PPO
    for env_id in PPO.PRESETS:
        if env_id == "default":
            continue
        if is_atari_id(env_id) and not ATARI_INSTALLED:
            continue  # tests/agents/test_atari_agents.py skips without them too
        backend, own = resolve_backend(env_id, "auto")
        agent = PPO(*env_spaces(backend, own or env_id))
        config = PPO.default_config(env_id)
        agent.check_config(config)
        assert config.steps_per_update % config.num_minibatches == 0


# --------------------------------------------------------------------------------------------------
# Learning
# --------------------------------------------------------------------------------------------------


def test_ppo_learns_cartpole():
    """A small budget (40k steps) takes CartPole from ~20 to >= 150 mean return.

    (Over 8 seeds the last 10 updates averaged 176 to 323.)
    """
    config = PPO.default_config("CartPole-v1", total_timesteps=40_960)
    train = jax.jit(make_train(_agent("CartPole-v1"), "CartPole-v1", config))
    _, metrics = train(config, jax.random.PRNGKey(0))
    ret = np.asarray(metrics["episode_return_sum"])
    cnt = np.asarray(metrics["episode_count"])
    first = ret[:5].sum() / max(cnt[:5].sum(), 1)
    last = ret[-10:].sum() / max(cnt[-10:].sum(), 1)
    assert first < 60
    assert last >= 150, (first, last)
