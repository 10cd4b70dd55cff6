"""Noise-based exploration: Gaussian and Ornstein-Uhlenbeck action noise, Dirichlet prior noise.

Names, arguments and random draws follow rlax 0.1.9: for the same key the functions return the
same numbers as `rlax.add_gaussian_noise`, `rlax.add_ornstein_uhlenbeck_noise` and
`rlax.add_dirichlet_noise`.

rlax's `add_ornstein_uhlenbeck_noise` returns only the noisy action, so the caller cannot carry
the process state to the next step. `ornstein_uhlenbeck_noise` returns the new noise itself;
carry it and add it to the action:

    noise = ornstein_uhlenbeck_noise(key, noise, damping, stddev)
    action = action + noise          # == add_ornstein_uhlenbeck_noise(key, action, old_noise, ...)

`episodic_memory_intrinsic_rewards` is the episodic novelty bonus of Never Give Up / Agent57. It
fixes two defects of rlax's version by default (see its docstring); pass
`reproduce_rlax_defects=True` for rlax's numbers.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlkit.episodic_memory import knn_query
from rlkit.errors import check, check_args, check_shape

__all__ = [
    "IntrinsicRewardState",
    "add_dirichlet_noise",
    "add_gaussian_noise",
    "add_ornstein_uhlenbeck_noise",
    "episodic_memory_intrinsic_rewards",
    "ornstein_uhlenbeck_noise",
]

Array = chex.Array
Numeric = chex.Numeric


def add_gaussian_noise(key: Array, action: Array, stddev: Numeric) -> Array:
    """Adds independent Gaussian noise to a continuous action: `a + stddev * z`, `z ~ N(0, I)`.

    As in DDPG / TD3 exploration ("Addressing Function Approximation Error in Actor-Critic
    Methods" by Fujimoto et al., https://arxiv.org/abs/1802.09477).

    Args:
      key: PRNG key.
      action: float action, scalar or [D].
      stddev: scalar noise standard deviation.

    Returns:
      Noisy action shaped like `action` (not clipped to any bounds).
    """
    check("add_gaussian_noise", chex.assert_rank, {"action": action}, {0, 1})
    check("add_gaussian_noise", chex.assert_type, {"action": action}, float)
    return action + jax.random.normal(key, action.shape, action.dtype) * stddev


def ornstein_uhlenbeck_noise(
    key: Array, noise_tm1: Array, damping: Numeric, stddev: Numeric
) -> Array:
    """One step of the discretised Ornstein-Uhlenbeck process used for DDPG exploration.

    See "On the theory of the Brownian motion" by Uhlenbeck and Ornstein (1930) and
    "Continuous control with deep reinforcement learning" by Lillicrap et al.
    (https://arxiv.org/abs/1509.02971):

        noise_t = (1 - damping) * noise_tm1 + stddev * z_t,   z_t ~ N(0, I)

    The stationary standard deviation is `stddev / sqrt(1 - (1 - damping)^2)`.

    Args:
      key: PRNG key.
      noise_tm1: the previous noise [D] (zeros at the start of an episode).
      damping: scalar in (0, 1]; 1 gives independent Gaussian noise.
      stddev: scalar standard deviation of the innovation.

    Returns:
      The new noise [D]; carry it to the next step.
    """
    check("ornstein_uhlenbeck_noise", chex.assert_rank, {"noise_tm1": noise_tm1}, 1)
    check("ornstein_uhlenbeck_noise", chex.assert_type, {"noise_tm1": noise_tm1}, float)
    innovation = jax.random.normal(key, noise_tm1.shape, noise_tm1.dtype) * stddev
    return (1.0 - damping) * noise_tm1 + innovation


def add_ornstein_uhlenbeck_noise(
    key: Array, action: Array, noise_tm1: Array, damping: Numeric, stddev: Numeric
) -> Array:
    """Adds one step of Ornstein-Uhlenbeck noise to a continuous action (rlax's signature).

    `a + noise_t` with `noise_t = (1 - damping) noise_tm1 + stddev z_t`; see
    `ornstein_uhlenbeck_noise` for the process and for the carried noise that this function
    does not return.

    Args:
      key: PRNG key.
      action: float action [D].
      noise_tm1: the previous noise [D].
      damping: scalar in (0, 1].
      stddev: scalar standard deviation of the innovation.

    Returns:
      Noisy action [D].
    """
    check(
        "add_ornstein_uhlenbeck_noise",
        chex.assert_rank,
        {"action": action, "noise_tm1": noise_tm1},
        1,
    )
    check(
        "add_ornstein_uhlenbeck_noise",
        chex.assert_type,
        {"action": action, "noise_tm1": noise_tm1},
        float,
    )
    check(
        "add_ornstein_uhlenbeck_noise",
        chex.assert_equal_shape,
        {"action": action, "noise_tm1": noise_tm1},
    )
    return action + ornstein_uhlenbeck_noise(key, noise_tm1, damping, stddev)


def add_dirichlet_noise(
    key: Array, prior: Array, dirichlet_alpha: float, dirichlet_fraction: float
) -> Array:
    """Mixes a policy prior with symmetric Dirichlet noise, as at the root of AlphaZero's search.

    See "Mastering the game of Go without human knowledge" by Silver et al. (2017) and
    "Mastering Atari, Go, Chess and Shogi by Planning with a Learned Model" by Schrittwieser et
    al. (https://arxiv.org/abs/1911.08265):

        noise ~ Dirichlet(alpha, ..., alpha)
        noisy_prior = (1 - fraction) * prior + fraction * noise

    AlphaZero uses alpha = 0.3 (chess), 0.15 (shogi), 0.03 (Go) and fraction 0.25; MuZero uses
    alpha = 0.25 on Atari.

    Args:
      key: PRNG key.
      prior: policy probabilities [B, A] (as in rlax, one noise vector per row) or [A].
      dirichlet_alpha: concentration of the symmetric Dirichlet (Python float, as rlax).
      dirichlet_fraction: mixing weight of the noise in [0, 1] (Python float, as rlax).

    Returns:
      Noisy prior shaped like `prior`; rows still sum to 1 if the prior's rows do.
    """
    check("add_dirichlet_noise", chex.assert_rank, {"prior": prior}, {1, 2})
    check("add_dirichlet_noise", chex.assert_type, {"prior": prior}, float)
    check(
        "add_dirichlet_noise",
        chex.assert_type,
        {"dirichlet_alpha": dirichlet_alpha, "dirichlet_fraction": dirichlet_fraction},
        float,
    )
    num_actions = prior.shape[-1]
    alpha = jnp.full((num_actions,), dirichlet_alpha, prior.dtype)
    noise = jax.random.dirichlet(key, alpha, shape=prior.shape[:-1], dtype=prior.dtype)
    return (1.0 - dirichlet_fraction) * prior + dirichlet_fraction * noise


@chex.dataclass
class IntrinsicRewardState:
    """State of `episodic_memory_intrinsic_rewards`: the memory and running distance statistics.

    Attributes:
      memory: stored embeddings [max_memory_size, D] (a ring buffer).
      next_memory_index: where the next embedding is written.
      distance_sum: running sum of the squared k-NN distances seen so far.
      distance_count: number of distances in `distance_sum`.
    """

    memory: jnp.ndarray
    next_memory_index: chex.Scalar = 0
    distance_sum: Array | chex.Scalar = 0
    distance_count: chex.Scalar = 0


def episodic_memory_intrinsic_rewards(
    embeddings: Array,
    num_neighbors: int,
    reward_scale: float,
    intrinsic_reward_state: IntrinsicRewardState | None = None,
    constant: float = 1e-3,
    epsilon: float = 1e-4,
    cluster_distance: float = 8e-3,
    max_similarity: float = 8.0,
    max_memory_size: int = 30_000,
    reproduce_rlax_defects: bool = False,
) -> tuple[Array, IntrinsicRewardState]:
    """Episodic novelty rewards from a k-NN kernel over a memory of embeddings (NGU, Agent57).

    See "Never Give Up: Learning Directed Exploration Strategies" by Puigdomenech Badia et al.
    (2020, https://arxiv.org/abs/2003.13350), Alg. 1, and "Agent57" (arXiv:2002.06038). For an
    embedding x with k nearest memories x_k at squared distances d_k^2, and d_m^2 the running
    mean of all squared k-NN distances seen so far:

        rate_k = max(d_k^2 / (d_m^2 + c) - xi, 0)
        K_k = eps / (rate_k + eps)
        s = sqrt(sum_k K_k) + c
        r = beta * (1 / s if s <= s_max else 0)

    The memory is queried first, then the embeddings are written into it as a ring buffer.
    Under `jit`, `num_neighbors` (and `max_memory_size`) must be static.

    Two defects of rlax 0.1.9 are fixed unless `reproduce_rlax_defects=True`: rlax takes the
    k-NN result's *negated* squared distances as the squared distances, so its running sum
    `distance_sum` is negative and the rate is `d_k^2 / (d_m^2 - c)` (negative, and so 0 after
    the clip, while d_m^2 < c); and it returns `next_memory_index = start + (M % size)` instead
    of `(start + M) % size`, so the index grows without bound (it is reduced modulo the size
    when used, so the memory contents agree).

    Args:
      embeddings: new state embeddings [M, D].
      num_neighbors: k, the number of neighbours in the kernel sum.
      reward_scale: beta, the scale of the reward.
      intrinsic_reward_state: the state from the previous call; None on the first call, which
        starts from a memory of `inf` whose first `num_neighbors` rows are zeros.
      constant: c, for numerical stability of the normalisation and the similarity.
      epsilon: eps of the kernel.
      cluster_distance: xi, below which a distance rate counts as 0.
      max_similarity: s_max, above which the reward is 0.
      max_memory_size: number of rows of the memory.
      reproduce_rlax_defects: reproduce rlax 0.1.9's numbers exactly (see above).

    Returns:
      `(rewards [M], new IntrinsicRewardState)`.
    """
    fn = "episodic_memory_intrinsic_rewards"
    check_args(fn, {"embeddings": embeddings}, 2)
    feature_size = embeddings.shape[-1]
    if intrinsic_reward_state is None:
        memory = jnp.full((max_memory_size, feature_size), jnp.inf)
        memory = memory.at[:num_neighbors].set(0.0)
        intrinsic_reward_state = IntrinsicRewardState(memory=memory)
    else:
        check_shape(
            fn,
            "intrinsic_reward_state.memory",
            intrinsic_reward_state.memory,
            (max_memory_size, feature_size),
            "[max_memory_size, embedding size]",
        )
    memory = jnp.asarray(intrinsic_reward_state.memory)
    neighbours = knn_query(memory, embeddings, num_neighbors)
    num_new = embeddings.shape[0]
    start = intrinsic_reward_state.next_memory_index % memory.shape[0]
    rows = (jnp.arange(num_new) + start) % memory.shape[0]
    memory = memory.at[rows].set(embeddings)

    if reproduce_rlax_defects:
        sq_distances = neighbours.neighbor_neg_distances
        next_index = start + num_new % max_memory_size
    else:
        sq_distances = -neighbours.neighbor_neg_distances
        next_index = (start + num_new) % max_memory_size
    distance_sum = intrinsic_reward_state.distance_sum + jnp.sum(sq_distances)
    distance_count = intrinsic_reward_state.distance_count + sq_distances.size
    mean_sq_distance = distance_sum / distance_count
    rate = jnp.maximum(sq_distances / (mean_sq_distance + constant) - cluster_distance, 0.0)
    kernel = epsilon / (rate + epsilon)
    similarity = jnp.sqrt(jnp.sum(kernel, axis=-1)) + constant
    reward = jnp.where(similarity > max_similarity, 0.0, 1.0 / similarity) * reward_scale
    return reward, IntrinsicRewardState(
        memory=memory,
        next_memory_index=next_index,
        distance_sum=distance_sum,
        distance_count=distance_count,
    )
