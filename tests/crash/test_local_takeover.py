"""A live local process takes over a SIGKILLed process's run by itself, without `seawall resume`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from seawall import Context, ErrorClass, FailureCause, RunStatus

from .test_crash_resume import logged_steps, run_child
from .workload import STEPS, build_app

LEDGERS = ("sqlite", "postgres")

pytestmark = pytest.mark.crash


def test_a_busy_process_takes_over_a_killed_process_run(tmp_path: Path, ledger_url: str) -> None:
    """A process with a run in flight resumes the dead one's run by itself, each effect once."""
    log = tmp_path / "effects.log"
    assert run_child(ledger_url, log, "before-step", 25) < 0
    app = build_app(ledger_url, log)
    gate = threading.Event()

    @app.agent(name="busy")
    def busy(ctx: Context) -> str:
        gate.wait(30)
        return "done"

    try:
        handle = app.submit(busy)
        [dead] = app.ledger.runs(agent="fifty")
        result = app.wait(dead.run_id, timeout=30)
        gate.set()
        assert RunStatus.SUCCEEDED == result.status
        assert list(range(1, STEPS + 1)) == logged_steps(log)
        crashed, finished = result.attempts
        assert (FailureCause.CRASHED, ErrorClass.PARTIAL_WRITE) == (
            crashed.failure_cause,
            crashed.error_class,
        )
        assert app.runtime.leases.owner == finished.owner
        assert RunStatus.SUCCEEDED == handle.result(timeout=30).status
    finally:
        gate.set()
        app.close()
