"""rlkit.transforms (being written)."""

__all__: list[str] = []
