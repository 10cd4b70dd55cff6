"""rlkit.multistep (being written)."""

__all__: list[str] = []
