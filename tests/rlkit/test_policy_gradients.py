"""Tests for rlkit.policy_gradients: hand-computed values, jit/vmap, stop-gradients, rlax parity."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlkit
from rlkit.errors import RLKitError
from rlkit.policy_gradients import (
    clipped_surrogate_pg_loss,
    dpg_loss,
    entropy_loss,
    policy_gradient_loss,
    qpg_loss,
    rm_loss,
    rpg_loss,
)

rlax = pytest.importorskip("rlax")
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

RTOL, ATOL = 1e-4, 1e-6
LN3 = float(np.log(3.0))

# Two steps, two actions: pi_0 = [0.5, 0.5], pi_1 = [0.75, 0.25].
LOGITS = jnp.array([[0.0, 0.0], [LN3, 0.0]])


def _maybe_jit(fn, use_jit, **kwargs):
    return jax.jit(fn, **kwargs) if use_jit else fn


def _close(actual, expected):
    # Lists are arrays here, not pytree nodes.
    expected = jax.tree_util.tree_map(np.asarray, expected, is_leaf=lambda x: isinstance(x, list))
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("use_jit", [False, True])
def test_policy_gradient_loss_values_and_gradients(use_jit):
    fn = _maybe_jit(policy_gradient_loss, use_jit, static_argnums=4)
    a_t = jnp.array([0, 1])
    adv_t = jnp.array([1.0, 2.0])
    w_t = jnp.array([1.0, 0.5])
    # mean(-log 0.5 * 1 * 1, -log 0.25 * 2 * 0.5)
    expected = 0.5 * (np.log(2.0) + np.log(4.0))
    np.testing.assert_allclose(fn(LOGITS, a_t, adv_t, w_t, True), expected, rtol=RTOL)
    # d/dlogits = -adv w (onehot - pi) / T.
    g_logits, g_adv = jax.grad(fn, argnums=(0, 2))(LOGITS, a_t, adv_t, w_t, True)
    _close(g_logits, [[-0.25, 0.25], [0.375, -0.375]])
    _close(g_adv, [0.0, 0.0])
    g_adv = jax.grad(fn, argnums=2)(LOGITS, a_t, adv_t, w_t, False)
    _close(g_adv, [np.log(2.0) / 2, 0.5 * np.log(4.0) / 2])


@pytest.mark.parametrize("use_jit", [False, True])
def test_entropy_loss_values(use_jit):
    fn = _maybe_jit(entropy_loss, use_jit)
    # Entropies ln 2 and H(0.75, 0.25); weights 1 and 2.
    h1 = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    np.testing.assert_allclose(
        fn(LOGITS, jnp.array([1.0, 2.0])), -(np.log(2.0) + 2 * h1) / 2, rtol=RTOL
    )
    # A -inf logit has probability 0 and adds nothing (0 log 0 = 0), without NaNs.
    logits = jnp.array([[0.0, -jnp.inf], [0.0, 0.0]])
    np.testing.assert_allclose(fn(logits, jnp.ones(2)), -np.log(2.0) / 2, rtol=RTOL)


@pytest.mark.parametrize("use_jit", [False, True])
def test_clipped_surrogate_values_and_gradients(use_jit):
    fn = _maybe_jit(clipped_surrogate_pg_loss, use_jit, static_argnums=3)
    ratios = jnp.array([0.5, 1.5, 1.5])
    adv = jnp.array([1.0, 1.0, -2.0])
    # min(r A, clip(r) A) = [0.5, 1.2, -3.0]
    np.testing.assert_allclose(fn(ratios, adv, 0.2, True), 1.3 / 3, rtol=RTOL)
    g_ratio, g_adv = jax.grad(fn, argnums=(0, 1))(ratios, adv, 0.2, True)
    _close(g_ratio, [-1 / 3, 0.0, 2 / 3])
    _close(g_adv, [0.0, 0.0, 0.0])
    _close(jax.grad(fn, argnums=1)(ratios, adv, 0.2, False), [-0.5 / 3, -1.2 / 3, -1.5 / 3])


@pytest.mark.parametrize("use_jit", [False, True])
def test_dpg_loss_values_and_gradients(use_jit):
    fn = _maybe_jit(dpg_loss, use_jit, static_argnums=3)
    a_t = jnp.array([1.0, 2.0])
    dqda = jnp.array([3.0, 4.0])
    _close(fn(a_t, dqda, None, True), [4.5, 8.0])
    # Clipped to norm 1: dqda = [0.6, 0.8].
    _close(fn(a_t, dqda, 1.0, True), [0.18, 0.32])
    # The gradient moves the action along dQ/da; without the stop the loss is constant in a_t.
    _close(jax.grad(lambda a: jnp.sum(fn(a, dqda, None, True)))(a_t), [-3.0, -4.0])
    _close(jax.grad(lambda a: jnp.sum(fn(a, dqda, None, False)))(a_t), [0.0, 0.0])
    # Clipping a zero gradient stays finite.
    g = jax.grad(lambda d: jnp.sum(fn(a_t, d, 1.0, True)))(jnp.zeros(2))
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("use_jit", [False, True])
def test_qpg_rm_rpg_values_and_gradients(use_jit):
    q_t = jnp.array([[2.0, 2.0], [1.0, 3.0]])
    # Step 1: baseline 0.75 + 0.75 = 1.5, advantages [-0.5, 1.5]; step 0 has none.
    qpg = _maybe_jit(qpg_loss, use_jit, static_argnums=2)
    rm = _maybe_jit(rm_loss, use_jit, static_argnums=2)
    rpg = _maybe_jit(rpg_loss, use_jit, static_argnums=2)
    np.testing.assert_allclose(qpg(LOGITS, q_t, True), 0.0, atol=ATOL)  # sum_a pi A = 0
    np.testing.assert_allclose(rm(LOGITS, q_t, True), -0.25 * 1.5 / 2, rtol=RTOL)
    np.testing.assert_allclose(rpg(LOGITS, q_t, True), 1.5 / 2, rtol=RTOL)
    # grad_k = -pi_k A_k / T for QPG.
    _close(jax.grad(qpg)(LOGITS, q_t, True), [[0.0, 0.0], [0.1875, -0.1875]])
    # q_t is always stopped in QPG and RM (an rlax quirk kept for parity) ...
    for fn in (qpg, rm):
        for stop in (True, False):
            _close(jax.grad(fn, argnums=1)(LOGITS, q_t, stop), np.zeros((2, 2)))
    # ... but the flag decides whether the baseline's policy gets a gradient.
    assert not np.allclose(jax.grad(qpg)(LOGITS, q_t, False), jax.grad(qpg)(LOGITS, q_t, True))
    # In RPG the flag stops q_t: d/dq of sum relu(q - pi.q) = [-0.75, 0.75] at step 1.
    _close(jax.grad(rpg, argnums=1)(LOGITS, q_t, True), np.zeros((2, 2)))
    _close(jax.grad(rpg, argnums=1)(LOGITS, q_t, False), [[0.0, 0.0], [-0.375, 0.375]])


def _vg(fn, argnums, **fixed):
    """value_and_grad(fn) with keyword arguments (flags) bound."""
    return jax.value_and_grad(functools.partial(fn, **fixed), argnums=argnums)


def test_vmap_matches_per_example():
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    b, t, a = 3, 4, 3
    logits = jax.random.normal(keys[0], (b, t, a))
    actions = jax.random.randint(keys[1], (b, t), 0, a)
    adv = jax.random.normal(keys[2], (b, t))
    w = jax.random.uniform(keys[3], (b, t))
    q = jax.random.normal(keys[4], (b, t, a))
    ppo = functools.partial(clipped_surrogate_pg_loss, epsilon=0.2)
    dpg = functools.partial(dpg_loss, dqda_clipping=0.5)
    cases = [
        (policy_gradient_loss, (logits, actions, adv, w)),
        (entropy_loss, (logits, w)),
        (ppo, (w + 0.5, adv)),
        (dpg, (adv, w)),
        (rpg_loss, (logits, q)),
    ]
    for fn, args in cases:
        batched = jax.jit(jax.vmap(fn))(*args)
        single = jax.jit(fn)
        for i in range(b):
            _close(batched[i], single(*(x[i] for x in args)))


def test_parity_with_rlax_values_and_gradients():
    keys = jax.random.split(jax.random.PRNGKey(7), 6)
    t, a = 5, 4
    logits = 2.0 * jax.random.normal(keys[0], (t, a))
    actions = jax.random.randint(keys[1], (t,), 0, a)
    adv = jax.random.normal(keys[2], (t,))
    w = jax.random.uniform(keys[3], (t,))
    q = jax.random.normal(keys[4], (t, a))
    ratios = jnp.exp(0.5 * jax.random.normal(keys[5], (t,)))
    pairs = [
        (policy_gradient_loss, rlax.policy_gradient_loss, (logits, actions, adv, w), (0, 2, 3)),
        (clipped_surrogate_pg_loss, rlax.clipped_surrogate_pg_loss, (ratios, adv), (0, 1)),
        (qpg_loss, rlax.qpg_loss, (logits, q), (0, 1)),
        (rm_loss, rlax.rm_loss, (logits, q), (0, 1)),
        (rpg_loss, rlax.rpg_loss, (logits, q), (0, 1)),
    ]
    for stop in (True, False):
        for ours, theirs, args, argnums in pairs:
            fixed = {"use_stop_gradient": stop}
            if ours is clipped_surrogate_pg_loss:
                fixed["epsilon"] = 0.2
            _close(_vg(ours, argnums, **fixed)(*args), _vg(theirs, argnums, **fixed)(*args))
        for clip in (None, 0.5, 100.0):
            fixed = {"dqda_clipping": clip, "use_stop_gradient": stop}
            _close(
                jax.jacobian(functools.partial(dpg_loss, **fixed), argnums=(0, 1))(adv, w),
                jax.jacobian(functools.partial(rlax.dpg_loss, **fixed), argnums=(0, 1))(adv, w),
            )
            _close(dpg_loss(adv, w, clip, stop), rlax.dpg_loss(adv, w, clip, stop))
    _close(_vg(entropy_loss, (0, 1))(logits, w), _vg(rlax.entropy_loss, (0, 1))(logits, w))


def test_exported_at_top_level():
    for fn in (
        policy_gradient_loss,
        entropy_loss,
        clipped_surrogate_pg_loss,
        dpg_loss,
        qpg_loss,
        rm_loss,
        rpg_loss,
    ):
        assert getattr(rlkit, fn.__name__) is fn


def test_errors():
    a_t = jnp.array([0, 1])
    with pytest.raises(AssertionError):  # logits of rank 1
        policy_gradient_loss(jnp.zeros(2), a_t, jnp.zeros(2), jnp.ones(2))
    with pytest.raises(AssertionError):  # float actions
        policy_gradient_loss(LOGITS, jnp.zeros(2), jnp.zeros(2), jnp.ones(2))
    with pytest.raises(AssertionError):  # adv of another length
        policy_gradient_loss(LOGITS, a_t, jnp.zeros(3), jnp.ones(2))
    with pytest.raises(RLKitError, match="logits_t"):  # logits for another number of steps
        policy_gradient_loss(jnp.zeros((3, 2)), a_t, jnp.zeros(2), jnp.ones(2))
    with pytest.raises(RLKitError, match="w_t"):
        entropy_loss(LOGITS, jnp.ones(3))
    with pytest.raises(AssertionError):
        clipped_surrogate_pg_loss(jnp.ones(2), jnp.ones(3), 0.2)
    with pytest.raises(AssertionError):
        dpg_loss(jnp.ones(2), jnp.ones(3))
    with pytest.raises(AssertionError):
        qpg_loss(LOGITS, jnp.ones((2, 3)))
    with pytest.raises(AssertionError):
        rpg_loss(LOGITS, jnp.ones((2, 2), jnp.int32))
