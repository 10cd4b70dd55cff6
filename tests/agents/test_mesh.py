"""The device mesh (``agents.runtime.devices.RunMesh``): the runs and data axes, padding, and
jobs of several processes on ``jax.distributed``.

The device count is fixed when JAX starts, so every check runs in subprocesses: one with four
forced CPU devices (a 2x2 mesh), and pairs of processes on localhost that talk through gloo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "scripts", "train.py")


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count={devices}"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


FOUR_DEVICES = textwrap.dedent(
    r"""
    import jax, numpy as np
    assert len(jax.devices()) == 4, jax.devices()
    from agents.parallel import MeshShape, local_config
    from agents.registry import get_agent
    from agents.runtime.devices import RunMesh
    from agents.runtime.loop import init_runner, make_train_chunk
    from envs.wrappers import make_vec

    def train(name, env_id, overrides, mesh, runs, updates=2):
        config = local_config(get_agent(name).default_config(env_id, **overrides), mesh.shards)
        venv, ep = make_vec(env_id, config.num_envs)
        agent = get_agent(name)(venv.observation_space(ep), venv.action_space(ep))
        init = jax.jit(mesh.map(lambda c, k: init_runner(agent, venv, ep, c, k), (None, 0)))
        chunk = make_train_chunk(agent, venv, ep, updates)
        step = jax.jit(mesh.map(chunk, (None, 0), (False, True)))
        keys = np.asarray(jax.random.split(jax.random.PRNGKey(0), runs))
        rs, metrics = step(config, init(config, mesh.put(mesh.pad(keys))))
        return jax.device_get(rs), jax.device_get(metrics), (agent, venv, ep, config, chunk)

    def close(a, b, what, rtol=1e-4, atol=1e-5):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                       rtol=rtol, atol=atol, err_msg=what)

    PPO = ("ppo", "CartPole-v1", dict(total_timesteps=4096, num_envs=4, rollout_length=32,
                                       normalize_obs=True))
    DQN = ("dqn", "CartPole-v1", dict(total_timesteps=4096, num_envs=4, rollout_length=16,
                                       learning_starts=64, batch_size=32, buffer_size=512,
                                       gradient_steps=4))

    # 1. The runs axis: 3 runs on a runs axis of 2 devices are padded to 4, and the 3 real runs
    #    compute exactly what plain vmap computes on one device.
    mesh = RunMesh(3, MeshShape(runs=2))
    assert mesh.padded_runs == 4
    rs, m, (agent, venv, ep, config, chunk) = train(*PPO, mesh, 3)
    assert jax.tree.leaves(rs.agent_state)[0].shape[0] == 4
    init1 = jax.jit(jax.vmap(lambda k: init_runner(agent, venv, ep, config, k)))
    rs1, m1 = jax.jit(jax.vmap(chunk, in_axes=(None, 0)))(
        config, init1(jax.random.split(jax.random.PRNGKey(0), 3)))
    first3 = lambda tree: jax.tree.map(lambda x: np.asarray(x)[:3], tree)
    close(first3(rs.agent_state), rs1.agent_state, "runs axis != vmap", rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m["episode_count"][:3], np.asarray(m1["episode_count"]))

    # 3. The data axis: a 2x2 mesh (2 runs x 2 shards, one device each) computes what one device
    #    computes for the same 2 shards of each run (vmapped there). (DQN's data axis, replay
    #    included, is checked across two processes below.)
    for spec in (PPO,):
        a, ma, (agent, *_) = train(*spec, RunMesh(2, MeshShape(runs=2, data=2)), 2)
        b, mb, _ = train(*spec, RunMesh(2, MeshShape(1, 1), shards=2, devices=jax.devices()[:1]), 2)
        close(a.agent_state, b.agent_state, f"{spec[0]}: 2x2 mesh != one device")
        params = jax.vmap(jax.vmap(agent.policy_params))(a.agent_state)
        for x in jax.tree.leaves(params):  # both shards of a run hold the same parameters
            np.testing.assert_allclose(x[:, 0], x[:, 1], rtol=1e-6, atol=1e-7)
        if spec is PPO:  # normaliser statistics merged over the shards: every env counted
            np.testing.assert_allclose(a.agent_state.obs_norm.count, 2 * 4 * 32)
        assert not np.allclose(a.obs[:, 0], a.obs[:, 1])  # the shards step different envs
        steps = 2 * 4 * (16 if spec is DQN else 32)  # counted over both shards
        np.testing.assert_array_equal(ma["env_steps"][:, :, -1], steps)
    print("OK")
    """
)


def test_two_by_two_mesh_runs_data_and_padding():
    proc = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES], env=_env(4), cwd=ROOT, capture_output=True,
        text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert proc.stdout.strip().endswith("OK")


def _train(args: list[str], devices: int, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, TRAIN, *args], env=_env(devices), cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _processes(args: list[str], n: int = 2) -> list[subprocess.Popen]:
    address = f"localhost:{_free_port()}"
    return [
        _train(args + ["--coordinator-address", address, "--num-processes", str(n),
                       "--process-id", str(i)], devices=1)
        for i in range(n)
    ]


def _finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        out.append((p.returncode, err))
    return out


def _json(*parts: str) -> dict:
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def _params(run_dir: str) -> list[np.ndarray]:
    sys.path.insert(0, ROOT)
    import jax

    import agents

    seeds = _json(run_dir, "config.json")["num_runs"]
    return [
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(
            agents.load_policy(run_dir, seed=s, which="last")[0].params)])
        for s in range(seeds)
    ]


BASE = ["--total-timesteps", "2048", "--log-every", "512", "--checkpoint-every", "1024",
        "--eval-episodes", "0", "--eval-every", "0", "--quiet"]
PPO = ["--agent", "ppo", "--num-envs", "4", "--rollout-length", "32", *BASE]
DQN = ["--agent", "dqn", "--num-envs", "4", "--rollout-length", "16", "--learning-starts",
       "128", "--gradient-steps", "4", "--buffer-size", "1024", *BASE]


def test_two_processes_split_seeds_and_data(tmp_path):
    # Seeds: 2 seeds over 2 processes (one device each) == the same 2 seeds in one process.
    # Data: one run whose env batch is split over the 2 processes == the same split over the
    # 2 devices of one process. Both pairs and both single runs are started together.
    seeds2, seeds1 = str(tmp_path / "seeds2"), str(tmp_path / "seeds1")
    data2, data1 = str(tmp_path / "data2"), str(tmp_path / "data1")
    jobs = _processes(PPO + ["--num-seeds", "2", "--out", seeds2])
    jobs.append(_train(PPO + ["--num-seeds", "2", "--mesh", "runs=1", "--out", seeds1], 1))
    jobs += _processes(DQN + ["--mesh", "data=2", "--out", data2])
    jobs.append(_train(DQN + ["--mesh", "data=2", "--out", data1], 2))
    for code, err in _finish(jobs):
        assert code == 0, err[-3000:]
    for a, b in zip(_params(seeds2), _params(seeds1)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(_params(data2), _params(data1)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Process 0 alone wrote the run directory, once per logged chunk.
    with open(os.path.join(seeds2, "metrics.csv")) as f:
        rows = f.read().strip().splitlines()
    assert len(rows) == 1 + 2 * (2048 // 512)


def test_a_dead_process_stops_the_other_and_the_run_resumes_on_one(tmp_path):
    out = str(tmp_path / "run")
    args = PPO[:PPO.index("--total-timesteps")] + [
        "--total-timesteps", "400000", "--log-every", "1024", "--checkpoint-every", "1024",
        "--eval-episodes", "0", "--eval-every", "0", "--quiet", "--num-seeds", "2", "--out", out,
    ]
    first, second = _processes(args)
    deadline = time.monotonic() + 240
    while not os.path.exists(os.path.join(out, "checkpoint.json")):
        assert time.monotonic() < deadline and first.poll() is None, first.stderr.read()[-3000:]
        time.sleep(0.2)
    second.kill()
    t0 = time.monotonic()
    _, err = first.communicate(timeout=60)
    stopped_after = time.monotonic() - t0
    assert first.returncode == 2, err[-3000:]
    assert "another process died?" in err or "stopped responding" in err, err[-3000:]
    assert stopped_after < 30, stopped_after
    second.communicate()
    saved = _json(out, "checkpoint.json")["env_steps"]
    assert 0 < saved < 400000
    # The 2-process checkpoint restores in one process (both seeds on its two devices); only a
    # short stretch is trained further: a resumed run keeps the run's total, so it is cut by
    # stopping after its next checkpoint.
    resumed = _train(["--resume", out, "--quiet"], devices=2)
    deadline = time.monotonic() + 240
    while _json(out, "checkpoint.json")["env_steps"] <= saved:
        assert time.monotonic() < deadline and resumed.poll() is None, resumed.stderr.read()[-3000:]
        time.sleep(0.2)
    resumed.kill()
    resumed.communicate()
    assert _json(out, "checkpoint.json")["env_steps"] > saved


@pytest.mark.parametrize(
    "mesh, message",
    [("runs=0", "--mesh: runs must be a positive integer"),
     ("data=64", "--num-envs: must be divisible by the data axis of the mesh (64)"),
     ("runs=2,runs=1", "--mesh: expected runs=N,data=M"), ("runs=64,data=1", "needs 64 devices")],
)
def test_bad_mesh_is_one_line(mesh, message, capsys):
    sys.path.insert(0, ROOT)
    from scripts import train as train_script

    assert train_script.main(["--agent", "ppo", "--mesh", mesh, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def _tiny(name: str) -> tuple[str, dict]:
    """A one-update config of agent ``name`` for its first env: CartPole, or Pendulum."""
    from agents.registry import get_agent

    cls = get_agent(name)
    fields = {f for f in cls.Config.__dataclass_fields__}
    env_id = "Pendulum-v1" if name in ("sac", "td3", "ddpg") else "CartPole-v1"
    over = {"num_envs": 4, "rollout_length": 8, "total_timesteps": 64}
    for key, value in (("batch_size", 8), ("buffer_size", 64), ("learning_starts", 0),
                       ("gradient_steps", 1), ("num_minibatches", 2), ("num_epochs", 1),
                       ("hidden", (16,)), ("actor_hidden", (16,)), ("critic_hidden", (16,))):
        if key in fields:
            over[key] = value
    if name == "ddpg":
        over["rollout_length"] = 1
        over["total_timesteps"] = 8
    return env_id, over


# SAC (the continuous base) runs in the default suite (PPO and DQN are checked on a 2x2 mesh
# above); the others, a few seconds of compiling each, with -m slow.
_SLOW = pytest.mark.slow
AGENTS = [pytest.param(n, marks=() if n == "sac" else _SLOW) for n in (
    "a2c", "c51", "ddpg", "dqn", "impala", "iqn", "mdqn", "ppo", "pqn", "qrdqn", "rainbow", "sac",
    "td3")]


@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_runs_on_the_data_axis(name):
    # Two shards of one run, vmapped on this process's one device (what a data axis of two
    # devices computes): the run trains, its shards step different envs and keep equal params.
    import jax

    from agents.parallel import MeshShape, local_config
    from agents.registry import get_agent, registered_agents
    from agents.runtime.devices import RunMesh
    from agents.runtime.loop import init_runner, make_train_chunk
    from envs.wrappers import make_vec

    assert name in registered_agents()
    env_id, over = _tiny(name)
    mesh = RunMesh(1, MeshShape(1, 1), shards=2, devices=jax.devices()[:1])
    config = local_config(get_agent(name).default_config(env_id, **over), 2)
    assert config.num_envs == 2
    venv, ep = make_vec(env_id, config.num_envs)
    agent = get_agent(name)(venv.observation_space(ep), venv.action_space(ep))
    agent.check_config(config)
    init = mesh.map(lambda c, k: init_runner(agent, venv, ep, c, k), (None, 0))
    chunk = mesh.map(make_train_chunk(agent, venv, ep, 1), (None, 0), (False, True))
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    rs, metrics = jax.jit(lambda k: chunk(config, init(config, k)))(keys)
    params = jax.vmap(jax.vmap(agent.policy_params))(rs.agent_state)
    for x in jax.tree.leaves(params):
        assert np.all(np.isfinite(x))
        np.testing.assert_allclose(x[0, 0], x[0, 1], rtol=1e-6, atol=1e-7)
    assert not np.allclose(rs.obs[0, 0], rs.obs[0, 1])
    assert int(metrics["env_steps"][0, 0, -1]) == 4 * over["rollout_length"]


HOST_DQN = ["--agent", "dqn", "--backend", "gymnasium", "--num-envs", "4", "--rollout-length",
            "16", "--learning-starts", "128", "--gradient-steps", "4", *BASE]


def test_host_envs_one_pool_per_process(tmp_path, capsys):
    # Gymnasium's CartPole on the host backend: each process steps 2 of the run's 4 envs, the
    # update averages over both; the checkpoint holds both processes' agent and env state.
    out = str(tmp_path / "host")
    for code, err in _finish(_processes(HOST_DQN + ["--out", out])):
        assert code == 0, err[-3000:]
    with open(os.path.join(out, "metrics.csv")) as f:
        header, *rows = f.read().strip().splitlines()
    steps = [int(r.split(",")[header.split(",").index("env_steps")]) for r in rows]
    assert steps == [512, 1024, 1536, 2048]  # both pools' env steps
    sys.path.insert(0, ROOT)
    from flax import serialization

    meta = _json(out, "checkpoint.json")
    with open(os.path.join(out, meta["file"]), "rb") as f:
        payload = serialization.msgpack_restore(f.read())
    envs = payload["extra"]["env"]
    assert len(envs) == 2
    states = list(envs.values()) if isinstance(envs, dict) else envs
    assert all(np.asarray(s["episode"]).shape == (2,) for s in states)
    params = list(_leaves(payload["state"]["agent_state"], under="params"))
    assert params and all(x.shape[0] == 2 for x in params)
    for x in params:  # both processes hold the same parameters (their replay differs)
        np.testing.assert_allclose(x[0], x[1], rtol=1e-6, atol=1e-7)
    # Each process's env pool is in the checkpoint: it resumes with as many processes, and a
    # single process says so instead of failing on shapes.
    from scripts import train as train_script

    assert train_script.main(["--resume", out, "--quiet"]) == 2
    assert "resume it with --num-processes 2" in capsys.readouterr().err


def _leaves(tree, under: str, inside: bool = False):
    """The array leaves of a restored state dict below a key named ``under``."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, under, inside or k == under)
    elif inside:
        yield np.asarray(tree)


@pytest.mark.slow
def test_host_envs_over_two_processes_resume_bit_for_bit(tmp_path):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    jobs = _processes(HOST_DQN + ["--out", full])
    interrupted = _processes(HOST_DQN + ["--out", part])
    while not os.path.exists(os.path.join(part, "checkpoint.json")):
        time.sleep(0.1)
    for p in interrupted:
        p.kill()
        p.communicate()
    assert _json(part, "checkpoint.json")["env_steps"] < 2048
    resumed = _processes(["--resume", part, "--quiet"])
    for code, err in _finish(jobs + resumed):
        assert code == 0, err[-3000:]
    for a, b in zip(_params(full), _params(part)):
        np.testing.assert_array_equal(a, b)
