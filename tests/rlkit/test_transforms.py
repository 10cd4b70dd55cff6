"""Tests for rlkit.transforms: values, inverses, 2-hot, rlax parity, transformed returns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from rlkit import transforms as tx

X = jnp.array([-20.0, -3.5, -1.0, -0.1, 0.0, 0.2, 1.0, 7.0, 150.0])


@pytest.mark.parametrize("use_jit", [False, True])
def test_hand_computed_values(use_jit):
    j = jax.jit if use_jit else (lambda f, **_: f)
    x = jnp.array([-3.0, 0.0, 8.0])
    np.testing.assert_allclose(
        j(tx.signed_hyperbolic)(x), [-1.0 - 3e-3, 0.0, 2.0 + 8e-3], rtol=1e-6
    )
    np.testing.assert_allclose(j(tx.signed_logp1)(x), [-np.log(4.0), 0.0, np.log(9.0)], rtol=1e-6)
    np.testing.assert_allclose(j(tx.signed_expm1)(jnp.array([-np.log(4.0), 0.0])), [-3.0, 0.0])
    np.testing.assert_allclose(j(tx.sigmoid)(jnp.array([0.0])), [0.5])
    np.testing.assert_allclose(j(tx.logit)(jnp.array([0.5, 0.75])), [0.0, np.log(3.0)], atol=1e-6)
    # power(x, 2) with q = sqrt(2): ((|x|/q + 1)^2 - 1) / q
    q = np.sqrt(2.0)
    np.testing.assert_allclose(
        j(tx.power, static_argnums=1)(jnp.array([2.0]), 2.0),
        [((2 / q + 1) ** 2 - 1) / q],
        rtol=1e-6,
    )
    np.testing.assert_allclose(tx.identity(x), x)


@pytest.mark.parametrize(
    "fwd,inv",
    [
        (tx.signed_hyperbolic, tx.signed_parabolic),
        (tx.signed_logp1, tx.signed_expm1),
        (tx.hyperbolic_arcsin, tx.hyperbolic_sin),
        (lambda x: tx.power(x, 0.5), lambda x: tx.power(x, 2.0)),
    ],
)
def test_inverses(fwd, inv):
    np.testing.assert_allclose(inv(fwd(X)), X, rtol=1e-4, atol=1e-4)


def test_discount_pair_inverse():
    d = jnp.array([0.0, 0.5, 0.9, 0.997])
    horizon = tx.DISCOUNT_TRANSFORM_PAIR.apply(d)
    np.testing.assert_allclose(horizon[1], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(tx.DISCOUNT_TRANSFORM_PAIR.apply_inv(horizon), d, rtol=1e-5)


def test_sigmoid_logit_inverse():
    p = jnp.array([1e-4, 0.1, 0.5, 0.9, 0.9999])
    np.testing.assert_allclose(tx.sigmoid(tx.logit(p)), p, rtol=1e-5)


@pytest.mark.parametrize(
    "name,args",
    [
        ("identity", ()),
        ("sigmoid", ()),
        ("signed_logp1", ()),
        ("signed_expm1", ()),
        ("signed_hyperbolic", ()),
        ("signed_hyperbolic", (0.1,)),
        ("power", (0.3,)),
        ("power", (2.0,)),
    ],
)
def test_rlax_parity_elementwise(name, args):
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4)) * 5.0
    np.testing.assert_allclose(
        getattr(tx, name)(x, *args), getattr(rlax, name)(x, *args), rtol=1e-5, atol=1e-6
    )
    p = jax.nn.sigmoid(x)
    np.testing.assert_allclose(tx.logit(p), rlax.logit(p), rtol=1e-4, atol=1e-4)


def test_signed_parabolic_float64_accuracy():
    """Ours matches the float64 formula to float32 precision; rlax's loses ~1e-4 relative."""
    x = np.linspace(-200.0, 200.0, 101)
    eps = 1e-3
    exact = np.sign(x) * (((np.sqrt(1 + 4 * eps * (np.abs(x) + 1 + eps)) - 1) / (2 * eps)) ** 2 - 1)
    ours = tx.signed_parabolic(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(ours, exact, rtol=2e-6, atol=1e-5)
    np.testing.assert_allclose(
        ours, rlax.signed_parabolic(jnp.asarray(x, jnp.float32)), rtol=1e-3, atol=1e-3
    )


def test_type_errors():
    with pytest.raises(AssertionError):
        tx.signed_hyperbolic(jnp.array([1, 2]))
    with pytest.raises(AssertionError):
        tx.transform_to_2hot(jnp.array([1, 2]), 0.0, 1.0, 3)
    with pytest.raises(AssertionError):
        tx.transform_from_2hot(jnp.ones((2, 4)), 0.0, 1.0, 3)


@pytest.mark.parametrize("use_jit", [False, True])
def test_two_hot_hand_computed(use_jit):
    fn = tx.transform_to_2hot
    if use_jit:
        fn = jax.jit(fn, static_argnums=(1, 2, 3))
    # Support [-1, 0, 1, 2].
    out = fn(jnp.array([0.25, -5.0, 2.0, 1.0]), -1.0, 2.0, 4)
    expected = np.array([[0, 0.75, 0.25, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(
        tx.transform_from_2hot(out, -1.0, 2.0, 4), [0.25, -1.0, 2.0, 1.0], atol=1e-6
    )
    # A single vector decodes to a scalar.
    assert tx.transform_from_2hot(out[0], -1.0, 2.0, 4).shape == ()


def test_two_hot_roundtrip_and_rlax_parity():
    x = jax.random.uniform(jax.random.PRNGKey(1), (5, 7), minval=-12.0, maxval=12.0)
    enc = tx.transform_to_2hot(x, -10.0, 10.0, 41)
    assert enc.shape == (5, 7, 41)
    np.testing.assert_allclose(enc.sum(-1), 1.0, atol=1e-6)
    assert (enc >= 0).all()
    assert ((enc > 0).sum(-1) <= 2).all()
    np.testing.assert_allclose(
        tx.transform_from_2hot(enc, -10.0, 10.0, 41), jnp.clip(x, -10.0, 10.0), atol=1e-5
    )
    # rlax biases the split by ~1e-5 / bin_width (bin width here is 0.5).
    np.testing.assert_allclose(enc, rlax.transform_to_2hot(x, -10.0, 10.0, 41), atol=1e-4)
    enc2 = enc.reshape(35, 41)
    np.testing.assert_allclose(
        tx.transform_from_2hot(enc2, -10.0, 10.0, 41),
        rlax.transform_from_2hot(enc2, -10.0, 10.0, 41),
        atol=1e-5,
    )


def test_pairs_and_composition():
    pair = tx.compose_tx(tx.SIGNED_HYPERBOLIC_PAIR, tx.SIGNED_LOGP1_PAIR)
    np.testing.assert_allclose(pair.apply(X), tx.signed_logp1(tx.signed_hyperbolic(X)), rtol=1e-6)
    np.testing.assert_allclose(pair.apply_inv(pair.apply(X)), X, rtol=1e-4, atol=1e-4)
    mz = tx.muzero_pair(-5.0, 5.0, 21, tx.SIGNED_HYPERBOLIC_PAIR)
    ref = rlax.muzero_pair(-5.0, 5.0, 21, rlax.SIGNED_HYPERBOLIC_PAIR)
    v = jnp.array([-30.0, -2.0, 0.0, 0.7, 12.0])
    np.testing.assert_allclose(mz.apply(v), ref.apply(v), atol=1e-4)
    np.testing.assert_allclose(mz.apply_inv(mz.apply(v)), v, rtol=1e-4, atol=1e-4)
    two = tx.twohot_pair(0.0, 1.0, 3)
    np.testing.assert_allclose(two.apply(jnp.array(0.25)), [0.5, 0.5, 0.0])
    d = jnp.array([0.0, 0.9, 0.99])
    np.testing.assert_allclose(
        tx.DISCOUNT_TRANSFORM_PAIR.apply(d), rlax.DISCOUNT_TRANSFORM_PAIR.apply(d), rtol=1e-5
    )
    np.testing.assert_allclose(
        tx.HYPERBOLIC_SIN_PAIR.apply(X), rlax.HYPERBOLIC_SIN_PAIR.apply(X), rtol=1e-6
    )
    assert tx.IDENTITY_PAIR.apply is tx.identity
    assert isinstance(mz, tx.TxPair) and mz._fields == ("apply", "apply_inv")


# ------------------------------------------------------------------ transformed returns ----
T, A = 6, 3


def _trajectory(seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 8)
    q_tm1 = jax.random.normal(keys[0], (T, A))
    q_t = jax.random.normal(keys[1], (T, A))
    a_tm1 = jax.random.randint(keys[2], (T,), 0, A)
    a_t = jax.random.randint(keys[3], (T,), 0, A)
    r_t = jax.random.normal(keys[4], (T,)) * 3.0
    discount_t = jnp.array([0.9, 0.9, 0.0, 0.9, 0.9, 0.9])
    pi_t = jax.nn.softmax(jax.random.normal(keys[5], (T, A)))
    mu_t = jax.random.uniform(keys[6], (T,), minval=0.2, maxval=1.0)
    return q_tm1, q_t, a_tm1, a_t, r_t, discount_t, pi_t, mu_t


def test_transformed_one_step_hand_computed():
    """lambda = 0: G_t = h(r_t + discount_t h^-1(v_t))."""
    r = jnp.array([1.0, 2.0])
    d = jnp.array([0.5, 0.0])
    v = jnp.array([tx.signed_hyperbolic(jnp.array(3.0)), 10.0])
    out = tx.transformed_lambda_returns(tx.SIGNED_HYPERBOLIC_PAIR, r, d, v, 0.0)
    expected = tx.signed_hyperbolic(jnp.array([1.0 + 0.5 * 3.0, 2.0]))
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # Value passed by keyword is transformed too.
    out_kw = tx.transformed_lambda_returns(
        tx_pair=tx.SIGNED_HYPERBOLIC_PAIR, r_t=r, discount_t=d, v_t=v, lambda_=0.0
    )
    np.testing.assert_allclose(out_kw, expected, rtol=1e-5)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize(
    "pair_name", ["IDENTITY_PAIR", "SIGNED_HYPERBOLIC_PAIR", "SIGNED_LOGP1_PAIR"]
)
def test_transformed_returns_rlax_parity(use_jit, pair_name):
    # rlax's functions run with our pair, so only the composition logic is compared here (the
    # transforms themselves are compared above; rlax's signed_parabolic is less precise).
    ours = ref = getattr(tx, pair_name)
    q_tm1, q_t, a_tm1, a_t, r_t, discount_t, pi_t, mu_t = _trajectory()
    v_t = q_t[:, 0]
    j = (lambda f: jax.jit(f, static_argnums=(0,))) if use_jit else (lambda f: f)

    np.testing.assert_allclose(
        j(tx.transformed_lambda_returns)(ours, r_t, discount_t, v_t, 0.7),
        rlax.transformed_lambda_returns(ref, r_t, discount_t, v_t, 0.7),
        rtol=1e-4,
        atol=1e-5,
    )
    nstep = (
        jax.jit(tx.transformed_n_step_returns, static_argnums=(0, 4))
        if use_jit
        else (tx.transformed_n_step_returns)
    )
    np.testing.assert_allclose(
        nstep(ours, r_t, discount_t, v_t, 3),
        rlax.transformed_n_step_returns(ref, r_t, discount_t, v_t, 3),
        rtol=1e-4,
        atol=1e-5,
    )
    c_t = jnp.full((T,), 0.8)
    np.testing.assert_allclose(
        tx.transformed_general_off_policy_returns_from_action_values(
            ours, q_t, a_t, r_t, discount_t, c_t, pi_t
        ),
        rlax.transformed_general_off_policy_returns_from_action_values(
            ref, q_t, a_t, r_t, discount_t, c_t, pi_t
        ),
        rtol=1e-4,
        atol=1e-5,
    )
    for lam in (jnp.array(0.6), jnp.linspace(0.1, 0.9, T)):
        np.testing.assert_allclose(
            tx.transformed_q_lambda(q_tm1, a_tm1, r_t, discount_t, q_t, lam, tx_pair=ours),
            rlax.transformed_q_lambda(q_tm1, a_tm1, r_t, discount_t, q_t, lam, tx_pair=ref),
            rtol=1e-4,
            atol=1e-5,
        )
    np.testing.assert_allclose(
        tx.transformed_retrace(
            q_tm1, q_t, a_tm1, a_t, r_t, discount_t, pi_t, mu_t, 0.9, tx_pair=ours
        ),
        rlax.transformed_retrace(
            q_tm1, q_t, a_tm1, a_t, r_t, discount_t, pi_t, mu_t, 0.9, tx_pair=ref
        ),
        rtol=1e-4,
        atol=1e-5,
    )
    nq = (
        jax.jit(tx.transformed_n_step_q_learning, static_argnums=(6, 8))
        if use_jit
        else (tx.transformed_n_step_q_learning)
    )
    np.testing.assert_allclose(
        nq(q_tm1, a_tm1, q_t, a_t, r_t, discount_t, 2, True, ours),
        rlax.transformed_n_step_q_learning(q_tm1, a_tm1, q_t, a_t, r_t, discount_t, 2, tx_pair=ref),
        rtol=1e-4,
        atol=1e-5,
    )


def test_transformed_td_errors_vmap_and_gradients():
    batch = [jnp.stack(x) for x in zip(*[_trajectory(s) for s in range(3)])]
    q_tm1, q_t, a_tm1, _a_t, r_t, discount_t, _pi_t, _mu_t = batch
    pair = tx.SIGNED_HYPERBOLIC_PAIR
    fn = lambda *a: tx.transformed_q_lambda(*a, tx_pair=pair)
    out = jax.vmap(fn, in_axes=(0, 0, 0, 0, 0, None))(
        q_tm1, a_tm1, r_t, discount_t, q_t, jnp.array(0.5)
    )
    for i in range(3):
        np.testing.assert_allclose(
            out[i],
            fn(q_tm1[i], a_tm1[i], r_t[i], discount_t[i], q_t[i], jnp.array(0.5)),
            rtol=1e-5,
            atol=1e-6,
        )
    # Default stop-gradient: the TD error's gradient w.r.t. q_t is zero.
    grad = jax.grad(
        lambda q: fn(q_tm1[0], a_tm1[0], r_t[0], discount_t[0], q, jnp.array(0.5)).sum()
    )(q_t[0])
    np.testing.assert_array_equal(grad, 0.0)
    grad_free = jax.grad(
        lambda q: tx.transformed_q_lambda(
            q_tm1[0], a_tm1[0], r_t[0], discount_t[0], q, jnp.array(0.5), False, pair
        ).sum()
    )(q_t[0])
    assert jnp.abs(grad_free).sum() > 0


def test_transformed_td_error_rank_errors():
    q_tm1, q_t, a_tm1, a_t, r_t, discount_t, pi_t, mu_t = _trajectory()
    with pytest.raises(AssertionError):
        tx.transformed_q_lambda(q_tm1[0], a_tm1, r_t, discount_t, q_t, jnp.array(0.5))
    with pytest.raises(AssertionError):
        tx.transformed_retrace(
            q_tm1, q_t, a_tm1.astype(jnp.float32), a_t, r_t, discount_t, pi_t, mu_t, 0.9
        )
    with pytest.raises(AssertionError):
        tx.transformed_n_step_q_learning(q_tm1, a_tm1, q_t, a_t, r_t[:-1], discount_t, 2)


def test_transformed_returns_with_rlax_pairs():
    """End to end against rlax's own pairs, with a tolerance for rlax's float32 rounding."""
    _, q_t, _, _, r_t, discount_t, _, _ = _trajectory(1)
    for name in ("SIGNED_HYPERBOLIC_PAIR", "SIGNED_LOGP1_PAIR", "HYPERBOLIC_SIN_PAIR"):
        np.testing.assert_allclose(
            tx.transformed_lambda_returns(getattr(tx, name), r_t, discount_t, q_t[:, 1], 0.8),
            rlax.transformed_lambda_returns(getattr(rlax, name), r_t, discount_t, q_t[:, 1], 0.8),
            rtol=1e-3,
            atol=3e-4,
        )


def test_unbiased_transform_pair_round_trip_and_parity():
    pair = tx.unbiased_transform_pair(-300.0, 300.0, 601, tx.SIGNED_HYPERBOLIC_PAIR)
    x = jnp.array([1.03, 4.43, -3012.33, 0.0, 250.0])
    probs = jax.jit(pair.apply)(x)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pair.apply_inv(probs), x, rtol=1e-4, atol=1e-4)
    theirs = rlax.unbiased_transform_pair(-300.0, 300.0, 601, rlax.SIGNED_HYPERBOLIC_PAIR)
    np.testing.assert_allclose(probs, theirs.apply(x), atol=1e-4)
    # Non-uniform bins by hand: [0, 1, 4]; 2 sits 1/3 of the way from 1 to 4.
    two_hot = tx.transform_to_2hot_nonlinear(jnp.array([2.0, 0.0, 9.0]), jnp.array([0.0, 1.0, 4.0]))
    np.testing.assert_allclose(two_hot, [[0, 2 / 3, 1 / 3], [1, 0, 0], [0, 0, 1]], rtol=1e-6)
