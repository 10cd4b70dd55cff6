"""rlkit.vtrace (being written)."""

__all__: list[str] = []
