"""Temporal-difference errors for state-value and action-value learning.

Each function takes one unbatched transition (or one trajectory, for the lambda and Retrace
variants) and returns the TD error `target - prediction`, keeping the names, argument order,
defaults and semantics of the rlax 0.1.9 function of the same name. Actions are integer indices
in `[0, A)`; an argmax picks the first of tied actions. Suffix `_tm1` marks the quantities being
learned (state or action at time t-1), suffix `_t` the reward, discount and bootstrap that
follow; the caller passes `discount_t = gamma * (1 - terminated)`.

Every function here defaults to `stop_target_gradients=True`: the gradient of the returned
error flows only into the prediction. (The returns in `rlkit.multistep` default to False.)
A squared-error loss is `0.5 * td_error ** 2`; its gradient wrt the prediction is `-td_error`.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rlkit import multistep
from rlkit.base import as_vector, batched_index, maybe_stop_gradient
from rlkit.errors import check_args, check_shape

Array = chex.Array
Numeric = chex.Numeric

__all__ = [
    "double_q_learning",
    "expected_sarsa",
    "munchausen_q_learning",
    "persistent_q_learning",
    "q_lambda",
    "q_learning",
    "qv_learning",
    "qv_max",
    "retrace",
    "retrace_continuous",
    "sarsa",
    "sarsa_lambda",
    "td_lambda",
    "td_learning",
]


def _check_lambda(fn: str, lambda_: Numeric, seq_len: int) -> None:
    """A vector `lambda_` must have one entry per step."""
    if np.ndim(lambda_) == 1:
        check_shape(fn, "lambda_", lambda_, (seq_len,), "one per step")


def td_learning(
    v_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    v_t: Numeric,
    stop_target_gradients: bool = True,
) -> Numeric:
    """TD(0) error of a state value.

        td_error = r_t + discount_t * v_t - v_tm1.

    See "Learning to Predict by the Methods of Temporal Differences", Sutton
    (https://link.springer.com/article/10.1023/A:1022633531479).

    Args:
      v_tm1: value of the state at time t-1, scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      v_t: value of the state at time t, scalar.
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "td_learning",
        {"v_tm1": v_tm1, "r_t": r_t, "discount_t": discount_t, "v_t": v_t},
        0,
        float,
    )
    target = r_t + discount_t * v_t
    return maybe_stop_gradient(target, stop_target_gradients) - v_tm1


def td_lambda(
    v_tm1: Array,
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    lambda_: Numeric,
    stop_target_gradients: bool = True,
) -> Array:
    """TD(lambda) errors of the state values along one trajectory.

        td_error[t] = G[t] - v_tm1[t],
        G[t] = r_t[t] + discount_t[t] * ((1 - lambda[t]) * v_t[t] + lambda[t] * G[t + 1]),

    with `G` bootstrapped on `v_t[-1]` (see `rlkit.multistep.lambda_returns`).

    See "Reinforcement Learning: An Introduction", Sutton and Barto, chapter 12
    (http://incompleteideas.net/book/the-book-2nd.html).

    Args:
      v_tm1: values of states 0..T-1, shape [T].
      r_t: rewards on the transitions out of them, shape [T].
      discount_t: discounts on those transitions, shape [T].
      v_t: values of states 1..T, shape [T].
      lambda_: mixing parameter, a scalar or a [T] vector.
      stop_target_gradients: whether to stop gradients through the targets (default True).

    Returns:
      The TD(lambda) errors, shape [T].
    """
    fn = "td_lambda"
    check_args(
        fn,
        {"v_tm1": v_tm1, "r_t": r_t, "discount_t": discount_t, "v_t": v_t, "lambda_": lambda_},
        [1, 1, 1, 1, {0, 1}],
        float,
        same_shape=["v_tm1", "r_t", "discount_t", "v_t"],
    )
    _check_lambda(fn, lambda_, np.shape(r_t)[0])
    target = multistep.lambda_returns(r_t, discount_t, v_t, lambda_)
    return maybe_stop_gradient(target, stop_target_gradients) - v_tm1


def sarsa(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_t: Array,
    a_t: Numeric,
    stop_target_gradients: bool = True,
) -> Numeric:
    """SARSA error: bootstrap on the action actually taken next.

        td_error = r_t + discount_t * q_t[a_t] - q_tm1[a_tm1].

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 6.4.

    Args:
      q_tm1: action values at time t-1, shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_t: action values at time t, shape [A].
      a_t: action taken at time t, int scalar.
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "sarsa",
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t": q_t,
            "a_t": a_t,
        },
        [1, 0, 0, 0, 1, 0],
        [float, int, float, float, float, int],
        same_shape=["q_tm1", "q_t"],
    )
    target = r_t + discount_t * jnp.asarray(q_t)[a_t]
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]


def expected_sarsa(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_t: Array,
    probs_a_t: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Expected SARSA error: bootstrap on the policy's expected next action value.

        td_error = r_t + discount_t * sum_a probs_a_t[a] q_t[a] - q_tm1[a_tm1].

    See "A Theoretical and Empirical Analysis of Expected Sarsa", van Seijen, van Hasselt,
    Whiteson and Wiering (https://ieeexplore.ieee.org/document/4927542).

    Args:
      q_tm1: action values at time t-1, shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_t: action values at time t, shape [A].
      probs_a_t: the policy's action probabilities at time t, shape [A].
      stop_target_gradients: whether to stop gradients through the target, the probabilities
        included (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "expected_sarsa",
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t": q_t,
            "probs_a_t": probs_a_t,
        },
        [1, 0, 0, 0, 1, 1],
        [float, int, float, float, float, float],
        same_shape=["q_tm1", "q_t", "probs_a_t"],
    )
    target = r_t + discount_t * jnp.dot(q_t, probs_a_t)
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]


def sarsa_lambda(
    q_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_t: Array,
    a_t: Array,
    lambda_: Numeric,
    stop_target_gradients: bool = True,
) -> Array:
    """SARSA(lambda) errors along one trajectory.

        td_error[t] = G[t] - q_tm1[t, a_tm1[t]],

    where `G` is the lambda-return (`rlkit.multistep.lambda_returns`) of the values
    `q_t[t, a_t[t]]` of the actions taken next.

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 12.7.

    Args:
      q_tm1: action values at times 0..T-1, shape [T, A].
      a_tm1: actions taken at those times, int, shape [T].
      r_t: rewards, shape [T].
      discount_t: discounts, shape [T].
      q_t: action values at times 1..T, shape [T, A].
      a_t: actions taken at those times, int, shape [T].
      lambda_: mixing parameter, a scalar or a [T] vector.
      stop_target_gradients: whether to stop gradients through the targets (default True).

    Returns:
      The SARSA(lambda) errors, shape [T].
    """
    fn = "sarsa_lambda"
    check_args(
        fn,
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t": q_t,
            "a_t": a_t,
            "lambda_": lambda_,
        },
        [2, 1, 1, 1, 2, 1, {0, 1}],
        [float, int, float, float, float, int, float],
        same_shape=["a_tm1", "r_t", "discount_t", "a_t"],
    )
    check_args(fn, {"q_tm1": q_tm1, "q_t": q_t}, 2, same_shape=["q_tm1", "q_t"])
    check_shape(fn, "q_tm1", q_tm1, (np.shape(r_t)[0], np.shape(q_tm1)[1]), "[T, A]")
    _check_lambda(fn, lambda_, np.shape(r_t)[0])
    qa_tm1 = batched_index(jnp.asarray(q_tm1), jnp.asarray(a_tm1))
    qa_t = batched_index(jnp.asarray(q_t), jnp.asarray(a_t))
    target = multistep.lambda_returns(r_t, discount_t, qa_t, lambda_)
    return maybe_stop_gradient(target, stop_target_gradients) - qa_tm1


def q_learning(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_t: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Q-learning error: bootstrap on the greedy next action value.

        td_error = r_t + discount_t * max_a q_t[a] - q_tm1[a_tm1].

    See "Learning from Delayed Rewards", Watkins (1989), and "Reinforcement Learning: An
    Introduction", Sutton and Barto, section 6.5.

    Args:
      q_tm1: action values at time t-1, shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_t: action values at time t, shape [A].
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "q_learning",
        {"q_tm1": q_tm1, "a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t, "q_t": q_t},
        [1, 0, 0, 0, 1],
        [float, int, float, float, float],
        same_shape=["q_tm1", "q_t"],
    )
    target = r_t + discount_t * jnp.max(q_t)
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]


def double_q_learning(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_t_value: Array,
    q_t_selector: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Double Q-learning error: one set of values picks the next action, another values it.

        td_error = r_t + discount_t * q_t_value[argmax_a q_t_selector[a]] - q_tm1[a_tm1],

    with ties in the argmax going to the first action.

    See "Double Q-learning", van Hasselt (https://papers.nips.cc/paper/3964-double-q-learning)
    and "Deep Reinforcement Learning with Double Q-learning", van Hasselt, Guez and Silver
    (https://arxiv.org/abs/1509.06461).

    Args:
      q_tm1: action values at time t-1, shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_t_value: action values at time t used to value the chosen action (the target
        network in DQN), shape [A].
      q_t_selector: action values at time t used to choose it (the online network), [A].
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "double_q_learning",
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t_value": q_t_value,
            "q_t_selector": q_t_selector,
        },
        [1, 0, 0, 0, 1, 1],
        [float, int, float, float, float, float],
        same_shape=["q_tm1", "q_t_value", "q_t_selector"],
    )
    target = r_t + discount_t * jnp.asarray(q_t_value)[jnp.argmax(q_t_selector)]
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]


def persistent_q_learning(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_t: Array,
    action_gap_scale: float,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Persistent Q-learning error, which widens the action gap.

        target = r_t + discount_t * ((1 - s) * max_a q_t[a] + s * q_t[a_tm1]),
        td_error = target - q_tm1[a_tm1],    s = action_gap_scale in [0, 1].

    See "Increasing the Action Gap: New Operators for Reinforcement Learning", Bellemare,
    Ostrovski, Guez, Thomas and Munos (https://arxiv.org/abs/1512.04860).

    Args:
      q_tm1: action values at time t-1, shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_t: action values at time t, shape [A].
      action_gap_scale: weight in [0, 1] of repeating the previous action in the bootstrap.
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "persistent_q_learning",
        {"q_tm1": q_tm1, "a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t, "q_t": q_t},
        [1, 0, 0, 0, 1],
        [float, int, float, float, float],
        same_shape=["q_tm1", "q_t"],
    )
    bootstrap = (1.0 - action_gap_scale) * jnp.max(q_t) + action_gap_scale * jnp.asarray(q_t)[a_tm1]
    target = r_t + discount_t * bootstrap
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]


def qv_learning(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    v_t: Numeric,
    stop_target_gradients: bool = True,
) -> Numeric:
    """QV-learning error: an action value bootstrapped on a learned state value.

        td_error = r_t + discount_t * v_t - q_tm1[a_tm1].

    See "Two Novel On-policy Reinforcement Learning Algorithms based on TD(lambda)-methods",
    Wiering and van Hasselt (https://ieeexplore.ieee.org/abstract/document/4220845).

    Args:
      q_tm1: action values at time t-1, shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      v_t: state value at time t, scalar.
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "qv_learning",
        {"q_tm1": q_tm1, "a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t, "v_t": v_t},
        [1, 0, 0, 0, 0],
        [float, int, float, float, float],
    )
    target = r_t + discount_t * v_t
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]


def qv_max(
    v_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_t: Array,
    stop_target_gradients: bool = True,
) -> Numeric:
    """QVMAX error: a state value bootstrapped on the greedy next action value.

        td_error = r_t + discount_t * max_a q_t[a] - v_tm1.

    See "The QV Family Compared to Other Reinforcement Learning Algorithms", Wiering and van
    Hasselt (2009) (https://ieeexplore.ieee.org/document/4927532).

    Args:
      v_tm1: state value at time t-1, scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_t: action values at time t, shape [A].
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "qv_max",
        {"v_tm1": v_tm1, "r_t": r_t, "discount_t": discount_t, "q_t": q_t},
        [0, 0, 0, 1],
        float,
    )
    target = r_t + discount_t * jnp.max(q_t)
    return maybe_stop_gradient(target, stop_target_gradients) - v_tm1


def q_lambda(
    q_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_t: Array,
    lambda_: Numeric,
    stop_target_gradients: bool = True,
) -> Array:
    """Peng's or Watkins' Q(lambda) errors along one trajectory.

        td_error[t] = G[t] - q_tm1[t, a_tm1[t]],

    where `G` is the lambda-return (`rlkit.multistep.lambda_returns`) of the greedy values
    `max_a q_t[t, a]`. A scalar `lambda_` gives Peng's Q(lambda); Watkins' cuts the trace after
    exploratory actions, i.e. `lambda_[t] = lambda * (a_t[t] == argmax_a q_t[t, a])`.

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 12.10, and
    "Incremental Multi-Step Q-Learning", Peng and Williams (1996).

    Args:
      q_tm1: action values at times 0..T-1, shape [T, A].
      a_tm1: actions taken at those times, int, shape [T].
      r_t: rewards, shape [T].
      discount_t: discounts, shape [T].
      q_t: action values at times 1..T, shape [T, A].
      lambda_: mixing parameter, a scalar or a [T] vector.
      stop_target_gradients: whether to stop gradients through the targets (default True).

    Returns:
      The Q(lambda) errors, shape [T].
    """
    fn = "q_lambda"
    check_args(
        fn,
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t": q_t,
            "lambda_": lambda_,
        },
        [2, 1, 1, 1, 2, {0, 1}],
        [float, int, float, float, float, float],
        same_shape=["a_tm1", "r_t", "discount_t"],
    )
    check_args(fn, {"q_tm1": q_tm1, "q_t": q_t}, 2, same_shape=["q_tm1", "q_t"])
    check_shape(fn, "q_tm1", q_tm1, (np.shape(r_t)[0], np.shape(q_tm1)[1]), "[T, A]")
    _check_lambda(fn, lambda_, np.shape(r_t)[0])
    qa_tm1 = batched_index(jnp.asarray(q_tm1), jnp.asarray(a_tm1))
    v_t = jnp.max(jnp.asarray(q_t), axis=-1)
    target = multistep.lambda_returns(r_t, discount_t, v_t, lambda_)
    return maybe_stop_gradient(target, stop_target_gradients) - qa_tm1


def retrace(
    q_tm1: Array,
    q_t: Array,
    a_tm1: Array,
    a_t: Array,
    r_t: Array,
    discount_t: Array,
    pi_t: Array,
    mu_t: Array,
    lambda_: float,
    eps: float = 1e-8,
    stop_target_gradients: bool = True,
) -> Array:
    """Retrace errors along one trajectory of behaviour-policy experience.

    With truncated importance weights `c[t] = lambda * min(1, pi_t[t, a_t[t]] / (mu_t[t] + eps))`
    and `E_pi q_t[t] = sum_a pi_t[t, a] q_t[t, a]`:

        G[T-1] = r_t[T-1] + discount_t[T-1] * E_pi q_t[T-1],
        G[t] = r_t[t] + discount_t[t] * (E_pi q_t[t] - c[t] q_t[t, a_t[t]] + c[t] G[t + 1]),
        td_error[t] = G[t] - q_tm1[t, a_tm1[t]].

    See "Safe and Efficient Off-Policy Reinforcement Learning", Munos, Stepleton, Harutyunyan
    and Bellemare (https://arxiv.org/abs/1606.02647).

    Args:
      q_tm1: action values at times 0..T-1, shape [T, A].
      q_t: action values at times 1..T, shape [T, A].
      a_tm1: actions taken at times 0..T-1, int, shape [T].
      a_t: actions taken at times 1..T, int, shape [T].
      r_t: rewards, shape [T].
      discount_t: discounts, shape [T].
      pi_t: target-policy probabilities at times 1..T, shape [T, A].
      mu_t: behaviour-policy probability of the taken action `a_t`, shape [T].
      lambda_: mixing parameter, a scalar (or a [T] vector).
      eps: added to `mu_t` before dividing, for numerical safety.
      stop_target_gradients: whether to stop gradients through the targets (default True).

    Returns:
      The Retrace errors, shape [T].
    """
    fn = "retrace"
    check_args(
        fn,
        {
            "q_tm1": q_tm1,
            "q_t": q_t,
            "a_tm1": a_tm1,
            "a_t": a_t,
            "r_t": r_t,
            "discount_t": discount_t,
            "pi_t": pi_t,
            "mu_t": mu_t,
            "lambda_": lambda_,
        },
        [2, 2, 1, 1, 1, 1, 2, 1, {0, 1}],
        [float, float, int, int, float, float, float, float, float],
        same_shape=["a_tm1", "a_t", "r_t", "discount_t", "mu_t"],
    )
    check_args(
        fn, {"q_tm1": q_tm1, "q_t": q_t, "pi_t": pi_t}, 2, same_shape=["q_tm1", "q_t", "pi_t"]
    )
    check_shape(fn, "q_tm1", q_tm1, (np.shape(r_t)[0], np.shape(q_tm1)[1]), "[T, A]")
    _check_lambda(fn, lambda_, np.shape(r_t)[0])
    pi_t, mu_t = jnp.asarray(pi_t), jnp.asarray(mu_t)
    a_t = jnp.asarray(a_t)
    pi_a_t = batched_index(pi_t, a_t)
    c_t = jnp.minimum(1.0, pi_a_t / (mu_t + eps)) * as_vector(lambda_, mu_t)
    target = multistep.general_off_policy_returns_from_action_values(
        q_t, a_t, r_t, discount_t, c_t, pi_t
    )
    qa_tm1 = batched_index(jnp.asarray(q_tm1), jnp.asarray(a_tm1))
    return maybe_stop_gradient(target, stop_target_gradients) - qa_tm1


def retrace_continuous(
    q_tm1: Array,
    q_t: Array,
    v_t: Array,
    r_t: Array,
    discount_t: Array,
    log_rhos: Array,
    lambda_: Numeric,
    stop_target_gradients: bool = True,
) -> Array:
    """Retrace errors for continuous actions, from log importance weights.

    With `c[t] = lambda[t] * min(1, exp(log_rhos[t]))`:

        G[K-1] = r_t[K-1] + discount_t[K-1] * v_t[K-1],
        G[t] = r_t[t] + discount_t[t] * (v_t[t] - c[t] q_t[t] + c[t] G[t + 1]),
        td_error[t] = G[t] - q_tm1[t].

    See "Safe and Efficient Off-Policy Reinforcement Learning", Munos, Stepleton, Harutyunyan
    and Bellemare (https://arxiv.org/abs/1606.02647).

    Args:
      q_tm1: values of the taken actions at times 0..K-1, shape [K].
      q_t: values of the taken actions at times 1..K-1, shape [K - 1].
      v_t: target-policy state values at times 1..K, shape [K].
      r_t: rewards, shape [K].
      discount_t: discounts, shape [K].
      log_rhos: log of pi/mu for the actions taken at times 1..K-1, shape [K - 1].
      lambda_: mixing parameter, a scalar or a [K - 1] vector.
      stop_target_gradients: whether to stop gradients through the targets (default True).

    Returns:
      The Retrace errors, shape [K].
    """
    fn = "retrace_continuous"
    check_args(
        fn,
        {
            "q_tm1": q_tm1,
            "q_t": q_t,
            "v_t": v_t,
            "r_t": r_t,
            "discount_t": discount_t,
            "log_rhos": log_rhos,
            "lambda_": lambda_,
        },
        [1, 1, 1, 1, 1, 1, {0, 1}],
        float,
        same_shape=["q_tm1", "v_t", "r_t", "discount_t"],
    )
    seq_len = np.shape(r_t)[0]
    check_shape(fn, "q_t", q_t, (seq_len - 1,), "K - 1")
    check_shape(fn, "log_rhos", log_rhos, (seq_len - 1,), "K - 1")
    _check_lambda(fn, lambda_, seq_len - 1)
    log_rhos = jnp.asarray(log_rhos)
    c_t = jnp.minimum(1.0, jnp.exp(log_rhos)) * as_vector(lambda_, log_rhos)
    target = multistep.general_off_policy_returns_from_q_and_v(q_t, v_t, r_t, discount_t, c_t)
    return maybe_stop_gradient(target, stop_target_gradients) - q_tm1


def munchausen_q_learning(
    q_tm1: Array,
    a_tm1: Numeric,
    r_t: Numeric,
    discount_t: Numeric,
    q_tm1_target: Array,
    q_t_target: Array,
    entropy_temperature: Numeric = 0.03,
    munchausen_coefficient: Numeric = 0.9,
    clip_value_min: Numeric = -1.0,
    stop_target_gradients: bool = True,
) -> Numeric:
    """Munchausen Q-learning error: soft Q-learning with a scaled, clipped log-policy bonus.

    See "Munchausen Reinforcement Learning" by Vieillard, Pietquin and Geist (2020),
    https://arxiv.org/abs/2007.14430. With the target network's softmax policy
    ``pi(.|s) = softmax(q_target(s, .) / tau)``, whose scaled log-probabilities are
    ``tau log pi(a|s) = q_target(s, a) - tau logsumexp(q_target(s, .) / tau)``:

        target = r_t + alpha clip(tau log pi(a_tm1|s_tm1), l0, 0)
                 + discount_t sum_a pi(a|s_t) (q_t_target[a] - tau log pi(a|s_t))
        td_error = target - q_tm1[a_tm1]

    where ``tau = entropy_temperature``, ``alpha = munchausen_coefficient`` and
    ``l0 = clip_value_min``; the defaults are the paper's (0.03, 0.9, -1). With ``alpha = 0`` it
    is soft (entropy-regularised) Q-learning, and as ``tau -> 0`` with ``alpha = 0`` it tends to
    Q-learning. rlax 0.1.9 has no Munchausen function; the signature follows its ``q_learning``.

    Args:
      q_tm1: action values at time t-1 (being learned), shape [A].
      a_tm1: action taken at time t-1, int scalar.
      r_t: reward at time t, scalar.
      discount_t: discount at time t, scalar.
      q_tm1_target: target-network action values at time t-1, shape [A] (the bonus's policy).
      q_t_target: target-network action values at time t, shape [A].
      entropy_temperature: tau > 0, the temperature of the softmax policy.
      munchausen_coefficient: alpha, the scale of the log-policy bonus.
      clip_value_min: l0 < 0, the lower clip of the scaled log-policy in the bonus.
      stop_target_gradients: whether to stop gradients through the target (default True).

    Returns:
      The TD error, scalar.
    """
    check_args(
        "munchausen_q_learning",
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_tm1_target": q_tm1_target,
            "q_t_target": q_t_target,
        },
        [1, 0, 0, 0, 1, 1],
        [float, int, float, float, float, float],
        same_shape=["q_tm1", "q_tm1_target", "q_t_target"],
    )
    tau = jnp.asarray(entropy_temperature, jnp.asarray(q_t_target).dtype)
    scaled_log_pi_tm1 = q_tm1_target - tau * jax.nn.logsumexp(q_tm1_target / tau)
    scaled_log_pi_t = q_t_target - tau * jax.nn.logsumexp(q_t_target / tau)
    pi_t = jax.nn.softmax(q_t_target / tau)
    bonus = munchausen_coefficient * jnp.clip(scaled_log_pi_tm1[a_tm1], clip_value_min, 0.0)
    soft_value_t = jnp.sum(pi_t * (q_t_target - scaled_log_pi_t))
    target = r_t + bonus + discount_t * soft_value_t
    return maybe_stop_gradient(target, stop_target_gradients) - jnp.asarray(q_tm1)[a_tm1]
