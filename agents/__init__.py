"""Agents built from rlkit primitives and envs, and the training job that runs them.

    import agents
    agents.get_agent("dqn")                       # an agent class (see registered_agents())
    train = agents.make_train("ppo", "CartPole-v1", config)   # a whole run as one pure function
    policy, env_id = agents.load_policy("runs/x")  # a trained policy from its run directory
    agents.train(agents.RunArgs(agent="dqn"), agents.DQN.default_config("CartPole-v1"))

Layers (imports go down only; ``tests/test_layers.py`` enforces it): the contract
(``base``, ``registry``, ``networks``), the algorithms (``off_policy``, ``value_based``,
``actor_critic``, ``dqn``, ``ppo``, ``a2c``, ``c51``, ``qrdqn``, ``iqn``, ``mdqn``, ``rainbow``,
``pqn``),
``runtime`` (loops, devices, compilation), ``runs`` (the run directory), ``policy``,
``evaluation`` and ``training`` (the job behind ``scripts/train.py``).
"""

from agents import (  # noqa: F401  (register the built-in agents)
    a2c,
    c51,
    ddpg,
    dqn,
    impala,
    iqn,
    mdqn,
    ppo,
    pqn,
    qrdqn,
    rainbow,
    sac,
    td3,
)
from agents.a2c import A2C, A2CConfig  # noqa: F401
from agents.base import (  # noqa: F401
    Agent,
    BaseConfig,
    Transition,
    config_from_dict,
    config_to_dict,
    stack_configs,
)
from agents.dqn import DQN, DQNConfig  # noqa: F401
from agents.impala import IMPALA, ImpalaConfig  # noqa: F401
from agents.policy import Policy, load_policy  # noqa: F401
from agents.ppo import PPO, PPOConfig  # noqa: F401
from agents.registry import get_agent, register_agent, registered_agents  # noqa: F401
from agents.runs.spec import RunArgs  # noqa: F401
from agents.runtime.loop import make_train  # noqa: F401
from agents.training.job import train  # noqa: F401

__all__ = [
    "A2C",
    "A2CConfig",
    "Agent",
    "BaseConfig",
    "DQN",
    "DQNConfig",
    "IMPALA",
    "ImpalaConfig",
    "PPO",
    "PPOConfig",
    "Policy",
    "RunArgs",
    "Transition",
    "config_from_dict",
    "config_to_dict",
    "get_agent",
    "load_policy",
    "make_train",
    "register_agent",
    "registered_agents",
    "stack_configs",
    "train",
]
