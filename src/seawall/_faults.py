"""Named fault points on dangerous paths (the artifact commit, compensations, group commits).

Production code calls :func:`point` at each step whose interruption must be survivable; with no
hook installed it is one dictionary lookup. Crash tests and the chaos harness install a hook
that, for example, SIGKILLs the process at a chosen point.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_hooks: dict[str, Callable[[str], None]] = {}

current_run: ContextVar[str | None] = ContextVar("seawall_current_run", default=None)
"""The run whose agent code is executing (set around each attempt; chaos attributes faults)."""


def point(name: str) -> None:
    """Mark that execution reached the fault point ``name`` (runs its hook, if any)."""
    hook = _hooks.get(name) or _hooks.get("*")
    if hook is not None:
        hook(name)


def install(name: str, hook: Callable[[str], None]) -> None:
    """Run ``hook(name)`` whenever point ``name`` is reached (``"*"``: every point)."""
    _hooks[name] = hook


def clear() -> None:
    """Remove every hook."""
    _hooks.clear()
