"""Ledger stores: the durable record of runs, attempts, journal steps and blobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seawall.errors import LedgerURLError
from seawall.ledger._inputs import AttemptOutcome, NewRun, RunOutcome, StepRow
from seawall.ledger._location import (
    DEFAULT_LEDGER_URL,
    LedgerLocation,
    describe,
    locate,
    split_url,
)
from seawall.ledger._protocol import IdKind, Store
from seawall.ledger._records import (
    ArtifactRecord,
    AttemptRecord,
    BreakerEvent,
    ClaimedRun,
    CompensationRecord,
    DeadLetter,
    DeadLetterQuery,
    HandOffRecord,
    RunQuery,
    RunRecord,
    StepRecord,
    StepResolution,
    VerdictRecord,
)
from seawall.ledger._stats import (
    LATENCY_BOUNDS,
    ErrorCount,
    ModelUsage,
    QueueCount,
    RunStats,
    StepLatency,
    UnpricedCount,
)
from seawall.ledger._watch_records import (
    AlertAck,
    AlertRecord,
    AlertSilence,
    DriftEmbedding,
    DriftSample,
    HandOffClaim,
    OperatorAction,
)
from seawall.ledger.sqlite import Durability, SQLiteStore

__all__ = [
    "DEFAULT_LEDGER_URL",
    "LATENCY_BOUNDS",
    "AlertAck",
    "AlertRecord",
    "AlertSilence",
    "ArtifactRecord",
    "AttemptOutcome",
    "AttemptRecord",
    "BreakerEvent",
    "ClaimedRun",
    "CompensationRecord",
    "DeadLetter",
    "DeadLetterQuery",
    "DriftEmbedding",
    "DriftSample",
    "Durability",
    "ErrorCount",
    "HandOffClaim",
    "HandOffRecord",
    "IdKind",
    "LedgerLocation",
    "MigrationReport",
    "ModelUsage",
    "NewRun",
    "OperatorAction",
    "PostgresStore",
    "QueueCount",
    "RunOutcome",
    "RunQuery",
    "RunRecord",
    "RunStats",
    "SQLiteStore",
    "StepLatency",
    "StepRecord",
    "StepResolution",
    "StepRow",
    "Store",
    "UnpricedCount",
    "VerdictRecord",
    "describe",
    "locate",
    "migrate",
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
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
            ``sqlite:///:memory:``, or ``postgresql://user@host/dbname`` (also
            ``postgres://``; see :class:`PostgresStore` for its options); ``None`` means
            ``sqlite:///.seawall/ledger.db``.
        durability: ``crash`` (survive a process crash) or ``power`` (survive power loss).
            PostgreSQL commits are as durable as the server's ``synchronous_commit`` makes them.
        busy_timeout: Seconds to wait for another process's write lock (SQLite).

    Returns:
        An open store.

    Raises:
        LedgerURLError: The URL's scheme is unknown, its path is empty, or the ``postgres``
            extra is not installed for a PostgreSQL URL.
        LedgerUnavailableError: The PostgreSQL server cannot be reached.
    """
    if durability not in ("crash", "power"):
        raise LedgerURLError(
            f"durability={durability!r} is not a durability level; use 'crash' (the default: "
            "survive a process crash) or 'power' (fsync: survive power loss)"
        )
    backend, target = split_url(url)
    if backend == "sqlite":
        return SQLiteStore(target, durability=durability, busy_timeout=busy_timeout)
    from seawall.ledger.postgres import PostgresStore  # noqa: PLC0415 - only when used

    return PostgresStore(target)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``migrate`` did to a ledger.

    Attributes:
        ledger: The ledger's URL (a PostgreSQL password hidden).
        backend: ``sqlite`` or ``postgresql``.
        from_version: The schema version found (0 for a new ledger).
        to_version: The schema version now.
        applied: The migrations applied, ``(version, file name)``, oldest first.
    """

    ledger: str
    backend: str
    from_version: int
    to_version: int
    applied: tuple[tuple[int, str], ...]


def migrate(url: str | None = None) -> MigrationReport:
    """Bring a ledger's schema up to this Seawall's version, and say what was applied.

    Opening a ledger migrates it too; this is the explicit step for deployments that upgrade
    the schema before starting workers.

    Args:
        url: The ledger URL (see :func:`open_store`).

    Returns:
        The versions before and after, and the migrations applied.

    Raises:
        SchemaVersionError: The ledger was written by a newer Seawall.
        LedgerError: The ledger cannot be opened (see its subclasses).
        LedgerURLError: The URL is not a ledger URL.
    """
    store = open_store(url)
    try:
        if isinstance(store, SQLiteStore):
            name, backend = store.url, "sqlite"
        else:
            from seawall.ledger.postgres import PostgresStore  # noqa: PLC0415 - only when used

            assert isinstance(store, PostgresStore)  # noqa: S101 - open_store makes one of two
            name, backend = store.target.display, "postgresql"
        return MigrationReport(
            ledger=name,
            backend=backend,
            from_version=store.migrated_from,
            to_version=store.schema_version(),
            applied=store.migrations_applied,
        )
    finally:
        store.close()


def __getattr__(name: str) -> Any:
    # PostgresStore is imported on first use: an app on SQLite does not load it at start-up.
    if name == "PostgresStore":
        from seawall.ledger.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
