"""Element-wise value transforms and returns under a non-linear Bellman operator.

Part one: element-wise squashing functions and their inverses (`signed_hyperbolic` and
`signed_parabolic`, `signed_logp1` and `signed_expm1`, `sigmoid` and `logit`, `power`), and the
2-hot encoding of a scalar on a fixed support (`transform_to_2hot`, `transform_from_2hot`).

Part two: a `TxPair(apply, apply_inv)` bundles a transform `h` with its inverse. A transformed
return is built by mapping the bootstrap values back to the raw scale with `h^-1`, computing
the ordinary return there, and squashing the result with `h` (van Hasselt et al., 2019,
"General non-linear Bellman equations", https://arxiv.org/abs/1907.03687; Pohlen et al., 2018,
"Observe and Look Further", https://arxiv.org/abs/1805.11593):

    G_t = h( r_t + discount_t * h^-1(v_t) )            (one step; the multistep versions
                                                       apply the same idea to lambda / n-step
                                                       / off-policy returns)

Names and argument order follow rlax 0.1.9 (`rlax.signed_hyperbolic`, `rlax.TxPair`,
`rlax.transformed_retrace`, ...). Differences from rlax, all deliberate:

* `transform_to_2hot` splits mass exactly, so `transform_from_2hot(transform_to_2hot(x)) == x`
  for x inside the support; rlax adds 1e-5 to a denominator, which biases the split by about
  1e-5 / bin_width.
* `transform_from_2hot` reduces over the last axis for any leading shape; rlax returns shape
  [1] for a single [num_bins] vector.
* The transformed return functions take their value argument by name or position alike;
  rlax's decorator only transforms it when passed positionally.

Stop-gradient defaults follow rlax: False for the returns, True for the TD errors
(`transformed_q_lambda`, `transformed_retrace`, `transformed_n_step_q_learning`).
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from rlkit import base, multistep
from rlkit.errors import check

__all__ = [
    "DISCOUNT_TRANSFORM_PAIR",
    "HYPERBOLIC_SIN_PAIR",
    "IDENTITY_PAIR",
    "SIGNED_HYPERBOLIC_PAIR",
    "SIGNED_LOGP1_PAIR",
    "TxPair",
    "compose_tx",
    "hyperbolic_arcsin",
    "hyperbolic_sin",
    "identity",
    "logit",
    "muzero_pair",
    "power",
    "sigmoid",
    "signed_expm1",
    "signed_hyperbolic",
    "signed_logp1",
    "signed_parabolic",
    "transform_from_2hot",
    "transform_from_2hot_nonlinear",
    "transform_to_2hot",
    "transform_to_2hot_nonlinear",
    "transformed_general_off_policy_returns_from_action_values",
    "transformed_lambda_returns",
    "transformed_n_step_q_learning",
    "transformed_n_step_returns",
    "transformed_q_lambda",
    "transformed_retrace",
    "twohot_pair",
    "unbiased_transform_pair",
]

Array = chex.Array
Numeric = chex.Numeric


# ---------------------------------------------------------------------------------------------
# Element-wise transforms.
# ---------------------------------------------------------------------------------------------


def identity(x: Array) -> Array:
    """Returns `x` unchanged (float arrays only, as in rlax).

    Args:
      x: float array.

    Returns:
      `x`.
    """
    check("identity", chex.assert_type, {"x": x}, float)
    return x


def sigmoid(x: Numeric) -> Array:
    """Logistic sigmoid `1 / (1 + exp(-x))`; the inverse of `logit`.

    Args:
      x: float array.

    Returns:
      Array in (0, 1) shaped like `x`.
    """
    check("sigmoid", chex.assert_type, {"x": x}, float)
    return jax.nn.sigmoid(x)


def logit(x: Array) -> Array:
    """Log-odds `log(x / (1 - x))`; the inverse of `sigmoid`.

    Args:
      x: float array with entries in (0, 1).

    Returns:
      Array shaped like `x`.
    """
    check("logit", chex.assert_type, {"x": x}, float)
    return jnp.log(x) - jnp.log1p(-x)


def signed_logp1(x: Array) -> Array:
    """Signed log transform `sign(x) * log(1 + |x|)`; the inverse of `signed_expm1`.

    Args:
      x: float array.

    Returns:
      Array shaped like `x`.
    """
    check("signed_logp1", chex.assert_type, {"x": x}, float)
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def signed_expm1(x: Array) -> Array:
    """Signed exponential `sign(x) * (exp(|x|) - 1)`; the inverse of `signed_logp1`.

    Args:
      x: float array.

    Returns:
      Array shaped like `x`.
    """
    check("signed_expm1", chex.assert_type, {"x": x}, float)
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def signed_hyperbolic(x: Array, eps: float = 1e-3) -> Array:
    """The R2D2 / Ape-X DQfD value squashing `h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps * x`.

    See "Observe and Look Further: Achieving Consistent Performance on Atari" by Pohlen et al.
    (https://arxiv.org/abs/1805.11593). The inverse is `signed_parabolic` with the same `eps`.

    Args:
      x: float array.
      eps: slope of the linear term that keeps `h^-1` Lipschitz.

    Returns:
      Array shaped like `x`.
    """
    check("signed_hyperbolic", chex.assert_type, {"x": x}, float)
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + eps * x


def signed_parabolic(x: Array, eps: float = 1e-3) -> Array:
    """Inverse of `signed_hyperbolic`.

    `h^-1(x) = sign(x) * (((sqrt(1 + 4 eps (|x| + 1 + eps)) - 1) / (2 eps))^2 - 1)`.

    The inner ratio is evaluated as `2 (|x| + 1 + eps) / (sqrt(1 + 4 eps (|x| + 1 + eps)) + 1)`,
    which is the same number without the cancellation of `sqrt(1 + small) - 1` (rlax evaluates
    the first form and loses about 1e-4 relative accuracy in float32).

    Args:
      x: float array.
      eps: the same `eps` that was given to `signed_hyperbolic`.

    Returns:
      Array shaped like `x`.
    """
    check("signed_parabolic", chex.assert_type, {"x": x}, float)
    shifted = jnp.abs(x) + 1.0 + eps
    root = 2.0 * shifted / (jnp.sqrt(1.0 + 4.0 * eps * shifted) + 1.0)
    return jnp.sign(x) * (jnp.square(root) - 1.0)


def hyperbolic_sin(x: Array) -> Array:
    """`sinh(x)`; the inverse of `hyperbolic_arcsin`.

    Args:
      x: float array.

    Returns:
      Array shaped like `x`.
    """
    check("hyperbolic_sin", chex.assert_type, {"x": x}, float)
    return jnp.sinh(x)


def hyperbolic_arcsin(x: Array) -> Array:
    """`arcsinh(x) = log(x + sqrt(x^2 + 1))`, a log-like squashing defined on all reals.

    Args:
      x: float array.

    Returns:
      Array shaped like `x`.
    """
    check("hyperbolic_arcsin", chex.assert_type, {"x": x}, float)
    return jnp.arcsinh(x)


def power(x: Array, p: float) -> Array:
    """Signed power transform `sign(x) * ((|x| / sqrt(p) + 1)^p - 1) / sqrt(p)`.

    `power(power(x, p), 1 / p) == x`, so `p < 1` squashes and `1 / p` expands.

    Args:
      x: float array.
      p: positive exponent.

    Returns:
      Array shaped like `x`.
    """
    check("power", chex.assert_type, {"x": x}, float)
    q = jnp.sqrt(p)
    return jnp.sign(x) * (jnp.power(jnp.abs(x) / q + 1.0, p) - 1.0) / q


def transform_to_2hot(scalar: Array, min_value: float, max_value: float, num_bins: int) -> Array:
    """Encodes scalars as 2-hot vectors over `num_bins` evenly spaced support points.

    The support is `linspace(min_value, max_value, num_bins)`. A scalar (clipped to the support)
    between neighbouring points `z_k <= x <= z_{k+1}` puts mass `(z_{k+1} - x) / (z_{k+1} - z_k)`
    on `z_k` and the rest on `z_{k+1}`, so the expectation of the encoding is `x` exactly. Used
    by MuZero (Schrittwieser et al., 2019, https://arxiv.org/abs/1911.08265).

    Args:
      scalar: float array of any shape [...].
      min_value: lowest support point.
      max_value: highest support point (> min_value).
      num_bins: number of support points (>= 2).

    Returns:
      Array [..., num_bins] of non-negative weights summing to 1.
    """
    check("transform_to_2hot", chex.assert_type, {"scalar": scalar}, float)
    width = (max_value - min_value) / (num_bins - 1)
    clipped = jnp.clip(scalar, min_value, max_value)
    position = (clipped - min_value) / width
    lower = jnp.clip(jnp.floor(position), 0, num_bins - 1)
    upper = jnp.clip(jnp.ceil(position), 0, num_bins - 1)
    frac_upper = jnp.where(upper > lower, position - lower, 1.0)
    frac_lower = 1.0 - frac_upper
    lower_hot = base.one_hot(lower.astype(jnp.int32), num_bins, dtype=scalar.dtype)
    upper_hot = base.one_hot(upper.astype(jnp.int32), num_bins, dtype=scalar.dtype)
    return lower_hot * jnp.expand_dims(frac_lower, -1) + upper_hot * jnp.expand_dims(frac_upper, -1)


def transform_from_2hot(probs: Array, min_value: float, max_value: float, num_bins: int) -> Array:
    """Decodes weights over the evenly spaced support to their expected value.

    `x = sum_k probs_k * z_k` with `z = linspace(min_value, max_value, num_bins)`.

    Args:
      probs: float array [..., num_bins] (any non-negative weights; usually a softmax).
      min_value: lowest support point.
      max_value: highest support point.
      num_bins: number of support points; must equal `probs.shape[-1]`.

    Returns:
      Array [...].
    """
    check("transform_from_2hot", chex.assert_type, {"probs": probs}, float)
    check("transform_from_2hot", chex.assert_axis_dimension, {"probs": probs}, -1, num_bins)
    support = jnp.linspace(min_value, max_value, num_bins).astype(probs.dtype)
    return jnp.tensordot(probs, support, axes=1)


def transform_to_2hot_nonlinear(scalar: Array, bins: Array) -> Array:
    """Encodes scalars as 2-hot vectors over an arbitrary increasing support `bins`.

    As `transform_to_2hot`, but the support points need not be evenly spaced: a scalar
    (clipped to [bins[0], bins[-1]]) with `bins[k] <= x <= bins[k+1]` puts mass
    `(bins[k+1] - x) / (bins[k+1] - bins[k])` on `bins[k]` and the rest on `bins[k+1]`.

    Args:
      scalar: float array of any shape [...].
      bins: increasing support points [num_bins] (num_bins >= 2).

    Returns:
      Array [..., num_bins] of non-negative weights summing to 1, with expectation `x`.
    """
    check("transform_to_2hot_nonlinear", chex.assert_rank, {"bins": bins}, 1)
    num_bins = bins.shape[0]
    clipped = jnp.clip(scalar, bins[0], bins[-1])
    upper = jnp.clip(jnp.searchsorted(bins, clipped, side="left"), 1, num_bins - 1)
    lower = upper - 1
    frac_lower = (bins[upper] - clipped) / (bins[upper] - bins[lower])
    dtype = jnp.result_type(clipped)
    lower_hot = base.one_hot(lower, num_bins, dtype=dtype)
    upper_hot = base.one_hot(upper, num_bins, dtype=dtype)
    return lower_hot * frac_lower[..., None] + upper_hot * (1.0 - frac_lower)[..., None]


def transform_from_2hot_nonlinear(probs: Array, bins: Array) -> Array:
    """Decodes weights over the support `bins` to their expected value `sum_k probs_k bins_k`.

    Args:
      probs: weights [..., num_bins].
      bins: support points [num_bins].

    Returns:
      Array [...].
    """
    check("transform_from_2hot_nonlinear", chex.assert_rank, {"bins": bins}, 1)
    check(
        "transform_from_2hot_nonlinear",
        chex.assert_axis_dimension,
        {"probs": probs},
        -1,
        bins.shape[0],
    )
    return jnp.tensordot(probs, bins.astype(jnp.result_type(probs)), axes=1)


# ---------------------------------------------------------------------------------------------
# Transform pairs.
# ---------------------------------------------------------------------------------------------


class TxPair(NamedTuple):
    """A value transform `apply` (h) with its inverse `apply_inv` (h^-1)."""

    apply: Callable[[Array], Array]
    apply_inv: Callable[[Array], Array]


def _discount_to_horizon(x: Array) -> Array:
    return -jnp.log1p(-x)


def _horizon_to_discount(x: Array) -> Array:
    return -jnp.expm1(-x)


IDENTITY_PAIR = TxPair(identity, identity)
SIGNED_LOGP1_PAIR = TxPair(signed_logp1, signed_expm1)
SIGNED_HYPERBOLIC_PAIR = TxPair(signed_hyperbolic, signed_parabolic)
HYPERBOLIC_SIN_PAIR = TxPair(hyperbolic_arcsin, hyperbolic_sin)
# Maps a discount in [0, 1) to `-log(1 - discount)` and back.
DISCOUNT_TRANSFORM_PAIR = TxPair(_discount_to_horizon, _horizon_to_discount)


def twohot_pair(min_value: float, max_value: float, num_bins: int) -> TxPair:
    """Builds the pair (scalar -> 2-hot vector, 2-hot vector -> scalar) for a fixed support.

    Args:
      min_value: lowest support point.
      max_value: highest support point.
      num_bins: number of evenly spaced support points.

    Returns:
      A `TxPair` of `transform_to_2hot` and `transform_from_2hot` with the support bound.
    """
    bounds = {"min_value": min_value, "max_value": max_value, "num_bins": num_bins}
    return TxPair(
        functools.partial(transform_to_2hot, **bounds),
        functools.partial(transform_from_2hot, **bounds),
    )


def compose_tx(*tx_list: TxPair) -> TxPair:
    """Chains transform pairs: `apply` runs them in order, `apply_inv` undoes them in reverse.

    For pairs `[f, g]`: `apply(x) = g(f(x))` and `apply_inv(y) = f^-1(g^-1(y))`.

    Args:
      *tx_list: the `TxPair`s, first applied first.

    Returns:
      The composed `TxPair`.
    """
    pairs = tuple(tx_list)

    def apply_all(x: Array) -> Array:
        for pair in pairs:
            x = pair.apply(x)
        return x

    def invert_all(x: Array) -> Array:
        for pair in reversed(pairs):
            x = pair.apply_inv(x)
        return x

    return TxPair(apply_all, invert_all)


def muzero_pair(min_value: float, max_value: float, num_bins: int, tx: TxPair) -> TxPair:
    """The MuZero value parametrisation: squash with `tx`, then 2-hot encode on a fixed support.

    See "Mastering Atari, Go, Chess and Shogi by Planning with a Learned Model" by Schrittwieser
    et al. (https://arxiv.org/abs/1911.08265), Appendix F.

    Args:
      min_value: lowest support point, in the squashed scale.
      max_value: highest support point, in the squashed scale.
      num_bins: number of support points.
      tx: squashing pair applied before the encoding (e.g. `SIGNED_HYPERBOLIC_PAIR`).

    Returns:
      `compose_tx(tx, twohot_pair(min_value, max_value, num_bins))`.
    """
    return compose_tx(tx, twohot_pair(min_value, max_value, num_bins))


def unbiased_transform_pair(
    min_value: float, max_value: float, num_bins: int, tx: TxPair
) -> TxPair:
    """A 2-hot value parametrisation whose non-linearity moves the bins, not the value.

    Like `muzero_pair`, but the scalar is 2-hot encoded directly on the support
    `bins = tx.apply_inv(linspace(min_value, max_value, num_bins))`, so that decoding (the
    expectation over the bins) is unbiased: `apply_inv(apply(x)) == x` for x inside the
    support, and the expected value of a predicted distribution is a value on the raw scale.

    Args:
      min_value: lowest support point in the transformed space.
      max_value: highest support point in the transformed space.
      num_bins: number of support points.
      tx: transform whose inverse places the bins (e.g. `SIGNED_HYPERBOLIC_PAIR`).

    Returns:
      A `TxPair` of `transform_to_2hot_nonlinear` and `transform_from_2hot_nonlinear` on those
      bins.
    """
    bins = tx.apply_inv(jnp.linspace(min_value, max_value, num_bins))
    return TxPair(
        functools.partial(transform_to_2hot_nonlinear, bins=bins),
        functools.partial(transform_from_2hot_nonlinear, bins=bins),
    )


# ---------------------------------------------------------------------------------------------
# Transformed returns and TD errors.
# ---------------------------------------------------------------------------------------------


def transformed_lambda_returns(
    tx_pair: TxPair,
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    lambda_: Numeric = 1.0,
    stop_target_gradients: bool = False,
) -> Array:
    """Lambda-returns under a value transform.

    See "General non-linear Bellman equations" by van Hasselt et al.
    (https://arxiv.org/abs/1907.03687). With `V = h^-1(v_t)`:

        G_t = h( r_t + discount_t * ((1 - lambda_t) V_t + lambda_t h^-1(G_{t+1})) )

    computed as `h(lambda_returns(r_t, discount_t, h^-1(v_t), lambda_))`.

    Args:
      tx_pair: the transform `h` and its inverse.
      r_t: rewards [T].
      discount_t: discounts [T].
      v_t: transformed bootstrap values [T].
      lambda_: mixing parameter, scalar or [T].
      stop_target_gradients: whether to stop gradients through the returns.

    Returns:
      Transformed lambda-returns [T].
    """
    returns = multistep.lambda_returns(
        r_t, discount_t, tx_pair.apply_inv(v_t), lambda_, stop_target_gradients
    )
    return tx_pair.apply(returns)


def transformed_n_step_returns(
    tx_pair: TxPair,
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    n: int,
    lambda_t: Numeric = 1.0,
    stop_target_gradients: bool = False,
) -> Array:
    """N-step bootstrapped returns under a value transform.

    See "Recurrent Experience Replay in Distributed Reinforcement Learning" by Kapturowski et al.
    (https://openreview.net/pdf?id=r1lyTjAqYX):

        G_t = h( sum_{k<n} (prod_{j<k} discount_{t+j}) r_{t+k}
                 + (prod_{j<n} discount_{t+j}) h^-1(v_{t+n-1}) )

    computed as `h(n_step_bootstrapped_returns(r_t, discount_t, h^-1(v_t), n, lambda_t))`.

    Args:
      tx_pair: the transform `h` and its inverse.
      r_t: rewards [T].
      discount_t: discounts [T].
      v_t: transformed bootstrap values [T].
      n: number of steps (static).
      lambda_t: lambda mixing, scalar or [T].
      stop_target_gradients: whether to stop gradients through the returns.

    Returns:
      Transformed n-step returns [T].
    """
    returns = multistep.n_step_bootstrapped_returns(
        r_t,
        discount_t,
        tx_pair.apply_inv(v_t),
        n,
        lambda_t=lambda_t,
        stop_target_gradients=stop_target_gradients,
    )
    return tx_pair.apply(returns)


def transformed_general_off_policy_returns_from_action_values(
    tx_pair: TxPair,
    q_t: Array,
    a_t: Array,
    r_t: Array,
    discount_t: Array,
    c_t: Array,
    pi_t: Array,
    stop_target_gradients: bool = False,
) -> Array:
    """General off-policy returns (Retrace-style traces) under a value transform.

    The transformed action values are mapped back with `h^-1`, the ordinary
    `general_off_policy_returns_from_action_values` is computed, and the result squashed by `h`.

    Args:
      tx_pair: the transform `h` and its inverse.
      q_t: transformed action values [T, A].
      a_t: actions taken [T].
      r_t: rewards [T].
      discount_t: discounts [T].
      c_t: trace coefficients [T].
      pi_t: target-policy probabilities [T, A].
      stop_target_gradients: whether to stop gradients through the returns.

    Returns:
      Transformed off-policy returns [T].
    """
    returns = multistep.general_off_policy_returns_from_action_values(
        tx_pair.apply_inv(q_t), a_t, r_t, discount_t, c_t, pi_t, stop_target_gradients
    )
    return tx_pair.apply(returns)


def transformed_q_lambda(
    q_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_t: Array,
    lambda_: Numeric,
    stop_target_gradients: bool = True,
    tx_pair: TxPair = IDENTITY_PAIR,
) -> Array:
    """Peng's / Watkins' Q(lambda) TD errors under a value transform.

    See "General non-linear Bellman equations" by van Hasselt et al.
    (https://arxiv.org/abs/1907.03687):

        delta_t = transformed_lambda_returns(h, r_t, discount_t, max_a q_t, lambda_)
                  - q_tm1[a_tm1]

    Args:
      q_tm1: transformed Q-values at t-1 [T, A].
      a_tm1: actions taken at t-1 [T].
      r_t: rewards [T].
      discount_t: discounts [T].
      q_t: transformed Q-values at t [T, A].
      lambda_: scalar (Peng) or [T] (Watkins: zero after non-greedy actions).
      stop_target_gradients: whether to stop gradients through the targets.
      tx_pair: the transform `h` and its inverse.

    Returns:
      TD errors [T] in the transformed scale.
    """
    check(
        "transformed_q_lambda",
        chex.assert_rank,
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t": q_t,
            "lambda_": lambda_,
        },
        [2, 1, 1, 1, 2, {0, 1}],
    )
    check(
        "transformed_q_lambda",
        chex.assert_type,
        {
            "q_tm1": q_tm1,
            "a_tm1": a_tm1,
            "r_t": r_t,
            "discount_t": discount_t,
            "q_t": q_t,
            "lambda_": lambda_,
        },
        [float, int, float, float, float, float],
    )
    check("transformed_q_lambda", chex.assert_equal_shape, {"q_tm1": q_tm1, "q_t": q_t})
    check(
        "transformed_q_lambda",
        chex.assert_equal_shape,
        {"a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t},
    )
    qa_tm1 = base.batched_index(q_tm1, a_tm1)
    v_t = jnp.max(q_t, axis=-1)
    target_tm1 = transformed_lambda_returns(
        tx_pair, r_t, discount_t, v_t, lambda_, stop_target_gradients
    )
    return target_tm1 - qa_tm1


def transformed_retrace(
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
    tx_pair: TxPair = IDENTITY_PAIR,
) -> Array:
    """Retrace TD errors under a value transform, as in R2D2.

    See "Recurrent Experience Replay in Distributed Reinforcement Learning" by Kapturowski et al.
    (https://openreview.net/pdf?id=r1lyTjAqYX) and "Safe and Efficient Off-Policy Reinforcement
    Learning" by Munos et al. (https://arxiv.org/abs/1606.02647). Traces are
    `c_t = lambda_ * min(1, pi_t[a_t] / (mu_t + eps))` and

        delta_t = transformed_general_off_policy_returns_from_action_values(
                      h, q_t, a_t, r_t, discount_t, c_t, pi_t) - q_tm1[a_tm1]

    Args:
      q_tm1: transformed Q-values at t-1 [T, A].
      q_t: transformed Q-values at t [T, A].
      a_tm1: actions taken at t-1 [T].
      a_t: actions taken at t [T].
      r_t: rewards [T].
      discount_t: discounts [T].
      pi_t: target-policy probabilities at t [T, A].
      mu_t: behaviour-policy probability of the taken action `a_t` [T].
      lambda_: scalar trace parameter.
      eps: added to `mu_t` to avoid division by zero.
      stop_target_gradients: whether to stop gradients through the targets.
      tx_pair: the transform `h` and its inverse.

    Returns:
      TD errors [T] in the transformed scale.
    """
    check(
        "transformed_retrace",
        chex.assert_rank,
        {
            "q_tm1": q_tm1,
            "q_t": q_t,
            "a_tm1": a_tm1,
            "a_t": a_t,
            "r_t": r_t,
            "discount_t": discount_t,
            "pi_t": pi_t,
            "mu_t": mu_t,
        },
        [2, 2, 1, 1, 1, 1, 2, 1],
    )
    check(
        "transformed_retrace",
        chex.assert_type,
        {
            "q_tm1": q_tm1,
            "q_t": q_t,
            "a_tm1": a_tm1,
            "a_t": a_t,
            "r_t": r_t,
            "discount_t": discount_t,
            "pi_t": pi_t,
            "mu_t": mu_t,
        },
        [float, float, int, int, float, float, float, float],
    )
    check(
        "transformed_retrace", chex.assert_equal_shape, {"q_tm1": q_tm1, "q_t": q_t, "pi_t": pi_t}
    )
    check(
        "transformed_retrace",
        chex.assert_equal_shape,
        {"a_tm1": a_tm1, "a_t": a_t, "r_t": r_t, "discount_t": discount_t, "mu_t": mu_t},
    )
    pi_a_t = base.batched_index(pi_t, a_t)
    c_t = jnp.minimum(1.0, pi_a_t / (mu_t + eps)) * lambda_
    target_tm1 = transformed_general_off_policy_returns_from_action_values(
        tx_pair, q_t, a_t, r_t, discount_t, c_t, pi_t, stop_target_gradients
    )
    return target_tm1 - base.batched_index(q_tm1, a_tm1)


def transformed_n_step_q_learning(
    q_tm1: Array,
    a_tm1: Array,
    target_q_t: Array,
    a_t: Array,
    r_t: Array,
    discount_t: Array,
    n: int,
    stop_target_gradients: bool = True,
    tx_pair: TxPair = IDENTITY_PAIR,
) -> Array:
    """N-step Q-learning TD errors under a value transform, as in R2D2.

    See "Recurrent Experience Replay in Distributed Reinforcement Learning" by Kapturowski et al.
    (https://openreview.net/pdf?id=r1lyTjAqYX):

        delta_t = transformed_n_step_returns(h, r_t, discount_t, target_q_t[a_t], n)
                  - q_tm1[a_tm1]

    Args:
      q_tm1: transformed Q-values at times [0, T-1], shape [T, A].
      a_tm1: actions at times [0, T-1], shape [T].
      target_q_t: transformed target Q-values at times [1, T], shape [T, A].
      a_t: actions used to read the bootstrap value (argmax of `target_q_t` for Q-learning,
        argmax of the online `q_t` for double Q-learning), shape [T].
      r_t: rewards [T].
      discount_t: discounts [T].
      n: number of steps (static).
      stop_target_gradients: whether to stop gradients through the targets.
      tx_pair: the transform `h` and its inverse.

    Returns:
      TD errors [T] in the transformed scale.
    """
    check(
        "transformed_n_step_q_learning",
        chex.assert_rank,
        {
            "q_tm1": q_tm1,
            "target_q_t": target_q_t,
            "a_tm1": a_tm1,
            "a_t": a_t,
            "r_t": r_t,
            "discount_t": discount_t,
        },
        [2, 2, 1, 1, 1, 1],
    )
    check(
        "transformed_n_step_q_learning",
        chex.assert_type,
        {
            "q_tm1": q_tm1,
            "target_q_t": target_q_t,
            "a_tm1": a_tm1,
            "a_t": a_t,
            "r_t": r_t,
            "discount_t": discount_t,
        },
        [float, float, int, int, float, float],
    )
    check(
        "transformed_n_step_q_learning",
        chex.assert_equal_shape,
        {"q_tm1": q_tm1, "target_q_t": target_q_t},
    )
    check(
        "transformed_n_step_q_learning",
        chex.assert_equal_shape,
        {"a_tm1": a_tm1, "a_t": a_t, "r_t": r_t, "discount_t": discount_t},
    )
    v_t = base.batched_index(target_q_t, a_t)
    target_tm1 = transformed_n_step_returns(
        tx_pair, r_t, discount_t, v_t, n, stop_target_gradients=stop_target_gradients
    )
    return target_tm1 - base.batched_index(q_tm1, a_tm1)
