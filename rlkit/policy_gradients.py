"""rlkit.policy_gradients (being written)."""

__all__: list[str] = []
