"""Target-network switching: choose between two parameter pytrees (rlax 0.1.9 names).

optax offers the same through `optax.periodic_update`; these keep rlax's signatures so ported
code runs.
"""

from __future__ import annotations

from typing import Any

import chex
import jax

__all__ = ["conditional_update", "periodic_update"]


def conditional_update(new_tensors: Any, old_tensors: Any, is_time: chex.Numeric) -> Any:
    """Returns `new_tensors` where `is_time` holds, else `old_tensors`, leaf by leaf.

    Works under `jit` with a traced `is_time` (both trees are evaluated).

    Args:
      new_tensors: pytree of arrays.
      old_tensors: pytree with the same structure, shapes and dtypes.
      is_time: boolean scalar.

    Returns:
      The selected pytree.
    """
    return jax.tree_util.tree_map(
        lambda new, old: jax.lax.select(is_time, new, old), new_tensors, old_tensors
    )


def periodic_update(
    new_tensors: Any, old_tensors: Any, steps: chex.Array, update_period: int
) -> Any:
    """Switches to `new_tensors` every `update_period` steps: when `steps % update_period == 0`.

    The periodic target-network update of "Human-level control through deep reinforcement
    learning" by Mnih et al. (2015).

    Args:
      new_tensors: pytree of arrays (e.g. online parameters).
      old_tensors: pytree of the same structure (e.g. target parameters).
      steps: integer scalar step counter.
      update_period: period of the switch.

    Returns:
      `new_tensors` on update steps, else `old_tensors`.
    """
    return conditional_update(new_tensors, old_tensors, is_time=steps % update_period == 0)
