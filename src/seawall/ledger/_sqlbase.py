"""The one SQL store's foundation: how its writes run, and the statements of the journal.

Every write of the store is a function ``work(connection, doubt)`` handed to :meth:`SQLBase._run`,
which each store implements over its own connection handling:

- SQLite runs it in one ``BEGIN IMMEDIATE`` transaction on the store's connection (fsynced when
  ``durable`` at the ``power`` level); ``doubt`` is always false.
- PostgreSQL runs it on a pooled connection, in one transaction or as one autocommit statement,
  and again after a lost connection; ``doubt`` is true when an earlier try may have committed,
  so the work can recognise its own write.

A write written once this way holds on both databases: where they differ it asks the store's
:class:`~seawall.ledger._dialect.Dialect`.

:meth:`SQLBase.together` makes several callers' writes in one transaction (a savepoint each
only when one of them fails): concurrent runs share one commit (one fsync, one WAL append)
instead of one each.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from seawall import _faults
from seawall.errors import LedgerUnavailableError, SeawallError
from seawall.ledger import _queries as queries
from seawall.ledger import _writes as writes
from seawall.ledger._waiting import LedgerWouldBlock
from seawall.ledger.migrations import META_TABLE, bundled

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from seawall._payload import Blob
    from seawall.errors import SchemaVersionError
    from seawall.ledger._dialect import Dialect

T = TypeVar("T")

MAX_IDS: Final = 500
"""Ids looked up per ``IN (...)`` query (well below either database's limit on parameters)."""

Outcome = tuple[Any, BaseException | None]
"""What became of one call of :meth:`SQLBase.together`: its value, or the error it raised."""


class _Joined(threading.local):
    """The transaction this thread's writes join while :meth:`SQLBase.together` runs."""

    group: tuple[SQLBase, Any, bool] | None = None


@dataclass(frozen=True, slots=True)
class Statements:
    """The journal's statements in one dialect, built once (the per-step path reuses them).

    Attributes:
        insert_step: Write (replace) a step row; parameters: the row.
        fenced_step: :attr:`insert_step` applied only while the run is held at the writer's
            epoch; parameters: the row, run_id, epoch.
        insert_intent: :attr:`fenced_step`, also refused once the run was cancelled.
        complete_step: A step's outcome (fenced); parameters: status, response, end_time,
            error_type, error_message, tries, run_id, seq, run_id, epoch.
        upsert_attempt: An attempt's start; parameters: run_id, attempt, start_time, owner,
            base_seq, completed_at_start, epoch.
        finish_attempt: An attempt's end (fenced); parameters:
            :func:`~seawall.ledger._writes.attempt_outcome_params`.
        insert_blob: A blob, kept when already stored; parameters: hash, codec, size, data.
    """

    insert_step: str
    fenced_step: str
    insert_intent: str
    complete_step: str
    upsert_attempt: str
    finish_attempt: str
    insert_blob: str


def statements(dialect: Dialect) -> Statements:
    """The journal's statements in ``dialect``."""
    marks16 = ", ".join("?" * 16)
    # Steps and intents are written only while the run is held at the writer's epoch (an
    # intent: and not cancelled). On PostgreSQL the scalar subquery locks the run's row FOR
    # SHARE whatever the row holds (no filter the planner could push below the lock), which
    # conflicts with the UPDATE of a takeover or a cancellation: a write waits for one in
    # progress and then reads it, so the check and the insert are atomic for any process.
    fenced = f"SELECT {marks16} WHERE {writes.fence(dialect)}"
    for_intent = f"SELECT {marks16} WHERE {writes.fence_for_intent(dialect)}"
    return Statements(
        insert_step=dialect.replace(
            "steps", queries.STEP_COLUMNS, "run_id, seq", f"VALUES ({marks16})"
        ),
        fenced_step=dialect.replace("steps", queries.STEP_COLUMNS, "run_id, seq", fenced),
        insert_intent=dialect.replace("steps", queries.STEP_COLUMNS, "run_id, seq", for_intent),
        complete_step=dialect.sql(
            "UPDATE steps SET status = ?, response = ?, end_time = ?, error_type = ?, "
            f"error_message = ?, tries = ? WHERE run_id = ? AND seq = ? AND {writes.fence(dialect)}"
        ),
        upsert_attempt=upsert_attempt(dialect, "VALUES (?, ?, ?, 'running', ?, ?, ?, ?)"),
        finish_attempt=dialect.sql(writes.FINISH_ATTEMPT + writes.fence(dialect)),
        insert_blob=dialect.ignore(
            "blobs", "hash, codec, size, data", "hash", "VALUES (?, ?, ?, ?)"
        ),
    )


def upsert_attempt(dialect: Dialect, source: str) -> str:
    """An attempt's start, its row given by ``source`` (``VALUES`` or ``SELECT``), in ``dialect``.

    The row's columns: run_id, attempt, start_time, status, owner, base_seq, completed_at_start,
    epoch. An attempt started again is reset to a started one.
    """
    return dialect.replace(
        "attempts",
        "run_id, attempt, start_time, status, owner, base_seq, completed_at_start, epoch",
        "run_id, attempt",
        source,
        reset="end_time = NULL, error_class = NULL, failure_cause = NULL, "
        "error_type = NULL, error_message = NULL, retry_delay = NULL, decision = NULL, "
        "fenced_at = NULL",
    )


_JOINED: Final = _Joined()


class _CallFailed(Exception):  # noqa: N818 - a signal, not an error anyone sees
    """A call of :meth:`SQLBase.together` failed in a group without savepoints: redo with them."""


class SQLBase(abc.ABC):
    """What the store's writes stand on: the dialect, the unit of work and a few helpers."""

    dialect: ClassVar[Dialect]
    statements: ClassVar[Statements]
    display: str
    """The ledger, as error messages name it (a file path, or a URL without its password)."""
    migrated_from: int
    """The schema version found when the store was opened (0 for a new ledger)."""
    migrations_applied: tuple[tuple[int, str], ...]
    """The migrations this store applied when it opened, ``(version, file name)``."""

    def _run(
        self,
        work: Callable[[Any, bool], T],
        what: str,
        *,
        durable: bool = False,
        transaction: bool = True,
        redo_in_doubt: bool = True,
    ) -> T:
        """Run ``work(connection, doubt)`` as one write and return its result.

        Inside :meth:`together` the write joins the group's transaction instead.

        Args:
            work: The write. ``doubt`` is true when an earlier try may have committed it.
            what: What it does, for error messages ("record run r1").
            durable: It guards a side effect: fsynced at SQLite's ``power`` level.
            transaction: It needs one transaction (PostgreSQL runs a single statement as an
                autocommit statement otherwise; SQLite always opens one).
            redo_in_doubt: It may run again after a commit whose outcome is unknown.

        Raises:
            LedgerUnavailableError: In a group being redone after a commit whose outcome is
                unknown, a write that may not run twice (``redo_in_doubt=False``).
        """
        joined = self._joined()
        if joined is not None:
            conn, doubt = joined
            if doubt and not redo_in_doubt:
                raise LedgerUnavailableError(
                    f"the connection to {self.display} was lost while committing; whether "
                    f"'{what}' was recorded is unknown and it cannot safely run again"
                )
            return work(conn, doubt)
        return self._run_alone(
            work, what, durable=durable, transaction=transaction, redo_in_doubt=redo_in_doubt
        )

    @abc.abstractmethod
    def _run_alone(
        self,
        work: Callable[[Any, bool], T],
        what: str,
        *,
        durable: bool,
        transaction: bool,
        redo_in_doubt: bool,
    ) -> T:
        """Run ``work(connection, doubt)`` as one write of its own (see :meth:`_run`)."""

    def together(self, calls: Sequence[Callable[[], Any]]) -> list[Outcome]:
        """Make several callers' writes in one durable transaction: one commit for them all.

        The calls (store operations, or code making some: ``Runtime.begin_run``) run in turn,
        their writes joining the group's transaction. When one fails with a
        :class:`~seawall.errors.SeawallError` (a run taken over, a duplicate id, an input that
        does not serialise), that transaction is rolled back and the group runs again, each
        call under a savepoint: the failing call has its writes rolled back and gets its
        error; the others commit. So a call may run twice: it must be a store write, or code
        whose effects outside the ledger bear repeating. (A savepoint per call, every time,
        cost about 15% of a run with 64 in flight on SQLite; a failing call is rare.)

        A failure of the transaction itself (the database's error, a lost connection) is every
        call's: it raises here, and on PostgreSQL the whole group runs again after a lost
        connection, each write recognising its own in doubt as it does alone.

        Returns:
            Per call, in order: its value and ``None``, or ``None`` and its error.

        Raises:
            LedgerWouldBlock: Under ``nowait``, the group would have to wait (nothing written).
        """
        try:
            return self._together(calls, savepoints=False)
        except _CallFailed:
            return self._together(calls, savepoints=True)

    def _together(self, calls: Sequence[Callable[[], Any]], *, savepoints: bool) -> list[Outcome]:
        """:meth:`together`'s transaction: without savepoints, a failing call aborts it."""

        def work(conn: Any, doubt: bool) -> list[Outcome]:
            outcomes: list[Outcome] = []
            _JOINED.group = (self, conn, doubt)
            try:
                for call in calls:
                    if savepoints:
                        conn.execute("SAVEPOINT seawall_call")
                    try:
                        value = call()
                    except LedgerWouldBlock:
                        raise
                    except SeawallError as exc:
                        if not savepoints:
                            raise _CallFailed from exc
                        conn.execute("ROLLBACK TO SAVEPOINT seawall_call")
                        conn.execute("RELEASE SAVEPOINT seawall_call")
                        outcomes.append((None, exc))
                        continue
                    if savepoints:
                        conn.execute("RELEASE SAVEPOINT seawall_call")
                    outcomes.append((value, None))
                _faults.point("ledger.group.commit")  # every call written, not committed yet
            finally:
                _JOINED.group = None
            return outcomes

        return self._run_alone(
            work,
            f"record {len(calls)} writes together",
            durable=True,
            transaction=True,
            redo_in_doubt=True,
        )

    def _joined(self) -> tuple[Any, bool] | None:
        """The connection and doubt of this store's group this thread's writes join now."""
        group = _JOINED.group
        return None if group is None or group[0] is not self else group[1:]

    def _in_group(self) -> bool:
        """Whether this thread's writes join a group of :meth:`together` now."""
        return self._joined() is not None

    def _statement(
        self, work: Callable[[Any, bool], None], what: str, sql: str, params: Sequence[Any]
    ) -> None:
        """Run ``work``, a durable write that is the one statement ``sql``, as an autocommit write.

        ``sql`` applies whole, returning one row of ones, or writes nothing; ``work`` runs it
        and says why it did not apply. A store may commit such writes of concurrent callers
        together (PostgreSQL's group commit).
        """
        del sql, params
        self._run(work, what, durable=True, transaction=False)

    @abc.abstractmethod
    def _newer(self, version: int, known: int) -> SchemaVersionError:
        """The error refusing a ledger at schema ``version``, newer than the ``known`` one."""

    def _apply_migrations(self, conn: Any, run_script: Callable[[Any, str], None]) -> None:
        """Apply, in the caller's transaction, every bundled migration the ledger lacks.

        Every migration not recorded yet is applied in order: one numbered below the newest
        applied (merged later) is applied too rather than skipped.

        Args:
            conn: The connection, in a transaction no other migrator runs at the same time.
            run_script: Runs one migration's SQL on the connection.

        Raises:
            SchemaVersionError: The ledger was written by a newer Seawall.
        """
        migrations = bundled(self.dialect)
        conn.execute(
            self.dialect.render(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at {REAL} NOT NULL)"
            )
        )
        recorded = {int(r[0]) for r in conn.execute(f"SELECT version FROM {META_TABLE}")}
        current = max(recorded, default=0)
        known = migrations[-1][0]
        if current > known:
            raise self._newer(current, known)
        applied = []
        record = self._q(
            f"INSERT INTO {META_TABLE} (version, name, applied_at) "
            f"VALUES (?, ?, {self.dialect.now})"
        )
        for version, name, sql in migrations:
            if version not in recorded:
                run_script(conn, sql)
                conn.execute(record, (version, name))
                applied.append((version, name))
        self.migrated_from = current
        self.migrations_applied = tuple(applied)

    @abc.abstractmethod
    def _fetchall(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        """Run one read query written in this store's dialect; ``what`` names it in errors."""

    def _apply(self, sql: str, params: Sequence[Any], what: str) -> int:
        """Run one idempotent statement (``?`` placeholders) durably; return the rows it changed."""
        text = self.dialect.sql(sql)
        changed: int = self._run(
            lambda conn, _doubt: conn.execute(text, params).rowcount,
            what,
            durable=True,
            transaction=False,
        )
        return changed

    def _rows(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        """The rows of a read query written with ``?`` placeholders."""
        return self._fetchall(self.dialect.sql(sql), params, what)

    def _q(self, text: str) -> str:
        """``text`` (written with ``?`` placeholders) in this store's dialect."""
        return self.dialect.sql(text)

    def _one(self, sql: str, params: Sequence[Any], what: str) -> tuple[Any, ...] | None:
        """The first row of a read query written with ``?`` placeholders, or ``None``."""
        rows = self._rows(sql, params, what)
        return rows[0] if rows else None

    def _among(
        self, sql: str, ids: Sequence[str], what: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (its ``{}`` standing for the ids' placeholders) for all ``ids``."""
        unique = list(dict.fromkeys(ids))
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(unique), MAX_IDS):
            chunk = unique[start : start + MAX_IDS]
            text = sql.format(", ".join("?" * len(chunk)))
            rows += self._fetchall(self.dialect.sql(text), [*chunk, *params], what)
        return rows

    def _put_blobs(self, conn: Any, blobs: Sequence[Blob]) -> None:
        """Store ``blobs`` (each once, in one order for every writer: no deadlocks)."""
        if blobs:
            unique = {b.hash: b for b in blobs}
            self.dialect.executemany(
                conn,
                self.statements.insert_blob,
                [(b.hash, b.codec, b.size, b.data) for _, b in sorted(unique.items())],
            )

    def _found(self, conn: Any, doubt: bool, sql: str, params: Sequence[Any]) -> bool:
        """Whether an earlier try in doubt committed: ``sql`` (``?`` placeholders) finds its row."""
        return doubt and conn.execute(self.dialect.sql(sql), params).fetchone() is not None

    def _decide(
        self,
        update: str,
        params: Sequence[Any],
        mine: str,
        mine_params: Sequence[Any],
        what: str,
    ) -> bool:
        """Run a conditional update one caller wins (durably); return whether this one won.

        Safe to redo after a commit whose outcome is unknown: the earlier try won if the row
        reads as it would have left it.

        Args:
            update: The ``UPDATE`` (``?`` placeholders) whose condition only one caller meets.
            params: Its parameters.
            mine: A query (``?`` placeholders) finding the row as this caller's update left it.
            mine_params: Its parameters.
            what: What it does, for error messages.
        """
        sql = self.dialect.sql(update)

        def write(conn: Any, doubt: bool) -> bool:
            won = conn.execute(sql, params).rowcount == 1
            return won or self._found(conn, doubt, mine, mine_params)

        return self._run(write, what, durable=True, transaction=False)

    def _take_turns(self, conn: Any, sql: str, params: Sequence[Any]) -> None:
        """Take a transaction-scoped advisory lock where writers do not take turns anyway."""
        if not self.dialect.serialized:
            conn.execute(self.dialect.sql(sql), params)
