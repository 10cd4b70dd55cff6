"""envs.wrappers (being written)."""
