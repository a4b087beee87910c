"""The fault matrix: seeded schedules of kills, stalls, ledger outages and worker pauses.

Each schedule runs the workload of ``benchmarks.fault_workload`` (a multi-step agent mixing
read-only calls, non-idempotent and idempotent mutating calls, whose effects go to an external
log) on a fresh ledger, under faults drawn from its seed at moments inside the run's measured
duration (see ``benchmarks.fault_schedule``), then resumes the run until it ends and checks the
invariants from the effect log and the ledger (see ``benchmarks.fault_checks``):

- SQLite: a fresh file per schedule; SIGKILL, SIGSTOP past the lease with a competing resumer
  then SIGCONT, and a write lock held past ``busy_timeout``;
- PostgreSQL: a fresh schema per schedule on ONE throwaway server; the same, with outages that
  terminate the run's connections and refuse new ones for longer than the retry window (the
  schedule's role cut off, or the whole server stopped: those schedules run alone);
- Celery: workers on a throwaway Redis; a worker (its pool process, or all of it) paused past
  the lease, another worker takes over, then the paused one wakes.

Schedules run in parallel (``--jobs``, sized for two cores). It prints, per store: schedules,
kills, stalls, outages, worker pauses, duplicates by kind, final statuses, violations (each with
the line that replays its schedule) and wall time; it exits 1 on any violation.

Usage::

    python -m benchmarks.bench_faults                      # the goal: 1,000 / 200 / 20
    python -m benchmarks.bench_faults --quick              # what `make bench` runs
    python -m benchmarks.bench_faults --sqlite 0 --postgres 0 --celery 0 ...
    python -m benchmarks.bench_faults --store sqlite --seed 1 --only 17   # one schedule
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._harness import TMPDIR_ENV
from benchmarks.fault_driver import (
    PostgresLedgers,
    SqliteLedgers,
    Workloads,
    run_schedule,
)
from benchmarks.fault_schedule import Outcome, Schedule, Tally, matrix

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from benchmarks.fault_driver import Ledgers

GOAL: dict[str, int] = {"sqlite": 1000, "postgres": 200, "celery": 20}
QUICK: dict[str, int] = {"sqlite": 100, "postgres": 30, "celery": 4}
CALIBRATION_RUNS = 4
"""Unfaulted runs measured before a store's schedules (the median of the last ``WINDOW`` sets
the moments of its faults)."""
RECALIBRATE = 10
"""An unfaulted run is measured after every this many schedules (the machine's load moves)."""
WINDOW = 6


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="Run the fault matrix.")
    parser.add_argument("--quick", action="store_true", help="the smaller matrix of make bench")
    for store in GOAL:
        parser.add_argument(f"--{store}", type=int, default=None, help=f"{store} schedules")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=4, help="schedules in flight at once")
    parser.add_argument("--store", choices=list(GOAL), help="with --only: the store")
    parser.add_argument("--only", type=int, default=None, help="run only this schedule index")
    parser.add_argument("--keep", action="store_true", help="keep every schedule's folder")
    return parser.parse_args(list(argv))


def counts(args: argparse.Namespace) -> dict[str, int]:
    """Schedules per store."""
    base = QUICK if args.quick else GOAL
    chosen = {store: getattr(args, store) for store in GOAL}
    if args.only is not None:
        return {store: 1 if store == args.store else 0 for store in GOAL}
    return {store: base[store] if n is None else n for store, n in chosen.items()}


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    """A folder for the schedules; removed at the end unless kept (or a schedule broke)."""
    import os

    folder = Path(tempfile.mkdtemp(prefix="seawall-faults-", dir=os.environ.get(TMPDIR_ENV)))
    yield folder
    if not keep and not any(folder.glob("*/*/effects.log")):
        shutil.rmtree(folder, ignore_errors=True)


class Batch:
    """The schedules of one store, run ``jobs`` at a time."""

    def __init__(
        self, ledgers: Ledgers, workloads: Workloads, root: Path, *, jobs: int, keep: bool
    ) -> None:
        self.ledgers = ledgers
        self.workloads = workloads
        self.root = root / ledgers.store
        self.jobs = jobs
        self.keep = keep
        self.tally = Tally(ledgers.store)
        self.calibrations = 0
        self.durations: deque[float] = deque(maxlen=WINDOW)
        self.measured: list[float] = []
        self.duration = 0.0

    def calibrate(self) -> None:
        """Measure unfaulted runs, ``jobs`` at a time (their own load), to time the faults."""
        runs = [self._calibration() for _ in range(CALIBRATION_RUNS)]
        with ThreadPoolExecutor(self.jobs) as pool:
            for outcome in pool.map(self._one, runs):
                self._measured(outcome)
        if not self.durations:
            raise RuntimeError(f"unfaulted runs failed: {self.tally.violations[:3]}")

    def _calibration(self) -> Schedule:
        self.calibrations += 1
        return Schedule(self.ledgers.store, 0, -self.calibrations, ())

    def _measured(self, outcome: Outcome) -> None:
        """Count an unfaulted run's duration; the faults' moments follow the median of the last."""
        if outcome.violations:
            self.tally.add(outcome)  # a broken invariant counts, faults or not
        if outcome.duration is not None:
            self.durations.append(outcome.duration)
            self.measured.append(outcome.duration)
            self.duration = statistics.median(self.durations)

    def _one(self, schedule: Schedule) -> Outcome:
        folder = self.root / f"{schedule.index}"
        outcome = run_schedule(schedule, self.ledgers, self.workloads, self.duration, folder)
        if outcome.violations:
            print(f"  VIOLATION {schedule.describe()}: kept in {folder}", flush=True)
        elif not self.keep:
            shutil.rmtree(folder, ignore_errors=True)
        return outcome

    def run(self, schedules: list[Schedule]) -> Tally:
        """Run the schedules (those that stop the shared server alone, at the end).

        An unfaulted run is measured every ``RECALIBRATE`` schedules, among them, so the faults'
        moments follow the machine's load.
        """
        began = time.monotonic()
        self.calibrate()
        shared: list[Schedule] = []
        for index, schedule in enumerate(s for s in schedules if not s.exclusive):
            if index and index % RECALIBRATE == 0:
                shared.append(self._calibration())
            shared.append(schedule)
        alone = [s for s in schedules if s.exclusive]
        with ThreadPoolExecutor(self.jobs) as pool:
            for outcome in pool.map(self._one, shared):
                self._count(outcome, len(schedules), began)
        for schedule in alone:
            self._count(self._one(schedule), len(schedules), began)
        self.tally.seconds = time.monotonic() - began
        self.tally.duration = statistics.median(self.measured)
        return self.tally

    def _count(self, outcome: Outcome, total: int, began: float) -> None:
        if not outcome.schedule.faults:
            self._measured(outcome)
            return
        self.tally.add(outcome)
        done = self.tally.schedules
        if done % 50 == 0 or done == total:
            print(
                f"  {self.tally.store}: {done:,}/{total:,} schedules, "
                f"{len(self.tally.violations)} violation(s), {time.monotonic() - began:.0f} s",
                flush=True,
            )


def run_postgres(
    count: int, args: argparse.Namespace, workloads: Workloads, root: Path
) -> Tally | str:
    """The PostgreSQL batch on one throwaway server (or why it cannot run here)."""
    from tests.servers import ThrowawayPostgres, postgres_unavailable

    reason = postgres_unavailable()
    if reason is not None:
        return reason
    with ThrowawayPostgres({"max_connections": "200"}) as server:
        batch = Batch(PostgresLedgers(server), workloads, root, jobs=args.jobs, keep=args.keep)
        return batch.run(matrix("postgres", args.seed, count, args.only))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix; print the counts; return 1 on any violation."""
    args = parse(sys.argv[1:] if argv is None else argv)
    # The checks' own pools report the connections an outage broke: expected, not news.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    wanted = counts(args)
    print(
        f"\nFault matrix (seed {args.seed}, {args.jobs} at a time): "
        + ", ".join(f"{n:,} {store}" for store, n in wanted.items())
        + " schedules",
        flush=True,
    )
    began = time.monotonic()
    tallies: list[Tally] = []
    skipped: list[str] = []
    workloads = Workloads()
    with _workdir(args.keep) as root:
        if wanted["sqlite"]:
            batch = Batch(SqliteLedgers(), workloads, root, jobs=args.jobs, keep=args.keep)
            tallies.append(batch.run(matrix("sqlite", args.seed, wanted["sqlite"], args.only)))
        if wanted["postgres"]:
            found = run_postgres(wanted["postgres"], args, workloads, root)
            if isinstance(found, str):
                skipped.append(f"postgres: skipped ({found})")
            else:
                tallies.append(found)
        if wanted["celery"]:
            from benchmarks.fault_celery import run_celery

            celery = run_celery(matrix("celery", args.seed, wanted["celery"], args.only), root)
            if isinstance(celery, str):
                skipped.append(f"celery: skipped ({celery})")
            else:
                tallies.append(celery)
    print()
    for tally in tallies:
        print("\n".join(tally.lines()))
    for line in skipped:
        print(line)
    violations = [v for tally in tallies for v in tally.violations]
    for violation in violations:
        print(f"VIOLATION {violation}")
    total = sum(t.schedules for t in tallies)
    print(
        f"total: {total:,} schedules, {len(violations)} violation(s), {time.monotonic() - began:.0f} s"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
