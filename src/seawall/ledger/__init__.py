"""Ledger stores: the durable record of runs, attempts, journal steps and blobs."""

from __future__ import annotations

from typing import Final

from seawall.errors import LedgerURLError
from seawall.ledger._protocol import AttemptOutcome, NewRun, RunOutcome, StepRow, Store
from seawall.ledger._records import (
    AlertRecord,
    ArtifactRecord,
    AttemptRecord,
    BreakerEvent,
    CompensationRecord,
    DeadLetter,
    DeadLetterQuery,
    DriftSample,
    HandOffRecord,
    RunQuery,
    RunRecord,
    StepRecord,
    VerdictRecord,
)
from seawall.ledger.sqlite import Durability, SQLiteStore

DEFAULT_LEDGER_URL: Final = "sqlite:///.seawall/ledger.db"

__all__ = [
    "DEFAULT_LEDGER_URL",
    "AlertRecord",
    "ArtifactRecord",
    "AttemptOutcome",
    "AttemptRecord",
    "BreakerEvent",
    "CompensationRecord",
    "DeadLetter",
    "DeadLetterQuery",
    "DriftSample",
    "Durability",
    "HandOffRecord",
    "NewRun",
    "RunOutcome",
    "RunQuery",
    "RunRecord",
    "SQLiteStore",
    "StepRecord",
    "StepRow",
    "Store",
    "VerdictRecord",
    "open_store",
]


def open_store(
    url: str | None = None,
    *,
    durability: Durability = "crash",
    busy_timeout: float = 5.0,
) -> Store:
    """Open the ledger a URL names.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
            ``sqlite:///:memory:``; ``None`` means ``sqlite:///.seawall/ledger.db``.
        durability: ``crash`` (survive a process crash) or ``power`` (survive power loss).
        busy_timeout: Seconds to wait for another process's write lock.

    Returns:
        An open store.

    Raises:
        LedgerURLError: The URL's scheme is unknown or its path is empty.
    """
    url = url or DEFAULT_LEDGER_URL
    if durability not in ("crash", "power"):
        raise LedgerURLError(
            f"durability={durability!r} is not a durability level; use 'crash' (the default: "
            "survive a process crash) or 'power' (fsync: survive power loss)"
        )
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise LedgerURLError(
            f"ledger URL {url!r} has no scheme; use sqlite:///path/to/ledger.db",
            url=url,
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise LedgerURLError(
                f"ledger URL {url!r} has no file path; use sqlite:///relative/ledger.db or "
                "sqlite:////absolute/ledger.db",
                url=url,
            )
        return SQLiteStore(rest[1:], durability=durability, busy_timeout=busy_timeout)
    if scheme in ("postgresql", "postgres"):
        raise LedgerURLError(
            f"ledger URL {url!r}: this version of Seawall ships the SQLite ledger only; the "
            "PostgreSQL ledger is not available yet. Use sqlite:///path/to/ledger.db",
            url=url,
        )
    raise LedgerURLError(
        f"ledger URL {url!r} has the unknown scheme {scheme!r}; use sqlite:///path/to/ledger.db",
        url=url,
        scheme=scheme,
    )
