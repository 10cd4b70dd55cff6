"""Tests for agents.c51: the loss against rlkit's primitive and a hand computation, the n-step
window, time-limit bootstrapping on a probe env, the update mask, images, and train.py."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
import rlkit
from agents.base import Transition
from agents.c51 import C51, C51Config, atoms, c51_loss, mean_q
from agents.dqn import DQNConfig, td_errors
from agents.off_policy import n_step_window
from agents.registry import get_agent
from envs.core import Box, Discrete
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script  # noqa: E402

# --------------------------------------------------------------------------------------------------
# The n-step window and the loss on a tiny batch
# --------------------------------------------------------------------------------------------------


def _batch(terminated, truncated):
    """Two windows of 3 steps, obs_dim 2, 2 actions."""
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


NO_ENDS = [[False] * 3, [False] * 3]
TRUNC = [[True, False, False], [False, True, False]]
TERM = [[False, False, False], [False, True, False]]


def test_n_step_window_matches_dqn_n_step_returns():
    """reward_sum + discount * v(next_obs[last]) is what DQN's n-step target uses."""
    gamma = 0.9
    w_online = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    w_target = jnp.array([[0.0, 1.0], [3.0, 1.0]])
    for term, trunc in [(NO_ENDS, NO_ENDS), (NO_ENDS, TRUNC), (TERM, NO_ENDS), (TERM, TRUNC)]:
        batch = _batch(term, trunc)
        cfg = DQNConfig(gamma=gamma, n_step=3)
        td, q_taken = td_errors(lambda p, o: o @ p, w_online, w_target, cfg, batch)
        r, d, last = n_step_window(batch["reward"], batch["terminated"], batch["truncated"], gamma)
        nxt = batch["next_obs"][jnp.arange(2), last]
        v = rlkit.batched_index(nxt @ w_target, jnp.argmax(nxt @ w_online, axis=-1))
        np.testing.assert_allclose(r + d * v - q_taken, td, rtol=1e-5)
    # By hand: window 1 terminated at step 1 -> K = 2, no bootstrap; window 0 runs 3 steps.
    batch = _batch(TERM, NO_ENDS)
    r, d, last = n_step_window(batch["reward"], batch["terminated"], batch["truncated"], gamma)
    np.testing.assert_allclose(r, [1 + 0.9 * 2 + 0.81 * 3, -1 + 0.9 * 0.5], rtol=1e-6)
    np.testing.assert_allclose(d, [0.9**3, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(last, [2, 1])
    # Truncated at step 0 / 1: bootstraps with gamma^1 / gamma^2.
    batch = _batch(NO_ENDS, TRUNC)
    r, d, last = n_step_window(batch["reward"], batch["terminated"], batch["truncated"], gamma)
    np.testing.assert_allclose(r, [1.0, -1 + 0.9 * 0.5], rtol=1e-6)
    np.testing.assert_allclose(d, [0.9, 0.81], rtol=1e-6)
    np.testing.assert_array_equal(last, [0, 1])


def _logits_fn(params, obs):
    """A linear 'network': logits [B, A=2, N=3] = obs @ W, W [2, 6]."""
    return (obs @ params).reshape(obs.shape[:-1] + (2, 3))


W_ONLINE = jnp.array([[0.3, -0.2, 0.5, 1.0, 0.0, -0.4], [0.1, 0.7, -0.3, -0.6, 0.2, 0.9]])
W_TARGET = jnp.array([[-0.5, 0.4, 0.2, 0.3, 0.8, -0.1], [0.6, -0.2, 0.1, 0.0, -0.7, 0.5]])


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _project(z, p, support):
    """Bellemare et al.'s projection of atoms z with probabilities p onto an even support."""
    vmin, vmax = support[0], support[-1]
    dz = support[1] - support[0]
    out = np.zeros_like(support)
    for zj, pj in zip(np.clip(z, vmin, vmax), p):
        b = (zj - vmin) / dz
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            out[lo] += pj
        else:
            out[lo] += pj * (hi - b)
            out[hi] += pj * (b - lo)
    return out


@pytest.mark.parametrize("double_q", [True, False])
def test_loss_matches_hand_computation(double_q):
    cfg = C51Config(num_atoms=3, v_min=-1.0, v_max=1.0, gamma=0.9, n_step=3, double_q=double_q)
    batch = _batch(TERM, TRUNC)  # window 0 truncated at step 0, window 1 terminated at step 1
    weights = jnp.array([1.0, 0.5])
    loss, (per_item, q_taken) = c51_loss(W_ONLINE, W_TARGET, _logits_fn, cfg, batch, weights)
    support = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(atoms(cfg), support)
    obs, nxt = np.asarray(batch["obs"]), np.asarray(batch["next_obs"])
    act = np.asarray(batch["action"])
    expected = []
    # (reward sum, discount, bootstrap obs) of each window, by hand.
    windows = [(1.0, 0.9, nxt[0, 0]), (-1 + 0.9 * 0.5, 0.0, nxt[1, 1])]
    for b, (r, d, s_next) in enumerate(windows):
        logits_tm1 = (obs[b, 0] @ np.asarray(W_ONLINE)).reshape(2, 3)
        tgt = (s_next @ np.asarray(W_TARGET)).reshape(2, 3)
        sel = (s_next @ np.asarray(W_ONLINE)).reshape(2, 3) if double_q else tgt
        a_star = int(np.argmax([_softmax(row) @ support for row in sel]))
        target = _project(r + d * support, _softmax(tgt[a_star]), support)
        log_p = np.log(_softmax(logits_tm1[act[b, 0]]))
        expected.append(-np.sum(target * log_p))
    np.testing.assert_allclose(per_item, expected, rtol=1e-5)
    np.testing.assert_allclose(loss, np.mean(np.array(expected) * [1.0, 0.5]), rtol=1e-5)
    q = [_softmax((obs[b, 0] @ np.asarray(W_ONLINE)).reshape(2, 3)[act[b, 0]]) @ support
         for b in range(2)]
    np.testing.assert_allclose(q_taken, q, rtol=1e-5)
    # The same through rlkit's primitive, window by window.
    fn = rlkit.categorical_double_q_learning if double_q else rlkit.categorical_q_learning
    for b, (r, d, s_next) in enumerate(windows):
        args = [jnp.asarray(support, jnp.float32), _logits_fn(W_ONLINE, batch["obs"][b, 0]),
                batch["action"][b, 0], jnp.float32(r), jnp.float32(d),
                jnp.asarray(support, jnp.float32), _logits_fn(W_TARGET, jnp.asarray(s_next))]
        if double_q:
            args.append(mean_q(_logits_fn(W_ONLINE, jnp.asarray(s_next)), atoms(cfg)))
        np.testing.assert_allclose(fn(*args), per_item[b], rtol=1e-5)
    # Gradient flows into the online logits of the taken action only (target is fixed).
    g = jax.grad(lambda w: c51_loss(w, W_TARGET, _logits_fn, cfg, batch, weights)[0])(W_ONLINE)
    assert np.all(np.isfinite(g)) and np.any(g != 0)


# --------------------------------------------------------------------------------------------------
# Agent plumbing
# --------------------------------------------------------------------------------------------------


def _cartpole_agent():
    from envs.wrappers import make_vec

    venv, params = make_vec("CartPole-v1", 2)
    return C51(venv.observation_space(params), venv.action_space(params))


def _small_config(**kw):
    base = {"total_timesteps": 512, "num_envs": 2, "rollout_length": 8, "learning_starts": 32,
            "gradient_steps": 2, "batch_size": 8, "buffer_size": 256, "hidden": (16,),
            "target_update_interval": 4, "num_atoms": 11}
    return C51Config(**{**base, **kw})


def _rollout(key, t=8, n=2, obs_shape=(4,)):
    k1, k2, k3 = jax.random.split(key, 3)
    return Transition(
        obs=jax.random.normal(k1, (t, n) + obs_shape),
        action=jax.random.randint(k2, (t, n), 0, 2),
        reward=jnp.ones((t, n)),
        terminated=jax.random.bernoulli(k3, 0.1, (t, n)),
        truncated=jnp.zeros((t, n), bool),
        next_obs=jax.random.normal(k3, (t, n) + obs_shape),
        extras={},
    )


def test_registered_and_config_errors():
    assert get_agent("c51") is C51 and agents.get_agent("c51") is C51
    agent = _cartpole_agent()
    agent.check_config(_small_config())
    with pytest.raises(RLKitError, match="--v-min/--v-max"):
        agent.check_config(_small_config(v_min=1.0, v_max=1.0))
    with pytest.raises(RLKitError, match="--num-atoms: expected a value >= 2"):
        agent.check_config(_small_config(num_atoms=1))
    with pytest.raises(RLKitError, match="--v-max: expected a finite number"):
        agent.check_config(_small_config(v_max=float("inf")))
    with pytest.raises(RLKitError, match="activation"):
        agent.check_config(_small_config(activation="nope"))


@pytest.mark.parametrize("kw", [{"n_step": 1, "double_q": False},
                                {"prioritized": True, "dueling": True, "n_step": 3}])
def test_update_no_recompile_and_learning_starts_mask(kw):
    agent = _cartpole_agent()
    config = _small_config(**kw)
    state = agent.init(config, jax.random.key(0))
    update, act = jax.jit(agent.update), jax.jit(agent.act)
    # Before learning_starts (8 * 2 = 16 < 32 steps): params and target stay put.
    s1, m1 = update(config, state, _rollout(jax.random.key(1)), jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, s1.learner.params, state.learner.params)
    assert float(m1["learning"]) == 0.0 and int(s1.num_updates) == 0 and float(m1["loss"]) == 0
    a, _ = act(config, s1, jnp.zeros((2, 4)), jax.random.key(3))
    assert a.shape == (2,) and a.dtype == jnp.int32
    sizes = update._cache_size(), act._cache_size()
    s2, _ = update(config, s1, _rollout(jax.random.key(4)), jax.random.key(5))
    s3, m3 = update(config, s2, _rollout(jax.random.key(6)), jax.random.key(7))
    act(config, s3, jnp.ones((2, 4)), jax.random.key(8))
    assert (update._cache_size(), act._cache_size()) == sizes
    assert float(m3["learning"]) == 1.0 and int(s2.num_updates) == 2 and int(s3.num_updates) == 4
    assert float(m3["loss"]) > 0 and np.isfinite(float(m3["loss"]))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), s3.learner.params, s2.learner.params)
    assert all(jax.tree.leaves(changed))
    if config.prioritized:
        assert float(s3.buffer.max_priority) != 1.0
    # The policy is greedy on the mean of the distribution.
    obs = jax.random.normal(jax.random.key(9), (16, 4))
    logits = agent.network(config).apply(s3.learner.params, obs)
    assert logits.shape == (16, 2, 11)
    np.testing.assert_array_equal(
        agent.policy(config, agent.policy_params(s3), obs, jax.random.key(0)),
        jnp.argmax(mean_q(logits, atoms(config)), axis=-1),
    )


class _ImageObsAgentEnvSpaces:
    observation_space = Box(0.0, 1.0, (6, 6, 2), jnp.float32)
    action_space = Discrete(3)


def test_image_observations():
    agent = C51(_ImageObsAgentEnvSpaces.observation_space, _ImageObsAgentEnvSpaces.action_space)
    config = _small_config(cnn_channels=(4,), cnn_kernels=(3,), cnn_strides=(1,), cnn_dense=16,
                           learning_starts=0)
    agent.check_config(config)
    state = agent.init(config, jax.random.key(0))
    rollout = _rollout(jax.random.key(1), obs_shape=(6, 6, 2))
    rollout = rollout._replace(action=rollout.action % 3)
    s1, m1 = jax.jit(agent.update)(config, state, rollout, jax.random.key(2))
    assert float(m1["learning"]) == 1.0 and np.isfinite(float(m1["loss"]))
    assert "Conv_0" in str(jax.tree_util.tree_structure(s1.learner.params))
    a = agent.policy(config, s1.learner.params, rollout.obs[0], jax.random.key(3))
    assert a.shape == (2,) and int(a.max()) < 3


def test_train_script_and_load_policy(tmp_path):
    out = str(tmp_path / "c51")
    code = train_script.main([
        "--agent", "c51", "--total-timesteps", "1024", "--learning-starts", "256",
        "--buffer-size", "1024", "--gradient-steps", "2", "--num-atoms", "11",
        "--eval-episodes", "0", "--eval-every", "0", "--quiet", "--out", out,
    ])
    assert code == 0
    policy, env_id = agents.load_policy(out)
    assert env_id == "CartPole-v1"
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    action = policy(obs)
    assert action.shape == (8,) and set(np.unique(action)) <= {0, 1}
