"""SIGKILL a child process mid-run, resume in this process, and check ledger and side effects."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seawall import ErrorClass, FailureCause, RunStatus, Seawall

from .workload import STEPS, build_app

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers

pytestmark = pytest.mark.crash
WORKLOAD = Path(__file__).with_name("workload.py")


def run_child(ledger: str, log: Path, mode: str, kill_at: int, durability: str = "crash") -> int:
    """Run the workload in a child process; return its exit code (negative: killed by signal)."""
    done = subprocess.run(
        [sys.executable, str(WORKLOAD), ledger, str(log), mode, str(kill_at), durability],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode


def resume_when_lapsed(app: Seawall, timeout: float = 10.0) -> list:
    """Call app.resume() until it takes over a run (the child's lease must lapse first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = app.resume()
        if results:
            return results
        time.sleep(0.1)
    raise AssertionError("no run became resumable")


def logged_steps(log: Path) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line]


@pytest.mark.parametrize("durability", ["crash", "power"])
def test_killed_before_step_25_resumes_with_each_side_effect_once(
    tmp_path: Path, ledger_url: str, durability: str
) -> None:
    """A run killed at step 25 resumes and every step's side effect appears exactly once."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == run_child(ledger_url, log, "before-step", 25, durability)
    assert list(range(1, 25)) == logged_steps(log)

    app = build_app(ledger_url, log, durability=durability)
    try:
        [result] = resume_when_lapsed(app)
        assert RunStatus.SUCCEEDED == result.status
        assert list(range(1, STEPS + 1)) == logged_steps(log)
        attempts = app.ledger.attempts(result.run_id)
        assert ["failed", "succeeded"] == [a.status for a in attempts]
        assert FailureCause.CRASHED == attempts[0].failure_cause
        assert ErrorClass.PARTIAL_WRITE == attempts[0].error_class
        steps = app.ledger.steps(result.run_id)
        mutating = [s for s in steps if s.record.mutating]
        assert STEPS == len(mutating)
        assert all(s.record.status == "completed" for s in steps)
        assert list(range(1, len(steps) + 1)) == [s.record.seq for s in steps]
        # Mutating steps 1-24 were written by attempt 1 and served, never re-run.
        assert {1} == {s.record.attempt for s in mutating[:24]}
        assert {2} == {s.record.attempt for s in mutating[24:]}
    finally:
        app.close()


def test_killed_between_side_effect_and_journal_reissues_idempotent_tool(
    tmp_path: Path, ledger_url: str
) -> None:
    """An in-doubt step of an idempotent tool is re-issued with the same key; effects stay once."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == run_child(ledger_url, log, "after-effect", 25)
    assert list(range(1, 26)) == logged_steps(log)

    app = build_app(ledger_url, log)
    try:
        [result] = resume_when_lapsed(app)
        assert RunStatus.SUCCEEDED == result.status
        assert list(range(1, STEPS + 1)) == logged_steps(log)
        step25 = next(
            s for s in app.ledger.steps(result.run_id) if s.record.mutating and s.request[1] == [25]
        )
        assert "completed" == step25.record.status
        assert 2 == step25.record.attempt
        assert step25.record.idempotency_key.startswith(result.run_id)
    finally:
        app.close()


def test_killed_between_side_effect_and_journal_stops_plain_tool_in_doubt(
    tmp_path: Path, ledger_url: str
) -> None:
    """An in-doubt step of a non-idempotent tool is never re-issued: the run stops in_doubt."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == run_child(ledger_url, log, "after-effect-plain", 25)

    app = build_app(ledger_url, log, mode="after-effect-plain")
    try:
        [result] = resume_when_lapsed(app)
        assert RunStatus.FAILED == result.status
        assert FailureCause.IN_DOUBT == result.failure_cause
        assert ErrorClass.PARTIAL_WRITE == result.error_class
        assert "step" in result.error["message"]
        assert result.error["tool"] == "append_plain"
        assert list(range(1, 26)) == logged_steps(log)
        record = app.ledger.run(result.run_id)
        assert record.end_time is not None
        assert record.lease_owner is None
    finally:
        app.close()


def test_read_only_steps_may_rerun_but_mutating_never(tmp_path: Path, ledger_url: str) -> None:
    """After a crash, only read-only calls are allowed to run again."""
    log = tmp_path / "effects.log"
    run_child(ledger_url, log, "before-step", 40)
    app = build_app(ledger_url, log)
    try:
        [result] = resume_when_lapsed(app)
        assert RunStatus.SUCCEEDED == result.status
        reads = [int(x) for x in log.with_suffix(".reads").read_text().split()]
        assert set(range(1, STEPS + 1)) == set(reads)
        assert list(range(1, STEPS + 1)) == logged_steps(log)
        # Each mutating step's intent flushed the buffered read before it: no read re-ran.
        assert sorted(reads) == list(range(1, STEPS + 1))
    finally:
        app.close()


def test_live_run_is_not_resumed_by_another_process(tmp_path: Path, ledger_url: str) -> None:
    """While the owner renews its lease, resume() in another process leaves the run alone."""
    script = tmp_path / "slow.py"
    script.write_text(
        "import sys, time\n"
        "from seawall import Seawall\n"
        "app = Seawall(sys.argv[1], lease=0.5)\n"
        "@app.agent(name='slow')\n"
        "def slow(ctx):\n"
        "    print('started', flush=True)\n"
        "    time.sleep(2.0)\n"
        "    return 'done'\n"
        "print(app.run('slow').status.value, flush=True)\n"
    )
    with subprocess.Popen(
        [sys.executable, str(script), ledger_url], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        assert "started" == child.stdout.readline().strip()
        app = Seawall(ledger_url, lease=0.5)

        @app.agent(name="slow")
        def slow(ctx):
            return "stolen"

        try:
            deadline = time.monotonic() + 1.2
            while time.monotonic() < deadline:
                assert [] == app.resume()
                time.sleep(0.1)
        finally:
            app.close()
        assert "succeeded" == child.stdout.readline().strip()
        child.wait(timeout=10)


def test_cli_resume_finishes_a_killed_run(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seawall resume --app module:attr --json` takes over a killed run and reports it."""
    from typer.testing import CliRunner

    from seawall.cli import cli

    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == run_child(ledger_url, log, "before-step", 10)
    (tmp_path / "crashapp.py").write_text(
        "import sys\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(WORKLOAD.parent)!r})\n"
        "from workload import build_app\n"
        f"app = build_app({ledger_url!r}, Path({str(log)!r}))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    time.sleep(0.8)
    result = CliRunner().invoke(cli, ["resume", "--app", "crashapp:app", "--json"])
    assert 0 == result.exit_code, result.output
    [resumed] = json.loads(result.output)
    assert "succeeded" == resumed["status"]
    assert 2 == resumed["attempts"]
    assert list(range(1, STEPS + 1)) == logged_steps(log)
    sys.modules.pop("crashapp").app.close()
    sys.modules.pop("workload", None)
