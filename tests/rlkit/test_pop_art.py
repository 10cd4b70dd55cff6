"""Tests for rlkit.pop_art: hand-computed ART step, output preservation, rlax parity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from rlkit import pop_art

STATE = pop_art.PopArtState(
    shift=jnp.array([0.0, 1.0, 2.0]),
    scale=jnp.array([2.0, 3.0, 4.0]),
    second_moment=jnp.array([4.0, 10.0, 20.0]),
)


def test_normalize_unnormalize_hand_computed():
    idx = jnp.array([1, 2, 0])
    x = jnp.array([7.0, -2.0, 4.0])
    normalized = pop_art.normalize(STATE, x, idx)
    np.testing.assert_allclose(normalized, [2.0, -1.0, 2.0])
    np.testing.assert_allclose(pop_art.unnormalize(STATE, normalized, idx), x)
    ref_state = rlax.PopArtState(*STATE)
    np.testing.assert_allclose(normalized, rlax.normalize(ref_state, x, idx))
    np.testing.assert_allclose(
        pop_art.unnormalize(STATE, x, idx), rlax.unnormalize(ref_state, x, idx)
    )


def test_unnormalize_linear():
    inputs = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    idx = jnp.array([2, 0])
    out = pop_art.unnormalize_linear(STATE, inputs, idx)
    assert isinstance(out, pop_art.PopArtOutput)
    np.testing.assert_allclose(out.normalized, [3.0, 4.0])
    np.testing.assert_allclose(out.unnormalized, [3.0 * 4.0 + 2.0, 4.0 * 2.0 + 0.0])
    ref = rlax.unnormalize_linear(rlax.PopArtState(*STATE), inputs, idx)
    np.testing.assert_allclose(out.unnormalized, ref.unnormalized)


@pytest.mark.parametrize("use_jit", [False, True])
def test_art_hand_computed(use_jit):
    fn = jax.jit(pop_art.art, static_argnums=(3, 4, 5)) if use_jit else pop_art.art
    init, _ = pop_art.popart(2, 0.1, 1e-3, 1e3)
    state = fn(init(), jnp.array([2.0, 4.0]), jnp.array([0, 0]), 0.1, 1e-3, 1e3)
    # Both increments use the old statistics and are summed.
    np.testing.assert_allclose(state.shift, [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(state.second_moment, [1.0 + 0.3 + 1.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(state.scale, [np.sqrt(2.8 - 0.36), 1.0], rtol=1e-6)


def test_art_scale_bounds_and_stop_gradient():
    init, _ = pop_art.popart(1, 0.1, 1.0, 1.0)
    state = init()
    for _ in range(3):
        state = pop_art.art(state, jnp.full((4,), 5.0), jnp.zeros(4, jnp.int32), 0.1, 1.0, 1.0)
        np.testing.assert_allclose(state.scale, [1.0])
    grad = jax.grad(
        lambda t: pop_art.art(init(), t, jnp.zeros(3, jnp.int32), 0.1, 1e-3, 1e3).shift.sum()
    )(jnp.ones(3))
    np.testing.assert_array_equal(grad, 0.0)


def _linear(key, hidden=4, outputs=3):
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.normal(k1, (hidden, outputs)), "b": jax.random.normal(k2, (outputs,))}


def test_popart_update_rlax_parity_and_outputs_preserved():
    num_outputs = 3
    init, update = pop_art.popart(num_outputs, 1e-2, 1e-4, 1e4)
    ref_init, ref_update = rlax.popart(num_outputs, 1e-2, 1e-4, 1e4)
    params = _linear(jax.random.PRNGKey(0), outputs=num_outputs)
    ref_params, state, ref_state = params, init(), ref_init()
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))

    def unnormalized_outputs(p, s):
        return (x @ p["w"] + p["b"][None]) * s.scale[None] + s.shift[None]

    before = unnormalized_outputs(params, state)
    update_jit = jax.jit(update)
    for i in range(20):
        key = jax.random.PRNGKey(10 + i)
        targets = jax.random.normal(key, (8,)) * 50.0 + 100.0
        indices = jax.random.randint(jax.random.fold_in(key, 1), (8,), 0, num_outputs)
        params, state = update_jit(params, state, targets, indices)
        ref_params, ref_state = ref_update(ref_params, ref_state, targets, indices)
        np.testing.assert_allclose(state.shift, ref_state.shift, rtol=1e-5)
        np.testing.assert_allclose(state.scale, ref_state.scale, rtol=1e-5)
        np.testing.assert_allclose(params["w"], ref_params["w"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(params["b"], ref_params["b"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(unnormalized_outputs(params, state), before, rtol=1e-4, atol=1e-3)
    assert (state.scale > 1.0).all()  # it learned the targets' spread


def test_pop_flax_keys():
    old = STATE
    new = pop_art.PopArtState(jnp.array([1.0, 0.0, 3.0]), jnp.array([1.0, 6.0, 2.0]), jnp.ones(3))
    haiku = _linear(jax.random.PRNGKey(2))
    flax = {"kernel": haiku["w"], "bias": haiku["b"]}
    out_h = pop_art.pop(haiku, old, new)
    out_f = pop_art.pop(flax, old, new)
    assert set(out_f) == {"kernel", "bias"} and set(out_h) == {"w", "b"}
    np.testing.assert_allclose(out_f["kernel"], out_h["w"])
    np.testing.assert_allclose(out_f["bias"], out_h["b"])
    # b_new = (old.scale * b + old.shift - new.shift) / new.scale
    np.testing.assert_allclose(
        out_h["b"], (old.scale * haiku["b"] + old.shift - new.shift) / new.scale, rtol=1e-6
    )
    ref = rlax.pop(haiku, rlax.PopArtState(*old), rlax.PopArtState(*new))
    np.testing.assert_allclose(out_h["w"], ref["w"], rtol=1e-6)


def test_art_across_devices_matches_single_device():
    """axis_name sums increments over devices: 2 shards == the whole batch on one device."""
    init, _ = pop_art.popart(2, 0.05, 1e-3, 1e3)
    targets = jnp.array([[1.0, 3.0, -2.0], [5.0, 0.5, 2.0]])
    indices = jnp.array([[0, 1, 0], [1, 1, 0]])
    sharded = jax.vmap(
        lambda t, i: pop_art.art(init(), t, i, 0.05, 1e-3, 1e3, axis_name="d"), axis_name="d"
    )(targets, indices)
    whole = pop_art.art(init(), targets.ravel(), indices.ravel(), 0.05, 1e-3, 1e3)
    for leaf_s, leaf_w in zip(sharded, whole):
        np.testing.assert_allclose(leaf_s[0], leaf_w, rtol=1e-6)
        np.testing.assert_allclose(leaf_s[1], leaf_w, rtol=1e-6)
    ref = jax.vmap(
        lambda t, i: rlax.art(rlax.PopArtState(*init()), t, i, 0.05, 1e-3, 1e3, axis_name="d"),
        axis_name="d",
    )(targets, indices)
    np.testing.assert_allclose(sharded.shift, ref.shift, rtol=1e-6)


def test_popart_disabled_and_errors():
    init, update = pop_art.popart(2, None, 1e-3, 1e3)
    params = _linear(jax.random.PRNGKey(3), outputs=2)
    out_params, out_state = update(params, init(), jnp.ones(3), jnp.zeros(3, jnp.int32))
    assert out_params is params
    np.testing.assert_array_equal(out_state.shift, 0.0)
    with pytest.raises(AssertionError):
        pop_art.art(init(), jnp.ones(3), jnp.zeros(2, jnp.int32), 0.1, 1e-3, 1e3)
    with pytest.raises(AssertionError):
        pop_art.art(init(), jnp.ones(3), jnp.zeros(3), 0.1, 1e-3, 1e3)
    with pytest.raises(AssertionError):
        pop_art.normalize(STATE, jnp.ones(3), jnp.zeros(3))
    with pytest.raises(AssertionError):
        pop_art.unnormalize_linear(STATE, jnp.ones((2, 3)), jnp.zeros((2, 1), jnp.int32))
