"""One owner at a time: a child stalled past its lease (SIGSTOP) while this process takes its run
over wakes up (SIGCONT) and is fenced: no charge repeated, no row of the new owner replaced, no
final status overwritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from seawall import FailureCause, RunResult, RunStatus, Seawall
from seawall.ledger import RunQuery

from .guarantees_app import LEASE, STEPS, build, effects, store_state

LEDGERS = ("sqlite", "postgres")
pytestmark = pytest.mark.crash
ROOT = Path(__file__).resolve().parents[2]


def start_child(ledger: str, log: Path, mode: str, at: int = 0) -> subprocess.Popen[str]:
    """Start the invoices run in a child process that faults itself per ``mode``."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash.guarantees_app", ledger, str(log), mode, str(at)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_stopped(child: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until the child stopped itself (state ``T`` in /proc); fail if it exited instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        state = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.01)
    raise AssertionError("the child never stopped itself")


def the_run(app: Seawall) -> str:
    [run] = app.store.list_runs(RunQuery())
    return run.run_id


def take_over(app: Seawall, run_id: str) -> RunResult:
    """Resume the run as soon as its lease lapses (the stalled owner cannot renew it)."""
    deadline = time.monotonic() + 10 * LEASE + 10
    while time.monotonic() < deadline:
        results = app.resume()
        if results:
            [result] = results
            assert run_id == result.run_id
            return result
        time.sleep(LEASE / 4)
    raise AssertionError("the run never became resumable")


def wake(child: subprocess.Popen[str]) -> dict[str, Any]:
    """SIGCONT the child, wait for it to exit, and return the result it printed."""
    os.kill(child.pid, signal.SIGCONT)
    out, err = child.communicate(timeout=60)
    assert 0 == child.returncode, err
    printed: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return printed


@pytest.mark.parametrize(
    ("mode", "at"),
    [("stop-in-lookup", 3), ("stop-after-charge", 3), ("stop-before-finish", 0)],
)
def test_a_stale_owner_is_fenced_and_repeats_nothing(
    tmp_path: Path, ledger_url: str, mode: str, at: int
) -> None:
    """The stalled owner wakes after a takeover: it writes nothing and charges nothing again."""
    log = tmp_path / "effects.log"
    child = start_child(ledger_url, log, mode, at)
    wait_stopped(child)  # the fault happened: the owner is stalled at the dangerous moment
    app = build(ledger_url, log)
    try:
        run_id = the_run(app)
        taken = take_over(app, run_id)
        assert 2 == app.ledger.run(run_id).epoch  # a second owner took the run over
        ledger_before = (
            app.ledger.run(run_id),
            [(s.record.seq, s.record.attempt, s.record.status) for s in app.ledger.steps(run_id)],
        )
        printed = wake(child)

        # Nothing the stale owner did after waking reached the ledger...
        after = app.ledger.run(run_id)
        steps_after = [
            (s.record.seq, s.record.attempt, s.record.status) for s in app.ledger.steps(run_id)
        ]
        assert ledger_before == (after, steps_after)
        assert taken.status == after.status
        # ...it noticed, and said so on its own attempt row...
        stale = app.ledger.attempts(run_id)[0]
        assert stale.fenced_at is not None
        assert FailureCause.CRASHED == stale.failure_cause
        assert printed["status"] == after.status.value or (
            printed["failure_cause"] == FailureCause.LEASE_LOST.value
        )
        # ...and the system of record saw each charge at most once, under one key per step.
        charged = Counter(e["key"] for e in effects(log))
        assert all(count == 1 for count in charged.values()), charged
        assert sorted({e["step"] for e in effects(log)}) == sorted(e["step"] for e in effects(log))
        if mode == "stop-after-charge":
            # Charge 3 happened, its result unrecorded: the new owner may not re-issue it.
            assert RunStatus.FAILED == after.status
            assert FailureCause.IN_DOUBT == after.failure_cause
            assert [1, 2, 3] == [e["step"] for e in effects(log)]
        else:
            assert RunStatus.SUCCEEDED == after.status
            assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        app.close()


def test_a_stale_call_in_flight_is_refused_by_a_store_that_checks_fencing_tokens(
    tmp_path: Path, ledger_url: str
) -> None:
    """The owner stalls inside an idempotent publish, holding token 1; the new owner re-issues it
    with token 2; the woken call's write is refused by the store, and its result by the ledger."""
    log = tmp_path / "effects.log"
    child = start_child(ledger_url, log, "stop-in-publish")
    wait_stopped(child)  # stalled inside the tool, its token already handed to it
    app = build(ledger_url, log)
    try:
        run_id = the_run(app)
        taken = take_over(app, run_id)
        assert RunStatus.SUCCEEDED == taken.status
        assert True is taken.output
        printed = wake(child)
        store = store_state(log.with_suffix(".store"))
        assert [("quarterly", 2)] == [(w["text"], w["token"]) for w in store["writes"]]
        assert [("quarterly", 1, child.pid)] == [
            (r["text"], r["token"], r["pid"]) for r in store["refused"]
        ]
        after = app.ledger.run(run_id)
        assert (RunStatus.SUCCEEDED, 2) == (after.status, after.epoch)
        assert app.ledger.attempts(run_id)[0].fenced_at is not None
        # The stale caller's app.run reports the run as its successor finished it.
        assert {"run_id": run_id, "status": "succeeded", "failure_cause": None} == printed
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        app.close()
