"""Tests for rlkit.vtrace: hand-computed values, jit/vmap, stop-gradients, rlax parity, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlkit
from rlkit.errors import RLKitError
from rlkit.vtrace import (
    VTraceOutput,
    categorical_importance_sampling_ratios,
    leaky_vtrace,
    leaky_vtrace_td_error_and_advantage,
    vtrace,
    vtrace_td_error_and_advantage,
)

rlax = pytest.importorskip("rlax")
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

RTOL, ATOL = 1e-4, 1e-5

# One trajectory of three steps, ending in a termination.
V_TM1 = jnp.array([1.0, 2.0, 3.0])
V_T = jnp.array([2.0, 3.0, 4.0])
R_T = jnp.array([0.0, 1.0, 0.0])
DISCOUNT_T = jnp.array([0.9, 0.9, 0.0])
RHO_TM1 = jnp.array([0.5, 2.0, 1.0])
ARGS = (V_TM1, V_T, R_T, DISCOUNT_T, RHO_TM1)
# td = min(1, rho) (r + gamma v_t - v_tm1) = [0.4, 1.7, -3];  c = min(1, rho) = [0.5, 1, 1]
# e_2 = -3;  e_1 = 1.7 + 0.9 * 1 * -3 = -1;  e_0 = 0.4 + 0.9 * 0.5 * -1 = -0.05
EXPECTED_ERRORS = [-0.05, -1.0, -3.0]


def _close(actual, expected, rtol=RTOL, atol=ATOL):
    # Lists are arrays here, not pytree nodes.
    expected = jax.tree_util.tree_map(np.asarray, expected, is_leaf=lambda x: isinstance(x, list))
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def _maybe_jit(fn, use_jit):
    return jax.jit(fn, static_argnames=("stop_target_gradients",)) if use_jit else fn


@pytest.mark.parametrize("use_jit", [False, True])
def test_vtrace_hand_computed(use_jit):
    fn = _maybe_jit(vtrace, use_jit)
    _close(fn(*ARGS), EXPECTED_ERRORS)
    # lambda = 0.5 halves the traces: e_1 = 1.7 - 0.9 * 0.5 * 3 = 0.35, e_0 = 0.4 + 0.225 * 0.35
    _close(fn(*ARGS, lambda_=0.5), [0.4 + 0.9 * 0.25 * 0.35, 0.35, -3.0])
    _close(fn(*ARGS, lambda_=jnp.array([0.5, 0.5, 0.5])), [0.4 + 0.9 * 0.25 * 0.35, 0.35, -3.0])
    # A masked step is skipped: it repeats the next error, e_0 = 0.4 + 0.45 * -3.
    mask = jnp.array([True, False, True])
    _close(fn(*ARGS, sample_mask=mask), [0.4 + 0.45 * -3.0, -3.0, -3.0])
    # A higher rho clip lets step 1 count twice: td_1 = 3.4, e_1 = 3.4 - 2.7 = 0.7.
    _close(fn(*ARGS, clip_rho_threshold=2.0), [0.4 + 0.45 * 0.7, 0.7, -3.0])


@pytest.mark.parametrize("use_jit", [False, True])
def test_td_error_and_advantage_hand_computed(use_jit):
    fn = _maybe_jit(vtrace_td_error_and_advantage, use_jit)
    out = fn(*ARGS)
    assert isinstance(out, VTraceOutput)
    # v_s = errors + v_tm1 = [0.95, 1, 0]; q = r + gamma [v_1, v_2, v_t[-1]] = [0.9, 1, 0].
    _close(out.errors, EXPECTED_ERRORS)
    _close(out.q_estimate, [0.9, 1.0, 0.0])
    _close(out.pg_advantage, [0.5 * -0.1, -1.0, -3.0])
    _close(fn(*ARGS, clip_pg_rho_threshold=2.0).pg_advantage, [0.5 * -0.1, 2.0 * -1.0, -3.0])


@pytest.mark.parametrize("use_jit", [False, True])
def test_leaky_vtrace_hand_computed(use_jit):
    # alpha = 0.5: rho_bar = c = 0.5 rho + 0.5 min(1, rho) = [0.5, 1.5, 1].
    # td = [0.4, 2.55, -3]; e_1 = 2.55 - 0.9 * 1.5 * 3 = -1.5; e_0 = 0.4 - 0.45 * 1.5 = -0.275.
    fn = _maybe_jit(leaky_vtrace, use_jit)
    _close(fn(*ARGS, 0.5), [-0.275, -1.5, -3.0])
    # alpha = 1 is V-trace.
    _close(fn(*ARGS, 1.0), EXPECTED_ERRORS)
    out = _maybe_jit(leaky_vtrace_td_error_and_advantage, use_jit)(*ARGS, 0.5)
    _close(out.errors, [-0.275, -1.5, -3.0])
    # q = r + gamma [v_1, v_2, v_t[-1]] = [0.9 * 0.5, 1, 0];  pg ratios [0.5, 1.5, 1].
    _close(out.q_estimate, [0.45, 1.0, 0.0])
    _close(out.pg_advantage, [0.5 * (0.45 - 1.0), 1.5 * (1.0 - 2.0), -3.0])


def test_importance_sampling_ratios():
    pi_logits = jnp.array([[np.log(3.0), 0.0], [0.0, 0.0]])  # [0.75, 0.25], [0.5, 0.5]
    mu_logits = jnp.array([[0.0, 0.0], [np.log(4.0), 0.0]])  # [0.5, 0.5], [0.8, 0.2]
    _close(
        categorical_importance_sampling_ratios(pi_logits, mu_logits, jnp.array([0, 1])), [1.5, 2.5]
    )
    _close(
        categorical_importance_sampling_ratios(pi_logits, mu_logits, jnp.array([1, 0])),
        [0.5, 0.625],
    )
    # Any leading batch shape, as in rlax.
    out = jax.jit(categorical_importance_sampling_ratios)(
        pi_logits[None], mu_logits[None], jnp.array([[0, 1]])
    )
    _close(out, [[1.5, 2.5]])


def test_stop_target_gradients():
    def total(stop, *args):
        return jnp.sum(vtrace(*args, stop_target_gradients=stop))

    g_stop = jax.grad(functools.partial(total, True), argnums=(0, 1, 2))(*ARGS)
    _close(g_stop, (-np.ones(3), np.zeros(3), np.zeros(3)))
    g_flow = jax.grad(functools.partial(total, False), argnums=(0, 1, 2))(*ARGS)
    # d sum(e) / d r_0 = rho_bar_0 = 0.5;  d/d r_1 = 1 + gamma_0 c_0 = 1.45.
    _close(g_flow[2], [0.5, 1.45, 1.0 + 0.9 * 1.0 + 0.9 * 0.5 * 0.9 * 1.0])
    assert np.abs(np.asarray(g_flow[1])).sum() > 0
    # The flag may also be a traced bool, as with rlax's lax.select.
    traced = jax.jit(lambda s, v: jnp.sum(vtrace(v, *ARGS[1:], stop_target_gradients=s)))
    _close(jax.grad(traced, argnums=1)(jnp.array(True), V_TM1), -np.ones(3))
    _close(jax.grad(traced, argnums=1)(jnp.array(False), V_TM1), g_flow[0])


def _random_batch(key, b, t, discount):
    keys = jax.random.split(key, 5)
    v_tm1 = jax.random.normal(keys[0], (b, t))
    v_t = jax.random.normal(keys[1], (b, t))
    r_t = jax.random.normal(keys[2], (b, t))
    rho = jnp.exp(jax.random.normal(keys[3], (b, t)))
    discount_t = jnp.full((b, t), discount)
    mask = jax.random.bernoulli(keys[4], 0.7, (b, t))
    return (v_tm1, v_t, r_t, discount_t, rho), mask


def test_vmap_matches_per_example_and_no_recompile():
    args, mask = _random_batch(jax.random.PRNGKey(0), 3, 6, 0.9)
    traces = []

    def fn(*a, **kw):
        traces.append(1)  # runs once per trace, i.e. per compilation
        return vtrace_td_error_and_advantage(*a, clip_pg_rho_threshold=1.5, **kw)

    batched = jax.jit(jax.vmap(fn))
    out = batched(*args, 0.8 * jnp.ones((3, 6)), sample_mask=mask)
    single = jax.jit(vtrace_td_error_and_advantage)
    for i in range(3):
        _close(
            jax.tree_util.tree_map(lambda x, i=i: x[i], out),
            single(*(x[i] for x in args), 0.8, clip_pg_rho_threshold=1.5, sample_mask=mask[i]),
        )
    # A second call with new values of the same shapes reuses the compiled program.
    args2, _ = _random_batch(jax.random.PRNGKey(1), 3, 6, 0.5)
    batched(*args2, 0.8 * jnp.ones((3, 6)), sample_mask=mask)
    assert len(traces) == 1


def _vmapped(fn, *extra, **kw):
    """vmap of fn(v_tm1, v_t, r_t, discount_t, rho_tm1, *extra, **kw) over a leading batch axis.

    Keyword values that are [B, T] arrays are split with the batch; others are bound as is.
    """
    batched_kw = {k: v for k, v in kw.items() if jnp.ndim(v) == 2}
    fixed_kw = {k: v for k, v in kw.items() if k not in batched_kw}

    def single(args, per_example_kw):
        return fn(*args, *extra, **per_example_kw, **fixed_kw)

    return lambda *args: jax.vmap(single)(args, batched_kw)


@pytest.mark.parametrize("discount", [0.0, 0.95, 1.0])
def test_parity_with_rlax(discount):
    args, mask = _random_batch(jax.random.PRNGKey(3), 2, 7, discount)
    kw_cases = [
        {},
        {"lambda_": 0.7, "clip_rho_threshold": 2.0, "sample_mask": mask},
        {"lambda_": jnp.full((2, 7), 0.5), "stop_target_gradients": False},
    ]
    for kw in kw_cases:
        _close(_vmapped(vtrace, **kw)(*args), _vmapped(rlax.vtrace, **kw)(*args))
        _close(
            _vmapped(leaky_vtrace, 0.4, **kw)(*args), _vmapped(rlax.leaky_vtrace, 0.4, **kw)(*args)
        )
        pg_kw = dict(kw, clip_pg_rho_threshold=1.5)
        _close(
            _vmapped(vtrace_td_error_and_advantage, **pg_kw)(*args),
            tuple(_vmapped(rlax.vtrace_td_error_and_advantage, **pg_kw)(*args)),
        )
        _close(
            _vmapped(leaky_vtrace_td_error_and_advantage, 0.4, **pg_kw)(*args),
            tuple(_vmapped(rlax.leaky_vtrace_td_error_and_advantage, 0.4, **pg_kw)(*args)),
        )


def test_gradient_parity_with_rlax():
    args, mask = _random_batch(jax.random.PRNGKey(5), 1, 5, 0.9)
    args = tuple(x[0] for x in args)
    for stop in (True, False):
        for ours, theirs in (
            (vtrace_td_error_and_advantage, rlax.vtrace_td_error_and_advantage),
            (vtrace, rlax.vtrace),
        ):

            def loss(fn, *a, stop=stop):
                out = fn(*a, lambda_=0.9, stop_target_gradients=stop, sample_mask=mask[0])
                return sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(out))

            argnums = (0, 1, 2, 3, 4)
            _close(
                jax.jit(jax.grad(functools.partial(loss, ours), argnums))(*args),
                jax.jit(jax.grad(functools.partial(loss, theirs), argnums))(*args),
            )
    pi, mu = jax.random.normal(jax.random.PRNGKey(6), (2, 4, 3))
    a_t = jnp.array([0, 2, 1, 1])
    _close(
        categorical_importance_sampling_ratios(pi, mu, a_t),
        rlax.categorical_importance_sampling_ratios(pi, mu, a_t),
    )


def test_exported_at_top_level():
    for fn in (
        vtrace,
        vtrace_td_error_and_advantage,
        leaky_vtrace,
        leaky_vtrace_td_error_and_advantage,
        categorical_importance_sampling_ratios,
    ):
        assert getattr(rlkit, fn.__name__) is fn
    assert rlkit.VTraceOutput is VTraceOutput
    assert VTraceOutput._fields == rlax.vtrace_td_error_and_advantage(*ARGS)._fields


def test_errors():
    with pytest.raises(AssertionError):  # rank 2 values
        vtrace(V_TM1[None], *ARGS[1:])
    with pytest.raises(AssertionError):  # int rewards
        vtrace(V_TM1, V_T, jnp.array([0, 1, 0]), DISCOUNT_T, RHO_TM1)
    with pytest.raises(AssertionError):  # mismatched lengths
        vtrace(V_TM1, V_T[:2], R_T, DISCOUNT_T, RHO_TM1)
    with pytest.raises(AssertionError):  # float mask
        vtrace(*ARGS, sample_mask=jnp.ones(3))
    with pytest.raises(RLKitError, match="lambda_"):
        vtrace_td_error_and_advantage(*ARGS, lambda_=jnp.ones(2))
    with pytest.raises(AssertionError):
        leaky_vtrace(*ARGS, lambda_=jnp.ones((3, 1)))
    with pytest.raises(RLKitError, match="a_t"):
        categorical_importance_sampling_ratios(
            jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros((3,), jnp.int32)
        )
