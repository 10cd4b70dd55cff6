"""Tests for rlkit.base: hand-computed values, jit, vmap, rlax parity, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from rlkit import base
from rlkit.errors import RLKitError


@pytest.mark.parametrize("use_jit", [False, True])
def test_batched_index_values(use_jit):
    fn = jax.jit(base.batched_index, static_argnums=2) if use_jit else base.batched_index
    values = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    indices = jnp.array([2, 0])
    np.testing.assert_allclose(fn(values, indices), [3.0, 4.0])
    np.testing.assert_allclose(fn(values, indices, True), [[3.0], [4.0]])
    # Rank-1 values with a scalar index.
    assert float(fn(jnp.array([7.0, 8.0]), jnp.array(1))) == 8.0


def test_batched_index_matches_rlax_and_vmap():
    key = jax.random.PRNGKey(0)
    values = jax.random.normal(key, (4, 5, 3))
    indices = jax.random.randint(jax.random.PRNGKey(1), (4, 5), 0, 3)
    np.testing.assert_array_equal(
        base.batched_index(values, indices), rlax.batched_index(values, indices)
    )
    np.testing.assert_array_equal(
        jax.vmap(base.batched_index)(values, indices), base.batched_index(values, indices)
    )


def test_batched_index_errors():
    with pytest.raises(AssertionError):
        base.batched_index(jnp.zeros((2, 3)), jnp.zeros((2, 1), jnp.int32))  # wrong rank
    with pytest.raises(AssertionError):
        base.batched_index(jnp.zeros((2, 3)), jnp.zeros((2,), jnp.float32))  # wrong dtype


@pytest.mark.parametrize("use_jit", [False, True])
def test_one_hot(use_jit):
    fn = jax.jit(base.one_hot, static_argnums=(1, 2)) if use_jit else base.one_hot
    out = fn(jnp.array([[0, 2], [1, 5]]), 3)
    expected = np.array([[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 0]]], np.float32)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == jnp.float32
    assert fn(jnp.array(1), 2, jnp.int32).dtype == jnp.int32
    np.testing.assert_array_equal(fn(jnp.array(1), 2), [0.0, 1.0])
    idx = jnp.array([3, 0, 1, 2])
    np.testing.assert_array_equal(fn(idx, 4), rlax.one_hot(idx, 4))


def test_lhs_broadcast():
    out = base.lhs_broadcast(jnp.array([1.0, 2.0]), jnp.zeros((2, 3, 4)))
    assert out.shape == (2, 1, 1)
    assert base.lhs_broadcast(jnp.ones((1, 3)), jnp.zeros((5, 3, 2))).shape == (1, 3, 1)
    with pytest.raises(RLKitError, match="source shape"):
        base.lhs_broadcast(jnp.ones((3,)), jnp.zeros((2, 3)))
    with pytest.raises(RLKitError):
        base.lhs_broadcast(jnp.ones((2, 3, 4)), jnp.zeros((2, 3)))


@pytest.mark.parametrize("use_jit", [False, True])
def test_replace_masked(use_jit):
    fn = jax.jit(base.replace_masked) if use_jit else base.replace_masked
    data = jnp.arange(6.0).reshape(3, 2)
    repl = -jnp.ones((3, 2))
    mask = jnp.array([True, False, True])
    np.testing.assert_array_equal(fn(data, repl, mask), [[-1, -1], [2, 3], [-1, -1]])
    np.testing.assert_array_equal(fn(data, None, mask), [[0, 0], [2, 3], [0, 0]])
    np.testing.assert_array_equal(fn(data, repl, mask), rlax.replace_masked(data, repl, mask))
    fmask = jnp.array([0.0, 1.0, 0.0])
    np.testing.assert_array_equal(fn(data, repl, fmask), [[0, 1], [-1, -1], [4, 5]])


def test_replace_masked_errors():
    with pytest.raises(AssertionError):
        base.replace_masked(jnp.zeros((3, 2)), jnp.zeros((3, 3)), jnp.array([1, 0, 1]))
    with pytest.raises(RLKitError):
        base.replace_masked(jnp.zeros((3, 2)), None, jnp.array([1, 0]))


@pytest.mark.parametrize("use_jit", [False, True])
def test_tree_select(use_jit):
    fn = jax.jit(base.tree_select) if use_jit else base.tree_select
    on_true = {"a": jnp.ones(2), "b": (jnp.array(1), jnp.array(2.0))}
    on_false = {"a": jnp.zeros(2), "b": (jnp.array(7), jnp.array(-2.0))}
    chex.assert_trees_all_equal(fn(jnp.array(True), on_true, on_false), on_true)
    chex.assert_trees_all_equal(fn(jnp.array(False), on_true, on_false), on_false)
    chex.assert_trees_all_equal(
        fn(jnp.array(False), on_true, on_false),
        rlax.tree_select(jnp.array(False), on_true, on_false),
    )


def test_tree_select_vmap_and_errors():
    preds = jnp.array([True, False, True])
    out = jax.vmap(base.tree_select)(preds, (jnp.ones(3),), (jnp.zeros(3),))
    np.testing.assert_array_equal(out[0], [1.0, 0.0, 1.0])
    with pytest.raises(RLKitError, match="same structure"):
        base.tree_select(jnp.array(True), (jnp.ones(2),), [jnp.ones(2)])
    with pytest.raises(AssertionError):
        base.tree_select(jnp.array([True]), jnp.ones(2), jnp.ones(2))
    with pytest.raises(AssertionError):
        base.tree_select(jnp.array(1.0), jnp.ones(2), jnp.ones(2))


def test_tree_split_key_matches_rlax():
    key = jax.random.PRNGKey(42)
    tree = {"x": jnp.zeros(3), "y": [jnp.zeros(()), (jnp.ones(2),)]}
    new_key, keys = base.tree_split_key(key, tree)
    ref_key, ref_keys = rlax.tree_split_key(key, tree)
    chex.assert_trees_all_equal((new_key, keys), (ref_key, ref_keys))
    assert jax.tree_util.tree_structure(keys) == jax.tree_util.tree_structure(tree)
    leaves = [np.asarray(k).tobytes() for k in jax.tree_util.tree_leaves(keys)]
    leaves.append(np.asarray(new_key).tobytes())
    assert len(set(leaves)) == 4  # all distinct
    jit_key, jit_keys = jax.jit(base.tree_split_key)(key, tree)
    chex.assert_trees_all_equal((jit_key, jit_keys), (new_key, keys))


def test_tree_split_key_typed_keys():
    key = jax.random.key(3)
    new_key, keys = base.tree_split_key(key, (1, 2))
    assert jax.dtypes.issubdtype(new_key.dtype, jax.dtypes.prng_key)
    assert jax.dtypes.issubdtype(keys[0].dtype, jax.dtypes.prng_key)
