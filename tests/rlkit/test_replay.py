"""Tests for rlkit.replay: contents after wraparound, valid windows, priorities, jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlkit import replay
from rlkit.errors import RLKitError

CAP, ENVS = 5, 2


def _example():
    return {"step": jnp.zeros((), jnp.int32), "obs": jnp.zeros((3,), jnp.float32)}


def _steps(t0: int, t: int):
    """Steps t0..t0+t-1 of both envs; ``step`` encodes (time, env) as 10 * time + env."""
    time = jnp.arange(t0, t0 + t)[:, None]
    env = jnp.arange(ENVS)[None, :]
    step = (10 * time + env).astype(jnp.int32)
    obs = jnp.broadcast_to(step[..., None].astype(jnp.float32), (t, ENVS, 3))
    return {"step": step, "obs": obs}


def _filled():
    """Capacity 5, 6 steps added (3 + 3): steps 1..5 remain, step 5 sits in slot 0."""
    state = replay.init(_example(), CAP, ENVS)
    state = replay.add(state, _steps(0, 3))
    return replay.add(state, _steps(3, 3))


def test_init_shapes_and_dtypes():
    state = replay.init(_example(), CAP, ENVS)
    assert state.data["step"].shape == (CAP, ENVS) and state.data["step"].dtype == jnp.int32
    assert state.data["obs"].shape == (CAP, ENVS, 3)
    assert state.priorities.shape == (CAP, ENVS)
    assert int(state.size) == 0 and int(state.write_index) == 0
    assert not bool(replay.can_sample(state))


def test_contents_after_wraparound_hand_checked():
    state = _filled()
    assert int(state.size) == CAP
    assert int(state.write_index) == 1
    expected = np.array([[50, 51], [10, 11], [20, 21], [30, 31], [40, 41]])
    np.testing.assert_array_equal(state.data["step"], expected)
    np.testing.assert_array_equal(state.data["obs"][..., 2], expected.astype(np.float32))
    # One more step overwrites slot 1 (the oldest, step 1).
    state = replay.add(state, _steps(6, 1))
    np.testing.assert_array_equal(state.data["step"][1], [60, 61])
    assert int(state.write_index) == 2


def test_partial_fill_counts_windows():
    state = replay.add(replay.init(_example(), CAP, ENVS), _steps(0, 2))
    assert int(replay.num_windows(state, 1)) == 2
    assert int(replay.num_windows(state, 2)) == 1
    assert int(replay.num_windows(state, 3)) == 0
    assert not bool(replay.can_sample(state, 3))


@pytest.mark.parametrize("jit", [False, True])
def test_uniform_sample_only_valid_windows(jit):
    state = _filled()  # steps 1..5 stored; windows of 3: starts 1, 2, 3 (not crossing the head)
    fn = jax.jit(replay.sample, static_argnums=(2, 3)) if jit else replay.sample
    batch = fn(state, jax.random.key(0), 3000, 3)
    step = np.asarray(batch.experience["step"])
    assert step.shape == (3000, 3)
    time, env = step // 10, step % 10
    np.testing.assert_array_equal(np.diff(time, axis=1), np.ones((3000, 2)))  # consecutive
    np.testing.assert_array_equal(env, np.repeat(env[:, :1], 3, axis=1))  # one env per window
    assert set(time[:, 0].tolist()) == {1, 2, 3}
    assert set(env[:, 0].tolist()) == {0, 1}
    # Roughly uniform over the 6 (start, env) pairs.
    counts = np.bincount(3 * env[:, 0] + time[:, 0] - 1, minlength=6) / 3000
    np.testing.assert_allclose(counts, np.full(6, 1 / 6), atol=0.03)
    np.testing.assert_allclose(batch.probability, 1 / 6)
    # time_index / env_index locate the window's first step.
    np.testing.assert_array_equal(
        np.asarray(state.data["step"])[batch.time_index, batch.env_index], step[:, 0]
    )


def test_prioritized_frequencies_proportional():
    state = _filled()
    # priorities by (slot, env); slot 0 holds the newest step (5), whose 2-windows cross the head.
    prio = jnp.array([[100.0, 100.0], [1.0, 2.0], [3.0, 0.5], [4.0, 1.0], [2.0, 2.0]])
    state = state._replace(priorities=prio)
    alpha = 0.5
    probs = np.asarray(replay.sampling_probabilities(state, 2, alpha))
    valid = np.array([0, 1, 1, 1, 1], bool)[:, None]  # starts at steps 1..4 (slots 1..4)
    expected = np.where(valid, np.asarray(prio) ** alpha, 0.0)
    expected /= expected.sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-6)

    sample = jax.jit(replay.sample_prioritized, static_argnums=(2, 3))
    keys = jax.random.split(jax.random.key(1), 40)
    counts = np.zeros((CAP, ENVS))
    for k in keys:
        b = sample(state, k, 500, 2, alpha)
        np.add.at(counts, (np.asarray(b.time_index), np.asarray(b.env_index)), 1)
        np.testing.assert_allclose(
            b.probability, expected[np.asarray(b.time_index), np.asarray(b.env_index)], rtol=1e-6
        )
        step = np.asarray(b.experience["step"])
        np.testing.assert_array_equal(np.diff(step // 10, axis=1), 1)
    assert counts[0].sum() == 0  # the window crossing the write head is never drawn
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.01)


def test_alpha_zero_is_uniform_over_valid():
    state = _filled()._replace(priorities=jnp.arange(1.0, 11.0).reshape(CAP, ENVS))
    probs = np.asarray(replay.sampling_probabilities(state, 1, 0.0))
    np.testing.assert_allclose(probs, np.full((CAP, ENVS), 0.1))


def test_new_steps_get_max_priority_and_update():
    state = _filled()
    state = replay.update_priorities(
        state, jnp.array([1, 3]), jnp.array([0, 1]), jnp.array([7.0, 0.25])
    )
    assert float(state.priorities[1, 0]) == 7.0 and float(state.priorities[3, 1]) == 0.25
    assert float(state.max_priority) == 7.0
    state = replay.add(state, _steps(6, 1))  # writes slot 1
    np.testing.assert_array_equal(state.priorities[1], [7.0, 7.0])


def test_importance_weights_formula():
    p = jnp.array([0.5, 0.25, 0.125])
    n, beta = 8, 0.4
    w = replay.importance_weights(p, n, beta)
    raw = (n * np.array([0.5, 0.25, 0.125])) ** (-beta)
    np.testing.assert_allclose(w, raw / raw.max(), rtol=1e-6)
    # beta = 1 fully corrects: w proportional to 1 / P.
    np.testing.assert_allclose(replay.importance_weights(p, n, 1.0), [0.25, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(replay.importance_weights(p, n, 0.0), [1.0, 1.0, 1.0])


def test_jit_matches_eager_and_no_recompile():
    state = replay.init(_example(), CAP, ENVS)
    add = jax.jit(replay.add)
    s1, s2 = add(state, _steps(0, 3)), replay.add(state, _steps(0, 3))
    jax.tree.map(np.testing.assert_array_equal, s1, s2)
    sample = jax.jit(replay.sample, static_argnums=(2, 3))
    b1 = sample(s1, jax.random.key(3), 8, 2)
    b2 = replay.sample(s1, jax.random.key(3), 8, 2)
    jax.tree.map(np.testing.assert_array_equal, b1, b2)
    # jit caches are shared by every jax.jit of the same function, so compare sizes.
    sizes = add._cache_size(), sample._cache_size()
    add(s1, _steps(3, 3))
    sample(s1, jax.random.key(4), 8, 2)
    assert (add._cache_size(), sample._cache_size()) == sizes


def test_vmap_over_seeds():
    def run(key):
        state = replay.init(_example(), CAP, ENVS)
        k1, k2 = jax.random.split(key)
        state = replay.add(state, _steps(0, 3))
        # Per-seed data: shift steps by a seed-dependent amount.
        shift = jax.random.randint(k1, (), 0, 3) * 100
        state = replay.add(state, jax.tree.map(lambda x: x + shift.astype(x.dtype), _steps(3, 3)))
        u = replay.sample(state, k2, 16, 2)
        p = replay.sample_prioritized(state, k2, 16, 2, 0.6)
        return state, u, p

    keys = jax.random.split(jax.random.key(5), 2)
    states, u, p = jax.jit(jax.vmap(run))(keys)
    assert states.data["step"].shape == (2, CAP, ENVS)
    assert u.experience["step"].shape == (2, 16, 2)
    run_one = jax.jit(run)
    for i in range(2):
        single = run_one(keys[i])
        batched = jax.tree.map(lambda x, i=i: x[i], (states, u, p))
        jax.tree.map(np.testing.assert_array_equal, batched, single)


def test_bad_arguments_raise():
    state = replay.init(_example(), CAP, ENVS)
    with pytest.raises(RLKitError, match="num_envs=2"):
        replay.add(state, {"step": jnp.zeros((2, 3), jnp.int32), "obs": jnp.zeros((2, 3, 3))})
    with pytest.raises(RLKitError, match="capacity"):
        replay.add(state, _steps(0, 6))
    with pytest.raises(RLKitError, match="structure"):
        replay.add(state, {"step": jnp.zeros((2, 2), jnp.int32)})
    with pytest.raises(RLKitError, match="sequence_length"):
        replay.sample(state, jax.random.key(0), 4, 6)
    with pytest.raises(RLKitError, match="capacity"):
        replay.init(_example(), 0, ENVS)
