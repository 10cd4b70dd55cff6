"""envs.gymnasium (being written)."""
