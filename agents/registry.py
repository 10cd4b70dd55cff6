"""Maps agent names to agent classes; ``register_agent`` adds your own."""

from __future__ import annotations

import difflib

from rlkit.errors import RLKitError

__all__ = ["register_agent", "get_agent", "registered_agents"]

_AGENTS: dict[str, type] = {}


def register_agent(cls: type, name: str | None = None) -> type:
    """Register an ``agents.base.Agent`` subclass under ``name`` (default ``cls.name``)."""
    _AGENTS[name or cls.name] = cls
    return cls


def registered_agents() -> list[str]:
    return sorted(_AGENTS)


def get_agent(name: str) -> type:
    """The agent class registered as ``name``; unknown names raise RLKitError listing the choices."""
    if name not in _AGENTS:
        close = difflib.get_close_matches(str(name), registered_agents(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RLKitError(
            f"unknown agent {name!r}.{hint} Available: {', '.join(registered_agents())}"
        )
    return _AGENTS[name]
