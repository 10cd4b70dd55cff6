"""rlkit.exploration (being written)."""

__all__: list[str] = []
