"""Parity of rlkit's MinAtar games with the reference ``minatar`` package (1.0.15, numpy).

Step-for-step tests run the reference and the JAX env side by side from the same state with the
same random numbers: the reference's ``RandomState`` is replaced by ``ReplayRandom``, which hands
it, call by call, the numbers the JAX env drew for that step (``env.step_noise(key)``), and
checks that the reference asked for exactly those. Observations, rewards, terminal flags and
the hidden counters (timers, difficulty levels) must agree on every step.
"""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

minatar = pytest.importorskip("minatar")

import envs
from envs.minatar import Asterix, Breakout, Freeway, Seaquest, SpaceInvaders

_TOP = 9  # a word's top 23 bits: w >> 9


class ReplayRandom:
    """Stands in for the reference's ``numpy.random.RandomState``, replaying given numbers.

    ``rand()`` pops from ``floats`` (``rand(n)`` pops a list of n); ``randint(low, high, size)``
    pops the top 23 bits ``k`` of a word from ``ints`` (a list of them for ``size``) and maps it
    to ``low + ((k * (high - low)) >> 23)``, the JAX env's mapping, checking the range.
    """

    def __init__(self):
        self.floats: collections.deque = collections.deque()
        self.ints: collections.deque = collections.deque()

    def rand(self, *size):
        value = self.floats.popleft()
        if size:
            assert np.shape(value) == tuple(size)
            return np.asarray(value, np.float64)
        assert np.ndim(value) == 0
        return float(value)

    def randint(self, low, high=None, size=None):
        if high is None:
            low, high = 0, low
        k = np.asarray(self.ints.popleft(), np.int64)
        assert np.shape(k) == (() if size is None else (size,))
        value = low + ((k * (high - low)) >> 23)
        assert np.all((value >= low) & (value < high))
        return int(value) if size is None else value.astype(np.int64)

    def assert_empty(self):
        assert not self.floats and not self.ints, (list(self.floats), list(self.ints))


def _top(words) -> np.ndarray:
    return np.asarray(words, np.uint32) >> np.uint32(_TOP)


def _reference(game: str, fake: ReplayRandom, ramping: bool = True, sticky: float = 0.1):
    ref = minatar.Environment(game, sticky_action_prob=sticky, difficulty_ramping=ramping)
    ref.random = fake
    ref.env.random = fake
    return ref


# --------------------------------------------------------------------------------------------------
# What each game's reference draws, and its hidden counters
# --------------------------------------------------------------------------------------------------


def _reset_draws(env, key):
    """What the env's reset draws from ``key``: its random words (as the reference would see
    them) and, for Freeway, the car directions' uniforms."""
    if env.game == "breakout":
        return jax.random.bits(key, (1,), jnp.uint32)
    if env.game == "freeway":
        return env.reset_words(key), env.reset_noise(key).directions_u
    return ()


def _feed_reset(game: str, draws, fake: ReplayRandom) -> None:
    if game == "breakout":
        fake.ints.append(_top(draws)[0])
    elif game == "freeway":
        words, directions_u = draws
        fake.ints.append(_top(words[:8]))
        fake.floats.append(np.asarray(directions_u, np.float64))


def _feed_step(game: str, draws, ref, fake: ReplayRandom):
    noise, words = draws
    words = _top(words)
    fake.floats.append(float(noise.sticky))
    g = ref.env
    if game == "freeway":
        # _randomize_cars runs when the chicken reaches the top in this step; whether it does
        # depends on the action taken, so the fake is filled lazily (see _FreewayReplay).
        fake.pending = (words[1:9], np.asarray(noise.directions_u, np.float64))
    elif game == "asterix":
        if g.spawn_timer == 0:
            fake.floats.extend([float(noise.spawn_lr), float(noise.spawn_gold)])
            if any(e is None for e in g.entities):
                fake.ints.append(words[3])
    elif game == "seaquest":
        if g.e_spawn_timer == 0:
            fake.floats.extend([float(noise.enemy_lr), float(noise.enemy_sub)])
            fake.ints.append(words[3])
        if g.d_spawn_timer == 0:
            fake.floats.append(float(noise.diver_lr))
            fake.ints.append(words[5])
    return noise


class _FreewayReplay(ReplayRandom):
    """Freeway draws only when the chicken scores; the step's draws wait in ``pending``."""

    pending = None

    def randint(self, low, high=None, size=None):
        if not self.ints and self.pending is not None:
            self.ints.append(self.pending[0])
            self.floats.append(self.pending[1])
        return super().randint(low, high, size)

    def assert_empty(self):
        self.pending = None
        super().assert_empty()


def _hidden(game: str, ref) -> dict:
    """The reference's counters that the observation does not show."""
    g = ref.env
    if game == "breakout":
        return {"strike": g.strike, "ball_dir": g.ball_dir}
    if game == "freeway":
        return {
            "move_timer": g.move_timer,
            "terminate_timer": g.terminate_timer,
            "car_timers": [c[2] for c in g.cars],
            "car_speeds": [c[3] for c in g.cars],
        }
    if game == "asterix":
        return {
            "spawn_speed": g.spawn_speed,
            "spawn_timer": g.spawn_timer,
            "move_speed": g.move_speed,
            "move_timer": g.move_timer,
            "ramp_timer": g.ramp_timer,
            "ramp_index": g.ramp_index,
        }
    if game == "space_invaders":
        return {
            "alien_dir": g.alien_dir,
            "enemy_move_interval": g.enemy_move_interval,
            "alien_move_timer": g.alien_move_timer,
            "alien_shot_timer": g.alien_shot_timer,
            "ramp_index": g.ramp_index,
            "shot_timer": g.shot_timer,
        }
    if game == "seaquest":
        return {
            "oxygen": g.oxygen,
            "diver_count": g.diver_count,
            "e_spawn_speed": g.e_spawn_speed,
            "e_spawn_timer": g.e_spawn_timer,
            "d_spawn_timer": g.d_spawn_timer,
            "move_speed": g.move_speed,
            "ramp_index": g.ramp_index,
            "shot_timer": g.shot_timer,
            "surface": g.surface,
            "num_enemies": len(g.e_fish) + len(g.e_subs),
            "num_e_bullets": len(g.e_bullets),
        }
    raise AssertionError(game)


def _hidden_jax(game: str, s) -> dict:
    s = jax.device_get(s)
    if game == "breakout":
        return {"strike": bool(s.strike), "ball_dir": int(s.ball_dir)}
    if game == "freeway":
        return {
            "move_timer": int(s.move_timer),
            "terminate_timer": int(s.terminate_timer),
            "car_timers": [int(v) for v in s.car_timer],
            "car_speeds": [int(v) for v in s.car_speed],
        }
    if game == "asterix":
        return {
            "spawn_speed": int(s.spawn_speed),
            "spawn_timer": int(s.spawn_timer),
            "move_speed": int(s.move_speed),
            "move_timer": int(s.move_timer),
            "ramp_timer": int(s.ramp_timer),
            "ramp_index": int(s.ramp_index),
        }
    if game == "space_invaders":
        return {
            "alien_dir": int(s.alien_dir),
            "enemy_move_interval": int(s.enemy_move_interval),
            "alien_move_timer": int(s.alien_move_timer),
            "alien_shot_timer": int(s.alien_shot_timer),
            "ramp_index": int(s.ramp_index),
            "shot_timer": int(s.shot_timer),
        }
    if game == "seaquest":
        return {
            "oxygen": int(s.oxygen),
            "diver_count": int(s.diver_count),
            "e_spawn_speed": int(s.e_spawn_speed),
            "e_spawn_timer": int(s.e_spawn_timer),
            "d_spawn_timer": int(s.d_spawn_timer),
            "move_speed": int(s.move_speed),
            "ramp_index": int(s.ramp_index),
            "shot_timer": int(s.shot_timer),
            "surface": bool(s.surface),
            "num_enemies": int(s.enemy_active.sum()),
            "num_e_bullets": int(s.e_bullet_active.sum()),
        }
    raise AssertionError(game)


# --------------------------------------------------------------------------------------------------
# The side-by-side run
# --------------------------------------------------------------------------------------------------


_COMPILED: dict = {}


def _compiled(env):
    """Jitted ``(advance, first)`` for the env's class and action set, compiled once per test run.

    ``advance`` is one dispatch per step: the step, its random numbers, and a reset (with its
    draws) ready for the next episode.
    """
    cache_key = (type(env), env.action_set)
    if cache_key not in _COMPILED:

        def advance(key, state, action, params):
            key, k_step, k_reset = jax.random.split(key, 3)
            out = env.step(k_step, state, action, params)
            draws = (env.step_noise(k_step), env.step_words(k_step))
            return key, out, draws, env.reset(k_reset, params), _reset_draws(env, k_reset)

        def first(key, params):
            return env.reset(key, params), _reset_draws(env, key)

        _COMPILED[cache_key] = (jax.jit(advance), jax.jit(first))
    return _COMPILED[cache_key]


def run_side_by_side(
    env,
    steps: int,
    seed: int,
    policy=None,
    params=None,
    ramping: bool = True,
    sticky: float = 0.1,
    setup=None,
) -> dict:
    """Steps the JAX env and the reference together, asserting equality on every step.

    Args:
      env: the rlkit game.
      steps: steps in total (episodes restart when they end).
      seed: seed of keys and actions.
      policy: ``policy(ref, rng) -> game action`` (one of ``env.action_set``), given the
        reference env; uniform random over the action set by default.
      params: env params (defaults with ``difficulty_ramping=ramping``,
        ``sticky_action_prob=sticky``).
      setup: ``setup(ref, state) -> state`` applied after each reset, to start from a
        particular state (it must change the reference and the JAX state alike).

    Returns:
      Counts: episodes, total reward, sticky repeats, and the largest difficulty seen.
    """
    game = env.game
    fake = _FreewayReplay() if game == "freeway" else ReplayRandom()
    ref = _reference(game, fake, ramping=ramping, sticky=sticky)
    if params is None:
        params = env.default_params.replace(difficulty_ramping=ramping, sticky_action_prob=sticky)
    rng = np.random.default_rng(seed)
    n_actions = env.action_space(params).n
    counts = collections.Counter()

    def start(reset_out, reset_draws):
        _feed_reset(game, reset_draws, fake)
        ref.reset()
        ref.last_action = 0  # rlkit starts every episode from a no-op (see the docs)
        fake.assert_empty()
        obs, state = reset_out
        if setup is not None:
            # Keep every leaf's dtype (a Python int would make jit compile the step again).
            state = jax.tree.map(
                lambda new, old: np.asarray(new, old.dtype), setup(ref, state), state
            )
            obs = env.get_obs(state, params)
        np.testing.assert_array_equal(np.asarray(obs), ref.state())
        return state

    advance, first = _compiled(env)
    key, sub = jax.random.split(jax.random.PRNGKey(seed))
    state = start(*jax.device_get(first(sub, params)))
    for t in range(steps):
        if policy is None:
            a = int(rng.integers(n_actions))
        else:
            a = env.action_set.index(int(policy(ref, rng)))
        key, out, draws, reset_out, reset_draws = advance(key, state, a, params)
        (obs, state, r, terminated, truncated, _), draws = jax.device_get((out, draws))
        noise = _feed_step(game, draws, ref, fake)
        reward, done = ref.act(env.action_set[a])
        fake.assert_empty()
        counts["sticky"] += int(noise.sticky < params.sticky_action_prob)
        where = f"{env.id} seed {seed} step {t}"
        np.testing.assert_array_equal(obs, ref.state(), err_msg=where)
        assert float(r) == float(reward), where
        assert bool(terminated) == bool(done), where
        assert not bool(truncated), where
        assert int(state.last_action) == ref.last_action, where
        assert _hidden_jax(game, state) == _hidden(game, ref), where
        counts["reward"] += float(reward)
        counts["steps_in_episodes"] += 1
        if game == "seaquest":
            counts["max_enemies"] = max(counts["max_enemies"], len(ref.env.e_fish + ref.env.e_subs))
        level = ref.env.difficulty_ramp()
        counts["max_ramp"] = max(counts["max_ramp"], 0 if level is None else level)
        if done:
            counts["episodes"] += 1
            state = start(reset_out, jax.device_get(reset_draws))
    return counts


ALL = [Breakout, Freeway, Asterix, SpaceInvaders, Seaquest]
N, L, U, R, D, F = range(6)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.title)
@pytest.mark.parametrize("minimal", [True, False], ids=["v1", "v0"])
def test_random_play_matches_reference_step_for_step(cls, minimal):
    env = cls(minimal_action_set=minimal)
    counts = run_side_by_side(env, steps=600, seed=1 + minimal)
    assert counts["episodes"] >= (0 if cls is Freeway else 1)  # Freeway's last 2501 steps
    assert 30 < counts["sticky"] < 90  # sticky actions happen (p = 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.title)
@pytest.mark.parametrize("minimal", [True, False], ids=["v1", "v0"])
def test_long_random_play_matches_reference_step_for_step(cls, minimal):
    env = cls(minimal_action_set=minimal)
    counts = run_side_by_side(env, steps=10_000, seed=11 + minimal)
    assert counts["episodes"] >= 3


@pytest.mark.parametrize("sticky", [0.0, 0.5, 1.0])
def test_sticky_action_prob_is_a_param(sticky):
    counts = run_side_by_side(Asterix(), steps=300, seed=3, sticky=sticky)
    assert counts["episodes"] >= 1


def test_breakout_clears_the_wall_and_refills_it():
    def setup(ref, state):
        bricks = np.zeros((10, 10))
        bricks[1, 0] = bricks[3, 9] = bricks[2, 4] = 1  # three bricks left
        ref.env.brick_map = bricks.copy()
        return state.replace(brick_map=jnp.asarray(bricks, bool))

    def follow(ref, rng):  # keep the paddle under the ball, with some noise
        g = ref.env
        if rng.random() < 0.2:
            return rng.choice([N, L, R])
        return L if g.ball_x < g.pos else R if g.ball_x > g.pos else N

    counts = run_side_by_side(Breakout(), steps=800, seed=4, policy=follow, setup=setup)
    assert counts["reward"] >= 6  # the wall came back at least once


def _up_mostly(ref, rng):
    return U if rng.random() < 0.8 else rng.choice([N, D])


def test_freeway_scoring_redraws_cars_and_the_game_ends_on_time():
    def setup(ref, state):  # start late in the game, 300 steps from its end
        ref.env.terminate_timer = 300
        return state.replace(terminate_timer=300)

    counts = run_side_by_side(Freeway(), steps=700, seed=5, policy=_up_mostly, setup=setup)
    assert counts["episodes"] == 2 and counts["reward"] >= 2


@pytest.mark.slow
def test_freeway_whole_game_lasts_2501_steps():
    counts = run_side_by_side(Freeway(), steps=2501, seed=5, policy=_up_mostly)
    assert counts["episodes"] == 1 and counts["reward"] >= 5


@pytest.mark.parametrize("ramping", [True, False])
def test_asterix_difficulty_ramps(ramping):
    def setup(ref, state):
        g = ref.env
        g.spawn_speed, g.move_speed, g.ramp_index, g.ramp_timer = 3, 3, 4, 20
        return state.replace(spawn_speed=3, move_speed=3, ramp_index=4, ramp_timer=20)

    counts = run_side_by_side(Asterix(), steps=700, seed=6, setup=setup, ramping=ramping)
    assert counts["max_ramp"] == (4 if not ramping else counts["max_ramp"])
    if ramping:
        assert counts["max_ramp"] >= 5


def _sharpshooter(ref, rng):
    """Fires under the aliens and walks to the nearest column that holds some."""
    g = ref.env
    if rng.random() < 0.1:
        return rng.choice([N, L, R, F])
    columns = np.flatnonzero(g.alien_map.any(axis=0))
    target = columns[np.argmin(np.abs(columns - g.pos))]
    if target == g.pos:
        return F
    return L if target < g.pos else R


@pytest.mark.parametrize("ramping", [True, False])
def test_space_invaders_waves_and_ramping(ramping):
    def setup(ref, state):
        aliens = np.zeros((10, 10))
        aliens[6, 5] = 1  # the last alien of a wave, above the cannon
        g = ref.env
        g.alien_map, g.enemy_move_interval, g.ramp_index = aliens.copy(), 7, 5
        return state.replace(
            alien_map=jnp.asarray(aliens, bool), enemy_move_interval=7, ramp_index=5
        )

    counts = run_side_by_side(
        SpaceInvaders(), steps=800, seed=7, policy=_sharpshooter, setup=setup, ramping=ramping
    )
    assert counts["reward"] >= 40
    assert counts["max_ramp"] == (6 if ramping else 5)  # 12 ramps down to 6, no further


def _surface_dweller(ref, rng):
    """Stays mostly at the surface (where nothing can hit it) and dives now and then."""
    g = ref.env
    if g.sub_y == 0:
        return D if rng.random() < 0.05 else rng.choice([N, L, R, F])
    return U if rng.random() < 0.6 else rng.choice([N, L, R, D, F])


def test_seaquest_crowded_at_the_fastest_ramp():
    def setup(ref, state):
        g = ref.env
        g.e_spawn_speed, g.move_speed, g.ramp_index, g.e_spawn_timer = 1, 2, 19, 0
        return state.replace(e_spawn_speed=1, move_speed=2, ramp_index=19, e_spawn_timer=0)

    counts = run_side_by_side(Seaquest(), steps=300, seed=8, policy=_surface_dweller, setup=setup)
    assert counts["max_enemies"] >= 15


def test_seaquest_surfacing_with_divers():
    def setup(ref, state):
        g = ref.env
        g.diver_count, g.sub_y, g.surface, g.oxygen = 6, 2, False, 150
        return state.replace(diver_count=6, sub_y=2, surface=False, oxygen=150)

    def climb(ref, rng):
        return U if ref.env.diver_count == 6 else _surface_dweller(ref, rng)

    counts = run_side_by_side(Seaquest(), steps=300, seed=9, policy=climb, setup=setup)
    assert counts["reward"] >= 7 * counts["episodes"]  # 150 * 10 // 200 per full surfacing


# --------------------------------------------------------------------------------------------------
# Distributions of random play: rlkit's own randomness against the reference's RandomState
# --------------------------------------------------------------------------------------------------


def _reference_episodes(game: str, action_set, episodes: int, seed: int):
    ref = minatar.Environment(game)
    ref.seed(seed)
    rng = np.random.default_rng(seed)
    returns, lengths = [], []
    for _ in range(episodes):
        ref.reset()
        total, length, done = 0.0, 0, False
        while not done:
            reward, done = ref.act(action_set[rng.integers(len(action_set))])
            total += reward
            length += 1
        returns.append(total)
        lengths.append(length)
    return np.asarray(returns), np.asarray(lengths)


def _rlkit_episodes(env_id: str, num_envs: int, start_before: int, steps: int, seed: int):
    """Returns and lengths of the episodes that start before step ``start_before``.

    Choosing episodes by their start (which does not depend on their own length) keeps the
    sample unbiased; the run lasts long enough that all of them end (checked), since dropping
    unfinished episodes would drop long ones.
    """
    venv, params = envs.wrappers.make_vec(env_id, num_envs)
    n_actions = venv.action_space(params).n

    @jax.jit
    def run(key):
        key, sub = jax.random.split(key)
        _, state = venv.reset(sub, params)

        def body(state, key):
            k_act, k_step = jax.random.split(key)
            actions = jax.random.randint(k_act, (num_envs,), 0, n_actions)
            _, state, _, _, _, info = venv.step(k_step, state, actions, params)
            return state, (info["returned_episode"], info["episode_return"], info["episode_length"])

        state, out = jax.lax.scan(body, state, jax.random.split(key, steps))
        return state.episode_length, out

    unfinished, (done, returns, lengths) = jax.device_get(run(jax.random.PRNGKey(seed)))
    assert np.all(steps - unfinished >= start_before), "an episode to count did not end"
    t = np.arange(steps)[:, None]
    counted = done & (t + 1 - lengths < start_before)
    return returns[counted], lengths[counted]


# game: (reference episodes, rlkit envs, count the episodes starting before, rlkit steps),
# a few seconds each.
_DISTRIBUTION_RUNS = {
    "Breakout": (400, 32, 120, 600),
    "Freeway": (12, 12, 1, 2501),
    "Asterix": (300, 32, 500, 1500),
    "SpaceInvaders": (300, 32, 400, 1200),
    "Seaquest": (400, 32, 300, 800),
}


def _compare_distributions(cls, scale: int, seed: int):
    scipy_stats = pytest.importorskip("scipy.stats")
    env = cls()
    ref_episodes, num_envs, start_before, steps = _DISTRIBUTION_RUNS[env.title]
    ref_returns, ref_lengths = _reference_episodes(
        env.game, env.action_set, ref_episodes * scale, seed
    )
    returns, lengths = _rlkit_episodes(env.id, num_envs * scale, start_before, steps, seed)
    assert len(returns) >= min(ref_episodes * scale, 10 * scale) // 2
    if env.title == "Freeway":  # every game lasts exactly 2501 steps
        assert set(lengths) == set(ref_lengths) == {2501}
    for ours, theirs in ((returns, ref_returns), (lengths, ref_lengths)):
        # Two-sample Kolmogorov-Smirnov (conservative for these discrete values), and means
        # within four standard errors.
        assert scipy_stats.ks_2samp(ours, theirs).pvalue > 1e-3
        se = np.sqrt(ours.var() / len(ours) + theirs.var() / len(theirs))
        assert abs(ours.mean() - theirs.mean()) <= 4 * se + 1e-9
    return returns, lengths


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.title)
def test_random_play_returns_and_lengths_match_the_reference(cls):
    _compare_distributions(cls, scale=1, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.title)
def test_random_play_distributions_match_the_reference_at_scale(cls):
    _compare_distributions(cls, scale=10, seed=1)


# --------------------------------------------------------------------------------------------------
# The rlkit API: registry, spaces, params under vmap, jit, rendering, Gymnasium
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.title)
def test_registry_spaces_and_reference_gym_spaces_agree(cls):
    gymnasium = pytest.importorskip("gymnasium")
    minatar_gym = pytest.importorskip("minatar.gym")
    if "MinAtar/Breakout-v1" not in gymnasium.registry:
        minatar_gym.register_envs()
    for version, minimal in (("v1", True), ("v0", False)):
        env, params = envs.make(f"MinAtar/{cls.title}-{version}")
        assert isinstance(env, cls) and env.minimal_action_set is minimal
        ref = gymnasium.make(f"MinAtar/{cls.title}-{version}").unwrapped
        assert env.action_space(params).to_gymnasium() == ref.action_space
        assert env.observation_space(params).to_gymnasium() == ref.observation_space
        assert list(env.action_set) == list(ref.action_set)
        obs, _ = env.reset(jax.random.PRNGKey(0), params)
        assert obs.dtype == jnp.bool_ and obs.shape == ref.observation_space.shape
    assert envs.spec(f"MinAtar/{cls.title}-v1").max_episode_steps == 2**31 - 1


def test_params_vmap_sticky_and_ramping_per_env():
    env, params = envs.make("MinAtar/Breakout-v1")
    batch = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2), params).replace(
        sticky_action_prob=jnp.asarray([0.0, 1.0]), difficulty_ramping=jnp.asarray([True, False])
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    _, state = jax.vmap(env.reset)(keys, batch)
    step = jax.jit(jax.vmap(env.step))
    for i in range(3):
        keys = jax.random.split(jax.random.PRNGKey(i + 1), 2)
        _, state, _, _, _, _ = step(keys, state, jnp.asarray([1, 1]), batch)  # always "left"
    # Sticky probability 1 repeats the no-op forever; 0 moves the paddle left every step.
    np.testing.assert_array_equal(np.asarray(state.pos), [1, 4])
    one = jax.tree.map(lambda x: x[0], state)
    _, single, *_ = env.step(keys[0], one, 1, params.replace(sticky_action_prob=0.0))
    _, batched, *_ = step(keys, state, jnp.asarray([1, 1]), batch)
    assert int(single.pos) == int(batched.pos[0]) == 0
    assert step._cache_size() == 1  # the second call did not compile again


def test_rgb_array_rendering_and_gymnasium_checker():
    gymnasium = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make("rlkit/MinAtar.SpaceInvaders-v1", render_mode="rgb_array")
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8
    colours = envs.minatar.base.palette(6)
    # The cannon's cell (row 9, column 5) has the cannon's colour, an empty cell is black.
    np.testing.assert_array_equal(frame[9 * 16 + 8, 5 * 16 + 8], colours[1])
    np.testing.assert_array_equal(frame[8, 8], colours[0])
    assert obs.dtype == np.bool_ and obs.shape == (10, 10, 6)
