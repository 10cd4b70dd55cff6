"""envs.pendulum (being written)."""
