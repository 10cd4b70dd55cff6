"""agents.dqn (being written)."""
