"""The fault matrix, small: 30 seeded schedules of real kills, stalls, ledger outages and worker
pauses on SQLite, a throwaway PostgreSQL and Celery, with no invariant broken.

The full matrix (its goal: 1,000 SQLite and 200 PostgreSQL schedules) is ``make soak``; this
runs a fixed seed's first schedules and checks that each kind of fault really struck.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from benchmarks.bench_faults import Batch
from benchmarks.fault_driver import PostgresLedgers, SqliteLedgers, Workloads
from benchmarks.fault_schedule import Tally, matrix
from tests.servers import require_throwaway_redis

if TYPE_CHECKING:
    from pathlib import Path

    from tests.servers import ThrowawayPostgres

pytestmark = pytest.mark.crash
SEED = 15
JOBS = 3


def assert_clean(tally: Tally, schedules: int) -> None:
    """Every schedule ran, and none broke an invariant."""
    assert [] == tally.violations
    assert schedules == tally.schedules


def test_sqlite_schedules_keep_every_invariant(tmp_path: Path) -> None:
    """18 schedules on SQLite: kills, stalls taken over and fenced, locks past busy_timeout."""
    batch = Batch(SqliteLedgers(), Workloads(), tmp_path, jobs=JOBS, keep=False)
    tally = batch.run(matrix("sqlite", SEED, 18))
    assert_clean(tally, 18)
    assert all(tally.faults[kind] > 0 for kind in ("kill", "stall_fenced", "sqlite_lock"))


def test_postgres_schedules_keep_every_invariant(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    """8 schedules on one throwaway PostgreSQL: kills, stalls, the run's connections cut off and
    the whole server stopped past the retry window."""
    batch = Batch(PostgresLedgers(throwaway_postgres), Workloads(), tmp_path, jobs=JOBS, keep=False)
    tally = batch.run(matrix("postgres", SEED, 8))
    assert_clean(tally, 8)
    kinds = ("kill", "stall_fenced", "pg_cutoff", "pg_down")
    assert all(tally.faults[kind] > 0 for kind in kinds), tally.faults


def test_celery_worker_pauses_keep_every_invariant(tmp_path: Path) -> None:
    """4 schedules on Celery workers: a paused worker's run is taken over; it wakes fenced."""
    require_throwaway_redis()
    pytest.importorskip("celery")
    from benchmarks.fault_celery import run_celery

    tally = run_celery(matrix("celery", SEED, 4), tmp_path)
    assert isinstance(tally, Tally), tally
    assert_clean(tally, 4)
    assert tally.faults["pause_taken_over"] > 0, tally.faults
