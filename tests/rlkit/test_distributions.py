"""Tests for rlkit.distributions: probabilities, sampling, densities, entropies, divergences."""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from scipy import integrate, stats

import rlkit
from rlkit import distributions as dist
from rlkit.errors import RLKitError

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

Q = jnp.array([1.0, 3.0, -2.0, 3.0])  # tie between actions 1 and 3
Q_NO_TIE = jnp.array([0.5, -1.0, 2.0, 0.0, 1.5])


# ------------------------------------------------------------------------------ discrete ----
@pytest.mark.parametrize("use_jit", [False, True])
def test_greedy_hand_computed(use_jit):
    j = jax.jit if use_jit else (lambda f: f)
    np.testing.assert_allclose(j(dist.greedy_probs)(Q), [0.0, 0.5, 0.0, 0.5])
    assert int(j(dist.greedy_action)(Q)) == 1  # first of the tied maxima
    assert j(dist.greedy_action)(Q).dtype == jnp.int32
    np.testing.assert_allclose(j(dist.greedy_log_prob)(Q, jnp.array(3)), math.log(0.5))
    assert j(dist.greedy_log_prob)(Q, jnp.array(0)) == -jnp.inf
    np.testing.assert_allclose(j(dist.greedy_entropy)(Q), math.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(j(dist.greedy_entropy)(Q_NO_TIE), 0.0)


@pytest.mark.parametrize("use_jit", [False, True])
def test_epsilon_greedy_hand_computed(use_jit):
    j = jax.jit if use_jit else (lambda f: f)
    probs = j(dist.epsilon_greedy_probs)(Q, 0.2)
    np.testing.assert_allclose(probs, [0.05, 0.45, 0.05, 0.45], rtol=1e-6)
    np.testing.assert_allclose(
        j(dist.epsilon_greedy_log_prob)(Q, jnp.array(2), jnp.array(0.2)),
        math.log(0.05),
        rtol=1e-6,
    )
    expected_entropy = -(2 * 0.05 * math.log(0.05) + 2 * 0.45 * math.log(0.45))
    np.testing.assert_allclose(j(dist.epsilon_greedy_entropy)(Q, 0.2), expected_entropy, rtol=1e-6)
    np.testing.assert_allclose(j(dist.epsilon_greedy_probs)(Q, 1.0), [0.25] * 4)


@pytest.mark.parametrize("use_jit", [False, True])
def test_softmax_hand_computed(use_jit):
    j = jax.jit if use_jit else (lambda f: f)
    logits = jnp.array([0.0, math.log(3.0)])
    np.testing.assert_allclose(j(dist.softmax_probs)(logits), [0.25, 0.75], rtol=1e-6)
    # temperature 2 halves the logits: weights 1 : sqrt(3)
    s3 = math.sqrt(3.0)
    np.testing.assert_allclose(
        j(dist.softmax_probs)(logits, 2.0), [1 / (1 + s3), s3 / (1 + s3)], rtol=1e-6
    )
    np.testing.assert_allclose(
        j(dist.softmax_log_prob)(logits, jnp.array(1)), math.log(0.75), rtol=1e-6
    )
    np.testing.assert_allclose(
        j(dist.softmax_entropy)(logits),
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)),
        rtol=1e-6,
    )


def test_softmax_masked_logits():
    logits = jnp.array([0.0, -jnp.inf, 0.0])
    np.testing.assert_allclose(dist.softmax_probs(logits), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(dist.softmax_entropy(logits), math.log(2.0), rtol=1e-6)
    assert dist.softmax_log_prob(logits, jnp.array(1)) == -jnp.inf
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    samples = jax.vmap(dist.softmax_sample, in_axes=(0, None))(keys, logits)
    assert not (samples == 1).any()


@pytest.mark.parametrize("q", [Q, Q_NO_TIE])
def test_discrete_rlax_parity(q):
    action = jnp.array(1)
    for eps in (0.0, 0.1, 0.7):
        ref = rlax.epsilon_greedy(eps)
        np.testing.assert_allclose(dist.epsilon_greedy_probs(q, eps), ref.probs(q), rtol=1e-6)
        np.testing.assert_allclose(
            dist.epsilon_greedy_log_prob(q, action, eps), ref.logprob(action, q), rtol=1e-6
        )
        np.testing.assert_allclose(
            dist.epsilon_greedy_entropy(q, eps), ref.entropy(q), rtol=1e-5, atol=1e-7
        )
    ref = rlax.greedy()
    np.testing.assert_allclose(dist.greedy_probs(q), ref.probs(q))
    np.testing.assert_allclose(dist.greedy_entropy(q), ref.entropy(q), atol=1e-7)
    for t in (1.0, 0.3, 5.0):
        ref = rlax.softmax(t)
        np.testing.assert_allclose(dist.softmax_probs(q, t), ref.probs(q), rtol=1e-5)
        np.testing.assert_allclose(
            dist.softmax_log_prob(q, action, t), ref.logprob(action, q), rtol=1e-5
        )
        np.testing.assert_allclose(dist.softmax_entropy(q, t), ref.entropy(q), rtol=1e-5)


def test_samples_match_rlax_for_same_key():
    keys = jax.random.split(jax.random.PRNGKey(7), 200)
    q = jax.random.normal(jax.random.PRNGKey(8), (6,))
    ours_eps = jax.vmap(lambda k: dist.epsilon_greedy_sample(k, q, 0.3))(keys)
    ref_eps = jax.vmap(lambda k: rlax.epsilon_greedy(0.3).sample(k, q))(keys)
    np.testing.assert_array_equal(ours_eps, ref_eps)
    ours_soft = jax.vmap(lambda k: dist.softmax_sample(k, q, 2.0))(keys)
    ref_soft = jax.vmap(lambda k: rlax.softmax(2.0).sample(k, q))(keys)
    np.testing.assert_array_equal(ours_soft, ref_soft)
    assert len(np.unique(ours_soft)) > 2  # the draws really vary


@pytest.mark.parametrize(
    "sampler,probs_fn",
    [
        (
            lambda k, q: dist.epsilon_greedy_sample(k, q, 0.3),
            lambda q: dist.epsilon_greedy_probs(q, 0.3),
        ),
        (lambda k, q: dist.softmax_sample(k, q, 0.7), lambda q: dist.softmax_probs(q, 0.7)),
    ],
)
def test_sample_frequencies(sampler, probs_fn):
    n = 20000
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    samples = jax.jit(jax.vmap(sampler, in_axes=(0, None)))(keys, Q)
    freqs = np.bincount(np.asarray(samples), minlength=4) / n
    # 4 standard errors of a proportion at n = 20000 is at most 0.0142.
    np.testing.assert_allclose(freqs, probs_fn(Q), atol=0.015)
    assert samples.dtype == jnp.int32


def test_epsilon_traced_and_vmap():
    qs = jax.random.normal(jax.random.PRNGKey(2), (5, 4))
    eps = jnp.linspace(0.0, 1.0, 5)
    batched = jax.vmap(dist.epsilon_greedy_probs)(qs, eps)
    jitted = jax.jit(jax.vmap(dist.epsilon_greedy_probs))(qs, eps)
    for i in range(5):
        np.testing.assert_allclose(
            batched[i], dist.epsilon_greedy_probs(qs[i], float(eps[i])), rtol=1e-6
        )
    np.testing.assert_allclose(jitted, batched, rtol=1e-6)
    np.testing.assert_allclose(batched.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(dist.softmax_probs)(qs).sum(-1), 1.0, rtol=1e-6)


def test_discrete_errors():
    with pytest.raises(AssertionError):
        dist.greedy_probs(jnp.ones((2, 3)))
    with pytest.raises(AssertionError):
        dist.softmax_probs(jnp.array([1, 2]))
    with pytest.raises(AssertionError):
        dist.softmax_log_prob(Q, jnp.array(1.0))
    with pytest.raises(AssertionError):
        dist.epsilon_greedy_log_prob(Q, jnp.array([1]), 0.1)
    with pytest.raises(RLKitError, match="epsilon"):
        dist.epsilon_greedy_probs(Q, jnp.array([0.1, 0.2]))
    with pytest.raises(RLKitError, match="temperature"):
        dist.softmax_entropy(Q, jnp.ones(4))


# ----------------------------------------------------------------------------- divergences --
def test_categorical_divergences_hand_computed_and_parity():
    p = jnp.array([0.0, math.log(3.0)])  # probs 0.25, 0.75
    q = jnp.array([0.0, 0.0])  # probs 0.5, 0.5
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    np.testing.assert_allclose(dist.categorical_kl_divergence(p, q), kl, rtol=1e-6)
    labels = jnp.array([0.25, 0.75])
    np.testing.assert_allclose(dist.categorical_cross_entropy(labels, q), math.log(2.0), rtol=1e-6)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    a, b = jax.random.normal(keys[0], (5,)), jax.random.normal(keys[1], (5,)) * 2
    lab = jax.nn.softmax(jax.random.normal(keys[2], (5,)))
    for t in (1.0, 0.5):
        np.testing.assert_allclose(
            dist.categorical_kl_divergence(a, b, t),
            rlax.categorical_kl_divergence(a, b, t),
            rtol=1e-5,
        )
    np.testing.assert_allclose(
        dist.categorical_cross_entropy(lab, b), rlax.categorical_cross_entropy(lab, b), rtol=1e-5
    )
    # Zero-probability labels against -inf logits contribute nothing.
    masked = jnp.array([0.0, -jnp.inf, 1.0])
    np.testing.assert_allclose(
        dist.categorical_cross_entropy(jnp.array([0.5, 0.0, 0.5]), masked),
        -0.5 * (jax.nn.log_softmax(masked)[0] + jax.nn.log_softmax(masked)[2]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(dist.categorical_kl_divergence(masked, masked), 0.0, atol=1e-7)
    # Leading axes are batch axes, as in rlax.
    pa, pb = jax.random.normal(keys[0], (2, 4, 5)), jax.random.normal(keys[1], (2, 4, 5))
    batched = dist.categorical_kl_divergence(pa, pb, 0.5)
    assert batched.shape == (2, 4)
    np.testing.assert_allclose(
        batched[1, 2], dist.categorical_kl_divergence(pa[1, 2], pb[1, 2], 0.5)
    )
    np.testing.assert_allclose(batched, rlax.categorical_kl_divergence(pa, pb, 0.5), rtol=1e-5)
    with pytest.raises(AssertionError):
        dist.categorical_kl_divergence(jnp.ones((2, 3)), jnp.ones((3,)))


def test_multivariate_normal_kl():
    # 1-D: N(0, 1) || N(1, 2): log 2 + (1 + 1) / 8 - 1/2
    np.testing.assert_allclose(
        dist.multivariate_normal_kl_divergence(jnp.array([0.0]), 1.0, jnp.array([1.0]), 2.0),
        math.log(2.0) + 0.25 - 0.5,
        rtol=1e-6,
    )
    keys = jax.random.split(jax.random.PRNGKey(4), 4)
    m0, m1 = jax.random.normal(keys[0], (3,)), jax.random.normal(keys[1], (3,))
    s0 = jnp.exp(jax.random.normal(keys[2], (3,)) * 0.5)
    s1 = jnp.exp(jax.random.normal(keys[3], (3,)) * 0.5)
    np.testing.assert_allclose(
        dist.multivariate_normal_kl_divergence(m0, s0, m1, s1),
        rlax.multivariate_normal_kl_divergence(m0, s0, m1, s1),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        dist.multivariate_normal_kl_divergence(m0, s0, m0, s0), 0.0, atol=1e-6
    )
    with pytest.raises(AssertionError):
        dist.multivariate_normal_kl_divergence(m0, s0, m1[:2], s1)
    # Leading axes are batch axes, as in rlax.
    bm0, bm1 = jnp.stack([m0, m1]), jnp.stack([m1, m0])
    bs0, bs1 = jnp.stack([s0, s1]), jnp.stack([s1, s1])
    batched = dist.multivariate_normal_kl_divergence(bm0, bs0, bm1, bs1)
    np.testing.assert_allclose(batched[0], dist.multivariate_normal_kl_divergence(m0, s0, m1, s1))
    np.testing.assert_allclose(
        batched, rlax.multivariate_normal_kl_divergence(bm0, bs0, bm1, bs1), rtol=1e-5
    )


# ---------------------------------------------------------------------------- continuous ----
MEAN = jnp.array([0.3, -1.0, 2.0])
LOG_STD = jnp.array([-0.5, 0.0, 0.4])


@pytest.mark.parametrize("use_jit", [False, True])
def test_diag_gaussian_log_prob_and_entropy(use_jit):
    j = jax.jit if use_jit else (lambda f: f)
    action = jnp.array([0.0, 0.5, 1.0])
    std = np.exp(np.asarray(LOG_STD))
    expected = stats.norm(np.asarray(MEAN), std).logpdf(np.asarray(action)).sum()
    np.testing.assert_allclose(
        j(dist.diag_gaussian_log_prob)(MEAN, LOG_STD, action), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        j(dist.diag_gaussian_entropy)(LOG_STD),
        stats.norm(np.asarray(MEAN), std).entropy().sum(),
        rtol=1e-5,
    )
    ref = distrax.MultivariateNormalDiag(MEAN, jnp.exp(LOG_STD))
    np.testing.assert_allclose(
        dist.diag_gaussian_log_prob(MEAN, LOG_STD, action), ref.log_prob(action), rtol=1e-5
    )
    # Gradient check: d log p / d mean = (a - m) / s^2.
    grad = jax.grad(dist.diag_gaussian_log_prob)(MEAN, LOG_STD, action)
    np.testing.assert_allclose(grad, (action - MEAN) / std**2, rtol=1e-5)


def test_diag_gaussian_sample_moments():
    keys = jax.random.split(jax.random.PRNGKey(5), 20000)
    samples = jax.vmap(dist.diag_gaussian_sample, in_axes=(0, None, None))(keys, MEAN, LOG_STD)
    std = np.exp(np.asarray(LOG_STD))
    np.testing.assert_allclose(samples.mean(0), MEAN, atol=4 * std.max() / np.sqrt(20000))
    np.testing.assert_allclose(samples.std(0), std, rtol=0.03)
    # Reparameterised: d sample / d mean = 1.
    g = jax.grad(lambda m: dist.diag_gaussian_sample(keys[0], m, LOG_STD).sum())(MEAN)
    np.testing.assert_allclose(g, 1.0)


def test_tanh_gaussian_sample_and_log_prob():
    key = jax.random.PRNGKey(6)
    action, pre_tanh = dist.tanh_gaussian_sample(key, MEAN, LOG_STD)
    np.testing.assert_allclose(action, jnp.tanh(pre_tanh))
    np.testing.assert_allclose(pre_tanh, dist.diag_gaussian_sample(key, MEAN, LOG_STD))
    assert (jnp.abs(action) < 1).all()
    ref = distrax.Transformed(
        distrax.MultivariateNormalDiag(MEAN, jnp.exp(LOG_STD)), distrax.Block(distrax.Tanh(), 1)
    )
    lp = dist.tanh_gaussian_log_prob(MEAN, LOG_STD, pre_tanh=pre_tanh)
    np.testing.assert_allclose(lp, ref.log_prob(action), rtol=1e-4)
    np.testing.assert_allclose(
        dist.tanh_gaussian_log_prob(MEAN, LOG_STD, action=action), lp, rtol=1e-4
    )
    # Hand check of the change of variables in 1-D at u = 0.5.
    u = jnp.array([0.5])
    expected = stats.norm(0.0, 1.0).logpdf(0.5) - math.log(1 - math.tanh(0.5) ** 2)
    np.testing.assert_allclose(
        dist.tanh_gaussian_log_prob(jnp.zeros(1), jnp.zeros(1), pre_tanh=u), expected, rtol=1e-6
    )
    jitted = jax.jit(dist.tanh_gaussian_log_prob)(MEAN, LOG_STD, None, pre_tanh)
    np.testing.assert_allclose(jitted, lp, rtol=1e-6)
    with pytest.raises(RLKitError, match="action or pre_tanh"):
        dist.tanh_gaussian_log_prob(MEAN, LOG_STD)


def test_tanh_gaussian_log_prob_stable_for_saturated_actions():
    u = jnp.array([20.0, -25.0])
    lp = dist.tanh_gaussian_log_prob(jnp.zeros(2), jnp.zeros(2), pre_tanh=u)
    # log(1 - tanh(u)^2) ~ 2 log 2 - 2|u| for large |u|.
    expected = stats.norm().logpdf([20.0, -25.0]).sum() - (2 * math.log(2.0) * 2 - 2 * 45.0)
    assert np.isfinite(lp)
    np.testing.assert_allclose(lp, expected, rtol=1e-5)
    grad = jax.grad(lambda m: dist.tanh_gaussian_log_prob(m, jnp.zeros(2), pre_tanh=u))(
        jnp.zeros(2)
    )
    assert np.isfinite(grad).all()


def test_tanh_gaussian_entropy_estimate_vs_quadrature():
    mean, log_std = 0.4, math.log(1.3)

    def density_term(u):
        p = stats.norm(mean, math.exp(log_std)).pdf(u)
        return p * math.log(1 - math.tanh(u) ** 2)

    jac, _ = integrate.quad(density_term, -12, 12)
    exact = stats.norm(mean, math.exp(log_std)).entropy() + jac
    est = jax.jit(dist.tanh_gaussian_entropy_estimate, static_argnums=3)(
        jax.random.PRNGKey(0), jnp.array([mean]), jnp.array([log_std]), 50000
    )
    np.testing.assert_allclose(est, exact, atol=0.01)
    # Sum over independent dimensions.
    est2 = dist.tanh_gaussian_entropy_estimate(
        jax.random.PRNGKey(1), jnp.array([mean, mean]), jnp.array([log_std, log_std]), 50000
    )
    np.testing.assert_allclose(est2, 2 * exact, atol=0.02)


def test_continuous_vmap_and_errors():
    means = jax.random.normal(jax.random.PRNGKey(9), (4, 3))
    acts = jax.random.normal(jax.random.PRNGKey(10), (4, 3))
    batched = jax.vmap(dist.diag_gaussian_log_prob, in_axes=(0, None, 0))(means, LOG_STD, acts)
    for i in range(4):
        np.testing.assert_allclose(
            batched[i], dist.diag_gaussian_log_prob(means[i], LOG_STD, acts[i]), rtol=1e-6
        )
    with pytest.raises(AssertionError):
        dist.diag_gaussian_log_prob(MEAN, LOG_STD[:2], MEAN)
    with pytest.raises(AssertionError):
        dist.diag_gaussian_sample(jax.random.PRNGKey(0), MEAN[None], LOG_STD[None])
    with pytest.raises(AssertionError):
        dist.diag_gaussian_entropy(jnp.array([1, 2]))


def test_rescale_action():
    a = jnp.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(dist.rescale_action(a, -2.0, 2.0), [-2.0, 0.0, 2.0])
    np.testing.assert_allclose(
        dist.rescale_action(a, jnp.array([0.0, 0.0, -1.0]), jnp.array([1.0, 10.0, 3.0])),
        [0.0, 5.0, 3.0],
    )
    np.testing.assert_allclose(jax.jit(dist.rescale_action)(a, 0.0, 4.0), [0.0, 2.0, 4.0])
    with pytest.raises(AssertionError):
        dist.rescale_action(a, jnp.zeros((1, 3)), jnp.ones((1, 3)))


# --------------------------------------------------------------- rlax-style factories ----
@pytest.mark.parametrize("use_jit", [False, True])
def test_factories_match_rlax_on_batches_and_keys(use_jit):
    j = jax.jit if use_jit else (lambda f: f)
    k = jax.random.split(jax.random.PRNGKey(21), 4)
    logits = jax.random.normal(k[0], (3, 5))
    actions = jnp.array([0, 4, 2])
    for ours, theirs in [
        (rlkit.softmax(0.7), rlax.softmax(0.7)),
        (rlkit.clipped_entropy_softmax(1.0, 0.5), rlax.clipped_entropy_softmax(1.0, 0.5)),
        (rlkit.epsilon_greedy(0.3), rlax.epsilon_greedy(0.3)),
        (rlkit.greedy(), rlax.greedy()),
    ]:
        np.testing.assert_array_equal(j(ours.sample)(k[1], logits), theirs.sample(k[1], logits))
        np.testing.assert_allclose(j(ours.probs)(logits), theirs.probs(logits), rtol=1e-5)
        np.testing.assert_allclose(
            j(ours.logprob)(actions, logits), theirs.logprob(actions, logits), rtol=1e-5
        )
        np.testing.assert_allclose(j(ours.entropy)(logits), theirs.entropy(logits), rtol=1e-5)
    mu, sigma = jax.random.normal(k[2], (3, 2)), jnp.exp(jax.random.normal(k[3], (3, 2)))
    ours, theirs = rlkit.gaussian_diagonal(), rlax.gaussian_diagonal()
    sample = j(ours.sample)(k[1], mu, sigma)
    np.testing.assert_allclose(sample, theirs.sample(k[1], mu, sigma), rtol=1e-6)
    np.testing.assert_allclose(
        j(ours.logprob)(sample, mu, sigma), theirs.logprob(sample, mu, sigma), rtol=1e-5
    )
    np.testing.assert_allclose(ours.entropy(mu, sigma), theirs.entropy(mu, sigma), rtol=1e-5)
    np.testing.assert_allclose(
        ours.kl_to_standard_normal(mu, sigma), theirs.kl_to_standard_normal(mu, sigma), rtol=1e-5
    )


def test_greedy_factory_breaks_ties_at_random_unlike_greedy_action():
    q = jnp.array([1.0, 3.0, -2.0, 3.0])
    samples = jax.vmap(lambda key: rlkit.greedy().sample(key, q))(
        jax.random.split(jax.random.PRNGKey(0), 200)
    )
    assert set(np.asarray(samples).tolist()) == {1, 3}
    assert int(dist.greedy_action(q)) == 1
    np.testing.assert_allclose(rlkit.greedy().logprob(jnp.array(2), q), -np.inf)


def test_squashed_gaussian_matches_rlax_with_action_spec():
    class Spec:
        minimum = np.array([-1.0])
        maximum = np.array([2.0])

    k = jax.random.split(jax.random.PRNGKey(22), 2)
    mu, sigma = jax.random.normal(k[0], (2, 3)), jax.random.normal(k[1], (2, 3))
    ours, theirs = rlkit.squashed_gaussian(0.0, 2.0), rlax.squashed_gaussian(0.0, 2.0)
    sample = ours.sample(k[0], mu, sigma, Spec)
    np.testing.assert_allclose(sample, theirs.sample(k[0], mu, sigma, Spec), rtol=1e-5)
    with jax.numpy_rank_promotion("allow"):  # distrax broadcasts the [1] bounds
        expected = theirs.logprob(sample * 0.9, mu, sigma, Spec)
    np.testing.assert_allclose(ours.logprob(sample * 0.9, mu, sigma, Spec), expected, rtol=1e-4)


def test_categorical_sample_invalid_rows_give_minus_one():
    key = jax.random.PRNGKey(1)
    probs = jnp.array([[0.2, 0.3, 0.5], [0.0, 0.0, 0.0], [-1.0, 2.0, 0.0]])
    out = rlkit.categorical_sample(key, probs)
    np.testing.assert_array_equal(out[1:], [-1, -1])
    assert out.dtype == jnp.int32 and 0 <= int(out[0]) < 3
