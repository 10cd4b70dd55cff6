"""Benchmark rlkit's SAC or TD3 on Pendulum-v1 against sbx (host) and rejax (compiled).

    PYTHONPATH=. python scripts/benchmark.py sac [--steps 5000] [--seeds 8] [--skip-peers]
    PYTHONPATH=. python scripts/benchmark.py td3 ...

Every library trains with the same hyperparameters (``SETTINGS``): one env, one env step and one
gradient step of batch 256 per update, Adam 1e-3, gamma 0.99, Polyak tau 0.005, 100 random steps
before learning, 64x64 actor and twin critics (ReLU for SAC; for TD3 SiLU, which rejax's TD3 hard-
codes); SAC learns its temperature from 1 towards -|A|; TD3 has policy delay 2, target smoothing
0.2 clipped at 0.5 and Gaussian exploration 0.1 (in units of half the action range, as sbx and
rlkit count; rejax counts in env units, so its values are doubled for Pendulum's [-2, 2]).

Rows, each measured in its own Python process:

- ``sbx``: sbx's SAC/TD3 (SB3's API on JAX; the ``[bench]`` extra) on Gymnasium's Pendulum-v1,
  timed in ``learn``.
- ``rlkit host``: ``scripts/train.py --backend gymnasium`` on Gymnasium's Pendulum-v1 (the host
  backend: the env steps in Python, ``act`` and ``update`` are jitted), as a whole process.
- ``rlkit_host_baseline`` (with ``--baseline DIR``): the same from another rlkit checkout, for
  a before/after in the same run; ``--rows sbx,rlkit_host_baseline,rlkit_host`` picks rows.
- ``rlkit_1``, ``rlkit_S``: the compiled backend's program (``agents.runtime.loop``, rlkit's JAX
  Pendulum), 1 seed and S vmapped seeds split over the CPU devices as ``scripts/train.py`` runs
  them; ``rlkit_S_onedevice``: the S seeds on one device (plain ``jax.vmap``).
- ``rejax_1``, ``rejax_S``: rejax's SAC/TD3 on gymnax's Pendulum-v1 (``jax.vmap`` over seeds).

Host rows give env steps/s after the first ``--log-every`` steps (so that the jit compilation
inside the first updates is left out) and the whole time; compiled rows give compile time (init
and chunk programs) and run time. "return" is the final policy's deterministic mean return over
``--eval-episodes`` episodes (rlkit and sbx on Gymnasium's Pendulum-v1, rejax with its own
evaluator on gymnax's), measured after the timing. The figures depend on the machine and on its
load: compare the ratios, which come from the same run.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A long compiled program can stall on a 2-core CPU backend (see docs/design.md); single-threaded
# Eigen avoids most of it. Must be set before jax initialises its backend.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
from agents.runtime.devices import cpu_devices_flag

# One CPU device per core, as scripts/train.py sets up: rlkit's vmapped seeds are split over them.
os.environ["XLA_FLAGS"] = cpu_devices_flag()

import argparse
import csv
import json
import subprocess
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import agents
from agents.base import stack_configs
from agents.evaluation import evaluate
from agents.policy import run_policy
from envs.wrappers import make_vec
from scripts.bench_peers import (
    FiveTupleStep,
    Program,
    chunk_updates,
    rlkit_program,
    run_program,
    seeded,
)

__all__ = ["SETTINGS", "benchmark_continuous", "main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_ID = "Pendulum-v1"
ACTION_HALF_RANGE = 2.0  # Pendulum-v1's Box is [-2, 2]

#: What SAC and TD3 share (one gradient step per env step, 64x64 networks).
_SHARED: dict[str, Any] = {
    "num_envs": 1,
    "rollout_length": 1,
    "utd": 1.0,
    "batch_size": 256,
    "learning_rate": 1e-3,
    "gamma": 0.99,
    "tau": 0.005,
    "learning_starts": 100,
    "actor_hidden": (64, 64),
    "critic_hidden": (64, 64),
}

#: The shared hyperparameters, in rlkit's config field names, per agent.
SETTINGS: dict[str, dict[str, Any]] = {
    "sac": {**_SHARED, "activation": "relu", "init_alpha": 1.0},
    "td3": {
        **_SHARED,
        "activation": "silu",
        "policy_delay": 2,
        "target_update_interval": 2,
        "target_policy_noise": 0.2,
        "target_noise_clip": 0.5,
        "action_noise": 0.1,
    },
}


def _config(agent: str, steps: int):
    cls = agents.get_agent(agent)
    return cls, cls.Config(**{**SETTINGS[agent], "total_timesteps": steps, "buffer_size": steps})


# --------------------------------------------------------------------------------------------------
# rlkit
# --------------------------------------------------------------------------------------------------


def _space(space_or_method):
    return space_or_method() if callable(space_or_method) else space_or_method


def _rlkit_program(agent_name: str, steps: int, num_seeds: int, num_chunks: int, spread: bool):
    cls, config = _config(agent_name, steps)
    venv, env_params = make_vec(ENV_ID, config.num_envs)
    agent = cls(_space(venv.observation_space), _space(venv.action_space))
    agent.check_config(config)
    program = rlkit_program(agent, venv, env_params, config, num_seeds, num_chunks, spread)
    return agent, config, program


def _rlkit_compiled_row(agent_name, steps, num_seeds, num_chunks, spread, episodes):
    agent, config, program = _rlkit_program(agent_name, steps, num_seeds, num_chunks, spread)
    compile_s, run_s, run_cpu_s, env_steps, _, state = run_program(program, num_seeds)
    agent_state = state.agent_state
    if num_seeds == 1:
        agent_state = jax.tree.map(lambda x: x[None], agent_state)
    params = jax.device_get(jax.vmap(agent.policy_params)(agent_state))
    policy = run_policy(agent, stack_configs([config] * num_seeds), params, ENV_ID)
    result = evaluate(policy, ENV_ID, episodes=episodes, backend="gymnasium", seed=10_000)
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "env_steps": float(env_steps),
        "steps_per_s": num_seeds * env_steps / run_s,
        "final_return": float(np.mean(result.returns)),
    }


def _rlkit_host_row(
    agent_name: str, steps: int, log_every: int, episodes: int, root: str = ROOT
) -> dict:
    """``scripts/train.py --backend gymnasium`` with the settings, timed as a process; the
    steady rate comes from metrics.csv's wall times (after the first ``log_every`` steps).
    ``root`` is the rlkit checkout whose ``train.py`` runs (another one gives a before/after)."""
    flags = []
    for k, v in SETTINGS[agent_name].items():
        vals = [str(x) for x in v] if isinstance(v, tuple) else [str(v)]
        flags += [f"--{k.replace('_', '-')}", *vals]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd = [sys.executable, os.path.join(root, "scripts", "train.py"), "--agent", agent_name,
               "--env", ENV_ID, "--backend", "gymnasium", *flags,
               "--total-timesteps", str(steps), "--buffer-size", str(steps),
               "--eval-every", "0", "--eval-episodes", str(episodes),
               "--log-every", str(log_every), "--checkpoint-every", str(steps),
               "--quiet", "--out", out]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": root}, cwd=root)
        wall = time.perf_counter() - t0
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        with open(os.path.join(out, "metrics.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
    first, last = rows[0], rows[-1]
    steady = (int(last["env_steps"]) - int(first["env_steps"])) / (
        float(last["wall_time"]) - float(first["wall_time"])
    )
    return {
        "total_s": wall,
        "train_s": summary["train_s"],
        "env_steps": float(summary["env_steps_per_run"]),
        "steps_per_s": steady,
        "final_return": summary["eval"]["mean"],
    }


# --------------------------------------------------------------------------------------------------
# sbx
# --------------------------------------------------------------------------------------------------


def _sbx_row(agent_name: str, steps: int, log_every: int, episodes: int, seed: int = 0) -> dict:
    import flax.linen as nn
    import gymnasium as gym
    import sbx
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.noise import NormalActionNoise

    s = SETTINGS[agent_name]

    class _Clock(BaseCallback):
        """Wall time at ``log_every`` env steps and at the end (compilation is before the mark)."""

        def __init__(self):
            super().__init__()
            self.marks: dict[int, float] = {}

        def _on_step(self) -> bool:
            if self.num_timesteps in (log_every, steps):
                self.marks[self.num_timesteps] = time.perf_counter()
            return True

    env = gym.make(ENV_ID)
    common = {
        "learning_rate": s["learning_rate"],
        "buffer_size": steps,
        "learning_starts": s["learning_starts"],
        "batch_size": s["batch_size"],
        "tau": s["tau"],
        "gamma": s["gamma"],
        "train_freq": 1,
        "gradient_steps": 1,
        "seed": seed,
        "verbose": 0,
    }
    activation = {"relu": nn.relu, "silu": nn.silu}[s["activation"]]
    policy_kwargs = {"net_arch": list(s["actor_hidden"]), "activation_fn": activation}
    if agent_name == "sac":
        model = sbx.SAC("MlpPolicy", env, policy_kwargs=policy_kwargs, ent_coef="auto_1.0",
                        **common)
    else:
        noise = NormalActionNoise(np.zeros(1), s["action_noise"] * np.ones(1))
        model = sbx.TD3("MlpPolicy", env, policy_kwargs=policy_kwargs, action_noise=noise,
                        policy_delay=s["policy_delay"],
                        target_policy_noise=s["target_policy_noise"],
                        target_noise_clip=s["target_noise_clip"], **common)
    clock = _Clock()
    t0 = time.perf_counter()
    model.learn(steps, callback=clock)
    total = time.perf_counter() - t0
    steady = (steps - log_every) / (clock.marks[steps] - clock.marks[log_every])
    mean, _ = evaluate_policy(model, gym.make(ENV_ID), n_eval_episodes=episodes,
                              deterministic=True)
    return {"total_s": total, "train_s": total, "env_steps": float(model.num_timesteps),
            "steps_per_s": steady, "final_return": float(mean)}


# --------------------------------------------------------------------------------------------------
# rejax
# --------------------------------------------------------------------------------------------------


def _rejax_algo(agent_name: str, steps_per_call: int, buffer_size: int):
    import gymnax
    import rejax

    s = SETTINGS[agent_name]
    env, env_params = gymnax.make(ENV_ID)
    common = {
        "env": FiveTupleStep(env),
        "env_params": env_params,
        "total_timesteps": steps_per_call,
        "eval_freq": steps_per_call,
        "skip_initial_evaluation": True,
        "num_envs": 1,
        "buffer_size": buffer_size,
        "fill_buffer": s["learning_starts"],
        "batch_size": s["batch_size"],
        "learning_rate": s["learning_rate"],
        "gamma": s["gamma"],
        "polyak": 1.0 - s["tau"],
        "num_epochs": 1,  # gradient steps per env step
    }
    if agent_name == "sac":
        algo = rejax.SAC.create(**common, hidden_layer_sizes=s["actor_hidden"],
                                agent_kwargs={"activation": s["activation"]})
    else:  # rejax's TD3 has 64x64 SiLU ("swish") networks built in
        algo = rejax.TD3.create(
            **common,
            policy_delay=s["policy_delay"],
            exploration_noise=s["action_noise"] * ACTION_HALF_RANGE,
            target_noise=s["target_policy_noise"] * ACTION_HALF_RANGE,
            target_noise_clip=s["target_noise_clip"] * ACTION_HALF_RANGE,
        )
    return algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))


def _rejax_program(agent_name: str, steps: int, num_seeds: int, num_chunks: int):
    per = chunk_updates(steps, num_chunks)
    # One train call runs eval_freq (= total_timesteps) env steps: a chunk; train(train_state=...)
    # continues the run.
    algo = _rejax_algo(agent_name, per, steps)
    init, step = seeded(
        algo.init_state, lambda ts: (algo.train(train_state=ts)[0], None), num_seeds
    )

    def compile_both(key):
        init_c = jax.jit(init).lower(key).compile()
        return init_c, jax.jit(step).lower(init_c(key)).compile()

    return algo, Program(init, step, steps // per, per, compile_both)


def _rejax_deterministic_act(agent_name: str, algo, ts):
    """The mean action: rejax's own ``act`` for TD3; for SAC the squashed mean (its ``act``
    samples)."""
    if agent_name == "td3":
        return algo.make_act(ts)
    actor = algo.actor

    def act(obs, rng):
        dist = actor.apply(ts.actor_ts.params, obs[None], method="_action_dist")
        return jnp.squeeze(actor.action_loc + jnp.tanh(dist.mean()) * actor.action_scale, 0)

    return act


def _rejax_row(agent_name, steps, num_seeds, num_chunks, episodes):
    from rejax.evaluate import evaluate as rejax_evaluate

    algo, program = _rejax_program(agent_name, steps, num_seeds, num_chunks)
    compile_s, run_s, run_cpu_s, env_steps, _, ts = run_program(program, num_seeds)
    returns = []
    for s in range(num_seeds):
        ts_s = ts if num_seeds == 1 else jax.tree.map(lambda x, s=s: x[s], ts)
        act = _rejax_deterministic_act(agent_name, algo, ts_s)
        _, ret = rejax_evaluate(act, jax.random.PRNGKey(10_000 + s), algo.env, algo.env_params,
                                episodes, 200)
        returns.append(float(jnp.mean(ret)))
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "env_steps": float(env_steps),
        "steps_per_s": num_seeds * env_steps / run_s,
        "final_return": float(np.mean(returns)),
    }


# --------------------------------------------------------------------------------------------------


def _measure_row(name: str, a: argparse.Namespace) -> dict:
    if name == "sbx":
        return _sbx_row(a.agent, a.host_steps, a.log_every, a.eval_episodes)
    if name == "rlkit_host":
        return _rlkit_host_row(a.agent, a.host_steps, a.log_every, a.eval_episodes)
    if name == "rlkit_host_baseline":
        return _rlkit_host_row(a.agent, a.host_steps, a.log_every, a.eval_episodes, a.baseline)
    parts = name.split("_")
    lib, seeds = parts[0], int(parts[1])
    if lib == "rlkit":
        return _rlkit_compiled_row(a.agent, a.steps, seeds, a.chunks,
                                   spread=not name.endswith("onedevice"),
                                   episodes=a.eval_episodes)
    return _rejax_row(a.agent, a.steps, seeds, a.chunks, a.eval_episodes)


def _row_in_subprocess(name: str, argv: list[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--row", name]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}).stdout
    return json.loads(out.strip().splitlines()[-1])


def benchmark_continuous(a: argparse.Namespace, argv: list[str]) -> dict[str, dict]:
    """Measure every row (each in its own process) and print the table and the ratios."""
    names = ["rlkit_host", "rlkit_1", f"rlkit_{a.seeds}", f"rlkit_{a.seeds}_onedevice"]
    if not a.skip_peers:
        names = ["sbx", *names, "rejax_1", f"rejax_{a.seeds}"]
    if a.baseline:
        names.insert(names.index("rlkit_host"), "rlkit_host_baseline")
    if a.rows:
        wanted = a.rows.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise SystemExit(f"--rows: unknown row(s) {unknown}; expected some of {names}")
        names = [n for n in names if n in wanted]
    results: dict[str, dict] = {}
    print(f"{a.agent.upper()} on {ENV_ID}: host rows {a.host_steps:,} env steps, compiled rows "
          f"{a.steps:,} env steps per seed in {a.chunks} chunks; one gradient step per env step",
          flush=True)
    for name in names:
        try:
            row = _row_in_subprocess(name, argv)
        except subprocess.CalledProcessError as e:  # a broken peer must not hide the others
            print(f"{name:22s} failed (exit status {e.returncode})", flush=True)
            continue
        results[name] = row
        if "compile_s" in row:
            print(f"{name:22s} compile {row['compile_s']:6.2f} s  run {row['run_s']:6.2f} s "
                  f"(cpu {row['run_cpu_s']:6.2f} s)  {row['steps_per_s']:>9,.0f} steps/s  "
                  f"return {row['final_return']:8.1f}", flush=True)
        else:
            print(f"{name:22s} total {row['total_s']:6.2f} s  {row['steps_per_s']:>9,.0f} steps/s "
                  f"after {a.log_every} steps  return {row['final_return']:8.1f}", flush=True)

    def ratio(label, num, den, key="steps_per_s", target=""):
        if num in results and den in results:
            value = results[num][key] / results[den][key]
            print(f"{label}: {value:.2f}x {target}")

    def total(name):
        return results[name]["compile_s"] + results[name]["run_s"]

    ratio("rlkit host / sbx, env steps/s", "rlkit_host", "sbx", target="(target >= 1.5x)")
    ratio("rlkit host baseline / sbx, env steps/s", "rlkit_host_baseline", "sbx")
    ratio("rlkit host / baseline, env steps/s", "rlkit_host", "rlkit_host_baseline")
    ratio("rlkit compiled (1 seed) / sbx, env steps/s", "rlkit_1", "sbx", target="(target >= 5x)")
    for lib, suffix in (("rlkit", ""), ("rlkit", "_onedevice"), ("rejax", "")):
        n, one = f"{lib}_{a.seeds}{suffix}", f"{lib}_1"
        if n in results and one in results:
            print(f"{lib} {a.seeds} seeds{' on one device' if suffix else ''} / 1 seed: "
                  f"compile+run {total(n) / total(one):.2f}x, "
                  f"run {results[n]['run_s'] / results[one]['run_s']:.2f}x"
                  + (" (target < 4x)" if lib == "rlkit" and not suffix else ""))
    for seeds in (1, a.seeds):
        r, j = f"rlkit_{seeds}", f"rejax_{seeds}"
        if r in results and j in results:
            print(f"rlkit / rejax, {seeds} seed(s): compile+run {total(r) / total(j):.2f}x, "
                  f"compile {results[r]['compile_s'] / results[j]['compile_s']:.2f}x, "
                  f"run {results[r]['run_s'] / results[j]['run_s']:.2f}x (target <= 1x)")
    return results


def main() -> None:
    prog = os.path.basename(sys.argv[0])
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--agent", choices=sorted(SETTINGS), required=True, help="sac or td3")
    p.add_argument("--steps", type=int, default=5000, help="env steps per seed, compiled rows")
    p.add_argument("--host-steps", type=int, default=5000, help="env steps of the host rows")
    p.add_argument("--seeds", type=int, default=8, help="seeds of the vmapped rows")
    p.add_argument("--chunks", type=int, default=5, help="jitted chunks per compiled run")
    p.add_argument("--log-every", type=int, default=1000,
                   help="host rows: steps/s is measured after this many env steps")
    p.add_argument("--eval-episodes", type=int, default=10,
                   help="deterministic episodes of the final policy (its return)")
    p.add_argument("--skip-peers", action="store_true", help="rlkit rows only")
    p.add_argument("--rows", default="",
                   help="comma-separated rows to run (e.g. sbx,rlkit_host); default all")
    p.add_argument("--baseline", default="",
                   help="another rlkit checkout (e.g. the main branch) whose host row runs "
                        "beside this one's, as rlkit_host_baseline (a before/after)")
    p.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row, printed as JSON
    argv = sys.argv[1:]
    a = p.parse_args(argv)
    if a.row:
        print(json.dumps(_measure_row(a.row, a)))
        return
    benchmark_continuous(a, argv)


if __name__ == "__main__":
    main()
