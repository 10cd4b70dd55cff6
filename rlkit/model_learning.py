"""Subsequence sampling for model learning (rlax 0.1.9 names and semantics)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import ArgumentError

__all__ = ["extract_subsequences", "sample_start_indices"]


def extract_subsequences(
    trajectories: chex.Array,
    start_indices: chex.Array,
    subsequence_len: int = 1,
    max_valid_start_idx: int | None = None,
) -> chex.Array:
    """Gathers (possibly overlapping) subsequences from a batch of time-major trajectories.

    `out[k, b, j] = trajectories[start_indices[b, j] + k, b]` for `k < subsequence_len`.
    Without `max_valid_start_idx` nothing checks that the windows stay inside the data (JAX
    clamps out-of-range indices), as in rlax.

    Args:
      trajectories: batch of trajectories [T, B, ...].
      start_indices: integer start times [B, N].
      subsequence_len: length of each subsequence (static).
      max_valid_start_idx: the largest start index the caller may pass; if given, `T` must be
        at least `max_valid_start_idx + subsequence_len`.

    Returns:
      Subsequences [subsequence_len, B, N, ...].

    Raises:
      ArgumentError: if `trajectories` is shorter than `max_valid_start_idx + subsequence_len`.
    """
    if max_valid_start_idx is not None:
        min_len = max_valid_start_idx + subsequence_len
        if trajectories.shape[0] < min_len:
            raise ArgumentError(
                f"extract_subsequences: `trajectories` is too short: Expected len >= {min_len} "
                f"(max_valid_start_idx + subsequence_len), but trajectories length is: "
                f"{trajectories.shape[0]}."
            )
    batch_size, num_starts = start_indices.shape
    time_idx = jnp.arange(subsequence_len)[:, None, None] + start_indices[None]
    batch_idx = jnp.broadcast_to(
        jnp.arange(batch_size)[None, :, None], (subsequence_len, batch_size, num_starts)
    )
    return trajectories[time_idx, batch_idx]


def sample_start_indices(
    rng_key: chex.PRNGKey, batch_size: int, num_start_indices: int, max_valid_start_idx: int
) -> chex.Array:
    """Samples distinct start indices in {0, ..., max_valid_start_idx} for each trajectory.

    One key per trajectory (`jax.random.split(rng_key, batch_size)`), and without replacement
    within a trajectory; the same draw as rlax for the same key.

    Args:
      rng_key: PRNG key.
      batch_size: number of trajectories B.
      num_start_indices: starts per trajectory N (at most `max_valid_start_idx + 1`).
      max_valid_start_idx: largest allowed start index.

    Returns:
      Integer start indices [B, N].
    """
    window = jnp.arange(max_valid_start_idx + 1)
    keys = jax.random.split(rng_key, batch_size)
    choose = jax.vmap(
        lambda key, entries: jax.random.choice(
            key, entries, shape=(num_start_indices,), replace=False
        )
    )
    return choose(keys, jnp.tile(window, (batch_size, 1)))
