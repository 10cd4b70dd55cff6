"""Tests for agents.sac, agents.td3, agents.ddpg and their base agents.continuous."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
from agents.continuous import critic_loss, stacked_q_values
from agents.runtime.loop import make_train
from agents.sac import SAC, soft_q_target
from agents.td3 import TD3, smoothed_target_action
from envs.core import Box
from rlkit.errors import RLKitError
from tests.agents.test_trainer import _full_and_resumed, _run, _same_rows
from tests.agents.test_value_based import TruncationOnlyProbe

OBS = Box(-1.0, 1.0, (3,))
ACT = Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]))


def test_action_rescaling_to_bounds_and_back():
    agent = SAC(OBS, ACT)
    a = jnp.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 0.5]])
    env = agent.to_env(a)
    np.testing.assert_allclose(env, [[-2.0, 0.0], [0.0, 0.5], [2.0, 0.75]])
    np.testing.assert_allclose(agent.from_env(env), a, atol=1e-6)
    with pytest.raises(RLKitError, match="finite bounds"):
        SAC(OBS, Box(-np.inf, np.inf, (1,)))


def test_soft_target_and_critic_loss_by_hand():
    q_next = jnp.array([[1.0, 5.0], [2.0, 3.0]])  # [C=2, B=2]
    y = soft_q_target(
        jnp.array([1.0, -1.0]), jnp.array([0.9, 0.0]), q_next, jnp.array([-0.5, 2.0]), 0.2
    )
    # min over critics (1, 3); sample 0: 1 + 0.9 (1 + 0.1) = 1.99; sample 1 terminated: -1.
    np.testing.assert_allclose(y, [1.99, -1.0], rtol=1e-6)
    q = jnp.array([[1.0, 0.0], [3.0, -2.0]])
    loss, td = critic_loss(q, y, jnp.array([1.0, 0.5]))
    expected = 0.5 * (np.mean([0.99**2, 0.5 * 1.0]) + np.mean([1.01**2, 0.5 * 1.0]))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(td, [1.99 - 2.0, -1.0 + 1.0], atol=1e-6)


def test_td3_target_smoothing_is_clipped():
    mu = jnp.array([[0.0, 0.95], [-0.9, 0.3]])
    out = smoothed_target_action(jax.random.key(0), mu, 100.0, 0.5)  # huge noise: clipped to c
    noise = out - mu
    assert np.all(np.abs(noise) <= 0.5 + 1e-6)
    assert np.all(out <= 1.0) and np.all(out >= -1.0)
    np.testing.assert_allclose(out[0, 1], 1.0)  # 0.95 + 0.5 clipped to the bound
    np.testing.assert_array_equal(smoothed_target_action(jax.random.key(0), mu, 0.0, 0.5), mu)


def test_critics_are_vmapped_over_stacked_params():
    agent = TD3(OBS, ACT)
    cfg = agent.default_config(num_critics=3, critic_hidden=(8,), actor_hidden=(8,))
    learner = agent.learner_init(cfg, jax.random.key(0))
    crit = learner.params["critic"]
    assert jax.tree.leaves(crit)[0].shape[0] == 3
    obs, act = jnp.ones((4, 3)), jnp.zeros((4, 2))
    q = stacked_q_values(agent.critic_network(cfg).apply, crit, obs, act)
    one = agent.critic_network(cfg).apply(jax.tree.map(lambda x: x[1], crit), obs, act)
    assert q.shape == (3, 4)
    np.testing.assert_allclose(q[1], one, rtol=1e-6)


@pytest.mark.parametrize("name", ["sac", "td3"])
def test_truncated_window_bootstraps_terminated_does_not(name):
    """The n-step window of a truncated step keeps gamma * V(s'); a terminated one drops it."""
    agent = agents.get_agent(name)(OBS, ACT)
    cfg = agent.default_config(gamma=0.5, n_step=2, critic_hidden=(8,), actor_hidden=(8,))
    learner = agent.learner_init(cfg, jax.random.key(0))
    batch = {
        "obs": jnp.zeros((2, 2, 3)),
        "action": jnp.zeros((2, 2, 2)),
        "reward": jnp.array([[1.0, 4.0], [1.0, 4.0]]),
        "terminated": jnp.array([[True, False], [False, False]]),
        "truncated": jnp.array([[False, False], [True, False]]),
        "next_obs": jnp.arange(12.0).reshape(2, 2, 3),
    }
    _, _, reward_sum, discount, next_obs = agent.window(cfg, learner, batch)
    np.testing.assert_allclose(reward_sum, [1.0, 1.0])
    np.testing.assert_allclose(discount, [0.0, 0.5])
    np.testing.assert_allclose(next_obs[1], batch["next_obs"][1, 0])


class BoxProbe(TruncationOnlyProbe):
    """``TruncationOnlyProbe`` (reward 1, cut by a time limit of 5 steps: Q* = 1 / (1 - gamma))
    with a Box action the reward ignores; with ``terminate`` every step terminates (Q* = 1)."""

    def __init__(self, terminate: bool = False):
        self.terminate = terminate

    def step_env(self, key, state, action, params):
        obs, state, reward, _, info = super().step_env(key, state, action, params)
        return obs, state, reward, jnp.asarray(self.terminate), info

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (1,), jnp.float32)


@pytest.mark.slow  # 15-24 s each on the loaded 2-core CPU, nearly all compilation
@pytest.mark.parametrize("name", ["sac", "td3"])
@pytest.mark.parametrize("terminate, expected", [(False, 2.0), (True, 1.0)])
def test_probe_bootstraps_on_truncation_not_on_termination(name, terminate, expected):
    """gamma .5 on the probe env: with only time limits every critic learns Q = 2 (cuts taken as
    deaths would give 5/3 or less); when every step terminates Q = 1 (a bootstrap gives more).
    SAC's temperature is fixed near 0 so that the soft value is the plain one."""
    env = BoxProbe(terminate)
    cls = agents.get_agent(name)
    agent = cls(env.observation_space(), env.action_space())
    fields = {"learn_alpha": False, "init_alpha": 1e-4} if name == "sac" else {}
    config = cls.Config(
        total_timesteps=1024,
        num_envs=2,
        rollout_length=8,
        gradient_steps=8,
        gamma=0.5,
        learning_rate=3e-3,
        learning_starts=64,
        batch_size=32,
        buffer_size=1024,  # keeps the uniform actions of the first steps: Q is checked on [-1, 1]
        tau=0.1,
        target_update_interval=1,
        actor_hidden=(8,),
        critic_hidden=(16,),
        **fields,
    )
    rs, _ = jax.jit(make_train(agent, env, config))(config, jax.random.key(0))
    learner = rs.agent_state.learner
    stored = rs.agent_state.buffer.data
    assert float(stored["terminated" if terminate else "truncated"].sum()) > 0
    for a in (-1.0, 0.0, 1.0):
        q = agent.q_values(config, learner.params["critic"], jnp.ones((1, 1)), jnp.full((1, 1), a))
        np.testing.assert_allclose(q[:, 0], expected, atol=0.1)


def test_config_errors():
    with pytest.raises(RLKitError, match="--rollout-length"):
        TD3(OBS, ACT).check_config(TD3.default_config(exploration="ou", rollout_length=4))
    with pytest.raises(RLKitError, match="--exploration"):
        TD3(OBS, ACT).check_config(TD3.default_config(exploration="pink"))
    agent = SAC(OBS, ACT)
    assert (
        agent.grad_steps_per_update(SAC.default_config(utd=2.0, num_envs=2, rollout_length=4)) == 16
    )
    assert agent.grad_steps_per_update(SAC.default_config(gradient_steps=3)) == 3


TINY = [
    "--env",
    "Pendulum-v1",
    "--total-timesteps",
    "2048",
    "--buffer-size",
    "2048",
    "--actor-hidden",
    "8",
    "--critic-hidden",
    "8",
    "--batch-size",
    "16",
    "--rollout-length",
    "32",
    "--utd",
    "0.125",
]


@pytest.mark.parametrize(
    "agent",
    [
        "sac",
        pytest.param("td3", marks=pytest.mark.slow),
        pytest.param("ddpg", marks=pytest.mark.slow),
    ],
)
def test_compiled_resume_is_exact_and_policy_loads(tmp_path, monkeypatch, agent):
    extra = ["--agent", agent, *TINY, "--num-seeds", "2"]
    if agent == "ddpg":
        extra += [
            "--exploration",
            "ou",
            "--rollout-length",
            "1",
            "--utd",
            "1",
            "--total-timesteps",
            "1536",
        ]
    full, part = _full_and_resumed(tmp_path, monkeypatch, *extra)
    pa, env_id = agents.load_policy(full, which="last")
    pb, _ = agents.load_policy(part, which="last")
    jax.tree.map(np.testing.assert_array_equal, pa.params["params"], pb.params["params"])
    _same_rows(full, part)
    assert env_id == "Pendulum-v1" and pa.num_seeds == 2
    actions = pa(np.zeros((5, 3), np.float32), seed=1)
    assert actions.shape == (5, 1) and np.all(np.abs(actions) <= 2.0)


def test_host_backend_and_sweep(tmp_path):
    code, out = _run(
        tmp_path,
        "host",
        "--agent",
        "sac",
        *TINY,
        "--backend",
        "gymnasium",
        "--total-timesteps",
        "1024",
    )
    assert code == 0
    policy, _ = agents.load_policy(out)
    assert policy(np.zeros((2, 3), np.float32)).shape == (2, 1)
    code, out = _run(
        tmp_path,
        "sweep",
        "--agent",
        "td3",
        *TINY,
        "--total-timesteps",
        "1024",
        "--sweep",
        "action_noise=0.1,0.3",
    )
    assert code == 0
    policy, _ = agents.load_policy(out)
    np.testing.assert_allclose(policy.params["config"].action_noise, [0.1, 0.3])


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_pendulum_preset_learns(tmp_path, agent):
    code, out = _run(
        tmp_path, agent, "--agent", agent, "--env", "Pendulum-v1", "--eval-episodes", "20"
    )
    assert code == 0
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["eval"]["mean"] >= -200


@pytest.mark.slow
def test_sac_on_mujoco_hopper_host_backend(tmp_path):
    """A short SAC run on Gymnasium's Hopper-v5 (the [mujoco] extra) through the host backend."""
    pytest.importorskip("mujoco")
    code, out = _run(
        tmp_path,
        "hopper",
        "--agent",
        "sac",
        "--env",
        "Hopper-v5",
        "--total-timesteps",
        "3000",
        "--learning-starts",
        "1000",
        "--rollout-length",
        "8",
        "--eval-episodes",
        "2",
        "--log-every",
        "1000",
        "--checkpoint-every",
        "3000",
    )
    assert code == 0
    policy, env_id = agents.load_policy(out)
    assert env_id == "Hopper-v5"
    actions = policy(np.zeros((2, 11), np.float32))
    assert actions.shape == (2, 3) and np.all(np.abs(actions) <= 1.0)
