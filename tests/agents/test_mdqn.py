"""Tests for agents.mdqn: the Munchausen loss of a batch against a hand computation."""

import jax
import jax.numpy as jnp
import numpy as np

from agents.mdqn import MDQNConfig, mdqn_loss

W_ONLINE = jnp.array([[1.0, 2.0], [0.5, -1.0]])
W_TARGET = jnp.array([[0.0, 1.0], [3.0, 1.0]])


def _linear_q(params, obs):
    return obs @ params


def _batch(terminated, truncated):
    return {
        "obs": jnp.array([[[1.0, 0.0]], [[0.0, 1.0]]]),
        "action": jnp.array([[1], [0]], jnp.int32),
        "reward": jnp.array([[1.0], [-1.0]]),
        "terminated": jnp.array(terminated, bool),
        "truncated": jnp.array(truncated, bool),
        "next_obs": jnp.array([[[0.0, 1.0]], [[2.0, 0.0]]]),
    }


def _soft(q, tau):
    """(tau log pi, pi) of the softmax policy of q / tau."""
    q = np.asarray(q, np.float64)
    lse = tau * np.log(np.sum(np.exp(q / tau)))
    return q - lse, np.exp((q - lse) / tau)


def test_loss_matches_hand_computation():
    cfg = MDQNConfig(gamma=0.9, entropy_temperature=0.5, munchausen_coefficient=0.9)
    weights = jnp.array([1.0, 0.5])
    obs = np.array([[1.0, 0.0], [0.0, 1.0]])
    nxt = np.array([[0.0, 1.0], [2.0, 0.0]])
    act, rew = [1, 0], [1.0, -1.0]
    w_on, w_tg = np.asarray(W_ONLINE), np.asarray(W_TARGET)
    # Window 0 truncated, window 1 terminated: only window 0 bootstraps.
    batch = _batch([[False], [True]], [[True], [False]])
    loss, (td, q_taken) = mdqn_loss(W_ONLINE, W_TARGET, _linear_q, cfg, batch, weights)
    expected = []
    for b in range(2):
        log_pi_tm1, _ = _soft(obs[b] @ w_tg, 0.5)
        log_pi_t, pi_t = _soft(nxt[b] @ w_tg, 0.5)
        soft_v = np.sum(pi_t * (nxt[b] @ w_tg - log_pi_t))
        y = (
            rew[b]
            + 0.9 * np.clip(log_pi_tm1[act[b]], -1.0, 0.0)
            + (0.9 if b == 0 else 0.0) * soft_v
        )
        expected.append(y - (obs[b] @ w_on)[act[b]])
    np.testing.assert_allclose(td, expected, rtol=1e-5)
    np.testing.assert_allclose(q_taken, [2.0, 0.5])
    huber = [0.5 * e**2 if abs(e) <= 1 else abs(e) - 0.5 for e in expected]
    np.testing.assert_allclose(loss, np.mean(np.array(huber) * [1.0, 0.5]), rtol=1e-5)
    # The gradient reaches the online Q of the taken actions only (the target is fixed).
    g = jax.grad(lambda w: mdqn_loss(w, W_TARGET, _linear_q, cfg, batch, weights)[0])(W_ONLINE)
    assert np.all(np.isfinite(g)) and np.any(g != 0)
