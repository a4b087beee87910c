"""What can go wrong with a SQLite ledger's file, and how it is told.

Where the file may live (its folder created and checked writable before SQLite is asked), and
sqlite3's errors turned into the most specific ledger error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from seawall.errors import (
    LedgerCorruptedError,
    LedgerError,
    LedgerLockedError,
    LedgerReadOnlyError,
    LedgerUnavailableError,
)

if TYPE_CHECKING:
    import sqlite3


def translate(exc: sqlite3.Error, path: str, busy_timeout: float) -> LedgerError:
    """Turn a sqlite3 error into the most specific ledger error."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return LedgerLockedError(
            f"the ledger {path} stayed locked by another process for more than "
            f"{busy_timeout}s; retry, or raise Seawall(busy_timeout=...) if writers are slow",
            path=path,
        )
    if "readonly" in text or "read-only" in text:
        return LedgerReadOnlyError(
            f"the ledger {path} cannot be written ({exc}); point --ledger / SEAWALL_LEDGER at a "
            "writable location or fix its permissions",
            path=path,
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return LedgerCorruptedError(
            f"{path} is not a readable Seawall ledger ({exc}); it was left untouched. Move it "
            "aside (keep it for inspection) and Seawall will start a new ledger",
            path=path,
        )
    return LedgerUnavailableError(
        f"the ledger {path} cannot be used ({exc}); check the disk and that the file still exists",
        path=path,
    )


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def prepare_location(path: str) -> None:
    """Create the ledger's folder, and fail clearly when it cannot be written."""
    folder = Path(path).absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerReadOnlyError(
            f"cannot create the ledger folder {folder} ({exc.strerror}); point --ledger / "
            "SEAWALL_LEDGER at a writable location",
            path=path,
        ) from exc
    target = Path(path)
    probe = target if target.exists() else folder / f".seawall-probe-{os.getpid()}"
    try:
        if probe is target:
            with target.open("ab"):
                pass
        else:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            probe.unlink()
    except OSError as exc:
        raise LedgerReadOnlyError(
            f"the ledger {path} is not writable ({exc.strerror}); SQLite also needs to write "
            f"beside it, in {folder}. Point --ledger / SEAWALL_LEDGER at a writable location",
            path=path,
        ) from exc
