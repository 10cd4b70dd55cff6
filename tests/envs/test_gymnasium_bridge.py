"""Tests for envs.gymnasium: registration, the single env (env checker, seeding, one TimeLimit) and
the vector env against SyncVectorEnv (NEXT_STEP autoreset step by step). HostVecEnv: test_host.py."""

import chex
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnasium.utils.env_checker import check_env

import envs
from envs import core, host
from envs import gymnasium as bridge
from envs.wrappers import step_reads_key
from rlkit.errors import RLKitError

# ------------------------------------------------------------------------------------------------
# A toy env: its start state can be made deterministic, so two vectorisations can be compared
# observation for observation.
# ------------------------------------------------------------------------------------------------


@struct.dataclass
class CounterState(core.EnvState):
    count: chex.Array


@struct.dataclass
class CounterParams(core.EnvParams):
    threshold: int = 3
    start_low: int = 0
    start_high: int = 1  # exclusive: by default every episode starts at 0
    max_episode_steps: int = 6


class Counter(core.Environment):
    """obs = [count, time]; the action (0, 1 or 2) is added to count; reward = 1 + action;
    terminated when count >= threshold; 6 steps at most."""

    id = "TestCounter-v0"
    reward_threshold = 10.0

    @property
    def default_params(self):
        return CounterParams()

    def reset_env(self, key, params):
        count = jax.random.randint(key, (), params.start_low, params.start_high)
        state = CounterState(time=jnp.asarray(0, jnp.int32), count=count)
        return jnp.stack([count, 0]).astype(jnp.float32), state

    def step_env(self, key, state, action, params):
        state = CounterState(time=state.time + 1, count=state.count + action)
        obs = jnp.stack([state.count, state.time]).astype(jnp.float32)
        return obs, state, 1.0 + action, state.count >= params.threshold, {}

    def observation_space(self, params=None):
        return core.Box(-100.0, 100.0, (2,))

    def action_space(self, params=None):
        return core.Discrete(3)


GYM_ID = "rlkit/TestCounter-v0"


@pytest.fixture
def counter_registered(monkeypatch):
    """Registers the toy env with rlkit and Gymnasium for one test, then removes it."""
    monkeypatch.setattr(core, "_REGISTRY", dict(core._REGISTRY))
    core.register("TestCounter-v0", Counter)
    ids = bridge.register_gymnasium_envs()
    assert GYM_ID in ids
    yield
    gymnasium.registry.pop(GYM_ID, None)


# ------------------------------------------------------------------------------------------------
# Registration and the single env
# ------------------------------------------------------------------------------------------------


def test_every_rlkit_env_is_registered_with_its_spec():
    for env_id in envs.registered():
        gym_spec = gymnasium.spec(host.gymnasium_id(env_id))
        rl_spec = envs.spec(env_id)
        assert gym_spec.max_episode_steps == rl_spec.max_episode_steps
        assert gym_spec.reward_threshold == rl_spec.reward_threshold
        assert gym_spec.vector_entry_point is not None
    assert gymnasium.spec("rlkit/CartPole-v1").max_episode_steps == 500
    assert gymnasium.spec("rlkit/CartPole-v1").reward_threshold == 475.0


def test_registration_is_idempotent_and_picks_up_new_envs(counter_registered, recwarn):
    spec_before = gymnasium.spec("rlkit/CartPole-v1")
    bridge.register_gymnasium_envs()
    bridge.register_gymnasium_envs()
    assert gymnasium.spec("rlkit/CartPole-v1") is spec_before  # untouched, no re-registration
    assert not [w for w in recwarn if "Overriding" in str(w.message)]
    assert gymnasium.spec(GYM_ID).max_episode_steps == 6
    assert gymnasium.spec(GYM_ID).reward_threshold == 10.0
    assert host.gymnasium_id("ns/Env-v0") == "rlkit/ns.Env-v0"


# The MinAtar games' -v0 ids (all six actions) share everything the checker looks at with -v1.
@pytest.mark.parametrize("env_id", [e for e in envs.registered() if not e.endswith("-v0")
                                    or not e.startswith("MinAtar/")])
def test_every_env_passes_the_env_checker_and_steps_vectorised(env_id):
    env = gymnasium.make(host.gymnasium_id(env_id))
    assert isinstance(env.unwrapped, bridge.RLKitGymEnv)
    check_env(env.unwrapped, skip_render_check=True)
    rl_env, params = envs.make(env_id)
    assert env.observation_space == rl_env.observation_space(params).to_gymnasium()
    assert env.action_space == rl_env.action_space(params).to_gymnasium()
    venv = gymnasium.make_vec(
        host.gymnasium_id(env_id), 3, vectorization_mode="vector_entry_point"
    )
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, *env.observation_space.shape) and obs in venv.observation_space
    obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
    assert obs in venv.observation_space
    assert reward.shape == terminated.shape == truncated.shape == (3,)


def test_single_env_outputs_are_numpy_and_python_values():
    env = gymnasium.make("rlkit/CartPole-v1")
    assert env.action_space == gymnasium.spaces.Discrete(2)
    obs, info = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32 and info == {}
    obs, reward, terminated, truncated, info = env.step(1)
    assert isinstance(obs, np.ndarray) and type(reward) is float and reward == 1.0
    assert type(terminated) is bool and type(truncated) is bool


def _rollout(env, seed, actions):
    out = [env.reset(seed=seed)[0]]
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append(np.concatenate([obs, [reward, terminated, truncated]]))
        if terminated or truncated:
            out.append(env.reset()[0])
    return np.concatenate(out)


def test_single_env_seed_gives_the_same_trajectory():
    actions = np.random.default_rng(0).integers(0, 2, 60)
    env_a, env_b = gymnasium.make("rlkit/CartPole-v1"), gymnasium.make("rlkit/CartPole-v1")
    first = _rollout(env_a, 5, actions)
    np.testing.assert_array_equal(first, _rollout(env_b, 5, actions))
    np.testing.assert_array_equal(first, _rollout(env_a, 5, actions))  # re-seeding repeats it
    assert not np.array_equal(first, _rollout(env_a, 6, actions))


def test_single_env_physics_matches_gymnasium_cartpole():
    ours, theirs = gymnasium.make("rlkit/CartPole-v1"), gymnasium.make("CartPole-v1")
    obs, _ = ours.reset(seed=1)
    theirs.reset(seed=1)
    theirs.unwrapped.state = obs.astype(np.float64)
    for a in [1, 1, 0, 1, 0, 0, 0, 1]:
        obs, r, te, tr, _ = ours.step(a)
        ref, r_ref, te_ref, tr_ref, _ = theirs.step(a)
        np.testing.assert_allclose(obs, ref, rtol=1e-5, atol=1e-6)
        assert (r, te, tr) == (r_ref, te_ref, tr_ref)


def test_time_limit_is_applied_once(counter_registered):
    env = gymnasium.make(GYM_ID)
    assert env.unwrapped.params.max_episode_steps == bridge._NO_TIME_LIMIT
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(6)]
    assert flags == [(False, False)] * 5 + [(False, True)]  # truncated by TimeLimit at 6
    env = gymnasium.make(GYM_ID, max_episode_steps=3)  # the override replaces, not adds
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]
    with pytest.raises(RLKitError, match="max_episode_steps"):
        bridge.RLKitGymEnv("CartPole-v1", max_episode_steps=5)


# ------------------------------------------------------------------------------------------------
# The vector env against SyncVectorEnv
# ------------------------------------------------------------------------------------------------


def _run_vector(venv, seed, actions):
    obs, _ = venv.reset(seed=seed)
    out = [(obs, None, None, None)]
    for a in actions:
        obs, reward, terminated, truncated, _ = venv.step(a)
        out.append((obs, reward, terminated, truncated))
    return out


def test_vector_env_equals_sync_vector_env_step_by_step(counter_registered):
    num_envs, num_steps = 5, 40
    actions = np.random.default_rng(0).integers(0, 3, (num_steps, num_envs))
    actions[:, 0] = 0  # sub-env 0 only ever truncates
    actions[:, 1] = 2  # sub-env 1: 0 -> 2 -> 4 terminates, then resets: period 3
    ours = gymnasium.make_vec(GYM_ID, num_envs, vectorization_mode="vector_entry_point")
    sync = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(GYM_ID)] * num_envs)
    assert isinstance(ours, bridge.RLKitVectorEnv)
    assert ours.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    assert ours.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    assert ours.single_observation_space == sync.single_observation_space
    assert ours.single_action_space == sync.single_action_space
    assert ours.action_space == sync.action_space
    got, want = _run_vector(ours, 0, actions), _run_vector(sync, 0, actions)
    for t, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g[0], w[0], err_msg=f"obs at step {t}")
        if t:
            np.testing.assert_array_equal(g[1], w[1], err_msg=f"reward at step {t}")
            np.testing.assert_array_equal(g[2], w[2], err_msg=f"terminated at step {t}")
            np.testing.assert_array_equal(g[3], w[3], err_msg=f"truncated at step {t}")
    rewards = np.array([g[1] for g in got[1:]])
    terminated = np.array([g[2] for g in got[1:]])
    truncated = np.array([g[3] for g in got[1:]])
    # The comparison covered every kind of boundary.
    assert truncated[:, 0].any() and not terminated[:, 0].any()
    assert terminated[:, 1].any() and terminated.sum() > terminated[:, 1].sum()
    assert (rewards == 0).any() and (rewards[:, 1] == 0).sum() == num_steps // 3
    done = terminated | truncated
    # After each end: reward 0, both flags False, a start obs; other sub-envs moved on.
    np.testing.assert_array_equal(rewards[1:][done[:-1]], 0.0)
    assert not (terminated[1:] | truncated[1:])[done[:-1]].any()
    np.testing.assert_array_equal(np.array([g[0] for g in got[2:]])[done[:-1]], 0.0)
    assert (rewards[1:][~done[:-1]] >= 1).all()


def test_vector_env_cartpole_next_step_autoreset():
    num_envs, num_steps, limit = 4, 80, 12
    venv = gymnasium.make_vec(
        "rlkit/CartPole-v1",
        num_envs,
        vectorization_mode="vector_entry_point",
        max_episode_steps=limit,
    )
    twin = gymnasium.make_vec(
        "rlkit/CartPole-v1",
        num_envs,
        vectorization_mode="vector_entry_point",
        max_episode_steps=limit,
    )
    physics = gymnasium.make("CartPole-v1").unwrapped
    actions = np.random.default_rng(1).integers(0, 2, (num_steps, num_envs))
    obs, _ = venv.reset(seed=3)
    twin_obs, _ = twin.reset(seed=3)
    np.testing.assert_array_equal(obs, twin_obs)
    pending = np.zeros(num_envs, bool)
    length = np.zeros(num_envs, int)
    ends = resets = 0
    for t in range(num_steps):
        prev = obs
        obs, reward, terminated, truncated, _ = venv.step(actions[t])
        # The twin gets other actions on resetting sub-envs: they must be ignored.
        twin_obs, twin_r, twin_te, twin_tr, _ = twin.step(
            np.where(pending, 1 - actions[t], actions[t])
        )
        for a, b in [
            (obs, twin_obs),
            (reward, twin_r),
            (terminated, twin_te),
            (truncated, twin_tr),
        ]:
            np.testing.assert_array_equal(a, b)
        for i in range(num_envs):
            if pending[i]:  # the reset step
                resets += 1
                assert reward[i] == 0 and not terminated[i] and not truncated[i]
                assert np.all(np.abs(obs[i]) <= 0.05)
                length[i] = 0
            else:  # a physics step, also for sub-envs beside one that resets
                physics.state = prev[i].astype(np.float64)
                physics.steps_beyond_terminated = None
                ref, _, ref_te, _, _ = physics.step(int(actions[t, i]))
                np.testing.assert_allclose(obs[i], ref, rtol=1e-5, atol=1e-6)
                length[i] += 1
                assert reward[i] == 1.0 and terminated[i] == ref_te
                assert truncated[i] == (length[i] == limit)
        pending = terminated | truncated
        ends += pending.sum()
    assert ends >= 4 and resets >= 4


def test_vector_env_one_compiled_call_per_step_and_no_recompilation(monkeypatch):
    venv = gymnasium.make_vec("rlkit/CartPole-v1", 3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    program = venv.unwrapped._program
    # Warm up both sizes of the reset-index argument (none, and padded to 8).
    seen = set()
    while len(seen) < 2:
        seen.add(bridge._padded_indices(venv.unwrapped._autoreset).size)
        venv.step(np.array([1, 1, 1]))
    size = program.step_next._cache_size()
    calls = []
    real_step = program.step_next
    monkeypatch.setattr(program, "step_next", lambda *a: calls.append(1) or real_step(*a))
    for t in range(40):
        venv.step(np.array([t % 2, 1, 0]))
    assert len(calls) == 40
    assert real_step._cache_size() == size  # no recompilation
    monkeypatch.undo()
    assert list(bridge._padded_indices(np.array([0, 1, 1, 0, 0, 0, 0, 0, 0, 1]))) == [
        1, 2, 9, 10, 10, 10, 10, 10
    ]
    assert bridge._padded_indices(np.zeros(5, bool)).size == 0
    assert bridge._padded_indices(np.arange(40) < 9).size == 16  # the next power of two
    assert bridge._padded_indices(np.ones(20, bool)).size == 20  # at most num_envs
    # Same seed, same trajectory; a reset with a mask only touches the masked sub-envs.
    obs_before = venv.step(np.array([0, 0, 0]))[0]
    obs, _ = venv.reset(options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(obs[[0, 2]], obs_before[[0, 2]])
    assert np.all(np.abs(obs[1]) <= 0.05)
    with pytest.raises(RLKitError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.array([True, False])})


def test_vector_env_checks_every_action_it_is_stepped_with():
    venv = gymnasium.make_vec("rlkit/CartPole-v1", 3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    for bad in ([0, 2, 1], [-1, 0, 0], [0, 1], [0.5, 1.0, 0.0]):
        with pytest.raises(RLKitError, match=r"action: .* outside the action space"):
            venv.step(np.array(bad))
    # Integral floats and other integer dtypes are accepted, as the single env accepts them.
    obs_a = venv.step(np.array([1.0, 0.0, 1.0]))[0]
    venv.reset(seed=0)
    obs_b = venv.step(np.array([1, 0, 1], np.uint8))[0]
    np.testing.assert_array_equal(obs_a, obs_b)


# ------------------------------------------------------------------------------------------------
# Writable outputs, bit-equality with the jitted env, SAME_STEP, sparse resets, rendering
# ------------------------------------------------------------------------------------------------


def test_single_env_checks_every_action_it_is_stepped_with():
    # Python and numpy ints in range take the fast path; everything else goes through
    # core.check_action, which names the action (bools are not actions, as in Gymnasium).
    env = gymnasium.make("rlkit/CartPole-v1").unwrapped
    for bad in (2, -1, np.int64(2), True, np.bool_(False), 0.5, [0, 1]):
        env.reset(seed=0)
        with pytest.raises(RLKitError, match=r"action: .* outside the action space"):
            env.step(bad)
    outs = []
    for good in (1, np.int64(1), np.uint8(1), np.array(1), 1.0):
        env.reset(seed=0)
        outs.append(env.step(good)[0])
    for obs in outs[1:]:
        np.testing.assert_array_equal(obs, outs[0])


def test_outputs_are_writable_numpy_arrays():
    env = gymnasium.make("rlkit/CartPole-v1")
    obs, _ = env.reset(seed=0)
    obs[0] += 1.0  # would raise on a read-only view of a device buffer
    obs, *_ = env.step(0)
    obs[:] = 0.0
    venv = gymnasium.make_vec("rlkit/CartPole-v1", 3, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    obs += 1.0
    obs, rewards, terminated, truncated, _ = venv.step(np.array([0, 1, 0]))
    rewards[1] += 0.5  # what SB3's PPO does to bootstrap truncated episodes
    terminated[0] = truncated[0] = True
    obs[2, 0] = 7.0
    assert rewards[1] == 1.5


def _deterministic_ids():
    """Registered envs whose step ignores its key (the classic-control dynamics): for them the
    reference step below can use any key."""
    ids = []
    for env_id in envs.registered():
        env, params = envs.make(env_id)
        _obs, state = env.reset(jax.random.PRNGKey(0), params)
        action = env.action_space(params).sample(jax.random.PRNGKey(1))
        if not step_reads_key(env, jax.random.PRNGKey(2), state, action, params):
            ids.append(env_id)
    return ids


@pytest.mark.parametrize("env_id", _deterministic_ids())
def test_single_env_is_bit_equal_to_the_jitted_env_step(env_id):
    """The packed single-env program computes what ``jax.jit(env.step)`` computes."""
    env = gymnasium.make(host.gymnasium_id(env_id)).unwrapped
    rl_env, params = env.rlkit_env, env.params
    step = jax.jit(rl_env.step)
    env.reset(seed=3)
    env.action_space.seed(4)
    key = jax.random.PRNGKey(0)  # the classic-control dynamics do not read the step key
    steps = 0
    for _ in range(150):
        state = env.rlkit_state
        action = env.action_space.sample()
        obs, reward, terminated, _truncated, _ = env.step(action)
        ref = step(key, state, jnp.asarray(action), params)
        np.testing.assert_array_equal(obs, np.asarray(ref[0]))
        assert obs.tobytes() == np.asarray(ref[0]).tobytes()
        assert np.float32(reward) == np.asarray(ref[2]) and terminated == bool(ref[3])
        assert jax.tree.map(np.asarray, ref[1]).time == env.rlkit_state.time
        steps += 1
        if terminated:
            env.reset()
    assert steps == 150


def _run_vector_with_info(venv, seed, actions):
    obs, _ = venv.reset(seed=seed)
    out = [(obs, None, None, None, {})]
    for a in actions:
        out.append(venv.step(a))
    return out


@pytest.mark.parametrize("num_envs", [5, 520])  # 520: the sparse-reset path (VecEnv.SPARSE_FROM)
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_equals_sync_vector_env_in_both_autoreset_modes(
    counter_registered, num_envs, mode
):
    from gymnasium.vector import AutoresetMode

    gym_mode = AutoresetMode.NEXT_STEP if mode == "next_step" else AutoresetMode.SAME_STEP
    num_steps = 16
    actions = np.random.default_rng(1).integers(0, 3, (num_steps, num_envs))
    ours = gymnasium.make_vec(
        GYM_ID, num_envs, vectorization_mode="vector_entry_point", autoreset_mode=mode
    )
    if num_envs >= 512:
        assert ours.unwrapped._program.sparse_resets
    sync = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make(GYM_ID)] * num_envs, autoreset_mode=gym_mode
    )
    assert ours.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == gym_mode
    got, want = _run_vector_with_info(ours, 0, actions), _run_vector_with_info(sync, 0, actions)
    ended = 0
    for t, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g[0], w[0], err_msg=f"obs at step {t}")
        if not t:
            continue
        for i, name in [(1, "reward"), (2, "terminated"), (3, "truncated")]:
            np.testing.assert_array_equal(g[i], w[i], err_msg=f"{name} at step {t}")
            assert g[i].dtype == w[i].dtype or name == "reward"
        assert sorted(g[4]) == sorted(w[4]), f"info keys at step {t}"
        if "final_obs" in w[4]:
            np.testing.assert_array_equal(g[4]["_final_obs"], w[4]["_final_obs"])
            for i in np.flatnonzero(w[4]["_final_obs"]):
                np.testing.assert_array_equal(g[4]["final_obs"][i], w[4]["final_obs"][i])
            assert all(x is None for x in g[4]["final_obs"][~w[4]["_final_obs"]])
            ended += w[4]["_final_obs"].sum()
    if mode == "same_step":
        assert ended > num_envs  # every sub-env ends at least once in 16 steps (limit 6)


def test_vector_env_rejects_bad_autoreset_mode():
    with pytest.raises(RLKitError, match="autoreset_mode"):
        bridge.RLKitVectorEnv(2, "CartPole-v1", autoreset_mode="disabled")


CLASSIC_IDS = [e for e in envs.registered() if not e.startswith("MinAtar/")]


@pytest.mark.parametrize("env_id", CLASSIC_IDS)
def test_rgb_array_frames_match_gymnasium_for_the_same_trajectory(env_id):
    pytest.importorskip("pygame")
    ours = gymnasium.make(host.gymnasium_id(env_id), render_mode="rgb_array")
    theirs = gymnasium.make(env_id, render_mode="rgb_array").unwrapped
    assert ours.metadata["render_modes"] == ["rgb_array"] and ours.render_mode == "rgb_array"
    obs, _ = ours.reset(seed=0)
    theirs.reset(seed=0)
    # Gymnasium's env starts from our start state, then both follow the same actions with their
    # own physics (float32 here, float64 there).
    start = ours.unwrapped.rlkit_state
    if env_id == "CartPole-v1":
        theirs.state = obs.astype(np.float64)
    elif env_id == "Acrobot-v1":
        theirs.state = np.array([start.theta1, start.theta2, start.dtheta1, start.dtheta2], float)
    elif env_id == "Pendulum-v1":
        theirs.state = np.array([start.theta, start.theta_dot], float)
    else:
        theirs.state = np.array([start.position, start.velocity], float)
    frame = ours.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    np.testing.assert_array_equal(frame, theirs.render())
    ours.action_space.seed(1)
    for _ in range(12):
        action = ours.action_space.sample()
        _, _, terminated, _, _ = ours.step(action)
        theirs.step(action)
        a, b = ours.render(), theirs.render()
        assert a.shape == b.shape
        # The drawings agree up to the pixels where float32 and float64 states round apart.
        assert np.mean(np.any(a != b, axis=-1)) < 2e-3
        if terminated:
            break
    ours.close()
    theirs.close()


def test_render_mode_errors_and_vector_frames(counter_registered):
    with pytest.raises(RLKitError, match="render_mode"):
        gymnasium.make("rlkit/CartPole-v1", render_mode="ansi")
    with pytest.raises(RLKitError, match="render_mode"):
        bridge.RLKitGymEnv("CartPole-v1", render_mode="human")
    # Gymnasium itself turns "human" into its HumanRendering window over our rgb_array frames.
    human = gymnasium.make("rlkit/CartPole-v1", render_mode="human")
    assert isinstance(human, gymnasium.wrappers.HumanRendering)
    assert human.unwrapped.render_mode == "rgb_array"
    with pytest.raises(RLKitError, match="render_mode"):
        gymnasium.make(GYM_ID, render_mode="rgb_array")  # no renderer for the toy env
    assert gymnasium.make(GYM_ID).metadata["render_modes"] == []
    pytest.importorskip("pygame")
    venv = gymnasium.make_vec(
        "rlkit/CartPole-v1", 2, vectorization_mode="vector_entry_point", render_mode="rgb_array"
    )
    _obs, _ = venv.reset(seed=0)
    frames = venv.render()
    assert len(frames) == 2 and frames[0].shape == (400, 600, 3)
    sub = jax.tree.map(lambda x: x[1], venv.unwrapped.rlkit_state)
    params = venv.unwrapped.params
    np.testing.assert_array_equal(frames[1], envs.render.render_frame("CartPole-v1", sub, params))
    assert not np.array_equal(frames[0], frames[1])


def test_gymnasium_make_with_module_prefix_needs_no_import():
    """``"envs:rlkit/<id>"`` works in a process that never imported ``envs``."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium\n"
        "assert 'envs' not in sys.modules\n"
        "env = gymnasium.make('envs:rlkit/CartPole-v1')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, obs.shape, env.spec.max_episode_steps)\n"
        "venv = gymnasium.make_vec('envs:rlkit/CartPole-v1', 2,"
        " vectorization_mode='vector_entry_point')\n"
        "print(type(venv).__name__, venv.reset(seed=0)[0].shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split() == ["RLKitGymEnv", "(4,)", "500", "RLKitVectorEnv", "(2,", "4)"]


_INLINE_ROLLOUT = """
import sys
import numpy as np
import gymnasium
import envs
if __name__ == "__main__" and sys.argv[1:] == ["inline"]:
    envs.gymnasium_bridge.use_inline_cpu_dispatch()
import jax
venv = gymnasium.make_vec("rlkit/CartPole-v1", 64, vectorization_mode="vector_entry_point")
obs, _ = venv.reset(seed=3)
total = [obs.sum()]
for a in np.random.default_rng(0).integers(0, 2, (60, 64)):
    obs, rew, term, trunc, _ = venv.step(a)
    total += [obs.sum(), rew.sum(), term.sum(), trunc.sum()]
print(jax.config.values["jax_cpu_enable_async_dispatch"], repr(float(np.sum(total))))
"""


def test_inline_cpu_dispatch_takes_effect_and_changes_no_result(capsys):
    """``use_inline_cpu_dispatch`` at the top of a script switches JAX's CPU dispatch, and the
    bridge's rollout is the same number for number as with JAX's default (this process); once
    JAX has started it is an error."""
    import subprocess
    import sys

    inline = subprocess.run(
        [sys.executable, "-c", _INLINE_ROLLOUT, "inline"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.split()
    exec(compile(_INLINE_ROLLOUT, "<rollout>", "exec"), {"__name__": "rollout"})
    here = capsys.readouterr().out.split()
    assert here[0] == "True" and inline[0] == "False"
    assert inline[1] == here[1]
    with pytest.raises(RLKitError, match="before the first JAX computation"):
        envs.gymnasium_bridge.use_inline_cpu_dispatch()
