"""The one exception type that user-caused errors raise across rlkit, envs and agents.

`ArgumentError` is the form primitives raise for a wrong rank, dtype or shape: both an
`RLKitError` and an `AssertionError` (what chex, and therefore rlax, raise), so code written
against either keeps catching it. `check_args` and `check_shape` run chex's checks and turn its
`input 3` into the argument's name, and `check` does the same for any chex assertion; they are
shared by the rlkit modules and not re-exported from `rlkit`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import chex
import numpy as np

__all__ = ["ArgumentError", "RLKitError"]


class RLKitError(ValueError):
    """A user-caused error: bad argument, unknown id, bad flag, corrupt or mismatched checkpoint.

    The message names the argument and the expected value. Command-line tools turn it into one
    line on stderr and exit status 2.
    """


class ArgumentError(RLKitError, AssertionError):
    """A rank, dtype or shape error in a primitive's arguments.

    It is both an `RLKitError` (rlkit's user-error type) and an `AssertionError` (what chex, and
    therefore rlax, raise), so code written against either keeps catching it.
    """


def name_inputs(message: str, names: Sequence[str]) -> str:
    """Rewrites chex's `input 3` into `input 3 (`r_t`)`."""

    def _sub(match: re.Match) -> str:
        index = int(match.group(1))
        name = names[index] if index < len(names) else "?"
        return f"input {index} (`{name}`)"

    return re.sub(r"input (\d+)", _sub, message)


def check_args(
    fn: str,
    args: dict[str, Any],
    ranks: Any = None,
    types: Any = None,
    same_shape: Sequence[str] | None = None,
) -> None:
    """Checks ranks, dtypes and equal shapes, naming the offending argument on failure.

    Args:
      fn: name of the calling primitive, for the message.
      args: argument names mapped to their values, in signature order.
      ranks: a rank (or set of ranks) per argument, or one for all, as for `chex.assert_rank`;
        None skips.
      types: a dtype class per argument, or one for all, as for `chex.assert_type`; None skips.
      same_shape: names of arguments that must share one shape.

    Raises:
      ArgumentError: naming the argument whose rank, dtype or shape is wrong.
    """
    names = list(args)
    values = list(args.values())
    try:
        if ranks is not None:
            chex.assert_rank(values, ranks)
        if types is not None:
            chex.assert_type(values, types)
    except AssertionError as err:
        if len(names) == 1:
            raise ArgumentError(f"{fn}: `{names[0]}`: {err}") from None
        raise ArgumentError(f"{fn}: {name_inputs(str(err), names)}") from None
    if same_shape:
        shapes = {name: tuple(np.shape(args[name])) for name in same_shape}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"`{name}` {shape}" for name, shape in shapes.items())
            raise ArgumentError(f"{fn}: these arguments must have the same shape: {listed}.")


def check_shape(fn: str, name: str, value: Any, expected: tuple[int, ...], why: str) -> None:
    """Raises `ArgumentError` unless `value` has shape `expected`."""
    shape = tuple(np.shape(value))
    if shape != tuple(expected):
        raise ArgumentError(
            f"{fn}: `{name}` must have shape {tuple(expected)} ({why}), got {shape}."
        )


def check(fn: str, assertion: Callable[..., Any], args: dict[str, Any], *rest: Any, **kw: Any):
    """Runs a chex assertion on named arguments; a failure names them in an `ArgumentError`.

    `check("q_learning", chex.assert_rank, {"q_tm1": q_tm1, "a_tm1": a_tm1}, [1, 0])` runs
    `chex.assert_rank([q_tm1, a_tm1], [1, 0])`. A single argument is passed on its own, not in
    a list, as the chex call would have it.

    Args:
      fn: name of the calling primitive, for the message.
      assertion: the chex assertion (`chex.assert_rank`, `chex.assert_type`, ...).
      args: argument names mapped to their values, in the order the assertion takes them.
      *rest: the assertion's remaining positional arguments (ranks, types, ...).
      **kw: its keyword arguments.

    Raises:
      ArgumentError: naming the arguments, if the assertion fails.
    """
    names = list(args)
    values = list(args.values())
    try:
        assertion(values[0] if len(values) == 1 else values, *rest, **kw)
    except ArgumentError:
        raise
    except AssertionError as err:
        message = str(err)
        if len(names) == 1:
            raise ArgumentError(f"{fn}: `{names[0]}`: {message}") from None
        if re.search(r"input \d+", message):
            raise ArgumentError(f"{fn}: {name_inputs(message, names)}") from None
        listed = ", ".join(f"`{name}`" for name in names)
        raise ArgumentError(f"{fn}: {message} (arguments {listed})") from None
