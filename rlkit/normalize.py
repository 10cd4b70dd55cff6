"""rlkit.normalize (being written)."""

__all__: list[str] = []
