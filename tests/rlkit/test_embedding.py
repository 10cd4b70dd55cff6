"""Tests for rlkit.embedding's quantile_cosine_embedding: hand-computed values, jit, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlkit
from rlkit.errors import RLKitError


def test_quantile_cosine_embedding_by_hand():
    tau = jnp.array([[0.0, 0.5], [0.25, 1.0]], jnp.float32)
    out = rlkit.quantile_cosine_embedding(tau, 3)
    assert out.shape == (2, 2, 3) and out.dtype == jnp.float32
    # cos(pi i tau), i = 0, 1, 2.
    r = np.sqrt(0.5)
    expected = [[[1, 1, 1], [1, 0, -1]], [[1, r, 0], [1, -1, 1]]]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(
        jax.jit(rlkit.quantile_cosine_embedding, static_argnums=1)(tau, 3), expected, atol=1e-6
    )
    np.testing.assert_allclose(
        rlkit.quantile_cosine_embedding(jnp.float32(0.5), 2), [1, 0], atol=1e-6
    )


def test_quantile_cosine_embedding_errors():
    with pytest.raises(RLKitError, match="tau"):
        rlkit.quantile_cosine_embedding(jnp.array([1, 2], jnp.int32), 4)
    with pytest.raises(RLKitError, match="num_cosines"):
        rlkit.quantile_cosine_embedding(jnp.zeros(2), 0)
