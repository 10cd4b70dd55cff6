"""envs.acrobot (being written)."""
