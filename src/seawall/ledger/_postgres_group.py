"""Group commit of the PostgreSQL ledger: concurrent runs' writes share one transaction.

Every commit on PostgreSQL waits for the server to flush its WAL, and every transaction costs
its round trips (``BEGIN``, ``COMMIT``) and a pooled connection. When many runs are in flight,
their run-opening and run-ending writes (the two transactions of a single-step run) queue up
here instead, and whoever finds no group in flight leads the next one: it takes every write
waiting (up to :data:`GROUP_LIMIT`), runs them in one transaction on one connection, each under
a ``SAVEPOINT``, and commits once. While it commits, the next writes queue up for the next
group; when it is done, it hands the lead to the first of them.

What each write learns is what it would have learnt alone:

- a write refused (fenced: :class:`~seawall.LeaseLostError`, a duplicate run id, any ledger
  error) rolls back to its savepoint: only its own work is undone, only its caller gets the
  error, and the others commit;
- nobody is answered before the group's ``COMMIT`` returns;
- a serialization failure or deadlock in one write, or a group that could not start (no
  connection), sends the writes concerned to run alone (:meth:`Connections.run`), as if
  they had never been grouped: nothing of theirs was committed;
- a connection lost while running the group leaves nothing committed: every write runs again
  alone; lost while committing, every write of the group is in doubt and runs again alone with
  ``doubt=True``, exactly as a write that lost its own commit does.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall.ledger._postgres_connections import CONFLICT_STATES, lost

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from seawall.ledger._postgres_connections import Connections

T = TypeVar("T")

GROUP_LIMIT: Final = 64
"""Writes committed together at most (each holds a subtransaction until the commit)."""

GROUPS_IN_FLIGHT: Final = 4
"""Groups committing at once, each on its own pooled connection: the round trips of one group's
writes overlap the others' (one group at a time would make every write wait for all those
before it)."""



class _Pipelined:
    """A connection whose statements wait in psycopg's pipeline until a result is needed.

    A write checks few of its statements' results (a fenced update's row count, a refusal's
    reason): the others travel with the next statement whose result is read, or with the
    ``COMMIT``, instead of each waiting for the server's answer.
    """

    __slots__ = ("_conn", "_pipeline", "queued")

    def __init__(self, conn: Any, pipeline: Any) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self.queued = False
        """Statements were sent whose outcome is not known yet."""

    def execute(self, sql: Any, params: Any = None) -> _Pending:
        self.queued = True
        return _Pending(self._conn.execute(sql, params), self)

    @contextlib.contextmanager
    def cursor(self) -> Iterator[_Pending]:
        with self._conn.cursor() as cursor:
            yield _Pending(cursor, self)

    def sync(self) -> None:
        """Wait for every statement sent; raise the first one's error."""
        if self.queued:
            self.queued = False
            self._pipeline.sync()


class _Pending:
    """A cursor of :class:`_Pipelined`: reading its row count waits for its statement."""

    __slots__ = ("_cursor", "_owner")

    def __init__(self, cursor: Any, owner: _Pipelined) -> None:
        self._cursor = cursor
        self._owner = owner

    @property
    def rowcount(self) -> int:
        self._owner.sync()
        return int(self._cursor.rowcount)

    def executemany(self, sql: Any, rows: Any) -> None:
        self._owner.queued = True
        self._cursor.executemany(sql, rows)

    def fetchone(self) -> Any:
        self._owner.sync()
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        self._owner.sync()
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Write:
    """One caller's write waiting in a group, and what became of it."""

    __slots__ = ("doubt", "error", "lead", "redo", "result", "wake", "what", "work")

    def __init__(self, work: Callable[[Any, bool], Any], what: str) -> None:
        self.work = work
        self.what = what
        self.wake = threading.Event()
        self.lead = False
        """Woken to lead the next group rather than with an outcome."""
        self.result: Any = None
        self.error: BaseException | None = None
        """Why the write alone was refused (its savepoint was rolled back)."""
        self.redo = False
        """The group did not commit it: it runs again alone."""
        self.doubt = False
        """The group's commit may have carried it (the connection died while committing)."""


class GroupCommitter:
    """Groups the writes of concurrent callers into shared transactions.

    Args:
        connections: The pool and the retry loop a write falls back to.
    """

    def __init__(self, connections: Connections) -> None:
        self._db = connections
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._waiting: list[_Write] = []
        self._leaders = 0
        self.groups = 0
        """Groups committed (for tests and benchmarks)."""
        self.grouped = 0
        """Writes they carried."""

    def run(self, work: Callable[[Any, bool], T], what: str) -> T:
        """Run ``work(connection, doubt)`` in the next group; return its result or raise.

        Raises:
            LedgerUnavailableError: As :meth:`Connections.run`.
            LedgerError: The write was refused.
        """
        self._db.ensure_open()
        if self._pid != os.getpid():  # a forked child: the parent's queue is not ours
            self._pid, self._lock, self._waiting, self._leaders = (
                os.getpid(),
                threading.Lock(),
                [],
                0,
            )
        write = _Write(work, what)
        with self._lock:
            self._waiting.append(write)
            lead = self._leaders < GROUPS_IN_FLIGHT
            self._leaders += lead
        if not lead:
            write.wake.wait()
        if lead or write.lead:
            self._lead()  # a leader's own write is the first of its group: answered now
        if write.redo:
            return self._db.run(work, what, doubt=write.doubt)
        if write.error is not None:
            raise write.error
        result: T = write.result
        return result

    def _lead(self) -> None:
        """Commit one group, answer its writers, and hand the lead on."""
        with self._lock:
            group = self._waiting[:GROUP_LIMIT]
            del self._waiting[:GROUP_LIMIT]
        try:
            self._commit(group)
        finally:
            for write in group:
                write.wake.set()
            with self._lock:
                if self._waiting:
                    heir = self._waiting[0]
                    heir.lead = True
                    heir.wake.set()
                else:
                    self._leaders -= 1

    def _commit(self, group: list[_Write]) -> None:
        """Run ``group`` in one transaction, each write under a savepoint, and commit it."""
        psycopg = self._db.psycopg
        connection: Any = None
        committing = False
        try:
            with self._db.pool.connection(timeout=self._db.target.pool_timeout) as connection:
                try:
                    with connection.pipeline() as pipeline, connection.transaction():
                        self._run_group(_Pipelined(connection, pipeline), group)
                        committing = True
                except psycopg.Error:
                    raise
                except Exception as exc:  # a write alone refused: its transaction rolled back
                    if len(group) != 1:
                        raise
                    group[0].error = exc
                    return
                self.groups += 1
                self.grouped += len(group)
        except psycopg.Error as exc:
            # Not committed (or not known to be): each write not refused on its own runs alone,
            # in doubt when the commit was on its way.
            doubt = committing and lost(exc, connection, psycopg)
            for write in group:
                if write.error is None and not write.redo:
                    write.redo, write.doubt = True, doubt
        except BaseException:
            for write in group:
                if write.error is None and not write.redo:
                    write.redo, write.doubt = True, committing
            raise

    def _run_group(self, conn: _Pipelined, group: list[_Write]) -> None:
        """Run the writes of ``group`` in the transaction begun, each under its own savepoint.

        Each write's statements are known to have succeeded before the next write begins: an
        error is always its own write's.
        """
        if len(group) == 1:  # alone: its transaction is its own, as without a group
            group[0].result = group[0].work(conn, False)
            return
        for index, write in enumerate(group):
            if index:
                conn.execute("RELEASE SAVEPOINT seawall_write")
            conn.execute("SAVEPOINT seawall_write")
            self._one(conn, write)

    def _one(self, conn: _Pipelined, write: _Write) -> None:
        """Run one write under the savepoint just set; roll it back alone when refused."""
        psycopg = self._db.psycopg
        try:
            write.result = write.work(conn, False)
            conn.sync()
        except psycopg.Error as exc:
            if lost(exc, conn._conn, psycopg):
                raise  # the group is lost
            self._roll_back(conn)
            if getattr(exc, "sqlstate", None) in CONFLICT_STATES:
                write.redo = True  # rolled back: run it again alone, after this group
            else:
                write.error = self._db.translate(exc, write.what)
        except Exception as exc:  # the write's own refusal (LeaseLostError, a duplicate id...)
            self._roll_back(conn)
            write.error = exc

    @staticmethod
    def _roll_back(conn: _Pipelined) -> None:
        """Undo the write under the savepoint (any statement of it still in the pipeline too)."""
        with contextlib.suppress(Exception):
            conn.sync()  # an error already raised is not raised again: the pipeline resumes
        conn.execute("ROLLBACK TO SAVEPOINT seawall_write")
        conn.sync()
