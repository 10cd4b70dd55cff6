"""rlkit.value_learning (being written)."""

__all__: list[str] = []
