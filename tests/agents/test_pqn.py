"""Tests for agents.pqn: the Q(lambda) targets and the loss by hand, bootstrapping at truncation
and not at termination on probe envs, image observations, and the training job on the compiled
and the host backend (train.py, load_policy, exact resume)."""

import csv
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import agents
from agents.base import Transition
from agents.pqn import PQN, PQNBatch, PQNConfig, pqn_epsilon, pqn_loss, pqn_targets
from agents.registry import get_agent
from agents.runtime.loop import make_train
from agents.training.backends import CompiledBackend
from envs.core import Box, Discrete, Environment, EnvParams, EnvState
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script  # noqa: E402

# --------------------------------------------------------------------------------------------------
# Targets and loss on a tiny rollout, by hand
# --------------------------------------------------------------------------------------------------


def _linear_q(params, obs):
    """Q(s) = s @ W: obs [..., 2] -> [..., 2]."""
    return obs @ params


W = jnp.array([[1.0, 0.0], [0.0, 2.0]])


def _rollout():
    """One env, 3 steps: step 0 is truncated (its final observation (4, 0) is worth 4, while the
    next obs (0, 0) is the new episode's reset), step 1 terminates (its next obs (9, 9) is ignored).
    """
    obs = jnp.array([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]])
    next_obs = jnp.array([[[4.0, 0.0]], [[9.0, 9.0]], [[1.0, 1.0]]])
    return Transition(
        obs=obs,
        action=jnp.array([[0], [1], [1]], jnp.int32),
        reward=jnp.array([[1.0], [2.0], [3.0]]),
        terminated=jnp.array([[False], [True], [False]]),
        truncated=jnp.array([[True], [False], [False]]),
        next_obs=next_obs,
        extras={},
    )


def test_targets_bootstrap_on_truncation_not_termination():
    # gamma = .5, lambda = .5; greedy next values max_a Q(s'): (4, 18, 2).
    # G2 = 3 + .5 * 2 = 4 (the rollout's last step bootstraps fully);
    # G1 = 2 (terminated: 18 is ignored);
    # G0 = 1 + .5 * 4 = 3 (truncated: the final observation's value, no trace into G1).
    config = PQNConfig(gamma=0.5, q_lambda=0.5)
    targets = pqn_targets(_linear_q, W, config, _rollout())
    np.testing.assert_allclose(targets[:, 0], [3.0, 2.0, 4.0], rtol=1e-6)
    # Without the episode ends: G1 = 2 + .5 * (.5 * 18 + .5 * 4) = 7.5, G0 = 1 + .5 * (2 + 3.75).
    no_ends = _rollout()._replace(
        terminated=jnp.zeros((3, 1), bool), truncated=jnp.zeros((3, 1), bool)
    )
    targets = pqn_targets(_linear_q, W, config, no_ends)
    np.testing.assert_allclose(targets[:, 0], [3.875, 7.5, 4.0], rtol=1e-6)


def test_loss_matches_hand_computation_and_stops_target_gradients():
    batch = PQNBatch(
        obs=jnp.array([[1.0, 0.0], [0.0, 1.0]]),
        action=jnp.array([0, 1], jnp.int32),
        target=jnp.array([3.0, 1.0]),
    )
    # Q(s, a) = (1, 2): loss = mean(.5 * (1 - 3)^2, .5 * (2 - 1)^2) = (2 + .5) / 2 = 1.25.
    loss, q_taken = pqn_loss(_linear_q, W, batch)
    np.testing.assert_allclose(loss, 1.25, rtol=1e-6)
    np.testing.assert_allclose(q_taken, [1.0, 2.0])
    # dL/dW[i, a] = mean over samples of (Q - G) s_i for the taken a: W[0, 0] gets (1 - 3) / 2.
    grads = jax.grad(lambda w: pqn_loss(_linear_q, w, batch)[0])(W)
    np.testing.assert_allclose(grads, [[-1.0, 0.0], [0.0, 0.5]], rtol=1e-6)
    # The targets of a rollout carry no gradient into the parameters.
    config = PQNConfig(gamma=0.5, q_lambda=0.5)
    g = jax.grad(lambda w: jnp.sum(pqn_targets(_linear_q, w, config, _rollout())))(W)
    np.testing.assert_array_equal(g, jnp.zeros_like(W))


def test_epsilon_decays_linearly():
    config = PQNConfig(total_timesteps=1000, exploration_fraction=0.5, exploration_final_eps=0.1)
    np.testing.assert_allclose(
        [float(pqn_epsilon(config, jnp.asarray(s))) for s in (0, 250, 500, 900)],
        [1.0, 0.55, 0.1, 0.1],
        rtol=1e-6,
    )


# --------------------------------------------------------------------------------------------------
# Probe envs: a time limit bootstraps, a termination does not
# --------------------------------------------------------------------------------------------------


@struct.dataclass
class _ProbeState(EnvState):
    pass


class _Probe(Environment):
    """Constant obs, one action, reward 1. ``terminate``: every step terminates (Q* = 1);
    otherwise only the time limit of 5 steps ends episodes (Q* = 1 / (1 - gamma) everywhere)."""

    def __init__(self, terminate: bool):
        self.terminate = terminate

    @property
    def default_params(self):
        return EnvParams(max_episode_steps=5)

    def reset_env(self, key, params):
        return jnp.ones((1,), jnp.float32), _ProbeState(time=jnp.asarray(0, jnp.int32))

    def step_env(self, key, state, action, params):
        obs = jnp.ones((1,), jnp.float32)
        reward = jnp.asarray(1.0, jnp.float32)
        return obs, _ProbeState(time=state.time + 1), reward, jnp.asarray(self.terminate), {}

    def observation_space(self, params=None):
        return Box(0.0, 1.0, (1,), jnp.float32)

    def action_space(self, params=None):
        return Discrete(1)


@pytest.mark.parametrize("terminate, expected", [(False, 2.0), (True, 1.0)])
def test_probe_bootstraps_on_truncation_not_on_termination(terminate, expected):
    """gamma .5: with only time limits Q = 1 / (1 - .5) = 2 (cuts taken as deaths would give less);
    when every step terminates Q = 1 (a bootstrap would give more)."""
    env = _Probe(terminate)
    agent = PQN(env.observation_space(), env.action_space())
    config = PQNConfig(
        total_timesteps=4096,
        num_envs=4,
        rollout_length=16,
        num_minibatches=2,
        num_epochs=2,
        gamma=0.5,
        q_lambda=0.5,
        learning_rate=3e-3,
        hidden=(16,),
    )
    rs, _ = jax.jit(make_train(agent, env, config))(config, jax.random.key(0))
    q = agent.network(config).apply(rs.agent_state.params, jnp.ones((1, 1)))
    np.testing.assert_allclose(q[0, 0], expected, atol=0.05)


# --------------------------------------------------------------------------------------------------
# Agent plumbing
# --------------------------------------------------------------------------------------------------


def _small(**kw):
    return PQNConfig(
        **{
            "total_timesteps": 1024,
            "num_envs": 2,
            "rollout_length": 8,
            "num_minibatches": 2,
            "num_epochs": 2,
            "hidden": (8,),
            **kw,
        }
    )


def test_registered_and_config_errors():
    assert get_agent("pqn") is PQN
    agent = PQN(Box(-1.0, 1.0, (4,), jnp.float32), Discrete(2))
    with pytest.raises(RLKitError, match="--num-minibatches"):
        agent.check_config(_small(num_minibatches=3))
    with pytest.raises(RLKitError, match="--optimizer"):
        agent.check_config(_small(optimizer="sgd"))
    with pytest.raises(RLKitError, match="--q-lambda"):
        agent.check_config(_small(q_lambda=1.5))
    with pytest.raises(RLKitError, match="Discrete"):
        PQN(Box(-1.0, 1.0, (4,), jnp.float32), Box(-1.0, 1.0, (1,), jnp.float32))


def test_image_observations_and_layer_norm():
    agent = PQN(Box(0.0, 1.0, (6, 6, 2), jnp.float32), Discrete(3))
    config = _small(cnn_channels=(4,), cnn_kernels=(3,), cnn_strides=(1,), cnn_dense=16)
    agent.check_config(config)
    state = agent.init(config, jax.random.key(0))
    names = str(jax.tree_util.tree_structure(state.params))
    assert "Conv_0" in names and "LayerNorm_0" in names
    k = jax.random.split(jax.random.key(1), 3)
    rollout = Transition(
        obs=jax.random.uniform(k[0], (8, 2, 6, 6, 2)),
        action=jax.random.randint(k[1], (8, 2), 0, 3),
        reward=jnp.ones((8, 2)),
        terminated=jnp.zeros((8, 2), bool),
        truncated=jnp.zeros((8, 2), bool).at[3, 0].set(True),
        next_obs=jax.random.uniform(k[2], (8, 2, 6, 6, 2)),
        extras={},
    )
    update = jax.jit(agent.update)
    s1, m1 = update(config, state, rollout, jax.random.key(2))
    assert np.isfinite(float(m1["loss"])) and int(s1.env_steps) == 16
    s2, _ = update(config, s1, rollout, jax.random.key(3))
    assert update._cache_size() == 1  # the second call does not recompile
    a = agent.policy(config, s2.params, rollout.obs[0], jax.random.key(4))
    assert a.shape == (2,) and int(a.max()) < 3


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


BASE = [
    "--agent", "pqn", "--total-timesteps", "2048", "--num-envs", "4", "--rollout-length", "32",
    "--num-minibatches", "4", "--num-epochs", "1", "--hidden", "16", "--eval-episodes", "0",
    "--quiet", "--log-every", "512", "--checkpoint-every", "1024",
]  # fmt: skip


def test_train_script_resume_and_load_policy(tmp_path, monkeypatch):
    """train.py on the compiled backend; killed after its first checkpoint and resumed, the run
    ends bit for bit where the uninterrupted one ends; load_policy gives the trained policy."""
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert train_script.main(BASE + ["--out", full]) == 0
    original = CompiledBackend.save

    def kill_after_first(self, out, meta):
        original(self, out, meta)
        if meta["env_steps"] == 1024:
            raise KeyboardInterrupt

    monkeypatch.setattr(CompiledBackend, "save", kill_after_first)
    assert train_script.main(BASE + ["--out", part]) == 130
    monkeypatch.setattr(CompiledBackend, "save", original)
    assert train_script.main(["--resume", part, "--quiet"]) == 0

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("wall_time", "sps")} for r in rows]

    rows = _read_csv(os.path.join(full, "metrics.csv"))
    assert strip(rows) == strip(_read_csv(os.path.join(part, "metrics.csv")))
    assert int(rows[-1]["env_steps"]) == 2048 and float(rows[-1]["epsilon"]) < 1.0
    pa, env_id = agents.load_policy(full)
    pb, _ = agents.load_policy(part)
    assert env_id == "CartPole-v1"
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(pa(obs), pb(obs))
    assert set(np.unique(pa(obs))) <= {0, 1}


def test_host_backend_tiny_run(tmp_path):
    out = str(tmp_path / "host")
    assert train_script.main(BASE + ["--out", out, "--backend", "gymnasium"]) == 0
    assert json.load(open(os.path.join(out, "config.json")))["backend"] == "gymnasium"
    rows = _read_csv(os.path.join(out, "metrics.csv"))
    returns = [float(r["episode_return"]) for r in rows if r["episode_return"]]
    assert returns and all(8 <= x <= 500 for x in returns)
    policy, _ = agents.load_policy(out)
    assert policy(np.zeros((3, 4), np.float32)).shape == (3,)
