"""rlkit.pop_art (being written)."""

__all__: list[str] = []
