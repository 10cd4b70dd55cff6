"""Tests for the smaller rlax areas: pseudo-rewards, pixel control, embeddings, interruptions,
subsequences, nested updates, tree utilities, k-NN, episodic intrinsic rewards, policy targets.

Hand-computed values, parity with rlax on random inputs, jit against no jit, vmap, gradients.
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import rlkit

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
JITS = [lambda f: f, jax.jit]


@pytest.mark.parametrize("j", JITS)
def test_pixel_control_rewards_hand_computed(j):
    obs = jnp.zeros((2, 2, 4, 1)).at[1, 0, 0, 0].set(1.0).at[1, 1, 3, 0].set(0.5)
    rewards = j(lambda o: rlkit.pixel_control_rewards(o, 2))(obs)
    np.testing.assert_allclose(rewards, [[[0.25, 0.125]]])


def test_feature_control_rewards_hand_computed_and_parity():
    phi = jnp.array([[1.0, -1.0], [3.0, -2.0]])
    for kind, expected in [
        ("feature", [[3.0, -2.0]]),
        ("absolute_change", [[2.0, 1.0]]),
        ("increase", [[2.0, -1.0]]),
        ("decrease", [[-2.0, 1.0]]),
    ]:
        np.testing.assert_allclose(rlkit.feature_control_rewards(phi, kind), expected)
    np.testing.assert_allclose(rlkit.feature_control_rewards(phi, "potential", 0.5), [[0.5, 0.0]])
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    np.testing.assert_allclose(
        rlkit.feature_control_rewards(x, "potential", 0.9),
        rlax.feature_control_rewards(x, "potential", 0.9),
    )


@pytest.mark.parametrize("discount", [0.9, "vector"])
def test_pixel_control_loss_parity_and_gradient(discount):
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    obs = jax.random.uniform(k[0], (4, 4, 6, 3))
    actions = jax.random.randint(k[1], (3,), 0, 2)
    q = jax.random.normal(k[2], (4, 2, 3, 2))
    disc = jnp.array([0.9, 0.0, 0.8]) if discount == "vector" else discount
    ours = jax.jit(rlkit.pixel_control_loss, static_argnums=4)(obs, actions, q, disc, 2)
    np.testing.assert_allclose(ours, rlax.pixel_control_loss(obs, actions, q, disc, 2), rtol=1e-5)
    assert ours.shape == (3, 2, 3)
    # The Q(lambda) target is stopped: the gradient only flows into q[:-1].
    grad = jax.grad(lambda q: rlkit.pixel_control_loss(obs, actions, q, disc, 2).sum())(q)
    np.testing.assert_allclose(grad[-1], 0.0)


def test_embed_oar_hand_computed():
    out = rlkit.embed_oar(jnp.ones((2, 1)), jnp.array([1, 0]), jnp.array([0.0, 100.0]), 3)
    np.testing.assert_allclose(out, [[1, 0, 1, 0, 0], [1, 1, 0, 0, 1]], atol=1e-6)


@pytest.mark.parametrize("j", JITS)
def test_fix_step_type_on_interruptions(j):
    # FIRST=0, MID=1, LAST=2; the MID before a FIRST becomes LAST, a LAST stays.
    step_type = jnp.array([[0, 0], [1, 1], [1, 2], [0, 0], [1, 1]])
    fixed = j(rlkit.fix_step_type_on_interruptions)(step_type)
    np.testing.assert_array_equal(fixed, [[0, 0], [1, 1], [2, 2], [0, 0], [1, 1]])
    np.testing.assert_array_equal(fixed, rlax.fix_step_type_on_interruptions(step_type))


def test_extract_subsequences_and_start_indices():
    traj = jnp.arange(10 * 2).reshape(10, 2)  # traj[t, b] = 2 t + b
    starts = jnp.array([[0, 3], [5, 7]])
    out = rlkit.extract_subsequences(traj, starts, 3)
    assert out.shape == (3, 2, 2)
    np.testing.assert_array_equal(out[:, 1, 0], [11, 13, 15])
    with jax.numpy_rank_promotion("allow"):  # rlax's own code broadcasts across ranks
        np.testing.assert_array_equal(out, rlax.extract_subsequences(traj, starts, 3))
    key = jax.random.PRNGKey(5)
    idx = rlkit.sample_start_indices(key, 4, 3, 6)
    np.testing.assert_array_equal(idx, rlax.sample_start_indices(key, 4, 3, 6))
    assert all(len(set(row.tolist())) == 3 for row in np.asarray(idx))
    with pytest.raises(AssertionError, match="Expected len >= 11"):
        rlkit.extract_subsequences(traj, starts, 3, max_valid_start_idx=8)


@pytest.mark.parametrize("j", JITS)
def test_periodic_and_conditional_update(j):
    new, old = {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}
    update = j(lambda s: rlkit.periodic_update(new, old, s, 5))
    np.testing.assert_array_equal(update(jnp.array(10))["w"], [1, 1])
    np.testing.assert_array_equal(update(jnp.array(11))["w"], [0, 0])
    np.testing.assert_array_equal(rlkit.conditional_update(new, old, True)["w"], [1, 1])


def test_tree_utilities():
    tree = {"a": np.arange(6).reshape(2, 3), "b": np.ones((2, 1))}
    parts = rlkit.tree_split_leaves(tree)
    np.testing.assert_array_equal(parts[1]["a"], [3, 4, 5])
    assert parts[0]["b"].shape == (1,)
    kept = rlkit.tree_split_leaves(tree, keepdim=True)
    assert len(kept) == 2 and kept[0]["a"].shape == (1, 3)
    summed = rlkit.tree_map_zipped(lambda x, y: x + y, [tree, tree])
    np.testing.assert_array_equal(summed["a"], 2 * tree["a"])
    moved = rlkit.transpose_last_axis_to_first({"x": jnp.zeros((2, 3, 4))})
    assert moved["x"].shape == (4, 2, 3)
    assert rlkit.transpose_first_axis_to_last(moved)["x"].shape == (2, 3, 4)
    masked = rlkit.tree_replace_masked(
        {"x": jnp.ones((3, 2))}, None, jnp.array([True, False, True])
    )
    np.testing.assert_array_equal(masked["x"][:, 0], [0, 1, 0])
    scaled = rlkit.tree_fn(lambda x, scale: x * scale, scale=3)({"x": jnp.ones(2)})
    np.testing.assert_array_equal(scaled["x"], [3, 3])


def test_knn_query_hand_computed_and_parity():
    data = jnp.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    result = rlkit.knn_query(data, jnp.array([[0.9, 0.0]]), 2)
    np.testing.assert_array_equal(result.neighbor_indices, [[1, 0]])
    np.testing.assert_allclose(result.neighbor_neg_distances, [[-0.01, -0.81]], rtol=1e-5)
    np.testing.assert_array_equal(result.neighbors[0, 1], [0.0, 0.0])
    k = jax.random.split(jax.random.PRNGKey(6), 2)
    data, queries = jax.random.normal(k[0], (20, 4)), jax.random.normal(k[1], (5, 4))
    ours, theirs = rlkit.knn_query(data, queries, 3), rlax.knn_query(data, queries, 3)
    np.testing.assert_array_equal(ours.neighbor_indices, theirs.neighbor_indices)
    np.testing.assert_allclose(ours.neighbor_neg_distances, theirs.neighbor_neg_distances)


def test_episodic_intrinsic_rewards_reproduce_rlax_with_the_flag():
    k = jax.random.split(jax.random.PRNGKey(7), 2)
    first, second = jax.random.normal(k[0], (3, 2)), jax.random.normal(k[1], (3, 2)) * 0.01
    ours, state = rlkit.episodic_memory_intrinsic_rewards(
        first, 2, 1.0, max_memory_size=8, reproduce_rlax_defects=True
    )
    theirs, rlax_state = rlax.episodic_memory_intrinsic_rewards(first, 2, 1.0, max_memory_size=8)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    ours2, state2 = rlkit.episodic_memory_intrinsic_rewards(
        second, 2, 1.0, state, max_memory_size=8, reproduce_rlax_defects=True
    )
    theirs2, rlax_state2 = rlax.episodic_memory_intrinsic_rewards(
        second, 2, 1.0, rlax_state, max_memory_size=8
    )
    np.testing.assert_allclose(ours2, theirs2, rtol=1e-6)
    np.testing.assert_allclose(state2.memory, rlax_state2.memory)
    np.testing.assert_allclose(state2.distance_sum, rlax_state2.distance_sum, rtol=1e-6)
    assert float(state2.distance_sum) < 0  # rlax's defect: negated squared distances


def test_episodic_intrinsic_rewards_default_is_the_ngu_formula():
    # Memory [0, 0] (first call), one embedding at squared distance 4 from both neighbours:
    # mean d^2 = 4, rate = 4 / (4 + c) - xi, kernel = eps / (rate + eps), s = sqrt(2 K) + c.
    emb = jnp.array([[2.0, 0.0]])
    reward, state = rlkit.episodic_memory_intrinsic_rewards(emb, 2, 1.0, max_memory_size=4)
    c, eps, xi = 1e-3, 1e-4, 8e-3
    rate = 4.0 / (4.0 + c) - xi
    similarity = np.sqrt(2 * eps / (rate + eps)) + c
    np.testing.assert_allclose(reward, [1.0 / similarity], rtol=1e-5)
    np.testing.assert_allclose(state.distance_sum, 8.0)
    assert int(state.next_memory_index) == 1
    np.testing.assert_array_equal(state.memory[0], [2.0, 0.0])
    # The ring buffer wraps and the index stays in range (rlax's would be 1 + 3 % 4 = 4).
    _, state = rlkit.episodic_memory_intrinsic_rewards(
        jnp.ones((4, 2)), 2, 1.0, state, max_memory_size=4
    )
    assert int(state.next_memory_index) == 1
    np.testing.assert_array_equal(state.memory, jnp.ones((4, 2)))
    jitted = jax.jit(
        lambda e: rlkit.episodic_memory_intrinsic_rewards(e, 2, 1.0, max_memory_size=4)[0]
    )
    np.testing.assert_allclose(jitted(emb), reward, rtol=1e-6)


@jax.numpy_rank_promotion("allow")  # distrax's log_prob broadcasts across ranks
def test_policy_targets_and_distillation_loss():
    dist = distrax.Categorical(probs=jnp.array([[0.7, 0.3], [0.9, 0.1]]))
    targets = rlkit.PolicyTarget(actions=jnp.array([0, 1]), weights=jnp.array([0.5, 0.0]))
    loss = rlkit.sampled_policy_distillation_loss(dist, targets)
    np.testing.assert_allclose(loss, -(0.5 * np.log(0.7)) / 2, rtol=1e-5)
    sampled = rlkit.constant_policy_targets(dist, jax.random.PRNGKey(0), 4, 0.2)
    assert sampled.actions.shape == (4, 2) and sampled.weights.shape == (4, 2)
    np.testing.assert_allclose(sampled.weights, 0.2)
    zero = rlkit.zero_policy_targets(dist, jax.random.PRNGKey(0), 4)
    assert float(rlkit.sampled_policy_distillation_loss(dist, zero)) == 0.0

    # Gradients reach the target weights only without the stop-gradient.
    def loss_of(weights, stop):
        t = rlkit.PolicyTarget(actions=jnp.array([0, 1]), weights=weights)
        return rlkit.sampled_policy_distillation_loss(dist, t, stop)

    w = jnp.array([0.5, 0.5])
    np.testing.assert_allclose(jax.grad(loss_of)(w, True), 0.0)
    np.testing.assert_allclose(jax.grad(loss_of)(w, False), -np.log([0.7, 0.1]) / 2, rtol=1e-5)


def test_allsum_over_a_named_axis():
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(rlkit.AllSum()(x), 15.0)
    per_device = jax.vmap(lambda r: rlkit.AllSum("i")(r), axis_name="i")(x)
    np.testing.assert_allclose(per_device, [15.0, 15.0])
