"""Videos of a policy on Gymnasium's env: mp4 with moviepy, else animated GIFs with Pillow."""

from __future__ import annotations

import importlib.util
import os

import gymnasium
import jax
import numpy as np

import envs  # noqa: F401  (registers rlkit/<id> with Gymnasium)
from envs.host import make_gymnasium, register_reference
from rlkit.errors import RLKitError

try:  # optional: GIFs when moviepy is missing
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None

__all__ = ["VIDEO_EPISODES", "record_video"]

VIDEO_EPISODES = 3


def record_video(
    policy,
    env_id: str,
    out_dir: str,
    *,
    episodes: int = VIDEO_EPISODES,
    seed: int = 0,
    deterministic: bool = True,
    name_prefix: str = "eval",
    max_episode_steps: int | None = None,
) -> tuple[list[str], str]:
    """Record ``episodes`` episodes of seed 0 of ``policy`` on Gymnasium's ``env_id``.

    Uses ``gymnasium.wrappers.RecordVideo`` (mp4) when moviepy is installed; otherwise collects the
    ``rgb_array`` frames itself and writes one animated GIF per episode with Pillow (every second
    frame, so the GIF plays at real time at half the env's frame rate).

    Returns:
      ``(paths, format)`` with format "mp4" or "gif".
    """
    # Headless rendering: pygame needs no display or sound card for rgb_array frames.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    single = policy.select(0) if policy.num_seeds is not None else policy
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    register_reference(env_id)
    try:
        env = make_gymnasium(env_id, render_mode="rgb_array", **kwargs)
    except gymnasium.error.Error as e:
        raise RLKitError(
            f"--video: cannot make {env_id!r} with render_mode='rgb_array' ({e})"
        ) from None
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise RLKitError(f"--video: {env_id!r} does not render rgb_array frames")
    os.makedirs(out_dir, exist_ok=True)
    fmt = "mp4" if importlib.util.find_spec("moviepy") is not None else "gif"
    if fmt == "gif" and Image is None:
        env.close()
        raise RLKitError("--video needs moviepy (mp4) or Pillow (GIF)")

    if fmt == "mp4":
        env = gymnasium.wrappers.RecordVideo(
            env,
            out_dir,
            episode_trigger=lambda _: True,
            name_prefix=name_prefix,
            disable_logger=True,
        )
    key = jax.random.PRNGKey(seed)
    fps = int(env.metadata.get("render_fps", 30) or 30)
    paths = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            frames = [env.render()] if fmt == "gif" else []
            done, t = False, 0
            while not done:
                k = jax.random.fold_in(jax.random.fold_in(key, ep), t)
                action = single(np.asarray(obs)[None], key=k, deterministic=deterministic)[0]
                obs, _, terminated, truncated, _ = env.step(action)
                done = bool(terminated or truncated)
                t += 1
                if fmt == "gif":
                    frames.append(env.render())
            if fmt == "gif":
                images = [Image.fromarray(np.asarray(f)) for f in frames[::2]]
                path = os.path.join(out_dir, f"{name_prefix}-episode-{ep}.gif")
                images[0].save(
                    path,
                    save_all=True,
                    append_images=images[1:],
                    loop=0,
                    duration=max(20, int(round(2000 / fps))),
                )
                paths.append(path)
    finally:
        env.close()
    if fmt == "mp4":
        paths = sorted(
            os.path.join(out_dir, f)
            for f in os.listdir(out_dir)
            if f.startswith(name_prefix) and f.endswith(".mp4")
        )
    return paths, fmt
