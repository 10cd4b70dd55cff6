"""agents.networks: the LAPACK-free orthogonal initialiser and the networks built on it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.networks import ActorCritic, QNetwork, orthogonal
from rlkit.errors import RLKitError


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (256, 256), (3, 5, 7), (1, 1)])
@pytest.mark.parametrize("scale", [1.0, np.sqrt(2), 0.01])
def test_orthogonal_equals_jax_initialiser(shape, scale):
    key = jax.random.key(7)
    want = jax.nn.initializers.orthogonal(scale)(key, shape, jnp.float32)
    got = orthogonal(scale)(key, shape)
    assert got.shape == shape and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=5e-6 * scale, rtol=0)
    m = np.asarray(got).reshape(-1, shape[-1]) / scale
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=2e-6)


def test_orthogonal_vmaps_without_a_lapack_call():
    init = orthogonal(1.0)
    keys = jax.random.split(jax.random.key(0), 8)
    batched = jax.jit(jax.vmap(lambda k: init(k, (64, 64))))
    out = batched(keys)
    for i in (0, 7):
        np.testing.assert_allclose(np.asarray(out[i]), np.asarray(init(keys[i], (64, 64))), atol=1e-6)
    hlo = batched.lower(keys).as_text()
    assert "custom_call" not in hlo and "lapack" not in hlo.lower()


def test_orthogonal_bad_shape_names_the_argument():
    with pytest.raises(RLKitError, match="shape must have rank >= 2"):
        orthogonal()(jax.random.key(0), (5,))
    assert orthogonal()(jax.random.key(0), (0, 3)).shape == (0, 3)


def test_networks_use_it_and_init_under_vmap():
    keys = jax.random.split(jax.random.key(1), 4)
    obs = jnp.zeros((2, 4))
    params = jax.vmap(lambda k: ActorCritic(2).init(k, obs))(keys)
    kernel = params["params"]["actor_torso"]["Dense_0"]["kernel"]  # [4 seeds, 4, 64]
    # Flax hands each layer a key folded from its module path: check shapes and orthogonality.
    assert kernel.shape == (4, 4, 64)
    for k in kernel:
        np.testing.assert_allclose(np.asarray(k @ k.T), 2.0 * np.eye(4), atol=1e-5)
    q = jax.vmap(lambda k: QNetwork(3, hidden=(32,)).init(k, obs))(keys)
    head = q["params"]["Dense_0"]["kernel"]
    assert head.shape == (4, 32, 3)
    for k in head:
        np.testing.assert_allclose(np.asarray(k.T @ k), np.eye(3), atol=1e-5)
