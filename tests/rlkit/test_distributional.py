"""Tests for rlkit.distributional: hand-computed values, jit/vmap, stop-gradients, rlax parity."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlkit
from rlkit.distributional import (
    categorical_double_q_learning,
    categorical_l2_project,
    categorical_q_learning,
    categorical_td_learning,
    quantile_expected_sarsa,
    quantile_q_learning,
    quantile_regression_loss,
)
from rlkit.errors import RLKitError

rlax = pytest.importorskip("rlax")
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

RTOL, ATOL = 1e-4, 1e-5
ATOMS = jnp.array([0.0, 1.0, 2.0])
F = jnp.float32


def _close(actual, expected, rtol=RTOL, atol=ATOL):
    # Lists are arrays here, not pytree nodes.
    expected = jax.tree_util.tree_map(np.asarray, expected, is_leaf=lambda x: isinstance(x, list))
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def _maybe_jit(fn, use_jit, **kwargs):
    return jax.jit(fn, **kwargs) if use_jit else fn


@pytest.mark.parametrize("use_jit", [False, True])
def test_categorical_l2_project_hand_computed(use_jit):
    fn = _maybe_jit(categorical_l2_project, use_jit)
    # Clipped to [0, 2]: 0.5 splits evenly, 3 -> 2, -1 -> 0, 1.25 splits 3:1 between 1 and 2.
    z_p = jnp.array([0.5, 3.0, -1.0, 1.25])
    probs = jnp.array([0.4, 0.3, 0.2, 0.1])
    _close(fn(z_p, probs, ATOMS), [0.2 + 0.2, 0.2 + 0.075, 0.3 + 0.025])
    # An uneven target support, and a source of another size.
    _close(fn(jnp.array([2.0]), jnp.array([1.0]), jnp.array([0.0, 1.0, 3.0])), [0.0, 0.5, 0.5])


@pytest.mark.parametrize("use_jit", [False, True])
def test_categorical_td_learning_hand_computed(use_jit):
    fn = _maybe_jit(categorical_td_learning, use_jit, static_argnums=6)
    # target_z = 0.5 + 0.5 [0, 1, 2] = [0.5, 1, 1.5] with 1/3 each -> [1/6, 2/3, 1/6].
    # Against q = [0.25, 0.5, 0.25]: CE = (1/3) ln 4 + (2/3) ln 2.
    logits_tm1 = jnp.log(jnp.array([0.25, 0.5, 0.25]))
    args = (ATOMS, logits_tm1, F(0.5), F(0.5), ATOMS, jnp.zeros(3))
    _close(fn(*args, True), np.log(4.0) / 3 + 2 * np.log(2.0) / 3)
    # discount 0: all mass at r = 0.5 -> target [0.5, 0.5, 0].
    args0 = (ATOMS, logits_tm1, F(0.5), F(0.0), ATOMS, jnp.zeros(3))
    _close(fn(*args0, True), 0.5 * np.log(4.0) + 0.5 * np.log(2.0))


# Two actions over atoms [0, 1, 2]. At t, action 1 has mean 1.6 > 1 and is greedy.
Q_LOGITS_T = jnp.log(jnp.array([[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]]))
Q_LOGITS_TM1 = jnp.log(jnp.array([[1 / 3, 1 / 3, 1 / 3], [0.2, 0.3, 0.5]]))


@pytest.mark.parametrize("use_jit", [False, True])
def test_categorical_q_learning_hand_computed(use_jit):
    fn = _maybe_jit(categorical_q_learning, use_jit, static_argnums=7)
    # target_z = 1 + 0.5 [0, 1, 2] = [1, 1.5, 2] with [0.1, 0.2, 0.7] -> [0, 0.2, 0.8].
    args = (ATOMS, Q_LOGITS_TM1, jnp.int32(1), F(1.0), F(0.5), ATOMS, Q_LOGITS_T)
    _close(fn(*args, True), -(0.2 * np.log(0.3) + 0.8 * np.log(0.5)))
    # Double Q-learning with a selector that prefers action 0 (uniform):
    # [1, 1.5, 2] with 1/3 each -> [0, 1/2, 1/2].
    double = _maybe_jit(categorical_double_q_learning, use_jit, static_argnums=8)
    expected = -(0.5 * np.log(0.3) + 0.5 * np.log(0.5))
    _close(double(*args, jnp.array([5.0, 1.0]), True), expected)
    # Ties go to the first action.
    _close(double(*args, jnp.array([2.0, 2.0]), True), expected)
    # With the means as selector, double Q-learning is Q-learning.
    means = jnp.sum(jax.nn.softmax(Q_LOGITS_T) * ATOMS[None, :], axis=-1)
    _close(double(*args, means, True), fn(*args, True))


def test_categorical_gradients():
    # TD: d CE / d logits_tm1 = softmax - target; the target is stopped by default.
    td_grad = jax.jit(jax.grad(categorical_td_learning, argnums=(1, 2, 5)), static_argnums=6)
    logits_tm1 = jnp.log(jnp.array([0.25, 0.5, 0.25]))
    args = (ATOMS, logits_tm1, F(0.5), F(0.5), ATOMS, jnp.zeros(3))
    g = td_grad(*args, True)
    _close(g, ([0.25 - 1 / 6, 0.5 - 2 / 3, 0.25 - 1 / 6], 0.0, np.zeros(3)))
    g = td_grad(*args, False)
    assert abs(float(g[1])) > 0 and np.abs(np.asarray(g[2])).sum() > 0
    # Q-learning: only the taken action's logits move.
    q_grad = jax.jit(jax.grad(categorical_q_learning, argnums=(1, 3, 6)), static_argnums=7)
    args = (ATOMS, Q_LOGITS_TM1, jnp.int32(1), F(1.0), F(0.5), ATOMS, Q_LOGITS_T)
    g = q_grad(*args, True)
    _close(g, ([[0.0, 0.0, 0.0], [0.2, 0.3 - 0.2, 0.5 - 0.8]], 0.0, np.zeros((2, 3))))
    g = q_grad(*args, False)
    assert abs(float(g[1])) > 0 and np.abs(np.asarray(g[2])).sum() > 0


@pytest.mark.parametrize("use_jit", [False, True])
def test_quantile_losses_hand_computed(use_jit):
    src, tau = jnp.array([0.0, 1.0]), jnp.array([0.25, 0.75])
    qr = _maybe_jit(quantile_regression_loss, use_jit, static_argnums=(3, 4))
    # u = target - src: row 0 [0.5, 2] (weight 0.25), row 1 [-0.5 (0.25), 1 (0.75)].
    _close(qr(src, tau, jnp.array([0.5, 2.0]), 0.0, True), 0.3125 + 0.4375)
    # Huber(1): [0.125, 1.5] * 0.25 and [0.125 * 0.25, 0.5 * 0.75].
    _close(qr(src, tau, jnp.array([0.5, 2.0]), 1.0, True), 0.203125 + 0.203125)

    qq = _maybe_jit(quantile_q_learning, use_jit, static_argnums=(7, 8))
    dist_q_tm1 = jnp.array([[0.0, 5.0], [1.0, 6.0]])  # [N, A]; action 0 is [0, 1]
    selector = jnp.array([[0.0, 2.0], [2.0, 4.0]])  # means [1, 3]: action 1
    dist_q_t = jnp.array([[9.0, 0.5], [9.0, 2.0]])
    args = (dist_q_tm1, tau, jnp.int32(0), F(0.0), F(1.0), selector, dist_q_t)
    _close(qq(*args, 0.0, True), 0.75)
    # r = 1, gamma = 0.5: target [1.25, 2]: rows [0.3125, 0.5] and [0.1875, 0.75].
    args = (dist_q_tm1, tau, jnp.int32(0), F(1.0), F(0.5), selector, dist_q_t)
    _close(qq(*args, 0.0, True), 0.40625 + 0.46875)
    # Ties in the selector go to the first action: target 1 + 0.5 * [9, 9] = [5.5, 5.5].
    tied = (dist_q_tm1, tau, jnp.int32(0), F(1.0), F(0.5), jnp.ones((2, 2)), dist_q_t)
    _close(qq(*tied, 0.0, True), 0.25 * 5.5 + 0.75 * 4.5)

    qes = _maybe_jit(quantile_expected_sarsa, use_jit, static_argnums=(7, 8))
    # Action 0's target [0, 0] costs 0 + 0.25 * 1; action 1's target [0.5, 2] costs 0.75.
    dist_q_t = jnp.array([[0.0, 0.5], [0.0, 2.0]])
    args = (dist_q_tm1, tau, jnp.int32(0), F(0.0), F(1.0), dist_q_t, jnp.array([0.25, 0.75]))
    _close(qes(*args, 0.0, True), 0.25 * 0.25 + 0.75 * 0.75)


def test_quantile_stop_gradients():
    src, tau, target = jnp.array([0.0, 1.0]), jnp.array([0.25, 0.75]), jnp.array([0.5, 2.0])
    # As in rlax, quantile_regression_loss's flag does not stop the target's gradient.
    for stop in (True, False):
        g = jax.grad(quantile_regression_loss, argnums=2)(src, tau, target, 0.0, stop)
        _close(g, [0.25 / 2 + 0.25 / 2 * -1, 0.25 / 2 + 0.75 / 2])
    dist_q_tm1 = jnp.array([[0.0, 5.0], [1.0, 6.0]])
    dist_q_t = jnp.array([[0.0, 0.5], [0.0, 2.0]])
    args = (dist_q_tm1, tau, jnp.int32(0), F(0.0), F(1.0), dist_q_t, dist_q_t)
    g = jax.grad(quantile_q_learning, argnums=(0, 6))(*args, 0.0, True)
    assert np.abs(np.asarray(g[0])).sum() > 0
    _close(g[1], np.zeros((2, 2)))
    g = jax.grad(quantile_q_learning, argnums=6)(*args, 0.0, False)
    assert np.abs(np.asarray(g)).sum() > 0
    probs = jnp.array([0.25, 0.75])
    args = (dist_q_tm1, tau, jnp.int32(0), F(0.0), F(1.0), dist_q_t, probs)
    g = jax.grad(quantile_expected_sarsa, argnums=(5, 6))(*args, 0.0, True)
    _close(g, (np.zeros((2, 2)), np.zeros(2)))
    g = jax.grad(quantile_expected_sarsa, argnums=(5, 6))(*args, 0.0, False)
    _close(g[1], [0.25, 0.75])  # d/dprobs = per-action losses


def _categorical_batch(key, b, a, n, discount):
    keys = jax.random.split(key, 6)
    return {
        "q_logits_tm1": jax.random.normal(keys[0], (b, a, n)),
        "a_tm1": jax.random.randint(keys[1], (b,), 0, a),
        "r_t": jax.random.normal(keys[2], (b,)),
        "discount_t": jnp.full((b,), discount),
        "q_logits_t": 2.0 * jax.random.normal(keys[3], (b, a, n)),
        "q_t_selector": jax.random.normal(keys[4], (b, a)),
    }


def _quantile_batch(key, b, n, a, discount):
    keys = jax.random.split(key, 7)
    return {
        "dist_q_tm1": jax.random.normal(keys[0], (b, n, a)),
        "a_tm1": jax.random.randint(keys[1], (b,), 0, a),
        "r_t": jax.random.normal(keys[2], (b,)),
        "discount_t": jnp.full((b,), discount),
        "dist_q_t_selector": jax.random.normal(keys[3], (b, n + 1, a)),
        "dist_q_t": jax.random.normal(keys[4], (b, n + 1, a)),
        "probs_a_t": jax.nn.softmax(jax.random.normal(keys[5], (b, a))),
    }


def _cat_fns(lib, atoms, stop):
    """Per-example losses over a dict batch, atoms shared, for one library."""

    def q(x):
        return lib.categorical_q_learning(
            atoms,
            x["q_logits_tm1"],
            x["a_tm1"],
            x["r_t"],
            x["discount_t"],
            atoms,
            x["q_logits_t"],
            stop,
        )

    def dq(x):
        return lib.categorical_double_q_learning(
            atoms,
            x["q_logits_tm1"],
            x["a_tm1"],
            x["r_t"],
            x["discount_t"],
            atoms,
            x["q_logits_t"],
            x["q_t_selector"],
            stop,
        )

    def td(x):
        return lib.categorical_td_learning(
            atoms, x["q_logits_tm1"][0], x["r_t"], x["discount_t"], atoms, x["q_logits_t"][0], stop
        )

    return {"q": q, "double_q": dq, "td": td}


def _quantile_fns(lib, tau, huber, stop):
    def qq(x):
        return lib.quantile_q_learning(
            x["dist_q_tm1"],
            tau,
            x["a_tm1"],
            x["r_t"],
            x["discount_t"],
            x["dist_q_t_selector"],
            x["dist_q_t"],
            huber,
            stop,
        )

    def qes(x):
        return lib.quantile_expected_sarsa(
            x["dist_q_tm1"],
            tau,
            x["a_tm1"],
            x["r_t"],
            x["discount_t"],
            x["dist_q_t"],
            x["probs_a_t"],
            huber,
            stop,
        )

    def qr(x):
        return lib.quantile_regression_loss(
            x["dist_q_tm1"][:, 0], tau, x["dist_q_t"][:, 0], huber, stop
        )

    return {"q": qq, "expected_sarsa": qes, "regression": qr}


def _values_and_grads(fns, batch):
    """For each fn: sum over the batch of vmap(fn), and its gradient in every float input."""
    floats = {k: v for k, v in batch.items() if jnp.issubdtype(v.dtype, jnp.floating)}
    ints = {k: v for k, v in batch.items() if k not in floats}

    @jax.jit
    def run(floats, ints):
        def total(fn, f):
            return jnp.sum(jax.vmap(fn)({**f, **ints}))

        return {
            name: jax.value_and_grad(functools.partial(total, fn))(floats)
            for name, fn in fns.items()
        }

    return run(floats, ints)


def _close_where_rlax_finite(ours, theirs):
    """rlax's categorical gradients through the target are NaN where a label is exactly 0."""
    for a, e in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs)):
        a, e = np.asarray(a), np.asarray(e)
        assert np.all(np.isfinite(a))
        finite = np.isfinite(e)
        np.testing.assert_allclose(a[finite], e[finite], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("stop", [True, False])
def test_parity_with_rlax_values_and_gradients(stop):
    # One batch covers discount 0, 1 and values between.
    discount = jnp.array([0.0, 0.5, 0.9, 1.0])
    key = jax.random.PRNGKey(11)
    atoms = jnp.linspace(-2.0, 2.0, 7)
    cat_batch = _categorical_batch(key, 4, 3, 7, discount)
    ours = _values_and_grads(_cat_fns(rlkit.distributional, atoms, stop), cat_batch)
    theirs = _values_and_grads(_cat_fns(rlax, atoms, stop), cat_batch)
    if stop:
        _close(ours, theirs)
    else:
        _close_where_rlax_finite(ours, theirs)
    tau = (jnp.arange(5) + 0.5) / 5
    q_batch = _quantile_batch(key, 4, 5, 3, discount)
    huber = 0.0 if stop else 1.0  # each Huber branch once
    _close(
        _values_and_grads(_quantile_fns(rlkit.distributional, tau, huber, stop), q_batch),
        _values_and_grads(_quantile_fns(rlax, tau, huber, stop), q_batch),
    )
    # The projection itself, with its Jacobians, on supports of different sizes.
    z_p = 3.0 * jax.random.normal(key, (9,))
    probs = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(9), (9,)))
    _close(
        jax.jit(jax.jacobian(categorical_l2_project, argnums=(0, 1)))(z_p, probs, atoms),
        jax.jit(jax.jacobian(rlax.categorical_l2_project, argnums=(0, 1)))(z_p, probs, atoms),
    )


def test_target_gradients_at_edge_cases():
    atoms = jnp.linspace(-2.0, 2.0, 7)
    logits_tm1 = jax.random.normal(jax.random.PRNGKey(1), (7,))
    logits_t = jax.random.normal(jax.random.PRNGKey(2), (7,))

    def grads(lib, r, discount):
        fn = jax.grad(lib.categorical_td_learning, argnums=(0, 2, 3, 4, 5))
        return jax.jit(fn, static_argnums=6)(
            atoms, logits_tm1, F(r), F(discount), atoms, logits_t, False
        )

    # r = 0, gamma = 1: every target atom sits on a support atom (the projection's kinks).
    _close(grads(rlkit.distributional, 0.0, 1.0), grads(rlax, 0.0, 1.0))
    # r = 5 puts all mass on the top atom, so most labels are 0: rlax's gradient is NaN,
    # rlkit's is finite (and zero, as every target atom is clipped).
    assert np.isnan(np.asarray(grads(rlax, 5.0, 0.9)[1]))
    ours = grads(rlkit.distributional, 5.0, 0.9)
    _close(ours[1:], (0.0, 0.0, np.zeros(7), np.zeros(7)))


def test_vmap_matches_per_example_and_no_recompile():
    atoms = jnp.linspace(-1.0, 1.0, 5)
    batch = _categorical_batch(jax.random.PRNGKey(1), 3, 2, 5, 0.9)
    q_learning = _cat_fns(rlkit.distributional, atoms, True)["q"]
    traces = []

    def fn(x):
        traces.append(1)  # runs once per trace, i.e. per compilation
        return q_learning(x)

    batched = jax.jit(jax.vmap(fn))
    out = batched(batch)
    single = jax.jit(fn)
    for i in range(3):
        _close(out[i], single({k: v[i] for k, v in batch.items()}))
    batched(_categorical_batch(jax.random.PRNGKey(2), 3, 2, 5, 0.5))
    assert len(traces) == 2  # one for the batched program, one for the single one
    tau = (jnp.arange(4) + 0.5) / 4
    q_batch = _quantile_batch(jax.random.PRNGKey(3), 3, 4, 2, 0.9)
    fn = _quantile_fns(rlkit.distributional, tau, 1.0, True)["expected_sarsa"]
    out = jax.jit(jax.vmap(fn))(q_batch)
    single = jax.jit(fn)
    for i in range(3):
        _close(out[i], single({k: v[i] for k, v in q_batch.items()}))


def test_both_projection_reductions_agree():
    # XLA:CPU runs the matrix-vector product; other backends run the fused weighted sum.
    from rlkit.distributional import _matvec, _weighted_sum

    weights = jax.random.uniform(jax.random.PRNGKey(4), (6, 9))
    probs = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(5), (9,)))
    _close(_matvec(weights, probs), _weighted_sum(weights, probs), rtol=1e-6, atol=1e-7)
    _close(jax.vmap(_matvec)(weights[None], probs[None]), _weighted_sum(weights, probs)[None])


def test_exported_at_top_level():
    for fn in (
        categorical_l2_project,
        categorical_td_learning,
        categorical_q_learning,
        categorical_double_q_learning,
        quantile_regression_loss,
        quantile_q_learning,
        quantile_expected_sarsa,
    ):
        assert getattr(rlkit, fn.__name__) is fn


def test_errors():
    q2 = jnp.zeros((2, 3))
    with pytest.raises(AssertionError):  # support of rank 2
        categorical_l2_project(q2, jnp.ones(3), ATOMS)
    with pytest.raises(AssertionError):  # probs of another length than z_p
        categorical_l2_project(ATOMS, jnp.ones(2), ATOMS)
    with pytest.raises(AssertionError):  # float action
        categorical_q_learning(ATOMS, q2, F(1.0), F(0.0), F(1.0), ATOMS, q2)
    with pytest.raises(AssertionError):  # logits of rank 1
        categorical_q_learning(ATOMS, jnp.zeros(3), jnp.int32(0), F(0.0), F(1.0), ATOMS, q2)
    with pytest.raises(RLKitError, match="q_logits_tm1"):  # 3 atoms, 4 logits
        categorical_q_learning(ATOMS, jnp.zeros((2, 4)), jnp.int32(0), F(0.0), F(1.0), ATOMS, q2)
    with pytest.raises(RLKitError, match="q_t_selector"):
        categorical_double_q_learning(
            ATOMS, q2, jnp.int32(0), F(0.0), F(1.0), ATOMS, q2, jnp.zeros(3)
        )
    with pytest.raises(AssertionError):  # v_logits_t of another length than v_atoms_t
        categorical_td_learning(ATOMS, jnp.zeros(3), F(0.0), F(1.0), ATOMS, jnp.zeros(4))
    with pytest.raises(AssertionError):  # tau of another length than dist_src
        quantile_regression_loss(jnp.zeros(3), jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(RLKitError, match="tau_q_tm1"):
        quantile_q_learning(q2, jnp.zeros(3), jnp.int32(0), F(0.0), F(1.0), q2, q2)
    with pytest.raises(RLKitError, match="probs_a_t"):
        quantile_expected_sarsa(q2, jnp.zeros(2), jnp.int32(0), F(0.0), F(1.0), q2, jnp.ones(2))
    with pytest.raises(AssertionError):  # int discount
        quantile_q_learning(q2, jnp.zeros(2), jnp.int32(0), F(0.0), jnp.int32(1), q2, q2)
