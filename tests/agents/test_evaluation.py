"""agents.evaluation: both backends, the fair episode budget, statistics, errors.

The policies are hand-written CartPole controllers with known behaviour: pushing towards
``w . obs`` with ``w = (0, 0, 1, 0.5)`` balances for all 500 steps; ``w = (0, 0, 1, 0)`` (angle
only) falls after roughly 25-60 steps, a spread of returns that makes the distribution tests
meaningful; a constant action ends an episode in about 10 steps.
"""

from __future__ import annotations

import json
import sys

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.evaluation import (
    EvalResult,
    aggregate,
    bootstrap_ci,
    compare_distributions,
    evaluate,
    iqm,
    split_episodes,
)
from agents.evaluation.checks import EVAL_TIME_LIMIT, eval_time_limit, select_seeds
from agents.evaluation.gymnasium_backend import evaluate_gymnasium
from agents.evaluation.jax_backend import jax_program
from agents.policy import Policy
from envs.core import Box, Discrete
from envs.host import is_gymnasium_id
from rlkit.errors import RLKitError

GOOD = (0.0, 0.0, 1.0, 0.5)
GOOD_2 = (0.05, 0.2, 1.0, 0.5)
ANGLE_ONLY = (0.0, 0.0, 1.0, 0.0)


def linear_apply(w, obs, key, deterministic=True):
    """Push right when ``obs . w > 0``; sampled with probability sigmoid(10 obs . w) otherwise."""
    score = obs @ w
    if deterministic:
        return (score > 0).astype(jnp.int32)
    return jax.random.bernoulli(key, jax.nn.sigmoid(10.0 * score)).astype(jnp.int32)


def constant_apply(w, obs, key, deterministic=True):
    del w, key, deterministic
    return jnp.zeros(obs.shape[:1], jnp.int32)


def seven_apply(w, obs, key, deterministic=True):
    del w, key, deterministic
    return jnp.full(obs.shape[:1], 7, jnp.int32)


def float_apply(w, obs, key, deterministic=True):
    return (obs @ w > 0).astype(jnp.float32)


def cartpole_policy(gains, apply=linear_apply, num_seeds="auto"):
    env, params = envs.make("CartPole-v1")
    w = jnp.asarray(gains, jnp.float32)
    if num_seeds == "auto":
        num_seeds = w.shape[0] if w.ndim == 2 else None
    return Policy(
        apply, w, num_seeds, "CartPole-v1", env.observation_space(params), env.action_space(params)
    )


# --------------------------------------------------------------------------------------------------
# Known behaviour on both backends
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_balancing_heuristic_reaches_500(backend):
    policy = cartpole_policy([GOOD, GOOD_2])
    result = evaluate(policy, "CartPole-v1", episodes=32, backend=backend)
    assert result.returns.shape == (2, 32) and result.lengths.shape == (2, 32)
    np.testing.assert_array_equal(result.returns, 500.0)
    np.testing.assert_array_equal(result.lengths, 500)
    assert result.reward_threshold == 475.0
    assert result.fraction_at_threshold() == 1.0
    assert result.seeds == (0, 1) and result.backend == backend


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_constant_action_falls_in_about_ten_steps(backend):
    policy = cartpole_policy([GOOD, GOOD], apply=constant_apply)
    result = evaluate(policy, "CartPole-v1", episodes=32, backend=backend)
    assert np.all((result.lengths >= 7) & (result.lengths <= 14)), result.lengths
    # +1 on every step, the terminating one included.
    np.testing.assert_array_equal(result.returns, result.lengths)
    assert result.fraction_at_threshold() == 0.0


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_time_limit_override(backend):
    policy = cartpole_policy([GOOD, GOOD_2])
    result = evaluate(policy, "CartPole-v1", episodes=32, backend=backend, max_episode_steps=50)
    np.testing.assert_array_equal(result.returns, 50.0)


def test_seed_selection_maps_rows_to_seeds():
    # Seed 1 of this policy is a constant-action controller in disguise (all-zero gains push left).
    policy = cartpole_policy([GOOD, (0.0, 0.0, 0.0, 0.0), GOOD_2])
    result = evaluate(policy, "CartPole-v1", episodes=32, seeds=[1, 0])
    assert result.seeds == (1, 0)
    assert np.all(result.lengths[0] < 15) and np.all(result.returns[1] == 500.0)
    single = evaluate(cartpole_policy(GOOD), "CartPole-v1", episodes=32)
    assert single.returns.shape == (1, 32) and single.seeds == (0,)


def test_backends_agree_in_distribution():
    """Same dynamics, different start-state streams: the return distributions must agree."""
    policy = cartpole_policy(ANGLE_ONLY)
    jax_res = evaluate(policy, "CartPole-v1", episodes=300, backend="jax", seed=1)
    gym_res = evaluate(policy, "CartPole-v1", episodes=300, backend="gymnasium", seed=1)
    assert 20 < jax_res.mean() < 80 and jax_res.std() > 5  # a real spread, not a constant
    verdict = compare_distributions(jax_res, gym_res)
    assert verdict["test"] == "ks_2samp"
    assert verdict["verdict"] == "agree", verdict
    assert verdict["p_value"] > 0.01 and verdict["ci_overlap"]
    # Negative control: a different policy's returns are told apart.
    const = cartpole_policy(ANGLE_ONLY, apply=constant_apply)
    other = evaluate(const, "CartPole-v1", episodes=300, backend="gymnasium", seed=1)
    differ = compare_distributions(jax_res, other)
    assert differ["verdict"] == "differ" and differ["p_value"] < 1e-6


def test_permutation_fallback_without_scipy(monkeypatch):
    policy = cartpole_policy([ANGLE_ONLY, ANGLE_ONLY])
    a = evaluate(policy, "CartPole-v1", episodes=32, backend="jax", seed=2)
    b = evaluate(policy, "CartPole-v1", episodes=32, backend="jax", seed=3)
    c = evaluate(cartpole_policy([GOOD, GOOD], apply=constant_apply), "CartPole-v1", episodes=32)
    monkeypatch.setitem(sys.modules, "scipy", None)  # `from scipy import stats` now fails
    same = compare_distributions(a, b)
    assert same["test"].startswith("permutation") and same["verdict"] == "agree"
    diff = compare_distributions(a, c)
    assert diff["verdict"] == "differ" and diff["p_value"] < 1e-3


# --------------------------------------------------------------------------------------------------
# Reproducibility and compilation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_same_seed_same_numbers_bit_for_bit(backend):
    policy = cartpole_policy([ANGLE_ONLY, GOOD])
    r1 = evaluate(policy, "CartPole-v1", episodes=32, backend=backend, seed=5)
    r2 = evaluate(policy, "CartPole-v1", episodes=32, backend=backend, seed=5)
    r3 = evaluate(policy, "CartPole-v1", episodes=32, backend=backend, seed=6)
    np.testing.assert_array_equal(r1.returns, r2.returns)
    np.testing.assert_array_equal(r1.lengths, r2.lengths)
    assert json.dumps(r1.to_dict()) == json.dumps(r2.to_dict())
    assert not np.array_equal(r1.returns[0], r3.returns[0])


def test_stochastic_policy_uses_the_seed():
    policy = cartpole_policy([ANGLE_ONLY, GOOD])
    r1 = evaluate(policy, "CartPole-v1", episodes=32, deterministic=False, seed=5)
    r2 = evaluate(policy, "CartPole-v1", episodes=32, deterministic=False, seed=5)
    r3 = evaluate(policy, "CartPole-v1", episodes=32, deterministic=False, seed=6)
    np.testing.assert_array_equal(r1.returns, r2.returns)
    assert not np.array_equal(r1.returns, r3.returns)
    assert not r1.deterministic


def test_second_call_does_not_recompile():
    policy = cartpole_policy([ANGLE_ONLY, GOOD])
    evaluate(policy, "CartPole-v1", episodes=32, seed=0)
    program = jax_program(linear_apply, "CartPole-v1", True)
    size = program._cache_size()
    evaluate(policy, "CartPole-v1", episodes=32, seed=1)
    evaluate(cartpole_policy([GOOD, GOOD_2]), "CartPole-v1", episodes=32, seed=2)  # new params
    assert program._cache_size() == size


# --------------------------------------------------------------------------------------------------
# The fair episode budget of the Gymnasium backend
# --------------------------------------------------------------------------------------------------


def test_split_episodes():
    np.testing.assert_array_equal(split_episodes(10, 4), [3, 3, 2, 2])
    np.testing.assert_array_equal(split_episodes(8, 4), [2, 2, 2, 2])
    np.testing.assert_array_equal(split_episodes(3, 5), [1, 1, 1, 0, 0])
    for episodes, n in [(1000, 16), (7, 3), (5, 1)]:
        q = split_episodes(episodes, n)
        assert q.sum() == episodes and q.max() - q.min() <= 1
    with pytest.raises(RLKitError, match="num_envs"):
        split_episodes(10, 0)


def test_each_sub_env_contributes_its_quota():
    policy = cartpole_policy([ANGLE_ONLY, GOOD])
    result = evaluate(policy, "CartPole-v1", episodes=10, backend="gymnasium", num_envs=4)
    for s in range(2):
        np.testing.assert_array_equal(np.bincount(result.env_index[s], minlength=4), [3, 3, 2, 2])
    assert np.all(np.isfinite(result.returns))
    # More sub-envs than episodes: only `episodes` sub-envs are made, one episode each.
    few = evaluate(policy, "CartPole-v1", episodes=3, backend="gymnasium", num_envs=8)
    np.testing.assert_array_equal(few.env_index, [[0, 1, 2], [0, 1, 2]])


def test_next_step_and_same_step_autoreset_give_the_same_episodes():
    """NEXT_STEP's dummy reset step must be skipped: then both modes see identical episodes."""
    policy = cartpole_policy([ANGLE_ONLY, GOOD])
    _, params = select_seeds(policy, None)
    args = (policy, params, "CartPole-v1", 24, True, 3, 4, None)
    same = evaluate_gymnasium(*args, autoreset_mode="SameStep")
    nxt = evaluate_gymnasium(*args, autoreset_mode="NextStep")
    for a, b in zip(same[:3], nxt[:3]):
        np.testing.assert_array_equal(a, b)
    assert np.all(same[1][0] < 200)  # the angle-only seed really did reset many times


def test_no_bias_toward_short_episodes():
    """Naively keeping the first episodes to finish over-samples short ones; the quotas do not.

    Half of the seeds' sub-envs run a policy that falls at once and half one that balances (the
    gains are per seed, so mix them by seed). With 2 sub-envs per seed and a quota of 4 each, the
    long-episode seed still contributes all its episodes at full length.
    """
    policy = cartpole_policy([GOOD, (0.0, 0.0, 0.0, 0.0)])
    result = evaluate(policy, "CartPole-v1", episodes=8, backend="gymnasium", num_envs=2)
    np.testing.assert_array_equal(result.returns[0], 500.0)
    assert np.all(result.lengths[1] < 15)
    np.testing.assert_array_equal(np.bincount(result.env_index[0]), [4, 4])


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------


def test_iqm_hand_computed_and_matches_scipy():
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # middle of 1..8: 3, 4, 5, 6
    assert iqm(np.array([0.0, 100.0, 1.0, 2.0, 3.0, -50.0])) == pytest.approx(1.5)  # cut 1 each
    x = np.random.default_rng(0).normal(size=(3, 101))
    scipy_stats = pytest.importorskip("scipy.stats")
    np.testing.assert_allclose(iqm(x, axis=1), scipy_stats.trim_mean(x, 0.25, axis=1))
    assert aggregate(np.array([[1.0, 2.0, 10.0]]), "median")[0] == 2.0
    with pytest.raises(RLKitError, match="aggregate"):
        aggregate(x, "mode")


def test_bootstrap_ci_hand_computed():
    # Seed 0 always scores 0, seed 1 always 1: resampling episodes within seeds cannot move the
    # pooled mean off 0.5; resampling the seeds too gives 0, 0.5 or 1 with prob. 1/4, 1/2, 1/4.
    two_seeds = np.array([[0.0] * 6, [1.0] * 6])
    assert bootstrap_ci(two_seeds, "mean") == (0.5, 0.5)
    assert bootstrap_ci(two_seeds, "iqm") == (0.5, 0.5)
    assert bootstrap_ci(two_seeds, "mean", method="hierarchical") == (0.0, 1.0)
    # One seed, episodes {0, 1}: the mean of two draws is 0, 0.5 or 1.
    assert bootstrap_ci(np.array([[0.0, 1.0]]), "mean") == (0.0, 1.0)
    assert bootstrap_ci(np.full((2, 5), 7.0), "median") == (7.0, 7.0)


def test_bootstrap_ci_width_and_reproducibility():
    x = np.random.default_rng(1).normal(size=(4, 500))  # 2000 N(0, 1) scores
    low, high = bootstrap_ci(x, "mean", seed=3)
    assert low < x.mean() < high
    expected = 2 * 1.96 / np.sqrt(x.size)  # the normal-theory 95% width
    assert abs((high - low) - expected) < 0.1 * expected
    assert bootstrap_ci(x, "mean", seed=3) == (low, high)  # bit for bit
    assert bootstrap_ci(x, "mean", seed=4) != (low, high)
    iqm_low, iqm_high = bootstrap_ci(x, "iqm", seed=3)
    assert iqm_low < iqm(x.reshape(-1)) < iqm_high
    with pytest.raises(RLKitError, match="statistic"):
        bootstrap_ci(x, "mode")
    with pytest.raises(RLKitError, match="method"):
        bootstrap_ci(x, "mean", method="naive")


def test_eval_result_summary_and_round_trip():
    returns = np.array([[10.0, 20.0, 30.0, 500.0], [475.0, 480.0, 0.0, 5.0]])
    result = EvalResult(
        returns=returns,
        lengths=returns.astype(np.int64),
        env_id="CartPole-v1",
        backend="jax",
        reward_threshold=475.0,
        seeds=(0, 1),
        env_index=np.tile(np.arange(4), (2, 1)),
    )
    s = result.summary()
    assert s["mean"] == pytest.approx(returns.mean())
    assert s["median"] == pytest.approx(25.0)
    # sorted: 0 5 10 20 30 475 480 500 -> middle four: 10 20 30 475
    assert s["iqm"] == pytest.approx(133.75)
    assert s["fraction_at_threshold"] == pytest.approx(3 / 8)
    assert s["per_seed_mean"] == pytest.approx([140.0, 240.0])
    assert s["std"] == pytest.approx(np.std(returns, ddof=1))
    assert s["mean_ci95"][0] <= s["mean"] <= s["mean_ci95"][1]
    text = json.dumps(result.to_dict())  # JSON-serialisable
    back = EvalResult.from_dict(json.loads(text))
    assert back.summary() == s


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_action_outside_the_space_raises(backend):
    policy = cartpole_policy([GOOD, GOOD], apply=seven_apply)
    with pytest.raises(RLKitError, match=r"action 7.*Discrete\(2\)"):
        evaluate(policy, "CartPole-v1", episodes=4, backend=backend)


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_float_actions_for_a_discrete_space_raise(backend):
    policy = cartpole_policy([GOOD, GOOD], apply=float_apply)
    with pytest.raises(RLKitError, match="dtype"):
        evaluate(policy, "CartPole-v1", episodes=4, backend=backend)


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_policy_for_another_space_raises(backend):
    policy = Policy(linear_apply, jnp.zeros(3), None, "Pendulum-v1", Box(-1, 1, (3,)), Discrete(2))
    with pytest.raises(RLKitError, match="different observation or action space"):
        evaluate(policy, "CartPole-v1", episodes=4, backend=backend)
    three = cartpole_policy(GOOD)
    three = Policy(three.apply, three.params, None, "x", three.observation_space, Discrete(3))
    with pytest.raises(RLKitError, match=r"Discrete\(3\) vs env Discrete\(2\)"):
        evaluate(three, "CartPole-v1", episodes=4, backend=backend)


@pytest.mark.parametrize("backend", ["jax", "gymnasium"])
def test_unknown_env_raises(backend):
    with pytest.raises(RLKitError, match="CartPole-v9"):
        evaluate(cartpole_policy(GOOD), "CartPole-v9", episodes=4, backend=backend)


def test_bad_arguments_raise():
    policy = cartpole_policy([GOOD, GOOD_2])
    for kwargs, needle in [
        ({"episodes": 0}, "episodes"),
        ({"backend": "torch"}, "backend"),
        ({"seeds": [2]}, "seeds"),
        ({"num_envs": 0}, "num_envs"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
    ]:
        with pytest.raises(RLKitError, match=needle):
            evaluate(policy, "CartPole-v1", **kwargs)
    with pytest.raises(RLKitError, match="policy"):
        evaluate(linear_apply, "CartPole-v1")


# --------------------------------------------------------------------------------------------------
# Other Gymnasium envs: continuous actions, Box2D
# --------------------------------------------------------------------------------------------------


def _pendulum_policy(torque: float) -> Policy:
    def apply(p, obs, key, deterministic=True):
        return jnp.broadcast_to(p, (obs.shape[0], 1))

    return Policy(
        apply, jnp.asarray([torque], jnp.float32), None, "Pendulum-v1",
        Box(-np.inf, np.inf, (3,)), Box(-2.0, 2.0, (1,)),
    )


def test_gymnasium_backend_on_a_continuous_env():
    result = evaluate(_pendulum_policy(0.0), "Pendulum-v1", episodes=4, backend="gymnasium",
                      num_envs=2, max_episode_steps=20)
    np.testing.assert_array_equal(result.lengths, 20)  # Pendulum only truncates
    assert np.all(result.returns < 0) and result.reward_threshold is None
    assert result.fraction_at_threshold() is None
    with pytest.raises(RLKitError, match=r"action \[5\.0\]"):
        evaluate(_pendulum_policy(5.0), "Pendulum-v1", episodes=2, backend="gymnasium",
                 max_episode_steps=5)


def test_gymnasium_backend_on_lunar_lander():
    pytest.importorskip("Box2D")
    import gymnasium

    env = gymnasium.make("LunarLander-v3")
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    policy = Policy(
        constant_apply, jnp.zeros(()), None, "LunarLander-v3",
        Box(obs_space.low, obs_space.high), Discrete(int(act_space.n)),
    )
    result = evaluate(policy, "LunarLander-v3", episodes=2, backend="gymnasium")
    assert result.reward_threshold == 200.0
    # Doing nothing crashes the lander: a short episode with a large negative return.
    assert np.all(result.lengths < 1000) and np.all(result.returns < 0)


# --------------------------------------------------------------------------------------------------
# MinAtar: evaluation on the reference package's own Gymnasium env, and the default time limit
# --------------------------------------------------------------------------------------------------


def _fixed_action_policy(env_id, action):
    env, params = envs.make(env_id)

    def apply(w, obs, key, deterministic=True):
        del key, deterministic
        return jnp.full(obs.shape[:1], action, jnp.int32) + w.astype(jnp.int32)

    return Policy(
        apply, jnp.zeros(()), None, env_id, env.observation_space(params), env.action_space(params)
    )


def test_minatar_policy_evaluates_on_the_reference_package_env():
    pytest.importorskip("minatar")
    assert is_gymnasium_id("MinAtar/Breakout-v1")  # registered on demand
    assert gymnasium.spec("MinAtar/Breakout-v1").entry_point.startswith("minatar")
    # Standing still in Breakout: the ball goes past the paddle; the same law on both envs.
    policy = _fixed_action_policy("MinAtar/Breakout-v1", 0)
    results = [
        evaluate(policy, "MinAtar/Breakout-v1", episodes=40, backend=b, seed=3)
        for b in ("jax", "gymnasium")
    ]
    for r in results:
        assert np.all(r.lengths > 0) and np.all(r.lengths < 1000)
        assert np.all(np.isfinite(r.returns))
    # Returns take few values (0 or 1 brick): the means agree within sampling error.
    means = [float(r.returns.mean()) for r in results]
    assert abs(means[0] - means[1]) < 0.35, means


def test_env_without_time_limit_is_capped_at_the_eval_time_limit():
    assert eval_time_limit(None, None) == EVAL_TIME_LIMIT
    assert eval_time_limit(2**31 - 1, None) == EVAL_TIME_LIMIT
    assert eval_time_limit(500, None) is None  # the env's own limit applies
    assert eval_time_limit(None, 7) == 7 and eval_time_limit(500, 7) == 7
    # Freeway's game lasts 2501 steps whatever the policy: below the cap, so it is not cut.
    policy = _fixed_action_policy("MinAtar/Freeway-v1", 0)
    r = evaluate(policy, "MinAtar/Freeway-v1", episodes=2, backend="jax")
    assert np.all(r.lengths == 2501)
    # An explicit max_episode_steps cuts it.
    r = evaluate(policy, "MinAtar/Freeway-v1", episodes=2, backend="jax", max_episode_steps=100)
    assert np.all(r.lengths == 100)
