"""rlkit.replay (being written)."""

__all__: list[str] = []
