"""Multistep returns and advantages over one trajectory.

Each function takes one unbatched, time-major trajectory (vmap over the batch axis) and keeps
the names, argument order, defaults and semantics of the rlax 0.1.9 function of the same name.
Time indices follow Sutton and Barto: `r_t[i]` and `discount_t[i]` are the reward and discount
received on the transition out of state `i`, and `v_t[i]` is the value of the state that
transition lands in, so the return estimated at position `i` is that of state `i`.
The caller passes `discount_t = gamma * (1 - terminated)`.

Stop-gradient default. Every return in this module defaults to `stop_target_gradients=False`,
while the TD errors of `rlkit.value_learning` (which are built from these returns) default to
`True`. The difference comes from rlax and is kept so that ported code behaves the same: when you
use a return from this module as a regression target, pass `stop_target_gradients=True` or wrap
it in `jax.lax.stop_gradient` yourself.

Beyond rlax, `gae_from_rollout`, `n_step_returns_from_rollout` and `q_lambda_from_rollout` take a Gymnasium-style
rollout (separate `terminated` and `truncated` flags plus the value of the true final observation)
and get the two things that are easy to get wrong right: a time-limit truncation bootstraps,
a termination does not, and no trace crosses an episode boundary.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rlkit.base import as_vector, batched_index, maybe_stop_gradient
from rlkit.errors import ArgumentError, RLKitError, check_args, check_shape

Array = chex.Array
Numeric = chex.Numeric

__all__ = [
    "discounted_returns",
    "gae_from_rollout",
    "general_off_policy_returns_from_action_values",
    "general_off_policy_returns_from_q_and_v",
    "importance_corrected_td_errors",
    "lambda_returns",
    "n_step_bootstrapped_returns",
    "n_step_returns_from_rollout",
    "q_lambda_from_rollout",
    "truncated_generalized_advantage_estimation",
]


# --------------------------------------------------------------------------------------------
# Private helpers.
# --------------------------------------------------------------------------------------------


def _check_flag_dtype(fn: str, name: str, value: Any) -> None:
    """Episode flags may be bool or float (0/1)."""
    dtype = jnp.result_type(value)
    if not (jnp.issubdtype(dtype, jnp.bool_) or jnp.issubdtype(dtype, jnp.floating)):
        raise ArgumentError(f"{fn}: `{name}` must be bool or float (0/1), got dtype {dtype}.")


def _scalar_or_steps(x: Numeric, dtype: Any) -> tuple[Array | None, Array | None]:
    """Splits a scalar-or-[T] parameter into `(per_step, constant)`, one of them None.

    A [T] vector rides along in the scan's inputs; a scalar is closed over by the loop body, so
    no [T] copy of it is made (each scanned input costs one transposing copy under vmap).
    """
    x = jnp.asarray(x, dtype)
    return (x, None) if x.ndim else (None, x)


def _reverse_scan(step: Any, last: Array, xs: Any) -> Array:
    """Runs `carry = step(carry, xs[t])` for t = T-1 down to 0 from `last`; returns each carry.

    Every return and advantage in this module is a first-order backward recursion of this kind.
    The raw inputs are scanned and combined inside the loop body, where XLA fuses the arithmetic
    into the one kernel a step already needs; combining them beforehand would add passes over
    [T] arrays (measured on CPU, vmapped B=1024, T=128).
    """

    def body(carry, x):
        carry = step(carry, x)
        return carry, carry

    _, out = jax.lax.scan(body, last, xs, reverse=True)
    return out


def _n_step_recursion(r: Array, d: Array, v: Array, lam: Array, n: int) -> Array:
    """rlax-style n-step returns: `G[t] = r[t] + d[t] ((1 - lam[t]) v[t] + lam[t] G[t + 1])`.

    The recursion from `t` runs for at most `n` steps and bootstraps on `v` at step
    `min(t + n - 1, T - 1)`. `n` is static; the loop has `min(n, T)` vectorised steps, since
    steps past the end of the trajectory leave the return unchanged.
    """
    seq_len = r.shape[0]
    steps = min(n, seq_len)
    pad = steps - 1
    # Bootstrap value at the end of each window, the last value standing in past the end.
    returns = jnp.concatenate([v[pad:], jnp.broadcast_to(v[-1], (pad,))])
    if pad:
        # Past the end, a step is the identity: reward 0, discount 1, lambda 1.
        r = jnp.concatenate([r, jnp.zeros((pad,), r.dtype)])
        d = jnp.concatenate([d, jnp.ones((pad,), d.dtype)])
        lam = jnp.concatenate([lam, jnp.ones((pad,), lam.dtype)])
        v = jnp.concatenate([v, jnp.zeros((pad,), v.dtype)])
    for i in reversed(range(steps)):
        window = slice(i, i + seq_len)
        lam_i = lam[window]
        returns = r[window] + d[window] * ((1.0 - lam_i) * v[window] + lam_i * returns)
    return returns


def _check_n(fn: str, n: Any) -> int:
    """`n` must be a static Python int >= 1."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise RLKitError(f"{fn}: `n` must be a static Python int >= 1, got {n!r}.")
    if n < 1:
        raise RLKitError(f"{fn}: `n` must be >= 1, got {n}.")
    return int(n)


# --------------------------------------------------------------------------------------------
# rlax-compatible returns.
# --------------------------------------------------------------------------------------------


def lambda_returns(
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    lambda_: Numeric = 1.0,
    stop_target_gradients: bool = False,
) -> Array:
    """Truncated lambda-returns of one trajectory, bootstrapped on its last value.

    Mixes the k-step bootstrapped returns of every length with weights set by `lambda_`,
    computed backwards from the end of the trajectory:

        G[t] = r_t[t] + discount_t[t] * ((1 - lambda[t]) * v_t[t] + lambda[t] * G[t + 1]),
        G[T] = v_t[T - 1].

    `v_t` is a state value under the policy for TD(lambda), `max_a q_t` for Peng's Q(lambda) and
    `q_t[a_t]` for Sarsa(lambda). A per-step `lambda_` gives off-policy variants, for instance
    `lambda[t] = min(1, rho[t])` with importance ratios `rho` as in V-trace.

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 12.1
    (http://incompleteideas.net/book/the-book-2nd.html).

    Args:
      r_t: rewards on the transitions out of states 0..T-1, shape [T].
      discount_t: discounts on those transitions, shape [T].
      v_t: values of the states they land in (states 1..T), shape [T].
      lambda_: mixing parameter, a scalar or a [T] vector aligned with `r_t`.
      stop_target_gradients: whether to stop gradients through the returns (default False,
        unlike the TD errors of `rlkit.value_learning`).

    Returns:
      The lambda-returns from states 0..T-1, shape [T].
    """
    check_args(
        "lambda_returns",
        {"r_t": r_t, "discount_t": discount_t, "v_t": v_t, "lambda_": lambda_},
        [1, 1, 1, {0, 1}],
        float,
        same_shape=["r_t", "discount_t", "v_t"],
    )
    if np.ndim(lambda_) == 1:
        check_shape("lambda_returns", "lambda_", lambda_, np.shape(r_t), "one per step")
    r_t, discount_t, v_t = jnp.asarray(r_t), jnp.asarray(discount_t), jnp.asarray(v_t)
    lam_steps, lam_const = _scalar_or_steps(lambda_, discount_t.dtype)

    def step(g_next, x):
        r, d, v, lam = x
        lam = lam_const if lam is None else lam
        return r + d * ((1.0 - lam) * v + lam * g_next)

    returns = _reverse_scan(step, v_t[-1], (r_t, discount_t, v_t, lam_steps))
    return maybe_stop_gradient(returns, stop_target_gradients)


def n_step_bootstrapped_returns(
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    n: int,
    lambda_t: Numeric = 1.0,
    stop_target_gradients: bool = False,
) -> Array:
    """n-step bootstrapped returns from every position of one trajectory.

    The lambda-return recursion run for at most `n` steps from each start `t`, bootstrapping on
    the value at step `min(t + n - 1, T - 1)`:

        G[t] = r_t[t] + discount_t[t] * ((1 - lambda[t]) * v_t[t] + lambda[t] * G[t + 1]),

    which for `lambda_t = 1` is the plain n-step return
    `r[t] + d[t] r[t+1] + ... + d[t] ... d[t+n-1] v_t[t+n-1]`. Windows that reach past the end
    of the trajectory are shortened to end at its last step.

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 7.1.

    Args:
      r_t: rewards on the transitions out of states 0..T-1, shape [T].
      discount_t: discounts on those transitions, shape [T].
      v_t: values of the states they land in, shape [T].
      n: number of steps to accumulate before bootstrapping; a static Python int >= 1.
      lambda_t: mixing parameter, a scalar or a [T] vector aligned with `r_t`.
      stop_target_gradients: whether to stop gradients through the returns (default False).

    Returns:
      The n-step returns from states 0..T-1, shape [T].
    """
    fn = "n_step_bootstrapped_returns"
    check_args(
        fn,
        {"r_t": r_t, "discount_t": discount_t, "v_t": v_t, "lambda_t": lambda_t},
        [1, 1, 1, {0, 1}],
        float,
        same_shape=["r_t", "discount_t", "v_t"],
    )
    n = _check_n(fn, n)
    if np.ndim(lambda_t) == 1:
        check_shape(fn, "lambda_t", lambda_t, np.shape(r_t), "one per step")
    r_t, discount_t, v_t = jnp.asarray(r_t), jnp.asarray(discount_t), jnp.asarray(v_t)
    returns = _n_step_recursion(r_t, discount_t, v_t, as_vector(lambda_t, discount_t), n)
    return maybe_stop_gradient(returns, stop_target_gradients)


def discounted_returns(
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    stop_target_gradients: bool = False,
) -> Array:
    """Discounted returns of one trajectory, bootstrapped on its last value.

        G[t] = r_t[t] + discount_t[t] * G[t + 1],    G[T] = v_t[-1] (or the scalar v_t).

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 3.3.

    Args:
      r_t: rewards on the transitions out of states 0..T-1, shape [T].
      discount_t: discounts on those transitions, shape [T].
      v_t: the bootstrap value, a scalar or a [T] vector of which only the last entry is used.
      stop_target_gradients: whether to stop gradients through the returns (default False).

    Returns:
      The discounted returns from states 0..T-1, shape [T].
    """
    check_args(
        "discounted_returns",
        {"r_t": r_t, "discount_t": discount_t, "v_t": v_t},
        [1, 1, {0, 1}],
        float,
        same_shape=["r_t", "discount_t"],
    )
    if np.ndim(v_t) == 1:
        check_shape("discounted_returns", "v_t", v_t, np.shape(r_t), "one per step")
    r_t, discount_t, v_t = jnp.asarray(r_t), jnp.asarray(discount_t), jnp.asarray(v_t)
    bootstrap = v_t[-1] if v_t.ndim else v_t

    def step(g_next, x):
        r, d = x
        return r + d * g_next

    returns = _reverse_scan(step, bootstrap.astype(r_t.dtype), (r_t, discount_t))
    return maybe_stop_gradient(returns, stop_target_gradients)


def truncated_generalized_advantage_estimation(
    r_t: Array,
    discount_t: Array,
    lambda_: Numeric,
    values: Array,
    stop_target_gradients: bool = False,
) -> Array:
    """Generalised advantage estimates over one trajectory of T steps.

        delta[t] = r_t[t] + discount_t[t] * values[t + 1] - values[t],
        A[t] = delta[t] + discount_t[t] * lambda[t] * A[t + 1],    A[T] = 0.

    `values` has T + 1 entries: the states 0..T-1 and the bootstrap state T. With a zero
    discount on a terminal transition the trace is cut there; a truncated episode inside the
    trajectory cannot be expressed here (`values[t + 1]` would be the next episode's first
    state), see `gae_from_rollout` for that.

    See "High-Dimensional Continuous Control Using Generalized Advantage Estimation",
    Schulman et al. (https://arxiv.org/abs/1506.02438), and "Proximal Policy Optimization
    Algorithms", Schulman et al. (https://arxiv.org/abs/1707.06347).

    Args:
      r_t: rewards on the transitions out of states 0..T-1, shape [T].
      discount_t: discounts on those transitions, shape [T].
      lambda_: mixing parameter, a scalar or a [T] vector aligned with `r_t`.
      values: state values of states 0..T, shape [T + 1].
      stop_target_gradients: whether to stop gradients through the advantages (default False).

    Returns:
      The advantages of states 0..T-1, shape [T].
    """
    fn = "truncated_generalized_advantage_estimation"
    check_args(
        fn,
        {"r_t": r_t, "discount_t": discount_t, "lambda_": lambda_, "values": values},
        [1, 1, {0, 1}, 1],
        float,
        same_shape=["r_t", "discount_t"],
    )
    seq_len = np.shape(r_t)[0]
    check_shape(fn, "values", values, (seq_len + 1,), "T + 1: states 0..T")
    if np.ndim(lambda_) == 1:
        check_shape(fn, "lambda_", lambda_, (seq_len,), "one per step")
    r_t, discount_t, values = jnp.asarray(r_t), jnp.asarray(discount_t), jnp.asarray(values)
    delta = r_t + discount_t * values[1:] - values[:-1]
    lam_steps, lam_const = _scalar_or_steps(lambda_, discount_t.dtype)

    def step(adv_next, x):
        delta, d, lam = x
        lam = lam_const if lam is None else lam
        return delta + d * lam * adv_next

    advantages = _reverse_scan(step, jnp.zeros((), delta.dtype), (delta, discount_t, lam_steps))
    return maybe_stop_gradient(advantages, stop_target_gradients)


def importance_corrected_td_errors(
    r_t: Array,
    discount_t: Array,
    rho_tm1: Array,
    lambda_: Numeric,
    values: Array,
    stop_target_gradients: bool = False,
) -> Array:
    """Multistep TD errors with per-decision importance sampling, over one trajectory.

    With `delta[t] = r_t[t] + discount_t[t] * values[t + 1] - values[t]` the one-step errors
    and `rho_tm1[t] = pi(a_t | s_t) / mu(a_t | s_t)`:

        E[t] = delta[t] + discount_t[t] * lambda[t] * rho_tm1[t + 1] * E[t + 1],  E[T] = 0,
        error[t] = rho_tm1[t] * E[t].

    This equals `rho_tm1[t] * (G[t] - values[t])` with G the lambda-return whose lambda at
    step t is `lambda[t] * rho_tm1[t + 1]`; with all ratios 1 it is GAE. See "A new Q(lambda)
    with interim forward view and Monte Carlo equivalence" by Sutton et al. (2014,
    http://proceedings.mlr.press/v32/sutton14.html).

    Args:
      r_t: rewards on the transitions out of states 0..T-1, shape [T].
      discount_t: discounts on those transitions, shape [T].
      rho_tm1: importance ratios of the actions taken in states 0..T-1, shape [T].
      lambda_: mixing parameter, a scalar or a [T] vector aligned with `r_t`.
      values: state values of states 0..T under pi, shape [T + 1].
      stop_target_gradients: whether the gradient flows only through `-values[t]` (as for a
        TD error against a fixed target); default False, as in rlax.

    Returns:
      The importance-corrected TD errors of states 0..T-1, shape [T].
    """
    fn = "importance_corrected_td_errors"
    check_args(
        fn,
        {"r_t": r_t, "discount_t": discount_t, "rho_tm1": rho_tm1, "values": values},
        1,
        float,
        same_shape=["r_t", "discount_t", "rho_tm1"],
    )
    seq_len = np.shape(r_t)[0]
    check_shape(fn, "values", values, (seq_len + 1,), "T + 1: states 0..T")
    check_args(fn, {"lambda_": lambda_}, {0, 1})
    if np.ndim(lambda_) == 1:
        check_shape(fn, "lambda_", lambda_, (seq_len,), "one per step")
    r_t, discount_t = jnp.asarray(r_t), jnp.asarray(discount_t)
    rho_tm1, values = jnp.asarray(rho_tm1), jnp.asarray(values)
    v_tm1 = values[:-1]
    delta = r_t + discount_t * values[1:] - v_tm1
    # The ratio of the next step; the last one multiplies E[T] = 0, so its value is unused.
    rho_next = jnp.concatenate([rho_tm1[1:], jnp.ones((1,), rho_tm1.dtype)])
    trace = discount_t * rho_next * as_vector(lambda_, discount_t)

    def step(acc_next, x):
        delta, c = x
        return delta + c * acc_next

    errors = rho_tm1 * _reverse_scan(step, jnp.zeros((), delta.dtype), (delta, trace))
    if isinstance(stop_target_gradients, bool) and not stop_target_gradients:
        return errors
    return maybe_stop_gradient(errors + v_tm1, stop_target_gradients) - v_tm1


def general_off_policy_returns_from_action_values(
    q_t: Array,
    a_t: Array,
    r_t: Array,
    discount_t: Array,
    c_t: Array,
    pi_t: Array,
    stop_target_gradients: bool = False,
) -> Array:
    """Off-policy returns from action values, for a choice of trace coefficients `c_t`.

    With `v[t] = sum_a pi_t[t, a] q_t[t, a]` the expected value under the target policy:

        G[T-1] = r_t[T-1] + discount_t[T-1] * v[T-1],
        G[t] = r_t[t] + discount_t[t] * (v[t] - c_t[t] q_t[t, a_t[t]] + c_t[t] G[t + 1]).

    `c_t = pi/mu` gives importance sampling, `c_t = lambda` Harutyunyan et al.'s Q(lambda),
    `c_t = pi(a_t)` tree backup and `c_t = lambda min(1, pi/mu)` Retrace. The Q-value and trace
    of the last step are not used.

    See "Safe and Efficient Off-Policy Reinforcement Learning", Munos et al.
    (https://arxiv.org/abs/1606.02647).

    Args:
      q_t: action values of states 1..K, shape [K, A].
      a_t: actions taken by the behaviour policy in those states, int, shape [K].
      r_t: rewards on the transitions out of states 0..K-1, shape [K].
      discount_t: discounts on those transitions, shape [K].
      c_t: trace coefficients at states 1..K, shape [K].
      pi_t: target-policy probabilities at states 1..K, shape [K, A].
      stop_target_gradients: whether to stop gradients through the returns (default False).

    Returns:
      The off-policy returns from states 0..K-1, shape [K].
    """
    fn = "general_off_policy_returns_from_action_values"
    check_args(
        fn,
        {"q_t": q_t, "a_t": a_t, "r_t": r_t, "discount_t": discount_t, "c_t": c_t, "pi_t": pi_t},
        [2, 1, 1, 1, 1, 2],
        [float, int, float, float, float, float],
        same_shape=["a_t", "r_t", "discount_t", "c_t"],
    )
    check_args(fn, {"q_t": q_t, "pi_t": pi_t}, 2, same_shape=["q_t", "pi_t"])
    check_shape(fn, "q_t", q_t, (np.shape(r_t)[0], np.shape(q_t)[1]), "[K, A]")
    q_t, pi_t, c_t = jnp.asarray(q_t), jnp.asarray(pi_t), jnp.asarray(c_t)
    expected_q_t = jnp.sum(pi_t * q_t, axis=-1)
    q_a_t = batched_index(q_t, jnp.asarray(a_t))
    return general_off_policy_returns_from_q_and_v(
        q_a_t[:-1], expected_q_t, r_t, discount_t, c_t[:-1], stop_target_gradients
    )


def general_off_policy_returns_from_q_and_v(
    q_t: Array,
    v_t: Array,
    r_t: Array,
    discount_t: Array,
    c_t: Array,
    stop_target_gradients: bool = False,
) -> Array:
    """Off-policy returns from the values of the taken actions and of the states.

        G[K-1] = r_t[K-1] + discount_t[K-1] * v_t[K-1],
        G[t] = r_t[t] + discount_t[t] * (v_t[t] - c_t[t] q_t[t] + c_t[t] G[t + 1]).

    See `general_off_policy_returns_from_action_values` for the choices of `c_t`, and
    "Safe and Efficient Off-Policy Reinforcement Learning", Munos et al.
    (https://arxiv.org/abs/1606.02647).

    Args:
      q_t: target-policy values of the actions taken in states 1..K-1, shape [K - 1].
      v_t: target-policy values of states 1..K, shape [K].
      r_t: rewards on the transitions out of states 0..K-1, shape [K].
      discount_t: discounts on those transitions, shape [K].
      c_t: trace coefficients at states 1..K-1, shape [K - 1].
      stop_target_gradients: whether to stop gradients through the returns (default False).

    Returns:
      The off-policy returns from states 0..K-1, shape [K].
    """
    fn = "general_off_policy_returns_from_q_and_v"
    check_args(
        fn,
        {"q_t": q_t, "v_t": v_t, "r_t": r_t, "discount_t": discount_t, "c_t": c_t},
        1,
        float,
        same_shape=["v_t", "r_t", "discount_t"],
    )
    seq_len = np.shape(r_t)[0]
    check_shape(fn, "q_t", q_t, (seq_len - 1,), "K - 1: the last step's is unused")
    check_shape(fn, "c_t", c_t, (seq_len - 1,), "K - 1: the last step's is unused")
    q_t, v_t, r_t = jnp.asarray(q_t), jnp.asarray(v_t), jnp.asarray(r_t)
    discount_t, c_t = jnp.asarray(discount_t), jnp.asarray(c_t)
    last = r_t[-1] + discount_t[-1] * v_t[-1]

    def step(g_next, x):
        r, d, v, c, q = x
        return r + d * (v - c * q + c * g_next)

    returns = _reverse_scan(step, last, (r_t[:-1], discount_t[:-1], v_t[:-1], c_t, q_t))
    returns = jnp.concatenate([returns, last[None]])
    return maybe_stop_gradient(returns, stop_target_gradients)


# --------------------------------------------------------------------------------------------
# Gymnasium-style rollouts (not in rlax).
# --------------------------------------------------------------------------------------------


def _check_rollout_args(fn: str, rewards, next_values, terminated, truncated, gamma, extra):
    """Shared checks of the rollout functions."""
    args = {
        "rewards": rewards,
        "next_values": next_values,
        "terminated": terminated,
        "truncated": truncated,
        "gamma": gamma,
        **extra,
    }
    check_args(fn, args, [1, 1, 1, 1, {0, 1}] + [{0, 1}] * len(extra))
    check_args(fn, {"rewards": rewards, "next_values": next_values}, 1, float)
    _check_flag_dtype(fn, "terminated", terminated)
    _check_flag_dtype(fn, "truncated", truncated)
    seq_len = np.shape(rewards)[0]
    for name, value in args.items():
        if name in ("gamma", "lambda_") and np.ndim(value) == 0:
            check_args(fn, {name: value}, 0, float)
        else:
            check_shape(fn, name, value, (seq_len,), "one per step, like `rewards`")
            if name in ("gamma", "lambda_", "values"):
                check_args(fn, {name: value}, 1, float)


def _rollout_terms(rewards, next_values, terminated, truncated, gamma):
    """Rewards, per-step gamma, bootstrap values (0 where terminated) and episode-end flags."""
    rewards = jnp.asarray(rewards)
    term = jnp.asarray(terminated).astype(bool)
    done = term | jnp.asarray(truncated).astype(bool)
    gamma_t = as_vector(gamma, rewards)
    # `where`, not a multiply, so a stray inf/nan in a terminated step's next value is dropped.
    bootstrap = jnp.where(term, jnp.zeros((), rewards.dtype), jnp.asarray(next_values))
    return rewards, gamma_t, bootstrap, done


def gae_from_rollout(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    gamma: Numeric,
    lambda_: Numeric,
    *,
    stop_target_gradients: bool = False,
) -> tuple[Array, Array]:
    """GAE advantages and value targets of one environment's time-major rollout.

    Unlike `truncated_generalized_advantage_estimation`, which bootstraps every step on the
    next entry of one `values` sequence, this takes the value of each step's true next
    observation, so a time-limit truncation inside the rollout bootstraps correctly:

        delta[t] = rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t],
        A[t] = delta[t] + gamma * lambda * (1 - done[t]) * A[t + 1],    A[T] = 0,
        done[t] = terminated[t] or truncated[t],
        returns[t] = A[t] + values[t].

    A terminated step does not bootstrap, a truncated one bootstraps on the value of the
    episode's final observation, and neither carries the trace into the next episode. The last
    step of the rollout bootstraps on `next_values[T - 1]` unless it terminated.

    How a rollout maps onto the arguments. Step `t` of one environment, in the Gymnasium /
    rlkit autoreset convention where the step that ends an episode resets at once and reports
    the true last observation in `info["final_obs"]` (rlkit's envs, and Gymnasium's
    `AutoresetMode.SAME_STEP`):

        obs[t]                  observation the policy acted on
        action[t]               action taken in it
        next_obs[t], reward[t], terminated[t], truncated[t], info[t] = env.step(action[t])
        final_obs[t]            = info[t]["final_obs"] if terminated[t] or truncated[t]
                                  else next_obs[t]

    then `rewards = reward`, `terminated = terminated`, `truncated = truncated`,
    `values[t] = V(obs[t])` and `next_values[t] = V(final_obs[t])`. When step t ends an
    episode, `next_obs[t]` (= `obs[t + 1]`) is the reset observation of the next episode and
    must not be the bootstrap; `final_obs[t]` is. Only a truncated step's `next_values` is used
    at a boundary, but pass a finite value everywhere; a terminated step's entry is ignored.
    For a step that did not end, `next_values[t]` equals `values[t + 1]`, and for the last step
    of the rollout it is the value of the observation the next rollout starts from.

    Gymnasium's default `AutoresetMode.NEXT_STEP` instead returns the final observation as
    `next_obs[t]` (so `next_values[t] = V(next_obs[t])` needs no `final_obs`) and spends the
    step after an episode end on a dummy transition (reward 0, both flags False, action
    ignored). Feed that step with any finite values and mask its output out of the loss: it
    does not leak into other steps, because the trace was cut at the step before it.

    See "High-Dimensional Continuous Control Using Generalized Advantage Estimation",
    Schulman et al. (https://arxiv.org/abs/1506.02438), and "Time Limits in Reinforcement
    Learning", Pardo et al. (https://arxiv.org/abs/1712.00378) for bootstrapping at
    truncations.

    Args:
      rewards: reward of each step, float, shape [T].
      values: `V(obs[t])`, float, shape [T].
      next_values: `V(final_obs[t])`, the value of the true next observation of each step,
        float, shape [T].
      terminated: whether step t ended the episode in a terminal state, bool or float 0/1, [T].
      truncated: whether step t was cut by a time limit or other outside cause, bool or float
        0/1, [T]. A step that is both counts as terminated.
      gamma: discount factor, a float scalar or [T] vector.
      lambda_: GAE mixing parameter, a float scalar or [T] vector.
      stop_target_gradients: keyword only; whether to stop gradients through both outputs
        (default False, as for every return in this module).

    Returns:
      `(advantages, returns)`, each of shape [T], with `returns = advantages + values`.
    """
    fn = "gae_from_rollout"
    _check_rollout_args(
        fn,
        rewards,
        next_values,
        terminated,
        truncated,
        gamma,
        {"values": values, "lambda_": lambda_},
    )
    rewards, gamma_t, bootstrap, done = _rollout_terms(
        rewards, next_values, terminated, truncated, gamma
    )
    values = jnp.asarray(values)
    delta = rewards + gamma_t * bootstrap - values
    if np.ndim(gamma) == 0 and np.ndim(lambda_) == 0:
        trace_steps, trace_const = None, jnp.asarray(gamma * lambda_, rewards.dtype)
    else:
        trace_steps, trace_const = gamma_t * as_vector(lambda_, rewards), None

    def step(adv_next, x):
        delta, done, trace = x
        trace = trace_const if trace is None else trace
        # `where` so that nothing, not even a nan, crosses an episode boundary.
        return delta + jnp.where(done, jnp.zeros((), delta.dtype), trace * adv_next)

    advantages = _reverse_scan(step, jnp.zeros((), delta.dtype), (delta, done, trace_steps))
    returns = advantages + values
    return maybe_stop_gradient((advantages, returns), stop_target_gradients)


def n_step_returns_from_rollout(
    rewards: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    gamma: Numeric,
    n: int,
    *,
    stop_target_gradients: bool = False,
) -> Array:
    """n-step returns of one environment's time-major rollout, stopped at episode ends.

    From each step t the window runs over steps t..j, where j is the first of
    `t + n - 1`, `T - 1` and the first step at or after t that ended its episode, and
    bootstraps on `next_values[j]` unless step j terminated:

        G[t] = sum_{k=t..j} gamma^(k-t) rewards[k]
               + gamma^(j-t+1) * (1 - terminated[j]) * next_values[j].

    This equals `n_step_bootstrapped_returns(rewards, gamma * (1 - terminated), next_values, n,
    lambda_t=1 - done)` with `done = terminated or truncated`. The arguments map onto a
    Gymnasium or rlkit autoreset rollout exactly as described in `gae_from_rollout`:
    `next_values[t] = V(info["final_obs"])` on a step that ended an episode, else
    `V(next_obs[t])`.

    See "Reinforcement Learning: An Introduction", Sutton and Barto, section 7.1, and
    "Time Limits in Reinforcement Learning", Pardo et al. (https://arxiv.org/abs/1712.00378).

    Args:
      rewards: reward of each step, float, shape [T].
      next_values: `V(final_obs[t])`, the value of the true next observation of each step,
        float, shape [T]. For Q-learning targets pass e.g. `max_a Q_target(final_obs[t], a)`.
      terminated: whether step t ended the episode in a terminal state, bool or float 0/1, [T].
      truncated: whether step t was cut by a time limit, bool or float 0/1, [T].
      gamma: discount factor, a float scalar or [T] vector.
      n: the most rewards to accumulate before bootstrapping; a static Python int >= 1.
      stop_target_gradients: keyword only; whether to stop gradients through the returns
        (default False).

    Returns:
      The n-step returns from each step, shape [T].
    """
    fn = "n_step_returns_from_rollout"
    _check_rollout_args(fn, rewards, next_values, terminated, truncated, gamma, {})
    n = _check_n(fn, n)
    rewards, gamma_t, bootstrap, done = _rollout_terms(
        rewards, next_values, terminated, truncated, gamma
    )
    seq_len = rewards.shape[0]
    steps = min(n, seq_len)
    pad = steps - 1
    # The window from t ends at step t + steps - 1, or at the rollout's last step.
    returns = jnp.concatenate([bootstrap[pad:], jnp.broadcast_to(bootstrap[-1], (pad,))])
    if pad:
        # Past the end of the rollout a step changes nothing: reward 0, gamma 1, not done.
        rewards = jnp.concatenate([rewards, jnp.zeros((pad,), rewards.dtype)])
        gamma_t = jnp.concatenate([gamma_t, jnp.ones((pad,), gamma_t.dtype)])
        bootstrap = jnp.concatenate([bootstrap, jnp.zeros((pad,), bootstrap.dtype)])
        done = jnp.concatenate([done, jnp.zeros((pad,), bool)])
    for i in reversed(range(steps)):
        window = slice(i, i + seq_len)
        # A step that ended its episode bootstraps on its own next value and goes no further.
        returns = rewards[window] + gamma_t[window] * jnp.where(
            done[window], bootstrap[window], returns
        )
    return maybe_stop_gradient(returns, stop_target_gradients)


def q_lambda_from_rollout(
    rewards: Array,
    next_q: Array,
    terminated: Array,
    truncated: Array,
    gamma: Numeric,
    lambda_: Numeric,
    *,
    stop_target_gradients: bool = False,
) -> Array:
    """Peng's Q(lambda) returns of one environment's time-major rollout, stopped at episode ends.

    The lambda-return of the greedy values `v[t] = max_a next_q[t, a]` of each step's true next
    observation, as PQN regresses `Q(obs[t], action[t])` on it:

        G[t] = rewards[t] + gamma * (1 - terminated[t]) * B[t],
        B[t] = v[t]                                     if done[t] or t = T - 1,
        B[t] = (1 - lambda) * v[t] + lambda * G[t + 1]  otherwise,
        done[t] = terminated[t] or truncated[t].

    A terminated step does not bootstrap, a truncated one bootstraps on the greedy value of the
    episode's final observation, and no return crosses an episode boundary. The last step of the
    rollout bootstraps on `v[T - 1]` unless it terminated. With `lambda_ = 0` this is the
    one-step Q-learning target; with `lambda_ = 1`, the discounted return to the episode's or
    the rollout's end. Where no episode ends inside the rollout it equals
    `rlkit.lambda_returns(rewards, gamma * (1 - terminated), v, lambda_)`.

    The arguments map onto a Gymnasium or rlkit autoreset rollout exactly as described in
    `gae_from_rollout`: `next_q[t] = Q(info["final_obs"])` on a step that ended an episode, else
    `Q(next_obs[t])` (which, for a step that did not end, is the Q of `obs[t + 1]`). Only a
    truncated step's `next_q` is used at a boundary; a terminated step's entry is ignored.

    See "Incremental Multi-Step Q-Learning", Peng and Williams (1996), "Simplifying Deep
    Temporal Difference Learning", Gallici et al. (https://arxiv.org/abs/2407.04811), and "Time
    Limits in Reinforcement Learning", Pardo et al. (https://arxiv.org/abs/1712.00378).

    Args:
      rewards: reward of each step, float, shape [T].
      next_q: action values of the true next observation of each step, float, shape [T, A].
      terminated: whether step t ended the episode in a terminal state, bool or float 0/1, [T].
      truncated: whether step t was cut by a time limit or other outside cause, bool or float
        0/1, [T]. A step that is both counts as terminated.
      gamma: discount factor, a float scalar or [T] vector.
      lambda_: mixing parameter in [0, 1], a float scalar or [T] vector.
      stop_target_gradients: keyword only; whether to stop gradients through the returns
        (default False, as for every return in this module).

    Returns:
      The Q(lambda) returns from each step, shape [T].
    """
    fn = "q_lambda_from_rollout"
    check_args(fn, {"rewards": rewards, "next_q": next_q}, [1, 2], float)
    seq_len, num_actions = np.shape(rewards)[0], np.shape(next_q)[1]
    check_shape(fn, "next_q", next_q, (seq_len, num_actions), "[T, A], one row per step")
    next_values = jnp.max(jnp.asarray(next_q), axis=-1)
    _check_rollout_args(
        fn, rewards, next_values, terminated, truncated, gamma, {"lambda_": lambda_}
    )
    rewards, gamma_t, bootstrap, done = _rollout_terms(
        rewards, next_values, terminated, truncated, gamma
    )
    lam_steps, lam_const = _scalar_or_steps(lambda_, rewards.dtype)
    # The last step bootstraps fully: treat it as an episode end for the recursion.
    cut = done.at[-1].set(True)

    def step(g_next, x):
        r, g, v, c, lam = x
        lam = lam_const if lam is None else lam
        # `where` so that nothing, not even a nan, crosses an episode boundary.
        mixed = jnp.where(c, v, (1.0 - lam) * v + lam * g_next)
        return r + g * mixed

    returns = _reverse_scan(
        step, jnp.zeros((), rewards.dtype), (rewards, gamma_t, bootstrap, cut, lam_steps)
    )
    return maybe_stop_gradient(returns, stop_target_gradients)
