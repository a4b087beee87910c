"""The ledger's own faults are not the agent's failure: an attempt that loses its ledger stops
where it is, ``app.run`` returns (never raises), the run stays resumable, and the in-doubt rule
applies to a call that was in flight. Waiting for the ledger never blocks the event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from seawall import AsyncContext, ErrorClass, FailureCause, RunStatus, Seawall
from seawall.ledger import DeadLetterQuery, RunQuery

from .guarantees_app import LEASE, STEPS, build, effects

if TYPE_CHECKING:
    from tests.servers import ThrowawayPostgres

pytestmark = pytest.mark.crash
ROOT = Path(__file__).resolve().parents[2]


def start_child(ledger: str, log: Path, mode: str, at: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash.guarantees_app", ledger, str(log), mode, str(at)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_at(log: Path, child: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until the child reached its waiting point (it wrote LOG.at)."""
    deadline = time.monotonic() + timeout
    while not log.with_suffix(".at").exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never reached its waiting point"
        time.sleep(0.01)


def finish(child: subprocess.Popen[str], log: Path) -> dict[str, object]:
    """Let the child go on, wait for it, and return the result it printed (it must not raise)."""
    log.with_suffix(".go").touch()
    out, err = child.communicate(timeout=60)
    assert 0 == child.returncode, err
    printed: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return printed


def resume_later(app: Seawall) -> list[object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        results = app.resume()
        if results:
            return list(results)
        time.sleep(LEASE / 4)
    raise AssertionError("the run never became resumable")


def test_postgres_down_after_a_charge_leaves_it_in_doubt_not_failed(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres, throwaway_postgres_ledger: str
) -> None:
    """PostgreSQL stops after charge 3 took effect: the attempt stops, app.run returns, and once
    the server is back the resumed run reports the charge in doubt (never `exception`)."""
    ledger = f"{throwaway_postgres_ledger}&retry_timeout=1&pool_timeout=1"
    log = tmp_path / "effects.log"
    child = start_child(ledger, log, "wait-after-charge", 3)
    wait_at(log, child)
    with throwaway_postgres.refusing():
        printed = finish(child, log)  # its recording of charge 3 finds no server for 1 s
    assert (RunStatus.RUNNING.value, FailureCause.LEDGER_UNAVAILABLE.value) == (
        printed["status"],
        printed["failure_cause"],
    )
    app = build(ledger, log)
    try:
        [run] = app.store.list_runs(RunQuery())
        assert RunStatus.RUNNING == run.status  # not finalised as the agent's failure
        [result] = resume_later(app)
        assert (RunStatus.FAILED, FailureCause.IN_DOUBT, ErrorClass.PARTIAL_WRITE) == (
            result.status,  # type: ignore[attr-defined]
            result.failure_cause,  # type: ignore[attr-defined]
            result.error_class,  # type: ignore[attr-defined]
        )
        [entry] = app.store.list_dead_letters(DeadLetterQuery())
        assert FailureCause.IN_DOUBT.value == entry.failure_cause
        assert [1, 2, 3] == [e["step"] for e in effects(log)]  # charge 3 once, not hidden
    finally:
        app.close()


def test_sqlite_locked_past_the_busy_timeout_returns_and_resumes(tmp_path: Path) -> None:
    """Another process holds the write lock past busy_timeout mid-run: app.run returns a running
    result (it does not raise), the run is not failed, and it resumes to the end after."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    log = tmp_path / "effects.log"
    build(ledger, log).close()  # create the ledger file
    child = start_child(ledger, log, "wait-in-lookup", 3)
    wait_at(log, child)
    locker = sqlite3.connect(str(tmp_path / "ledger.db"), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        log.with_suffix(".go").touch()
        out, err = child.communicate(timeout=60)  # busy_timeout is 5 s: the lock outlasts it
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert 0 == child.returncode, err
    printed = json.loads(out.strip().splitlines()[-1])
    assert (RunStatus.RUNNING.value, FailureCause.LEDGER_UNAVAILABLE.value) == (
        printed["status"],
        printed["failure_cause"],
    )
    app = build(ledger, log)
    try:
        [result] = resume_later(app)
        assert RunStatus.SUCCEEDED == result.status  # type: ignore[attr-defined]
        assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
    finally:
        app.close()


def test_waiting_for_postgres_never_blocks_the_event_loop(
    throwaway_postgres: ThrowawayPostgres, throwaway_postgres_ledger: str
) -> None:
    """While the server is away for 2 s, a ticker on the same loop keeps ticking every 10 ms."""

    async def scenario() -> tuple[float, object]:
        app = Seawall(f"{throwaway_postgres_ledger}&retry_timeout=2&pool_timeout=1", lease=LEASE)
        stopped = asyncio.Event()

        @app.tool(mutating=True)
        async def charge(amount: int) -> int:
            return amount

        @app.agent
        async def agent(ctx: AsyncContext) -> int:
            await ctx.call(charge, 1)
            throwaway_postgres.stop("fast")
            stopped.set()
            return int(await ctx.call(charge, 2))  # its intent waits for the ledger

        gaps: list[float] = []

        async def ticker() -> None:
            await stopped.wait()
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticking = asyncio.ensure_future(ticker())
        try:
            result = await app.arun(agent)
        finally:
            ticking.cancel()
            throwaway_postgres.start()
            app.close()
        return max(gaps), result

    widest, result = asyncio.run(scenario())
    assert RunStatus.RUNNING == result.status  # type: ignore[attr-defined]
    assert FailureCause.LEDGER_UNAVAILABLE == result.failure_cause  # type: ignore[attr-defined]
    assert widest < 0.5, f"the loop was blocked for {widest:.2f} s"
