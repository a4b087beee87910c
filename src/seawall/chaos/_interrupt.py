"""Faults that interrupt an attempt without killing its process: stalls and ledger outages.

``stall``: the workload process stops itself (``SIGSTOP``) right after the fault is logged. The
session (:class:`Takeovers`, in the parent process) sees the entry, starts a competing process
(``python -m seawall.chaos --resume``) that takes the run over once its lease lapses and sees it
through, then wakes the stalled process (``SIGCONT``). The stale owner must find itself fenced
at its next write and change nothing; the report says whether it did.

``ledger_outage``: the workload's ledger becomes unreachable for ``delay`` seconds (by default
longer than the process waits for it, plus one lease). Only the workload's own access is cut:

- SQLite: a thread of the workload process holds the ledger's write lock (``BEGIN IMMEDIATE``)
  past ``busy_timeout``. Readers are not blocked; another writer of the same file waits too.
- PostgreSQL: the workload's own connections are terminated (``pg_terminate_backend``, allowed
  for one's own role) and its new connections refused, inside the workload process, for the
  outage. The server, and every other client of it, is left alone: chaos never stops a server
  it did not start.

An attempt that loses its ledger stops where it is and its run stays resumable; the workload
process resumes it once the ledger is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from seawall.chaos._workload import append_entry, load_target, log_mutations
from seawall.errors import ConfigurationError, LedgerError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from seawall._app import Seawall

RESUME_WAIT: Final = 120.0
"""Seconds a competing process tries to take a stalled run over before it gives up."""
GAVE_UP: Final = 3
"""Exit code of a competing process that never got the run."""
_RESUME: Final = (sys.executable, "-m", "seawall.chaos", "--resume")


def stop_myself() -> None:
    """Stop this process (``SIGSTOP``) from this very thread, before it runs one more line.

    Raises:
        ConfigurationError: This platform has no ``SIGSTOP``.
    """
    stop = getattr(signal, "SIGSTOP", None)
    if stop is None:
        raise ConfigurationError("the chaos fault 'stall' needs SIGSTOP (a POSIX system)")
    signal.pthread_kill(threading.get_ident(), stop)


# -- ledger outages (in the workload process) ---------------------------------------------------


class _Refusals:
    """This process's PostgreSQL connections, and a switch that makes new ones fail."""

    def __init__(self) -> None:
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.refusing = threading.Event()
        self.original: Callable[..., Any] | None = None

    def install(self) -> None:
        """Track every connection psycopg opens from now on (the ledger's pool included)."""
        if self.original is not None:
            return
        import psycopg  # noqa: PLC0415 - only for a PostgreSQL ledger

        original = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]
        refusals = self

        def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
            if refusals.refusing.is_set():
                raise psycopg.OperationalError(
                    "connection refused: the ledger is cut off from this process (chaos fault "
                    "ledger_outage)"
                )
            connection = original(cls, *args, **kwargs)
            refusals.connections.add(connection)
            return connection

        self.original = original
        psycopg.Connection.connect = classmethod(connect)  # type: ignore[method-assign, assignment]

    def cut_off(self, conninfo: str) -> int:
        """Refuse new connections and terminate this process's live ones; return how many."""
        import psycopg  # noqa: PLC0415

        assert self.original is not None  # noqa: S101 - install() came first
        self.refusing.set()
        pids = [c.info.backend_pid for c in list(self.connections) if not c.closed]
        if not pids:
            return 0
        with self.original(psycopg.Connection, conninfo, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(%s::int[]) "
                "AS pid",
                (pids,),
            ).fetchone()
        return int(row[0]) if row else 0


_REFUSALS = _Refusals()


def prepare_outages() -> None:
    """Make PostgreSQL outages possible in this process (call before the ledger connects)."""
    with contextlib.suppress(ImportError):
        _REFUSALS.install()


class LedgerOutage:
    """Cuts one app's ledger off from this process for a while.

    Args:
        app: The workload's app.

    Raises:
        ConfigurationError: The ledger is neither SQLite nor PostgreSQL.
    """

    def __init__(self, app: Seawall) -> None:
        from seawall.ledger.postgres import PostgresStore  # noqa: PLC0415
        from seawall.ledger.sqlite import SQLiteStore  # noqa: PLC0415

        self.app = app
        self.over = threading.Event()
        self.over.set()
        store = app.store
        if isinstance(store, SQLiteStore):
            self.kind = "sqlite"
            self.path = store.path
            self.wait = store.busy_timeout
        elif isinstance(store, PostgresStore):
            self.kind = "postgresql"
            self.conninfo = store.target.conninfo
            self.wait = store.target.retry_timeout
        else:
            raise ConfigurationError(
                "the chaos fault 'ledger_outage' needs a SQLite or PostgreSQL ledger, not "
                f"{store!r}"
            )

    def seconds(self, delay: float | None) -> float:
        """The outage's length: ``delay``, or longer than the ledger is waited for, plus a lease."""
        return delay if delay is not None else self.wait + self.app.runtime.leases.duration + 1.0

    def start(self, delay: float | None) -> None:
        """Cut the ledger off now, for :meth:`seconds`; return once the cut is in effect."""
        seconds = self.seconds(delay)
        self.over.clear()
        held = threading.Event()
        target = self._hold_lock if self.kind == "sqlite" else self._refuse
        threading.Thread(
            target=target, args=(seconds, held), name="seawall-chaos-outage", daemon=True
        ).start()
        held.wait()

    def _hold_lock(self, seconds: float, held: threading.Event) -> None:
        locker = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            locker.execute("ROLLBACK")
        finally:
            locker.close()
            held.set()
            self.over.set()

    def _refuse(self, seconds: float, held: threading.Event) -> None:
        try:
            _REFUSALS.cut_off(self.conninfo)
            held.set()
            time.sleep(seconds)
        finally:
            _REFUSALS.refusing.clear()
            held.set()
            self.over.set()


def resume_interrupted(app: Seawall, run_id: str, outage: LedgerOutage | None) -> None:
    """Resume a run whose attempt lost the ledger, once the ledger is back and its lease lapsed."""
    if outage is not None:
        outage.over.wait()
    deadline = time.monotonic() + RESUME_WAIT
    while time.monotonic() < deadline:
        with contextlib.suppress(UsageError, LedgerError):
            run = app.ledger.run(run_id)
            if run.status.final or run.status.value == "awaiting_human":
                return
            if run.lease_expires_at is None or run.lease_expires_at < time.time():
                app.resume(run_id)
        time.sleep(app.runtime.leases.duration / 4)


# -- stalls (the competing process, and the session that starts it) ------------------------------


def resume_main(argv: list[str]) -> int:
    """Entry of a competing process: take RUN_ID over once its lease lapses; see it through.

    It logs ``{"event": "takeover"}`` as soon as it holds the run (so the session wakes the
    stalled owner while the new one works), and its mutating calls like a workload process.
    """
    spec, log, run_id, lease = argv
    app, _, _ = load_target(spec)
    app.runtime.leases.duration = float(lease)
    log_mutations(app, Path(log))
    done = threading.Event()
    announcer = threading.Thread(
        target=_announce, args=(app, Path(log), run_id, app.ledger.run(run_id).epoch, done)
    )
    announcer.start()
    deadline = time.monotonic() + RESUME_WAIT
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(UsageError, LedgerError):
                run = app.ledger.run(run_id)
                if run.status.final or run.status.value == "awaiting_human":
                    return 0
                lapsed = run.lease_expires_at is None or run.lease_expires_at < time.time()
                if lapsed and app.resume(run_id):
                    return 0
            time.sleep(app.runtime.leases.duration / 10)
    finally:
        done.set()
        announcer.join()
        app.close()
    return GAVE_UP


def _announce(app: Seawall, log: Path, run_id: str, epoch: int, done: threading.Event) -> None:
    """Log the takeover once the run's epoch moved on (or it ended)."""
    while not done.wait(app.runtime.leases.duration / 20):
        with contextlib.suppress(LedgerError):
            run = app.ledger.run(run_id)
            if run.epoch > epoch or run.status.final:
                append_entry(log, {"event": "takeover", "run_id": run_id, "epoch": run.epoch})
                return


@dataclass
class Takeovers:
    """Watches a workload process for stalls and has each stalled run taken over.

    Attributes:
        spec: The target (``module:attribute``).
        log: The session's log.
        lease: Lease seconds in the session's processes.
        env: The processes' environment.
        progress: Called with a line for people, or ``None``.
        offset: How far the session's log has been read.
        rivals: The competing processes started so far.
    """

    spec: str
    log: Path
    lease: float
    env: dict[str, str]
    progress: Callable[[str], None] | None
    offset: int = 0
    rivals: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def watch(self, child: subprocess.Popen[bytes]) -> int:
        """Wait for ``child`` to exit, handling its stalls; return its exit code."""
        while True:
            code = child.poll()
            for entry in self._new_entries():
                if entry.get("event") == "fault" and entry.get("kind") == "stall":
                    self._take_over(child, str(entry["run_id"]))
            if code is not None:
                return code
            time.sleep(0.02)

    def finish(self) -> None:
        """Wait for the competing processes to see their runs through."""
        for rival in self.rivals:
            try:
                rival.wait(timeout=RESUME_WAIT)
            except subprocess.TimeoutExpired:
                rival.kill()
                rival.wait()

    def _new_entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def _take_over(self, child: subprocess.Popen[bytes], run_id: str) -> None:
        """Start a competing process; wake the stalled one once the run is taken over."""
        self.rivals.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*_RESUME, self.spec, str(self.log), run_id, str(self.lease)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + max(10.0, 10 * self.lease)
        taken = False
        while not taken and time.monotonic() < deadline:
            taken = any(
                e.get("event") == "takeover" and e.get("run_id") == run_id
                for e in self._new_entries()
            )
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGCONT)
        if self.progress is not None:
            what = (
                "a competing process took the run over"
                if taken
                else "no competing process could take the run over (the stalled process held "
                "the ledger)"
            )
            self.progress(f"process stalled past its lease (run {run_id}); {what}; woken")
