"""envs.mountain_car (being written)."""
