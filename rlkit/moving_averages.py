"""rlkit.moving_averages (being written)."""

__all__: list[str] = []
