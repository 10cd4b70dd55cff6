"""agents.a2c (being written)."""
