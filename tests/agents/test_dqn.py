"""Tests for agents.dqn: hand-computed losses, time-limit bootstrapping, jit/vmap, learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.base import Transition, stack_configs
from agents.dqn import DQN, DQNConfig, dqn_loss, td_errors
from agents.registry import get_agent
from agents.runtime.loop import make_train
from rlkit.errors import RLKitError

GAMMA = 0.9


def _linear_q(params, obs):
    """Q = obs @ W: a 'network' whose values are easy to compute by hand."""
    return obs @ params


# Two windows of 3 steps, obs_dim 2, 2 actions.
W_ONLINE = jnp.array([[1.0, 2.0], [0.5, -1.0]])
W_TARGET = jnp.array([[0.0, 1.0], [3.0, 1.0]])


def _batch(terminated, truncated):
    obs = jnp.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]]])
    next_obs = jnp.array(
        [[[0.0, 1.0], [1.0, 1.0], [1.0, 2.0]], [[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]]
    )
    return {
        "obs": obs,
        "action": jnp.array([[1, 0, 1], [0, 1, 0]], jnp.int32),
        "reward": jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]),
        "terminated": jnp.array(terminated, bool),
        "truncated": jnp.array(truncated, bool),
        "next_obs": next_obs,
    }


def _q(w, o):
    return np.asarray(o) @ np.asarray(w)


def _cfg(**kw):
    return DQNConfig(**{"gamma": GAMMA, "n_step": 1, **kw})


NO_ENDS = [[False] * 3, [False] * 3]


def test_one_step_double_q_loss_matches_hand_computation():
    batch = _batch(NO_ENDS, NO_ENDS)
    td, q_taken = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(), batch)
    # Window 0: obs (1,0) -> Q_online = (1, 2), a=1 -> 2. next (0,1): online (0.5,-1) selects 0,
    # target (3, 1)[0] = 3. y = 1 + 0.9 * 3 = 3.7, td = 1.7.
    # Window 1: obs (0,1) -> Q_online = (0.5,-1), a=0 -> 0.5. next (2,0): online (2,4) selects 1,
    # target (0, 2)[1] = 2. y = -1 + 0.9 * 2 = 0.8, td = 0.3.
    np.testing.assert_allclose(q_taken, [2.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(td, [1.7, 0.3], rtol=1e-6)
    loss, _ = dqn_loss(W_ONLINE, W_TARGET, _linear_q, _cfg(), batch, jnp.ones(2))
    # Huber(delta=1): 1.7 -> 0.5 + 0.7 = 1.2; 0.3 -> 0.045.
    np.testing.assert_allclose(loss, (1.2 + 0.045) / 2, rtol=1e-6)
    loss, _ = dqn_loss(W_ONLINE, W_TARGET, _linear_q, _cfg(loss="l2"), batch, jnp.array([1.0, 0.5]))
    np.testing.assert_allclose(loss, (0.5 * 1.7**2 + 0.5 * 0.5 * 0.3**2) / 2, rtol=1e-6)


def test_one_step_q_learning_without_double():
    batch = _batch([[True, False, False], [False] * 3], NO_ENDS)
    td, _ = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(double_q=False), batch)
    # Window 0 terminated: y = 1, td = 1 - 2 = -1. Window 1: max target (0, 2) = 2, td = 0.3.
    np.testing.assert_allclose(td, [-1.0, 0.3], rtol=1e-6)


def test_n_step_double_q_matches_hand_computation():
    batch = _batch(NO_ENDS, NO_ENDS)
    td, _ = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(n_step=3), batch)

    def v(o):  # double-Q bootstrap value of one next obs
        return _q(W_TARGET, o)[np.argmax(_q(W_ONLINE, o))]

    nxt = np.asarray(batch["next_obs"])
    y0 = 1 + GAMMA * 2 + GAMMA**2 * 3 + GAMMA**3 * v(nxt[0, 2])
    y1 = -1 + GAMMA * 0.5 + GAMMA**2 * 4 + GAMMA**3 * v(nxt[1, 2])
    np.testing.assert_allclose(td, [y0 - 2.0, y1 - 0.5], rtol=1e-5)


def test_truncation_bootstraps_termination_does_not():
    """A time-limit cut bootstraps on Q(final obs); treating it as a termination would not."""
    trunc = [[True, False, False], [False, True, False]]
    batch = _batch(NO_ENDS, trunc)
    nxt = np.asarray(batch["next_obs"])

    def v(o):
        return _q(W_TARGET, o)[np.argmax(_q(W_ONLINE, o))]

    # One-step: the truncation flag does not change the target.
    td1, _ = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(), batch)
    np.testing.assert_allclose(td1, [1.7, 0.3], rtol=1e-6)
    as_terminal, _ = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(), _batch(trunc, NO_ENDS))
    np.testing.assert_allclose(as_terminal, [1 - 2.0, 0.3], rtol=1e-6)  # what a `done` would do
    assert not np.allclose(td1, as_terminal)

    # Three-step: window 0 stops at its truncated first step and bootstraps on its final obs;
    # window 1 stops at step 1 and bootstraps on next_obs[1, 1]; rewards after the cut are dropped.
    td3, _ = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(n_step=3), batch)
    y0 = 1 + GAMMA * v(nxt[0, 0])
    y1 = -1 + GAMMA * 0.5 + GAMMA**2 * v(nxt[1, 1])
    np.testing.assert_allclose(td3, [y0 - 2.0, y1 - 0.5], rtol=1e-5)
    term3, _ = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(n_step=3), _batch(trunc, NO_ENDS))
    np.testing.assert_allclose(term3, [1 - 2.0, -1 + GAMMA * 0.5 - 0.5], rtol=1e-5)


@pytest.mark.parametrize("double_q", [True, False])
def test_n_step_targets_equal_rlkit_n_step_returns_on_random_windows(double_q):
    """The window form of the target (one bootstrap observation per window) equals
    ``rlkit.n_step_returns_from_rollout`` over every next observation of the window, with
    terminations and truncations anywhere in it."""
    import rlkit

    rng = np.random.default_rng(0)
    b, n = 256, 4
    batch = {
        "obs": jnp.asarray(rng.standard_normal((b, n, 2)), jnp.float32),
        "action": jnp.asarray(rng.integers(0, 2, (b, n)), jnp.int32),
        "reward": jnp.asarray(rng.standard_normal((b, n)), jnp.float32),
        "terminated": jnp.asarray(rng.random((b, n)) < 0.2),
        "truncated": jnp.asarray(rng.random((b, n)) < 0.2),
        "next_obs": jnp.asarray(rng.standard_normal((b, n, 2)), jnp.float32),
    }
    td, q_taken = td_errors(_linear_q, W_ONLINE, W_TARGET, _cfg(n_step=n, double_q=double_q), batch)
    q_target = _q(W_TARGET, batch["next_obs"])  # [b, n, 2]
    if double_q:
        chosen = np.argmax(_q(W_ONLINE, batch["next_obs"]), axis=-1)
        values = np.take_along_axis(q_target, chosen[..., None], -1)[..., 0]
    else:
        values = q_target.max(-1)
    returns = jax.vmap(
        lambda r, v, te, tr: rlkit.n_step_returns_from_rollout(r, v, te, tr, GAMMA, n)
    )(batch["reward"], jnp.asarray(values), batch["terminated"], batch["truncated"])
    np.testing.assert_allclose(td, returns[:, 0] - q_taken, rtol=1e-5, atol=1e-5)


def test_gradient_flows_only_into_q_taken():
    batch = _batch(NO_ENDS, NO_ENDS)
    cfg = _cfg(loss="l2")
    g = jax.grad(lambda w: dqn_loss(w, W_TARGET, _linear_q, cfg, batch, jnp.ones(2))[0])(W_ONLINE)
    # d/dW of mean 0.5 (y - Q(s,a))^2 with y fixed: -(td_i) * obs_i in column a_i, averaged.
    expected = np.zeros((2, 2))
    expected[:, 1] += -1.7 * np.array([1.0, 0.0]) / 2
    expected[:, 0] += -0.3 * np.array([0.0, 1.0]) / 2
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# Agent plumbing
# --------------------------------------------------------------------------------------------------


def _cartpole_agent():
    from envs.wrappers import make_vec

    venv, params = make_vec("CartPole-v1", 2)
    return DQN(venv.observation_space(params), venv.action_space(params))


def _small_config(**kw):
    base = {
        "total_timesteps": 512,
        "num_envs": 2,
        "rollout_length": 8,
        "learning_starts": 32,
        "gradient_steps": 2,
        "batch_size": 8,
        "buffer_size": 256,
        "hidden": (16,),
        "target_update_interval": 4,
    }
    return DQNConfig(**{**base, **kw})


def _rollout(key, t=8, n=2):
    k1, k2, k3 = jax.random.split(key, 3)
    return Transition(
        obs=jax.random.normal(k1, (t, n, 4)),
        action=jax.random.randint(k2, (t, n), 0, 2),
        reward=jnp.ones((t, n)),
        terminated=jax.random.bernoulli(k3, 0.1, (t, n)),
        truncated=jnp.zeros((t, n), bool),
        next_obs=jax.random.normal(k3, (t, n, 4)),
        extras={},
    )


def test_registered_and_config_errors():
    assert get_agent("dqn") is DQN
    agent = _cartpole_agent()
    with pytest.raises(RLKitError, match="loss"):
        agent.check_config(_small_config(loss="mse"))
    with pytest.raises(RLKitError, match="buffer-size"):
        agent.check_config(_small_config(buffer_size=8))
    with pytest.raises(RLKitError, match="batch-size"):
        agent.check_config(_small_config(batch_size=100_000, buffer_size=1024))
    with pytest.raises(RLKitError, match="--gamma"):
        agent.check_config(_small_config(gamma=1.5))
    with pytest.raises(RLKitError, match="--learning-rate"):
        agent.check_config(_small_config(learning_rate=float("nan")))
    with pytest.raises(RLKitError, match="bad config field"):
        DQN.default_config("CartPole-v1", learnin_rate=1.0)


@pytest.mark.parametrize(
    "kw", [{"n_step": 1}, {"prioritized": True, "dueling": True, "n_step": 3, "tau": 0.5}]
)
def test_update_no_recompile_and_learning_starts_mask(kw):
    agent = _cartpole_agent()
    config = _small_config(**kw)
    state = agent.init(config, jax.random.key(0))
    update = jax.jit(agent.update)
    act = jax.jit(agent.act)
    # Before learning_starts (8 * 2 = 16 < 32 steps): params and target stay put.
    s1, m1 = update(config, state, _rollout(jax.random.key(1)), jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, s1.learner.params, state.learner.params)
    assert float(m1["learning"]) == 0.0 and int(s1.num_updates) == 0
    a, _ = act(config, s1, jnp.zeros((2, 4)), jax.random.key(3))
    assert a.shape == (2,) and a.dtype == jnp.int32
    sizes = update._cache_size(), act._cache_size()
    s2, _ = update(config, s1, _rollout(jax.random.key(4)), jax.random.key(5))
    s3, m3 = update(config, s2, _rollout(jax.random.key(6)), jax.random.key(7))
    act(config, s3, jnp.ones((2, 4)), jax.random.key(8))
    assert (update._cache_size(), act._cache_size()) == sizes
    # 32 steps stored after the second update, 48 after the third: two gradient steps each.
    assert float(m3["learning"]) == 1.0 and int(s2.num_updates) == 2 and int(s3.num_updates) == 4
    assert int(s3.env_steps) == 48
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), s3.learner.params, s2.learner.params)
    assert all(jax.tree.leaves(changed))
    if config.prioritized:
        assert float(s3.buffer.max_priority) != 1.0
    # The policy is greedy on the online network.
    q = agent.network(config).apply(s3.learner.params, jnp.ones((2, 4)))
    np.testing.assert_array_equal(
        agent.policy(config, agent.policy_params(s3), jnp.ones((2, 4)), jax.random.key(0)),
        jnp.argmax(q, axis=-1),
    )


def test_hard_target_copy_every_interval():
    agent = _cartpole_agent()
    config = _small_config(learning_starts=0, gradient_steps=3, target_update_interval=3, tau=1.0)
    state = agent.init(config, jax.random.key(0))
    s1, _ = jax.jit(agent.update)(config, state, _rollout(jax.random.key(1)), jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, s1.learner.target_params, s1.learner.params)
    config = config.replace(target_update_interval=4)
    s1, _ = jax.jit(agent.update)(config, state, _rollout(jax.random.key(1)), jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, s1.learner.target_params, state.learner.params)


def test_vmap_over_seeds_gives_different_params():
    config = _small_config()
    train = make_train("dqn", "CartPole-v1", config)
    rs, metrics = jax.jit(jax.vmap(train, in_axes=(None, 0)))(
        config, jax.random.split(jax.random.key(0), 2)
    )
    p = rs.agent_state.learner.params
    assert jax.tree.leaves(p)[0].shape[0] == 2
    assert any(bool(jnp.any(x[0] != x[1])) for x in jax.tree.leaves(p))
    assert metrics["loss"].shape == (2, config.num_updates)
    np.testing.assert_array_equal(metrics["env_steps"][0, -1], 512)


def test_vmap_over_stacked_configs():
    """Traced hyperparameters sweep in one program; learning_rate=0 leaves the params untouched."""
    from agents.runtime.loop import init_runner
    from envs.wrappers import make_vec

    configs = [_small_config(learning_rate=1e-3), _small_config(learning_rate=0.0)]
    train = make_train("dqn", "CartPole-v1", configs[0])
    key = jax.random.key(3)
    rs, _ = jax.jit(jax.vmap(train, in_axes=(0, None)))(stack_configs(configs), key)
    venv, params = make_vec("CartPole-v1", 2)
    agent = DQN(venv.observation_space(params), venv.action_space(params))
    initial = init_runner(agent, venv, params, configs[1], key).agent_state.learner.params
    trained = rs.agent_state.learner.params
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[1], y), trained, initial)
    assert any(
        bool(jnp.any(x[0] != y)) for x, y in zip(jax.tree.leaves(trained), jax.tree.leaves(initial))
    )


def test_learns_cartpole():
    """A short run reaches a greedy return of at least 100 (random play averages about 22)."""
    from envs.wrappers import make_vec

    config = DQN.default_config("CartPole-v1", total_timesteps=10_240, buffer_size=10_240)
    train = make_train("dqn", "CartPole-v1", config)
    rs, _ = jax.jit(train)(config, jax.random.key(0))
    venv, params = make_vec("CartPole-v1", 8)
    agent = DQN(venv.observation_space(params), venv.action_space(params))
    pparams = agent.policy_params(rs.agent_state)

    def step(carry, key):
        obs, state, ret, done = carry
        k1, k2 = jax.random.split(key)
        action = agent.policy(config, pparams, obs, k1)
        obs, state, r, te, tr, _ = venv.step(k2, state, action, params)
        ret = ret + jnp.where(done, 0.0, r)
        return (obs, state, ret, done | te | tr), None

    obs, state = venv.reset(jax.random.key(1), params)
    carry = (obs, state, jnp.zeros(8), jnp.zeros(8, bool))
    keys = jax.random.split(jax.random.key(2), 500)
    (_, _, ret, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, keys))(carry)
    assert float(ret.mean()) >= 100.0, ret
