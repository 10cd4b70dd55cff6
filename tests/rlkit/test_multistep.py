"""Tests for rlkit.multistep: hand-computed values, jit/vmap, gradients, rlax parity, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from rlax._src import multistep as rlax_multistep  # not exported at rlax's top level

import rlkit
from rlkit import multistep
from rlkit.errors import RLKitError

RTOL, ATOL = 1e-4, 1e-5


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def check_eager_and_jit(fn, args, expected, **kwargs):
    """Same hand-computed result with and without jit (flags and `n` stay static)."""
    bound = functools.partial(fn, **kwargs)
    jax.tree_util.tree_map(assert_close, bound(*args), expected)
    jax.tree_util.tree_map(assert_close, jax.jit(bound)(*args), expected)


# Jitted once per module so that property tests share compilations (eager scans recompile).
gae_jit = jax.jit(rlkit.gae_from_rollout)
nstep_rollout_jit = jax.jit(rlkit.n_step_returns_from_rollout, static_argnames="n")
tgae_jit = jax.jit(rlkit.truncated_generalized_advantage_estimation)


def f32(*values):
    return jnp.asarray(values, jnp.float32)


# ---------------------------------------------------------------------------------------------
# Hand-computed values (worked out in the comments).
# ---------------------------------------------------------------------------------------------

R = f32(1.0, 0.0, 2.0)
D = f32(0.5, 1.0, 0.5)
V = f32(2.0, 4.0, 6.0)


def test_lambda_returns_hand_computed():
    # G2 = 2 + .5 * 6 = 5;  G1 = 0 + 1 * (.5 * 4 + .5 * 5) = 4.5;  G0 = 1 + .5 * (.5 * 2 + .5 * 4.5)
    check_eager_and_jit(rlkit.lambda_returns, (R, D, V, 0.5), f32(2.625, 4.5, 5.0))
    # lambda = 1 is the discounted return bootstrapped on v[-1]; lambda = 0 is one-step TD.
    check_eager_and_jit(rlkit.lambda_returns, (R, D, V), f32(3.5, 5.0, 5.0))
    check_eager_and_jit(rlkit.lambda_returns, (R, D, V, 0.0), f32(2.0, 4.0, 5.0))
    # A vector lambda is read per step: lambda[1] = 0 cuts G1 to 0 + 4 = 4, G0 = 1 + .5 * (4).
    lam = f32(1.0, 0.0, 1.0)
    check_eager_and_jit(rlkit.lambda_returns, (R, D, V, lam), f32(3.0, 4.0, 5.0))


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, (2.0, 4.0, 5.0)),  # r + d v
        (2, (3.0, 5.0, 5.0)),  # G0 = 1 + .5 * (0 + 1 * 4); G1 = 0 + 1 * (2 + .5 * 6); G2 cut
        (5, (3.5, 5.0, 5.0)),  # n > T: the windows stop at the end, bootstrapping on v[-1]
    ],
)
def test_n_step_bootstrapped_returns_hand_computed(n, expected):
    check_eager_and_jit(rlkit.n_step_bootstrapped_returns, (R, D, V), f32(*expected), n=n)


def test_n_step_with_lambda_hand_computed():
    # n = 2, lambda = .5: G1 = 0 + 1 * (.5 * 4 + .5 * (2 + .5 * 6)) = 4.5,
    # G0 = 1 + .5 * (.5 * 2 + .5 * (0 + 1 * 4)) = 2.5, G2 = 2 + .5 * 6 = 5.
    check_eager_and_jit(
        rlkit.n_step_bootstrapped_returns, (R, D, V), f32(2.5, 4.5, 5.0), n=2, lambda_t=0.5
    )


def test_discounted_returns_hand_computed():
    # G2 = 2 + .5 * 6 = 5, G1 = 0 + 5, G0 = 1 + .5 * 5; only v[-1] (or the scalar) is used.
    check_eager_and_jit(rlkit.discounted_returns, (R, D, V), f32(3.5, 5.0, 5.0))
    check_eager_and_jit(rlkit.discounted_returns, (R, D, jnp.float32(6.0)), f32(3.5, 5.0, 5.0))
    check_eager_and_jit(rlkit.discounted_returns, (R, D, f32(-9.0, 9.0, 6.0)), f32(3.5, 5.0, 5.0))


def test_truncated_gae_hand_computed():
    r, d, values = f32(1.0, 0.0, 2.0), f32(0.5, 1.0, 0.0), f32(1.0, 2.0, 3.0, 4.0)
    # deltas: 1 + .5 * 2 - 1 = 1;  0 + 3 - 2 = 1;  2 + 0 * 4 - 3 = -1.
    # A2 = -1;  A1 = 1 + 1 * .5 * -1 = .5;  A0 = 1 + .5 * .5 * .5 = 1.125.
    check_eager_and_jit(
        rlkit.truncated_generalized_advantage_estimation, (r, d, 0.5, values), f32(1.125, 0.5, -1.0)
    )
    # lambda = 0 leaves the one-step TD errors.
    check_eager_and_jit(
        rlkit.truncated_generalized_advantage_estimation, (r, d, 0.0, values), f32(1.0, 1.0, -1.0)
    )


def test_general_off_policy_returns_from_q_and_v_hand_computed():
    q_t, v_t, c_t = f32(1.0, 2.0), f32(3.0, 4.0, 5.0), f32(0.5, 1.0)
    r, d = f32(1.0, 1.0, 1.0), f32(0.5, 1.0, 0.5)
    # G2 = 1 + .5 * 5 = 3.5;  G1 = 1 + (4 - 2 + 3.5) = 6.5;  G0 = 1 + .5 * (3 - .5 + .5 * 6.5).
    check_eager_and_jit(
        rlkit.general_off_policy_returns_from_q_and_v, (q_t, v_t, r, d, c_t), f32(3.875, 6.5, 3.5)
    )


def test_general_off_policy_returns_from_action_values_hand_computed():
    q_t = f32([1.0, 3.0], [2.0, 4.0])
    a_t = jnp.array([1, 0])
    pi_t = f32([0.5, 0.5], [1.0, 0.0])
    r, d = f32(1.0, 2.0), f32(0.5, 1.0)
    c_t = f32(0.5, 123.0)  # the last step's trace is unused
    # E_pi q = (2, 2), q(a) = (3, -); G1 = 2 + 2 = 4;  G0 = 1 + .5 * (2 - .5 * 3 + .5 * 4) = 2.25.
    check_eager_and_jit(
        rlkit.general_off_policy_returns_from_action_values,
        (q_t, a_t, r, d, c_t, pi_t),
        f32(2.25, 4.0),
    )


# A rollout of 5 steps: step 1 is truncated (its final observation is worth 10, while
# values[2] = 3 is the next episode's reset observation), step 3 terminates (its next value 20
# must be ignored).
ROLL_R = f32(1.0, 1.0, 1.0, 1.0, 1.0)
ROLL_V = f32(1.0, 2.0, 3.0, 4.0, 5.0)
ROLL_NV = f32(2.0, 10.0, 4.0, 20.0, 6.0)
ROLL_TERM = jnp.array([False, False, False, True, False])
ROLL_TRUNC = jnp.array([False, True, False, False, False])


def test_gae_from_rollout_hand_computed():
    # gamma = lambda = .5.  deltas: 1 + .5 * 2 - 1 = 1;  1 + .5 * 10 - 2 = 4;  1 + .5 * 4 - 3 = 0;
    # 1 + 0 - 4 = -3;  1 + .5 * 6 - 5 = -1.  Trace factor gamma * lambda = .25, cut after 1 and 3:
    # A4 = -1;  A3 = -3;  A2 = 0 + .25 * -3 = -.75;  A1 = 4;  A0 = 1 + .25 * 4 = 2.
    adv = f32(2.0, 4.0, -0.75, -3.0, -1.0)
    args = (ROLL_R, ROLL_V, ROLL_NV, ROLL_TERM, ROLL_TRUNC, 0.5, 0.5)
    check_eager_and_jit(rlkit.gae_from_rollout, args, (adv, adv + ROLL_V))
    # Float flags give the same answer.
    float_args = (ROLL_R, ROLL_V, ROLL_NV, ROLL_TERM * 1.0, ROLL_TRUNC * 1.0, 0.5, 0.5)
    check_eager_and_jit(rlkit.gae_from_rollout, float_args, (adv, adv + ROLL_V))


def test_gae_from_rollout_truncation_differs_from_termination():
    args = (ROLL_R, ROLL_V, ROLL_NV)
    truncated_adv, _ = gae_jit(*args, ROLL_TERM, ROLL_TRUNC, 0.5, 0.5)
    # The same step 1 marked terminated: delta1 = 1 - 2 = -1, A0 = 1 + .25 * -1 = .75.
    terminated_adv, _ = gae_jit(*args, ROLL_TERM | ROLL_TRUNC, jnp.zeros(5, bool), 0.5, 0.5)
    assert_close(terminated_adv, f32(0.75, -1.0, -0.75, -3.0, -1.0))
    assert_close(truncated_adv[2:], terminated_adv[2:])
    assert abs(float(truncated_adv[1] - terminated_adv[1])) > 1.0
    # The naive `done = terminated or truncated` discount would give the termination answer,
    # and the plain GAE bootstraps step 1 on the reset observation's value (3, not 10).
    naive = tgae_jit(
        ROLL_R, 0.5 * (1.0 - (ROLL_TERM | ROLL_TRUNC)), 0.5, jnp.append(ROLL_V, ROLL_NV[-1])
    )
    assert_close(naive, terminated_adv)


def test_gae_from_rollout_trace_stops_at_boundaries():
    key = jax.random.PRNGKey(0)
    rewards, values, next_values = jax.random.normal(key, (3, 8))
    term = jnp.zeros(8, bool).at[2].set(True)
    trunc = jnp.zeros(8, bool).at[5].set(True)
    adv, _ = gae_jit(rewards, values, next_values, term, trunc, 0.9, 0.95)
    # Changing anything after step 5 leaves steps 0..5 alone; after step 2, steps 0..2.
    adv2, _ = gae_jit(
        rewards.at[6:].add(7.0), values.at[6:].add(3.0), next_values, term, trunc, 0.9, 0.95
    )
    assert_close(adv2[:6], adv[:6])
    assert not np.allclose(adv2[6:], adv[6:])
    adv3, _ = gae_jit(rewards.at[3:].add(7.0), values, next_values, term, trunc, 0.9, 0.95)
    assert_close(adv3[:3], adv[:3])
    # Not even a nan in a later episode reaches an earlier one.
    adv5, _ = gae_jit(rewards, values.at[7].set(jnp.nan), next_values, term, trunc, 0.9, 0.95)
    assert_close(adv5[:6], adv[:6])
    returns = nstep_rollout_jit(rewards, next_values, term, trunc, 0.9, n=4)
    returns2 = nstep_rollout_jit(rewards.at[6].set(jnp.nan), next_values, term, trunc, 0.9, n=4)
    assert_close(returns2[:6], returns[:6])
    assert np.isnan(returns2[6])
    # A terminated step's next value is ignored, even when it is not finite.
    adv4, _ = gae_jit(rewards, values, next_values.at[2].set(jnp.nan), term, trunc, 0.9, 0.95)
    assert_close(adv4, adv)


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, (2.0, 6.0, 3.0, 1.0, 4.0)),  # r + gamma * (1 - term) * next_value
        # G0 = 1 + .5 * (1 + .5 * 10) (stops at the truncation), G1 = 1 + .5 * 10,
        # G2 = 1 + .5 * 1 (stops at the termination, no bootstrap), G3 = 1, G4 = 1 + .5 * 6.
        (2, (4.0, 6.0, 1.5, 1.0, 4.0)),
        (10, (4.0, 6.0, 1.5, 1.0, 4.0)),
    ],
)
def test_n_step_returns_from_rollout_hand_computed(n, expected):
    args = (ROLL_R, ROLL_NV, ROLL_TERM, ROLL_TRUNC, 0.5)
    check_eager_and_jit(rlkit.n_step_returns_from_rollout, args, f32(*expected), n=n)


# ---------------------------------------------------------------------------------------------
# Rollout functions against a plain-Python reference, rlax and the single-episode GAE.
# ---------------------------------------------------------------------------------------------


def _reference_rollout(rewards, values, next_values, term, trunc, gamma, lam, n):
    """Forward-view definitions, written as directly as possible in NumPy float64."""
    rewards, values, next_values = (
        np.asarray(x, np.float64) for x in (rewards, values, next_values)
    )
    term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
    seq_len = len(rewards)
    adv, nstep = np.zeros(seq_len), np.zeros(seq_len)
    for t in range(seq_len):
        # Last step of this episode inside the rollout.
        end = t
        while end < seq_len - 1 and not (term[end] or trunc[end]):
            end += 1
        for k in range(t, end + 1):
            bootstrap = 0.0 if term[k] else next_values[k]
            delta = rewards[k] + gamma * bootstrap - values[k]
            adv[t] += (gamma * lam) ** (k - t) * delta
        last = min(end, t + n - 1)
        for k in range(t, last + 1):
            nstep[t] += gamma ** (k - t) * rewards[k]
        if not term[last]:
            nstep[t] += gamma ** (last - t + 1) * next_values[last]
    return adv, nstep


def test_rollout_functions_match_reference_on_random_episodes():
    rng = np.random.default_rng(1)
    batch, seq_len = 4, 12
    rewards, values, next_values = rng.normal(size=(3, batch, seq_len)).astype(np.float32)
    term = rng.random((batch, seq_len)) < 0.2
    trunc = rng.random((batch, seq_len)) < 0.2
    term[0, -1] = trunc[1, -1] = True  # episodes that end on the rollout's last step
    gae = jax.jit(jax.vmap(rlkit.gae_from_rollout, in_axes=(0, 0, 0, 0, 0, None, None)))
    in_axes = (0, 0, 0, 0, None)
    for gamma, lam, n in [(0.9, 0.8, 3), (1.0, 1.0, 20), (0.0, 0.5, 1)]:
        nstep = jax.jit(
            jax.vmap(functools.partial(rlkit.n_step_returns_from_rollout, n=n), in_axes=in_axes)
        )
        adv, ret = gae(rewards, values, next_values, term, trunc, gamma, lam)
        returns = nstep(rewards, next_values, term, trunc, gamma)
        for i in range(batch):
            want_adv, want_n = _reference_rollout(
                rewards[i], values[i], next_values[i], term[i], trunc[i], gamma, lam, n
            )
            assert_close(adv[i], want_adv)
            assert_close(ret[i], want_adv + values[i])
            assert_close(returns[i], want_n)
        # The n-step returns are rlax's with discount = gamma (1 - term), lambda = 1 - done.
        want_rlax = jax.vmap(functools.partial(rlax.n_step_bootstrapped_returns, n=n))(
            rewards,
            gamma * (1.0 - term),
            next_values,
            lambda_t=(1.0 - (term | trunc)).astype(np.float32),
        )
        assert_close(returns, want_rlax)


def test_gae_from_rollout_equals_truncated_gae_on_one_episode():
    key = jax.random.PRNGKey(2)
    rewards = jax.random.normal(key, (9,))
    all_values = jax.random.normal(jax.random.fold_in(key, 1), (10,))
    no = jnp.zeros(9, bool)
    want = tgae_jit(rewards, jnp.full(9, 0.97), 0.9, all_values)
    adv, ret = gae_jit(rewards, all_values[:-1], all_values[1:], no, no, 0.97, 0.9)
    assert_close(adv, want)
    assert_close(ret, want + all_values[:-1])
    assert_close(
        adv,
        rlax.truncated_generalized_advantage_estimation(
            rewards, jnp.full(9, 0.97), 0.9, all_values
        ),
    )
    # An episode that terminates on its last step is GAE with a zero final discount.
    last = no.at[-1].set(True)
    want = tgae_jit(rewards, jnp.full(9, 0.97).at[-1].set(0.0), 0.9, all_values)
    adv, _ = gae_jit(rewards, all_values[:-1], all_values[1:], last, no, 0.97, 0.9)
    assert_close(adv, want)
    # Truncated on its last step: nothing changes, it bootstraps just as an unfinished rollout.
    adv, _ = gae_jit(rewards, all_values[:-1], all_values[1:], no, last, 0.97, 0.9)
    assert_close(adv, tgae_jit(rewards, jnp.full(9, 0.97), 0.9, all_values))
    # And the n-step return with n >= T over one episode is the discounted return.
    nstep = nstep_rollout_jit(rewards, all_values[1:], no, no, 0.97, n=50)
    assert_close(nstep, rlkit.discounted_returns(rewards, jnp.full(9, 0.97), all_values[1:]))


def test_rollout_vector_gamma_and_lambda():
    args = (ROLL_R, ROLL_V, ROLL_NV, ROLL_TERM, ROLL_TRUNC)
    half = jnp.full(5, 0.5)
    scalar = gae_jit(*args, 0.5, 0.5)
    vector = gae_jit(*args, half, half)
    jax.tree_util.tree_map(assert_close, vector, scalar)
    assert_close(
        nstep_rollout_jit(ROLL_R, ROLL_NV, ROLL_TERM, ROLL_TRUNC, half, n=2),
        nstep_rollout_jit(ROLL_R, ROLL_NV, ROLL_TERM, ROLL_TRUNC, 0.5, n=2),
    )


# ---------------------------------------------------------------------------------------------
# Parity with rlax on random batches, under vmap and jit.
# ---------------------------------------------------------------------------------------------

B, T, A = 5, 7, 3


def _random_batch(seed=0):
    rng = np.random.default_rng(seed)
    discount = rng.uniform(0.0, 1.0, (B, T)).astype(np.float32)
    discount[:, 1] = 0.0  # a terminal transition inside the trajectory
    discount[:, 3] = 1.0  # an undiscounted one
    discount[0] = 1.0  # a whole trajectory without discounting
    logits = rng.normal(size=(B, T, A))
    pi = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return {
        "r": rng.normal(size=(B, T)).astype(np.float32),
        "d": discount,
        "v": rng.normal(size=(B, T)).astype(np.float32),
        "values": rng.normal(size=(B, T + 1)).astype(np.float32),
        "lam": rng.uniform(0.0, 1.0, (B, T)).astype(np.float32),
        "q": rng.normal(size=(B, T, A)).astype(np.float32),
        "a": rng.integers(0, A, (B, T)).astype(np.int32),
        "pi": pi.astype(np.float32),
        "c": rng.uniform(0.0, 1.0, (B, T)).astype(np.float32),
    }


@functools.cache
def _batched(module, name, in_axes, static_kwargs):
    """One jitted, vmapped function per (library, name, in_axes, static kwargs)."""
    fn = functools.partial(getattr(module, name), **dict(static_kwargs))
    return jax.jit(jax.vmap(fn, in_axes=in_axes))


def _both(name, in_axes, *args, **static_kwargs):
    """Runs rlkit's and rlax's `name` vmapped and jitted, and checks that they agree."""
    key = tuple(sorted(static_kwargs.items()))
    want = _batched(rlax, name, in_axes, key)(*args)
    assert_close(_batched(rlkit, name, in_axes, key)(*args), want)
    return want


def test_lambda_returns_matches_rlax():
    x = _random_batch()
    _both("lambda_returns", (0, 0, 0, None), x["r"], x["d"], x["v"], 0.8)
    _both("lambda_returns", 0, x["r"], x["d"], x["v"], x["lam"])
    _both("lambda_returns", (0, 0, 0, None), x["r"], x["d"], x["v"], 1.0)
    _both("lambda_returns", (0, 0, 0, None), x["r"], x["d"], x["v"], 0.0)


@pytest.mark.parametrize("n", [1, 3, T, T + 4])
def test_n_step_bootstrapped_returns_matches_rlax(n):
    x = _random_batch(1)
    want = jax.jit(
        jax.vmap(lambda r, d, v, lam: rlax.n_step_bootstrapped_returns(r, d, v, n, lam))
    )(x["r"], x["d"], x["v"], x["lam"])
    ours = jax.vmap(lambda r, d, v, lam: rlkit.n_step_bootstrapped_returns(r, d, v, n, lam))
    assert_close(jax.jit(ours)(x["r"], x["d"], x["v"], x["lam"]), want)
    _both("n_step_bootstrapped_returns", 0, x["r"], x["d"], x["v"], n=n)


def test_discounted_returns_matches_rlax():
    x = _random_batch(2)
    _both("discounted_returns", 0, x["r"], x["d"], x["v"])
    _both("discounted_returns", 0, x["r"], x["d"], x["v"][:, -1])


def test_truncated_gae_matches_rlax():
    x = _random_batch(3)
    for lam in (0.0, 0.95, 1.0):
        _both(
            "truncated_generalized_advantage_estimation",
            (0, 0, None, 0),
            x["r"],
            x["d"],
            lam,
            x["values"],
        )
    _both("truncated_generalized_advantage_estimation", 0, x["r"], x["d"], x["lam"], x["values"])


def test_general_off_policy_returns_match_rlax():
    x = _random_batch(4)
    _both(
        "general_off_policy_returns_from_action_values",
        0,
        x["q"],
        x["a"],
        x["r"],
        x["d"],
        x["c"],
        x["pi"],
    )
    _both(
        "general_off_policy_returns_from_q_and_v",
        0,
        x["v"][:, :-1],
        x["values"][:, 1:],
        x["r"],
        x["d"],
        x["c"][:, :-1],
    )


def test_second_call_does_not_recompile():
    x = _random_batch(5)
    fn = jax.jit(jax.vmap(rlkit.gae_from_rollout, in_axes=(0, 0, 0, 0, 0, None, None)))
    flags = jnp.zeros((B, T), bool)
    fn(x["r"], x["v"], x["v"], flags, flags, 0.99, 0.95)
    fn(x["r"] + 1.0, x["v"], x["v"], flags, flags.at[0, 1].set(True), 0.9, 0.9)
    assert fn._cache_size() == 1


# ---------------------------------------------------------------------------------------------
# Gradients and the stop-gradient flag (default False for every return).
# ---------------------------------------------------------------------------------------------

GRAD_CASES = {
    "lambda_returns": (rlkit.lambda_returns, lambda x: (x["r"][0], x["d"][0], x["v"][0], 0.7)),
    "n_step_bootstrapped_returns": (
        functools.partial(rlkit.n_step_bootstrapped_returns, n=3),
        lambda x: (x["r"][0], x["d"][0], x["v"][0]),
    ),
    "discounted_returns": (rlkit.discounted_returns, lambda x: (x["r"][0], x["d"][0], x["v"][0])),
    "truncated_generalized_advantage_estimation": (
        rlkit.truncated_generalized_advantage_estimation,
        lambda x: (x["r"][0], x["d"][0], 0.9, x["values"][0]),
    ),
    "general_off_policy_returns_from_action_values": (
        rlkit.general_off_policy_returns_from_action_values,
        lambda x: (x["q"][0], x["a"][0], x["r"][0], x["d"][0], x["c"][0], x["pi"][0]),
    ),
    "general_off_policy_returns_from_q_and_v": (
        rlkit.general_off_policy_returns_from_q_and_v,
        lambda x: (x["v"][0, :-1], x["values"][0, 1:], x["r"][0], x["d"][0], x["c"][0, :-1]),
    ),
    "gae_from_rollout": (
        lambda r, v, nv, *rest, **kw: jnp.stack(rlkit.gae_from_rollout(r, v, nv, *rest, **kw)),
        lambda x: (
            x["r"][0],
            x["v"][0],
            x["values"][0, 1:],
            x["a"][0] == 0,
            x["a"][0] == 1,
            0.9,
            0.8,
        ),
    ),
    "n_step_returns_from_rollout": (
        functools.partial(rlkit.n_step_returns_from_rollout, n=3),
        lambda x: (x["r"][0], x["v"][0], x["a"][0] == 0, x["a"][0] == 1, 0.9),
    ),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_stop_target_gradients(name):
    fn, make_args = GRAD_CASES[name]
    args = make_args(_random_batch(6))
    float_argnums = tuple(
        i
        for i, arg in enumerate(args)
        if np.ndim(arg) > 0 and jnp.issubdtype(jnp.asarray(arg).dtype, jnp.floating)
    )

    def grads(stop):
        loss = lambda *a: jnp.sum(fn(*a, **stop) ** 2)
        return jax.jit(jax.grad(loss, argnums=float_argnums))(*args)

    assert all(np.abs(g).sum() == 0.0 for g in grads({"stop_target_gradients": True}))
    unstopped = grads({"stop_target_gradients": False})
    assert any(np.abs(g).sum() > 0.0 for g in unstopped)
    # The default is False: the same gradients as passing False.
    jax.tree_util.tree_map(assert_close, grads({}), unstopped)
    # A traced flag (an argument of jit) gives the same values and the same gradients.
    traced = jax.jit(
        jax.grad(
            lambda flag, *a: jnp.sum(fn(*a, stop_target_gradients=flag) ** 2),
            argnums=tuple(i + 1 for i in float_argnums),
        )
    )
    assert all(np.abs(g).sum() == 0.0 for g in traced(True, *args))
    jax.tree_util.tree_map(assert_close, traced(False, *args), unstopped)


def test_gae_from_rollout_gradient_on_values_is_finite_and_correct():
    # d A / d values[t] for a cut step t is -1 (only its own delta), and the returns' grad is 0.
    adv_grad = jax.jit(
        jax.grad(
            lambda v: rlkit.gae_from_rollout(ROLL_R, v, ROLL_NV, ROLL_TERM, ROLL_TRUNC, 0.5, 0.5)[
                0
            ][3]
        )
    )(ROLL_V)
    assert_close(adv_grad, f32(0.0, 0.0, 0.0, -1.0, 0.0))


# ---------------------------------------------------------------------------------------------
# Wrong ranks, dtypes and lengths raise, naming the argument.
# ---------------------------------------------------------------------------------------------

I3 = jnp.arange(3)
B3 = jnp.zeros(3, bool)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: rlkit.lambda_returns(R[None], D, V), "r_t"),
        (lambda: rlkit.lambda_returns(R, I3, V), "discount_t"),
        (lambda: rlkit.lambda_returns(R, D, V[:2]), "v_t"),
        (lambda: rlkit.lambda_returns(R, D, V, f32(0.5, 0.5)), "lambda_"),
        (lambda: rlkit.n_step_bootstrapped_returns(R, D, jnp.ones((3, 1)), 2), "v_t"),
        (lambda: rlkit.discounted_returns(R, D, jnp.ones((3, 3))), "v_t"),
        (lambda: rlkit.truncated_generalized_advantage_estimation(R, D, 0.9, V), "values"),
        (
            lambda: rlkit.truncated_generalized_advantage_estimation(R, D, 1, f32(1, 2, 3, 4)),
            "lambda_",
        ),
        (lambda: rlkit.general_off_policy_returns_from_q_and_v(V, V, R, D, V[:2]), "q_t"),
        (
            lambda: rlkit.general_off_policy_returns_from_action_values(
                jnp.ones((3, 2)), I3 * 1.0, R, D, R, jnp.ones((3, 2))
            ),
            "a_t",
        ),
        (
            lambda: rlkit.general_off_policy_returns_from_action_values(
                jnp.ones((3, 2)), I3, R, D, R, jnp.ones((3, 3))
            ),
            "pi_t",
        ),
        (lambda: rlkit.gae_from_rollout(R, V, V, I3, B3, 0.9, 0.9), "terminated"),
        (lambda: rlkit.gae_from_rollout(R, V, V[:2], B3, B3, 0.9, 0.9), "next_values"),
        (lambda: rlkit.gae_from_rollout(R, V[None], V, B3, B3, 0.9, 0.9), "values"),
        (lambda: rlkit.gae_from_rollout(R, V, V, B3, B3, f32(0.9, 0.9), 0.9), "gamma"),
        (lambda: rlkit.n_step_returns_from_rollout(I3, V, B3, B3, 0.9, 2), "rewards"),
        (lambda: rlkit.n_step_returns_from_rollout(R, V, B3, B3[:2], 0.9, 2), "truncated"),
    ],
)
def test_bad_arguments_raise(call, name):
    with pytest.raises(RLKitError, match=name) as info:
        call()
    assert isinstance(info.value, AssertionError)  # what rlax (chex) raises, too


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_bad_n_raises(n):
    with pytest.raises(RLKitError, match="`n`"):
        rlkit.n_step_bootstrapped_returns(R, D, V, n)
    with pytest.raises(RLKitError, match="`n`"):
        rlkit.n_step_returns_from_rollout(R, V, B3, B3, 0.9, n)


def test_public_names():
    assert set(multistep.__all__) <= set(rlkit.__all__)
    for name in multistep.__all__:
        assert getattr(rlkit, name) is getattr(multistep, name)
        assert getattr(rlkit, name).__doc__


# ------------------------------------------------------ importance_corrected_td_errors ----
def test_importance_corrected_td_errors_hand_computed():
    # T = 2, r = [1, 2], discount = [0.5, 0.5], values = [0, 0, 4], rho = [2, 0.5], lambda 1:
    # delta = [1, 2 + 2] ; E[1] = 4 ; E[0] = 1 + 0.5 * 0.5 * 4 = 2 ; errors = rho * E = [4, 2].
    out = rlkit.importance_corrected_td_errors(
        jnp.array([1.0, 2.0]), jnp.array([0.5, 0.5]), jnp.array([2.0, 0.5]), 1.0,
        jnp.array([0.0, 0.0, 4.0]),
    )  # fmt: skip
    np.testing.assert_allclose(out, [4.0, 2.0], rtol=1e-6)


@pytest.mark.parametrize("lambda_", [0.7, "vector"])
@pytest.mark.parametrize("use_jit", [False, True])
def test_importance_corrected_td_errors_parity_and_gae_case(lambda_, use_jit):
    k = jax.random.split(jax.random.PRNGKey(11), 4)
    r = jax.random.normal(k[0], (6,))
    d = 0.9 * (jax.random.uniform(k[1], (6,)) > 0.2)
    rho = jnp.exp(0.3 * jax.random.normal(k[2], (6,)))
    values = jax.random.normal(k[3], (7,))
    lam = jnp.linspace(0.2, 1.0, 6) if lambda_ == "vector" else lambda_
    fn = (
        jax.jit(rlkit.importance_corrected_td_errors)
        if use_jit
        else (rlkit.importance_corrected_td_errors)
    )
    np.testing.assert_allclose(
        fn(r, d, rho, lam, values),
        rlax_multistep.importance_corrected_td_errors(r, d, rho, lam, values),
        rtol=RTOL, atol=ATOL,
    )  # fmt: skip
    # With all ratios 1 it is GAE.
    np.testing.assert_allclose(
        fn(r, d, jnp.ones(6), lam, values),
        rlkit.truncated_generalized_advantage_estimation(r, d, lam, values),
        rtol=RTOL, atol=ATOL,
    )  # fmt: skip


def test_importance_corrected_td_errors_stop_gradient_and_vmap():
    r, d, rho = jnp.ones(3), jnp.full(3, 0.9), jnp.ones(3)
    values = jnp.array([1.0, 2.0, 3.0, 4.0])
    grad = jax.grad(lambda v: rlkit.importance_corrected_td_errors(r, d, rho, 0.5, v, True).sum())(
        values
    )
    # Only -v_tm1 carries a gradient (scaled by rho = 1).
    np.testing.assert_allclose(grad, [-1.0, -1.0, -1.0, 0.0])
    batched = jax.vmap(rlkit.importance_corrected_td_errors, in_axes=(0, 0, 0, None, 0))(
        jnp.stack([r, 2 * r]), jnp.stack([d, d]), jnp.stack([rho, rho]), 0.5,
        jnp.stack([values, values]),
    )  # fmt: skip
    np.testing.assert_allclose(
        batched[1], rlkit.importance_corrected_td_errors(2 * r, d, rho, 0.5, values), rtol=1e-6
    )


# ------------------------------------------------------------- q_lambda_from_rollout ----
# The rollout above with two actions; the greedy next values are those of ROLL_NV:
# v = max_a next_q = (2, 10, 4, 20, 6).
ROLL_NQ = jnp.stack([ROLL_NV, ROLL_NV - f32(1.0, 9.0, 5.0, 0.5, 7.0)], axis=1)


def test_q_lambda_from_rollout_hand_computed():
    # gamma = lambda = .5.  G4 = 1 + .5 * 6 = 4 (last step, full bootstrap);  G3 = 1 (terminated,
    # its next value 20 ignored);  G2 = 1 + .5 * (.5 * 4 + .5 * G3) = 2.25;  G1 = 1 + .5 * 10 = 6
    # (truncated: the final observation's value, not the trace into the next episode);
    # G0 = 1 + .5 * (.5 * 2 + .5 * G1) = 3.
    expected = f32(3.0, 6.0, 2.25, 1.0, 4.0)
    args = (ROLL_R, ROLL_NQ, ROLL_TERM, ROLL_TRUNC, 0.5, 0.5)
    check_eager_and_jit(rlkit.q_lambda_from_rollout, args, expected)
    float_args = (ROLL_R, ROLL_NQ, ROLL_TERM * 1.0, ROLL_TRUNC * 1.0, 0.5, 0.5)
    check_eager_and_jit(rlkit.q_lambda_from_rollout, float_args, expected)
    # The same step 1 taken as a death (what `done = terminated or truncated` does):
    # G1 = 1, G0 = 1 + .5 * (1 + .5) = 1.75.
    as_death = rlkit.q_lambda_from_rollout(
        ROLL_R, ROLL_NQ, ROLL_TERM | ROLL_TRUNC, jnp.zeros(5, bool), 0.5, 0.5
    )
    assert_close(as_death, f32(1.75, 1.0, 2.25, 1.0, 4.0))


def test_q_lambda_from_rollout_lambda_limits_and_vector_args():
    v = ROLL_NV
    # lambda 0: the one-step Q-learning target r + gamma (1 - terminated) max_a Q(s', a).
    one_step = ROLL_R + 0.5 * (1.0 - ROLL_TERM) * v
    assert_close(rlkit.q_lambda_from_rollout(ROLL_R, ROLL_NQ, ROLL_TERM, ROLL_TRUNC, 0.5, 0.0),
                 one_step)
    # lambda 1: the discounted return to the episode's end, bootstrapped at the truncation and at
    # the rollout's end: G1 = 6, G0 = 1 + .5 * 6 = 4, G2 = 1 + .5 * 1 = 1.5, G3 = 1, G4 = 4.
    assert_close(rlkit.q_lambda_from_rollout(ROLL_R, ROLL_NQ, ROLL_TERM, ROLL_TRUNC, 0.5, 1.0),
                 f32(4.0, 6.0, 1.5, 1.0, 4.0))
    # Per-step gamma and lambda equal to the scalars give the same answer.
    full = jnp.full((5,), 0.5, jnp.float32)
    assert_close(
        rlkit.q_lambda_from_rollout(ROLL_R, ROLL_NQ, ROLL_TERM, ROLL_TRUNC, full, full),
        f32(3.0, 6.0, 2.25, 1.0, 4.0),
    )


def test_q_lambda_from_rollout_matches_rlax_q_lambda_without_truncations():
    key = jax.random.PRNGKey(3)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    t_len, n_actions = 12, 3
    rewards = jax.random.normal(k1, (t_len,))
    q_tm1 = jax.random.normal(k2, (t_len, n_actions))
    q_t = jax.random.normal(k3, (t_len, n_actions))
    a_tm1 = jax.random.randint(k4, (t_len,), 0, n_actions)
    term = jnp.zeros(t_len, bool).at[4].set(True).at[9].set(True)
    discount = 0.9 * (1.0 - term)
    returns = rlkit.q_lambda_from_rollout(rewards, q_t, term, jnp.zeros(t_len, bool), 0.9, 0.7)
    td = rlax.q_lambda(q_tm1, a_tm1, rewards, discount, q_t, 0.7)
    assert_close(returns - q_tm1[jnp.arange(t_len), a_tm1], td)


def test_q_lambda_from_rollout_stops_at_boundaries_and_gradients():
    key = jax.random.PRNGKey(1)
    rewards = jax.random.normal(key, (8,))
    next_q = jax.random.normal(jax.random.PRNGKey(2), (8, 2))
    term = jnp.zeros(8, bool).at[2].set(True)
    trunc = jnp.zeros(8, bool).at[5].set(True)
    fn = jax.jit(rlkit.q_lambda_from_rollout)
    g = fn(rewards, next_q, term, trunc, 0.9, 0.8)
    # Nothing after the truncation at step 5 reaches steps 0..5, not even a nan.
    g2 = fn(rewards.at[7].set(jnp.nan), next_q.at[6].set(jnp.nan), term, trunc, 0.9, 0.8)
    assert_close(g2[:6], g[:6])
    # A terminated step's next value is ignored.
    assert_close(fn(rewards, next_q.at[2].set(jnp.nan), term, trunc, 0.9, 0.8), g)
    # Gradients flow into next_q by default and are stopped on request.
    loss = lambda q, stop: jnp.sum(  # noqa: E731
        rlkit.q_lambda_from_rollout(rewards, q, term, trunc, 0.9, 0.8, stop_target_gradients=stop)
    )
    assert float(jnp.abs(jax.grad(loss)(next_q, False)).sum()) > 0
    assert float(jnp.abs(jax.grad(loss)(next_q, True)).sum()) == 0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: rlkit.q_lambda_from_rollout(R, V, B3, B3, 0.9, 0.9), "next_q"),
        (lambda: rlkit.q_lambda_from_rollout(R, jnp.ones((2, 2)), B3, B3, 0.9, 0.9), "next_q"),
        (lambda: rlkit.q_lambda_from_rollout(I3, jnp.ones((3, 2)), B3, B3, 0.9, 0.9), "rewards"),
        (lambda: rlkit.q_lambda_from_rollout(R, jnp.ones((3, 2)), I3, B3, 0.9, 0.9), "terminated"),
        (lambda: rlkit.q_lambda_from_rollout(R, jnp.ones((3, 2)), B3, B3, 0.9, f32(1, 1)),
         "lambda_"),
    ],
)
def test_q_lambda_from_rollout_bad_arguments_raise(call, name):
    with pytest.raises(RLKitError, match=name):
        call()
