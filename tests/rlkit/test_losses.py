"""Tests for rlkit.losses: hand-computed values, jit/vmap, gradients, rlax parity, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlkit
from rlkit.losses import clip_gradient, expectile_loss, huber_loss, l2_loss, likelihood, log_loss

rlax = pytest.importorskip("rlax")
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

RTOL, ATOL = 1e-4, 1e-6


def _maybe_jit(fn, use_jit, **kwargs):
    return jax.jit(fn, **kwargs) if use_jit else fn


@pytest.mark.parametrize("use_jit", [False, True])
def test_huber_loss_values_and_gradient(use_jit):
    x = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    fn = _maybe_jit(huber_loss, use_jit, static_argnums=1)
    np.testing.assert_allclose(fn(x, 1.0), [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5], rtol=RTOL)
    # delta = 2: 0.5 * 2^2 + 2 * (3 - 2) = 4 at |x| = 3.
    np.testing.assert_allclose(fn(x, 2.0), [4.0, 0.5, 0.125, 0.0, 0.125, 0.5, 4.0], rtol=RTOL)
    grad = jax.vmap(jax.grad(lambda v: fn(v, 1.0)))(jnp.array([-3.0, -0.5, 0.5, 3.0]))
    np.testing.assert_allclose(grad, [-1.0, -0.5, 0.5, 1.0], rtol=RTOL)


@pytest.mark.parametrize("use_jit", [False, True])
def test_l2_likelihood_log_expectile_values(use_jit):
    np.testing.assert_allclose(_maybe_jit(l2_loss, use_jit)(jnp.array([1.0, -2.0])), [0.5, 2.0])
    np.testing.assert_allclose(
        _maybe_jit(l2_loss, use_jit)(jnp.array([1.0, -2.0]), jnp.array([0.5, 0.0])), [0.125, 2.0]
    )
    p = jnp.array([0.2, 0.2, 0.0, 1.0])
    t = jnp.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(_maybe_jit(likelihood, use_jit)(p, t), [0.2, 0.8, 1.0, 1.0], RTOL)
    np.testing.assert_allclose(
        _maybe_jit(log_loss, use_jit)(p, t), [-np.log(0.2), -np.log(0.8), 0.0, 0.0], RTOL, ATOL
    )
    # diff = targets - predictions = [2, -2]: weights 0.8 (under-estimate), 0.2 (over-estimate).
    fn = _maybe_jit(expectile_loss, use_jit, static_argnums=2)
    np.testing.assert_allclose(fn(jnp.ones(2), jnp.array([3.0, -1.0]), 0.8), [3.2, 0.8], RTOL)


@pytest.mark.parametrize("use_jit", [False, True])
def test_clip_gradient(use_jit):
    x = jnp.array([0.5, -1.0, 2.0])
    c = jnp.array([3.0, -0.5, -2.0])
    fn = _maybe_jit(clip_gradient, use_jit)
    np.testing.assert_array_equal(fn(x, -1.0, 1.0), x)  # identity forward
    grad = jax.grad(lambda v: jnp.sum(fn(v, -1.0, 1.0) * c))(x)
    np.testing.assert_allclose(grad, [1.0, -0.5, -1.0])
    # grad(0.5 * clip_gradient(x)^2) == grad(huber_loss(x)).
    y = jnp.array([-3.0, -0.25, 0.7, 4.0])
    g_clip = jax.grad(lambda v: jnp.sum(0.5 * fn(v, -1.0, 1.0) ** 2))(y)
    g_huber = jax.grad(lambda v: jnp.sum(huber_loss(v, 1.0)))(y)
    np.testing.assert_allclose(g_clip, g_huber)
    # Pytrees pass through; no gradient reaches the bounds.
    tree = {"a": x, "b": (y,)}
    out = jax.grad(lambda t: jnp.sum(fn(t, -0.1, 0.1)["a"]) + jnp.sum(fn(t, -0.1, 0.1)["b"][0]))(
        tree
    )
    np.testing.assert_allclose(out["a"], np.full(3, 0.1))
    np.testing.assert_allclose(out["b"][0], np.full(4, 0.1))
    g_bounds = jax.grad(lambda lo, hi: jnp.sum(fn(x, lo, hi)), argnums=(0, 1))(-1.0, 1.0)
    np.testing.assert_array_equal(g_bounds, [0.0, 0.0])


def test_vmap_matches_elementwise():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    t = jax.random.uniform(jax.random.PRNGKey(1), (4, 3))
    p = jax.random.uniform(jax.random.PRNGKey(2), (4, 3))
    np.testing.assert_allclose(jax.vmap(huber_loss)(x), huber_loss(x))
    np.testing.assert_allclose(jax.vmap(l2_loss)(x, t), l2_loss(x, t))
    np.testing.assert_allclose(jax.vmap(log_loss)(p, t), log_loss(p, t))
    np.testing.assert_allclose(
        jax.vmap(expectile_loss, in_axes=(0, 0, None))(x, t, 0.3), expectile_loss(x, t, 0.3)
    )


def _value_and_grad(fn, *args, argnums=0):
    return jax.value_and_grad(lambda *a: jnp.sum(fn(*a)), argnums=argnums)(*args)


def _assert_tree_close(actual, expected):
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL)


def test_parity_with_rlax_values_and_gradients():
    keys = jax.random.split(jax.random.PRNGKey(42), 4)
    x = 2.0 * jax.random.normal(keys[0], (7, 3))
    t = jax.random.normal(keys[1], (7, 3))
    # Include the exact kinks |x| = delta, the 0^0 cases, and targets at 0 and 1.
    x = x.at[0, :].set(jnp.array([1.0, -1.0, 0.0]))
    p = jax.random.uniform(keys[2], (7, 3), minval=0.05, maxval=0.95)
    y = jax.random.uniform(keys[3], (7, 3)).at[0].set(jnp.array([0.0, 1.0, 0.5]))
    for delta in (0.5, 1.0):
        _assert_tree_close(
            _value_and_grad(huber_loss, x, delta), _value_and_grad(rlax.huber_loss, x, delta)
        )
    for args in ((x,), (x, t)):
        _assert_tree_close(
            _value_and_grad(l2_loss, *args, argnums=tuple(range(len(args)))),
            _value_and_grad(rlax.l2_loss, *args, argnums=tuple(range(len(args)))),
        )
    for ours, theirs in ((likelihood, rlax.likelihood), (log_loss, rlax.log_loss)):
        _assert_tree_close(
            _value_and_grad(ours, p, y, argnums=(0, 1)),
            _value_and_grad(theirs, p, y, argnums=(0, 1)),
        )
    np.testing.assert_array_equal(
        likelihood(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0])),
        rlax.likelihood(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0])),
    )
    for expectile in (0.1, 0.5, 0.9):
        _assert_tree_close(
            _value_and_grad(expectile_loss, x, t, expectile, argnums=(0, 1)),
            _value_and_grad(rlax.expectile_loss, x, t, expectile, argnums=(0, 1)),
        )
    w = jax.random.normal(keys[3], (7, 3))
    _assert_tree_close(
        jax.grad(lambda v: jnp.sum(clip_gradient(v, -0.3, 0.5) * w))(x),
        jax.grad(lambda v: jnp.sum(rlax.clip_gradient(v, -0.3, 0.5) * w))(x),
    )


def test_exported_at_top_level():
    for name in ("huber_loss", "l2_loss", "likelihood", "log_loss", "expectile_loss"):
        assert getattr(rlkit, name) is getattr(rlkit.losses, name)
    assert rlkit.clip_gradient is clip_gradient


def test_errors():
    ints = jnp.array([1, 2])
    with pytest.raises(AssertionError):
        huber_loss(ints)
    with pytest.raises(AssertionError):
        l2_loss(ints)
    with pytest.raises(AssertionError):
        likelihood(jnp.array([0.5]), jnp.array([1]))
    with pytest.raises(AssertionError):
        expectile_loss(jnp.zeros(3), jnp.zeros(2), 0.5)
    with pytest.raises(AssertionError):
        clip_gradient(ints, -1.0, 1.0)
