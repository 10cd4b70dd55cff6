"""envs.cartpole (being written)."""
