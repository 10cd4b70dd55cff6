"""Tests for rlkit.exploration: rlax parity for the same key, statistics, jit, vmap, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from rlkit import exploration as ex

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("use_jit", [False, True])
def test_gaussian_noise_rlax_parity(use_jit):
    fn = jax.jit(ex.add_gaussian_noise) if use_jit else ex.add_gaussian_noise
    action = jnp.array([0.5, -0.2, 1.0])
    np.testing.assert_allclose(
        fn(KEY, action, 0.3), rlax.add_gaussian_noise(KEY, action, 0.3), rtol=1e-6
    )
    np.testing.assert_allclose(fn(KEY, action, 0.0), action)
    scalar = jnp.array(0.1)
    np.testing.assert_allclose(
        fn(KEY, scalar, 2.0), rlax.add_gaussian_noise(KEY, scalar, 2.0), rtol=1e-6
    )


def test_gaussian_noise_statistics_and_vmap():
    keys = jax.random.split(KEY, 20000)
    action = jnp.array([1.0, -1.0])
    out = jax.vmap(ex.add_gaussian_noise, in_axes=(0, None, None))(keys, action, 0.5)
    np.testing.assert_allclose(out.mean(0), action, atol=4 * 0.5 / np.sqrt(20000))
    np.testing.assert_allclose(out.std(0), [0.5, 0.5], rtol=0.03)
    np.testing.assert_allclose(out[3], ex.add_gaussian_noise(keys[3], action, 0.5), rtol=1e-6)


@pytest.mark.parametrize("use_jit", [False, True])
def test_ou_noise_rlax_parity_and_hand_computed(use_jit):
    j = jax.jit if use_jit else (lambda f: f)
    action = jnp.array([0.1, 0.2])
    noise_tm1 = jnp.array([1.0, -2.0])
    ours = j(ex.add_ornstein_uhlenbeck_noise)(KEY, action, noise_tm1, 0.15, 0.2)
    ref = rlax.add_ornstein_uhlenbeck_noise(KEY, action, noise_tm1, 0.15, 0.2)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    # With zero innovation: a + (1 - damping) * noise_tm1.
    np.testing.assert_allclose(
        j(ex.add_ornstein_uhlenbeck_noise)(KEY, action, noise_tm1, 0.25, 0.0),
        [0.1 + 0.75, 0.2 - 1.5],
        rtol=1e-6,
    )
    noise = j(ex.ornstein_uhlenbeck_noise)(KEY, noise_tm1, 0.15, 0.2)
    np.testing.assert_allclose(action + noise, ref, rtol=1e-6)


def test_ou_stationary_std():
    damping, stddev, steps = 0.3, 0.5, 4000

    def step(noise, key):
        noise = ex.ornstein_uhlenbeck_noise(key, noise, damping, stddev)
        return noise, noise

    _, path = jax.lax.scan(step, jnp.zeros(4), jax.random.split(KEY, steps))
    path = np.asarray(path[200:])  # drop burn-in
    expected = stddev / np.sqrt(1 - (1 - damping) ** 2)
    np.testing.assert_allclose(path.std(), expected, rtol=0.05)
    # Lag-1 autocorrelation of an AR(1) process is (1 - damping).
    corr = np.corrcoef(path[:-1].ravel(), path[1:].ravel())[0, 1]
    np.testing.assert_allclose(corr, 1 - damping, atol=0.05)


@pytest.mark.parametrize("use_jit", [False, True])
def test_dirichlet_noise_rlax_parity(use_jit):
    fn = (
        jax.jit(ex.add_dirichlet_noise, static_argnums=(2, 3))
        if use_jit
        else (ex.add_dirichlet_noise)
    )
    prior = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(1), (3, 5)))
    ours = fn(KEY, prior, 0.3, 0.25)
    np.testing.assert_allclose(ours, rlax.add_dirichlet_noise(KEY, prior, 0.3, 0.25), rtol=1e-5)
    np.testing.assert_allclose(ours.sum(-1), 1.0, rtol=1e-5)
    assert (ours >= 0.75 * prior - 1e-7).all()  # noise adds at most fraction of mass
    np.testing.assert_allclose(fn(KEY, prior, 0.3, 0.0), prior)


def test_dirichlet_noise_unbatched_and_mean():
    prior = jnp.array([0.7, 0.2, 0.1])
    keys = jax.random.split(KEY, 5000)
    out = jax.vmap(ex.add_dirichlet_noise, in_axes=(0, None, None, None))(keys, prior, 0.5, 0.5)
    assert out.shape == (5000, 3)
    # E[noise] = uniform, so E[out] = 0.5 prior + 0.5 / 3.
    np.testing.assert_allclose(out.mean(0), 0.5 * prior + 0.5 / 3, atol=0.01)


def test_errors():
    with pytest.raises(AssertionError):
        ex.add_gaussian_noise(KEY, jnp.array([1, 2]), 0.1)
    with pytest.raises(AssertionError):
        ex.add_gaussian_noise(KEY, jnp.zeros((2, 2)), 0.1)
    with pytest.raises(AssertionError):
        ex.add_ornstein_uhlenbeck_noise(KEY, jnp.zeros(2), jnp.zeros(3), 0.1, 0.1)
    with pytest.raises(AssertionError):
        ex.add_dirichlet_noise(KEY, jnp.ones((1, 2, 3)), 0.3, 0.25)
    with pytest.raises(AssertionError):
        ex.add_dirichlet_noise(KEY, jnp.ones((2, 3)), 1, 0.25)
