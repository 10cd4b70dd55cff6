"""Tests shared by the value-based agents (``agents.value_based``): every one bootstraps at a
time-limit truncation and not at a termination, checked on one probe env."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import agents
from agents.runtime.loop import make_train
from envs.core import Box, Discrete, Environment, EnvParams, EnvState

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
