"""Group commit of the PostgreSQL ledger: concurrent runs' one-statement writes, committed together.

A run's opening and a succeeded run's ending are each one statement
(:mod:`seawall.ledger._pg_writes`) that either applies whole or writes nothing (a run id
taken, a run fenced). When many runs are in flight, those statements queue up here, and
whoever finds fewer than half the pool's connections committing groups leads the next one: it
takes every write waiting (up to :data:`GROUP_LIMIT`), sends each distinct statement once for
all of them (psycopg's pipelined ``executemany``), and commits them in one transaction. While
it commits, the next writes queue up for the next group; when it is done, it hands the lead to
the first of them.

What each write learns is what it would have learnt alone:

- nobody is answered before the group's ``COMMIT`` returns;
- a write that did not apply (its statement returned no row of ones: a run id taken, a run
  fenced) wrote nothing in the group, and runs again alone (:meth:`Connections.run`), which
  raises its refusal to its own caller only; the others commit;
- a group that could not run (no connection, a deadlock, any error) committed nothing: each of
  its writes runs again alone, as if it had never been grouped;
- a connection lost while committing leaves every applied write of the group in doubt: each
  runs again alone with ``doubt=True``, exactly as a write that lost its own commit does.

A write alone in its group runs as it would without grouping.

:meth:`GroupCommitter.batch` forms a group from calls handed over together (the event loop's
runs, gathered by :class:`~seawall.runtime.ledger_io.LedgerIO`): it runs the calls in turn on
one thread, each call's one-statement write put off rather than waited for, then commits the
writes put off as one group, with the same rules. So a group of 64 runs' writes costs one
thread and one hand-off, not 64 threads each waiting for its group.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall import _faults
from seawall.ledger._postgres_connections import PUT_OFF, lost, make_put_off

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from seawall.ledger._postgres_connections import Connections
    from seawall.ledger._sqlbase import Outcome

T = TypeVar("T")

GROUP_LIMIT: Final = 64
"""Writes committed together at most."""


class _Write:
    """One caller's write waiting in a group, and what became of it."""

    __slots__ = (
        "done",
        "doubt",
        "error",
        "lead",
        "made",
        "params",
        "result",
        "settled",
        "sql",
        "wake",
        "what",
        "work",
    )

    def __init__(
        self, work: Callable[[Any, bool], Any], what: str, sql: str, params: Sequence[Any]
    ) -> None:
        self.work = work
        self.what = what
        self.sql = sql
        self.params = params
        self.wake = threading.Event()
        self.lead = False
        """Woken to lead the next group rather than with an outcome."""
        self.settled = False
        """Its group is done: ``done``, ``error`` and ``doubt`` say how."""
        self.done = False
        """It was written (by its group, or alone while it led), or refused: see ``error``."""
        self.result: Any = None
        self.error: BaseException | None = None
        self.doubt = False
        """The group's commit may have carried it (the connection died while committing)."""
        self.made = False
        """Put off in a batch, it was made alone before its caller's next operation."""


class _Batching(threading.local):
    """The committer whose :meth:`GroupCommitter.batch` this thread runs a call of, if any."""

    committer: GroupCommitter | None = None
    write: _Write | None = None
    """The call's write put off."""

    def end(self) -> _Write | None:
        """End the call: the write it put off (none when it was made already), forgotten."""
        write, self.committer, self.write = self.write, None, None
        PUT_OFF.write = None
        return None if write is None or write.made else write


_BATCHING = _Batching()


class GroupCommitter:
    """Commits concurrent callers' one-statement writes in shared transactions.

    Args:
        connections: The pool, and the retry loop a write runs in alone.
    """

    def __init__(self, connections: Connections) -> None:
        self._db = connections
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._waiting: list[_Write] = []
        self._leaders = 0
        self.in_flight = max(1, connections.target.pool_max_size // 2)
        """Groups committing at once, each on a pooled connection (half the pool: the other
        half stays free for reads, lease renewals and the writes that are not grouped)."""
        self.groups = 0
        """Groups of two writes or more committed (for tests and benchmarks)."""
        self.grouped = 0
        """Writes they carried."""

    def run(
        self, work: Callable[[Any, bool], T], what: str, sql: str, params: Sequence[Any]
    ) -> T | None:
        """Run the write ``work`` (whose statement is ``sql`` with ``params``) in the next group.

        ``sql`` (with numbered placeholders, ``$1``: see ``_pg_writes``) returns one row of ones
        when it applied, and writes nothing when it did not;
        ``work(connection, doubt)`` runs it alone, and says why it did not apply.

        Returns:
            ``None`` when a group applied it; otherwise what ``work`` returned alone.

        Raises:
            LedgerUnavailableError: As :meth:`Connections.run`.
            LedgerError: The write was refused.
        """
        self._db.ensure_open()
        if self._pid != os.getpid():  # a forked child: the parent's queue is not its own
            self._pid, self._lock, self._waiting, self._leaders = (
                os.getpid(),
                threading.Lock(),
                [],
                0,
            )
        write = _Write(work, what, sql, params)
        if _BATCHING.committer is self and self._put_off(write):
            return None
        with self._lock:
            self._waiting.append(write)
            lead = self._leaders < self.in_flight
            self._leaders += lead
        if lead:
            self._lead()
        while True:  # woken when its group is done, or to lead the next one
            with self._lock:
                write.wake.clear()
                lead, write.lead = write.lead, False
            if lead:  # the lead was handed to it: lead (its own write may be in another group)
                self._lead()
                continue
            if write.settled:
                # A lead handed to it just before another group took its write is still
                # to be passed on (once settled, it is out of the queue: none comes later).
                with self._lock:
                    lead, write.lead = write.lead, False
                if lead:
                    self._lead()
                break
            write.wake.wait()
        if write.error is not None:
            raise write.error
        if write.done:
            result: T | None = write.result
            return result
        redone: T = self._redo(write)
        return redone

    def batch(self, calls: Sequence[Callable[[], Any]]) -> list[Outcome]:
        """Run ``calls`` in turn, then commit the writes they put off, in one group.

        A call's first one-statement write (:meth:`run`) is put off: the call goes on as if it
        had been written, and its outcome waits for the group's. An operation the call makes
        after it (a read, another write) makes it first, alone, so the call's operations keep
        their order; its code after its last write runs before that write commits, so it
        must have no effect outside the ledger (the store's writes and ``begin_run`` end with
        their write). A write the group did not apply runs again alone, as in :meth:`run`.

        Returns:
            Per call, in order: its value and ``None``, or ``None`` and the error it raised
            or its write's.
        """
        self._db.ensure_open()
        outcomes: list[Outcome] = []
        put_off: list[_Write | None] = []
        batching = _BATCHING
        for call in calls:
            batching.committer, batching.write = self, None
            try:
                value = call()
            except Exception as exc:  # the caller's (its write, if put off, is still made)
                outcomes.append((None, exc))
            else:
                outcomes.append((value, None))
            finally:
                write = batching.end()
            put_off.append(write)
        group = [write for write in put_off if write is not None]
        if len(group) > 1:
            self._commit(group)
        for i, write in enumerate(put_off):
            if write is None or write.done:
                continue
            try:  # not applied in the group (or alone in it): alone, as run() does
                self._redo(write)
            except Exception as exc:  # its refusal, or the ledger gone: the caller's
                outcomes[i] = (None, exc)
        return outcomes

    def _put_off(self, write: _Write) -> bool:
        """In a call of :meth:`batch`: put its first write off (``True``), or make it first."""
        make_put_off()  # a later write of the call: the one put off is made first
        if _BATCHING.write is not None:
            return False
        _BATCHING.write = write
        PUT_OFF.write = functools.partial(self._make, write)
        return True

    def _make(self, write: _Write) -> None:
        """Make a write put off alone, now (its caller made another operation)."""
        write.made = True
        self._redo(write)

    def _redo(self, write: _Write) -> Any:
        """Run ``write`` alone (in doubt when a group's lost commit may have carried it)."""
        return self._db.run(write.work, write.what, transaction=False, doubt=write.doubt)

    def _lead(self) -> None:
        """Commit one group, answer its writers, and hand the lead on."""
        with self._lock:
            group = self._waiting[:GROUP_LIMIT]
            del self._waiting[:GROUP_LIMIT]
        try:
            if len(group) > 1:
                self._commit(group)
            elif group:  # alone, a write runs as it would without a group (holding the lead)
                self._alone(group[0])
        finally:
            for write in group:
                write.settled = True
                write.wake.set()
            with self._lock:
                # The first waiting write not handed a lead already: two leaders ending at once
                # must not both hand theirs to one write (it would lead once, and one lead
                # would be lost; with every lead lost, nothing would commit again).
                heir = next((w for w in self._waiting if not w.lead), None)
                if heir is not None:
                    heir.lead = True
                    heir.wake.set()
                else:
                    self._leaders -= 1

    def _alone(self, write: _Write) -> None:
        """Run a write by itself, noting its result or its error."""
        try:
            write.result = self._redo(write)
        except Exception as exc:  # raised to its caller by run()
            write.error = exc
        write.done = True

    def _commit(self, group: list[_Write]) -> None:
        """Send each distinct statement once for all its writes, in one transaction; commit."""
        psycopg = self._db.psycopg
        connection: Any = None
        committing = False
        applied: list[_Write] = []
        try:
            with (
                self._db.pool.connection(timeout=self._db.target.pool_timeout) as connection,
                connection.transaction(),
            ):
                by_sql: dict[str, list[_Write]] = {}
                for write in group:
                    by_sql.setdefault(write.sql, []).append(write)
                for sql, writes in by_sql.items():
                    with psycopg.RawCursor(connection) as cursor:  # numbered placeholders
                        cursor.executemany(sql, [w.params for w in writes], returning=True)
                        for write in writes:
                            if _ones(cursor.fetchall()):
                                applied.append(write)
                            cursor.nextset()
                _faults.point("ledger.group.commit")  # every write sent, COMMIT not yet
                committing = True
            for write in applied:
                write.done = True
            self.groups += 1
            self.grouped += len(group)
        except psycopg.Error as exc:
            # Nothing committed, or not known: the applied writes run again alone, in doubt
            # when the commit was on its way (the others wrote nothing).
            doubt = committing and lost(exc, connection, psycopg)
            for write in applied:
                write.doubt = doubt
        except BaseException:
            for write in applied:
                write.doubt = committing
            raise


def _ones(rows: list[tuple[Any, ...]]) -> bool:
    """Whether a grouped statement's rows say it applied: one row, all ones."""
    return len(rows) == 1 and all(value == 1 for value in rows[0])
