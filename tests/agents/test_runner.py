"""agents.runtime.compile: compile_once and compile_init_and_chunk."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from agents.dqn import DQN
from agents.ppo import PPO
from agents.runtime.compile import ONCE_COMPILER_OPTIONS, compile_once
from agents.runtime.loop import init_runner
from envs.wrappers import make_vec


@pytest.mark.parametrize("agent_cls", [PPO, DQN])
def test_compile_once_computes_what_jit_computes(agent_cls):
    config = agent_cls.default_config("CartPole-v1", total_timesteps=4096)
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = agent_cls(venv.observation_space(env_params), venv.action_space(env_params))

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
        # Unoptimised code may round differently (no FMA contraction). The orthogonal init's
        # Gram-Schmidt passes accumulate that over 64 columns: a few float32 ulps of 1, no more.
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=5e-6)
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


def test_compile_init_and_chunk_runs_what_jit_runs():
    from agents.runtime.compile import compile_init_and_chunk
    from agents.runtime.loop import make_train_chunk

    venv, env_params = make_vec("CartPole-v1", 4)
    agent = PPO(venv.observation_space(env_params), venv.action_space(env_params))
    config = PPO.default_config("CartPole-v1", total_timesteps=2048, num_envs=4, rollout_length=32)
    chunk = make_train_chunk(agent, venv, env_params, 2)

    def init(key):
        return init_runner(agent, venv, env_params, config, key)

    key = jax.random.PRNGKey(5)
    init_c, chunk_c = compile_init_and_chunk(
        init, (key,), lambda c, rs: chunk(c, rs), lambda state: (config, state)
    )
    got, got_metrics = chunk_c(config, init_c(key))
    want, want_metrics = jax.jit(chunk)(config, jax.jit(init)(key))
    assert int(got.update_step) == int(want.update_step) == 2
    np.testing.assert_array_equal(np.asarray(got.obs), np.asarray(want.obs))  # same env steps
    for g, w in zip(jax.tree.leaves(got.agent_state.params), jax.tree.leaves(want.agent_state.params)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(got_metrics["episode_count"]), np.asarray(want_metrics["episode_count"])
    )


def test_compile_init_and_chunk_reraises_an_init_compile_error(monkeypatch):
    # The init compiles in a second thread; its failure must surface in the caller.
    import agents.runtime.compile as runner

    monkeypatch.setattr(runner, "ONCE_COMPILER_OPTIONS", {"xla_no_such_option_for_rlkit": 1})
    with pytest.raises(Exception, match="xla_no_such_option_for_rlkit"):
        runner.compile_init_and_chunk(
            lambda x: x + 1.0, (np.ones(2, np.float32),), lambda s: s * 2.0, lambda s: (s,)
        )
