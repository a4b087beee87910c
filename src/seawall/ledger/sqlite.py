"""The embedded ledger: one SQLite file in WAL mode, safe for several processes on a machine.

Durability levels:

- ``crash`` (default): ``synchronous=NORMAL``. A committed write is in the OS page cache the
  moment the commit returns, so it survives the death of the process; it is not fsynced.
- ``power``: every write that guards a side effect (a run's creation, a mutating step's
  intent, a run's end) commits with ``synchronous=FULL``, which fsyncs the WAL. A mutating
  step's result commits without an fsync; the next fsync'd commit (the next intent or the
  run's end) carries it to disk. If power fails inside that window the step is found in
  doubt, exactly as if power had failed during the side effect itself.

Checkpoints: at the ``crash`` level they run on a background thread (``wal_autocheckpoint`` is
off on the writing connection), so no journaled step pays for one's fsync. At the ``power`` level
SQLite's own autocheckpoint stays on: it keeps the WAL small and reused, and an fsync that does
not extend the file is much cheaper (measured: 190 µs per mutating step against 280 µs with a
growing WAL and background checkpoints).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from seawall._payload import Blob
from seawall.errors import (
    LedgerCorruptedError,
    LedgerError,
    LedgerLockedError,
    LedgerReadOnlyError,
    LedgerUnavailableError,
    RunCancelled,
    SchemaVersionError,
)
from seawall.ledger import _queries as queries
from seawall.ledger import _writes as writes
from seawall.ledger._operators import OperatorRecords
from seawall.ledger._reads import SharedReads
from seawall.ledger._records import (
    AlertRecord,
    DeadLetter,
    DeadLetterQuery,
    DriftEmbedding,
    DriftSample,
    HandOffRecord,
    RunRecord,
)
from seawall.ledger._waiting import LedgerWouldBlock, waiting_forbidden

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from seawall.ledger._protocol import AttemptOutcome, NewRun, RunOutcome, StepRow
from seawall.policies.breaker import BreakerState

Durability = Literal["crash", "power"]
T = TypeVar("T")

_META_TABLE: Final = "seawall_meta"
_CHECKPOINT_INTERVAL: Final = 1.0
_INSERT_STEP: Final = (
    f"INSERT OR REPLACE INTO steps ({queries.STEP_COLUMNS}) VALUES ({', '.join('?' * 16)})"
)
# Written only while the run is held at the writer's epoch and not cancelled (parameters: the
# row, then run_id and epoch).
_INSERT_INTENT: Final = (
    f"INSERT OR REPLACE INTO steps ({queries.STEP_COLUMNS}) SELECT {', '.join('?' * 16)} "
    f"WHERE {writes.fence_for_intent(queries.SQLITE)}"
)
_COMPLETE_STEP: Final = (
    "UPDATE steps SET status = ?, response = ?, end_time = ?, error_type = ?, "
    f"error_message = ?, tries = ? WHERE run_id = ? AND seq = ? AND {writes.fence(queries.SQLITE)}"
)
_UPSERT_ATTEMPT: Final = (
    "INSERT OR REPLACE INTO attempts (run_id, attempt, start_time, status, owner, base_seq, "
    "completed_at_start, epoch) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)"
)
_FINISH_ATTEMPT: Final = writes.FINISH_ATTEMPT + writes.fence(queries.SQLITE)
_INSERT_BLOB: Final = "INSERT OR IGNORE INTO blobs (hash, codec, size, data) VALUES (?, ?, ?, ?)"


def _migrations() -> list[tuple[int, str, str]]:
    """Return ``(version, name, sql)`` for every bundled SQLite migration, in order."""
    folder = resources.files("seawall.ledger.migrations.sqlite")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def _translate(exc: sqlite3.Error, path: str, busy_timeout: float) -> LedgerError:
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


class SQLiteStore(SharedReads, OperatorRecords):
    """A :class:`~seawall.ledger.Store` on one SQLite file.

    Args:
        path: Database file (created with its folder when missing), or ``:memory:``.
        durability: ``crash`` (default) or ``power``; see the module docstring.
        busy_timeout: Seconds to wait for another process's write lock before failing with
            :class:`~seawall.LedgerLockedError`.
        read_only: Open for reading only (the CLI's list and show commands).

    Raises:
        LedgerCorruptedError: The file is not a SQLite database, or not a Seawall ledger.
        LedgerReadOnlyError: The location cannot be written.
        SchemaVersionError: The ledger was written by a newer Seawall.
    """

    dialect = queries.SQLITE
    local = True
    """Calls are in-process and fast: async code may make them on its event loop (nowait)."""

    def __init__(
        self,
        path: str,
        *,
        durability: Durability = "crash",
        busy_timeout: float = 5.0,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.url = "sqlite:///" + path
        self.durability: Durability = durability
        self.busy_timeout = busy_timeout
        self._power = durability == "power"
        self._lock = threading.RLock()
        self._queue_ready = threading.Condition(threading.Lock())
        self._queue: list[_Ticket] = []
        self._leading = False
        self.group_commits = 0
        """Fsynced intent transactions written (each may carry several threads' intents)."""
        self._closed = False
        self.migrated_from = 0
        """The schema version found when the store was opened (0 for a new ledger)."""
        self.migrations_applied: tuple[tuple[int, str], ...] = ()
        """The migrations this store applied when it opened, ``(version, file name)``."""
        self._memory = path == ":memory:"
        if not self._memory and not read_only:
            _prepare_location(path)
        if read_only and not self._memory and not Path(path).exists():
            raise LedgerUnavailableError(
                f"no ledger at {path}; run an agent first, or pass --ledger with the right URL",
                path=path,
            )
        self._db = self._connect(read_only=read_only)
        try:
            self._setup(read_only=read_only)
            # From here on the store waits for other processes' locks itself (see _busy), so a
            # caller that must not wait (an event loop) is told at once instead.
            self._db.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            self._db.close()
            raise
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if not self._memory and not read_only and not self._power:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="seawall-wal-checkpoint", daemon=True
            )
            self._checkpointer.start()

    # -- connection -------------------------------------------------------------------------

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        target = self.path
        uri = False
        if read_only and not self._memory:
            target = Path(self.path).absolute().as_uri() + "?mode=ro"
            uri = True
        try:
            db = sqlite3.connect(
                target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, self.busy_timeout) from exc
        return db

    def _setup(self, *, read_only: bool) -> None:
        try:
            # Look before touching anything: a file that is not ours must stay byte-for-byte
            # as it was (switching it to WAL mode would rewrite its header).
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, self.busy_timeout) from exc
        if tables and _META_TABLE not in tables:
            raise LedgerCorruptedError(
                f"{self.path} is a SQLite database but not a Seawall ledger (it has tables "
                f"{sorted(tables)[:5]} and no {_META_TABLE}); it was left untouched. Use another "
                "path for the ledger",
                path=self.path,
            )
        try:
            if not read_only:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal" and not self._memory:
                    raise LedgerUnavailableError(
                        f"could not switch {self.path} to WAL mode (got {mode}); the "
                        "filesystem may not support shared memory (network filesystems do not)",
                        path=self.path,
                    )
                self._db.execute("PRAGMA synchronous=NORMAL")
                if not self._power:
                    self._db.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, self.busy_timeout) from exc
        if not read_only:
            self._migrate()
        else:
            self._check_version()

    def _check_version(self) -> None:
        known = max(v for v, _, _ in _migrations())
        version = self.schema_version()
        if version > known:
            raise SchemaVersionError(
                f"the ledger {self.path} has schema version {version}, newer than this "
                f"Seawall understands ({known}); upgrade Seawall to use it",
                path=self.path,
                version=version,
                supported=known,
            )

    def _migrate(self) -> None:
        migrations = _migrations()
        with self._write(durable=True) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {_META_TABLE} "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            recorded = {r[0] for r in db.execute(f"SELECT version FROM {_META_TABLE}")}
            current = max(recorded, default=0)
            known = migrations[-1][0]
            if current > known:
                raise SchemaVersionError(
                    f"the ledger {self.path} has schema version {current}, newer than this "
                    f"Seawall understands ({known}); upgrade Seawall to use it",
                    path=self.path,
                    version=current,
                    supported=known,
                )
            applied = []
            # Every bundled migration not recorded yet, in order (one numbered below the newest
            # applied, merged later, is applied too rather than skipped).
            for version, name, sql in migrations:
                if version not in recorded:
                    for statement in _statements(sql):
                        db.execute(statement)
                    db.execute(
                        f"INSERT INTO {_META_TABLE} (version, name, applied_at) "
                        "VALUES (?, ?, julianday('now'))",
                        (version, name),
                    )
                    applied.append((version, name))
        self.migrated_from = current
        self.migrations_applied = tuple(applied)

    @contextlib.contextmanager
    def _hold(self) -> Iterator[sqlite3.Connection]:
        """The connection, for this thread alone (no waiting for it under ``nowait``).

        Raises:
            LedgerWouldBlock: Another thread holds it and this one must not wait.
        """
        if not self._lock.acquire(blocking=not waiting_forbidden()):
            raise LedgerWouldBlock(f"the ledger {self.path} is busy in another thread")
        try:
            self._ensure_open()
            yield self._db
        finally:
            self._lock.release()

    def _busy(self, db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement, waiting up to the busy timeout for another process's lock.

        SQLite's own busy handler is off: it would block an event loop. The wait is here, and
        a caller that must not wait (:func:`~seawall.ledger._waiting.nowait`) is told at once.

        Raises:
            LedgerWouldBlock: The ledger is locked and this caller must not wait.
            sqlite3.Error: Anything else, or the lock outlasted the busy timeout.
        """
        deadline = None
        delay = 0.001
        while True:
            try:
                return db.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if waiting_forbidden():
                    raise LedgerWouldBlock(
                        f"the ledger {self.path} is locked by another process"
                    ) from exc
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.busy_timeout
                if now >= deadline:
                    raise
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, 0.05)

    def _fenced_statement(self, sql: str, params: Sequence[Any], run_id: str, epoch: int) -> None:
        """Run one fenced autocommit statement of the hot path; refused unless it hit one row.

        The per-step path, so written without a context manager: the connection's lock is
        taken and released here, and the busy loop is entered only when the lock is contended.

        Raises:
            LedgerWouldBlock: Another thread or process holds the ledger under ``nowait``.
            LeaseLostError: Another owner took the run over (or, for an intent, it was
                cancelled); nothing was written.
        """
        if not self._lock.acquire(blocking=not waiting_forbidden()):
            raise LedgerWouldBlock(f"the ledger {self.path} is busy in another thread")
        try:
            if self._closed:
                self._ensure_open()  # raises
            db = self._db
            try:
                try:
                    changed = db.execute(sql, params).rowcount
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                    changed = self._busy(db, sql, params).rowcount
                if changed != 1:
                    raise writes.refusal(db, queries.SQLITE, run_id, epoch)
            except sqlite3.Error as exc:
                raise _translate(exc, self.path, self.busy_timeout) from exc
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE write transaction; fsynced when ``durable`` at the power level."""
        full = durable and self._power
        if full and waiting_forbidden():
            # An fsync is a wait too: from an event loop it goes to a ledger thread.
            raise LedgerWouldBlock(f"a durable write to {self.path} waits for the disk")
        with self._hold() as db:
            try:
                if full:
                    db.execute("PRAGMA synchronous=FULL")
                self._busy(db, "BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise _translate(exc, self.path, self.busy_timeout) from exc
            finally:
                if full:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA synchronous=NORMAL")

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        deadline = None
        while True:
            with self._hold() as db:
                try:
                    return fn(db)
                except sqlite3.OperationalError as exc:
                    # A reader in WAL mode is refused only while the WAL is being recovered.
                    if not _is_busy(exc) or waiting_forbidden():
                        raise _translate(exc, self.path, self.busy_timeout) from exc
                    now = time.monotonic()
                    deadline = deadline if deadline is not None else now + self.busy_timeout
                    if now >= deadline:
                        raise _translate(exc, self.path, self.busy_timeout) from exc
                except sqlite3.Error as exc:
                    raise _translate(exc, self.path, self.busy_timeout) from exc
            time.sleep(0.005)

    def _fetchall(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        """Run one read query (``what`` names it for errors of the other store)."""
        del what
        rows: list[tuple[Any, ...]] = self._read(lambda db: db.execute(sql, params).fetchall())
        return rows

    def _rowcount(self, sql: str, params: Sequence[Any], what: str) -> int:
        """Run one write statement in its own durable transaction; return the rows it changed."""
        del what
        with self._write(durable=True) as db:
            count: int = db.execute(sql, params).rowcount
            return count

    def _ensure_open(self) -> None:
        if self._closed:
            raise LedgerUnavailableError(
                f"the ledger {self.path} was closed; create a new Seawall to use it again",
                path=self.path,
            )

    def _checkpoint_loop(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=0.1, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while not self._stop.wait(_CHECKPOINT_INTERVAL):
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def close(self) -> None:
        """Stop the checkpointer and close the connection (idempotent)."""
        if self._closed:
            return
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
        with self._lock:
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._db.close()

    def schema_version(self) -> int:
        """Return the highest migration applied to this ledger (0 for an empty file)."""

        def read(db: sqlite3.Connection) -> int:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (_META_TABLE,)
            ).fetchone()
            if not exists:
                return 0
            return int(db.execute(f"SELECT max(version) FROM {_META_TABLE}").fetchone()[0] or 0)

        return self._read(read)

    def ledger_bytes(self) -> int:
        """Return the size of the database file plus its WAL, in bytes."""
        if self._memory:
            return self._read(
                lambda db: (
                    int(db.execute("PRAGMA page_count").fetchone()[0])
                    * int(db.execute("PRAGMA page_size").fetchone()[0])
                )
            )
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += Path(self.path + suffix).stat().st_size
        return total

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, run: NewRun, blobs: Sequence[Blob]) -> None:
        """Record a new run, leased to its owner, with its input snapshot."""
        with self._write(durable=True) as db:
            _put_blobs(db, blobs)
            db.execute(writes.INSERT_RUN, writes.new_run_params(run))

    def get_run_io(self, run_id: str) -> tuple[bytes, bytes | None] | None:
        """Return the stored input and output columns of a run."""
        row = self._read(
            lambda db: db.execute(
                "SELECT input, output FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        )
        return None if row is None else (bytes(row[0]), None if row[1] is None else bytes(row[1]))

    # -- aggregates (dashboard, metrics) ----------------------------------------------------

    def finish_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record the run's final fields and release its lease (fenced)."""
        with self._write(durable=True) as db:
            _put_blobs(db, blobs)
            writes.finish_run(db, queries.SQLITE, run_id, outcome, epoch)

    def set_trace(self, run_id: str, trace_id: str, span_id: str) -> None:
        """Record the OpenTelemetry span of a traced run."""
        with self._write(durable=False) as db:
            db.execute(
                "UPDATE runs SET trace_id = ?, span_id = ? WHERE run_id = ?",
                (trace_id, span_id, run_id),
            )

    # -- settling: commits and compensations --------------------------------------------------

    def begin_commit(
        self,
        run_id: str,
        *,
        output_hash: str,
        output_column: bytes,
        blobs: Sequence[Blob],
        commit_json: str,
        artifacts: Sequence[tuple[str, int, str]],
        epoch: int,
    ) -> None:
        """Record output and manifest before publishing them (phase ``committing``), durably."""
        with self._write(durable=True) as db:
            writes.check_fence(db, queries.SQLITE, run_id, epoch)
            _put_blobs(db, blobs)
            db.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
            db.executemany(
                "INSERT INTO artifacts (run_id, name, size, sha256) VALUES (?, ?, ?, ?)",
                [(run_id, name, size, sha) for name, size, sha in artifacts],
            )
            db.execute(
                "UPDATE runs SET phase = 'committing', commit_json = ?, output_hash = ?, "
                "output = ?, updated_at = ? WHERE run_id = ?",
                (commit_json, output_hash, output_column, time.time(), run_id),
            )

    def abort_commit(self, run_id: str, *, epoch: int) -> None:
        """Forget an unfinished commit (its artifacts were not published)."""
        with self._write(durable=True) as db:
            writes.check_fence(db, queries.SQLITE, run_id, epoch)
            db.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
            db.execute(
                "UPDATE runs SET phase = NULL, commit_json = NULL, output_hash = NULL, "
                "output = NULL, updated_at = ? WHERE run_id = ?",
                (time.time(), run_id),
            )

    def get_commit(self, run_id: str) -> str | None:
        """Return the commit record (JSON) of a run in phase ``committing``."""
        row = self._read(
            lambda db: db.execute(
                "SELECT commit_json FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        )
        return None if row is None else row[0]

    def begin_compensation(self, run_id: str, outcome: RunOutcome, *, epoch: int) -> None:
        """Record a run's final failure and enter phase ``compensating`` (fenced)."""
        with self._write(durable=True) as db:
            writes.begin_compensation(db, queries.SQLITE, run_id, outcome, epoch)

    def start_compensation(
        self,
        run_id: str,
        seq: int,
        tool: str,
        idempotency_key: str | None,
        start_time: float,
        *,
        epoch: int,
    ) -> None:
        """Record the intent to run a compensation (durable before it runs; fenced)."""
        with self._write(durable=True) as db:
            writes.check_fence(db, queries.SQLITE, run_id, epoch)
            db.execute(
                "INSERT OR REPLACE INTO compensations (run_id, seq, tool, idempotency_key, "
                "status, start_time) VALUES (?, ?, ?, ?, 'started', ?)",
                (run_id, seq, tool, idempotency_key, start_time),
            )

    def finish_compensation(
        self,
        run_id: str,
        seq: int,
        *,
        status: str,
        end_time: float,
        tries: int,
        error_type: str | None,
        error_message: str | None,
        epoch: int,
    ) -> None:
        """Record how a compensation ended (fenced)."""
        with self._write(durable=True) as db:
            writes.check_fence(db, queries.SQLITE, run_id, epoch)
            db.execute(
                "UPDATE compensations SET status = ?, end_time = ?, tries = ?, error_type = ?, "
                "error_message = ? WHERE run_id = ? AND seq = ?",
                (status, end_time, tries, error_type, error_message, run_id, seq),
            )

    # -- verification, cancellation, parking ---------------------------------------------------

    def record_verdicts(
        self,
        run_id: str,
        attempt: int,
        kind: str,
        verdicts: Sequence[dict[str, Any]],
        *,
        epoch: int,
    ) -> None:
        """Append verdicts of one attempt (each a dict: name, passed, message, duration...)."""
        if not verdicts:
            return
        now = time.time()
        with self._write() as db:
            writes.check_fence(db, queries.SQLITE, run_id, epoch)
            row = db.execute(
                "SELECT coalesce(max(ordinal), 0) FROM verifications "
                "WHERE run_id = ? AND attempt = ?",
                (run_id, attempt),
            ).fetchone()
            start = int(row[0])
            db.executemany(
                "INSERT INTO verifications (run_id, attempt, ordinal, kind, name, passed, error, "
                "score, message, duration, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        attempt,
                        start + index + 1,
                        kind,
                        v["name"],
                        1 if v["passed"] else 0,
                        1 if v.get("error") else 0,
                        v.get("score"),
                        v.get("message"),
                        float(v.get("duration") or 0.0),
                        now,
                    )
                    for index, v in enumerate(verdicts)
                ],
            )

    def request_cancel(self, run_id: str, reason: str, at: float) -> bool:
        """Record an operator's cancellation of an unfinished run; false if it had ended."""
        with self._write(durable=True) as db:
            cursor = db.execute(
                "UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, ?), "
                "cancel_reason = coalesce(cancel_reason, ?), updated_at = ? WHERE run_id = ? "
                "AND status IN ('pending', 'running', 'awaiting_human')",
                (at, reason, at, run_id),
            )
            return cursor.rowcount == 1

    def cancellations(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Return the cancellation reasons recorded for any of ``run_ids``."""
        found: dict[str, str] = {}
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows = self._read(
                lambda db, chunk=chunk, marks=marks: db.execute(  # type: ignore[misc]
                    f"SELECT run_id, cancel_reason FROM runs WHERE run_id IN ({marks}) "
                    "AND cancel_requested_at IS NOT NULL",
                    chunk,
                ).fetchall()
            )
            found.update({r[0]: r[1] or "" for r in rows})
        return found

    def park_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record a run that waits for a person (``awaiting_human``): output kept, lease freed."""
        with self._write(durable=True) as db:
            _put_blobs(db, blobs)
            writes.park_run(db, queries.SQLITE, run_id, outcome, epoch)

    def claim_parked(self, run_id: str, owner: str, expires_at: float) -> int | None:
        """Take a run waiting for a person back into ``running`` (one decider wins)."""
        with self._write(durable=True) as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
                "epoch = epoch + 1, updated_at = ? WHERE run_id = ? AND status = 'awaiting_human'",
                (owner, expires_at, time.time(), run_id),
            )
            return _epoch_after(db, run_id) if cursor.rowcount == 1 else None

    def decide_handoff(
        self, handoff_id: str, *, decision: str, decided_by: str | None, note: str | None, at: float
    ) -> bool:
        """Record a decision on an open hand-off; false when it was already decided."""
        with self._write(durable=True) as db:
            cursor = db.execute(
                "UPDATE handoffs SET status = 'decided', decision = ?, decided_by = ?, note = ?, "
                "decided_at = ? WHERE handoff_id = ? AND status = 'open'",
                (decision, decided_by, note, at, handoff_id),
            )
            return cursor.rowcount == 1

    # -- dead-letter queue ------------------------------------------------------------------

    def claim_dead_letter(
        self, query: DeadLetterQuery, owner: str, at: float, *, stale_before: float = 0.0
    ) -> DeadLetter | None:
        """Take the oldest claimable entry matching ``query`` for redriving (one claimer wins).

        Claimable: pending, or claimed before ``stale_before`` by a redriver that died before
        its redrive started.
        """
        claimable = dataclasses.replace(
            query, status="claimable", limit=1, stale_before=stale_before
        )
        where, params = queries.dlq_where(claimable, queries.SQLITE)
        with self._write(durable=True) as db:
            row = db.execute(
                f"SELECT {queries.DLQ_COLUMNS} FROM dlq{where} "
                "ORDER BY failed_at, entry_id LIMIT 1",
                params,
            ).fetchone()
            if row is None:
                return None
            claimed = db.execute(
                "UPDATE dlq SET status = 'redriving', claimed_by = ?, claimed_at = ? "
                f"WHERE entry_id = ? AND {queries.CLAIMABLE}",
                (owner, at, row[0], stale_before),
            ).rowcount
            return queries.dead_letter_record(row) if claimed == 1 else None

    def begin_redrive(
        self, entry_id: str, owner: str, run: NewRun, source_run_id: str | None
    ) -> bool:
        """Record a claimed entry's redrive run (with the journal it continues) in one go."""
        with self._write(durable=True) as db:
            return writes.begin_redrive(db, queries.SQLITE, entry_id, owner, run, source_run_id)

    def resolve_step(
        self,
        run_id: str,
        seq: int,
        *,
        happened: bool,
        response: bytes | None,
        result_json: str | None,
        blobs: Sequence[Blob],
        by: str | None,
        note: str | None,
        at: float,
    ) -> bool:
        """Record an operator's word on an in-doubt step of an ended run."""
        with self._write(durable=True) as db:
            _put_blobs(db, blobs)
            return writes.resolve_step(
                db,
                queries.SQLITE,
                run_id,
                seq,
                happened=happened,
                response=response,
                result_json=result_json,
                by=by,
                note=note,
                at=at,
            )

    def finish_dead_letter(
        self, entry_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> None:
        """Record how a redrive ended."""
        with self._write(durable=True) as db:
            db.execute(
                "UPDATE dlq SET status = 'redriven', redriven_at = ?, redrive_run_id = ?, "
                "result = ? WHERE entry_id = ?",
                (at, redrive_run_id, result, entry_id),
            )

    def release_dead_letter(self, entry_id: str) -> None:
        """Give a claimed entry back (its redrive could not start)."""
        with self._write(durable=True) as db:
            db.execute(
                "UPDATE dlq SET status = 'pending', claimed_by = NULL, claimed_at = NULL "
                "WHERE entry_id = ? AND status = 'redriving'",
                (entry_id,),
            )

    def settle_dead_letter(
        self, run_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> bool:
        """Mark a run's pending entry redriven by a run made outside a redrive (a live replay)."""
        with self._write(durable=True) as db:
            return (
                db.execute(
                    "UPDATE dlq SET status = 'redriven', redriven_at = ?, redrive_run_id = ?, "
                    "result = ? WHERE run_id = ? AND status = 'pending'",
                    (at, redrive_run_id, result, run_id),
                ).rowcount
                == 1
            )

    def purge_dead_letters(self, query: DeadLetterQuery) -> int:
        """Mark matching pending entries purged; return how many."""
        pending = DeadLetterQuery(
            query.agent, query.error_class, query.since, "pending", query.limit
        )
        where, params = queries.dlq_where(pending, queries.SQLITE)
        with self._write(durable=True) as db:
            return db.execute(
                f"UPDATE dlq SET status = 'purged' WHERE entry_id IN "
                f"(SELECT entry_id FROM dlq{where} ORDER BY failed_at LIMIT ?)",
                [*params, query.limit],
            ).rowcount

    # -- breakers -----------------------------------------------------------------------------

    def breaker(self, name: str, kind: str) -> BreakerState:
        """Return a breaker's state (closed when never used)."""
        row = self._read(
            lambda db: db.execute(
                f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = ?", (name,)
            ).fetchone()
        )
        return BreakerState(name=name, kind=kind) if row is None else queries.breaker_state(row)

    def update_breaker(
        self, name: str, kind: str, change: Callable[[BreakerState], tuple[BreakerState, T]]
    ) -> T:
        """Apply ``change`` to a breaker in one IMMEDIATE transaction; record a transition."""
        with self._write(durable=True) as db:
            row = db.execute(
                f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = ?", (name,)
            ).fetchone()
            before = (
                BreakerState(name=name, kind=kind) if row is None else queries.breaker_state(row)
            )
            after, answer = change(before)
            if after != before:
                now = time.time()
                db.execute(
                    f"INSERT OR REPLACE INTO breakers ({queries.BREAKER_COLUMNS}, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        kind,
                        after.state,
                        after.failures,
                        after.opened_at,
                        after.reason,
                        1 if after.manual else 0,
                        after.probe_owner,
                        after.probe_at,
                        now,
                    ),
                )
                if after.state != before.state:
                    db.execute(
                        "INSERT INTO breaker_events (name, at, from_state, to_state, reason) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (name, now, before.state, after.state, after.reason),
                    )
            return answer

    # -- retry budgets -------------------------------------------------------------------------

    def add_budget_calls(self, counts: Sequence[tuple[str, int, int]]) -> None:
        """Add call counts ``(name, bucket, calls)`` to the shared retry-budget windows."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO retry_budget (name, bucket, calls) VALUES (?, ?, ?) "
                "ON CONFLICT (name, bucket) DO UPDATE SET calls = calls + excluded.calls",
                counts,
            )
            db.execute("DELETE FROM retry_budget WHERE bucket < ?", (int(time.time()) - 3600,))

    def spend_retry(
        self, name: str, *, since: int, bucket: int, allows: Callable[[int, int], bool]
    ) -> bool:
        """Record one retry of ``name`` if ``allows(calls, retries)`` over the window says so."""
        with self._write() as db:
            calls, retries = db.execute(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(retries), 0) FROM retry_budget "
                "WHERE name = ? AND bucket >= ?",
                (name, since),
            ).fetchone()
            if not allows(int(calls), int(retries)):
                return False
            db.execute(
                "INSERT INTO retry_budget (name, bucket, retries) VALUES (?, ?, 1) "
                "ON CONFLICT (name, bucket) DO UPDATE SET retries = retries + 1",
                (name, bucket),
            )
            return True

    # -- hand-offs --------------------------------------------------------------------------

    def open_handoff(self, handoff: HandOffRecord, *, epoch: int) -> None:
        """Record a new hand-off to a person (durably; fenced by its run's epoch)."""
        with self._write(durable=True) as db:
            writes.check_fence(db, queries.SQLITE, handoff.run_id, epoch)
            db.execute(
                "INSERT INTO handoffs (handoff_id, run_id, kind, reason, subject, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    handoff.handoff_id,
                    handoff.run_id,
                    handoff.kind,
                    handoff.reason,
                    json.dumps(handoff.subject, sort_keys=True, default=str),
                    handoff.status,
                    handoff.created_at,
                ),
            )

    # -- attempts ---------------------------------------------------------------------------

    def start_attempt(
        self,
        run_id: str,
        attempt: int,
        start_time: float,
        owner: str,
        *,
        epoch: int,
        base_seq: int = 0,
        completed_at_start: int = 0,
    ) -> None:
        """Record the start of an attempt (fenced) and bump the run's attempt count."""
        with self._write() as db:
            writes.start_attempt(
                db,
                queries.SQLITE,
                _UPSERT_ATTEMPT,
                (run_id, attempt, start_time, owner, base_seq, completed_at_start),
                epoch=epoch,
            )

    def finish_attempt(
        self, run_id: str, attempt: int, outcome: AttemptOutcome, *, epoch: int
    ) -> None:
        """Record the end of an attempt (fenced)."""
        with self._write() as db:
            params = writes.attempt_outcome_params(run_id, attempt, outcome, epoch)
            if db.execute(_FINISH_ATTEMPT, params).rowcount != 1:
                raise writes.refusal(db, queries.SQLITE, run_id, epoch)

    def mark_fenced(self, run_id: str, attempt: int, epoch: int, at: float) -> None:
        """Note, on a stale owner's own attempt row, when it found the run taken over."""
        with self._write() as db:
            writes.mark_fenced(db, queries.SQLITE, run_id, attempt, epoch, at)

    # -- journal ----------------------------------------------------------------------------

    def write_steps(self, rows: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int) -> None:
        """Write a batch of one run's steps in one transaction (fenced; never fsynced alone)."""
        if not rows and not blobs:
            return
        with self._write() as db:
            if rows:
                writes.check_fence(db, queries.SQLITE, rows[0][0], epoch)
            _put_blobs(db, blobs)
            db.executemany(_INSERT_STEP, rows)

    def write_intent(
        self, row: StepRow, pending: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Write buffered steps and a mutating step's intent in one durable transaction.

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
            RunCancelled: The run was cancelled; nothing was written.
        """
        run_id = row[0]
        if not pending and not blobs and not self._power:
            # Hot path: one autocommit statement, which also refuses the intent when the run was
            # cancelled or taken over (the checks and the insert are one atomic step).
            self._fenced_statement(_INSERT_INTENT, (*row, run_id, epoch), run_id, epoch)
            return
        if not self._power:
            with self._write(durable=True) as db:
                _put_blobs(db, blobs)
                if pending:
                    db.executemany(_INSERT_STEP, pending)
                if db.execute(_INSERT_INTENT, (*row, run_id, epoch)).rowcount != 1:
                    raise writes.refusal(db, queries.SQLITE, run_id, epoch)
            return
        self._group(_Ticket([*pending, row], [], list(blobs), durable=True, epoch=epoch))

    def _group(self, ticket: _Ticket) -> None:
        """Group commit (power level): write ``ticket`` together with whatever else is queued.

        Threads that queue while another thread's fsync is in progress are written by the
        next lock holder in one transaction: fsynced if any of them guards a side effect.
        Each caller returns only once its own rows are committed (or refused: a run taken over
        or cancelled refuses its own ticket, never the others').

        Raises:
            LedgerWouldBlock: Called where waiting is forbidden: the fsync happens on a thread.
        """
        if waiting_forbidden():
            raise LedgerWouldBlock(f"a durable write to {self.path} waits for the disk")
        with self._queue_ready:
            self._queue.append(ticket)
            # A plain lock would let the thread that just committed take it again at once and
            # commit alone; electing one leader at a time lets the queue fill behind its fsync.
            while not ticket.done and self._leading:
                self._queue_ready.wait()
            if ticket.done:
                ticket.settle()
                return
            self._leading = True
            batch, self._queue = self._queue, []
        durable = any(t.durable for t in batch)
        error: LedgerError | None = None
        try:
            if (
                len(batch) == 1
                and not batch[0].blobs
                and len(batch[0].rows) + len(batch[0].updates) == 1
            ):
                self._autocommit(batch[0], durable=durable)
            else:
                self._write_batch(batch, durable=durable)
        except LedgerError as exc:
            error = exc
        finally:
            with self._queue_ready:
                if durable:
                    self.group_commits += 1
                for waiting in batch:
                    waiting.error = error
                    waiting.done = True
                self._leading = False
                self._queue_ready.notify_all()
        ticket.settle()

    def _autocommit(self, ticket: _Ticket, *, durable: bool) -> None:
        """Write one fenced statement as its own transaction (the uncontended case)."""
        if ticket.rows:
            sql, params = _INSERT_INTENT, (*ticket.rows[0], ticket.run_id, ticket.epoch)
        else:
            sql, params = _COMPLETE_STEP, (*ticket.updates[0], ticket.run_id, ticket.epoch)
        with self._hold() as db:
            try:
                if durable:
                    db.execute("PRAGMA synchronous=FULL")
                try:
                    written = self._busy(db, sql, params).rowcount
                finally:
                    if durable:
                        db.execute("PRAGMA synchronous=NORMAL")
                if written != 1:
                    ticket.refused = writes.refusal(db, queries.SQLITE, ticket.run_id, ticket.epoch)
            except sqlite3.Error as exc:
                raise _translate(exc, self.path, self.busy_timeout) from exc

    def _write_batch(self, batch: list[_Ticket], *, durable: bool) -> None:
        """Write several tickets' rows in one transaction; refused tickets write nothing.

        A ticket of a run taken over is refused whole; the intent of a cancelled run is refused
        (the read-only steps buffered before it are kept).
        """
        with self._write(durable=durable) as db:
            ids = sorted({t.run_id for t in batch})
            marks = ", ".join("?" * len(ids))
            held = {
                run_id: (epoch, cancelled, reason or "")
                for run_id, epoch, cancelled, reason in db.execute(
                    f"SELECT run_id, epoch, cancel_requested_at IS NOT NULL, cancel_reason "
                    f"FROM runs WHERE run_id IN ({marks})",
                    ids,
                ).fetchall()
            }
            for ticket in batch:
                epoch, cancelled, reason = held.get(ticket.run_id, (None, False, ""))
                if epoch != ticket.epoch:
                    ticket.refused = writes.lease_lost(ticket.run_id, ticket.epoch, epoch, None)
                    ticket.rows, ticket.updates, ticket.blobs = [], [], []
                elif cancelled and ticket.durable and ticket.rows:
                    ticket.refused = RunCancelled(reason)
                    ticket.rows = ticket.rows[:-1]
            _put_blobs(db, [b for t in batch for b in t.blobs])
            inserts = [r for t in batch for r in t.rows]
            if inserts:
                db.executemany(_INSERT_STEP, inserts)
            updates = [(*u, t.run_id, t.epoch) for t in batch for u in t.updates]
            if updates:
                db.executemany(_COMPLETE_STEP, updates)

    def complete_step(
        self,
        run_id: str,
        seq: int,
        *,
        status: str,
        response: bytes | None,
        end_time: float,
        error_type: str | None,
        error_message: str | None,
        tries: int,
        blobs: Sequence[Blob],
        epoch: int,
    ) -> None:
        """Record the outcome of a step whose intent was written (fenced; not fsynced alone).

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
        """
        params = (status, response, end_time, error_type, error_message, tries, run_id, seq)
        if self._power:
            self._group(_Ticket([], [params], list(blobs), durable=False, epoch=epoch))
            return
        if not blobs:
            self._fenced_statement(_COMPLETE_STEP, (*params, run_id, epoch), run_id, epoch)
            return
        with self._write() as db:
            _put_blobs(db, blobs)
            if db.execute(_COMPLETE_STEP, (*params, run_id, epoch)).rowcount != 1:
                raise writes.refusal(db, queries.SQLITE, run_id, epoch)

    def delete_steps_from(self, run_id: str, seq: int, *, epoch: int) -> None:
        """Drop the journal tail from ``seq`` on (fenced)."""
        with self._write() as db:
            writes.check_fence(db, queries.SQLITE, run_id, epoch)
            db.execute("DELETE FROM steps WHERE run_id = ? AND seq >= ?", (run_id, seq))

    # -- blobs ------------------------------------------------------------------------------

    def get_blobs(self, hashes: Sequence[str]) -> Mapping[str, Blob]:
        """Return the stored blobs among ``hashes``."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, Blob] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._read(
                lambda db, chunk=chunk, marks=marks: db.execute(  # type: ignore[misc]
                    f"SELECT hash, codec, size, data FROM blobs WHERE hash IN ({marks})", chunk
                ).fetchall()
            )
            for h, codec, size, data in rows:
                found[h] = Blob(h, codec, size, bytes(data))
        return found

    # -- leases -----------------------------------------------------------------------------

    def renew_leases(self, leases: Mapping[str, int], expires_at: float) -> list[str]:
        """Extend the leases held on runs ``{run_id: epoch}``; return the ones taken over."""
        if not leases:
            return []
        lost: list[str] = []
        with self._write() as db:
            for run_id, epoch in leases.items():
                if (
                    db.execute(
                        "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND epoch = ?",
                        (expires_at, run_id, epoch),
                    ).rowcount
                    != 1
                ):
                    lost.append(run_id)
        return lost

    def expired_runs(self, now: float, limit: int) -> list[RunRecord]:
        """Return unfinished runs whose lease lapsed before ``now``, oldest first."""
        rows = self._read(
            lambda db: db.execute(
                f"SELECT {queries.RUN_COLUMNS} FROM runs WHERE status IN ('running', 'pending') "
                "AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [queries.run_record(row) for row in rows]

    def claim_run(self, run_id: str, owner: str, expires_at: float, now: float) -> int | None:
        """Take over a run whose lease lapsed (or a pending one); return its new epoch."""
        with self._write(durable=True) as db:
            cursor = db.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires_at = ?, status = 'running', "
                "epoch = epoch + 1, updated_at = ? WHERE run_id = ? "
                "AND status IN ('running', 'pending') "
                "AND (lease_expires_at IS NULL OR lease_expires_at < ?)",
                (owner, expires_at, now, run_id, now),
            )
            return _epoch_after(db, run_id) if cursor.rowcount == 1 else None

    # -- takeover sweeps --------------------------------------------------------------------

    def claim_sweeper(self, name: str, owner: str, now: float, expires_at: float) -> bool:
        """Take the sweeper lease ``name`` when it lapsed, or renew it for ``owner``."""
        with self._write() as db:
            return writes.claim_sweeper(db, queries.SQLITE, name, owner, now, expires_at)

    def resend_lapsed(
        self, route: str, now: float, agents: Sequence[str], again_before: float, limit: int
    ) -> list[RunRecord]:
        """Mark for sending again the runs of ``agents`` whose lease lapsed; return them."""
        with self._write() as db:
            return writes.resend_lapsed(db, queries.SQLITE, route, now, agents, again_before, limit)

    def mark_resent(self, run_ids: Sequence[str], now: float, again_before: float) -> list[str]:
        """Mark re-sent those of ``run_ids`` still unclaimed and not re-sent since."""
        with self._write() as db:
            return writes.mark_resent(db, queries.SQLITE, run_ids, now, again_before)

    # -- alerts and drift -------------------------------------------------------------------

    def record_alert(self, alert: AlertRecord) -> None:
        """Record an alert durably."""
        with self._write(durable=True) as db:
            _insert_alert(db, alert)

    def update_alert_state(
        self,
        key: str,
        change: Callable[[Any], tuple[Any, Sequence[AlertRecord]]],
    ) -> list[AlertRecord]:
        """Apply ``change`` to the state under ``key`` and record its alerts, in one transaction."""
        with self._write(durable=True) as db:
            row = db.execute("SELECT state FROM alert_state WHERE state_key = ?", (key,)).fetchone()
            state, alerts = change(None if row is None else json.loads(row[0]))
            text = json.dumps(state, sort_keys=True)
            if row is None or text != row[0]:
                db.execute(
                    "INSERT OR REPLACE INTO alert_state (state_key, state, updated_at) "
                    "VALUES (?, ?, ?)",
                    (key, text, time.time()),
                )
            for alert in alerts:
                _insert_alert(db, alert)
            return list(alerts)

    def alert_state(self, key: str) -> Any:
        """Return the state under ``key`` (``None`` when there is none)."""
        row = self._read(
            lambda db: db.execute(
                "SELECT state FROM alert_state WHERE state_key = ?", (key,)
            ).fetchone()
        )
        return None if row is None else json.loads(row[0])

    def add_drift_samples(self, samples: Sequence[DriftSample]) -> None:
        """Record drift samples in one transaction (a run already sampled is kept as it was)."""
        if not samples:
            return
        with self._write() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO drift_samples ({queries.SAMPLE_COLUMNS}) "
                f"VALUES ({', '.join('?' * 10)})",
                [
                    (
                        s.agent,
                        s.run_id,
                        s.at,
                        s.decision,
                        s.output_bytes,
                        s.tokens,
                        s.cost_usd,
                        s.latency,
                        s.confidence,
                        None if s.verified is None else int(s.verified),
                    )
                    for s in samples
                ],
            )

    def count_drift_samples(self, agent: str) -> int:
        """Return how many samples of ``agent`` the ledger holds."""
        row = self._read(
            lambda db: db.execute(
                "SELECT count(*) FROM drift_samples WHERE agent = ?", (agent,)
            ).fetchone()
        )
        return int(row[0])

    def add_drift_embeddings(self, embeddings: Sequence[DriftEmbedding]) -> None:
        """Record output embeddings in one transaction (a run already embedded is kept)."""
        if not embeddings:
            return
        with self._write() as db:
            db.executemany(
                queries.insert_embeddings(queries.SQLITE),
                [queries.embedding_row(e) for e in embeddings],
            )


class _Ticket:
    """One run's writes waiting for a group commit, and what became of them."""

    __slots__ = (
        "blobs",
        "done",
        "durable",
        "epoch",
        "error",
        "refused",
        "rows",
        "run_id",
        "updates",
    )

    def __init__(
        self,
        rows: list[StepRow],
        updates: list[tuple[Any, ...]],
        blobs: list[Blob],
        *,
        durable: bool,
        epoch: int,
    ) -> None:
        self.rows = rows
        self.updates = updates
        self.blobs = blobs
        self.durable = durable
        self.epoch = epoch
        self.run_id: str = str(rows[-1][0] if rows else updates[-1][6])
        self.done = False
        self.error: LedgerError | None = None
        self.refused: BaseException | None = None

    def settle(self) -> None:
        """Raise what became of the ticket, if it was not written."""
        if self.error is not None:
            raise self.error
        if self.refused is not None:
            raise self.refused


_SELECT_BREAKER: Final = f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = ?"


def _insert_alert(db: sqlite3.Connection, alert: AlertRecord) -> None:
    db.execute(
        f"INSERT INTO alerts ({queries.ALERT_COLUMNS}) VALUES ({', '.join('?' * 10)})",
        (
            alert.alert_id,
            alert.kind,
            alert.agent,
            alert.feature,
            alert.statistic,
            alert.threshold,
            alert.window,
            alert.message,
            json.dumps(alert.details, sort_keys=True, default=str),
            alert.at,
        ),
    )


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _epoch_after(db: sqlite3.Connection, run_id: str) -> int:
    """The epoch a claim just raised, read in the claim's own transaction."""
    return int(db.execute("SELECT epoch FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])


def _put_blobs(db: sqlite3.Connection, blobs: Sequence[Blob]) -> None:
    if blobs:
        db.executemany(_INSERT_BLOB, [(b.hash, b.codec, b.size, b.data) for b in blobs])


def _prepare_location(path: str) -> None:
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
