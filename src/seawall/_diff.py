"""Structural differences between two JSON values (pure)."""

from __future__ import annotations

import json
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
    if len(changes) >= limit or _same(before, after):
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


def _same(before: Any, after: Any) -> bool:
    """Equal as JSON: ``1`` and ``1.0`` (or ``True``) are different values here."""
    if type(before) is not type(after):
        return False
    if isinstance(before, dict | list):
        return bool(before == after) and _as_json(before) == _as_json(after)
    return bool(before == after)


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _shown(value: Any) -> Any:
    return "<absent>" if value is _ABSENT else value


def request_changes(before: Any, after: Any, limit: int = 20) -> list[Change]:
    """The changes between two journaled requests, with paths as a person reads them.

    A tool request ``[tool, args, kwargs]`` is compared as ``tool``, ``args[i]`` and the
    keyword names (``messages[3].content``); any other request from its root (``$``).
    """
    if _is_call(before) and _is_call(after):
        changes: list[Change] = []
        if before[0] != after[0]:
            changes.append(Change("tool", before[0], after[0]))
        _walk(before[1], after[1], "args", changes, limit)
        for key in sorted(set(before[2]) | set(after[2])):
            _walk(before[2].get(key, _ABSENT), after[2].get(key, _ABSENT), key, changes, limit)
        return changes
    return diff(before, after, "$", limit)


_CALL_PARTS = 3
"""A tool request is ``[tool, args, kwargs]``."""


def _is_call(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == _CALL_PARTS
        and isinstance(value[0], str)
        and isinstance(value[1], list)
        and isinstance(value[2], dict)
    )


def describe(changes: list[Change], limit: int = 5) -> str:
    """Render changes as lines ``path: before → after``, long strings cut around the change."""
    lines = [
        f"{c.path}: {_excerpt(c.before, c.after)} → {_excerpt(c.after, c.before)}"
        for c in changes[:limit]
    ]
    if len(changes) > limit:
        lines.append(f"... and {len(changes) - limit} more")
    return "\n".join(lines)


EXCERPT = 60
"""Characters of a long string shown around the first place it differs from the other."""


def _excerpt(value: Any, other: Any) -> str:
    if value is _ABSENT or value == "<absent>":
        return "<absent>"
    if not isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False, default=repr)
        return text if len(text) <= EXCERPT * 2 else text[: EXCERPT * 2] + "…"
    at = 0
    if isinstance(other, str):
        limit = min(len(value), len(other))
        while at < limit and value[at] == other[at]:
            at += 1
    start = max(0, at - EXCERPT // 3)
    end = min(len(value), start + EXCERPT)
    shown = value[start:end]
    return (
        ("…" if start > 0 else "")
        + json.dumps(shown, ensure_ascii=False)
        + ("…" if end < len(value) else "")
    )
