"""Benchmark: vectorised JAX evaluation against the usual Python loop over a Gymnasium vector env.

    PYTHONPATH=. python scripts/bench_eval.py                 # 1000 episodes x 8 seeds, both ways
    PYTHONPATH=. python scripts/bench_eval.py --baseline-episodes 100   # shorter baseline

The policy is a 64x64 ReLU MLP (4 -> 64 -> 64 -> 2, argmax), 8 seeds. Its weights are random
(orthogonal, as ``agents.networks``) except that two units of each hidden layer are set to carry the
CartPole controller ``s = theta + 0.5 theta_dot (+ a small seeded cart term)`` as ``relu(s)`` and
``relu(-s)``, and the output layer reads only those two units: ``logits = (relu(-s), relu(s))``.
So every seed balances the pole for all 500 steps (the long-episode case that matters), while every
matmul of a full 64x64 MLP is still computed. A random MLP would end CartPole in ~10-40 steps
and flatter the per-episode rate of both methods.

* JAX: ``agents.evaluation.evaluate(..., backend="jax")``: all 8 x 1000 episodes in one compiled
  call (the median of 3 calls after a warm-up call with the same shapes; the warm-up time, which
  includes compilation, is reported separately).
* Baseline, "the usual way": for each seed, ``gymnasium.make_vec("CartPole-v1", num_envs,
  vectorization_mode="sync")`` stepped in a Python loop with the seed's policy under ``jax.jit``,
  the first ``episodes`` episodes to finish counted (NEXT_STEP autoreset, dummy steps skipped).

Both report episodes/s; the ratio is JAX / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

import envs  # noqa: E402
from agents.evaluation import evaluate  # noqa: E402
from agents.policy import Policy  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

HIDDEN = 64


def mlp_apply(
    params: dict, obs: jax.Array, key: jax.Array, deterministic: bool = True
) -> jax.Array:
    """Greedy actions of a 64x64 ReLU MLP: ``argmax(W3 relu(W2 relu(W1 obs + b1) + b2) + b3)``."""
    del key, deterministic
    h = jax.nn.relu(obs @ params["w1"] + params["b1"])
    h = jax.nn.relu(h @ params["w2"] + params["b2"])
    logits = h @ params["w3"] + params["b3"]
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def balancing_mlp_params(key: jax.Array, num_seeds: int) -> dict:
    """``num_seeds`` stacked MLPs that implement the CartPole controller (see the module doc)."""

    def one(k):
        k1, k2, k3 = jax.random.split(k, 3)
        ortho = jax.nn.initializers.orthogonal(np.sqrt(2))
        w1 = ortho(k1, (4, HIDDEN))
        w2 = ortho(k2, (HIDDEN, HIDDEN))
        cart = 0.02 * jax.random.uniform(k3, (2,))
        gains = jnp.concatenate([cart, jnp.asarray([1.0, 0.5])])
        w1 = w1.at[:, 0].set(gains).at[:, 1].set(-gains)
        w2 = w2.at[:, :2].set(0.0).at[0, 0].set(1.0).at[1, 1].set(1.0)
        w3 = jnp.zeros((HIDDEN, 2)).at[0, 1].set(1.0).at[1, 0].set(1.0)
        b1 = jnp.zeros(HIDDEN)
        b2 = jnp.zeros(HIDDEN)
        return {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3, "b3": jnp.zeros(2)}

    return jax.vmap(one)(jax.random.split(key, num_seeds))


def make_policy(num_seeds: int, key: int = 0):
    env, params = envs.make("CartPole-v1")
    return Policy(
        mlp_apply,
        balancing_mlp_params(jax.random.PRNGKey(key), num_seeds),
        num_seeds,
        "CartPole-v1",
        env.observation_space(params),
        env.action_space(params),
    )


def usual_gymnasium_eval(policy, episodes: int, num_envs: int, seed: int = 0) -> np.ndarray:
    """The usual evaluation: per seed, a Python loop over a Gymnasium vector env, jitted policy.

    Returns ``[S, episodes]`` returns (the first ``episodes`` episodes to finish in each seed's
    vector env, which over-samples short episodes; irrelevant here, all last 500 steps).
    """
    import gymnasium

    act = jax.jit(policy.apply, static_argnums=3)
    key = jax.random.PRNGKey(seed)
    out = []
    for s in range(policy.num_seeds):
        params = jax.tree.map(lambda x: x[s], policy.params)
        venv = gymnasium.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync")
        obs, _ = venv.reset(seed=seed + 1000 * s)
        returns: list[float] = []
        ep_ret = np.zeros(num_envs)
        dummy = np.zeros(num_envs, bool)
        while len(returns) < episodes:
            actions = np.asarray(act(params, jnp.asarray(obs, jnp.float32), key, True))
            obs, reward, terminated, truncated, _ = venv.step(actions)
            ep_ret += np.where(dummy, 0.0, reward)
            done = (terminated | truncated) & ~dummy
            returns.extend(ep_ret[done].tolist())
            ep_ret[done] = 0.0
            dummy = done
        venv.close()
        out.append(returns[:episodes])
    return np.asarray(out)


def benchmark_eval(
    episodes: int = 1000,
    num_seeds: int = 8,
    baseline_episodes: int | None = None,
    baseline_num_envs: int = 16,
    jax_repeats: int = 3,
) -> dict[str, Any]:
    """Episodes/s of the JAX evaluation and of the usual Gymnasium loop, measured in one run.

    Args:
      episodes: episodes per seed for the JAX evaluation.
      num_seeds: policies (seeds) evaluated together.
      baseline_episodes: episodes per seed for the baseline (default: ``episodes``); the rate is
        what is compared, so a smaller number gives the same figure sooner.
      baseline_num_envs: sub-envs of each seed's Gymnasium vector env.
      jax_repeats: timed JAX calls after the warm-up one; their median is reported.

    Returns:
      A dict of figures (episodes, env steps, seconds, episodes/s, steps/s, ratio, machine).
    """
    baseline_episodes = episodes if baseline_episodes is None else baseline_episodes
    policy = make_policy(num_seeds)

    t0 = time.perf_counter()
    evaluate(policy, "CartPole-v1", episodes=episodes, backend="jax", seed=1)
    first_call_s = time.perf_counter() - t0
    times = []
    for seed in range(jax_repeats):  # the median of a few calls: the machine may be shared
        t0 = time.perf_counter()
        result = evaluate(policy, "CartPole-v1", episodes=episodes, backend="jax", seed=seed)
        times.append(time.perf_counter() - t0)
    jax_s = float(np.median(times))
    jax_steps = int(result.lengths.sum())

    t0 = time.perf_counter()
    base_returns = usual_gymnasium_eval(policy, baseline_episodes, baseline_num_envs)
    base_s = time.perf_counter() - t0
    base_steps = int(base_returns.sum())  # +1 reward per step: return == length

    jax_eps = result.returns.size / jax_s
    base_eps = base_returns.size / base_s
    return {
        "policy": "64x64 ReLU MLP wired to balance CartPole (random weights elsewhere)",
        "num_seeds": num_seeds,
        "jax": {
            "episodes": int(result.returns.size),
            "env_steps": jax_steps,
            "mean_return": result.mean(),
            "first_call_s (compile + run)": first_call_s,
            "seconds": jax_s,
            "seconds_all_calls": times,
            "episodes_per_s": jax_eps,
            "steps_per_s": jax_steps / jax_s,
        },
        "gymnasium_loop": {
            "episodes": int(base_returns.size),
            "num_envs_per_seed": baseline_num_envs,
            "env_steps": base_steps,
            "mean_return": float(base_returns.mean()),
            "seconds": base_s,
            "episodes_per_s": base_eps,
            "steps_per_s": base_steps / base_s,
        },
        "speedup": jax_eps / base_eps,
        "machine": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "device": str(jax.devices()[0]),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=1000, help="episodes per seed (JAX)")
    p.add_argument("--num-seeds", type=int, default=8)
    p.add_argument("--baseline-episodes", type=int, default=None,
                   help="episodes per seed for the Gymnasium loop (default: --episodes)")
    p.add_argument("--baseline-num-envs", type=int, default=16)
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    res = benchmark_eval(args.episodes, args.num_seeds, args.baseline_episodes,
                         args.baseline_num_envs)
    j, g = res["jax"], res["gymnasium_loop"]
    print(f"policy: {res['policy']}, {res['num_seeds']} seeds; {res['machine']['device']}, "
          f"{res['machine']['cpu_count']} CPUs, jax {res['machine']['jax']}")
    print(f"{'method':<34} {'episodes':>8} {'env steps':>11} {'seconds':>8} {'episodes/s':>11} "
          f"{'steps/s':>11}")
    print(f"{'JAX evaluate (one compiled call)':<34} {j['episodes']:>8} {j['env_steps']:>11,} "
          f"{j['seconds']:>8.2f} {j['episodes_per_s']:>11,.0f} {j['steps_per_s']:>11,.0f}")
    name = f"Gymnasium sync loop ({g['num_envs_per_seed']} envs/seed)"
    print(f"{name:<34} {g['episodes']:>8} {g['env_steps']:>11,} "
          f"{g['seconds']:>8.2f} {g['episodes_per_s']:>11,.0f} {g['steps_per_s']:>11,.0f}")
    print(f"speedup: {res['speedup']:.1f}x  (JAX first call incl. compile: "
          f"{j['first_call_s (compile + run)']:.2f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
