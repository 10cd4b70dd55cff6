"""Agents built from rlkit primitives and envs: DQN, PPO, A2C, with shared runners and tools."""

from agents.base import (  # noqa: F401
    Agent,
    BaseConfig,
    Transition,
    config_from_dict,
    config_to_dict,
    stack_configs,
)
from agents.registry import get_agent, register_agent, registered_agents  # noqa: F401
from agents.runner import make_train  # noqa: F401
from agents.policy import Policy, load_policy  # noqa: F401
from agents import dqn, ppo, a2c  # noqa: F401  (register the built-in agents)
