"""Structural differences between two JSON values (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: at ``path``, ``before`` became ``after`` (``None`` path: the root).

    Attributes:
        path: Where (``$.items[2].price``).
        before: The original value (``"<absent>"`` when it was added).
        after: The new value (``"<absent>"`` when it was removed).
    """

    path: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"path": self.path, "before": self.before, "after": self.after}


def diff(before: Any, after: Any, path: str = "$", limit: int = 100) -> list[Change]:
    """Return the changes from ``before`` to ``after`` (at most ``limit`` of them)."""
    changes: list[Change] = []
    _walk(before, after, path, changes, limit)
    return changes


def _walk(before: Any, after: Any, path: str, changes: list[Change], limit: int) -> None:
    if len(changes) >= limit or before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            _walk(
                before.get(key, _ABSENT), after.get(key, _ABSENT), f"{path}.{key}", changes, limit
            )
        return
    if isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            _walk(
                before[index] if index < len(before) else _ABSENT,
                after[index] if index < len(after) else _ABSENT,
                f"{path}[{index}]",
                changes,
                limit,
            )
        return
    changes.append(Change(path, _shown(before), _shown(after)))


def _shown(value: Any) -> Any:
    return "<absent>" if value is _ABSENT else value
