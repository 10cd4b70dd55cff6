"""rlkit.distributional (being written)."""

__all__: list[str] = []
