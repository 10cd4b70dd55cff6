"""Every rank-checked rlkit primitive names the wrong argument in an RLKitError.

Each case calls the primitive once with valid inputs (which must not raise), then with one
argument of the wrong rank; the error must be an `rlkit.errors.RLKitError` whose message names
that argument, and also an `AssertionError` (what rlax's chex checks raise), so code written
against rlax keeps catching it. Element-wise functions (losses, transforms) accept any rank and
are not listed.
"""

import jax
import jax.numpy as jnp
import pytest

import rlkit
from rlkit.errors import ArgumentError, RLKitError

T, A, N = 3, 2, 3
KEY = jax.random.PRNGKey(0)

v = jnp.ones((T,))  # a [T] float vector
q = jnp.ones((T, A))  # [T, A] action values
qa = jnp.array([1.0, 2.0])  # [A]
a_seq = jnp.zeros((T,), jnp.int32)
a0 = jnp.array(0)
f0 = jnp.array(0.5)
atoms = jnp.linspace(-1.0, 1.0, N)
logits = jnp.zeros((A, N))
pen = rlkit.LagrangePenalty(alpha=jnp.array(1.0), epsilon=0.1)
pop_state = rlkit.PopArtState(shift=jnp.zeros(2), scale=jnp.ones(2), second_moment=jnp.ones(2))

# (primitive, valid positional arguments, index of the argument made wrong, its name,
#  the wrong value). Default wrong value: the valid one with an extra leading axis.
CASES = [
    (rlkit.td_learning, (f0, f0, f0, f0), 0, "v_tm1"),
    (rlkit.td_lambda, (v, v, v, v, 0.5), 1, "r_t"),
    (rlkit.sarsa, (qa, a0, f0, f0, qa, a0), 0, "q_tm1"),
    (rlkit.expected_sarsa, (qa, a0, f0, f0, qa, qa / 3.0), 5, "probs_a_t"),
    (rlkit.sarsa_lambda, (q, a_seq, v, v, q, a_seq, 0.5), 2, "r_t"),
    (rlkit.q_learning, (qa, a0, f0, f0, qa), 4, "q_t"),
    (rlkit.double_q_learning, (qa, a0, f0, f0, qa, qa), 5, "q_t_selector"),
    (rlkit.persistent_q_learning, (qa, a0, f0, f0, qa, 0.5), 1, "a_tm1"),
    (rlkit.qv_learning, (qa, a0, f0, f0, f0), 4, "v_t"),
    (rlkit.qv_max, (f0, f0, f0, qa), 3, "q_t"),
    (rlkit.q_lambda, (q, a_seq, v, v, q, 0.5), 1, "a_tm1"),
    (rlkit.retrace, (q, q, a_seq, a_seq, v, v, q / 2.0, v / 2.0, 0.9), 7, "mu_t"),
    (rlkit.retrace_continuous, (v, v[:-1], v, v, v, v[:-1], 0.9), 4, "discount_t"),
    (rlkit.discounted_returns, (v, v, v), 2, "v_t"),
    (rlkit.lambda_returns, (v, v, v), 0, "r_t"),
    (rlkit.n_step_bootstrapped_returns, (v, v, v, 2), 1, "discount_t"),
    (rlkit.truncated_generalized_advantage_estimation, (v, v, 0.9, jnp.ones(T + 1)), 3, "values"),
    (rlkit.importance_corrected_td_errors, (v, v, v, 0.9, jnp.ones(T + 1)), 2, "rho_tm1"),
    (
        rlkit.general_off_policy_returns_from_action_values,
        (q, a_seq, v, v, v, q / 2.0),
        4,
        "c_t",
    ),
    (rlkit.general_off_policy_returns_from_q_and_v, (v[:-1], v, v, v, v[:-1]), 1, "v_t"),
    (rlkit.vtrace, (v, v, v, v, v), 4, "rho_tm1"),
    (rlkit.leaky_vtrace, (v, v, v, v, v), 0, "v_tm1"),
    (rlkit.vtrace_td_error_and_advantage, (v, v, v, v, v), 2, "r_t"),
    (rlkit.leaky_vtrace_td_error_and_advantage, (v, v, v, v, v), 3, "discount_t"),
    (rlkit.policy_gradient_loss, (q, a_seq, v, v), 2, "adv_t"),
    (rlkit.entropy_loss, (q, v), 1, "w_t"),
    (rlkit.clipped_surrogate_pg_loss, (v, v, 0.2), 0, "prob_ratios_t"),
    (rlkit.dpg_loss, (qa, qa), 1, "dqda_t"),
    (rlkit.qpg_loss, (q, q), 1, "q_t"),
    (rlkit.rm_loss, (q, q), 0, "logits_t"),
    (rlkit.rpg_loss, (q, q), 1, "q_t"),
    (rlkit.categorical_l2_project, (atoms, jnp.ones(N) / N, atoms), 1, "probs"),
    (
        rlkit.categorical_td_learning,
        (atoms, jnp.zeros(N), f0, f0, atoms, jnp.zeros(N)),
        1,
        "v_logits_tm1",
    ),
    (rlkit.categorical_q_learning, (atoms, logits, a0, f0, f0, atoms, logits), 2, "a_tm1"),
    (
        rlkit.categorical_double_q_learning,
        (atoms, logits, a0, f0, f0, atoms, logits, qa),
        7,
        "q_t_selector",
    ),
    (rlkit.quantile_regression_loss, (v, v, v), 2, "dist_target"),
    (rlkit.quantile_q_learning, (q, v, a0, f0, f0, q, q), 1, "tau_q_tm1"),
    (rlkit.quantile_expected_sarsa, (q, v, a0, f0, f0, q, qa / 3.0), 6, "probs_a_t"),
    (rlkit.categorical_importance_sampling_ratios, (q, q, a_seq), 2, "a_t"),
    (rlkit.categorical_cross_entropy, (qa / 3.0, qa), 1, "logits"),
    (rlkit.greedy_probs, (qa,), 0, "q_values"),
    (rlkit.greedy_action, (qa,), 0, "q_values"),
    (rlkit.greedy_log_prob, (qa, a0), 1, "action"),
    (rlkit.softmax_log_prob, (qa, a0), 1, "action"),
    (rlkit.softmax_probs, (qa,), 0, "logits"),
    (rlkit.epsilon_greedy_log_prob, (qa, a0, 0.1), 1, "action"),
    (rlkit.diag_gaussian_log_prob, (qa, qa, qa), 0, "mean"),
    (rlkit.diag_gaussian_entropy, (qa,), 0, "log_std"),
    (rlkit.diag_gaussian_sample, (KEY, qa, qa), 2, "log_std"),
    (rlkit.rescale_action, (qa, -1.0, 1.0), 0, "action"),
    (rlkit.add_gaussian_noise, (KEY, qa, 0.1), 1, "action"),
    (rlkit.add_ornstein_uhlenbeck_noise, (KEY, qa, qa, 0.1, 0.1), 2, "noise_tm1"),
    (rlkit.add_dirichlet_noise, (KEY, q / 2.0, 0.3, 0.25), 1, "prior"),
    (rlkit.batched_index, (q, a_seq), 0, "values"),
    (rlkit.pixel_control_rewards, (jnp.ones((T + 1, 4, 4, 1)), 2), 0, "observations"),
    (rlkit.feature_control_rewards, (q,), 0, "features"),
    (
        rlkit.pixel_control_loss,
        (jnp.ones((T + 1, 4, 4, 1)), a_seq, jnp.ones((T + 1, 2, 2, A)), 0.9, 2),
        1,
        "actions",
    ),
    (rlkit.knn_query, (q, q, 1), 1, "query_points"),
    (rlkit.episodic_memory_intrinsic_rewards, (q, 1, 1.0), 0, "embeddings"),
    (rlkit.embed_oar, (q, a_seq, v, A), 2, "reward"),
    (rlkit.fix_step_type_on_interruptions, (jnp.ones((T, 2), jnp.int32),), 0, "step_type"),
    (rlkit.mpo_loss, (q, q, pen, [(jnp.ones(A), pen)]), 3, "kl_constraints[0] KL"),
    (rlkit.vmpo_loss, (v, v, pen, [(v, pen)]), 1, "advantages"),
    (
        rlkit.vmpo_compute_weights_and_temperature_loss,
        (v, v, v, pen, lambda x: x, 0.5),
        2,
        "importance_weights",
    ),
    (rlkit.normalize, (pop_state, v, a_seq), 2, "indices"),
    (rlkit.unnormalize, (pop_state, v, a_seq), 1, "normalized"),
]


def _wrong(value):
    if isinstance(value, list):  # kl_constraints: give the KL an extra axis
        kl, penalty = value[0]
        return [(kl[None], penalty)]
    return jnp.asarray(value)[None]


@pytest.mark.parametrize(
    "fn, args, index, name", CASES, ids=[f"{c[0].__name__}-{c[3]}" for c in CASES]
)
def test_wrong_rank_names_the_argument(fn, args, index, name):
    fn(*args)  # the valid call must work, so the error below is about `name`
    bad = list(args)
    bad[index] = _wrong(args[index])
    with pytest.raises(RLKitError) as info:
        fn(*bad)
    assert isinstance(info.value, AssertionError)
    assert isinstance(info.value, ArgumentError)
    assert f"`{name}`" in str(info.value), str(info.value)


def test_mpo_sample_axis_and_top_k_errors_are_rlkit_errors():
    with pytest.raises(RLKitError, match="sample_axis"):
        rlkit.mpo_loss(q, q, pen, [(jnp.ones(A), pen)], sample_axis=2)
    with pytest.raises(RLKitError, match="top_k_fraction"):
        rlkit.mpo_ops.get_top_k_weights(0.01, jnp.ones((3, 2)), jnp.ones((3, 2)))
    with pytest.raises(RLKitError, match="cumulant_type"):
        rlkit.feature_control_rewards(q, cumulant_type="nope")
    with pytest.raises(RLKitError, match="same tree structure"):
        rlkit.tree_map_zipped(lambda x, y: x, [(1, 2), (1,)])


def test_rlax_spelling_names_the_replacement():
    with pytest.raises(AttributeError, match="rlkit.transforms"):
        rlkit.nonlinear_bellman  # noqa: B018
    with pytest.raises(AttributeError, match="rlkit.losses"):
        rlkit.clipping  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        rlkit.not_a_name  # noqa: B018
