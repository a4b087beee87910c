"""Reaching PostgreSQL: pooled connections, and retries across a lost server.

Every store operation runs through :meth:`Connections.run`, which borrows a pooled connection,
runs the operation (in one transaction, or as one autocommit statement) and, when the connection
is lost (the server restarted, a network blip), waits for the server and runs it again:

- a failure before the commit was sent left nothing behind: the operation simply runs again;
- a failure while committing leaves the outcome unknown ("in doubt"). The operation runs again
  with ``doubt=True``, so it can recognise its own committed write (every write of the store
  is idempotent or checks for itself); an operation that cannot is refused with
  :class:`~seawall.LedgerUnavailableError` rather than applied twice.

Serialization failures and deadlocks (the transaction was rolled back) are retried at once.
The URL and its options are parsed by :mod:`seawall.ledger._postgres_url`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall.errors import (
    LedgerCorruptedError,
    LedgerError,
    LedgerReadOnlyError,
    LedgerUnavailableError,
    LedgerURLError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg
    from psycopg_pool import ConnectionPool

    from seawall.ledger._postgres_url import PostgresTarget

T = TypeVar("T")

INSTALL_HINT: Final = "pip install 'seawall[postgres]'"
# SQLSTATEs after which the connection is gone but the server may come back.
_LOST_STATES: Final = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001"})
_CONFLICT_STATES: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_INHERITED: list[Any] = []
"""Pools a forked child inherited: kept, never closed (their sockets are the parent's)."""


def import_driver() -> tuple[Any, Any]:
    """Import psycopg and psycopg_pool, or explain which extra installs them.

    Raises:
        LedgerURLError: psycopg or psycopg-pool is not installed.
    """
    try:
        import psycopg  # noqa: PLC0415 - the postgres extra is optional
        import psycopg_pool  # noqa: PLC0415
    except ImportError as exc:
        raise LedgerURLError(
            f"the PostgreSQL ledger needs psycopg 3 and psycopg-pool ({exc.name} is not "
            f"installed): {INSTALL_HINT}",
        ) from exc
    return psycopg, psycopg_pool


class _PutOff(threading.local):
    """A write this thread put off to commit it in a group, made before the thread's next one."""

    write: Callable[[], object] | None = None


PUT_OFF: Final = _PutOff()
"""This thread's write put off (:meth:`~seawall.ledger._postgres_group.GroupCommitter.batch`)."""


def make_put_off() -> None:
    """Make the write this thread put off, if any, now (its errors are the caller's)."""
    write = PUT_OFF.write
    if write is not None:
        PUT_OFF.write = None
        write()


class InDoubtWriteError(LedgerUnavailableError):
    """Internal marker: the connection died while committing a write that cannot be redone."""


class Connections:
    """A pool of connections to one ledger schema, and the retry loop every operation runs in.

    Args:
        target: Where to connect.
    """

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target
        self.psycopg, self._pool_module = import_driver()
        self.kwargs: dict[str, Any] = {"autocommit": True}
        self._closed = False
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: ConnectionPool[Any] | None = None
        self.reconnects = 0
        """Operations that ran again after losing their connection (for tests and metrics)."""

    @property
    def pool(self) -> ConnectionPool[Any]:
        """This process's pool, opened on first use.

        Opening lazily keeps a store created before a fork (a Celery prefork worker, a
        multiprocessing child) free of connections until it is used. A child that inherited
        a used pool gets a new one: the inherited connections belong to the parent and are
        left untouched (closing them would end the parent's sessions).
        """
        if self._pid != os.getpid():
            if self._pool is not None:
                _INHERITED.append(self._pool)
            self._pool, self._pid, self._lock = None, os.getpid(), threading.Lock()
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool_module.ConnectionPool(
                        self.target.conninfo,
                        min_size=self.target.pool_min_size,
                        max_size=self.target.pool_max_size,
                        kwargs=self.kwargs,
                        open=False,
                        timeout=self.target.pool_timeout,
                        name="seawall-ledger",
                        reconnect_timeout=max(self.target.retry_timeout, 1.0),
                    )
                    pool.open(wait=False)
                    self._pool = pool
        return pool

    # -- opening ----------------------------------------------------------------------------

    def connect(self) -> psycopg.Connection[Any]:
        """Open one connection outside the pool (migrations), with a clear error when down.

        Raises:
            LedgerUnavailableError: The server cannot be reached or refuses the login.
        """
        try:
            connection: psycopg.Connection[Any] = self.psycopg.connect(
                self.target.conninfo, **self.kwargs
            )
        except self.psycopg.Error as exc:
            raise self.unreachable(exc) from exc
        return connection

    def unreachable(self, exc: BaseException) -> LedgerUnavailableError:
        """The error for a server that cannot be reached, naming the URL and what to check."""
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if detail[-1] not in ".?!":
            detail += "."
        return LedgerUnavailableError(
            f"cannot reach the PostgreSQL ledger {self.target.display}: {detail} Check that "
            "PostgreSQL is running and accepts TCP connections at that host and port, that the "
            "database exists (CREATE DATABASE ...), and that the user and password are right "
            "(in the URL, PGPASSWORD or ~/.pgpass)",
            url=self.target.display,
        )

    def close(self) -> None:
        """Close this process's pool (idempotent; a pool inherited from a parent is left)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool = self._pool if self._pid == os.getpid() else None
        if pool is not None:
            pool.close(timeout=5.0)

    # -- running operations -----------------------------------------------------------------

    def run(
        self,
        work: Callable[[psycopg.Connection[Any], bool], T],
        what: str,
        *,
        transaction: bool = True,
        redo_in_doubt: bool = True,
        doubt: bool = False,
    ) -> T:
        """Run ``work(connection, doubt)`` and return its result, across lost connections.

        Args:
            work: The operation. ``doubt`` is true when an earlier try may have committed.
            what: What it does, for error messages ("record run r1").
            transaction: Run it in one transaction; otherwise it is one autocommit statement.
            redo_in_doubt: Whether it may run again after a commit with an unknown outcome.
            doubt: An earlier try (in a group commit) may have committed it already.

        Raises:
            LedgerUnavailableError: The server stayed unreachable for ``retry_timeout``
                seconds, or the outcome of a write that cannot be redone is unknown.
            LedgerError: The database refused the operation.
        """
        # A thread's operations keep their order: a write it put off to commit in a group
        # is made first, alone.
        make_put_off()
        deadline: float | None = None
        delay = 0.05
        while True:
            self.ensure_open()
            attempt = _Try()
            try:
                return self._try(work, doubt, attempt, transaction=transaction, deadline=deadline)
            except self.psycopg.Error as exc:
                doubt |= self._judge(exc, attempt, what, redo_in_doubt=redo_in_doubt)
                failure = exc
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.target.retry_timeout
            if now >= deadline:
                raise LedgerUnavailableError(
                    f"lost the PostgreSQL ledger {self.target.display} for more than "
                    f"{self.target.retry_timeout:g}s ({what}): {' '.join(str(failure).split())}. "
                    "Check that the server is up; unfinished runs resume with `seawall resume` "
                    "once it is (raise ?retry_timeout= to wait longer)",
                    url=self.target.display,
                ) from failure
            self.reconnects += 1
            self._drop_dead_connections()
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, 1.0)

    def _try(
        self,
        work: Callable[[psycopg.Connection[Any], bool], T],
        doubt: bool,
        attempt: _Try,
        *,
        transaction: bool,
        deadline: float | None,
    ) -> T:
        """Run ``work`` once on a pooled connection, noting how far it got in ``attempt``."""
        wait = self.target.pool_timeout
        if deadline is not None:
            wait = max(0.1, min(wait, deadline - time.monotonic()))
        with self.pool.connection(timeout=wait) as connection:
            attempt.connection = connection
            if not transaction:
                attempt.committing = True  # one autocommit statement: sent means maybe applied
                return work(connection, doubt)
            with connection.transaction():
                result = work(connection, doubt)
                attempt.committing = True
            return result

    def _judge(self, exc: Exception, attempt: _Try, what: str, *, redo_in_doubt: bool) -> bool:
        """Decide what a failed try means: retry (returns whether it is in doubt), or raise.

        Raises:
            InDoubtWriteError: A write that cannot be redone may or may not have committed.
            LedgerError: The database refused the operation (not a lost connection).
        """
        if getattr(exc, "sqlstate", None) in _CONFLICT_STATES:
            return False  # rolled back by the server: nothing was written, run it again
        if not lost(exc, attempt.connection, self.psycopg):
            raise self.translate(exc, what) from exc
        if not attempt.committing:
            return False
        if not redo_in_doubt:
            raise InDoubtWriteError(
                f"the connection to the PostgreSQL ledger {self.target.display} was lost while "
                f"committing ({what}); whether it was recorded is unknown. Check the ledger "
                "(seawall show / breakers list / dlq list) before trying again",
                url=self.target.display,
            ) from exc
        return True

    def _drop_dead_connections(self) -> None:
        """Let the pool test its idle connections so the next try gets a live one."""
        try:
            self.pool.check()
        except self.psycopg.Error:
            return

    def ensure_open(self) -> None:
        """Raise when the store was closed.

        Raises:
            LedgerUnavailableError: It was.
        """
        if self._closed:
            raise LedgerUnavailableError(
                f"the ledger {self.target.display} was closed; create a new Seawall to use it "
                "again",
                url=self.target.display,
            )

    def translate(self, exc: Exception, what: str) -> LedgerError:
        """Turn a psycopg error into the most specific ledger error."""
        errors = self.psycopg.errors
        detail = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
        display = self.target.display
        if isinstance(exc, errors.InsufficientPrivilege | errors.ReadOnlySqlTransaction):
            return LedgerReadOnlyError(
                f"the PostgreSQL ledger {display} cannot be written ({detail}); create schema "
                f"{self.target.schema} for the user (or grant it CREATE on the database) and "
                "let it write there",
                url=display,
            )
        if isinstance(exc, errors.UndefinedTable | errors.UndefinedColumn):
            return LedgerCorruptedError(
                f"the PostgreSQL ledger {display} is missing part of its schema ({detail}); was "
                f"schema {self.target.schema} altered by hand? Run `seawall migrate --ledger "
                "URL` or point ?schema= at a Seawall ledger",
                url=display,
            )
        if isinstance(exc, errors.IntegrityError):
            return LedgerError(f"the ledger {display} refused to {what}: {detail}", url=display)
        return LedgerUnavailableError(
            f"the PostgreSQL ledger {display} failed to {what}: {detail}", url=display
        )


class _Try:
    """How far one try of an operation got."""

    __slots__ = ("committing", "connection")

    def __init__(self) -> None:
        self.connection: Any = None
        self.committing = False


def lost(exc: BaseException, connection: Any, psycopg: Any) -> bool:
    """Whether ``exc`` means the connection (not the statement) failed."""
    if connection is not None and connection.broken:
        return True
    if isinstance(exc, psycopg.InterfaceError):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError) and (state is None or state in _LOST_STATES)
