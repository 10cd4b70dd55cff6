"""Tests for envs.wrappers: exact episode boundaries on a toy counter env and on CartPole, episode
statistics, vectorisation, jit/scan, no recompilation, and errors."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import envs
from envs import core
from envs.cartpole import CartPoleState
from envs.wrappers import (
    AutoResetWrapper,
    EpisodeStatistics,
    VecEnv,
    Wrapper,
    fused_split,
    fused_uniform,
    make_vec,
    step_reads_key,
)
from rlkit.errors import RLKitError

# ------------------------------------------------------------------------------------------------
# A toy env whose boundaries are known by hand
# ------------------------------------------------------------------------------------------------


@struct.dataclass
class CounterState(core.EnvState):
    count: chex.Array


@struct.dataclass
class CounterParams(core.EnvParams):
    threshold: int = 2
    start_low: int = -3
    start_high: int = 0  # exclusive
    max_episode_steps: int = 5


class Counter(core.Environment):
    """count starts in [start_low, start_high); each step adds the action (0 or 1).

    obs = [count, time]; reward = 1 + action (never 0); terminated when count >= threshold.
    """

    id = "Counter-v0"

    @property
    def default_params(self):
        return CounterParams()

    def reset_env(self, key, params):
        count = jax.random.randint(key, (), params.start_low, params.start_high)
        state = CounterState(time=jnp.asarray(0, jnp.int32), count=count)
        return self.obs(state), state

    def obs(self, state):
        return jnp.stack([state.count, state.time]).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        state = CounterState(time=state.time + 1, count=state.count + action)
        reward = 1.0 + action
        return self.obs(state), state, reward, state.count >= params.threshold, {}

    def observation_space(self, params=None):
        return core.Box(-100.0, 100.0, (2,))

    def action_space(self, params=None):
        return core.Discrete(2)


class NoisyCounter(Counter):
    """The same, but the step reads its key (adds noise to the reward)."""

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, state, reward + jax.random.uniform(key), terminated, info


def reference_rollout(start_counts, actions, params=None):
    """Pure-Python Counter with autoreset.

    ``start_counts`` iterates over the start count of each episode. Returns, per step, a dict
    with the reward, the flags and the final observation ``[count, time]``.
    """
    params = CounterParams() if params is None else params
    count, time, out = next(start_counts), 0, []
    for a in actions:
        count, time = count + a, time + 1
        terminated = count >= params.threshold
        truncated = time >= params.max_episode_steps
        out.append(
            {
                "reward": 1.0 + a,
                "terminated": terminated,
                "truncated": truncated,
                "final_obs": [count, time],
            }
        )
        if terminated or truncated:
            count, time = next(start_counts), 0
    return out


KEY = jax.random.PRNGKey(42)


# ------------------------------------------------------------------------------------------------
# Fused random numbers: jax.random's values
# ------------------------------------------------------------------------------------------------

KEYS = {
    "raw": jax.random.PRNGKey(3),
    "typed": jax.random.key(5),
    "rbg (falls back)": jax.random.key(5, impl="rbg"),
}


def _data(keys):
    return np.asarray(jax.random.key_data(keys))


@pytest.mark.parametrize("kind", list(KEYS))
def test_fused_split_equals_jax_random_split(kind):
    key = KEYS[kind]
    for num in [1, 2, 7, 1000]:
        ours = fused_split(key, num)
        assert ours.dtype == key.dtype and ours.shape[0] == num
        np.testing.assert_array_equal(_data(ours), _data(jax.random.split(key, num)))
    batch = jax.random.split(key, 5)  # under vmap and jit too
    ours = jax.jit(jax.vmap(lambda k: fused_split(k, 3)))(batch)
    np.testing.assert_array_equal(
        _data(ours), _data(jax.vmap(lambda k: jax.random.split(k, 3))(batch))
    )


@pytest.mark.parametrize("kind", list(KEYS))
def test_fused_uniform_equals_jax_random_uniform(kind):
    key = KEYS[kind]
    cases = [
        ((), 0.0, 1.0),
        ((4,), -0.05, 0.05),
        ((2, 3), -1.0, jnp.arange(3.0)),
        ((100,), 0.0, 2.0),
    ]
    for shape, lo, hi in cases:

        def ours(k, shape=shape, lo=lo, hi=hi):
            return fused_uniform(k, shape, jnp.float32, lo, hi)

        def theirs(k, shape=shape, lo=lo, hi=hi):
            return jax.random.uniform(k, shape, jnp.float32, lo, hi)

        np.testing.assert_array_equal(ours(key), theirs(key))
        batch = jax.random.split(key, 64)
        np.testing.assert_array_equal(jax.jit(jax.vmap(ours))(batch), jax.vmap(theirs)(batch))
    np.testing.assert_array_equal(fused_uniform(key, [2, 2]), jax.random.uniform(key, [2, 2]))
    # Anything but float32 goes to jax.random.uniform as is.
    bf16 = fused_uniform(key, (3,), jnp.bfloat16)
    assert bf16.dtype == jnp.bfloat16
    np.testing.assert_array_equal(bf16, jax.random.uniform(key, (3,), jnp.bfloat16))


def test_fused_rng_matches_jax_random_statistics():
    samples = jax.vmap(lambda k: fused_uniform(k, (4,), jnp.float32, -0.05, 0.05))(
        jax.random.split(KEY, 20_000)
    )
    assert float(samples.min()) >= -0.05 and float(samples.max()) < 0.05
    np.testing.assert_allclose(samples.mean(0), 0.0, atol=2e-3)
    np.testing.assert_allclose(samples.std(0), 0.1 / math.sqrt(12), rtol=0.03)
    assert np.abs(np.corrcoef(np.asarray(samples).T) - np.eye(4)).max() < 0.05


# ------------------------------------------------------------------------------------------------
# AutoResetWrapper
# ------------------------------------------------------------------------------------------------


def test_step_reads_key_detects_deterministic_and_noisy_steps():
    env, params = Counter(), CounterParams()
    _, state = env.reset(KEY, params)
    assert not step_reads_key(env, KEY, state, jnp.int32(1), params)
    assert step_reads_key(NoisyCounter(), KEY, state, jnp.int32(1), params)
    cp, cp_params = envs.make("CartPole-v1")
    _, cp_state = cp.reset(KEY, cp_params)
    assert not step_reads_key(cp, KEY, cp_state, jnp.int32(0), cp_params)
    # Also from inside a trace, with tracer arguments.
    seen = []
    jax.jit(lambda k, s: seen.append(step_reads_key(env, k, s, jnp.int32(1), params)))(KEY, state)
    assert seen == [False]


@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize("use_jit", [False, True])
def test_autoreset_boundary_is_exact(noisy, use_jit):
    inner = NoisyCounter() if noisy else Counter()
    env = AutoResetWrapper(inner)
    params = inner.default_params
    step = jax.jit(env.step) if use_jit else env.step
    obs, state = env.reset(KEY, params)
    # Ones from a count in [-3, 0) reach 2 within 5 steps; ten zeros hit the time limit (5).
    actions = [1] * 5 + [0] * 10 + [1] * 10
    ends = {"terminated": 0, "truncated": 0}
    for t, a in enumerate(actions):
        key = jax.random.fold_in(KEY, t)
        key_step, key_reset = jax.random.split(key) if noisy else (key, key)
        # The inner env's own step and reset, with the keys the wrapper promises to use.
        ref_obs, ref_state, ref_r, ref_te, ref_tr, _ = inner.step(key_step, state, a, params)
        reset_obs, reset_state = inner.reset(key_reset, params)
        obs, state, r, te, tr, info = step(key, state, jnp.int32(a), params)
        np.testing.assert_array_equal(info["final_obs"], ref_obs)
        assert (float(r), bool(te), bool(tr)) == (float(ref_r), bool(ref_te), bool(ref_tr))
        if bool(ref_te) or bool(ref_tr):
            ends["terminated"] += bool(ref_te)
            ends["truncated"] += bool(ref_tr)
            np.testing.assert_array_equal(obs, reset_obs)  # the first obs of the next episode
            chex.assert_trees_all_equal(state, reset_state)
            assert not np.array_equal(obs, info["final_obs"])  # time differs: 0 vs >= 1
        else:
            np.testing.assert_array_equal(obs, ref_obs)
            chex.assert_trees_all_equal(state, ref_state)
    assert ends["terminated"] >= 2 and ends["truncated"] >= 1, ends


def test_autoreset_matches_hand_reference_for_terminations_and_truncations():
    env = AutoResetWrapper(Counter())
    params = CounterParams()
    actions = [1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1]
    obs, state = env.reset(KEY, params)
    starts = [int(obs[0])]
    outs = []
    step = jax.jit(env.step)
    for t, a in enumerate(actions):
        obs, state, r, te, tr, info = step(jax.random.fold_in(KEY, t), state, a, params)
        outs.append((float(r), bool(te), bool(tr), np.asarray(info["final_obs"]).tolist()))
        if bool(te) or bool(tr):
            assert float(obs[1]) == 0.0 and -3 <= obs[0] < 0  # a reset observation
            starts.append(int(obs[0]))
    ref = reference_rollout(iter(starts), actions)
    assert outs == [(o["reward"], o["terminated"], o["truncated"], o["final_obs"]) for o in ref]
    assert any(o["terminated"] for o in ref) and any(o["truncated"] for o in ref)


# ------------------------------------------------------------------------------------------------
# EpisodeStatistics
# ------------------------------------------------------------------------------------------------


def test_episode_statistics_returns_and_lengths():
    env = EpisodeStatistics(AutoResetWrapper(Counter()))
    params = CounterParams()
    _, state = env.reset(KEY, params)
    assert float(state.episode_return) == 0.0 and int(state.episode_length) == 0
    actions = [1] * 5 + [0] * 10 + [1] * 10
    running_return, running_length, completed = 0.0, 0, []
    step = jax.jit(env.step)
    for t, a in enumerate(actions):
        _, state, r, te, tr, info = step(jax.random.fold_in(KEY, t), state, a, params)
        running_return += float(r)
        running_length += 1
        assert float(info["episode_return"]) == running_return
        assert int(info["episode_length"]) == running_length
        assert bool(info["returned_episode"]) == (bool(te) or bool(tr))
        assert info["episode_return"].dtype == jnp.float32
        assert info["episode_length"].dtype == jnp.int32
        if bool(info["returned_episode"]):
            completed.append((running_return, running_length))
            running_return, running_length = 0.0, 0
        assert float(state.episode_return) == running_return
        assert int(state.episode_length) == running_length
    assert len(completed) >= 3


def test_statistics_inside_or_outside_autoreset_agree():
    params = CounterParams()
    outer = EpisodeStatistics(AutoResetWrapper(Counter()))
    inner = AutoResetWrapper(EpisodeStatistics(Counter()))
    _, s_out = outer.reset(KEY, params)
    _, s_in = inner.reset(KEY, params)
    for t, a in enumerate([1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1]):
        key = jax.random.fold_in(KEY, t)
        _, s_out, *_, i_out = outer.step(key, s_out, a, params)
        _, s_in, *_, i_in = inner.step(key, s_in, a, params)
        for name in ("returned_episode", "episode_return", "episode_length", "final_obs"):
            np.testing.assert_array_equal(i_out[name], i_in[name])


# ------------------------------------------------------------------------------------------------
# VecEnv and make_vec
# ------------------------------------------------------------------------------------------------


def test_make_vec_boundaries_per_sub_env_match_hand_reference():
    num_envs = 3
    core_registry = dict(core._REGISTRY)
    venv, params = make_vec(Counter(), num_envs, threshold=1, max_episode_steps=5)
    assert core._REGISTRY == core_registry  # an instance is used as is, nothing is registered
    assert venv.num_envs == num_envs and (params.threshold, params.max_episode_steps) == (1, 5)
    assert venv.observation_space().shape == (2,) and venv.action_space().n == 2
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(20, num_envs)).astype(np.int32)
    actions[:, 0] = 1  # sub-env 0 always moves: terminations only
    actions[:, 1] = 0  # sub-env 1 never moves: truncations only
    reset, step = jax.jit(venv.reset), jax.jit(venv.step)
    obs, state = reset(KEY, params)
    assert obs.shape == (num_envs, 2)
    starts = [[int(c)] for c in obs[:, 0]]
    outs = [[] for _ in range(num_envs)]
    for t in range(len(actions)):
        prev_obs = obs
        obs, state, r, te, tr, info = step(jax.random.fold_in(KEY, t), state, actions[t], params)
        done = np.asarray(te | tr)
        for i in range(num_envs):
            outs[i].append(
                (
                    float(r[i]),
                    bool(te[i]),
                    bool(tr[i]),
                    np.asarray(info["final_obs"][i]).tolist(),
                    float(info["episode_return"][i]),
                    int(info["episode_length"][i]),
                )
            )
            if done[i]:
                assert obs[i, 1] == 0 and -3 <= obs[i, 0] < 0  # a reset obs
                starts[i].append(int(obs[i, 0]))
            else:  # untouched sub-envs keep stepping normally
                np.testing.assert_array_equal(
                    obs[i], [prev_obs[i, 0] + actions[t, i], prev_obs[i, 1] + 1]
                )
                np.testing.assert_array_equal(obs[i], info["final_obs"][i])
        np.testing.assert_array_equal(info["returned_episode"], done)
    for i in range(num_envs):
        ref = reference_rollout(iter(starts[i]), actions[:, i].tolist(), params)
        ret, length, expected = 0.0, 0, []
        for o in ref:
            ret, length = ret + o["reward"], length + 1
            expected.append(
                (o["reward"], o["terminated"], o["truncated"], o["final_obs"], ret, length)
            )
            if o["terminated"] or o["truncated"]:
                ret, length = 0.0, 0
        assert outs[i] == expected, f"sub-env {i}"
    flags = np.array([[(o[1], o[2]) for o in outs[i]] for i in range(num_envs)])
    assert flags[0, :, 0].any() and not flags[0, :, 1].any()  # sub-env 0: terminations
    assert flags[1, :, 1].any() and not flags[1, :, 0].any()  # sub-env 1: truncations


def _per_env_keys(key, num_envs):
    # One env uses the key itself; more envs get a split.
    return [key] if num_envs == 1 else list(jax.random.split(key, num_envs))


@pytest.mark.parametrize("num_envs", [1, 4])
def test_vec_env_equals_per_env_loop_with_split_keys(num_envs):
    single = EpisodeStatistics(AutoResetWrapper(NoisyCounter()))
    venv = VecEnv(single, num_envs)
    params = CounterParams()
    obs, state = venv.reset(KEY, params)
    singles = [single.reset(k, params) for k in _per_env_keys(KEY, num_envs)]
    for i in range(num_envs):
        np.testing.assert_array_equal(obs[i], singles[i][0])
    actions = jnp.asarray(np.random.default_rng(1).integers(0, 2, (8, num_envs)), jnp.int32)
    for t in range(8):
        key = jax.random.fold_in(KEY, t)
        obs, state, r, te, tr, info = venv.step(key, state, actions[t], params)
        for i, k in enumerate(_per_env_keys(key, num_envs)):
            o, s, r_i, te_i, tr_i, info_i = single.step(k, singles[i][1], actions[t, i], params)
            singles[i] = (o, s)
            np.testing.assert_array_equal(obs[i], o)
            np.testing.assert_allclose(r[i], r_i, rtol=1e-6)
            assert (bool(te[i]), bool(tr[i])) == (bool(te_i), bool(tr_i))
            np.testing.assert_allclose(
                info["episode_return"][i], info_i["episode_return"], rtol=1e-6
            )


def _scan_rollout(venv, params, key, num_steps):
    def body(carry, key_t):
        obs, state = carry
        key_act, key_step = jax.random.split(key_t)
        actions = jax.random.randint(key_act, (venv.num_envs,), 0, 2)
        next_obs, state, r, te, tr, info = venv.step(key_step, state, actions, params)
        out = dict(
            obs=obs,
            actions=actions,
            next_obs=next_obs,
            reward=r,
            terminated=te,
            truncated=tr,
            **info,
        )
        return (next_obs, state), out

    obs, state = venv.reset(key, params)
    _, traj = jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps))
    return traj


def test_make_vec_cartpole_boundaries_under_scan():
    num_envs, num_steps, limit = 8, 60, 20
    venv, params = make_vec("CartPole-v1", num_envs, max_episode_steps=limit)
    env, _ = envs.make("CartPole-v1")
    rollout = jax.jit(_scan_rollout, static_argnums=(0, 3))
    traj = jax.device_get(rollout(venv, params, KEY, num_steps))
    te, tr = traj["terminated"], traj["truncated"]
    done = te | tr
    assert te.any() and tr.any() and not done.all()
    np.testing.assert_array_equal(done, traj["returned_episode"])
    # The final obs is the physics step of obs; checked against the env's own step.
    states = CartPoleState(
        time=jnp.zeros(traj["obs"].shape[:2], jnp.int32),
        **{n: traj["obs"][..., j] for j, n in enumerate(["x", "x_dot", "theta", "theta_dot"])},
    )
    stepped = jax.vmap(jax.vmap(lambda s, a: env.step_env(KEY, s, a, params)[0]))(
        states, traj["actions"]
    )
    np.testing.assert_allclose(traj["final_obs"], stepped, rtol=1e-6, atol=1e-6)
    # Where not done, the next obs is the final obs; where done, a fresh start state.
    np.testing.assert_array_equal(traj["next_obs"][~done], traj["final_obs"][~done])
    assert np.all(np.abs(traj["next_obs"][done]) <= 0.05)
    assert not np.any(np.all(traj["next_obs"][done] == traj["final_obs"][done], axis=-1))
    # Terminated exactly when the final obs is out of bounds; truncated exactly at the limit.
    x, theta = traj["final_obs"][..., 0], traj["final_obs"][..., 2]
    out = (np.abs(x) > 2.4) | (np.abs(theta) > 12 * 2 * math.pi / 360)
    np.testing.assert_array_equal(te, out)
    np.testing.assert_array_equal(tr, traj["episode_length"] == limit)
    # CartPole pays 1 a step: return == length, and lengths count steps since the last end.
    np.testing.assert_array_equal(traj["episode_return"], traj["episode_length"])
    expected_length = np.zeros(num_envs, np.int32)
    for t in range(num_steps):
        expected_length += 1
        np.testing.assert_array_equal(traj["episode_length"][t], expected_length)
        expected_length[done[t]] = 0
        # The next step starts from next_obs.
        if t + 1 < num_steps:
            np.testing.assert_array_equal(traj["obs"][t + 1], traj["next_obs"][t])


def test_jit_equals_no_jit_and_no_recompilation():
    venv, params = make_vec("CartPole-v1", 4)
    actions = jnp.array([0, 1, 1, 0], jnp.int32)
    _, state = venv.reset(KEY, params)
    jit_step = jax.jit(venv.step)
    out_plain = venv.step(KEY, state, actions, params)
    out_jit = jit_step(KEY, state, actions, params)
    chex.assert_trees_all_close(out_plain, out_jit, rtol=1e-6, atol=1e-7)
    out2 = jit_step(jax.random.PRNGKey(7), out_jit[1], actions[::-1], params)
    jit_step(jax.random.PRNGKey(8), out2[1], actions, params)
    assert jit_step._cache_size() == 1
    traces = []

    @jax.jit
    def rollout(key, params):
        traces.append(1)
        return _scan_rollout(venv, params, key, 5)

    rollout(KEY, params)
    rollout(jax.random.PRNGKey(3), params.replace(gravity=9.0))
    assert len(traces) == 1


def test_params_are_shared_and_traced():
    venv, params = make_vec("CartPole-v1", 2)
    step = jax.jit(venv.step)
    _, state = venv.reset(KEY, params)
    a = jnp.array([1, 1], jnp.int32)
    out_a = step(KEY, state, a, params)
    out_b = step(KEY, state, a, params.replace(force_mag=20.0))
    assert step._cache_size() == 1
    assert not np.allclose(out_a[0], out_b[0])


def test_errors_name_the_argument():
    venv, params = make_vec("CartPole-v1", 3)
    _, state = venv.reset(KEY, params)
    with pytest.raises(RLKitError, match="num_envs=3"):
        venv.step(KEY, state, jnp.zeros((2,), jnp.int32), params)
    with pytest.raises(RLKitError, match="num_envs=3"):
        venv.step(KEY, state, jnp.int32(0), params)
    for bad in [0, -1, 2.0, True]:
        with pytest.raises(RLKitError, match="num_envs"):
            make_vec("CartPole-v1", bad)
    with pytest.raises(RLKitError, match="gravty"):
        make_vec("CartPole-v1", 2, gravty=1.0)
    with pytest.raises(RLKitError, match="gravty"):
        make_vec(Counter(), 2, gravty=1.0)
    with pytest.raises(RLKitError, match="unknown env id"):
        make_vec("CartPol-v1", 2)
    with pytest.raises(RLKitError, match="env_id_or_env"):
        make_vec(3, 2)
    with pytest.raises(RLKitError, match="envs.Environment"):
        AutoResetWrapper("CartPole-v1")


def test_wrappers_forward_names_spaces_and_params():
    venv, params = make_vec("CartPole-v1", 2)
    assert venv.id == "CartPole-v1" and venv.reward_threshold == 475.0
    assert type(venv.unwrapped).__name__ == "CartPole"
    assert venv.default_params == params
    assert venv.observation_space().shape == (4,) and venv.action_space().n == 2
    assert "VecEnv(EpisodeStatistics(AutoResetWrapper(" in repr(venv)
    obs, _ = venv.reset(KEY)  # params default to the env's
    assert obs.shape == (2, 4)


# ------------------------------------------------------------------------------------------------
# Sparse resets: the same outputs as dense ones
# ------------------------------------------------------------------------------------------------


def _vec_rollout(venv, params, key, num_steps):
    """Every output and the state after each step of a scanned random-action rollout."""
    space = venv.action_space(params)

    def body(carry, key_t):
        obs, state = carry
        key_act, key_step = jax.random.split(key_t)
        actions = jax.vmap(space.sample)(jax.random.split(key_act, venv.num_envs))
        obs, state, r, te, tr, info = venv.step(key_step, state, actions, params)
        return (obs, state), (obs, state, r, te, tr, info)

    obs, state = venv.reset(key, params)
    return jax.jit(lambda: jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps)))()[1]


@pytest.mark.parametrize(
    "env_id, num_envs, budget, overrides",
    [
        ("CartPole-v1", 600, 4, {"max_episode_steps": 30}),  # many rounds on some steps
        ("CartPole-v1", 600, None, {}),
        ("Pendulum-v1", 40, 7, {"max_episode_steps": 12}),  # all 40 truncate at once: 6 rounds
        ("Acrobot-v1", 16, 3, {"max_episode_steps": 9}),
    ],
)
def test_sparse_resets_equal_dense_resets(env_id, num_envs, budget, overrides):
    venv, params = make_vec(env_id, num_envs, **overrides)
    sparse = VecEnv(venv.env, num_envs, sparse_resets=True, reset_budget=budget)
    dense = VecEnv(venv.env, num_envs, sparse_resets=False)
    assert sparse.sparse_resets and not dense.sparse_resets
    a = _vec_rollout(sparse, params, KEY, 70)
    b = _vec_rollout(dense, params, KEY, 70)
    done = np.asarray(a[3] | a[4])
    assert done.sum() > num_envs  # episodes did end, several per sub-env
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_sparse_resets_with_a_step_that_reads_its_key():
    # NoisyCounter's step reads its key, so the autoreset splits each sub-env's key in two.
    inner = EpisodeStatistics(AutoResetWrapper(NoisyCounter()))
    params = CounterParams()
    sparse = VecEnv(inner, 8, sparse_resets=True, reset_budget=1)
    dense = VecEnv(inner, 8, sparse_resets=False)
    a = _vec_rollout(sparse, params, KEY, 40)
    b = _vec_rollout(dense, params, KEY, 40)
    assert np.asarray(a[3] | a[4]).any(axis=1).sum() > 5
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_sparse_resets_default_and_when_they_cannot_apply():
    assert make_vec("CartPole-v1", VecEnv.SPARSE_FROM)[0].sparse_resets
    assert not make_vec("CartPole-v1", VecEnv.SPARSE_FROM - 1)[0].sparse_resets
    assert not make_vec("CartPole-v1", 4096, sparse_resets=False)[0].sparse_resets
    env, _ = envs.make("CartPole-v1")
    # No autoreset inside, or a wrapper that does not declare it commutes with one: dense.
    assert not VecEnv(EpisodeStatistics(env), 4096, sparse_resets=True).sparse_resets
    class Plain(Wrapper):  # a wrapper knows nothing of autoresets unless it says so
        pass

    assert Plain.commutes_with_autoreset is False
    assert not VecEnv(Plain(AutoResetWrapper(env)), 4096, sparse_resets=True).sparse_resets
    for bad in (0, -1, 1.5, True):
        with pytest.raises(RLKitError, match="reset_budget"):
            VecEnv(AutoResetWrapper(env), 8, reset_budget=bad)
    with pytest.raises(RLKitError, match="sparse_resets"):
        VecEnv(AutoResetWrapper(env), 8, sparse_resets="yes")
