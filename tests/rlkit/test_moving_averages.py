"""Tests for rlkit.moving_averages: hand-computed debiasing, rlax parity, jit, pmean."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from rlkit import moving_averages as ma


def test_hand_computed_two_steps():
    init, update = ma.create_ema(decay=0.5)
    tree = {"a": jnp.array([1.0, 3.0]), "b": jnp.array(4.0)}
    state = init(tree)
    np.testing.assert_array_equal(state.mu["a"], 0.0)
    assert state.mu["a"].shape == () and float(state.decay_product) == 1.0
    moments, state = update(tree, state)
    # One update: debiased moments are the sample moments of the leaf means.
    np.testing.assert_allclose(moments.mean["a"], 2.0)
    np.testing.assert_allclose(moments.variance["a"], (1.0 + 9.0) / 2 - 4.0)
    np.testing.assert_allclose(moments.mean["b"], 4.0)
    np.testing.assert_allclose(moments.variance["b"], 0.0, atol=1e-6)
    moments, state = update({"a": jnp.array([5.0, 5.0]), "b": jnp.array(0.0)}, state)
    # mu = 0.5 * (0.5 * 2) + 0.5 * 5 = 3.0; debias 1 / (1 - 0.25)
    np.testing.assert_allclose(state.mu["a"], 3.0)
    np.testing.assert_allclose(moments.mean["a"], 4.0, rtol=1e-6)
    # nu = 0.5 * (0.5 * 5) + 0.5 * 25 = 13.75 -> 18.333; var = 18.333 - 16
    np.testing.assert_allclose(moments.variance["a"], 13.75 / 0.75 - 16.0, rtol=1e-5)
    np.testing.assert_allclose(state.decay_product, 0.25)


def test_debiased_before_update_is_zero():
    init, _ = ma.create_ema()
    moments = init(jnp.ones(3)).debiased_moments()
    np.testing.assert_array_equal(moments.mean, 0.0)
    np.testing.assert_array_equal(moments.variance, 0.0)


@pytest.mark.parametrize("use_jit", [False, True])
def test_rlax_parity(use_jit):
    init, update = ma.create_ema(decay=0.9)
    ref_init, ref_update = rlax.create_ema(decay=0.9)
    tree = (jnp.zeros(3), {"x": jnp.zeros((2, 2))})
    state, ref_state = init(tree), ref_init(tree)
    step = jax.jit(update) if use_jit else update
    for i in range(5):
        k1, k2 = jax.random.split(jax.random.PRNGKey(i))
        values = (jax.random.normal(k1, (3,)) * 2 + 1, {"x": jax.random.normal(k2, (2, 2))})
        moments, state = step(values, state)
        ref_moments, ref_state = ref_update(values, ref_state)
        for ours, ref in zip(
            jax.tree_util.tree_leaves(moments),
            jax.tree_util.tree_leaves((ref_moments.mean, ref_moments.variance)),
        ):
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(state.decay_product, ref_state.decay_product, rtol=1e-6)


def test_pmean_axis():
    init, update = ma.create_ema(decay=0.8, pmean_axis_name="dev")
    plain_init, plain_update = ma.create_ema(decay=0.8)
    values = jnp.array([[1.0, 2.0], [5.0, 8.0]])  # two devices, each with its own data
    state = init(values[0])
    moments, _ = jax.vmap(update, in_axes=(0, None), axis_name="dev")(values, state)
    whole, _ = plain_update(values, plain_init(values))
    np.testing.assert_allclose(moments.mean, [whole.mean, whole.mean], rtol=1e-6)


def test_state_is_a_pytree_and_jit_does_not_recompile():
    init, update = ma.create_ema(decay=0.9)
    state = init(jnp.zeros(4))
    step = jax.jit(update)
    _, state = step(jnp.ones(4), state)
    _, state = step(jnp.array([2.0, 3.0, 4.0, 5.0]), state)
    assert step._cache_size() == 1
    assert isinstance(state, ma.EmaState)
    assert len(jax.tree_util.tree_leaves(state)) == 3
