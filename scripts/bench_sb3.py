"""The Stable-Baselines3 side of the benchmarks, in a module that loads no JAX and no rlkit.

A peer's timed process (``scripts/bench_qrdqn.py`` runs ``python scripts/bench_sb3.py
--qrdqn-child SPEC``) should pay for its own imports only. ``sb3_greedy_evaluations`` is also used
in-process by ``scripts/bench_dqn.py``.
"""

from __future__ import annotations

import argparse
import json
import time

__all__ = ["THRESHOLD", "qrdqn_child", "sb3_greedy_evaluations"]

#: CartPole-v1's reward threshold (Gymnasium's ``spec.reward_threshold``): "solved".
THRESHOLD = 475.0


def sb3_greedy_evaluations(
    name: str,
    eval_every: int,
    episodes: int,
    threshold: float = THRESHOLD,
    env_id: str = "CartPole-v1",
):
    """A Stable-Baselines3 callback that evaluates the greedy policy and stops at ``threshold``.

    Whenever ``model.num_timesteps`` crosses a multiple of ``eval_every`` (env steps over all the
    model's envs), ``evaluate_policy`` plays ``episodes`` deterministic episodes of a fresh
    ``gym.make(env_id)``; training stops after the first evaluation whose mean is >= ``threshold``.
    The callback keeps ``eval_s`` (seconds spent evaluating), ``solved_at`` (env steps, or None) and
    ``evaluations``: ``(env_steps, mean return, time.time() at its end)`` per evaluation.
    """
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    class GreedyEvaluations(BaseCallback):
        def __init__(self):
            super().__init__()
            self.eval_env = gym.make(env_id)
            self.eval_s = 0.0
            self.solved_at = None
            self.evaluations: list[tuple[int, float, float]] = []
            self._last = 0

        def _on_step(self) -> bool:
            if self.num_timesteps // eval_every == self._last // eval_every:
                self._last = self.num_timesteps
                return True
            self._last = self.num_timesteps
            t0 = time.perf_counter()
            mean, _ = evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=episodes, deterministic=True
            )
            self.eval_s += time.perf_counter() - t0
            self.evaluations.append((self.num_timesteps, float(mean), time.time()))
            print(f"  {name:6s} {self.num_timesteps:>7d} steps  greedy return {mean:.1f}",
                  flush=True)
            if mean >= threshold:
                self.solved_at = self.num_timesteps
                return False
            return True

    return GreedyEvaluations()


def qrdqn_child(spec_path: str) -> None:
    """The sb3-contrib QR-DQN process of ``scripts/bench_qrdqn.py``: train one seed, write its
    evaluations (epoch times) as JSON."""
    with open(spec_path) as f:
        spec = json.load(f)
    import torch
    from sb3_contrib import QRDQN
    from stable_baselines3.common.env_util import make_vec_env
    from torch import nn

    torch.set_num_threads(spec["torch_threads"])
    s = spec["settings"]
    kwargs = json.loads(json.dumps(s["kwargs"]))
    kwargs["train_freq"] = tuple(kwargs["train_freq"])
    pk = kwargs["policy_kwargs"]
    pk["activation_fn"] = getattr(nn, pk["activation_fn"])
    if s["anneal_lr"]:
        lr = kwargs["learning_rate"]
        kwargs["learning_rate"] = lambda progress_remaining: lr * progress_remaining
    model_start = time.time()
    env = make_vec_env("CartPole-v1", n_envs=s["n_envs"], seed=spec["seed"])
    model = QRDQN("MlpPolicy", env, seed=spec["seed"], verbose=0, device="cpu", **kwargs)
    cb = sb3_greedy_evaluations("sb3", spec["eval_every"], spec["episodes"])
    model.learn(s["total_timesteps"], callback=cb)
    result = {"evaluations": cb.evaluations, "model_start": model_start, "eval_s": cb.eval_s,
              "env_steps": int(model.num_timesteps), "end": time.time()}
    with open(spec["result"], "w") as f:
        json.dump(result, f)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="the SB3 side of scripts/bench_qrdqn.py")
    p.add_argument("--qrdqn-child", required=True, help="the JSON spec bench_qrdqn.py wrote")
    qrdqn_child(p.parse_args(argv).qrdqn_child)


if __name__ == "__main__":
    main()
