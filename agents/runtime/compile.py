"""How a training job's programs are compiled: the once-run init cheaply, the chunk in parallel."""

from __future__ import annotations

import threading
from typing import Any, Callable

import jax

__all__ = ["ONCE_COMPILER_OPTIONS", "compile_once", "compile_init_and_chunk"]


#: XLA compiler options for a program that runs once per training run (its init): no LLVM
#: optimisation of the generated code, which is most of such a program's compile time and buys
#: nothing for a program that runs once (figures in docs/benchmarks.md).
ONCE_COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 0}


def compile_once(fn: Callable, *args: Any) -> Callable:
    """``jax.jit(fn)`` compiled for ``args`` with ``ONCE_COMPILER_OPTIONS``.

    For programs that run once, such as a run's ``init_runner``: they compile in about half the
    time and run a little slower, which costs nothing when they run once. The result accepts
    arguments of the same shapes, dtypes and shardings as ``args``.
    """
    return jax.jit(fn).lower(*args).compile(ONCE_COMPILER_OPTIONS)


def compile_init_and_chunk(
    init: Callable,
    init_args: tuple,
    chunk: Callable,
    chunk_args: Callable[[Any], tuple],
    out_sharding: Any = None,
) -> tuple[Callable, Callable]:
    """Compiles a run's init program and its training-chunk program at the same time.

    The init is lowered first and compiled with ``ONCE_COMPILER_OPTIONS`` in a second thread,
    while this thread lowers and compiles the chunk for the init's output shapes (XLA releases
    the GIL while it compiles, so on a machine with two or more cores the two overlap). Nothing
    runs; call the results.

    Args:
      init: ``init(*init_args) -> state``.
      init_args: arrays (or ``jax.ShapeDtypeStruct``) to compile ``init`` for.
      chunk: the chunk function, jitted (``jax.jit(..., donate_argnums=...)``) or plain.
      chunk_args: maps the init's output, as ``jax.ShapeDtypeStruct`` leaves, to the chunk's
        arguments.
      out_sharding: the placement of the init's outputs over devices (``RunMesh.sharding()``),
        which the chunk is compiled for; None: one device.

    Returns:
      ``(compiled_init, compiled_chunk)``.
    """
    lowered_init = jax.jit(init).lower(*init_args)
    result: dict[str, Any] = {}

    def compile_init():
        try:
            result["init"] = lowered_init.compile(ONCE_COMPILER_OPTIONS)
        except BaseException as e:  # re-raised in the calling thread
            result["error"] = e

    thread = threading.Thread(target=compile_init, name="rlkit-compile-init", daemon=True)
    thread.start()
    try:
        state = lowered_init.out_info
        if out_sharding is not None:
            state = jax.tree.map(
                lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=out_sharding), state
            )
        jitted = chunk if hasattr(chunk, "lower") else jax.jit(chunk)
        compiled_chunk = jitted.lower(*chunk_args(state)).compile()
    finally:
        thread.join()
    if "error" in result:
        raise result["error"]
    return result["init"], compiled_chunk
