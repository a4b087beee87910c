"""The Celery batch of the fault matrix: worker pauses past the lease, on a throwaway Redis.

Two Celery workers (prefork, one pool process each) share a SQLite ledger with this process,
which submits the workload's run and pauses the worker executing it: SIGSTOP of its pool process,
or of the whole worker (main process and pool), at a moment drawn inside the run's measured
duration. The broker hands the unacknowledged message to the other worker after its visibility
timeout; that worker finds the lease lapsed and takes the run over. The paused worker gets
SIGCONT at a moment drawn after the takeover, and must find itself fenced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks._harness import REPO_ROOT
from benchmarks.fault_checks import Evidence, Stale, check, owner_pid
from benchmarks.fault_schedule import Outcome, Schedule, Tally
from benchmarks.fault_workload import QUEUE, STEPS, celery_pair, effects
from seawall import WaitTimeoutError
from seawall.ledger import open_store

if TYPE_CHECKING:
    from seawall.ledger import AttemptRecord, Store

WORKERS: Final = 2
READY_WAIT: Final = 60.0
TAKEOVER_WAIT: Final = 10.0
"""Seconds another worker gets to take a paused worker's run over (it cannot while the paused
process holds the SQLite ledger's write lock: then the paused worker is woken)."""
RUN_WAIT: Final = 120.0
CALIBRATION_RUNS: Final = 3


class Fleet:
    """The batch's Celery workers, each in a process group of its own; always killed at the end.

    Args:
        folder: Where worker logs go.
        env: The workers' environment (ledger, broker, effect log).
    """

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts = 0

    def start(self, slot: int) -> None:
        """Start worker ``slot`` and wait until it consumes."""
        log = self.folder / f"worker-{slot}-{self.restarts}.log"
        with log.open("wb") as out:
            self.workers[slot] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "benchmarks.fault_workload:celery_app",
                    "worker",
                    "-Q",
                    QUEUE,
                    "-n",
                    f"faults{slot}-{self.restarts}@%h",
                    "-c",
                    "1",
                    "-P",
                    "prefork",
                    "-l",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_WAIT
        while b" ready." not in log.read_bytes():
            if self.workers[slot].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Celery worker {slot} did not start; see {log}")
            time.sleep(0.05)

    def ensure(self) -> list[str]:
        """Restart workers that died; say which."""
        died = []
        for slot in range(WORKERS):
            worker = self.workers.get(slot)
            if worker is None or worker.poll() is not None:
                if worker is not None:
                    died.append(f"Celery worker {slot} died (exit code {worker.returncode})")
                self.restarts += 1
                self.start(slot)
        return died

    def close(self) -> None:
        """Kill every worker with its pool."""
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGCONT)
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)


def _stopped(pid: int, timeout: float = 2.0) -> bool:
    """Wait until process ``pid`` is stopped (Linux ``/proc``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state in ("T", "t"):
            return True
        time.sleep(0.001)
    return False


def _first_attempt(store: Store, run_id: str) -> AttemptRecord | None:
    """The run's first attempt once a worker started it (``None``: it ended without one)."""
    deadline = time.monotonic() + RUN_WAIT
    while time.monotonic() < deadline:
        attempts = store.list_attempts(run_id)
        if attempts:
            return attempts[0]
        run = store.get_run(run_id)
        if run is not None and run.status.final:
            return None
        time.sleep(0.002)
    raise TimeoutError(f"no worker started run {run_id} within {RUN_WAIT:.0f} s")


class CeleryBatch:
    """Worker pauses, one schedule at a time, on one ledger shared with the workers."""

    def __init__(self, folder: Path, broker: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        ledger = f"sqlite:///{folder / 'ledger.db'}"
        self.log = folder / "effects.log"
        self.store = open_store(ledger)
        self.celery_app, self.app = celery_pair(ledger, broker, self.log)
        env = {
            **os.environ,
            "SEAWALL_FAULTS_LEDGER": ledger,
            "SEAWALL_FAULTS_BROKER": broker,
            "SEAWALL_FAULTS_EFFECTS": str(self.log),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        self.fleet = Fleet(folder, env)
        self.duration = 0.0

    def close(self) -> None:
        """Stop the workers, close the apps and the store."""
        self.fleet.close()
        self.app.close()
        self.store.close()

    def calibrate(self) -> list[float]:
        """The durations of unfaulted runs in the workers."""
        measured = []
        for _ in range(CALIBRATION_RUNS):
            run_id = self.app.submit("settle", steps=STEPS).run_id
            result = self.app.wait(run_id, timeout=RUN_WAIT)
            first = self.store.list_attempts(run_id)[0]
            run = self.store.get_run(run_id)
            if not result.ok or run is None or run.end_time is None:
                raise RuntimeError(f"an unfaulted Celery run ended {result.status.value}")
            measured.append(run.end_time - first.start_time)
        self.duration = statistics.median(measured)
        return measured

    def pause(self, schedule: Schedule) -> Outcome:
        """Run one schedule: submit, pause the worker executing it, wake it, check."""
        began = time.monotonic()
        outcome = Outcome(schedule)
        outcome.violations.extend(self.fleet.ensure())
        fault = schedule.faults[0]
        run_id = self.app.submit("settle", steps=STEPS).run_id
        stale: list[Stale] = []
        try:
            first = _first_attempt(self.store, run_id)
        except TimeoutError as exc:
            outcome.violations.append(f"nothing lost: {exc}")
            first = None
        if first is None:
            outcome.faults["after_end"] += 1
        else:
            woken = self._pause(outcome, run_id, first, fault.at, fault.wake, whole=fault.whole)
            stale.extend(woken)
        printed: list[dict[str, Any]] = []
        try:
            result = self.app.wait(run_id, timeout=RUN_WAIT)
            printed.append({"status": result.status.value})
        except WaitTimeoutError:
            outcome.violations.append(f"nothing lost: the run had not ended {RUN_WAIT:.0f} s on")
        for one in stale:
            self._wait_fenced(run_id, one.pid)
        evidence = Evidence(
            run_id,
            [e for e in effects(self.log) if e["run"] == run_id],
            stale=stale,
            printed=printed,
        )
        violations, duplicates, status = check(self.store, evidence)
        outcome.violations.extend(violations)
        outcome.duplicates.update(duplicates)
        outcome.status = status
        outcome.seconds = time.monotonic() - began
        return outcome

    def _pause(
        self,
        outcome: Outcome,
        run_id: str,
        first: AttemptRecord,
        at: float,
        wake: float,
        *,
        whole: bool,
    ) -> list[Stale]:
        pid = owner_pid(first.owner)
        assert pid is not None
        time.sleep(max(0.0, first.start_time + at * self.duration - time.time()))
        run = self.store.get_run(run_id)
        if run is None or run.status.final:
            outcome.faults["after_end"] += 1
            return []
        group = os.getpgid(pid)

        def send(signum: signal.Signals) -> float:
            moment = time.time()
            with contextlib.suppress(ProcessLookupError):
                if whole:
                    os.killpg(group, signum)
                else:
                    os.kill(pid, signum)
            return moment

        send(signal.SIGSTOP)
        if not _stopped(pid):
            outcome.faults["after_end"] += 1
            return []
        outcome.faults["pause"] += 1
        deadline = time.monotonic() + TAKEOVER_WAIT
        while time.monotonic() < deadline:
            run = self.store.get_run(run_id)
            if run is not None and (run.epoch > (first.epoch or 0) or run.status.final):
                break
            time.sleep(0.005)
        if run is None or run.epoch <= (first.epoch or 0):
            send(signal.SIGCONT)  # never taken over (it ended first): it just goes on
            return []
        outcome.faults["pause_taken_over"] += 1
        intents = frozenset(
            s.idempotency_key for s in self.store.load_steps(run_id) if s.idempotency_key
        )
        time.sleep(wake * self.duration)
        return [Stale(pid, send(signal.SIGCONT), intents)]

    def _wait_fenced(self, run_id: str, pid: int) -> None:
        """Give a woken worker the time to find out it was fenced (the checks read the note)."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            mine = [a for a in self.store.list_attempts(run_id) if owner_pid(a.owner) == pid]
            if not mine or mine[-1].fenced_at is not None:
                return
            time.sleep(0.02)


def run_celery(schedules: list[Schedule], root: Path) -> Tally | str:
    """The Celery batch (or why it cannot run here)."""
    from tests.servers import ThrowawayRedis, redis_unavailable

    try:
        import celery  # noqa: F401
    except ImportError:
        return "celery is not installed (pip install 'seawall[celery]')"
    reason = redis_unavailable()
    if reason is not None:
        return reason
    tally = Tally("celery")
    began = time.monotonic()
    with ThrowawayRedis() as redis:
        batch = CeleryBatch(root / "celery", redis.url)
        try:
            batch.fleet.ensure()
            tally.duration = statistics.median(batch.calibrate())
            for schedule in schedules:
                tally.add(batch.pause(schedule))
        finally:
            batch.close()
    tally.seconds = time.monotonic() - began
    return tally
