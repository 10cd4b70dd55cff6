"""Tests for agents.qrdqn: the loss against rlkit's primitive and a hand computation, traced
Huber kappa, time-limit bootstrapping on a probe env, the update mask, images, and train.py."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
import rlkit
from agents.base import Transition
from agents.qrdqn import QRDQN, QRDQNConfig, qrdqn_loss, quantile_levels
from agents.registry import get_agent
from envs.core import Box, Discrete
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script  # noqa: E402

# --------------------------------------------------------------------------------------------------
# The loss on a tiny batch
# --------------------------------------------------------------------------------------------------


def _batch(terminated, truncated):
    """Two windows of 3 steps, obs_dim 2, 2 actions."""
    obs = jnp.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]]])
    next_obs = jnp.array(
        [[[0.0, 1.0], [1.0, 1.0], [1.0, 2.0]], [[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]]
    )
    return {
        "obs": obs,
        "action": jnp.array([[1, 0, 1], [0, 1, 0]], jnp.int32),
        "reward": jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]),
        "terminated": jnp.array(terminated, bool),
        "truncated": jnp.array(truncated, bool),
        "next_obs": next_obs,
    }


TRUNC = [[True, False, False], [False, True, False]]
TERM = [[False, False, False], [False, True, False]]


def _theta_fn(params, obs):
    """A linear 'network': quantile values [B, A=2, N=3] = obs @ W, W [2, 6]."""
    return (obs @ params).reshape(obs.shape[:-1] + (2, 3))


W_ONLINE = jnp.array([[0.3, -0.2, 0.5, 1.0, 0.0, -0.4], [0.1, 0.7, -0.3, -0.6, 0.2, 0.9]])
W_TARGET = jnp.array([[-0.5, 0.4, 0.2, 0.3, 0.8, -0.1], [0.6, -0.2, 0.1, 0.0, -0.7, 0.5]])


def _huber(u, k):
    a = np.abs(u)
    return np.where(a <= k, 0.5 * u**2, k * (a - 0.5 * k))


@pytest.mark.parametrize(("double_q", "kappa"), [(True, 0.3), (False, 1.0)])
def test_loss_matches_hand_computation(double_q, kappa):
    cfg = QRDQNConfig(num_quantiles=3, gamma=0.9, n_step=3, double_q=double_q, huber_kappa=kappa)
    batch = _batch(TERM, TRUNC)  # window 0 truncated at step 0, window 1 terminated at step 1
    weights = jnp.array([1.0, 0.5])
    loss, (per_item, q_taken) = qrdqn_loss(W_ONLINE, W_TARGET, _theta_fn, cfg, batch, weights)
    tau = np.array([1 / 6, 3 / 6, 5 / 6])
    np.testing.assert_allclose(quantile_levels(3), tau, rtol=1e-6)
    obs, nxt = np.asarray(batch["obs"]), np.asarray(batch["next_obs"])
    act = np.asarray(batch["action"])
    w_on, w_tg = np.asarray(W_ONLINE), np.asarray(W_TARGET)
    windows = [(1.0, 0.9, nxt[0, 0]), (-1 + 0.9 * 0.5, 0.0, nxt[1, 1])]
    expected, qs = [], []
    for b, (r, d, s_next) in enumerate(windows):
        theta = (obs[b, 0] @ w_on).reshape(2, 3)[act[b, 0]]
        tgt = (s_next @ w_tg).reshape(2, 3)
        sel = (s_next @ w_on).reshape(2, 3) if double_q else tgt
        target = r + d * tgt[int(np.argmax(sel.mean(axis=1)))]
        u = target[None, :] - theta[:, None]  # [i, j]
        expected.append(np.sum(np.mean(np.abs(tau[:, None] - (u < 0)) * _huber(u, kappa), 1)))
        qs.append(theta.mean())
    np.testing.assert_allclose(per_item, expected, rtol=1e-5)
    np.testing.assert_allclose(loss, np.mean(np.array(expected) * [1.0, 0.5]), rtol=1e-5)
    np.testing.assert_allclose(q_taken, qs, rtol=1e-5)
    # The same through rlkit's primitive with a static Huber threshold, window by window.
    for b, (r, d, s_next) in enumerate(windows):
        s_next = jnp.asarray(s_next)
        sel = _theta_fn(W_ONLINE if double_q else W_TARGET, s_next).T
        ref = rlkit.quantile_q_learning(
            _theta_fn(W_ONLINE, batch["obs"][b, 0]).T, jnp.asarray(tau, jnp.float32),
            batch["action"][b, 0], jnp.float32(r), jnp.float32(d), sel,
            _theta_fn(W_TARGET, s_next).T, huber_param=kappa,
        )
        np.testing.assert_allclose(ref, per_item[b], rtol=1e-5)
    # kappa is traced: one jitted loss serves two kappas and matches the eager values.
    jitted = jax.jit(lambda c: qrdqn_loss(W_ONLINE, W_TARGET, _theta_fn, c, batch, weights)[0])
    np.testing.assert_allclose(jitted(cfg), loss, rtol=1e-5)
    jitted(cfg.replace(huber_kappa=2.0))
    assert jitted._cache_size() == 1
    g = jax.grad(lambda w: qrdqn_loss(w, W_TARGET, _theta_fn, cfg, batch, weights)[0])(W_ONLINE)
    assert np.all(np.isfinite(g)) and np.any(g != 0)


# --------------------------------------------------------------------------------------------------
# Agent plumbing
# --------------------------------------------------------------------------------------------------


def _cartpole_agent():
    from envs.wrappers import make_vec

    venv, params = make_vec("CartPole-v1", 2)
    return QRDQN(venv.observation_space(params), venv.action_space(params))


def _small_config(**kw):
    base = {"total_timesteps": 512, "num_envs": 2, "rollout_length": 8, "learning_starts": 32,
            "gradient_steps": 2, "batch_size": 8, "buffer_size": 256, "hidden": (16,),
            "target_update_interval": 4, "num_quantiles": 11}
    return QRDQNConfig(**{**base, **kw})


def _rollout(key, t=8, n=2, obs_shape=(4,)):
    k1, k2, k3 = jax.random.split(key, 3)
    return Transition(
        obs=jax.random.normal(k1, (t, n) + obs_shape),
        action=jax.random.randint(k2, (t, n), 0, 2),
        reward=jnp.ones((t, n)),
        terminated=jax.random.bernoulli(k3, 0.1, (t, n)),
        truncated=jnp.zeros((t, n), bool),
        next_obs=jax.random.normal(k3, (t, n) + obs_shape),
        extras={},
    )


def test_registered_and_config_errors():
    assert get_agent("qrdqn") is QRDQN and agents.get_agent("qrdqn") is QRDQN
    agent = _cartpole_agent()
    agent.check_config(_small_config())
    with pytest.raises(RLKitError, match="--huber-kappa: expected a value > 0"):
        agent.check_config(_small_config(huber_kappa=0.0))
    with pytest.raises(RLKitError, match="--num-quantiles: expected a value >= 1"):
        agent.check_config(_small_config(num_quantiles=0))
    with pytest.raises(RLKitError, match="activation"):
        agent.check_config(_small_config(activation="nope"))


@pytest.mark.parametrize("kw", [{"n_step": 1, "double_q": False},
                                {"prioritized": True, "dueling": True, "n_step": 3}])
def test_update_no_recompile_and_learning_starts_mask(kw):
    agent = _cartpole_agent()
    config = _small_config(**kw)
    state = agent.init(config, jax.random.key(0))
    update, act = jax.jit(agent.update), jax.jit(agent.act)
    # Before learning_starts (8 * 2 = 16 < 32 steps): params and target stay put.
    s1, m1 = update(config, state, _rollout(jax.random.key(1)), jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, s1.learner.params, state.learner.params)
    assert float(m1["learning"]) == 0.0 and int(s1.num_updates) == 0 and float(m1["loss"]) == 0
    a, _ = act(config, s1, jnp.zeros((2, 4)), jax.random.key(3))
    assert a.shape == (2,) and a.dtype == jnp.int32
    sizes = update._cache_size(), act._cache_size()
    s2, _ = update(config, s1, _rollout(jax.random.key(4)), jax.random.key(5))
    s3, m3 = update(config, s2, _rollout(jax.random.key(6)), jax.random.key(7))
    act(config, s3, jnp.ones((2, 4)), jax.random.key(8))
    assert (update._cache_size(), act._cache_size()) == sizes
    assert float(m3["learning"]) == 1.0 and int(s2.num_updates) == 2 and int(s3.num_updates) == 4
    assert float(m3["loss"]) > 0 and np.isfinite(float(m3["loss"]))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), s3.learner.params, s2.learner.params)
    assert all(jax.tree.leaves(changed))
    if config.prioritized:
        assert float(s3.buffer.max_priority) != 1.0
    # The policy is greedy on the mean of the quantiles.
    obs = jax.random.normal(jax.random.key(9), (16, 4))
    theta = agent.network(config).apply(s3.learner.params, obs)
    assert theta.shape == (16, 2, 11)
    np.testing.assert_array_equal(
        agent.policy(config, agent.policy_params(s3), obs, jax.random.key(0)),
        jnp.argmax(theta.mean(axis=-1), axis=-1),
    )


class _ImageObsAgentEnvSpaces:
    observation_space = Box(0.0, 1.0, (6, 6, 2), jnp.float32)
    action_space = Discrete(3)


def test_image_observations():
    agent = QRDQN(_ImageObsAgentEnvSpaces.observation_space, _ImageObsAgentEnvSpaces.action_space)
    config = _small_config(cnn_channels=(4,), cnn_kernels=(3,), cnn_strides=(1,), cnn_dense=16,
                           learning_starts=0)
    agent.check_config(config)
    state = agent.init(config, jax.random.key(0))
    rollout = _rollout(jax.random.key(1), obs_shape=(6, 6, 2))
    rollout = rollout._replace(action=rollout.action % 3)
    s1, m1 = jax.jit(agent.update)(config, state, rollout, jax.random.key(2))
    assert float(m1["learning"]) == 1.0 and np.isfinite(float(m1["loss"]))
    assert "Conv_0" in str(jax.tree_util.tree_structure(s1.learner.params))
    a = agent.policy(config, s1.learner.params, rollout.obs[0], jax.random.key(3))
    assert a.shape == (2,) and int(a.max()) < 3


def test_train_script_and_load_policy(tmp_path):
    out = str(tmp_path / "qrdqn")
    code = train_script.main([
        "--agent", "qrdqn", "--total-timesteps", "1024", "--learning-starts", "256",
        "--buffer-size", "1024", "--gradient-steps", "2", "--num-quantiles", "11",
        "--eval-episodes", "0", "--eval-every", "0", "--quiet", "--out", out,
    ])
    assert code == 0
    policy, env_id = agents.load_policy(out)
    assert env_id == "CartPole-v1"
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    action = policy(obs)
    assert action.shape == (8,) and set(np.unique(action)) <= {0, 1}
