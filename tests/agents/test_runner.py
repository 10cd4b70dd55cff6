"""agents.runner: compile_once."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from agents.dqn import DQN
from agents.ppo import PPO
from agents.runner import ONCE_COMPILER_OPTIONS, compile_once, init_runner
from envs.wrappers import make_vec


@pytest.mark.parametrize("agent_cls", [PPO, DQN])
def test_compile_once_computes_what_jit_computes(agent_cls):
    venv, env_params = make_vec("CartPole-v1", 4)
    agent = agent_cls(venv.observation_space(env_params), venv.action_space(env_params))
    config = agent_cls.default_config("CartPole-v1", total_timesteps=4096)

    def init(keys):
        return jax.vmap(lambda k: init_runner(agent, venv, env_params, config, k))(keys)

    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    compiled = compile_once(init, keys)
    got, want = compiled(keys), jax.jit(init)(keys)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        if jax.dtypes.issubdtype(g.dtype, jax.dtypes.prng_key):
            g, w = jax.random.key_data(g), jax.random.key_data(w)
        # Unoptimised code may round differently (no FMA contraction): float32 ulps, no more.
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
    # The compiled program takes new keys of the same shape.
    other = jax.random.split(jax.random.PRNGKey(4), 2)
    assert not np.array_equal(
        np.asarray(compiled(other).obs), np.asarray(got.obs)
    )


def test_once_options_are_a_valid_xla_option_set():
    # XLA rejects unknown options at compile time; this is the set the trainer passes.
    assert ONCE_COMPILER_OPTIONS == {"xla_backend_optimization_level": 0}
    f = compile_once(lambda x: x * 2.0 + 1.0, np.ones(3, np.float32))
    np.testing.assert_array_equal(np.asarray(f(np.ones(3, np.float32))), [3.0, 3.0, 3.0])
