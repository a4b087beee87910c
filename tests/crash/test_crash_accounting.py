"""Crashes are not the agent's errors: SIGKILLed processes spend no retry budget, and a run that
kills its process at the same point again and again stops as ``crash_loop``."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from seawall import ErrorClass, FailureCause, RunStatus
from seawall.ledger import DeadLetterQuery

from .guarantees_app import STEPS, build, child, effects, lapse, the_run

LEDGERS = ("sqlite", "postgres")
pytestmark = pytest.mark.crash


def test_three_crashes_with_progress_spend_no_retry_budget(tmp_path: Path, ledger_url: str) -> None:
    """Three SIGKILLs at steps 2, 3 and 5 under the default Retry(attempts=3): the run succeeds."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", 2)
    app = build(ledger_url, log)
    try:
        run_id = the_run(app)
        for at in (3, 5):
            lapse()
            assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", at, run_id)
        lapse()
        [result] = app.resume()
        assert RunStatus.SUCCEEDED == result.status
        attempts = app.ledger.attempts(run_id)
        assert [FailureCause.CRASHED] * 3 == [a.failure_cause for a in attempts[:3]]
        assert "succeeded" == attempts[3].status
        assert all("spends none of the retry budget" in (a.decision or "") for a in attempts[:3])
        assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
    finally:
        app.close()


def test_a_run_that_dies_at_the_same_point_stops_as_a_crash_loop(
    tmp_path: Path, ledger_url: str
) -> None:
    """Killed at step 3 by every process that takes it (no progress): it stops, in the DLQ."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", 3)
    app = build(ledger_url, log)
    try:
        run_id = the_run(app)
        for _ in range(3):
            lapse()
            assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", 3, run_id)
        lapse()
        [result] = app.resume()
        assert RunStatus.FAILED == result.status
        assert FailureCause.CRASH_LOOP == result.failure_cause
        assert ErrorClass.PARTIAL_WRITE == result.error_class  # charges 1 and 2 happened
        [entry] = app.store.list_dead_letters(DeadLetterQuery())
        assert (run_id, FailureCause.CRASH_LOOP.value) == (entry.run_id, entry.failure_cause)
        assert 4 == len(app.ledger.attempts(run_id))
        assert [1, 2] == [e["step"] for e in effects(log)]  # no charge repeated by a takeover
    finally:
        app.close()
