"""Tests for rlkit/running_statistics.py: running statistics, merging, cross-device sums, reward scaling."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlkit.errors import RLKitError

from rlkit import running_statistics as nz


def _stats_close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.var, b.var, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.count, b.count, rtol=rtol)


def test_init_forms_and_errors():
    for arg in (3, (3,), [3], jnp.zeros(3)):
        state = nz.running_stats_init(arg)
        assert state.mean.shape == (3,) and state.var.shape == (3,) and state.count.shape == ()
        np.testing.assert_array_equal(state.var, 1.0)
        assert float(state.count) == 0.0
    assert nz.running_stats_init((), jnp.float16).mean.dtype == jnp.float16
    assert nz.running_stats_init(jnp.zeros((2, 5))).mean.shape == (2, 5)
    with pytest.raises(RLKitError, match="dtype"):
        nz.running_stats_init(3, jnp.int32)
    with pytest.raises(RLKitError, match="shape_or_example"):
        nz.running_stats_init("3")


@pytest.mark.parametrize("use_jit", [False, True])
def test_update_hand_computed(use_jit):
    update = jax.jit(nz.running_stats_update) if use_jit else nz.running_stats_update
    state = nz.running_stats_init(2)
    state = update(state, jnp.array([[1.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_allclose(state.mean, [2.0, 4.0])
    np.testing.assert_allclose(state.var, [1.0, 4.0])
    np.testing.assert_allclose(state.count, 2.0)
    np.testing.assert_allclose(state.std, [1.0, 2.0])
    # A single sample (no batch axis): data {1, 3, 5} in dim 0, {2, 6, 4} in dim 1.
    state = update(state, jnp.array([5.0, 4.0]))
    np.testing.assert_allclose(state.mean, [3.0, 4.0])
    np.testing.assert_allclose(state.var, [8.0 / 3.0, 8.0 / 3.0], rtol=1e-6)
    np.testing.assert_allclose(state.count, 3.0)


def test_sequential_updates_match_numpy_and_are_stable():
    """Data with mean 1e4 and std 1: naive E[x^2] - E[x]^2 in float32 would be useless."""
    x = (np.random.default_rng(0).normal(size=(40, 8, 3)) + 1e4).astype(np.float32)
    step = jax.jit(lambda s, b: nz.running_stats_update(s, b))  # own cache
    state = nz.running_stats_init(3)
    for chunk in x:
        state = step(state, jnp.asarray(chunk))
    flat = x.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(state.mean, flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(state.var, flat.var(0), rtol=1e-3)
    np.testing.assert_allclose(state.count, 320.0)
    assert step._cache_size() == 1  # the second call did not recompile


def test_mask_excludes_samples():
    batch = jnp.array([[1.0], [jnp.nan], [3.0], [100.0]])
    mask = jnp.array([True, False, True, False])
    state = nz.running_stats_update(nz.running_stats_init(1), batch, mask)
    np.testing.assert_allclose(state.mean, [2.0])
    np.testing.assert_allclose(state.var, [1.0])
    np.testing.assert_allclose(state.count, 2.0)
    # Nothing counts: state unchanged.
    same = nz.running_stats_update(state, batch, jnp.zeros(4, bool))
    _stats_close(same, state)
    # Two batch axes with a 0/1 float mask.
    b2 = jnp.arange(12.0).reshape(2, 3, 2)
    m2 = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    s2 = nz.running_stats_update(nz.running_stats_init(2), b2, m2)
    kept = np.asarray(b2).reshape(6, 2)[np.asarray(m2).ravel() > 0]
    np.testing.assert_allclose(s2.mean, kept.mean(0))
    np.testing.assert_allclose(s2.var, kept.var(0), rtol=1e-6)


def test_merge_halves_equals_whole():
    x = jax.random.normal(jax.random.PRNGKey(0), (37, 4)) * 3.0 + 2.0
    empty = nz.running_stats_init(4)
    whole = nz.running_stats_update(empty, x)
    a = nz.running_stats_update(empty, x[:11])
    b = nz.running_stats_update(empty, x[11:])
    _stats_close(nz.running_stats_merge(a, b), whole)
    _stats_close(nz.running_stats_merge(b, a), whole)  # order-independent
    _stats_close(nz.running_stats_merge(a, empty), a)  # empty is the identity
    _stats_close(nz.running_stats_merge(empty, a), a)
    _stats_close(nz.running_stats_merge(empty, empty), empty)
    _stats_close(jax.jit(nz.running_stats_merge)(a, b), whole)


def test_psum_across_devices_equals_whole():
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 3)) * 2.0 - 1.0  # 4 "devices"
    mask = jax.random.bernoulli(jax.random.PRNGKey(2), 0.7, (4, 6))

    def per_device(shard, shard_mask):
        local = nz.running_stats_update(nz.running_stats_init(3), shard, shard_mask)
        return nz.running_stats_psum(local, "devices")

    out = jax.vmap(per_device, axis_name="devices")(x, mask)
    whole = nz.running_stats_update(nz.running_stats_init(3), x.reshape(24, 3), mask.ravel())
    for i in range(4):
        _stats_close(jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], out), whole)
    # The all_gather + merge route gives the same answer.
    gathered = jax.vmap(
        lambda s, m: jax.lax.all_gather(
            nz.running_stats_update(nz.running_stats_init(3), s, m), "devices"
        ),
        axis_name="devices",
    )(x, mask)
    folded = nz.running_stats_init(3)
    for i in range(4):
        folded = nz.running_stats_merge(
            folded, jax.tree_util.tree_map(lambda leaf, i=i: leaf[0, i], gathered)
        )
    _stats_close(folded, whole)


@pytest.mark.parametrize("use_jit", [False, True])
def test_normalize_denormalize(use_jit):
    norm = (
        jax.jit(nz.running_stats_normalize, static_argnums=2)
        if use_jit
        else (nz.running_stats_normalize)
    )
    state = nz.RunningMeanStd(jnp.array([1.0, -2.0]), jnp.array([4.0, 0.25]), jnp.array(10.0))
    x = jnp.array([[5.0, -2.5], [1.0, 8.0]])
    out = norm(state, x, None, 0.0)
    np.testing.assert_allclose(out, [[2.0, -1.0], [0.0, 20.0]])
    np.testing.assert_allclose(norm(state, x, 5.0, 0.0), [[2.0, -1.0], [0.0, 5.0]])
    np.testing.assert_allclose(nz.running_stats_denormalize(state, out, 0.0), x)
    np.testing.assert_allclose(
        nz.running_stats_denormalize(state, nz.running_stats_normalize(state, x)), x, rtol=1e-6
    )
    # Leading axes of any depth, and a single sample.
    assert nz.running_stats_normalize(state, jnp.zeros((3, 4, 2))).shape == (3, 4, 2)
    np.testing.assert_allclose(nz.running_stats_normalize(state, x[0], eps=0.0), [2.0, -1.0])
    # Before any data: identity up to eps.
    fresh = nz.running_stats_init(2)
    np.testing.assert_allclose(nz.running_stats_normalize(fresh, x), x, rtol=1e-6)


def test_shape_errors():
    state = nz.running_stats_init(3)
    with pytest.raises(RLKitError, match="batch"):
        nz.running_stats_update(state, jnp.zeros((5, 2)))
    with pytest.raises(RLKitError, match="mask"):
        nz.running_stats_update(state, jnp.zeros((5, 3)), jnp.ones(4, bool))
    with pytest.raises(RLKitError, match="x must have shape"):
        nz.running_stats_normalize(state, jnp.zeros((3, 4)))
    with pytest.raises(AssertionError):
        nz.running_stats_merge(state, nz.running_stats_init(2))


def test_vmap_over_independent_statistics():
    """One state per seed: vmap the update over a leading seed axis."""
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 5, 3))
    states = jax.vmap(lambda _: nz.running_stats_init(3))(jnp.arange(2))
    states = jax.vmap(nz.running_stats_update)(states, x)
    for i in range(2):
        single = nz.running_stats_update(nz.running_stats_init(3), x[i])
        _stats_close(jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], states), single)
    chex.assert_shape(states.count, (2,))


def test_reward_scaling_hand_computed():
    state = nz.reward_scaling_init(2)
    gamma = 0.5
    rewards = [jnp.array([1.0, 2.0]), jnp.array([1.0, 2.0]), jnp.array([2.0, 2.0])]
    dones = [jnp.array([False, False]), jnp.array([True, False]), jnp.array([False, False])]
    update = jax.jit(nz.reward_scaling_update)
    for r, d in zip(rewards, dones):
        state = update(state, r, d, gamma)
    # env 0 returns: 1, 1.5 (then reset), 2; env 1 returns: 2, 3, 3.5
    seen = np.array([1.0, 1.5, 2.0, 2.0, 3.0, 3.5])
    np.testing.assert_allclose(state.returns, [2.0, 3.5])
    np.testing.assert_allclose(state.return_stats.mean, seen.mean(), rtol=1e-6)
    np.testing.assert_allclose(state.return_stats.var, seen.var(), rtol=1e-5)
    np.testing.assert_allclose(state.return_stats.count, 6.0)
    scaled = nz.reward_scaling_apply(state, jnp.array([1.0, -3.0]), eps=0.0)
    np.testing.assert_allclose(scaled, np.array([1.0, -3.0]) / seen.std(), rtol=1e-5)
    clipped = nz.reward_scaling_apply(state, jnp.array([100.0, -100.0]), clip=10.0)
    np.testing.assert_allclose(clipped, [10.0, -10.0])


def test_reward_scaling_mask_and_errors():
    state = nz.reward_scaling_init(2)
    state = nz.reward_scaling_update(
        state, jnp.array([1.0, 5.0]), jnp.array([False, True]), 0.9, mask=jnp.array([True, False])
    )
    np.testing.assert_allclose(state.returns, [1.0, 0.0])  # env 1 untouched, not reset
    np.testing.assert_allclose(state.return_stats.count, 1.0)
    np.testing.assert_allclose(state.return_stats.mean, 1.0)
    with pytest.raises(AssertionError):
        nz.reward_scaling_update(state, jnp.ones(3), jnp.zeros(3, bool), 0.9)
    with pytest.raises(AssertionError):
        nz.reward_scaling_update(state, jnp.ones(2, jnp.int32), jnp.zeros(2, bool), 0.9)
    with pytest.raises(RLKitError, match="num_envs"):
        nz.reward_scaling_init(0)
