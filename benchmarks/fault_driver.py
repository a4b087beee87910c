"""Running one schedule of the fault matrix: workload processes, signals, ledger outages.

Workload processes are forked from a fork server that imported Seawall once
(:class:`Workloads`), so a schedule pays milliseconds, not an interpreter start, for each process
it starts. Each process runs ``benchmarks.fault_workload`` in a role (``run`` or ``resume``) and
reports its lines on a pipe: ``started RUN_ID`` when it begins executing the run, then its
result.

Ledgers: :class:`SqliteLedgers` gives each schedule a fresh file; :class:`PostgresLedgers` gives
each a fresh schema on one throwaway server, owned by a role of its own, so that the role's
connections can be cut off (``pg_cutoff``) without disturbing the schedules running beside it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks import fault_workload
from benchmarks.fault_checks import Evidence, Stale, check
from benchmarks.fault_schedule import Fault, Outcome, Schedule
from seawall import RunStatus
from seawall.ledger import open_store

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import ForkServerContext

    from tests.servers import ThrowawayPostgres

    from seawall.ledger import Store

OUTAGE: Final = {
    "sqlite_lock": fault_workload.BUSY_TIMEOUT + fault_workload.LEASE + 0.5,
    "pg_cutoff": fault_workload.RETRY_TIMEOUT + fault_workload.LEASE + 0.5,
    "pg_down": fault_workload.RETRY_TIMEOUT + fault_workload.LEASE + 0.5,
}
"""Seconds each outage lasts: longer than the owner waits for its ledger, plus one lease."""
TAKEOVER_WAIT: Final = 10.0
"""Seconds a competing process gets to take a stalled owner's run over (it cannot when the
stalled process was stopped holding the ledger's write lock: then the owner is woken)."""
PROCESS_WAIT: Final = 120.0
"""Seconds a workload process gets to end its run before it counts as hung."""
RESUMES: Final = 12
"""Resuming processes started at most after the faults, before the run counts as lost."""


_BOOKKEEPING = threading.Lock()
"""Held around ``multiprocessing``'s process bookkeeping: starting a process polls every other
one, and two threads polling one process race for its exit status (one of them reads 255)."""


class Workloads:
    """Starts workload processes from a fork server that imported the workload once."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["benchmarks.fault_workload"])
        self.context: ForkServerContext = context

    def start(self, role: str, ledger: str, log: Path, run_id: str | None = None) -> Proc:
        """Start a workload process in ``role``."""
        argv = [role, ledger, str(log), *([run_id] if run_id else [])]
        return Proc(self.context, argv, log.with_name(f"{role}-{time.monotonic_ns()}.err"))


class Proc:
    """One workload process and what it said (read by a thread as it comes)."""

    def __init__(self, context: ForkServerContext, argv: list[str], errors: Path) -> None:
        reader, writer = context.Pipe(duplex=False)
        self.role = argv[0]
        self.process = context.Process(
            target=fault_workload.process_main, args=(argv, writer, str(errors)), daemon=True
        )
        with _BOOKKEEPING:
            self.process.start()
        writer.close()
        self.started = threading.Event()
        self.started_at = 0.0
        self.run_id: str | None = None
        self.printed: dict[str, Any] | None = None
        self.error: str | None = None
        self.killed = False
        self._reader = threading.Thread(target=self._read, args=(reader,), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """Its process id."""
        pid = self.process.pid
        assert pid is not None
        return pid

    def _read(self, lines: Connection) -> None:
        import json

        with lines:
            while True:
                try:
                    line = str(lines.recv())
                except (EOFError, OSError):
                    return
                if line.startswith("started "):
                    if not self.started.is_set():
                        self.run_id = line.split()[1]
                        self.started_at = time.time()
                        self.started.set()
                elif line.startswith("error "):
                    self.error = line[6:]
                else:
                    self.printed = json.loads(line)

    def alive(self) -> bool:
        """Whether it has not exited."""
        with _BOOKKEEPING:
            return self.process.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for it to exit; return whether it did."""
        multiprocessing.connection.wait([self.process.sentinel], timeout)
        return not self.alive()

    def signal(self, signum: signal.Signals) -> float:
        """Send it ``signum``; return when (Unix time)."""
        at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)
        return at

    def stopped(self, timeout: float = 2.0) -> bool:
        """Wait until it is stopped (state ``T``); ``False`` when it exited instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                stat = Path(f"/proc/{self.pid}/stat").read_text()
            except OSError:
                return False
            state = stat.rsplit(")", 1)[1].split()[0]
            if state in ("T", "t"):
                return True
            if state in ("Z", "X"):
                return False
            time.sleep(0.001)
        return False

    def kill(self) -> None:
        """SIGKILL it on purpose and reap it."""
        self.killed = True
        self.signal(signal.SIGKILL)
        self.join(PROCESS_WAIT)

    def wait_started(self, timeout: float) -> bool:
        """Wait until it started executing the run (``False``: it exited or timed out first)."""
        deadline = time.monotonic() + timeout
        while not self.started.wait(0.005):
            if not self.alive() or time.monotonic() > deadline:
                return self.started.wait(0.05)
        return True

    def sleep_until(self, moment: float) -> bool:
        """Sleep until ``moment`` (Unix time); ``False`` when it exited before."""
        while True:
            left = moment - time.time()
            if left <= 0:
                return self.alive()
            if self.join(min(left, 0.05)):
                return False

    def failure(self) -> str | None:
        """Why it ended badly, or ``None`` (killed on purpose, or exited 0)."""
        with _BOOKKEEPING:
            code = self.process.exitcode
        if self.killed or code == 0:
            return None
        if code == 3:
            return f"nothing lost: a resuming process (pid {self.pid}) never got to take the run"
        detail = (self.error or "").strip().splitlines()[-1:] or ["(no message)"]
        return f"{self.role} process {self.pid} ended with exit code {code}: {detail[0]}"


# -- ledgers ------------------------------------------------------------------------------------


class SqliteLedgers:
    """A fresh SQLite file per schedule; an outage is another process's write lock."""

    store = "sqlite"

    def open(self, folder: Path) -> tuple[str, Store]:
        """Create a schedule's ledger in its folder; return its URL and a store for the checks."""
        url = f"sqlite:///{folder / 'ledger.db'}"
        return url, open_store(url)

    def outage(self, kind: str, url: str) -> None:
        """Hold the ledger's write lock past the workload's ``busy_timeout``."""
        locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            time.sleep(OUTAGE[kind])
            locker.execute("ROLLBACK")
        finally:
            locker.close()

    def release(self, url: str) -> None:
        """Nothing to drop (the folder goes with the schedule)."""


class PostgresLedgers:
    """A fresh schema per schedule on one throwaway server, owned by a role of its own.

    Args:
        server: The throwaway server (running).
    """

    store = "postgres"

    def __init__(self, server: ThrowawayPostgres) -> None:
        self.server = server
        self._roles: dict[str, str] = {}

    def open(self, _folder: Path) -> tuple[str, Store]:
        """Create a schedule's role and schema, migrated as the role; return the role's URL and a
        superuser's store for the checks."""
        name = f"sw_{uuid.uuid4().hex[:12]}"
        self.server.execute(f"CREATE ROLE {name} LOGIN")
        self.server.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
        url = fault_workload.postgres_url(self.server.url, name, role=name)
        self._roles[url] = name
        open_store(url).close()  # the role owns its tables
        return url, open_store(fault_workload.postgres_url(self.server.url, name))

    def outage(self, kind: str, url: str) -> None:
        """Cut the schedule's role off (``pg_cutoff``), or stop the server (``pg_down``)."""
        if kind == "pg_down":
            with self.server.refusing():
                time.sleep(OUTAGE[kind])
            return
        role = self._roles[url]
        self.server.execute(f"ALTER ROLE {role} NOLOGIN")
        try:
            self._terminate(role)
            time.sleep(OUTAGE[kind])
        finally:
            self.server.execute(f"ALTER ROLE {role} LOGIN")

    def _terminate(self, role: str) -> None:
        self.server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )

    def release(self, url: str) -> None:
        """Drop the schedule's schema and role."""
        role = self._roles.pop(url)
        self._terminate(role)
        self.server.execute(f"DROP SCHEMA IF EXISTS {role} CASCADE")
        self.server.execute(f"DROP ROLE IF EXISTS {role}")


Ledgers = SqliteLedgers | PostgresLedgers


# -- one schedule -------------------------------------------------------------------------------


@dataclass
class _State:
    """A schedule in progress."""

    schedule: Schedule
    ledgers: Ledgers
    url: str
    store: Store
    log: Path
    workloads: Workloads
    duration: float
    outcome: Outcome
    owner: Proc | None = None
    run_id: str | None = None
    procs: list[Proc] = field(default_factory=list)
    stale: list[tuple[Stale, Proc]] = field(default_factory=list)
    cut_off: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def start(self, role: str) -> Proc:
        proc = self.workloads.start(role, self.url, self.log, self.run_id)
        self.procs.append(proc)
        return proc

    def ended(self) -> bool:
        """Whether the run ended (or waits for a person), per the ledger."""
        assert self.run_id is not None
        run = self.store.get_run(self.run_id)
        return run is not None and (run.status.final or run.status is RunStatus.AWAITING_HUMAN)


def run_schedule(
    schedule: Schedule, ledgers: Ledgers, workloads: Workloads, duration: float, folder: Path
) -> Outcome:
    """Run one schedule to its end and check its invariants."""
    began = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    url, store = ledgers.open(folder)
    state = _State(
        schedule,
        ledgers,
        url,
        store,
        folder / "effects.log",
        workloads,
        duration,
        Outcome(schedule),
    )
    try:
        _drive(state)
        _check(state)
    except Exception:
        state.outcome.violations.append("the matrix itself failed: " + traceback.format_exc())
    finally:
        for proc in state.procs:
            if proc.alive():
                proc.signal(signal.SIGCONT)
                proc.kill()
        store.close()
        ledgers.release(url)
    state.outcome.seconds = time.monotonic() - began
    return state.outcome


def _drive(state: _State) -> None:
    owner = state.start("run")
    if not owner.wait_started(PROCESS_WAIT):
        state.problems.append(f"the run never started ({owner.failure() or 'no start line'})")
        return
    state.owner, state.run_id = owner, owner.run_id
    for fault in state.schedule.faults:
        _apply(state, fault)
    _see_through(state)


def _apply(state: _State, fault: Fault) -> None:
    """Apply one fault to whichever process owns the run when its moment comes."""
    for _ in range(RESUMES):
        owner = _live_owner(state)
        if owner is None:
            state.outcome.faults["after_end"] += 1
            return
        if not owner.sleep_until(owner.started_at + fault.at * _left(state) * state.duration):
            continue  # it ended before the moment: aim at the next owner, if any
        if state.ended():
            state.outcome.faults["after_end"] += 1
            return
        if fault.kind == "stall":
            _stall(state, owner, fault)
            return
        state.outcome.faults[fault.label] += 1
        if fault.kind == "kill":
            owner.kill()
        else:
            assert fault.outage is not None
            state.cut_off.add(owner.pid)
            state.ledgers.outage(fault.outage, state.url)
        return
    state.problems.append(f"nothing lost: the run did not end after {RESUMES} resuming processes")


def _left(state: _State) -> float:
    """The share of the run its owner had left to do when it started (by completed calls)."""
    assert state.run_id is not None
    attempts = state.store.list_attempts(state.run_id)
    done = (attempts[-1].completed_at_start or 0) if attempts else 0
    return max(0.1, 1 - done / fault_workload.CALLS)


def _live_owner(state: _State) -> Proc | None:
    """The process executing the run, starting resuming processes as needed; ``None`` once the
    run ended."""
    owner = state.owner
    for _ in range(RESUMES):
        if owner is not None and owner.alive() and owner.wait_started(PROCESS_WAIT):
            state.owner = owner
            return owner
        if owner is not None and owner.alive():
            state.problems.append(f"{owner.role} process {owner.pid} hung before starting")
            return None
        if state.ended():
            return None
        owner = state.start("resume")
    state.problems.append(f"nothing lost: the run did not end after {RESUMES} resuming processes")
    return None


def _stall(state: _State, owner: Proc, fault: Fault) -> None:
    """SIGSTOP past the lease while a competing process takes over; SIGCONT; it must give up."""
    owner.signal(signal.SIGSTOP)
    if not owner.stopped():
        state.outcome.faults["after_end"] += 1  # it exited just before
        return
    state.outcome.faults["stall"] += 1
    rival = state.start("resume")
    if not rival.wait_started(TAKEOVER_WAIT):
        # No takeover: the run ended just before the stop, or the stopped process held the
        # ledger's write lock. Wake it; it stays the owner, and the rival looks on.
        owner.signal(signal.SIGCONT)
        return
    state.outcome.faults["stall_fenced"] += 1
    assert state.run_id is not None
    intents = frozenset(
        s.idempotency_key for s in state.store.load_steps(state.run_id) if s.idempotency_key
    )
    rival.sleep_until(rival.started_at + fault.wake * state.duration)
    woke_at = owner.signal(signal.SIGCONT)
    stale = Stale(owner.pid, woke_at, intents, after_outage=owner.pid in state.cut_off)
    state.stale.append((stale, owner))
    if not owner.join(PROCESS_WAIT):
        state.problems.append(f"a fenced owner (pid {owner.pid}) was still running after waking")
    state.owner = rival


def _see_through(state: _State) -> None:
    """Resume the run until it ends; wait for every process."""
    owner = state.owner
    for _ in range(RESUMES):
        if owner is not None and not owner.join(PROCESS_WAIT):
            state.problems.append(f"{owner.role} process {owner.pid} hung")
            return
        if state.ended():
            break
        owner = state.start("resume")
        state.owner = owner
    for proc in state.procs:
        proc.join(PROCESS_WAIT)


def _check(state: _State) -> None:
    outcome = state.outcome
    if state.run_id is None:
        outcome.violations.extend(state.problems)
        return
    for stale, proc in state.stale:
        stale.printed = proc.printed
    evidence = Evidence(
        state.run_id,
        [e for e in fault_workload.effects(state.log) if e["run"] == state.run_id],
        stale=[stale for stale, _ in state.stale],
        printed=[p.printed for p in state.procs if p.printed is not None and "status" in p.printed],
        failures=[f for p in state.procs if (f := p.failure()) is not None],
    )
    violations, duplicates, status = check(state.store, evidence)
    outcome.violations.extend(state.problems + violations)
    outcome.duplicates.update(duplicates)
    outcome.status = status
    run = state.store.get_run(state.run_id)
    attempts = state.store.list_attempts(state.run_id)
    if run is not None and run.end_time is not None and attempts:
        outcome.duration = run.end_time - attempts[0].start_time
