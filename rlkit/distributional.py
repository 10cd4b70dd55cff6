"""Distributional value learning: categorical (C51) and quantile (QR-DQN) losses.

Each function takes one unbatched transition (vmap over a batch). Names, argument order,
defaults and semantics follow rlax 0.1.9, where these live in ``value_learning.py``.
Layouts: categorical logits are [A, N] (actions first); quantile arrays are [N, A] (quantiles
first). Greedy actions are ``argmax``es, whose ties go to the first index. ``huber_param`` is
static (a Python float). ``stop_target_gradients=True`` by default.

With ``stop_target_gradients=False`` rlax's categorical losses return NaN gradients through the
target whenever a projected probability is exactly 0 (distrax takes the log of the labels);
rlkit's are finite there and equal rlax's elsewhere.

One rlax quirk is kept for parity: the ``stop_target_gradients`` flag of
`quantile_regression_loss` only stops the (already zero) gradient of the sign indicator, so
gradient still flows into ``dist_target``; `quantile_q_learning` and `quantile_expected_sarsa`
stop their targets themselves.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlkit.base import maybe_stop_gradient
from rlkit.errors import RLKitError, check
from rlkit.losses import huber_loss

__all__ = [
    "categorical_double_q_learning",
    "categorical_l2_project",
    "categorical_q_learning",
    "categorical_td_learning",
    "quantile_expected_sarsa",
    "quantile_q_learning",
    "quantile_regression_loss",
]

Array = chex.Array
Numeric = chex.Numeric


def _check_size(name: str, size: int, expected_name: str, expected: int) -> None:
    if size != expected:
        raise RLKitError(f"{name} has size {size}; expected {expected} ({expected_name})")


def _cross_entropy(labels: Array, logits: Array) -> Array:
    """-sum_i labels_i log softmax(logits)_i, where a zero label on a -inf logit adds 0.

    Unlike rlax (via distrax, which takes log(labels)), the gradient with respect to the
    labels is finite when some labels are exactly 0, which projected targets often are.
    """
    # Normalising the labels (a no-op in value, as projections keep mass) matches rlax's
    # gradients also at the kinks of the projection, where the atoms coincide.
    labels = labels / jnp.sum(labels)
    log_q = jax.nn.log_softmax(logits)
    log_q = jnp.where(jnp.logical_and(labels == 0, jnp.isinf(log_q)), 0.0, log_q)
    return -jnp.sum(labels * log_q)


def categorical_l2_project(z_p: Array, probs: Array, z_q: Array) -> Array:
    """Projects the categorical distribution (z_p, probs) onto the sorted support z_q.

    See "A Distributional Perspective on Reinforcement Learning" by Bellemare, Dabney and Munos
    (https://arxiv.org/abs/1707.06887). The projection minimises the L2 (Cramer) distance
    between CDFs: each source atom, clipped to [z_q[0], z_q[-1]], splits its mass between its
    two neighbours on z_q in proportion to closeness,

        (Phi p)_i = sum_j clip(1 - |clip(z_p_j) - z_q_i| / (z_q_{i +- 1} - z_q_i), 0, 1) p_j

    taking the gap to the upper neighbour when z_p_j >= z_q_i and to the lower one otherwise. The
    sizes of z_p and z_q may differ. As in rlax, 1 / gap is taken as 0 where a gap is not
    positive, so a repeated atom gives full weight to every source atom on that side: keep z_q
    strictly increasing.

    Args:
      z_p: source support, [Np].
      probs: source probabilities, [Np].
      z_q: target support, sorted ascending, [Nq].

    Returns:
      The projected probabilities on z_q, [Nq].
    """
    check("categorical_l2_project", chex.assert_rank, {"z_p": z_p, "probs": probs, "z_q": z_q}, 1)
    check(
        "categorical_l2_project", chex.assert_type, {"z_p": z_p, "probs": probs, "z_q": z_q}, float
    )
    check("categorical_l2_project", chex.assert_equal_shape, {"z_p": z_p, "probs": probs})

    z_p = jnp.clip(z_p, z_q[0], z_q[-1])
    gap_up = jnp.roll(z_q, -1) - z_q  # z_q[i+1] - z_q[i]; negative (unused) at the top.
    gap_down = z_q - jnp.roll(z_q, 1)  # z_q[i] - z_q[i-1]; negative (unused) at the bottom.
    slope_up = jnp.where(gap_up > 0, 1.0 / gap_up, 0.0)[:, None]
    slope_down = jnp.where(gap_down > 0, 1.0 / gap_down, 0.0)[:, None]
    delta = z_p[None, :] - z_q[:, None]  # [Nq, Np]
    # |delta| / gap, with the gap on delta's side; >= 0 picks the upper gap, as in rlax. (Selecting
    # the products rather than the slopes keeps rlax's gradients at the kinks also under jit.)
    scaled = jnp.where(delta >= 0, delta * slope_up, -delta * slope_down)
    weights = jnp.clip(1.0 - scaled, 0.0, 1.0)  # [Nq, Np]
    return jax.lax.platform_dependent(weights, probs, cpu=_matvec, default=_weighted_sum)


def _matvec(weights: Array, probs: Array) -> Array:
    # On XLA:CPU a (batched) matrix-vector product beat the fused multiply-and-reduce that rlax
    # uses: 1.2-1.4 ms against 2.2-2.3 ms of CPU time for the projection vmapped over B = 1024,
    # N = 51 (jax 0.10.2, 2 cores).
    return jnp.dot(weights, probs, precision=jax.lax.Precision.HIGHEST)


def _weighted_sum(weights: Array, probs: Array) -> Array:
    # Elsewhere (GPU, TPU) keep rlax's fused multiply-and-reduce, which cannot drop to TF32.
    return jnp.sum(weights * probs[None, :], axis=-1)


def categorical_td_learning(
    v_atoms_tm1: Array,
    v_logits_tm1: Array,
    r_t: Numeric,
    discount_t: Numeric,
    v_atoms_t: Array,
    v_logits_t: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """TD learning of a categorical state-value distribution.

    See "A Distributional Perspective on Reinforcement Learning" by Bellemare, Dabney and Munos
    (https://arxiv.org/abs/1707.06887).

        target = Phi_{z_tm1}(r_t + gamma_t z_t, softmax(v_logits_t))
        loss = -sum_i target_i log softmax(v_logits_tm1)_i

    Args:
      v_atoms_tm1: support of the distribution at t-1, [N].
      v_logits_tm1: logits of the distribution at t-1, [N].
      r_t: reward, scalar.
      discount_t: discount, scalar.
      v_atoms_t: support of the distribution at t, [M].
      v_logits_t: logits of the distribution at t, [M].
      stop_target_gradients: whether to stop the gradient flowing into the target.

    Returns:
      The cross-entropy loss, a scalar.
    """
    check(
        "categorical_td_learning",
        chex.assert_rank,
        {
            "v_atoms_tm1": v_atoms_tm1,
            "v_logits_tm1": v_logits_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "v_atoms_t": v_atoms_t,
            "v_logits_t": v_logits_t,
        },
        [1, 1, 0, 0, 1, 1],
    )
    check(
        "categorical_td_learning",
        chex.assert_type,
        {
            "v_atoms_tm1": v_atoms_tm1,
            "v_logits_tm1": v_logits_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "v_atoms_t": v_atoms_t,
            "v_logits_t": v_logits_t,
        },
        float,
    )
    check(
        "categorical_td_learning",
        chex.assert_equal_shape,
        {"v_atoms_tm1": v_atoms_tm1, "v_logits_tm1": v_logits_tm1},
    )
    check(
        "categorical_td_learning",
        chex.assert_equal_shape,
        {"v_atoms_t": v_atoms_t, "v_logits_t": v_logits_t},
    )

    target_z = r_t + discount_t * v_atoms_t
    target = categorical_l2_project(target_z, jax.nn.softmax(v_logits_t), v_atoms_tm1)
    target = maybe_stop_gradient(target, stop_target_gradients)
    return _cross_entropy(target, v_logits_tm1)


def _check_categorical_q(q_atoms_tm1, q_logits_tm1, q_atoms_t, q_logits_t) -> None:
    _check_size(
        "q_logits_tm1.shape[1]", q_logits_tm1.shape[1], "len(q_atoms_tm1)", q_atoms_tm1.shape[0]
    )
    _check_size("q_logits_t.shape[1]", q_logits_t.shape[1], "len(q_atoms_t)", q_atoms_t.shape[0])
    _check_size(
        "q_logits_t.shape[0]", q_logits_t.shape[0], "q_logits_tm1.shape[0]", q_logits_tm1.shape[0]
    )


def _categorical_q_loss(
    q_atoms_tm1: Array,
    q_logits_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_atoms_t: Array,
    p_target_z: Array,
    stop_target_gradients: bool | Array,
) -> Array:
    """Cross-entropy between the projected target distribution and the taken action's."""
    target_z = r_t + discount_t * q_atoms_t
    target = categorical_l2_project(target_z, p_target_z, q_atoms_tm1)
    target = maybe_stop_gradient(target, stop_target_gradients)
    return _cross_entropy(target, q_logits_tm1[a_tm1])


def categorical_q_learning(
    q_atoms_tm1: Array,
    q_logits_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_atoms_t: Array,
    q_logits_t: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Q-learning for categorical action-value distributions (C51).

    See "A Distributional Perspective on Reinforcement Learning" by Bellemare, Dabney and Munos
    (https://arxiv.org/abs/1707.06887). With p_t(a) = softmax(q_logits_t[a]) and the greedy
    action a* = argmax_a sum_i p_t(a)_i z_t_i:

        target = Phi_{z_tm1}(r_t + gamma_t z_t, p_t(a*))
        loss = -sum_i target_i log softmax(q_logits_tm1[a_tm1])_i

    Args:
      q_atoms_tm1: support at t-1, [N].
      q_logits_tm1: logits at t-1, [A, N].
      a_tm1: the action taken at t-1, int scalar.
      r_t: reward, scalar.
      discount_t: discount, scalar.
      q_atoms_t: support at t, [M].
      q_logits_t: logits at t, [A, M].
      stop_target_gradients: whether to stop the gradient flowing into the target.

    Returns:
      The cross-entropy loss, a scalar.
    """
    check(
        "categorical_q_learning",
        chex.assert_rank,
        {
            "q_atoms_tm1": q_atoms_tm1,
            "q_logits_tm1": q_logits_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_atoms_t": q_atoms_t,
            "q_logits_t": q_logits_t,
        },
        [1, 2, 0, 0, 0, 1, 2],
    )
    check(
        "categorical_q_learning",
        chex.assert_type,
        {
            "q_atoms_tm1": q_atoms_tm1,
            "q_logits_tm1": q_logits_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_atoms_t": q_atoms_t,
            "q_logits_t": q_logits_t,
        },
        [float, float, int, float, float, float, float],
    )
    _check_categorical_q(q_atoms_tm1, q_logits_tm1, q_atoms_t, q_logits_t)

    q_t_probs = jax.nn.softmax(q_logits_t)
    q_t_mean = jnp.sum(q_t_probs * q_atoms_t[None, :], axis=1)
    p_target_z = q_t_probs[jnp.argmax(q_t_mean)]
    return _categorical_q_loss(
        q_atoms_tm1,
        q_logits_tm1,
        a_tm1,
        r_t,
        discount_t,
        q_atoms_t,
        p_target_z,
        stop_target_gradients,
    )


def categorical_double_q_learning(
    q_atoms_tm1: Array,
    q_logits_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_atoms_t: Array,
    q_logits_t: Array,
    q_t_selector: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Double Q-learning for categorical action-value distributions.

    See "A Distributional Perspective on Reinforcement Learning" by Bellemare, Dabney and Munos
    (https://arxiv.org/abs/1707.06887) and "Double Q-learning" by van Hasselt
    (https://papers.nips.cc/paper/3964-double-q-learning). The greedy action is chosen by a
    separate estimate, a* = argmax_a q_t_selector[a]:

        target = Phi_{z_tm1}(r_t + gamma_t z_t, softmax(q_logits_t[a*]))
        loss = -sum_i target_i log softmax(q_logits_tm1[a_tm1])_i

    Args:
      q_atoms_tm1: support at t-1, [N].
      q_logits_tm1: logits at t-1, [A, N].
      a_tm1: the action taken at t-1, int scalar.
      r_t: reward, scalar.
      discount_t: discount, scalar.
      q_atoms_t: support at t, [M].
      q_logits_t: logits at t, [A, M].
      q_t_selector: action values that pick the greedy action at t, [A].
      stop_target_gradients: whether to stop the gradient flowing into the target.

    Returns:
      The cross-entropy loss, a scalar.
    """
    check(
        "categorical_double_q_learning",
        chex.assert_rank,
        {
            "q_atoms_tm1": q_atoms_tm1,
            "q_logits_tm1": q_logits_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_atoms_t": q_atoms_t,
            "q_logits_t": q_logits_t,
            "q_t_selector": q_t_selector,
        },
        [1, 2, 0, 0, 0, 1, 2, 1],
    )
    check(
        "categorical_double_q_learning",
        chex.assert_type,
        {
            "q_atoms_tm1": q_atoms_tm1,
            "q_logits_tm1": q_logits_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_atoms_t": q_atoms_t,
            "q_logits_t": q_logits_t,
            "q_t_selector": q_t_selector,
        },
        [float, float, int, float, float, float, float, float],
    )
    _check_categorical_q(q_atoms_tm1, q_logits_tm1, q_atoms_t, q_logits_t)
    _check_size(
        "len(q_t_selector)", q_t_selector.shape[0], "q_logits_t.shape[0]", q_logits_t.shape[0]
    )

    p_target_z = jax.nn.softmax(q_logits_t[jnp.argmax(q_t_selector)])
    return _categorical_q_loss(
        q_atoms_tm1,
        q_logits_tm1,
        a_tm1,
        r_t,
        discount_t,
        q_atoms_t,
        p_target_z,
        stop_target_gradients,
    )


def _quantile_huber_loss(delta: Array, huber_param: float) -> Array:
    if huber_param > 0.0:
        return huber_loss(delta, huber_param)
    return jnp.abs(delta)


def quantile_regression_loss(
    dist_src: Array,
    tau_src: Array,
    dist_target: Array,
    huber_param: float = 0.0,
    stop_target_gradients: bool = True,
) -> Numeric:
    """(Huber) quantile regression loss between two quantile-valued distributions.

    See "Distributional Reinforcement Learning with Quantile Regression" by Dabney et al.
    (https://arxiv.org/abs/1710.10044). With u_ij = dist_target_j - dist_src_i:

        loss = sum_i mean_j |tau_i - 1[u_ij < 0]| rho_kappa(u_ij)

    where rho_kappa is the Huber loss with threshold kappa = ``huber_param`` (|u| if 0).

    Args:
      dist_src: source quantile values, [N].
      tau_src: the quantile levels of ``dist_src``, [N].
      dist_target: target samples or quantile values, [M].
      huber_param: the Huber threshold kappa (static); 0 gives the plain absolute error.
      stop_target_gradients: whether to stop the gradient of the indicator 1[u < 0] (whose
        gradient is zero anyway; kept for parity with rlax, see the module docstring).

    Returns:
      The loss, a scalar.
    """
    check(
        "quantile_regression_loss",
        chex.assert_rank,
        {"dist_src": dist_src, "tau_src": tau_src, "dist_target": dist_target},
        1,
    )
    check(
        "quantile_regression_loss",
        chex.assert_type,
        {"dist_src": dist_src, "tau_src": tau_src, "dist_target": dist_target},
        float,
    )
    check(
        "quantile_regression_loss",
        chex.assert_equal_shape,
        {"dist_src": dist_src, "tau_src": tau_src},
    )

    delta = dist_target[None, :] - dist_src[:, None]  # [N, M]
    delta_neg = maybe_stop_gradient((delta < 0.0).astype(delta.dtype), stop_target_gradients)
    weight = jnp.abs(tau_src[:, None] - delta_neg)
    loss = _quantile_huber_loss(delta, huber_param) * weight
    return jnp.sum(jnp.mean(loss, axis=-1))


def _check_quantile_q(dist_q_tm1: Array, tau_q_tm1: Array, dist_q_t: Array) -> None:
    _check_size("len(tau_q_tm1)", tau_q_tm1.shape[0], "dist_q_tm1.shape[0]", dist_q_tm1.shape[0])
    _check_size(
        "dist_q_t.shape[1]", dist_q_t.shape[1], "dist_q_tm1.shape[1] (actions)", dist_q_tm1.shape[1]
    )


def quantile_q_learning(
    dist_q_tm1: Array,
    tau_q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    dist_q_t_selector: Array,
    dist_q_t: Array,
    huber_param: float = 0.0,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Q-learning for quantile-valued action-value distributions (QR-DQN).

    See "Distributional Reinforcement Learning with Quantile Regression" by Dabney et al.
    (https://arxiv.org/abs/1710.10044). With a* = argmax_a mean_j dist_q_t_selector[j, a]:

        target_j = r_t + gamma_t dist_q_t[j, a*]
        loss = quantile_regression_loss(dist_q_tm1[:, a_tm1], tau_q_tm1, target, huber_param)

    Args:
      dist_q_tm1: quantile values at t-1, [N, A].
      tau_q_tm1: quantile levels of ``dist_q_tm1``, [N].
      a_tm1: the action taken at t-1, int scalar.
      r_t: reward, scalar.
      discount_t: discount, scalar.
      dist_q_t_selector: quantile values that pick the greedy action at t (as in double
        Q-learning), [M, A].
      dist_q_t: target quantile values at t, [M, A].
      huber_param: the Huber threshold (static); 0 gives the plain absolute error.
      stop_target_gradients: whether to stop the gradient flowing into the target.

    Returns:
      The loss, a scalar.
    """
    check(
        "quantile_q_learning",
        chex.assert_rank,
        {
            "dist_q_tm1": dist_q_tm1,
            "tau_q_tm1": tau_q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "dist_q_t_selector": dist_q_t_selector,
            "dist_q_t": dist_q_t,
        },
        [2, 1, 0, 0, 0, 2, 2],
    )
    check(
        "quantile_q_learning",
        chex.assert_type,
        {
            "dist_q_tm1": dist_q_tm1,
            "tau_q_tm1": tau_q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "dist_q_t_selector": dist_q_t_selector,
            "dist_q_t": dist_q_t,
        },
        [float, float, int, float, float, float, float],
    )
    _check_quantile_q(dist_q_tm1, tau_q_tm1, dist_q_t)
    _check_size(
        "dist_q_t_selector.shape[1]",
        dist_q_t_selector.shape[1],
        "dist_q_t.shape[1] (actions)",
        dist_q_t.shape[1],
    )

    dist_qa_tm1 = dist_q_tm1[:, a_tm1]
    a_t = jnp.argmax(jnp.mean(dist_q_t_selector, axis=0))
    dist_target = r_t + discount_t * dist_q_t[:, a_t]
    dist_target = maybe_stop_gradient(dist_target, stop_target_gradients)
    return quantile_regression_loss(dist_qa_tm1, tau_q_tm1, dist_target, huber_param)


def quantile_expected_sarsa(
    dist_q_tm1: Array,
    tau_q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    dist_q_t: Array,
    probs_a_t: Array,
    huber_param: float = 0.0,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Expected SARSA for quantile-valued action-value distributions.

    The quantile regression loss (Dabney et al., https://arxiv.org/abs/1710.10044) towards
    each next action's target distribution, averaged under the policy's probabilities:

        loss = sum_a pi_t(a) quantile_regression_loss(dist_q_tm1[:, a_tm1], tau_q_tm1,
                                                      r_t + gamma_t dist_q_t[:, a], huber_param)

    Args:
      dist_q_tm1: quantile values at t-1, [N, A].
      tau_q_tm1: quantile levels of ``dist_q_tm1``, [N].
      a_tm1: the action taken at t-1, int scalar.
      r_t: reward, scalar.
      discount_t: discount, scalar.
      dist_q_t: target quantile values at t, [M, A].
      probs_a_t: the policy's action probabilities at t, [A].
      huber_param: the Huber threshold (static); 0 gives the plain absolute error.
      stop_target_gradients: whether to stop the gradient flowing into the target and
        ``probs_a_t``.

    Returns:
      The loss, a scalar.
    """
    check(
        "quantile_expected_sarsa",
        chex.assert_rank,
        {
            "dist_q_tm1": dist_q_tm1,
            "tau_q_tm1": tau_q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "dist_q_t": dist_q_t,
            "probs_a_t": probs_a_t,
        },
        [2, 1, 0, 0, 0, 2, 1],
    )
    check(
        "quantile_expected_sarsa",
        chex.assert_type,
        {
            "dist_q_tm1": dist_q_tm1,
            "tau_q_tm1": tau_q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "dist_q_t": dist_q_t,
            "probs_a_t": probs_a_t,
        },
        [float, float, int, float, float, float, float],
    )
    _check_quantile_q(dist_q_tm1, tau_q_tm1, dist_q_t)
    _check_size(
        "len(probs_a_t)", probs_a_t.shape[0], "dist_q_t.shape[1] (actions)", dist_q_t.shape[1]
    )

    dist_qa_tm1 = dist_q_tm1[:, a_tm1]  # [N]
    dist_target = maybe_stop_gradient(r_t + discount_t * dist_q_t, stop_target_gradients)
    probs_a_t = maybe_stop_gradient(probs_a_t, stop_target_gradients)

    delta = dist_target[None, :, :] - dist_qa_tm1[:, None, None]  # [N, M, A]
    weight = jnp.abs(tau_q_tm1[:, None, None] - (delta < 0.0).astype(delta.dtype))
    loss = _quantile_huber_loss(delta, huber_param) * weight
    per_action_loss = jnp.sum(jnp.mean(loss, axis=1), axis=0)  # [A]
    return jnp.dot(per_action_loss, probs_a_t)
