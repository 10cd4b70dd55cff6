"""Registers the classic-control envs (being written)."""
