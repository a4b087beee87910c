"""Artifact names: safe, portable relative paths. Pure checks, no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from seawall.errors import ArtifactNameError

if TYPE_CHECKING:
    from collections.abc import Iterable

MANIFEST_NAME: Final = ".seawall-manifest.json"
"""The manifest's file name at the destination; no artifact may use it."""

_MAX_NAME_BYTES: Final = 1024
_MAX_PART_BYTES: Final = 255


def check_name(name: object) -> str:
    """Return ``name`` if it is a safe artifact name, else raise.

    A safe name is a relative POSIX path: no ``..`` or ``.`` parts, no empty parts, no
    leading ``/``, no backslash or drive letter, no NUL or control characters, at most 255
    bytes per part and 1024 in all, and not the manifest's reserved name.

    Raises:
        ArtifactNameError: The name is unsafe; the message says why and how to fix it.
    """
    if not isinstance(name, str):
        raise ArtifactNameError(
            f"artifact name {name!r} must be a string such as 'reports/summary.md'",
            artifact=repr(name),
        )
    problem = _problem(name)
    if problem is not None:
        raise ArtifactNameError(
            f"artifact name {name!r} {problem}; use a relative path such as 'reports/summary.md'",
            artifact=name,
        )
    return name


def _problem(name: str) -> str | None:  # noqa: C901, PLR0911 - one rule per line, first match wins
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL byte"
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):  # noqa: PLR2004
        return "contains a control character"
    if "\\" in name:
        return "contains a backslash (use '/' between folders)"
    if name.startswith("/") or (
        len(name) > 1 and name[1] == ":" and name[0].isascii() and name[0].isalpha()
    ):
        return "is an absolute path"
    parts = name.split("/")
    if any(part in ("..", ".") for part in parts):
        return "contains a '.' or '..' part, which could escape the run's folder"
    if any(not part for part in parts):
        return "has an empty part (a leading, trailing or doubled '/')"
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        return f"is longer than {_MAX_NAME_BYTES} bytes"
    if any(len(part.encode("utf-8")) > _MAX_PART_BYTES for part in parts):
        return f"has a part longer than {_MAX_PART_BYTES} bytes"
    if name == MANIFEST_NAME:
        return "is reserved for Seawall's manifest"
    return None


def case_collision(names: Iterable[str]) -> tuple[str, str] | None:
    """Return two names that differ only by case (they would clash on a case-insensitive store)."""
    seen: dict[str, str] = {}
    for name in names:
        folded = name.casefold()
        other = seen.get(folded)
        if other is not None and other != name:
            return other, name
        seen[folded] = name
    return None
