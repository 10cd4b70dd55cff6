"""envs.core: spaces against gymnasium.spaces, the Environment base (time limit, flag dtypes), and
the registry (register, registered, make, spec) on a toy env in an isolated registry."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from envs import core
from envs.core import Box, Discrete, Environment, EnvParams, EnvSpec, EnvState
from rlkit.errors import RLKitError

# ------------------------------------------------------------------------------------------------
# Spaces
# ------------------------------------------------------------------------------------------------


def test_discrete_sample_contains_and_gymnasium_equality():
    space = Discrete(3, start=-1)
    samples = jax.jit(jax.vmap(space.sample))(jax.random.split(jax.random.key(0), 3000))
    assert samples.dtype == jnp.int32 and samples.shape == (3000,)
    values, counts = np.unique(np.asarray(samples), return_counts=True)
    np.testing.assert_array_equal(values, [-1, 0, 1])
    assert counts.min() > 900  # roughly uniform
    assert [bool(space.contains(jnp.int32(v))) for v in (-2, -1, 0, 1, 2)] == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert not bool(space.contains(jnp.zeros((1,), jnp.int32)))  # not a scalar
    assert not bool(space.contains(jnp.float32(0.5)))
    assert space.to_gymnasium() == gymnasium.spaces.Discrete(3, start=-1)
    assert Discrete(2).to_gymnasium() == gymnasium.spaces.Discrete(2)
    assert Discrete(2).to_gymnasium() != gymnasium.spaces.Discrete(3)
    assert repr(Discrete(2)) == "Discrete(2)" and repr(space) == "Discrete(3, start=-1)"


@pytest.mark.parametrize("n", [0, -3])
def test_discrete_rejects_non_positive_n(n):
    with pytest.raises(RLKitError, match="n must be a positive integer"):
        Discrete(n)


def test_box_bounds_shape_dtype_and_gymnasium_equality():
    box = Box(-1.0, 2.0, (3,))
    assert box.shape == (3,) and box.dtype == jnp.float32
    np.testing.assert_array_equal(box.low, [-1.0, -1.0, -1.0])
    assert box.low.dtype == np.float32
    assert box.to_gymnasium() == gymnasium.spaces.Box(-1.0, 2.0, (3,), np.float32)
    assert box.to_gymnasium() != gymnasium.spaces.Box(-1.0, 3.0, (3,), np.float32)
    # Shape from broadcasting the bounds.
    assert Box(np.zeros(2), np.ones((4, 1))).shape == (4, 2)


def test_box_rejects_low_above_high():
    with pytest.raises(RLKitError, match="low must be <= high"):
        Box([0.0, 1.0], [1.0, 0.5])


def test_box_sample_and_contains():
    box = Box([-1.0, 0.0, -np.inf, -np.inf], [1.0, np.inf, 5.0, np.inf])
    samples = jax.jit(jax.vmap(box.sample))(jax.random.split(jax.random.key(0), 4000))
    assert samples.shape == (4000, 4) and samples.dtype == jnp.float32
    s = np.asarray(samples)
    assert np.isfinite(s).all()
    assert (s[:, 0] >= -1).all() and (s[:, 0] <= 1).all()
    assert abs(s[:, 0].mean()) < 0.05 and s[:, 0].min() < -0.95 and s[:, 0].max() > 0.95
    assert (s[:, 1] >= 0).all() and (s[:, 2] <= 5).all()
    assert s[:, 3].min() < 0 < s[:, 3].max()  # unbounded both ways: normal
    assert bool(jax.vmap(box.contains)(samples).all())
    assert not bool(box.contains(jnp.asarray([2.0, 0.0, 0.0, 0.0])))
    assert not bool(box.contains(jnp.asarray([0.0, -0.1, 0.0, 0.0])))
    assert not bool(box.contains(jnp.zeros((3,))))  # wrong shape


# ------------------------------------------------------------------------------------------------
# Environment base: a toy env whose state counts up by the action
# ------------------------------------------------------------------------------------------------


@struct.dataclass
class CounterState(EnvState):
    count: jax.Array


@struct.dataclass
class CounterParams(EnvParams):
    goal: int = 3
    max_episode_steps: int = 5


class Counter(Environment[CounterState, CounterParams]):
    """Adds the action to a counter; terminates when the counter reaches ``goal``."""

    id = "Counter-v0"
    reward_threshold = 3.0

    @property
    def default_params(self) -> CounterParams:
        return CounterParams()

    def reset_env(self, key, params):
        state = CounterState(time=jnp.asarray(0, jnp.int32), count=jnp.asarray(0, jnp.int32))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        state = CounterState(time=state.time + 1, count=state.count + action)
        terminated = state.count >= params.goal
        return self.get_obs(state), state, action, terminated, {"count": state.count}

    def get_obs(self, state, params=None):
        return state.count.astype(jnp.float32)[None]

    def observation_space(self, params=None):
        return Box(0.0, np.inf, (1,))

    def action_space(self, params=None):
        return Discrete(2)


def _run(env, params, actions):
    _, state = env.reset(jax.random.key(0), params)
    out = []
    for a in actions:
        _, state, reward, terminated, truncated, _ = env.step(
            jax.random.key(0), state, jnp.int32(a), params
        )
        out.append((float(reward), bool(terminated), bool(truncated)))
    return out


def test_step_truncates_at_the_limit_and_keeps_terminated_separate():
    env = Counter()
    # Never reaches the goal: truncated from step 5 on (the base never resets).
    assert _run(env, None, [0] * 6) == [(0.0, False, False)] * 4 + [(0.0, False, True)] * 2
    # Reaches the goal at step 3: terminated, not truncated.
    assert _run(env, None, [1, 1, 1]) == [(1.0, False, False)] * 2 + [(1.0, True, False)]
    # Goal and limit on the same step: both flags, as Gymnasium's TimeLimit does.
    assert _run(env, CounterParams(goal=1, max_episode_steps=3), [0, 0, 1])[-1] == (1.0, True, True)


def test_step_casts_reward_and_flags_and_is_jittable():
    env = Counter()
    _, state = env.reset(jax.random.key(0))
    out = jax.jit(env.step)(jax.random.key(0), state, jnp.int32(1), env.default_params)
    _, state, reward, terminated, truncated, info = out
    assert reward.dtype == jnp.float32  # the toy returns an int reward
    assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    assert int(info["count"]) == 1 and int(state.time) == 1
    assert repr(env) == "<rlkit env Counter-v0>"


def test_unimplemented_base_methods_raise():
    env = Environment()
    with pytest.raises(NotImplementedError):
        _ = env.default_params
    with pytest.raises(NotImplementedError):
        env.reset(jax.random.key(0), EnvParams())
    assert env.name == "Environment"


# ------------------------------------------------------------------------------------------------
# Registry (isolated: the real one is left as it was)
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(core, "_REGISTRY", {})
    core.register("Counter-v0", Counter)
    return core


def test_register_make_and_spec(registry):
    assert registry.registered() == ["Counter-v0"]
    env, params = registry.make("Counter-v0")
    assert isinstance(env, Counter) and params == CounterParams()
    env, params = registry.make("Counter-v0", goal=7, max_episode_steps=9)
    assert (params.goal, params.max_episode_steps) == (7, 9)
    assert registry.spec("Counter-v0") == EnvSpec("Counter-v0", 5, 3.0)


def test_register_rejects_duplicates_and_bad_ids(registry):
    with pytest.raises(RLKitError, match="already registered"):
        registry.register("Counter-v0", Counter)
    registry.register("Counter-v0", Counter, overwrite=True)
    for bad in ["", None, 3]:
        with pytest.raises(RLKitError, match="env_id must be a non-empty string"):
            registry.register(bad, Counter)


def test_make_errors_name_the_argument(registry):
    registry.register("Counter-v1", Counter)
    with pytest.raises(RLKitError) as err:
        registry.make("Countr-v1")
    assert "Did you mean 'Counter-v1'?" in str(err.value)
    assert "Available: Counter-v0, Counter-v1" in str(err.value)
    with pytest.raises(RLKitError) as err:
        registry.make("Zzz")
    assert "Did you mean" not in str(err.value)
    with pytest.raises(RLKitError, match=r"unknown param\(s\) \['gaol'\]"):
        registry.make("Counter-v0", gaol=2)
