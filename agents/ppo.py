"""agents.ppo (being written)."""
