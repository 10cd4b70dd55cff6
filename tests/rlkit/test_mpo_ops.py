"""Tests for rlkit.mpo_ops: hand-computed E-steps, parity with rlax, jit, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import rlkit
from rlkit import mpo_ops

IDENTITY = lambda x: x


def test_mpo_e_step_hand_computed():
    # Two sampled actions with Q = 0 and log 3, temperature 1: weights 1/4 and 3/4,
    # L = eta * eps + eta * (log(1 + 3) - log 2) = 0.1 + log 2.
    q = jnp.array([[0.0], [math.log(3.0)]])
    penalty = rlkit.LagrangePenalty(alpha=jnp.array(1.0), epsilon=0.1)
    loss, weights, num = rlkit.mpo_compute_weights_and_temperature_loss(q, penalty, IDENTITY)
    np.testing.assert_allclose(weights[:, 0], [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(loss, [0.1 + math.log(2.0)], rtol=1e-6)
    assert num == 2


def test_vmpo_e_step_hand_computed():
    # Advantages [0, 1, 2, 3], temperature 1, top half: only 2 and 3 count.
    adv = jnp.array([0.0, 1.0, 2.0, 3.0])
    ones = jnp.ones(4)
    penalty = rlkit.LagrangePenalty(alpha=jnp.array(1.0), epsilon=0.5)
    loss, weights, num = rlkit.vmpo_compute_weights_and_temperature_loss(
        adv, ones, ones, penalty, IDENTITY, top_k_fraction=0.5
    )
    e = math.exp(-1.0)  # exp(2 - 3)
    np.testing.assert_allclose(weights, [0.0, 0.0, e / (1 + e), 1 / (1 + e)], rtol=1e-5)
    np.testing.assert_allclose(num, 2.0, rtol=1e-6)
    # L = eta (eps + log(sum u) + max - log n) = 0.5 + log(1 + e) + 3 - log 2
    np.testing.assert_allclose(loss, 0.5 + math.log(1 + e) + 3.0 - math.log(2.0), rtol=1e-5)


def _random_mpo_inputs(key, per_dimension):
    k = jax.random.split(key, 5)
    s, t, b, a = 4, 3, 2, 2
    log_probs = jax.random.normal(k[0], (s, t, b))
    q_values = jax.random.normal(k[1], (s, t, b))
    kl_shape = (t, b, a) if per_dimension else (t, b)
    kl_mean = jnp.abs(jax.random.normal(k[2], kl_shape))
    kl_cov = jnp.abs(jax.random.normal(k[3], kl_shape))
    alpha = jnp.exp(jax.random.normal(k[4], kl_shape))
    return log_probs, q_values, kl_mean, kl_cov, alpha


@pytest.mark.parametrize("per_dimension", [False, True])
@pytest.mark.parametrize("use_jit", [False, True])
def test_mpo_loss_parity_with_rlax(per_dimension, use_jit):
    log_probs, q_values, kl_mean, kl_cov, alpha = _random_mpo_inputs(
        jax.random.PRNGKey(1), per_dimension
    )

    def run(lib):
        temperature = lib.LagrangePenalty(alpha=jnp.array(0.7), epsilon=0.1)
        kls = [
            (kl_mean, lib.LagrangePenalty(alpha, 0.01, per_dimension)),
            (kl_cov, lib.LagrangePenalty(2.0 * alpha, 0.001, per_dimension)),
        ]
        fn = lambda lp, qv: lib.mpo_loss(lp, qv, temperature, kls, sample_axis=0)
        return (jax.jit(fn) if use_jit else fn)(log_probs, q_values)

    ours, theirs = run(rlkit), run(rlax)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    for name in ("temperature_loss", "policy_loss", "kl_loss", "alpha_loss"):
        np.testing.assert_allclose(
            getattr(ours[1], name), getattr(theirs[1], name), rtol=1e-5, atol=1e-6
        )
    np.testing.assert_allclose(ours[1].normalized_weights, theirs[1].normalized_weights, rtol=1e-5)


def test_mpo_sample_axis_is_a_transpose():
    log_probs, q_values, kl_mean, _, alpha = _random_mpo_inputs(jax.random.PRNGKey(2), False)
    temperature = rlkit.LagrangePenalty(alpha=jnp.array(0.7), epsilon=0.1)
    kls = [(kl_mean, rlkit.LagrangePenalty(alpha, 0.01))]
    loss0, _ = rlkit.mpo_loss(log_probs, q_values, temperature, kls, sample_axis=0)
    moved = lambda x: jnp.moveaxis(x, 0, 1)
    loss1, _ = rlkit.mpo_loss(moved(log_probs), moved(q_values), temperature, kls, sample_axis=1)
    np.testing.assert_allclose(loss0, loss1, rtol=1e-6)


@pytest.mark.parametrize("top_k_fraction", [1.0, 0.5])
def test_vmpo_loss_parity_with_rlax(top_k_fraction):
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    log_probs = jax.random.normal(k[0], (5, 3))
    adv = jax.random.normal(k[1], (5, 3))
    restarting = (jax.random.uniform(k[2], (5, 3)) > 0.2).astype(jnp.float32)
    kl = jnp.abs(jax.random.normal(k[3], (5, 3)))

    def run(lib):
        temperature = lib.LagrangePenalty(alpha=jnp.array(0.5), epsilon=0.1)
        kls = [(kl, lib.LagrangePenalty(jnp.full((5, 3), 0.3), 0.01))]
        return jax.jit(
            lambda lp, a: lib.vmpo_loss(
                lp, a, temperature, kls, restarting_weights=restarting,
                top_k_fraction=top_k_fraction,
            )
        )(log_probs, adv)  # fmt: skip

    ours, theirs = run(rlkit), run(rlax)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[1].normalized_weights, theirs[1].normalized_weights, rtol=1e-5)
    np.testing.assert_allclose(ours[1].temperature_loss, theirs[1].temperature_loss, rtol=1e-5)


@pytest.mark.parametrize("use_stop_gradient", [True, False])
def test_kl_constraint_gradients_follow_the_flag(use_stop_gradient):
    penalty_alpha, kl = jnp.array(2.0), jnp.array(0.3)

    def losses(alpha, kl):
        penalty = rlkit.LagrangePenalty(alpha=alpha, epsilon=0.1)
        kl_loss, alpha_loss, _ = mpo_ops.kl_constraint_loss(
            kl, penalty, IDENTITY, use_stop_gradient
        )
        return kl_loss, alpha_loss

    d_kl_loss = jax.grad(lambda a, k: losses(a, k)[0], argnums=(0, 1))(penalty_alpha, kl)
    d_alpha_loss = jax.grad(lambda a, k: losses(a, k)[1], argnums=(0, 1))(penalty_alpha, kl)
    # kl_loss = sg(alpha) kl, alpha_loss = alpha (eps - sg(kl)).
    np.testing.assert_allclose(d_kl_loss[1], 2.0)
    np.testing.assert_allclose(d_alpha_loss[0], 0.1 - 0.3, rtol=1e-6)
    np.testing.assert_allclose(d_kl_loss[0], 0.0 if use_stop_gradient else 0.3, rtol=1e-6)
    np.testing.assert_allclose(d_alpha_loss[1], 0.0 if use_stop_gradient else -2.0, rtol=1e-6)


def test_vmpo_weights_vmap_over_a_named_axis_match_the_flat_batch():
    adv = jax.random.normal(jax.random.PRNGKey(4), (2, 6))
    ones = jnp.ones((2, 6))
    penalty = rlkit.LagrangePenalty(alpha=jnp.array(1.0), epsilon=0.1)
    flat = rlkit.vmpo_compute_weights_and_temperature_loss(adv, ones, ones, penalty, IDENTITY, 0.5)
    split = jax.vmap(
        lambda a, r: rlkit.vmpo_compute_weights_and_temperature_loss(
            a, r, r, penalty, IDENTITY, 0.5, axis_name="d"
        ),
        axis_name="d",
    )(adv, ones)
    np.testing.assert_allclose(split[1], flat[1], rtol=1e-5)
    np.testing.assert_allclose(split[0][0], flat[0], rtol=1e-5)
    with pytest.raises(AssertionError, match="use_stop_gradient"):
        jax.vmap(
            lambda a: rlkit.vmpo_compute_weights_and_temperature_loss(
                a, a, a, penalty, IDENTITY, 1.0, axis_name="d", use_stop_gradient=False
            ),
            axis_name="d",
        )(adv)
