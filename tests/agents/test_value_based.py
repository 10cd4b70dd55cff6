"""Tests shared by the value-based agents (``agents.value_based``): every one bootstraps at a
time-limit truncation and not at a termination, checked on one probe env; and the plumbing of
IQN, M-DQN and Rainbow (updates, images, train.py, resume, load_policy, the host backend)."""

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
from agents.runtime.loop import make_train
from agents.training.backends import CompiledBackend
from envs.core import Box, Discrete, Environment, EnvParams, EnvState

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script  # noqa: E402

# --------------------------------------------------------------------------------------------------
# A probe env: reward 1 every step, never terminates, cut by a time limit of 5 steps.
# --------------------------------------------------------------------------------------------------


@struct.dataclass
class _ProbeState(EnvState):
    pass


class TruncationOnlyProbe(Environment):
    """Constant obs, one action, reward 1, only truncation: Q* = 1 / (1 - gamma) everywhere."""

    id = "ProbeTimeLimit"

    @property
    def default_params(self):
        return EnvParams(max_episode_steps=5)

    def reset_env(self, key, params):
        return jnp.ones((1,), jnp.float32), _ProbeState(time=jnp.asarray(0, jnp.int32))

    def step_env(self, key, state, action, params):
        return (
            jnp.ones((1,), jnp.float32),
            _ProbeState(time=state.time + 1),
            jnp.asarray(1.0, jnp.float32),
            jnp.asarray(False),
            {},
        )

    def observation_space(self, params=None):
        return Box(0.0, 1.0, (1,), jnp.float32)

    def action_space(self, params=None):
        return Discrete(1)


#: (agent, the fields that differ from the shared probe config) per case.
PROBE_CASES = {
    "dqn-n1": ("dqn", {"n_step": 1}),
    "dqn-n3": ("dqn", {"n_step": 3}),
    "c51": ("c51", {"num_atoms": 11, "v_min": 0.0, "v_max": 4.0}),
    "qrdqn": ("qrdqn", {"num_quantiles": 11}),
    "iqn": (
        "iqn",
        {
            "num_tau_samples": 8,
            "num_tau_prime_samples": 8,
            "num_quantile_samples": 8,
            "num_cosines": 8,
        },
    ),
    "mdqn": ("mdqn", {"n_step": 3}),
    "rainbow": ("rainbow", {"num_atoms": 11, "v_min": 0.0, "v_max": 4.0}),
}


@pytest.mark.parametrize("case", sorted(PROBE_CASES))
def test_probe_time_limit_learns_bootstrapped_value(case):
    """Bootstrapping at truncation gives Q = 1 / (1 - 0.5) = 2 (the mean of the distribution for
    distributional agents); cuts taken as deaths would give 5/3 or less."""
    name, fields = PROBE_CASES[case]
    env = TruncationOnlyProbe()
    cls = agents.get_agent(name)
    agent = cls(env.observation_space(), env.action_space())
    config = cls.Config(
        **{
            "total_timesteps": 3200,
            "num_envs": 2,
            "rollout_length": 16,
            "gamma": 0.5,
            "learning_rate": 3e-3,
            "learning_starts": 64,
            "gradient_steps": 8,
            "target_update_interval": 8,
            "batch_size": 32,
            "buffer_size": 1000,
            "hidden": (16,),
            "n_step": 3,
            "exploration_fraction": 0.1,
            **fields,
        }
    )
    rs, _ = jax.jit(make_train(agent, env, config))(config, jax.random.key(0))
    q = agent.q_values(config, rs.agent_state.learner.params, jnp.ones((1, 1)))
    assert float(rs.agent_state.buffer.data["truncated"].sum()) > 0
    np.testing.assert_allclose(q[0, 0], 2.0, atol=0.1)


# --------------------------------------------------------------------------------------------------
# Plumbing of the agents on the value-based base without a test file of their own for it:
# the update mask and recompiles, image observations, train.py with seeds, a sweep, a checkpoint
# and an exact resume, load_policy, and the host (Gymnasium) backend.
# --------------------------------------------------------------------------------------------------

#: Small sizes of each agent's own fields, for fast tests.
SMALL = {
    "iqn": {
        "num_tau_samples": 8,
        "num_tau_prime_samples": 8,
        "num_quantile_samples": 8,
        "num_cosines": 8,
    },
    "mdqn": {},
    "rainbow": {"num_atoms": 11},
}


def _flags(name):
    return [f"--{k.replace('_', '-')}={v}" for k, v in SMALL[name].items()]


def _rollout(key, obs_shape, num_actions, t=8, n=2):
    k1, k2, k3 = jax.random.split(key, 3)
    return Transition(
        obs=jax.random.uniform(k1, (t, n) + obs_shape),
        action=jax.random.randint(k2, (t, n), 0, num_actions),
        reward=jnp.ones((t, n)),
        terminated=jax.random.bernoulli(k3, 0.1, (t, n)),
        truncated=jnp.zeros((t, n), bool),
        next_obs=jax.random.uniform(k3, (t, n) + obs_shape),
        extras={},
    )


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("obs_shape", [(4,), (6, 6, 2)], ids=["vector", "image"])
def test_update_mask_no_recompile_and_observations(name, obs_shape):
    cls = agents.get_agent(name)
    agent = cls(Box(0.0, 1.0, obs_shape, jnp.float32), Discrete(3))
    config = cls.Config(
        total_timesteps=512,
        num_envs=2,
        rollout_length=8,
        learning_starts=32,
        gradient_steps=2,
        batch_size=8,
        buffer_size=256,
        hidden=(16,),
        target_update_interval=4,
        cnn_channels=(4,),
        cnn_kernels=(3,),
        cnn_strides=(1,),
        cnn_dense=16,
        **SMALL[name],
    )
    agent.check_config(config)
    state = agent.init(config, jax.random.key(0))
    update, act = jax.jit(agent.update), jax.jit(agent.act)
    # Before learning_starts (16 < 32 steps) nothing moves.
    s1, m1 = update(config, state, _rollout(jax.random.key(1), obs_shape, 3), jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, s1.learner.params, state.learner.params)
    assert float(m1["learning"]) == 0.0 and float(m1["loss"]) == 0.0
    sizes = update._cache_size(), act._cache_size()
    s2, _ = update(config, s1, _rollout(jax.random.key(3), obs_shape, 3), jax.random.key(4))
    s3, m3 = update(config, s2, _rollout(jax.random.key(5), obs_shape, 3), jax.random.key(6))
    a, _ = act(config, s3, jnp.ones((2,) + obs_shape), jax.random.key(7))
    act(config, s3, jnp.zeros((2,) + obs_shape), jax.random.key(8))
    assert (update._cache_size(), act._cache_size()) == (sizes[0], max(sizes[1], 1))
    assert float(m3["learning"]) == 1.0 and int(s3.num_updates) == 4
    assert np.isfinite(float(m3["loss"])) and float(m3["loss"]) != 0.0
    changed = jax.tree.map(lambda x, y: bool(jnp.any(x != y)), s3.learner.params, s2.learner.params)
    assert any(jax.tree.leaves(changed))
    assert a.shape == (2,) and a.dtype == jnp.int32 and int(a.max()) < 3
    if len(obs_shape) == 3:
        assert "Conv_0" in str(jax.tree_util.tree_structure(s3.learner.params))
    # The evaluation policy is greedy on the deterministic action values.
    obs = jax.random.uniform(jax.random.key(9), (5,) + obs_shape)
    np.testing.assert_array_equal(
        agent.policy(config, agent.policy_params(s3), obs, jax.random.key(0)),
        jnp.argmax(agent.q_values(config, s3.learner.params, obs), axis=-1),
    )


@pytest.mark.slow  # 13 to 15 s per agent (40 s for the three, 2 cores); kept out of the CI budget
@pytest.mark.parametrize("name", sorted(SMALL))
def test_train_script_seeds_sweep_resume_load_policy_and_host(name, tmp_path, monkeypatch):
    """Two seeds x two sweep points on the compiled backend, killed after the first checkpoint
    and resumed: the same policies as the uninterrupted run; load_policy; a host run."""
    base = [
        "--agent",
        name,
        "--total-timesteps",
        "1024",
        "--learning-starts",
        "256",
        "--buffer-size",
        "1024",
        "--gradient-steps",
        "2",
        "--batch-size",
        "16",
        "--hidden",
        "16",
        "--eval-episodes",
        "0",
        "--eval-every",
        "0",
        "--quiet",
        "--checkpoint-every",
        "512",
        "--log-every",
        "512",
        *_flags(name),
    ]
    grid = ["--num-seeds", "2", "--sweep", "learning_rate=0.001,0.003"]
    full = str(tmp_path / "full")
    assert train_script.main(base + grid + ["--out", full]) == 0

    original = CompiledBackend.save

    def kill_after_first(self, out, meta):
        original(self, out, meta)
        if meta["env_steps"] == 512:
            raise KeyboardInterrupt

    part = str(tmp_path / "part")
    monkeypatch.setattr(CompiledBackend, "save", kill_after_first)
    assert train_script.main(base + grid + ["--out", part]) == 130
    monkeypatch.setattr(CompiledBackend, "save", original)
    assert train_script.main(["--resume", part, "--quiet"]) == 0
    pa, env_id = agents.load_policy(full)
    pb, _ = agents.load_policy(part)
    assert env_id == "CartPole-v1" and pa.num_seeds == 4
    jax.tree.map(np.testing.assert_array_equal, pa.params, pb.params)
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert pa.select(3)(obs).shape == (8,)

    host = str(tmp_path / "host")
    assert (
        train_script.main(
            base + ["--backend", "gymnasium", "--total-timesteps", "512", "--out", host]
        )
        == 0
    )
    policy, _ = agents.load_policy(host)
    assert set(np.unique(policy(obs))) <= {0, 1}


@pytest.mark.slow  # about a minute per agent on a loaded 2-core CPU
@pytest.mark.parametrize("name", ["dqn", "c51", "qrdqn", "iqn", "mdqn", "rainbow", "pqn"])
def test_cartpole_preset_reaches_475(name, tmp_path):
    """``train.py --agent NAME`` with no other flag (CartPole-v1, seed 0): the kept policy's
    greedy mean over 100 Gymnasium episodes is at least the env's threshold, 475."""
    out = str(tmp_path / name)
    assert train_script.main(["--agent", name, "--quiet", "--out", out]) == 0
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["eval"]["episodes_per_seed"] == 100
    assert summary["eval"]["mean"] >= 475.0, summary["eval"]
