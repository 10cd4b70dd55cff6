"""Tests for rlkit.value_learning: hand-computed values, jit/vmap, gradients, rlax parity, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import rlkit
from rlkit import value_learning
from rlkit.errors import RLKitError

RTOL, ATOL = 1e-4, 1e-5


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def f32(*values):
    return jnp.asarray(values, jnp.float32)


def s32(value):
    return jnp.float32(value)


def i32(*values):
    return jnp.asarray(values if len(values) > 1 else values[0], jnp.int32)


Q3 = f32(1.0, 2.0, 3.0)  # q_tm1 for the one-transition cases
Q2x2 = f32([1.0, 2.0], [3.0, 4.0])  # q_tm1 for the trajectory cases

# name -> (function, args, hand-computed expected value, argnums of the target side, argnums
# of the prediction). The arithmetic is in the comments.
CASES = {
    # 2 + .5 * 3 - 1
    "td_learning": (rlkit.td_learning, (s32(1.0), s32(2.0), s32(0.5), s32(3.0)), 2.5, (1, 3), (0,)),
    # G2 = 2;  G1 = 0 + 1 * (.5 * 4 + .5 * 2) = 3;  G0 = 1 + .5 * (.5 * 2 + .5 * 3) = 2.25.
    "td_lambda": (
        rlkit.td_lambda,
        (f32(1.0, 2.0, 3.0), f32(1.0, 0.0, 2.0), f32(0.5, 1.0, 0.0), f32(2.0, 4.0, 6.0), 0.5),
        f32(1.25, 1.0, -1.0),
        (1, 3),
        (0,),
    ),
    # 1 + .5 * q_t[0] - q_tm1[1] = 1 + 2 - 2
    "sarsa": (
        rlkit.sarsa,
        (Q3, i32(1), s32(1.0), s32(0.5), f32(4.0, 5.0, 6.0), i32(0)),
        1.0,
        (2, 4),
        (0,),
    ),
    # E q_t = .8 + 1.5 + 3 = 5.3;  1 + .5 * 5.3 - 2
    "expected_sarsa": (
        rlkit.expected_sarsa,
        (Q3, i32(1), s32(1.0), s32(0.5), f32(4.0, 5.0, 6.0), f32(0.2, 0.3, 0.5)),
        1.65,
        (2, 4, 5),
        (0,),
    ),
    # q_t[a_t] = (6, 7);  G1 = 2 + 7 = 9;  G0 = 1 + .5 * (.5 * 6 + .5 * 9) = 4.75;  minus (1, 4)
    "sarsa_lambda": (
        rlkit.sarsa_lambda,
        (
            Q2x2,
            i32(0, 1),
            f32(1.0, 2.0),
            f32(0.5, 1.0),
            f32([5.0, 6.0], [7.0, 8.0]),
            i32(1, 0),
            0.5,
        ),
        f32(3.75, 5.0),
        (2, 4),
        (0,),
    ),
    # 1 + .5 * max(4, 6, 5) - q_tm1[2] = 1 + 3 - 3
    "q_learning": (
        rlkit.q_learning,
        (Q3, i32(2), s32(1.0), s32(0.5), f32(4.0, 6.0, 5.0)),
        1.0,
        (2, 4),
        (0,),
    ),
    # The selector ties actions 1 and 2; the first wins: 1 + .5 * q_value[1] - 3 = 1 + 2.5 - 3.
    "double_q_learning": (
        rlkit.double_q_learning,
        (Q3, i32(2), s32(1.0), s32(0.5), f32(4.0, 5.0, 6.0), f32(1.0, 3.0, 3.0)),
        0.5,
        (2, 4),
        (0,),
    ),
    # .75 * max(4, 6, 5) + .25 * q_t[2] = 5.75;  1 + .5 * 5.75 - 3
    "persistent_q_learning": (
        rlkit.persistent_q_learning,
        (Q3, i32(2), s32(1.0), s32(0.5), f32(4.0, 6.0, 5.0), 0.25),
        0.875,
        (2, 4),
        (0,),
    ),
    # tau = 1, alpha = .5, l0 = -1, q_target = (ln 3, 0) at t-1 and t: log pi = (ln .75, ln .25).
    # Bonus .5 * clip(ln .25, -1, 0) = -.5; soft value sum pi (q - log pi) = ln 4.
    # 1 - .5 + .5 * ln 4 - q_tm1[1] = -0.806853
    "munchausen_q_learning": (
        rlkit.munchausen_q_learning,
        (f32(1.0, 2.0), i32(1), s32(1.0), s32(0.5), f32(np.log(3.0), 0.0), f32(np.log(3.0), 0.0),
         1.0, 0.5, -1.0),
        0.5 + 0.5 * np.log(4.0) - 2.0,
        (2, 4, 5),
        (0,),
    ),
    # 1 + .5 * 4 - q_tm1[0]
    "qv_learning": (
        rlkit.qv_learning,
        (Q3, i32(0), s32(1.0), s32(0.5), s32(4.0)),
        2.0,
        (2, 4),
        (0,),
    ),
    # 1 + .5 * 6 - 1
    "qv_max": (rlkit.qv_max, (s32(1.0), s32(1.0), s32(0.5), f32(4.0, 6.0, 5.0)), 3.0, (1, 3), (0,)),
    # max q_t = (6, 8);  G1 = 2 + 8 = 10;  G0 = 1 + .5 * (.5 * 6 + .5 * 10) = 5;  minus (1, 4)
    "q_lambda": (
        rlkit.q_lambda,
        (Q2x2, i32(0, 1), f32(1.0, 2.0), f32(0.5, 1.0), f32([5.0, 6.0], [8.0, 7.0]), 0.5),
        f32(4.0, 6.0),
        (2, 4),
        (0,),
    ),
    # pi(a_t) = (.5, .25), mu = (.25, .5): c = .9 * min(1, (2, .5)) = (.9, .45).
    # E_pi q_t = (5.5, 7.75), q_t[a_t] = (6, 7).  G1 = 2 + 7.75 = 9.75;
    # G0 = 1 + .5 * (5.5 - .9 * 6 + .9 * 9.75) = 5.4375;  minus q_tm1[a_tm1] = (1, 4).
    "retrace": (
        functools.partial(rlkit.retrace, eps=0.0),
        (
            Q2x2,
            f32([5.0, 6.0], [7.0, 8.0]),
            i32(0, 1),
            i32(1, 0),
            f32(1.0, 2.0),
            f32(0.5, 1.0),
            f32([0.5, 0.5], [0.25, 0.75]),
            f32(0.25, 0.5),
            0.9,
        ),
        f32(4.4375, 5.75),
        (1, 4, 6, 7),
        (0,),
    ),
    # c = .8 * min(1, .5) = .4;  G1 = 2 + 5 = 7;  G0 = 1 + .5 * (4 - .4 * 3 + .4 * 7) = 3.8.
    "retrace_continuous": (
        rlkit.retrace_continuous,
        (
            f32(1.0, 2.0),
            f32(3.0),
            f32(4.0, 5.0),
            f32(1.0, 2.0),
            f32(0.5, 1.0),
            f32(np.log(0.5)),
            0.8,
        ),
        f32(2.8, 5.0),
        (1, 2, 3, 5),
        (0,),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_computed_eager_jit_and_vmap(name):
    fn, args, expected, _, _ = CASES[name]
    assert_close(fn(*args), expected)
    assert_close(jax.jit(fn)(*args), expected)
    # vmap over a batch of three: the hand case, and two copies with a shifted prediction
    # (whose error shifts by minus the same amount).
    shifts = f32(0.0, 1.0, -2.0)
    batch = [jnp.stack([jnp.asarray(arg)] * 3) for arg in args]
    batch[0] = batch[0] + shifts.reshape((3,) + (1,) * (batch[0].ndim - 1))
    batched = jax.jit(jax.vmap(fn))(*batch)
    want = jnp.asarray(expected)[None] - shifts.reshape((3,) + (1,) * jnp.ndim(expected))
    assert_close(batched, want)


def test_double_q_learning_breaks_ties_to_the_first_action():
    q_tm1 = f32(0.0, 0.0, 0.0)
    value = f32(10.0, 20.0, 30.0)
    for selector, picked in [((1.0, 1.0, 1.0), 10.0), ((0.0, 2.0, 2.0), 20.0)]:
        error = rlkit.double_q_learning(q_tm1, i32(0), s32(0.0), s32(1.0), value, f32(*selector))
        assert_close(error, picked)
        assert_close(error, rlax.double_q_learning(q_tm1, 0, 0.0, 1.0, value, f32(*selector)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_stop_target_gradients(name):
    fn, args, _, target_argnums, pred_argnums = CASES[name]

    def grads(stop):
        loss = lambda *a: jnp.sum(fn(*a, **stop) ** 2)
        return jax.jit(jax.grad(loss, argnums=target_argnums + pred_argnums))(*args)

    n_target = len(target_argnums)
    default, stopped = grads({}), grads({"stop_target_gradients": True})
    unstopped = grads({"stop_target_gradients": False})
    # Default True: no gradient reaches the target side, the same as passing True.
    assert all(np.abs(g).sum() == 0.0 for g in default[:n_target])
    jax.tree_util.tree_map(assert_close, default, stopped)
    assert any(np.abs(g).sum() > 0.0 for g in unstopped[:n_target])
    # The prediction always gets the gradient 2 * error * (-1) at the chosen entries.
    for grad in (default[n_target:], unstopped[n_target:]):
        assert all(np.abs(g).sum() > 0.0 for g in grad)
    # A traced flag gives the same gradients as the Python bool.
    traced = jax.jit(
        jax.grad(
            lambda flag, *a: jnp.sum(fn(*a, stop_target_gradients=flag) ** 2),
            argnums=tuple(i + 1 for i in target_argnums),
        )
    )
    assert all(np.abs(g).sum() == 0.0 for g in traced(True, *args))
    jax.tree_util.tree_map(assert_close, traced(False, *args), unstopped[:n_target])


# ---------------------------------------------------------------------------------------------
# Parity with rlax on random batches (vmapped and jitted), discounts 0 and 1 included.
# ---------------------------------------------------------------------------------------------

B, T, A = 6, 5, 3


def _random_batch(seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(size=shape).astype(np.float32)

    discount = rng.uniform(0.0, 1.0, (B, T)).astype(np.float32)
    discount[:, 1], discount[:, 3], discount[0] = 0.0, 1.0, 1.0
    logits = rng.normal(size=(B, T, A))
    pi = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    q_t = normal(B, T, A)
    q_t[1, 0, 1] = q_t[1, 0, 0] = q_t[1, 0].max() + 1.0  # an argmax tie
    return {
        "q_tm1": normal(B, T, A),
        "q_t": q_t,
        "a_tm1": rng.integers(0, A, (B, T)).astype(np.int32),
        "a_t": rng.integers(0, A, (B, T)).astype(np.int32),
        "r": normal(B, T),
        "d": discount,
        "v_tm1": normal(B, T),
        "v_t": normal(B, T),
        "lam": rng.uniform(0.0, 1.0, (B, T)).astype(np.float32),
        "pi": pi,
        "mu": rng.uniform(0.05, 1.0, (B, T)).astype(np.float32),
        "log_rhos": normal(B, T - 1),
    }


@functools.cache
def _batched(module, name, in_axes):
    """One jitted, vmapped function per (library, name, in_axes), shared by the calls below."""
    return jax.jit(jax.vmap(getattr(module, name), in_axes=in_axes))


def _parity(name, *args, in_axes=0):
    assert_close(_batched(rlkit, name, in_axes)(*args), _batched(rlax, name, in_axes)(*args))


def test_one_step_errors_match_rlax():
    x = _random_batch(0)
    # One transition per batch element: take time step 1 (discount 0) of every trajectory and,
    # from the first (undiscounted) trajectory, every time step.
    for idx in (np.s_[:, 1], np.s_[0, :], np.s_[:, 2]):
        q_tm1, q_t, a_tm1, a_t = x["q_tm1"][idx], x["q_t"][idx], x["a_tm1"][idx], x["a_t"][idx]
        r, d, v_tm1, v_t, pi = (
            x["r"][idx],
            x["d"][idx],
            x["v_tm1"][idx],
            x["v_t"][idx],
            x["pi"][idx],
        )
        _parity("td_learning", v_tm1, r, d, v_t)
        _parity("sarsa", q_tm1, a_tm1, r, d, q_t, a_t)
        _parity("expected_sarsa", q_tm1, a_tm1, r, d, q_t, pi)
        _parity("q_learning", q_tm1, a_tm1, r, d, q_t)
        _parity("double_q_learning", q_tm1, a_tm1, r, d, q_t, x["q_tm1"][idx][:, ::-1])
        _parity("double_q_learning", q_tm1, a_tm1, r, d, q_t, q_t)
        _parity("persistent_q_learning", q_tm1, a_tm1, r, d, q_t, 0.3, in_axes=(0,) * 5 + (None,))
        _parity("qv_learning", q_tm1, a_tm1, r, d, v_t)
        _parity("qv_max", v_tm1, r, d, q_t)


def test_trajectory_errors_match_rlax():
    x = _random_batch(1)
    q_tm1, q_t, a_tm1, a_t, r, d = x["q_tm1"], x["q_t"], x["a_tm1"], x["a_t"], x["r"], x["d"]
    scalar = (0,) * 5 + (None,)
    for lam in (0.0, 0.7, 1.0):
        _parity("td_lambda", x["v_tm1"], r, d, x["v_t"], lam, in_axes=(0,) * 4 + (None,))
        _parity("sarsa_lambda", q_tm1, a_tm1, r, d, q_t, a_t, lam, in_axes=(0,) * 6 + (None,))
        _parity("q_lambda", q_tm1, a_tm1, r, d, q_t, lam, in_axes=scalar)
        _parity(
            "retrace",
            q_tm1,
            q_t,
            a_tm1,
            a_t,
            r,
            d,
            x["pi"],
            x["mu"],
            lam,
            in_axes=(0,) * 8 + (None,),
        )
        _parity(
            "retrace_continuous",
            q_tm1[..., 0],
            q_t[:, :-1, 0],
            x["v_t"],
            r,
            d,
            x["log_rhos"],
            lam,
            in_axes=(0,) * 6 + (None,),
        )
    # Vector lambda.
    _parity("td_lambda", x["v_tm1"], r, d, x["v_t"], x["lam"])
    _parity("sarsa_lambda", q_tm1, a_tm1, r, d, q_t, a_t, x["lam"])
    _parity("q_lambda", q_tm1, a_tm1, r, d, q_t, x["lam"])
    _parity(
        "retrace_continuous",
        q_tm1[..., 0],
        q_t[:, :-1, 0],
        x["v_t"],
        r,
        d,
        x["log_rhos"],
        x["lam"][:, :-1],
    )
    # Retrace's eps guards a zero behaviour probability.
    _parity(
        "retrace",
        q_tm1,
        q_t,
        a_tm1,
        a_t,
        r,
        d,
        x["pi"],
        x["mu"] * 0.0,
        0.9,
        in_axes=(0,) * 8 + (None,),
    )


def test_munchausen_q_learning_against_the_equation_and_its_limits():
    """The paper's target with tau = .5 (bonus unclipped, then clipped); alpha = 0 and a small
    tau give Q-learning."""
    q_tm1, r, d = f32(1.0, 2.0, 0.5), 1.0, 0.9
    q_tm1_target, q_t_target = f32(0.2, 0.0, -0.3), f32(1.0, 3.0, 2.0)
    tau, alpha = 0.5, 0.9

    def scaled_log_pi(q):
        q = np.asarray(q, np.float64)
        return q - tau * np.log(np.sum(np.exp(q / tau)))

    for a, l0 in [(1, -1.0), (2, -0.1)]:
        pi_t = np.exp(scaled_log_pi(q_t_target) / tau)
        soft_v = np.sum(pi_t * (np.asarray(q_t_target) - scaled_log_pi(q_t_target)))
        bonus = alpha * np.clip(scaled_log_pi(q_tm1_target)[a], l0, 0.0)
        expected = r + bonus + d * soft_v - float(q_tm1[a])
        for fn in (rlkit.munchausen_q_learning, jax.jit(rlkit.munchausen_q_learning)):
            td = fn(q_tm1, i32(a), s32(r), s32(d), q_tm1_target, q_t_target, tau, alpha, l0)
            assert_close(td, expected)
    assert np.clip(scaled_log_pi(q_tm1_target)[2], -0.1, 0.0) == -0.1  # the clip was active
    td = rlkit.munchausen_q_learning(
        q_tm1, i32(0), s32(r), s32(d), q_tm1_target, q_t_target, 1e-3, 0.0, -1.0
    )
    assert_close(td, rlkit.q_learning(q_tm1, i32(0), s32(r), s32(d), q_t_target))
    with pytest.raises(RLKitError, match="q_t_target"):
        rlkit.munchausen_q_learning(q_tm1, i32(0), s32(r), s32(d), q_tm1_target, f32(1.0, 2.0))


def test_second_call_does_not_recompile():
    x = _random_batch(2)
    fn = jax.jit(jax.vmap(rlkit.q_lambda, in_axes=(0,) * 5 + (None,)))
    args = (x["q_tm1"], x["a_tm1"], x["r"], x["d"], x["q_t"])
    fn(*args, 0.9)
    fn(*args[:2], x["r"] + 1.0, *args[3:], 0.5)
    assert fn._cache_size() == 1


# ---------------------------------------------------------------------------------------------
# Wrong ranks, dtypes and lengths raise, naming the argument.
# ---------------------------------------------------------------------------------------------

F3 = f32(1.0, 2.0, 3.0)
I3 = i32(0, 1, 2)
S = s32(0.5)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: rlkit.td_learning(S, S, F3, S), "discount_t"),
        (lambda: rlkit.td_learning(S, 1, S, S), "r_t"),
        (lambda: rlkit.td_lambda(F3, F3, F3, F3[:2], 0.9), "v_t"),
        (lambda: rlkit.td_lambda(F3, F3, F3, F3, f32(0.9, 0.9)), "lambda_"),
        (lambda: rlkit.sarsa(F3, 1.0, S, S, F3, i32(0)), "a_tm1"),
        (lambda: rlkit.q_learning(F3[None], i32(0), S, S, F3), "q_tm1"),
        (lambda: rlkit.q_learning(F3, i32(0), S, S, F3[:2]), "q_t"),
        (lambda: rlkit.expected_sarsa(F3, i32(0), S, S, F3, F3[:2]), "probs_a_t"),
        (lambda: rlkit.double_q_learning(F3, i32(0), S, S, F3, I3), "q_t_selector"),
        (lambda: rlkit.qv_learning(F3, i32(0), S, S, F3), "v_t"),
        (lambda: rlkit.qv_max(F3, S, S, F3), "v_tm1"),
        (lambda: rlkit.sarsa_lambda(Q2x2, i32(0, 1), F3[:2], F3[:2], Q2x2, I3, 0.5), "a_t"),
        (lambda: rlkit.q_lambda(Q2x2, i32(0, 1), F3[:2], F3[:2], jnp.ones((2, 3)), 0.5), "q_t"),
        (
            lambda: rlkit.q_lambda(
                jnp.ones((3, 2)), i32(0, 1), F3[:2], F3[:2], jnp.ones((3, 2)), 0.5
            ),
            "q_tm1",
        ),
        (
            lambda: rlkit.retrace(
                Q2x2, Q2x2, i32(0, 1), i32(0, 1), F3[:2], F3[:2], Q2x2, Q2x2, 0.9
            ),
            "mu_t",
        ),
        (lambda: rlkit.retrace_continuous(F3, F3, F3, F3, F3, F3[:2], 0.9), "q_t"),
        (lambda: rlkit.retrace_continuous(F3, F3[:2], F3, F3, F3, F3, 0.9), "log_rhos"),
    ],
)
def test_bad_arguments_raise(call, name):
    with pytest.raises(RLKitError, match=name) as info:
        call()
    assert isinstance(info.value, AssertionError)  # what rlax (chex) raises, too


def test_public_names():
    assert set(value_learning.__all__) <= set(rlkit.__all__)
    for name in value_learning.__all__:
        assert getattr(rlkit, name) is getattr(value_learning, name)
        assert getattr(rlkit, name).__doc__
