"""Runs spread over several devices (``agents.runtime.devices.vmap_runs``), checked on a CPU split in two.

The test process itself has one CPU device (the device count is fixed when JAX starts), so the
checks run in a subprocess started with ``--xla_force_host_platform_device_count=2``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent(
    r"""
    import json, os, sys
    sys.path.insert(0, ROOT)
    import jax, jax.numpy as jnp, numpy as np
    assert len(jax.devices()) == 2, jax.devices()

    # 1. vmap_runs == jax.vmap, with the runs axis split over the two devices.
    from agents.ppo import PPO
    from agents.runtime.devices import runs_sharding, vmap_runs
    from agents.runtime.loop import init_runner, make_train_chunk
    from envs.wrappers import make_vec
    config = PPO.Config(total_timesteps=4096, num_envs=4, rollout_length=64)
    venv, ep = make_vec("CartPole-v1", 4)
    agent = PPO(venv.observation_space(ep), venv.action_space(ep))
    chunk = make_train_chunk(agent, venv, ep, 3)
    init = lambda k: init_runner(agent, venv, ep, config, k)
    keys = jax.random.split(jax.random.key(0), 4)
    assert len(runs_sharding(4).device_set) == 2 and runs_sharding(3) is None
    a, ma = jax.jit(jax.vmap(chunk, in_axes=(None, 0)))(config, jax.jit(jax.vmap(init))(keys))
    b, mb = jax.jit(vmap_runs(chunk, 4, in_axes=(None, 0)))(config, jax.jit(vmap_runs(init, 4))(keys))
    assert len(b.obs.sharding.device_set) == 2, b.obs.sharding
    for x, y in zip(jax.tree.leaves(a.agent_state), jax.tree.leaves(b.agent_state)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ma["value_mean"]), np.asarray(mb["value_mean"]), rtol=1e-4, atol=1e-6)

    # 2. train.py with 2 seeds on 2 devices: an interrupted run resumes to the uninterrupted result.
    import agents
    from agents.training.backends import CompiledBackend
    from scripts import train as train_script
    base = ["--agent", "ppo", "--total-timesteps", "4096", "--num-envs", "4",
            "--rollout-length", "64", "--log-every", "1024", "--checkpoint-every", "2048",
            "--eval-episodes", "0", "--num-seeds", "2", "--quiet"]
    full, part = os.path.join(TMP, "full"), os.path.join(TMP, "part")
    assert train_script.main(base + ["--out", full]) == 0
    original = CompiledBackend.save
    def kill_after_first(self, out, meta):
        original(self, out, meta)
        if meta["env_steps"] == 2048:
            raise KeyboardInterrupt
    CompiledBackend.save = kill_after_first
    assert train_script.main(base + ["--out", part]) == 130
    CompiledBackend.save = original
    assert train_script.main(["--resume", part, "--quiet"]) == 0
    pa, _ = agents.load_policy(full, seed=1)
    pb, _ = agents.load_policy(part, seed=1)
    for x, y in zip(jax.tree.leaves(pa.params), jax.tree.leaves(pb.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    print("OK")
    """
)


# The mesh tests (test_mesh.py) check the runs axis against vmap in the default suite; this
# older check, with a whole train.py resume on two devices, runs with -m slow.
@pytest.mark.slow
def test_runs_split_over_two_cpu_devices(tmp_path):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        "--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count=2"
    )
    env["JAX_PLATFORMS"] = "cpu"
    code = f"ROOT = {ROOT!r}\nTMP = {str(tmp_path)!r}\n" + SCRIPT
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")
