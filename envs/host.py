"""Gymnasium envs on the host for rlkit's agents, and the one home of env-id helpers.

``HostVecEnv`` steps N copies of any Gymnasium env id and returns the transition format of
``envs.wrappers.make_vec``:

    henv = HostVecEnv("LunarLander-v3", num_envs=4, seed=0)
    obs = henv.reset()
    next_obs, reward, terminated, truncated, final_obs, info = henv.step(actions)
    # transition: (obs, actions, reward, terminated, truncated, final_obs); then obs = next_obs

Every episode of sub-env ``i`` starts from its own seeded reset: episode ``k`` of sub-env ``i``
is reset with ``episode_seed(seed, i, k)``. A Gymnasium env is deterministic given the seed of
its reset and the actions since, so ``state_dict()`` (each sub-env's episode index and the actions
of its running episode) is all it takes to put a new ``HostVecEnv`` exactly where this one is
(``load_state_dict``): that is how a training run on a host env resumes bit for bit.

Env ids: rlkit's envs are registered with Gymnasium as ``rlkit/<id>`` (``gymnasium_id``; a ``/``
inside an rlkit id becomes ``.``), ``rlkit_id`` inverts it, ``is_gymnasium_id`` asks Gymnasium's
registry and ``reward_threshold`` reads either registry. Ids of the ``MinAtar`` namespace
(``MinAtar/Breakout-v1``) are the reference ``minatar`` package's own Gymnasium envs: they exist
in Gymnasium's registry only after ``minatar.gym.register_envs()``, which ``register_reference``
calls (when ``minatar`` is installed) the first time such an id is asked for. Ids of the ``ALE``
namespace (``ALE/Breakout-v5``) are ale-py's, registered the same way on first use
(``pip install 'rlkit[atari]'``).

``make_gymnasium`` and ``make_gymnasium_vec`` are the one way rlkit makes a Gymnasium env (for
training, evaluation and videos): they add an env's standard preprocessing, which for Atari ids
is ``envs.atari.atari_preprocessing``.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

from envs import core
from envs.atari import atari_make_kwargs, atari_preprocessing, is_atari_id
from rlkit.errors import RLKitError

__all__ = [
    "HostVecEnv",
    "episode_seed",
    "gymnasium_id",
    "is_gymnasium_id",
    "make_gymnasium",
    "make_gymnasium_vec",
    "register_reference",
    "reward_threshold",
    "rlkit_id",
    "spaces_from_gymnasium",
]

NAMESPACE = "rlkit"
VECTORIZATION_MODES = ("sync", "async")


# --------------------------------------------------------------------------------------------------
# Env ids
# --------------------------------------------------------------------------------------------------


def gymnasium_id(env_id: str) -> str:
    """The Gymnasium id of an rlkit env: ``"CartPole-v1" -> "rlkit/CartPole-v1"``.

    A ``/`` inside the rlkit id (Gymnasium allows only one namespace) becomes ``.``:
    ``"MinAtar/Breakout-v1" -> "rlkit/MinAtar.Breakout-v1"``.
    """
    return f"{NAMESPACE}/{env_id.replace('/', '.')}"


def rlkit_id(env_id: str) -> str | None:
    """The rlkit env id that ``env_id`` names, or None.

    ``env_id`` may be an rlkit id (``"CartPole-v1"``), its Gymnasium id (``"rlkit/CartPole-v1"``,
    the exact inverse of ``gymnasium_id``, also for ids that contain ``/``), or another JAX
    suite's env through rlkit's adapter (``"gymnax:CartPole-v1"``, ``"brax:fast"``; see
    ``envs.core.is_suite_id``), which is returned as it is.
    """
    registered = core.registered()
    if env_id in registered or core.is_suite_id(env_id):
        return env_id
    if env_id.startswith(NAMESPACE + "/"):
        for candidate in registered:
            if gymnasium_id(candidate) == env_id:
                return candidate
    return None


#: Gymnasium namespaces whose envs a third-party package registers: the module and the function
#: of it doing it (None: importing the module registers them, as ``gymnasium.register_envs`` does),
#: and the rlkit extra that installs the package (None: a missing package is not an error, the id is
#: then just unknown to Gymnasium).
REFERENCE_NAMESPACES: dict[str, tuple[str, str | None, str | None]] = {
    "MinAtar": ("minatar.gym", "register_envs", None),
    "ALE": ("ale_py", None, "atari"),
}


def register_reference(env_id: str) -> bool:
    """Register the third-party Gymnasium envs that ``env_id``'s namespace names, if installed.

    ``"MinAtar/<Game>-v1"`` is the ``minatar`` package's env, which its
    ``minatar.gym.register_envs()`` adds to Gymnasium's registry; this calls it once.
    ``"ALE/<Game>-v5"`` is ale-py's, registered by importing ``ale_py``. Returns whether
    ``env_id`` is now known to Gymnasium (False when the package is not installed, except for a
    namespace with an extra: then RLKitError naming
    ``--env`` and the ``pip install`` command).
    """
    if _in_registry(env_id):
        return True
    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    if namespace not in REFERENCE_NAMESPACES or namespace in _REGISTERED:
        return False
    module_name, function, extra = REFERENCE_NAMESPACES[namespace]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if extra is None:
            return False
        raise RLKitError(
            f"--env: {env_id!r} needs the {module_name!r} package, which is not installed: "
            f"pip install 'rlkit[{extra}]'"
        ) from None
    if function is None:
        gymnasium.register_envs(module)
    else:
        getattr(module, function)()
    _REGISTERED.add(namespace)
    return _in_registry(env_id)


_REGISTERED: set[str] = set()


def _in_registry(env_id: str) -> bool:
    try:
        gymnasium.spec(env_id)
        return True
    except gymnasium.error.Error:
        return False


def is_gymnasium_id(env_id: str) -> bool:
    """Whether Gymnasium's registry knows ``env_id`` (``gymnasium.make`` would find it), after
    registering the reference package's envs for its namespace (``register_reference``)."""
    return register_reference(env_id)


def reward_threshold(env_id: str | None) -> float | None:
    """The env's reward threshold from rlkit's registry, else Gymnasium's; None if it has none."""
    if not env_id:
        return None
    own = rlkit_id(env_id)
    if own is not None:
        return core.spec(own).reward_threshold
    if is_gymnasium_id(env_id):
        return gymnasium.spec(env_id).reward_threshold
    return None


# --------------------------------------------------------------------------------------------------
# Making envs
# --------------------------------------------------------------------------------------------------


def _preprocessing(env_id: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """``(make kwargs, wrappers)`` of ``env_id``'s standard preprocessing (none outside Atari)."""
    if not is_atari_id(env_id):
        return dict(kwargs), []
    return {**atari_make_kwargs(), **kwargs}, [atari_preprocessing]


def _check_known(env_id: str) -> None:
    if not is_gymnasium_id(env_id):
        raise RLKitError(f"--env: {env_id!r} is not a Gymnasium env id")


def make_gymnasium(env_id: str, **kwargs) -> gymnasium.Env:
    """``gymnasium.make(env_id, **kwargs)`` with the env's standard preprocessing (Atari ids:
    ``envs.atari``). RLKitError for an unknown id; Gymnasium's errors pass through."""
    _check_known(env_id)
    make_kwargs, wrappers = _preprocessing(env_id, kwargs)
    env = gymnasium.make(env_id, **make_kwargs)
    for wrap in wrappers:
        env = wrap(env)
    return env


def make_gymnasium_vec(
    env_id: str,
    num_envs: int,
    *,
    vectorization_mode: str = "sync",
    vector_kwargs: dict[str, Any] | None = None,
    **kwargs,
) -> gymnasium.vector.VectorEnv:
    """``gymnasium.make_vec`` of ``num_envs`` copies of ``make_gymnasium(env_id, **kwargs)``
    (``"sync"`` or ``"async"``; every sub-env with the standard preprocessing). RLKitError for
    an unknown id; Gymnasium's errors pass through."""
    _check_known(env_id)
    make_kwargs, wrappers = _preprocessing(env_id, kwargs)
    return gymnasium.make_vec(
        env_id,
        int(num_envs),
        vectorization_mode=vectorization_mode,
        vector_kwargs=vector_kwargs,
        wrappers=wrappers or None,
        **make_kwargs,
    )


# --------------------------------------------------------------------------------------------------
# Spaces
# --------------------------------------------------------------------------------------------------


def spaces_from_gymnasium(space: gymnasium.Space) -> core.Space:
    """The rlkit space (``envs.Discrete`` or ``envs.Box``) equal to a Gymnasium space.

    Args:
      space: a ``gymnasium.spaces.Discrete`` or ``gymnasium.spaces.Box``.

    Returns:
      The matching ``envs.core.Discrete`` or ``envs.core.Box``.
    """
    if isinstance(space, gymnasium.spaces.Discrete):
        return core.Discrete(int(space.n), start=int(space.start))
    if isinstance(space, gymnasium.spaces.Box):
        return core.Box(space.low, space.high, tuple(space.shape), dtype=space.dtype)
    raise RLKitError(
        f"spaces_from_gymnasium: space must be a gymnasium Discrete or Box, got {space!r}"
    )


# --------------------------------------------------------------------------------------------------
# HostVecEnv
# --------------------------------------------------------------------------------------------------


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """The reset seed of episode ``episode`` of sub-env ``env_index`` under base seed ``seed``.

    Independent streams for every (seed, sub-env, episode), from ``numpy.random.SeedSequence``.
    """
    entropy = [int(seed) & 0xFFFFFFFF, int(env_index), int(episode)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class HostVecEnv:
    """N copies of any Gymnasium env on the host, giving ``make_vec``'s transition format.

    The step that ends a sub-env's episode also resets it (with the next episode's seed), so every
    step is a real transition. ``step`` returns ``(next_obs, reward, terminated, truncated,
    final_obs, info)`` where ``next_obs`` is what the agent acts on next (a reset observation
    where an episode ended) and ``final_obs`` the observation each sub-env's step reached (equal
    to ``next_obs`` elsewhere). ``info`` holds Gymnasium's infos plus ``returned_episode``,
    ``episode_return`` and ``episode_length`` with the meaning of
    ``envs.wrappers.EpisodeStatistics``. Rewards are float32 like the JAX envs'; every returned
    array is a fresh, writable numpy array.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        seed: int = 0,
        first_env: int = 0,
        vectorization_mode: str = "sync",
        **make_kwargs,
    ):
        """Creates the vector env.

        Args:
          env_id: any Gymnasium id, e.g. ``"CartPole-v1"``, ``"rlkit/CartPole-v1"`` or
            ``"ALE/Breakout-v5"`` (made by ``make_gymnasium_vec``, so with its preprocessing).
          num_envs: number of sub-envs.
          seed: base seed of every episode's reset seed (``episode_seed``).
          first_env: the index of sub-env 0 in a larger pool split into several ``HostVecEnv``
            (the pipeline's actors): sub-env ``i`` draws the episode seeds of env
            ``first_env + i``, so the pool's envs play the episodes one env of them all would.
          vectorization_mode: ``"sync"`` (one process) or ``"async"`` (one spawned process per
            sub-env; spawned rather than forked, because forking a process with JAX threads can
            deadlock). ``load_state_dict`` needs ``"sync"``.
          **make_kwargs: passed to ``gymnasium.make`` for each sub-env (after the
            preprocessing's own, which they override).
        """
        if vectorization_mode not in VECTORIZATION_MODES:
            raise RLKitError(
                f"HostVecEnv: vectorization_mode must be one of {VECTORIZATION_MODES}, "
                f"got {vectorization_mode!r}"
            )
        if (
            isinstance(num_envs, bool)
            or not isinstance(num_envs, (int, np.integer))
            or num_envs < 1
        ):
            raise RLKitError(f"HostVecEnv: num_envs must be a positive int, got {num_envs!r}")
        vector_kwargs: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}
        if vectorization_mode == "async":
            vector_kwargs["context"] = "spawn"
        try:
            self.envs = make_gymnasium_vec(
                env_id,
                int(num_envs),
                vectorization_mode=vectorization_mode,
                vector_kwargs=vector_kwargs,
                **make_kwargs,
            )
        except gymnasium.error.DependencyNotInstalled as e:
            raise RLKitError(
                f"--env: {env_id!r} needs a package that is not installed: {e}"
            ) from None
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.vectorization_mode = vectorization_mode
        self.observation_space = self.envs.single_observation_space
        self.action_space = self.envs.single_action_space
        self.seed = int(seed)
        self.first_env = int(first_env)
        self._obs: np.ndarray | None = None
        self._episode = np.zeros((self.num_envs,), np.int64)
        self._actions: list[list[np.ndarray]] = [[] for _ in range(self.num_envs)]
        self._episode_return = np.zeros((self.num_envs,), np.float64)
        self._episode_length = np.zeros((self.num_envs,), np.int32)

    def _seeds(self) -> list[int]:
        return [
            episode_seed(self.seed, self.first_env + i, k) for i, k in enumerate(self._episode)
        ]

    def reset(self) -> np.ndarray:
        """Starts episode 0 of every sub-env. Returns obs ``[N, ...]``."""
        self._episode[:] = 0
        obs, _ = self.envs.reset(seed=self._seeds())
        for actions in self._actions:
            actions.clear()
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        self._obs = np.array(obs, copy=True)
        return np.array(self._obs, copy=True)

    def step(self, actions) -> tuple:
        """Steps every sub-env once.

        Args:
          actions: ``[N, ...]`` actions.

        Returns:
          ``(next_obs, reward, terminated, truncated, final_obs, info)``, numpy arrays with
          leading axis N; see the class docstring.
        """
        if self._obs is None:
            raise RLKitError("HostVecEnv.step: call reset() first")
        actions = np.asarray(actions)
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        for i in range(self.num_envs):
            self._actions[i].append(np.array(actions[i], copy=True))
        terminated = np.array(terminated, np.bool_)
        truncated = np.array(truncated, np.bool_)
        done = terminated | truncated
        info = dict(info)
        final_obs = np.array(obs, copy=True)
        next_obs = final_obs
        if done.any():
            self._episode[done] += 1
            for i in np.flatnonzero(done):
                self._actions[i].clear()
            reset_obs, reset_info = self.envs.reset(
                seed=self._seeds(), options={"reset_mask": done}
            )
            next_obs = np.array(reset_obs, copy=True)
            if reset_info:
                info["reset_info"] = reset_info
        self._episode_return += reward
        self._episode_length += 1
        info["returned_episode"] = done
        info["episode_return"] = self._episode_return.astype(np.float32)
        info["episode_length"] = self._episode_length.copy()
        self._episode_return[done] = 0.0
        self._episode_length[done] = 0
        self._obs = next_obs
        return (
            np.array(next_obs, copy=True),
            np.asarray(reward, np.float32).copy(),
            terminated,
            truncated,
            final_obs,
            info,
        )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything ``load_state_dict`` needs to put a new env exactly where this one is.

        Returns:
          numpy arrays: ``seed`` [], ``episode`` [N] (each sub-env's episode index),
          ``actions`` [N, L, ...] (the actions of each running episode, padded to the longest,
          ``L = max(episode_length)``), ``episode_length`` [N] and ``episode_return`` [N].
        """
        if self._obs is None:
            raise RLKitError("HostVecEnv.state_dict: call reset() first")
        longest = int(self._episode_length.max()) if self.num_envs else 0
        shape = tuple(getattr(self.action_space, "shape", ()) or ())
        dtype = getattr(self.action_space, "dtype", None) or np.int64
        actions = np.zeros((self.num_envs, longest) + shape, dtype)
        for i, acts in enumerate(self._actions):
            if acts:
                actions[i, : len(acts)] = np.stack(acts)
        return {
            "seed": np.asarray(self.seed, np.int64),
            "episode": self._episode.copy(),
            "actions": actions,
            "episode_length": self._episode_length.astype(np.int64),
            "episode_return": self._episode_return.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Restores a ``state_dict``: each sub-env is reset with its episode's seed and replays
        the actions of its running episode. Returns the observations the agent acts on next."""
        if self.vectorization_mode != "sync":
            raise RLKitError("HostVecEnv.load_state_dict: needs vectorization_mode='sync'")
        try:
            episode = np.asarray(state["episode"], np.int64).reshape(self.num_envs)
            lengths = np.asarray(state["episode_length"], np.int64).reshape(self.num_envs)
            actions = np.asarray(state["actions"])
            returns = np.asarray(state["episode_return"], np.float64).reshape(self.num_envs)
            seed = int(np.asarray(state["seed"]))
        except (KeyError, ValueError, TypeError) as e:
            raise RLKitError(f"HostVecEnv.load_state_dict: malformed env state ({e})") from None
        if actions.shape[:1] != (self.num_envs,) or actions.shape[1] < lengths.max(initial=0):
            raise RLKitError("HostVecEnv.load_state_dict: actions do not match episode_length")
        self.seed = seed
        self._episode = episode.copy()
        self.envs.reset(seed=self._seeds())
        obs = []
        for i, env in enumerate(self.envs.envs):
            o, _ = env.reset(seed=episode_seed(seed, self.first_env + i, episode[i]))
            self._actions[i] = []
            for t in range(int(lengths[i])):
                a = actions[i, t]
                o, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    raise RLKitError(
                        "HostVecEnv.load_state_dict: the replayed episode ended early; the env "
                        "is not deterministic given its seed and actions"
                    )
                self._actions[i].append(np.array(a, copy=True))
            obs.append(np.asarray(o))
        self._episode_length = lengths.astype(np.int32)
        self._episode_return = returns.copy()
        self._obs = np.stack(obs).astype(self.observation_space.dtype, copy=False)
        return np.array(self._obs, copy=True)

    def close(self) -> None:
        """Closes the sub-envs (and their processes in async mode)."""
        self.envs.close()

    def __enter__(self) -> HostVecEnv:  # noqa: PYI034 (Self needs Python 3.11)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HostVecEnv({self.env_id!r}, num_envs={self.num_envs})"
