"""Scaling over devices: PPO's env steps per second for mesh shapes over 1 to N devices.

    python scripts/benchmark.py scaling                       # CartPole-v1 and MinAtar/Breakout-v1
    python scripts/benchmark.py scaling --envs CartPole-v1 --updates 20 --envs-per-device 64

Weak scaling, each device doing the work one device does alone: on the ``runs`` axis, k devices
train k seeds (one each); on the ``data`` axis, one run with k times the envs, split over k
devices (gradients averaged). Efficiency is ``sps(k devices) / (k * sps(1 device))``. The jitted
chunk is compiled first (not timed) and run once to warm up; the timed run is the second.

On a CPU, ``cpu_devices_flag`` gives one device per core, so the figures only check that the
mesh works; the script runs unchanged on a GPU machine, where it measures the real thing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agents.runtime.devices import cpu_devices_flag

os.environ["XLA_FLAGS"] = cpu_devices_flag()

import jax
import numpy as np

from agents.parallel import MeshShape, local_config
from agents.ppo import PPO
from agents.runtime.devices import RunMesh
from agents.runtime.loop import make_mesh_train
from envs.wrappers import make_vec


def measure(env_id: str, runs: int, data: int, envs_per_device: int, updates: int) -> dict:
    """One mesh shape: compile and timed run of ``updates`` PPO updates."""
    devices = jax.devices()[: runs * data]
    mesh = RunMesh(runs, MeshShape(runs=runs, data=data), devices=devices)
    config = PPO.default_config(
        env_id, num_envs=envs_per_device * data, total_timesteps=10**8, anneal_lr=False
    )
    local = local_config(config, mesh.shards)
    venv, env_params = make_vec(env_id, local.num_envs)
    agent = PPO(venv.observation_space(env_params), venv.action_space(env_params))
    agent.check_config(local)
    init, make_chunk = make_mesh_train(agent, venv, env_params, mesh)
    keys = mesh.put(mesh.pad(np.asarray(jax.random.split(jax.random.PRNGKey(0), runs))))
    state = jax.jit(init)(local, keys)
    t0 = time.perf_counter()
    chunk = jax.jit(make_chunk(updates), donate_argnums=1).lower(local, state).compile()
    compile_s = time.perf_counter() - t0
    state, metrics = chunk(local, state)  # warm-up
    jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    state, metrics = chunk(local, state)
    jax.block_until_ready(metrics)
    run_s = time.perf_counter() - t0
    steps = runs * config.num_envs * config.rollout_length * updates
    return {"compile_s": compile_s, "run_s": run_s, "sps": steps / run_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", default="CartPole-v1,MinAtar/Breakout-v1",
                   help="comma-separated rlkit env ids")
    p.add_argument("--updates", type=int, default=10, help="PPO updates per timed chunk")
    p.add_argument("--envs-per-device", type=int, default=16,
                   help="envs each device steps (per run on the runs axis, per shard on data)")
    args = p.parse_args(argv)
    n = len(jax.devices())
    counts = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n]
    print(f"devices: {n} x {jax.devices()[0].platform} ({jax.devices()[0].device_kind}); "
          f"PPO, {args.envs_per_device} envs per device, {args.updates} updates timed")
    print("| env | mesh | devices | compile s | env steps/s | efficiency |")
    print("|---|---|---:|---:|---:|---:|")
    for env_id in args.envs.split(","):
        base = None
        for axis in ("runs", "data"):
            for k in counts:
                if axis == "data" and k == 1:
                    continue
                runs, data = (k, 1) if axis == "runs" else (1, k)
                r = measure(env_id, runs, data, args.envs_per_device, args.updates)
                if base is None:
                    base = r["sps"]
                eff = r["sps"] / (k * base)
                print(f"| {env_id} | runs={runs},data={data} | {k} | {r['compile_s']:.1f} | "
                      f"{r['sps']:,.0f} | {eff:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
