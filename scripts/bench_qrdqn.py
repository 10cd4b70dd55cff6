"""Benchmark rlkit's QR-DQN against sb3-contrib's on CartPole-v1: wall time to a greedy 475.

Each seed trains twice, one process after the other (rlkit, then sb3-contrib, then the next
seed), so that both sides see the same load:

- rlkit: ``python scripts/train.py --agent qrdqn --seed S`` with the preset
  (``QRDQN.PRESETS["CartPole-v1"]``) and its greedy evaluations during training (``--eval-every``
  env steps, ``--eval-every-episodes`` episodes, on rlkit's JAX CartPole, as the compiled backend
  evaluates); no final evaluation (``--eval-episodes 0``). By default each run gets an empty JAX
  compilation cache (``RLKIT_JAX_CACHE``), so its compile time is counted in full.
- sb3-contrib: ``QRDQN("MlpPolicy", ...)`` (torch on the CPU, ``--torch-threads`` threads) with the
  preset's hyperparameters translated by ``sb3_settings``, trained by ``learn`` with a callback
  (``scripts.bench_sb3.sb3_greedy_evaluations``) that plays the same number of deterministic
  episodes of Gymnasium's CartPole-v1 at the same env-step interval and stops at the first mean
  >= 475. That process never imports JAX. ``--torch-threads`` defaults to 1: on the shared
  2-core machine torch's default (2 threads) took 15 to 17 s per ``train`` call of 128 gradient
  steps at load average 9, against 0.5 to 0.6 s with 1 thread (its threads spin-wait for a core
  that other jobs hold), so 1 thread is the peer's best case here. (rlkit's XLA CPU programs run
  with ``--xla_cpu_multi_thread_eigen=false``, one thread per device.)

A seed "reaches 475" at the first evaluation whose mean is >= 475. Two times are reported per
seed, evaluations included on both sides:

- process: from starting the process to the end of that evaluation. Measured from outside as the
  process's whole wall time minus the time it spent after that evaluation (rlkit: the rest of its
  run, from ``summary.json`` and ``metrics.csv``; sb3-contrib stops there). So it counts Python
  start-up, imports and exit on both sides.
- in-run: rlkit from the start of ``agents.training.job.train`` (config checks, env, compile,
  training, evaluations: ``metrics.csv``'s ``wall_time``); sb3-contrib from just before the model
  is built to the end of that evaluation (model set-up, ``learn``, evaluations).

Where the settings differ (``sb3_settings``): sb3-contrib's QR-DQN has no double-Q targets (the
target network picks and values the next action; rlkit's preset uses double Q); its Huber
threshold is fixed at 1 (rlkit's preset also uses 1); it Polyak-updates the target between env
steps (every ``target_update_interval`` transitions) while rlkit does it between gradient steps
(every ``target_update_interval`` learner steps), so the interval is translated to the same number
of Polyak steps per env step; its learning rate is annealed from the progress at each ``train``
call, rlkit's once per update, both linearly to 0; networks are initialised differently (torch's
defaults against flax's). Everything else maps one to one.

With ``--profile`` (default) it also times the pieces of rlkit's compiled loop for one seed
(``where_time_goes``): the training chunk, a rollout, the env steps alone, acting alone, the
update (gradient steps with sampling), the gradient steps on a fixed batch, and replay sampling.

    python scripts/benchmark.py qrdqn [--seeds 3] [--eval-every 3840] [--episodes 16]
        [--total-timesteps N] [--warm-cache] [--skip-peer] [--no-profile]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from agents.qrdqn import QRDQN  # noqa: E402
from agents.runs.files import atomic_write_text  # noqa: E402
from agents.runtime.loop import collect_rollout, init_runner, make_train_chunk  # noqa: E402
from envs.wrappers import make_vec  # noqa: E402
from rlkit import replay  # noqa: E402
from scripts.bench_sb3 import THRESHOLD  # noqa: E402

__all__ = [
    "benchmark_qrdqn",
    "first_reach",
    "rlkit_times",
    "sb3_settings",
    "summarise",
    "where_time_goes",
]


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


def preset_config(total_timesteps: int | None = None):
    """rlkit's QR-DQN CartPole-v1 preset (``total_timesteps`` replaced when given)."""
    config = QRDQN.default_config("CartPole-v1")
    if total_timesteps is not None:
        config = config.replace(total_timesteps=int(total_timesteps))
    return config


def sb3_settings(config: Any) -> dict[str, Any]:
    """sb3-contrib ``QRDQN`` keyword arguments (JSON-able) for an rlkit ``QRDQNConfig``.

    ``learning_rate`` is a number; with ``anneal_lr`` the SB3 side anneals it linearly to 0
    (``"anneal_lr": True`` here, turned into a schedule by the SB3 process). ``n_envs`` and
    ``total_timesteps`` are for the vector env and ``learn``. See the module docstring for what
    does not map.
    """
    activations = {"relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "gelu": "GELU", "silu": "SiLU"}
    # rlkit: a Polyak step every target_update_interval learner steps, gradient_steps of them per
    # steps_per_update env steps. SB3: one every target_update_interval env steps.
    target_every = config.target_update_interval * config.steps_per_update // config.gradient_steps
    return {
        "n_envs": int(config.num_envs),
        "total_timesteps": int(config.total_timesteps),
        "anneal_lr": bool(config.anneal_lr),
        "kwargs": {
            "learning_rate": float(config.learning_rate),
            "buffer_size": int(config.buffer_size),
            "learning_starts": int(config.learning_starts),
            "batch_size": int(config.batch_size),
            "tau": float(config.tau),
            "gamma": float(config.gamma),
            "train_freq": [int(config.rollout_length), "step"],  # per env: rollout_length x n_envs
            "gradient_steps": int(config.gradient_steps),
            "n_steps": int(config.n_step),
            "target_update_interval": int(max(1, target_every)),
            "exploration_fraction": float(config.exploration_fraction),
            "exploration_initial_eps": float(config.exploration_initial_eps),
            "exploration_final_eps": float(config.exploration_final_eps),
            "max_grad_norm": float(config.max_grad_norm),
            "policy_kwargs": {
                "n_quantiles": int(config.num_quantiles),
                "net_arch": [int(h) for h in config.hidden],
                "activation_fn": activations[config.activation],
                # sb3-contrib's QR-DQN otherwise sets Adam's eps to 0.01 / batch_size.
                "optimizer_kwargs": {"eps": float(config.adam_eps)},
            },
        },
    }


# --------------------------------------------------------------------------------------------------
# Parsing the runs
# --------------------------------------------------------------------------------------------------


def first_reach(
    evaluations: list[tuple[int, float, float]], threshold: float = THRESHOLD
) -> tuple[int, float] | None:
    """``(env_steps, time)`` of the first ``(env_steps, mean, time)`` with mean >= threshold."""
    for steps, mean, t in evaluations:
        if mean >= threshold:
            return int(steps), float(t)
    return None


def rlkit_times(run_dir: str, process_s: float, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Figures of one ``train.py`` run: its evaluations, and the times to ``threshold``.

    Args:
      run_dir: the run directory (``metrics.csv``, ``summary.json``).
      process_s: the process's wall time, measured by the caller.

    Returns:
      ``{"evaluations": [(env_steps, mean, in-run seconds)], "reached_at", "inrun_s",
      "process_s", "total_process_s", "job_s", "compile_s"}``: the ``*_s`` to the threshold are
      None when it was not reached; ``job_s`` and ``compile_s`` are ``summary.json``'s
      ``wall_time_s`` and ``compile_s``.
    """
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    job_s = float(summary["wall_time_s"])
    evaluations = [
        (int(float(r["env_steps"])), float(r["eval_return"]), float(r["wall_time"]))
        for r in rows
        if r.get("eval_return") not in (None, "")
    ]
    hit = first_reach(evaluations, threshold)
    out: dict[str, Any] = {
        "evaluations": evaluations,
        "reached_at": None,
        "inrun_s": None,
        "process_s": None,
        "total_process_s": process_s,
        "job_s": job_s,
        "compile_s": summary.get("compile_s"),
    }
    if hit is not None:
        out["reached_at"], out["inrun_s"] = hit
        out["process_s"] = process_s - (job_s - hit[1])  # minus the time after that evaluation
    return out


def _median(xs: list[float | None]) -> float:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else float("nan")


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-library medians over the seeds that reached 475, seeds that did not, and the ratios.

    Args:
      rows: one dict per (library, seed) with ``library`` ("rlkit" or "sb3-contrib"), ``seed``,
        ``reached_at``, ``process_s`` and ``inrun_s`` (None when not reached).

    Returns:
      ``{"rlkit": {...}, "sb3-contrib": {...}, "ratio_process", "ratio_inrun"}``; each library's
      dict has ``median_process_s``, ``median_inrun_s``, ``reached`` and ``not_reached`` (seeds).
      The ratios are sb3-contrib's median over rlkit's (nan when a side has no reaching seed).
    """
    out: dict[str, Any] = {}
    for lib in ("rlkit", "sb3-contrib"):
        mine = [r for r in rows if r["library"] == lib]
        out[lib] = {
            "median_process_s": _median([r["process_s"] for r in mine]),
            "median_inrun_s": _median([r["inrun_s"] for r in mine]),
            "reached": [r["seed"] for r in mine if r["reached_at"] is not None],
            "not_reached": [r["seed"] for r in mine if r["reached_at"] is None],
        }
    for key in ("process", "inrun"):
        a, b = out["rlkit"][f"median_{key}_s"], out["sb3-contrib"][f"median_{key}_s"]
        out[f"ratio_{key}"] = b / a if a > 0 else float("nan")  # nan stays nan
    return out


# --------------------------------------------------------------------------------------------------
# The two sides
# --------------------------------------------------------------------------------------------------


def _run_rlkit(seed: int, eval_every: int, episodes: int, total_timesteps: int | None,
               workdir: str, warm_cache: bool) -> dict[str, Any]:
    out = os.path.join(workdir, f"rlkit-seed{seed}")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--agent", "qrdqn",
           "--seed", str(seed), "--quiet", "--out", out, "--eval-every", str(eval_every),
           "--eval-every-episodes", str(episodes), "--eval-episodes", "0"]
    if total_timesteps is not None:
        cmd += ["--total-timesteps", str(total_timesteps)]
    env = dict(os.environ, PYTHONPATH=ROOT)
    if not warm_cache:
        env["RLKIT_JAX_CACHE"] = os.path.join(workdir, f"jax-cache-seed{seed}")
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    process_s = time.perf_counter() - t0
    res = rlkit_times(out, process_s)
    for steps, mean, _ in res["evaluations"]:
        print(f"  rlkit  {steps:>7d} steps  greedy return {mean:.1f}")
    return res


def _run_sb3(seed: int, settings: dict[str, Any], eval_every: int, episodes: int,
             workdir: str, torch_threads: int) -> dict[str, Any]:
    spec = os.path.join(workdir, f"sb3-seed{seed}.json")
    result = os.path.join(workdir, f"sb3-seed{seed}-result.json")
    with open(spec, "w") as f:
        json.dump({"seed": seed, "settings": settings, "eval_every": eval_every,
                   "episodes": episodes, "result": result, "torch_threads": torch_threads}, f)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_sb3.py"), "--qrdqn-child",
                    spec],
                   env=dict(os.environ, PYTHONPATH=ROOT), check=True)
    process_s = time.perf_counter() - t0
    with open(result) as f:
        r = json.load(f)
    hit = first_reach([tuple(e) for e in r["evaluations"]])
    out = {"evaluations": r["evaluations"], "reached_at": None, "inrun_s": None,
           "process_s": None, "total_process_s": process_s, "eval_s": r["eval_s"],
           "env_steps": r["env_steps"]}
    if hit is not None:
        out["reached_at"] = hit[0]
        out["inrun_s"] = hit[1] - r["model_start"]
        out["process_s"] = process_s - (r["end"] - hit[1])  # minus the time after it
    return out


# --------------------------------------------------------------------------------------------------
# Where the time goes (rlkit, one seed)
# --------------------------------------------------------------------------------------------------


def where_time_goes(total_timesteps: int | None = None, repeats: int = 7) -> dict[str, float]:
    """Milliseconds per update (``steps_per_update`` env steps and ``gradient_steps`` learner
    steps) of the pieces of rlkit's compiled QR-DQN loop, one seed, preset config.

    Each piece is jitted alone and timed as the fastest of ``repeats`` rounds (each round calls
    every piece once) after a warm-up, on
    a state whose buffer holds one chunk of data: ``chunk`` (``make_train_chunk``, per update),
    ``rollout`` (``collect_rollout``: acting and env steps), ``env`` (the env steps with fixed
    actions), ``act`` (``agent.act`` on the rollout's observations), ``update`` (``agent.update``:
    storing and the gradient steps with sampling), ``grad`` (the learner steps on one fixed
    batch) and ``sample`` (``gradient_steps`` replay samples).
    """
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")


    config = preset_config(total_timesteps)
    venv, env_params = make_vec("CartPole-v1", config.num_envs)
    agent = QRDQN(venv.observation_space(env_params), venv.action_space(env_params))
    iters = 15  # train.py's chunk for the preset with --eval-every 3840
    chunk = jax.jit(make_train_chunk(agent, venv, env_params, iters))
    rs = jax.jit(lambda k: init_runner(agent, venv, env_params, config, k))(
        jax.random.PRNGKey(0))
    rs, _ = chunk(config, rs)  # fill the buffer past learning_starts
    rs = jax.block_until_ready(rs)
    rollout_fn = jax.jit(lambda r: collect_rollout(agent, venv, env_params, config, r))
    rs2, rollout, _ = rollout_fn(rs)
    actions = rollout.action

    def env_only(r):
        def step(carry, a):
            env_state, key = carry
            key, k = jax.random.split(key)
            _, env_state, reward, *_ = venv.step(k, env_state, a, env_params)
            return (env_state, key), reward
        return jax.lax.scan(step, (r.env_state, r.key), actions)[1]

    def act_only(r):
        def step(_, xs):
            obs, k = xs
            return None, agent.act(config, r.agent_state, obs, k)[0]
        keys = jax.random.split(r.key, config.rollout_length)
        return jax.lax.scan(step, None, (rollout.obs, keys))[1]

    update = jax.jit(lambda r, k: agent.update(config, r.agent_state, rollout, k))
    buffer = rs.agent_state.buffer
    # gradient_steps batches sampled beforehand (fed as the scan's input, so that no part of a
    # step is loop-invariant and hoisted out of it).
    batches = jax.jit(jax.vmap(
        lambda k: replay.sample(buffer, k, config.batch_size, config.n_step).experience
    ))(jax.random.split(jax.random.PRNGKey(1), config.gradient_steps))
    ones = jnp.ones((config.batch_size,), jnp.float32)

    def grads_only(learner, key):
        def body(l, xs):
            batch, k = xs
            return agent.learner_step(config, l, batch, ones, k)[0], None
        keys = jax.random.split(key, config.gradient_steps)
        return jax.lax.scan(body, learner, (batches, keys))[0]

    def sample_only(key):
        def body(c, k):
            s = replay.sample(buffer, k, config.batch_size, config.n_step)
            return c + s.experience["reward"].sum(), None
        return jax.lax.scan(body, 0.0, jax.random.split(key, config.gradient_steps))[0]

    key = jax.random.PRNGKey(2)
    env_fn, act_fn = jax.jit(env_only), jax.jit(act_only)
    grad_fn, sample_fn = jax.jit(grads_only), jax.jit(sample_only)
    pieces = {
        "chunk": (lambda: chunk(config, rs), iters),
        "rollout": (lambda: rollout_fn(rs), 1),
        "env": (lambda: env_fn(rs), 1),
        "act": (lambda: act_fn(rs), 1),
        "update": (lambda: update(rs, key), 1),
        "grad": (lambda: grad_fn(rs.agent_state.learner, key), 1),
        "sample": (lambda: sample_fn(key), 1),
    }
    del rs2
    best = dict.fromkeys(pieces, float("inf"))
    for fn, _ in pieces.values():
        jax.block_until_ready(fn())  # compile and warm up
    for _ in range(repeats):  # rounds over every piece, so that all see the same load
        for name, (fn, _) in pieces.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    out = {name: 1e3 * best[name] / per for name, (_, per) in pieces.items()}
    print(f"rlkit QR-DQN, one seed, per update ({config.steps_per_update} env steps, "
          f"{config.gradient_steps} gradient steps of batch {config.batch_size}, "
          f"{config.num_quantiles} quantiles), fastest of {repeats}:")
    for name, ms in out.items():
        print(f"  {name:8s} {ms:8.2f} ms")
    return out


def _sb3_where_time_goes(
    settings: dict[str, Any], torch_threads: int, repeats: int = 3
) -> dict[str, float]:
    """sb3-contrib's ``train`` (``gradient_steps`` steps) and one rollout (``train_freq`` vector
    steps with the exploring policy), milliseconds, after ``learning_starts``."""
    import torch

    torch.set_num_threads(torch_threads)
    from sb3_contrib import QRDQN as SB3QRDQN
    from stable_baselines3.common.env_util import make_vec_env
    from torch import nn

    kwargs = json.loads(json.dumps(settings["kwargs"]))
    kwargs["train_freq"] = tuple(kwargs["train_freq"])
    kwargs["policy_kwargs"]["activation_fn"] = getattr(nn, kwargs["policy_kwargs"]["activation_fn"])
    env = make_vec_env("CartPole-v1", n_envs=settings["n_envs"], seed=0)
    model = SB3QRDQN("MlpPolicy", env, seed=0, verbose=0, device="cpu", **kwargs)
    model.learn(4 * kwargs["learning_starts"])  # fill the buffer; also trains a little
    out = {"train": float("inf"), "rollout": float("inf")}
    from stable_baselines3.common.utils import TrainFreq, TrainFrequencyUnit

    freq = TrainFreq(kwargs["train_freq"][0], TrainFrequencyUnit.STEP)
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.train(kwargs["gradient_steps"], kwargs["batch_size"])
        out["train"] = min(out["train"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.collect_rollouts(model.env, _NullCallback(), freq,
                               model.replay_buffer, learning_starts=0)
        out["rollout"] = min(out["rollout"], time.perf_counter() - t0)
    out = {k: 1e3 * v for k, v in out.items()}
    print(f"sb3-contrib QR-DQN, per update, fastest of {repeats}: train "
          f"({kwargs['gradient_steps']} gradient steps) {out['train']:.1f} ms, rollout "
          f"({kwargs['train_freq'][0]} x {settings['n_envs']} env steps) {out['rollout']:.1f} ms")
    return out


class _NullCallback:
    """The callback protocol ``collect_rollouts`` calls, doing nothing."""

    def on_rollout_start(self):
        pass

    def on_rollout_end(self):
        pass

    def update_locals(self, _):
        pass

    def on_step(self):
        return True


# --------------------------------------------------------------------------------------------------


def benchmark_qrdqn(
    num_seeds: int = 3,
    eval_every: int = 3840,
    episodes: int = 16,
    total_timesteps: int | None = None,
    include_peer: bool = True,
    warm_cache: bool = False,
    workdir: str | None = None,
    torch_threads: int = 1,
) -> dict[str, Any]:
    """Time to a greedy 475 on CartPole-v1, rlkit's QR-DQN preset against sb3-contrib's QRDQN.

    Args:
      num_seeds: seeds 0..num_seeds-1, each trained by rlkit then sb3-contrib.
      eval_every: env steps between greedy evaluations (both sides). rlkit evaluates at the end
        of the chunk that crosses a multiple; 3840 (15 updates of 256 steps) makes that exact.
      episodes: episodes per evaluation (both sides).
      total_timesteps: budget per seed (default: the preset's 50,000).
      include_peer: also run sb3-contrib (skipped with a message when not importable).
      warm_cache: let rlkit use the default compilation cache instead of an empty one.
      workdir: where the runs go (default: a temporary directory, removed afterwards).
      torch_threads: ``torch.set_num_threads`` of the sb3-contrib process (module docstring).

    Returns:
      ``{"rows": [per library and seed], "summary": summarise(rows), "settings": sb3_settings}``.
    """
    config = preset_config(total_timesteps)
    settings = sb3_settings(config)
    if include_peer:
        try:
            import sb3_contrib  # noqa: F401
        except ImportError as e:
            print(f"sb3-contrib not importable ({e}); skipping it")
            include_peer = False
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for seed in range(num_seeds):
            r = _run_rlkit(seed, eval_every, episodes, total_timesteps, tmp, warm_cache)
            rows.append({"library": "rlkit", "seed": seed, **r})
            _print_row(rows[-1])
            if include_peer:
                r = _run_sb3(seed, settings, eval_every, episodes, tmp, torch_threads)
                rows.append({"library": "sb3-contrib", "seed": seed, **r})
                _print_row(rows[-1])
    summary = summarise(rows)
    print()
    print(f"{'library':12s} {'seed':>4s} {'reached at':>10s} {'process s':>10s} {'in-run s':>9s} "
          f"{'whole process s':>16s}")
    for r in rows:
        print(f"{r['library']:12s} {r['seed']:>4d} {_fmt(r['reached_at'], 'd'):>10s} "
              f"{_fmt(r['process_s']):>10s} {_fmt(r['inrun_s']):>9s} "
              f"{r['total_process_s']:>16.1f}")
    for lib in ("rlkit", "sb3-contrib"):
        s = summary[lib]
        print(f"{lib}: median to 475 {s['median_process_s']:.1f} s (process), "
              f"{s['median_inrun_s']:.1f} s (in-run); never reached: {s['not_reached'] or 'none'}")
    if include_peer:
        print(f"sb3-contrib / rlkit, medians: {summary['ratio_process']:.2f}x (process), "
              f"{summary['ratio_inrun']:.2f}x (in-run)")
    return {"rows": rows, "summary": summary, "settings": settings}


def _fmt(x, spec: str = ".1f") -> str:
    return "never" if x is None else format(x, spec)


def _print_row(r: dict[str, Any]) -> None:
    print(f"{r['library']} seed {r['seed']}: reached 475 at {_fmt(r['reached_at'], 'd')} steps, "
          f"{_fmt(r['process_s'])} s (process), {_fmt(r['inrun_s'])} s (in-run); whole process "
          f"{r['total_process_s']:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per library")
    p.add_argument("--eval-every", type=int, default=3840,
                   help="env steps between greedy evaluations (both sides)")
    p.add_argument("--episodes", type=int, default=16, help="episodes per greedy evaluation")
    p.add_argument("--total-timesteps", type=int, default=None,
                   help="budget per seed (default: the preset's)")
    p.add_argument("--warm-cache", action="store_true",
                   help="rlkit uses the default JAX compilation cache (default: an empty one)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch.set_num_threads of the sb3-contrib side (see the module docstring)")
    p.add_argument("--skip-peer", action="store_true", help="only run rlkit")
    p.add_argument("--no-profile", action="store_true",
                   help="skip timing the pieces of the loop (where the time goes)")
    p.add_argument("--profile-only", action="store_true", help="only time the pieces")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    for flag, value in (("--seeds", a.seeds), ("--eval-every", a.eval_every),
                        ("--episodes", a.episodes), ("--torch-threads", a.torch_threads)):
        if value < 1:
            p.error(f"{flag}: expected an integer >= 1, got {value}")
    out: dict[str, Any] = {}
    if not a.profile_only:
        out = benchmark_qrdqn(a.seeds, a.eval_every, a.episodes, a.total_timesteps,
                              not a.skip_peer, a.warm_cache, torch_threads=a.torch_threads)
    if not a.no_profile:
        out["profile_rlkit_ms"] = where_time_goes(a.total_timesteps)
        if not a.skip_peer:
            try:
                out["profile_sb3_ms"] = _sb3_where_time_goes(
                    sb3_settings(preset_config(a.total_timesteps)), a.torch_threads)
            except ImportError as e:
                print(f"sb3-contrib not importable ({e}); skipping its profile")
    if a.json:
        atomic_write_text(a.json, json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
