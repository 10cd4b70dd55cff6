"""agents.evaluation (being written)."""
