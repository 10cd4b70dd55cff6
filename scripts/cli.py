"""What every command line of rlkit shares: JAX set-up and turning errors into one line."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable

import gymnasium
import jax

from agents.runtime.devices import cpu_devices_flag
from rlkit.errors import RLKitError

#: Where compiled programs are cached between runs (override with RLKIT_JAX_CACHE).
CACHE_DIR = os.environ.get("RLKIT_JAX_CACHE", os.path.expanduser("~/.cache/rlkit/jax"))


def setup_jax(split_cpu: bool = True) -> None:
    """XLA flags and the persistent compilation cache; call before JAX initialises its backends.

    Args:
      split_cpu: expose one CPU device per core, so that several runs (--num-seeds, --sweep)
        are split over the cores.
    """
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    if split_cpu:
        os.environ["XLA_FLAGS"] = cpu_devices_flag()
    jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug``, and whether it was there."""
    return [a for a in argv if a != "--debug"], "--debug" in argv


def run_cli(main: Callable[[], int], debug: bool = False) -> int:
    """Run ``main``; a user-caused error becomes one line on stderr and exit status 2.

    User-caused errors: ``RLKitError``, ``OSError`` (with its path), Gymnasium's errors (an
    unknown id, a missing optional dependency). With ``debug`` the traceback is printed too.
    Ctrl-C exits with 130.
    """
    try:
        return main()
    except (RLKitError, OSError, gymnasium.error.Error) as e:
        if debug:
            traceback.print_exc()
        message = " ".join(str(e).split())
        if isinstance(e, OSError) and getattr(e, "filename", None) and e.filename not in message:
            message = f"{e.filename}: {message}"
        if isinstance(e, gymnasium.error.DependencyNotInstalled):
            message += " (install the extra it names, e.g. pip install 'rlkit[box2d]')"
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with --resume", file=sys.stderr)
        return 130
