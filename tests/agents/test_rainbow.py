"""Tests for agents.rainbow: C51's loss with separate noise samples, noise-free evaluation,
and the defaults that make it Rainbow."""

import jax
import jax.numpy as jnp
import numpy as np

from agents.c51 import c51_loss
from agents.networks import NoisyDense
from agents.rainbow import Rainbow, RainbowConfig
from envs.core import Box, Discrete


def _batch(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "obs": jax.random.normal(k1, (4, 3, 2)),
        "action": jax.random.randint(k2, (4, 3), 0, 2),
        "reward": jnp.ones((4, 3)),
        "terminated": jnp.zeros((4, 3), bool).at[1, 1].set(True),
        "truncated": jnp.zeros((4, 3), bool).at[2, 0].set(True),
        "next_obs": jax.random.normal(k3, (4, 3, 2)),
    }


def test_defaults_loss_and_noise():
    cfg = RainbowConfig(num_atoms=5, v_min=0.0, v_max=4.0, hidden=(8,))
    assert cfg.dueling and cfg.prioritized and cfg.double_q and cfg.noisy and cfg.n_step == 3
    assert cfg.exploration_initial_eps == cfg.exploration_final_eps == 0.0
    agent = Rainbow(Box(-1.0, 1.0, (2,), jnp.float32), Discrete(2))
    params = agent.init_params(cfg, jax.random.key(0))
    assert "NoisyDense_0" in params["params"] and "NoisyDense_1" in params["params"]
    target = jax.tree.map(lambda x: x * 0.9, params)
    batch, weights, key = _batch(jax.random.key(1)), jnp.ones(4), jax.random.key(2)
    loss, (per_item, _) = agent.loss(cfg, params, target, batch, weights, key)
    # The same as C51's loss with the online net's noise from k_online, the target's from k_target.
    net = agent.network(cfg)
    k_on, k_tg = jax.random.split(key)
    ref, (ref_items, _) = c51_loss(
        params,
        target,
        lambda p, o: net.apply(p, o, k_on),
        cfg,
        batch,
        weights,
        target_apply_fn=lambda p, o: net.apply(p, o, k_tg),
    )
    np.testing.assert_allclose(loss, ref, rtol=1e-6)
    np.testing.assert_allclose(per_item, ref_items, rtol=1e-6)
    one_noise = c51_loss(params, target, lambda p, o: net.apply(p, o, k_on), cfg, batch, weights)[0]
    assert float(one_noise) != float(loss)
    # Evaluation is noise-free (deterministic); acting draws noise per key.
    obs = jax.random.normal(jax.random.key(3), (16, 2))
    q0 = agent.q_values(cfg, params, obs)
    np.testing.assert_allclose(
        q0, agent.q_values(cfg.replace(noisy=False), _mean(params), obs), rtol=1e-5, atol=1e-5
    )
    q1, q2 = (agent.q_values(cfg, params, obs, jax.random.key(k)) for k in (4, 5))
    assert not np.allclose(q1, q2) and not np.allclose(q1, q0)


def _mean(params):
    """The noisy layers' mean weights as the plain Dense layers of the same network."""
    p = dict(params["params"])
    for i in (0, 1):
        layer = p.pop(f"NoisyDense_{i}")
        p[f"Dense_{i}"] = {"kernel": layer["kernel_mu"], "bias": layer["bias_mu"]}
    return {"params": p}


def test_noisy_dense_factorised_noise_by_hand():
    layer = NoisyDense(3, sigma0=0.5)
    x = jax.random.normal(jax.random.key(0), (4, 5))
    params = layer.init(jax.random.key(1), x)
    p = params["params"]
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(p["kernel_mu"]) <= bound) and np.all(np.abs(p["bias_mu"]) <= bound)
    np.testing.assert_allclose(p["kernel_sigma"], 0.5 / np.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(
        layer.apply(params, x), x @ p["kernel_mu"] + p["bias_mu"][None], rtol=1e-6
    )
    key = jax.random.key(2)
    k_in, k_out = jax.random.split(key)
    f = lambda e: np.sign(e) * np.sqrt(np.abs(e))  # noqa: E731
    e_in, e_out = (
        f(np.asarray(jax.random.normal(k_in, (5,)))),
        f(np.asarray(jax.random.normal(k_out, (3,)))),
    )
    w = np.asarray(p["kernel_mu"]) + np.asarray(p["kernel_sigma"]) * np.outer(e_in, e_out)
    b = np.asarray(p["bias_mu"]) + np.asarray(p["bias_sigma"]) * e_out
    np.testing.assert_allclose(
        layer.apply(params, x, key), np.asarray(x) @ w + b, rtol=1e-5, atol=1e-6
    )
