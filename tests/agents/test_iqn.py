"""Tests for agents.iqn: the loss at sampled fractions against a hand computation and rlkit's
primitive, the fraction embedding in the network, and the deterministic evaluation policy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlkit
from agents.iqn import IQN, IQNConfig, iqn_loss
from agents.networks import ImplicitQuantileNetwork
from agents.qrdqn import quantile_levels
from envs.core import Box, Discrete


def _batch():
    """Two windows of 3 steps, obs_dim 2, 2 actions: window 0 truncated at step 0, window 1
    terminated at step 1."""
    return {
        "obs": jnp.array(
            [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]]]
        ),
        "action": jnp.array([[1, 0, 1], [0, 1, 0]], jnp.int32),
        "reward": jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]),
        "terminated": jnp.array([[False, False, False], [False, True, False]]),
        "truncated": jnp.array([[True, False, False], [False, True, False]]),
        "next_obs": jnp.array(
            [[[0.0, 1.0], [1.0, 1.0], [1.0, 2.0]], [[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]]
        ),
    }


W_ONLINE = jnp.array([[0.3, -0.2], [0.1, 0.7]])
W_TARGET = jnp.array([[-0.5, 0.4], [0.6, -0.2]])


def _z_fn(params, obs, tau):
    """A 'network' Z_tau(s, a) = (s @ W)_a * (1 + tau): quantile values [B, M, A]."""
    return (obs @ params)[:, None, :] * (1.0 + tau[..., None])


def _huber(u, k):
    a = np.abs(u)
    return np.where(a <= k, 0.5 * u**2, k * (a - 0.5 * k))


@pytest.mark.parametrize("double_q", [True, False])
def test_loss_matches_hand_computation(double_q):
    cfg = IQNConfig(
        gamma=0.9,
        n_step=3,
        double_q=double_q,
        num_tau_samples=3,
        num_tau_prime_samples=4,
        num_quantile_samples=5,
        huber_kappa=1.0,
    )
    batch, weights, key = _batch(), jnp.array([1.0, 0.5]), jax.random.key(7)
    loss, (per_item, q_taken) = iqn_loss(W_ONLINE, W_TARGET, _z_fn, cfg, batch, weights, key)
    # The fractions the loss draws: tau [B, N], tau' [B, N'], tau'' [B, K] from split(key, 3).
    k1, k2, k3 = jax.random.split(key, 3)
    tau = np.asarray(jax.random.uniform(k1, (2, 3)))
    tau_t = np.asarray(jax.random.uniform(k2, (2, 4)))
    tau_s = np.asarray(jax.random.uniform(k3, (2, 5)))
    obs, nxt, act = (np.asarray(batch[k]) for k in ("obs", "next_obs", "action"))
    w_on, w_tg = np.asarray(W_ONLINE), np.asarray(W_TARGET)
    windows = [(1.0, 0.9, nxt[0, 0]), (-1 + 0.9 * 0.5, 0.0, nxt[1, 1])]
    expected, qs = [], []
    for b, (r, d, s_next) in enumerate(windows):
        theta = (obs[b, 0] @ w_on)[act[b, 0]] * (1 + tau[b])  # [N]
        sel_w = w_on if double_q else w_tg
        q_sel = np.mean((s_next @ sel_w)[None, :] * (1 + tau_s[b])[:, None], axis=0)
        a_star = int(np.argmax(q_sel))
        target = r + d * (s_next @ w_tg)[a_star] * (1 + tau_t[b])  # [N']
        u = target[None, :] - theta[:, None]
        expected.append(np.sum(np.mean(np.abs(tau[b][:, None] - (u < 0)) * _huber(u, 1.0), 1)))
        qs.append(theta.mean())
    np.testing.assert_allclose(per_item, expected, rtol=1e-5)
    np.testing.assert_allclose(loss, np.mean(np.array(expected) * [1.0, 0.5]), rtol=1e-5)
    np.testing.assert_allclose(q_taken, qs, rtol=1e-5)
    # Window 0 through rlkit's primitive.
    s_next = jnp.asarray(windows[0][2])[None]
    ref = rlkit.quantile_q_learning(
        _z_fn(W_ONLINE, batch["obs"][:1, 0], jnp.asarray(tau[:1]))[0],
        jnp.asarray(tau[0]),
        batch["action"][0, 0],
        jnp.float32(1.0),
        jnp.float32(0.9),
        _z_fn(W_ONLINE if double_q else W_TARGET, s_next, jnp.asarray(tau_s[:1]))[0],
        _z_fn(W_TARGET, s_next, jnp.asarray(tau_t[:1]))[0],
        huber_param=1.0,
    )
    np.testing.assert_allclose(ref, per_item[0], rtol=1e-5)
    # Another key draws other fractions.
    other = iqn_loss(W_ONLINE, W_TARGET, _z_fn, cfg, batch, weights, jax.random.key(8))[0]
    assert float(other) != float(loss)


def test_network_embeds_fractions_and_policy_is_deterministic():
    net = ImplicitQuantileNetwork(num_actions=3, hidden=(8,), num_cosines=4)
    obs = jax.random.normal(jax.random.key(0), (5, 2))
    tau = jax.random.uniform(jax.random.key(1), (5, 6))
    params = net.init(jax.random.key(2), obs, tau)
    z = net.apply(params, obs, tau)
    assert z.shape == (5, 6, 3)
    p = params["params"]
    # By hand: psi = relu(obs W0 + b0); phi = relu(cos(pi i tau) W1 + b1); f = relu(.) then out.
    psi = jax.nn.relu(obs @ p["MLP_0"]["Dense_0"]["kernel"] + p["MLP_0"]["Dense_0"]["bias"][None])
    basis = jnp.cos(jnp.pi * jnp.arange(4.0)[None, None, :] * tau[..., None])
    phi = jax.nn.relu(basis @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"][None, None])
    h = jax.nn.relu(
        (psi[:, None, :] * phi) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"][None, None]
    )
    np.testing.assert_allclose(
        z, h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"][None, None], rtol=1e-5, atol=1e-6
    )
    agent = IQN(Box(-1.0, 1.0, (2,), jnp.float32), Discrete(3))
    cfg = IQNConfig(hidden=(8,), num_cosines=4, num_quantile_samples=6)
    q = agent.q_values(cfg, params, obs)
    mid = jnp.broadcast_to(quantile_levels(6), (5, 6))
    np.testing.assert_allclose(q, net.apply(params, obs, mid).mean(axis=1), rtol=1e-6)
    a1 = agent.policy(cfg, params, obs, jax.random.key(3))
    a2 = agent.policy(cfg, params, obs, jax.random.key(4))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(a1, jnp.argmax(q, axis=-1))
    # Acting samples fractions: two keys give different values.
    assert not np.allclose(
        agent.q_values(cfg, params, obs, jax.random.key(5)),
        agent.q_values(cfg, params, obs, jax.random.key(6)),
    )
