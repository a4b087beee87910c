"""The embedded ledger: one SQLite file in WAL mode, safe for several processes on a machine.

Its queries are the one SQL store's (:mod:`seawall.ledger._sqlstore`), rendered by the SQLite
:class:`~seawall.ledger._dialect.Dialect`; this module holds what only SQLite does: one
connection shared by the process's threads (writers take turns with ``BEGIN IMMEDIATE``; waiting
for another process's lock is done here, so an event loop is told at once instead), the per-step
fenced statement, group commit and checkpoints.

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
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from seawall.errors import (
    LedgerCorruptedError,
    LedgerError,
    LedgerUnavailableError,
    SchemaVersionError,
)
from seawall.ledger import _writes as writes
from seawall.ledger._dialect import SQLITE
from seawall.ledger._group_commit import Ticket, refuse
from seawall.ledger._sqlbase import statements
from seawall.ledger._sqlite_files import is_busy, prepare_location, translate
from seawall.ledger._sqlstore import SQLStore
from seawall.ledger._waiting import LedgerWouldBlock, waiting_forbidden
from seawall.ledger.migrations import META_TABLE, bundled
from seawall.ledger.migrations import statements as migration_statements

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from seawall._payload import Blob
    from seawall.ledger._inputs import StepRow

Durability = Literal["crash", "power"]
T = TypeVar("T")

_CHECKPOINT_INTERVAL: Final = 1.0
_STATEMENTS: Final = statements(SQLITE)
# The per-step path reads these as module globals (no attribute lookups per step).
_INSERT_STEP: Final = _STATEMENTS.insert_step
_INSERT_INTENT: Final = _STATEMENTS.insert_intent
_COMPLETE_STEP: Final = _STATEMENTS.complete_step


class SQLiteStore(SQLStore):
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

    dialect = SQLITE
    statements = _STATEMENTS
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
        self.display = path
        self.url = "sqlite:///" + path
        self.durability: Durability = durability
        self.busy_timeout = busy_timeout
        self._power = durability == "power"
        self._lock = threading.RLock()
        self._queue_ready = threading.Condition(threading.Lock())
        self._queue: list[Ticket] = []
        self._leading = False
        self.group_commits = 0
        """Fsynced intent transactions written (each may carry several threads' intents)."""
        self._closed = False
        self._read_only = read_only
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.migrated_from = 0
        self.migrations_applied = ()
        self._memory = path == ":memory:"
        if not self._memory and not read_only:
            prepare_location(path)
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
            raise translate(exc, self.path, self.busy_timeout) from exc
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
            raise translate(exc, self.path, self.busy_timeout) from exc
        if tables and META_TABLE not in tables:
            raise LedgerCorruptedError(
                f"{self.path} is a SQLite database but not a Seawall ledger (it has tables "
                f"{sorted(tables)[:5]} and no {META_TABLE}); it was left untouched. Use another "
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
            raise translate(exc, self.path, self.busy_timeout) from exc
        if not read_only:
            self._migrate()
        else:
            self._check_version()

    def _newer(self, version: int, known: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the ledger {self.path} has schema version {version}, newer than this "
            f"Seawall understands ({known}); upgrade Seawall to use it",
            path=self.path,
            version=version,
            supported=known,
        )

    def _check_version(self) -> None:
        known = max(v for v, _, _ in bundled(SQLITE))
        version = self.schema_version()
        if version > known:
            raise self._newer(version, known)

    def _migrate(self) -> None:
        with self._write(durable=True) as db:
            self._apply_migrations(db, _run_script)

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
                if not is_busy(exc):
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
                    if not is_busy(exc):
                        raise
                    changed = self._busy(db, sql, params).rowcount
                if changed != 1:
                    raise writes.refusal(db, SQLITE, run_id, epoch)
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.busy_timeout) from exc
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
                raise translate(exc, self.path, self.busy_timeout) from exc
            finally:
                if full:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA synchronous=NORMAL")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read, of its own: reads never wait for the store's lock.

        In WAL mode a reader sees the last commit and neither waits for nor blocks the writer:
        a dashboard page or a scrape reads while runs are written, and while another page
        reads. The read connections are pooled (as many as reads ever ran at once). An
        in-memory ledger has one connection (a second would be another database).
        """
        if self._memory:
            with self._hold() as shared:
                yield shared
            return
        self._ensure_open()
        with self._readers_lock:
            own = self._idle_readers.pop() if self._idle_readers else None
        if own is None:
            own = self._connect(read_only=self._read_only)
            own.execute("PRAGMA query_only = 1")
            own.execute("PRAGMA busy_timeout = 0")  # _read waits itself (not under nowait)
        try:
            yield own
        finally:
            with self._readers_lock:
                if self._closed:
                    own.close()
                else:
                    self._idle_readers.append(own)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        deadline = None
        while True:
            with self._reading() as db:
                try:
                    return fn(db)
                except sqlite3.OperationalError as exc:
                    # A reader in WAL mode is refused only while the WAL is being recovered.
                    if not is_busy(exc) or waiting_forbidden():
                        raise translate(exc, self.path, self.busy_timeout) from exc
                    now = time.monotonic()
                    deadline = deadline if deadline is not None else now + self.busy_timeout
                    if now >= deadline:
                        raise translate(exc, self.path, self.busy_timeout) from exc
                except sqlite3.Error as exc:
                    raise translate(exc, self.path, self.busy_timeout) from exc
            time.sleep(0.005)

    def _fetchall(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        """Run one read query (``what`` names it for errors of the other store)."""
        del what
        rows: list[tuple[Any, ...]] = self._read(lambda db: db.execute(sql, params).fetchall())
        return rows

    def _run_alone(
        self, work: Callable[[Any, bool], T], what: str, *, durable: bool = False, **_: bool
    ) -> T:
        """Run ``work`` in one IMMEDIATE write transaction (never in doubt: one connection)."""
        del what
        with self._write(durable=durable) as db:
            return work(db, False)

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
            with self._readers_lock:
                for reader in self._idle_readers:
                    reader.close()
                self._idle_readers.clear()

    def schema_version(self) -> int:
        """Return the highest migration applied to this ledger (0 for an empty file)."""

        def read(db: sqlite3.Connection) -> int:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (META_TABLE,)
            ).fetchone()
            if not exists:
                return 0
            return int(db.execute(f"SELECT max(version) FROM {META_TABLE}").fetchone()[0] or 0)

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

    def write_intent(
        self, row: StepRow, pending: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Write buffered steps and a mutating step's intent in one durable transaction.

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
            RunCancelled: The run was cancelled; nothing was written.
        """
        if not self._power:
            if pending or blobs:
                super().write_intent(row, pending, blobs, epoch=epoch)
                return
            # Hot path: one autocommit statement, which also refuses the intent when the run was
            # cancelled or taken over (the checks and the insert are one atomic step).
            run_id = row[0]
            self._fenced_statement(_INSERT_INTENT, (*row, run_id, epoch), run_id, epoch)
            return
        self._group(Ticket([*pending, row], [], list(blobs), durable=True, epoch=epoch))

    def _group(self, ticket: Ticket) -> None:
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

    def _autocommit(self, ticket: Ticket, *, durable: bool) -> None:
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
                    ticket.refused = writes.refusal(db, SQLITE, ticket.run_id, ticket.epoch)
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.busy_timeout) from exc

    def _write_batch(self, batch: list[Ticket], *, durable: bool) -> None:
        """Write several tickets' rows in one transaction; refused tickets write nothing."""
        with self._write(durable=durable) as db:
            refuse(db, batch)
            self._put_blobs(db, [b for t in batch for b in t.blobs])
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
            self._group(Ticket([], [params], list(blobs), durable=False, epoch=epoch))
            return
        if not blobs:
            self._fenced_statement(_COMPLETE_STEP, (*params, run_id, epoch), run_id, epoch)
            return
        super().complete_step(
            run_id,
            seq,
            status=status,
            response=response,
            end_time=end_time,
            error_type=error_type,
            error_message=error_message,
            tries=tries,
            blobs=blobs,
            epoch=epoch,
        )


def _run_script(db: sqlite3.Connection, sql: str) -> None:
    pending = ""  # a trigger's body holds semicolons: its parts are joined back
    for part in migration_statements(sql):
        pending = f"{pending};\n{part}" if pending else part
        if sqlite3.complete_statement(pending + ";"):
            db.execute(pending)
            pending = ""
