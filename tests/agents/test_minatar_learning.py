"""A small learning test on pixels: PPO with a CNN torso on MinAtar Breakout beats random play.

The budget is tiny (30k env steps, 8 envs x 16 steps per update): a greedy policy that tracks the
ball already scores several bricks per episode, where uniformly random play scores about 0.5.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import envs
import agents
from agents import PPO, make_train
from agents.evaluation import evaluate
from agents.policy import Policy

ENV_ID = "MinAtar/Breakout-v1"


def test_ppo_cnn_beats_random_play_on_minatar_breakout():
    config = PPO.default_config(
        ENV_ID,
        total_timesteps=30_000,
        num_envs=8,
        rollout_length=16,
        num_minibatches=1,
        num_epochs=4,
        learning_rate=2.5e-3,
        anneal_lr=False,
        cnn_channels=(8,),
        cnn_dense=64,
    )
    env, env_params = envs.make(ENV_ID)
    agent = PPO(env.observation_space(env_params), env.action_space(env_params))
    assert config.cnn_kernels == (3,)  # the MinAtar preset's network, narrowed
    rs, _ = jax.jit(make_train(agent, ENV_ID, config))(config, jax.random.PRNGKey(0))

    def apply(params, obs, key, deterministic=True):
        return agent.policy(config, params, obs, key, deterministic)

    spaces = (env.observation_space(env_params), env.action_space(env_params))
    trained = Policy(apply, agent.policy_params(rs.agent_state), None, ENV_ID, *spaces)

    def uniform(params, obs, key, deterministic=True):
        del params, deterministic
        return jax.random.randint(key, obs.shape[:1], 0, env.action_space(env_params).n)

    random_play = Policy(uniform, jnp.zeros(()), None, ENV_ID, *spaces)
    learned = evaluate(trained, ENV_ID, episodes=50, seed=1).returns.mean()
    baseline = evaluate(random_play, ENV_ID, episodes=50, seed=1, deterministic=False)
    baseline = baseline.returns.mean()
    assert baseline < 1.0
    assert learned > max(2.0, 3 * baseline), (learned, baseline)


def test_pqn_and_rainbow_minatar_presets_use_the_minatar_network():
    """Every MinAtar id gets PQN's and Rainbow's presets: the MinAtar paper's torso (one 3x3
    convolution of 16 channels, 128 units), PQN's parallel-env settings, Rainbow's parts."""
    from agents.networks import conv_spec
    from agents.presets import minatar_ids

    ids = minatar_ids()
    assert len(ids) == 10
    pqn_cls, rainbow_cls = agents.get_agent("pqn"), agents.get_agent("rainbow")
    for env_id in ids:
        env, env_params = envs.make(env_id)
        obs_space, act_space = env.observation_space(env_params), env.action_space(env_params)
        for cls in (pqn_cls, rainbow_cls):
            config = cls.default_config(env_id)
            spec = conv_spec(config, obs_space)
            assert (spec.channels, spec.kernels, spec.strides, spec.dense) == ((16,), (3,), (1,), 128)
            assert config.total_timesteps == 5_000_000
        pqn = pqn_cls.default_config(env_id)
        assert (pqn.num_envs, pqn.rollout_length, pqn.num_epochs, pqn.num_minibatches) == (
            128, 32, 2, 32
        )
        assert (pqn.q_lambda, pqn.optimizer, pqn.anneal_lr, pqn.layer_norm) == (
            0.65, "adam", True, True
        )
        rainbow = rainbow_cls.default_config(env_id)
        assert rainbow.noisy and rainbow.prioritized and rainbow.dueling and rainbow.double_q
        assert rainbow.exploration_initial_eps == rainbow.exploration_final_eps == 0.0
        assert (rainbow.num_atoms, rainbow.n_step) == (51, 3)
    # The Q-networks take MinAtar frames: [B, 10, 10, C] -> [B, A] (Rainbow: [B, A, 51]).
    env, env_params = envs.make("MinAtar/Seaquest-v1")
    obs_space, act_space = env.observation_space(env_params), env.action_space(env_params)
    obs = jnp.zeros((2, *obs_space.shape), obs_space.dtype)
    for cls, shape in ((pqn_cls, (2, act_space.n)), (rainbow_cls, (2, act_space.n, 51))):
        agent = cls(obs_space, act_space)
        net = agent.network(cls.default_config("MinAtar/Seaquest-v1"))
        params = jax.eval_shape(net.init, jax.random.PRNGKey(0), obs)
        assert jax.eval_shape(net.apply, params, obs).shape == shape
