"""A small learning test on pixels: PPO with a CNN torso on MinAtar Breakout beats random play.

The budget is tiny (30k env steps, 8 envs x 16 steps per update): a greedy policy that tracks the
ball already scores several bricks per episode, where uniformly random play scores about 0.5.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import envs
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
