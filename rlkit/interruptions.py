"""Handling of interrupted trajectories (rlax 0.1.9's `fix_step_type_on_interruptions`).

Step types follow `dm_env.StepType`: FIRST = 0, MID = 1, LAST = 2 (rlkit does not import
dm_env; the values are fixed by its API).
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from rlkit.errors import check_args

__all__ = ["fix_step_type_on_interruptions"]

_FIRST, _MID, _LAST = 0, 1, 2


def fix_step_type_on_interruptions(step_type: chex.Array) -> chex.Array:
    """Marks as LAST every MID step that is directly followed by a FIRST step.

    When an environment crashes or is interrupted while a trajectory is written, the LAST step
    before the next FIRST can be missing; this restores it, so that nothing bootstraps across
    the cut. The agent must still tell terminations (discount 0 on LAST) from interruptions
    (discount > 0 on LAST).

        out[t] = LAST if step_type[t] == MID and step_type[t + 1] == FIRST else step_type[t]

    with the step after the last one taken to be MID.

    Args:
      step_type: integer `dm_env` step types [T, B].

    Returns:
      The fixed step types [T, B], same dtype.
    """
    check_args("fix_step_type_on_interruptions", {"step_type": step_type}, 2)
    filler = jnp.full_like(step_type[:1], _MID)
    next_type = jnp.concatenate([step_type[1:], filler], axis=0)
    cut = jnp.logical_and(next_type == _FIRST, step_type == _MID)
    return jnp.where(cut, jnp.asarray(_LAST, step_type.dtype), step_type)
