"""k-nearest-neighbour queries on an episodic memory (rlax 0.1.9's `knn_query`)."""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from rlkit.errors import ArgumentError, check_args

__all__ = ["KNNQueryResult", "knn_query"]

Array = chex.Array
MetricFn = Callable[[Array, Array], Array]


@chex.dataclass
class KNNQueryResult:
    """The neighbours of each query point, nearest first.

    Attributes:
      neighbors: the neighbours [Q, K, D].
      neighbor_indices: their rows in the data [Q, K].
      neighbor_neg_distances: their negated distances [Q, K] (largest first).
    """

    neighbors: jnp.ndarray
    neighbor_indices: jnp.ndarray
    neighbor_neg_distances: jnp.ndarray


def squared_euclidean(x: Array, y: Array) -> Array:
    """`sum_i (x_i - y_i)^2`, the default metric of `knn_query`."""
    return jnp.sum(jnp.square(x - y))


def knn_query(
    data: Array, query_points: Array, num_neighbors: int, metric: MetricFn = squared_euclidean
) -> KNNQueryResult:
    """Finds the `num_neighbors` rows of `data` closest to each query point.

    `d[q, n] = metric(query_points[q], data[n])`, and the neighbours are the top-k of `-d`
    (`jax.lax.top_k`, so ties go to the lower index). With the default metric the distances are
    squared Euclidean distances. Under `jit`, `num_neighbors` must be static.

    Args:
      data: the memory [N, D].
      query_points: the queries [Q, D].
      num_neighbors: K; if larger than N, all N rows are returned.
      metric: distance between two points [D], [D] -> [].

    Returns:
      A `KNNQueryResult` sorted by distance, nearest first.
    """
    check_args("knn_query", {"data": data, "query_points": query_points}, 2)
    if data.shape[-1] != query_points.shape[-1]:
        raise ArgumentError(
            f"knn_query: `data` and `query_points` must have the same feature size, got "
            f"{data.shape[-1]} and {query_points.shape[-1]}"
        )
    data = jnp.asarray(data)
    pairwise = jax.vmap(jax.vmap(metric, (None, 0)), (0, None))
    neg_distances, indices = jax.lax.top_k(
        -pairwise(query_points, data), k=min(num_neighbors, data.shape[0])
    )
    return KNNQueryResult(
        neighbors=data[indices], neighbor_indices=indices, neighbor_neg_distances=neg_distances
    )
