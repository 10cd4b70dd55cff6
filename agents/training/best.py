"""Greedy evaluations during training, and per run the best policy found so far.

Every ``--eval-every`` env steps each run's greedy policy plays ``--eval-every-episodes`` episodes
(on the backend's evaluation env: rlkit's JAX env for the compiled backend, Gymnasium's for the
host one), with its own run's config (sweep points included). The evaluation seed is derived from
the env step, so a resumed run evaluates exactly as an uninterrupted one. A run's best policy is
replaced when an evaluation scores at least as high as its best so far (the later of equal scores
is kept); a policy with a non-finite parameter or score is never kept. The best policies are
written to ``best_policy.msgpack`` with ``best_policy.json`` at every checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from agents.evaluation import evaluate
from agents.policy import run_policy
from agents.runs import files
from agents.runs.spec import BuiltRun

__all__ = ["BestTracker", "eval_seed", "finite_runs"]


def eval_seed(seed: int, env_steps: int) -> int:
    """The evaluation seed at ``env_steps`` of a run with base seed ``seed``."""
    entropy = [int(seed) & 0xFFFFFFFF, 20_000, int(env_steps)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def finite_runs(params: Any) -> np.ndarray:
    """``[runs]`` bool: whether every parameter of each run (leading axis) is finite."""
    leaves = jax.tree.leaves(params)
    ok = np.ones(np.shape(leaves[0])[0], bool)
    for leaf in leaves:
        a = np.asarray(leaf)
        if a.dtype.kind == "f":
            ok &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return ok


class BestTracker:
    """Evaluations during training and the best policy of each run (module docstring)."""

    def __init__(self, built: BuiltRun, every: int, eval_backend: str, template: Any):
        self.built = built
        self.every = every
        self.episodes = built.args.eval_every_episodes
        self.backend = eval_backend
        # One Policy (one apply function), so the evaluation program compiles once.
        self.policy = run_policy(built.agent, built.stacked_configs, template, built.env_id)
        self.best_return = np.full(built.num_runs, -np.inf)
        self.best_step = np.full(built.num_runs, -1, np.int64)
        self.best_params = None
        self.template = template

    def restore(self, run_dir: str) -> None:
        """Continue from the best policies a checkpointed run saved."""
        meta = files.read_best_meta(run_dir)
        if meta is None:
            return
        self.best_return = np.asarray(
            [-np.inf if x is None else x for x in meta["eval_return"]], np.float64
        )
        self.best_step = np.asarray(meta["env_steps"], np.int64)
        self.best_params = files.load_policy_params(run_dir, self.template, files.BEST_POLICY_FILE)

    def due(self, prev_steps: int, env_steps: int, last: bool) -> bool:
        """Whether an evaluation falls in ``(prev_steps, env_steps]`` (always at the end)."""
        return self.every > 0 and (env_steps // self.every > prev_steps // self.every or last)

    def evaluate(self, params: Any, env_steps: int) -> np.ndarray:
        """Mean greedy return of each run's policy ``params``; updates the best policies."""
        policy = dataclasses.replace(
            self.policy, params={"config": self.policy.params["config"], "params": params}
        )
        result = evaluate(
            policy,
            self.built.env_id,
            episodes=self.episodes,
            backend=self.backend,
            seed=eval_seed(self.built.args.seed, env_steps),
        )
        ret = np.asarray(result.per_seed_mean(), np.float64)
        better = (ret >= self.best_return) & np.isfinite(ret) & finite_runs(params)
        if self.best_params is None:
            self.best_params = params
        else:
            self.best_params = jax.tree.map(
                lambda new, old: np.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
                params,
                self.best_params,
            )
        self.best_return = np.where(better, ret, self.best_return)
        self.best_step = np.where(better, env_steps, self.best_step)
        return ret

    @property
    def has_best(self) -> bool:
        return self.best_params is not None and bool(np.any(self.best_step >= 0))

    def save(self, run_dir: str) -> None:
        """Write ``best_policy.msgpack`` and ``best_policy.json`` (policy first)."""
        if not self.has_best:
            return
        files.save_policy_params(run_dir, self.best_params, files.BEST_POLICY_FILE)
        files.write_best_meta(
            run_dir,
            {
                "eval_return": [float(x) if np.isfinite(x) else None for x in self.best_return],
                "env_steps": self.best_step.tolist(),
                "episodes_per_evaluation": self.episodes,
            },
        )
