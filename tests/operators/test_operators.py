"""Stop means stop, and hand-offs decided by a person in another process."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seawall import (
    AsyncContext,
    ErrorClass,
    FailureCause,
    HandOffDecidedError,
    HandOffNotFoundError,
    RunStatus,
    Seawall,
)
from seawall.cli import cli

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers

APP_FILE = Path(__file__).with_name("ops_app.py")


@pytest.fixture
def ops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The operator-test app, importable as `ops_app` in this process and in children."""
    monkeypatch.setenv("SEAWALL_OPS_WORK", str(tmp_path))
    monkeypatch.setattr(sys, "path", [str(APP_FILE.parent), *sys.path])
    sys.modules.pop("ops_app", None)
    module = importlib.import_module("ops_app")
    yield module
    module.app.close()
    sys.modules.pop("ops_app", None)


def child(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SEAWALL_OPS_WORK": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, str(APP_FILE), *args], env=env, stdout=subprocess.PIPE, text=True
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_cancel_from_another_process_stops_mutations_and_compensates(tmp_path: Path, ops) -> None:
    """Cancelled mid-loop: at most the in-flight call completes, none starts after, undo runs."""
    with child(tmp_path, "janitor", "200") as proc:
        deadline = time.monotonic() + 20
        while len(lines(tmp_path / "calls.log")) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        [run] = ops.app.ledger.runs()
        assert ops.app.cancel(run.run_id, reason="code freeze")
        cancelled_at = time.time()
        assert proc.stdout is not None
        assert "cancelled" == proc.stdout.readline().strip()
        proc.wait(timeout=10)
    calls = lines(tmp_path / "calls.log")
    assert 5 <= len(calls) < 200
    started_after = [c for c in calls if c["started"] > cancelled_at]
    assert len(started_after) <= 1
    result = ops.app.ledger.result(run.run_id)
    assert RunStatus.CANCELLED == result.status
    assert FailureCause.CANCELLED == result.failure_cause
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert "code freeze" in result.error["message"]
    completed = [s for s in ops.app.ledger.steps(run.run_id) if s.record.status == "completed"]
    assert len(calls) == len(completed)
    undone = [u["item"] for u in lines(tmp_path / "undo.log")]
    assert sorted(undone, reverse=True) == undone
    assert [c["item"] for c in calls][::-1] == undone


def test_cancel_of_an_ended_run_changes_nothing(ops) -> None:
    """Cancelling a finished run reports that nothing was cancelled."""
    result = ops.app.run("janitor", items=1)
    assert not ops.app.cancel(result.run_id)
    assert RunStatus.SUCCEEDED == ops.app.ledger.run(result.run_id).status


def test_async_agent_is_cancelled_as_a_task(ledger_url: str) -> None:
    """An async agent waiting on I/O is cancelled as a task, promptly."""
    app = Seawall(ledger_url, lease=3.0)

    @app.agent
    async def waiter(ctx: AsyncContext) -> None:
        await asyncio.sleep(30)

    def cancel_soon() -> None:
        deadline = time.monotonic() + 5
        while not app.ledger.runs() and time.monotonic() < deadline:
            time.sleep(0.01)
        app.cancel(app.ledger.runs()[0].run_id, reason="stop")

    try:
        thread = threading.Thread(target=cancel_soon)
        thread.start()
        start = time.monotonic()
        result = app.run(waiter)
        thread.join()
        assert RunStatus.CANCELLED == result.status
        assert time.monotonic() - start < 5
        assert ErrorClass.CLEAN_ABORT == result.error_class
    finally:
        app.close()


def test_handoff_approved_in_a_new_process_commits_the_run(tmp_path: Path, ops) -> None:
    """A run parked for a person is approved after its process exited; its artifacts commit."""
    with child(tmp_path, "writer", "Quarterly report") as proc:
        assert proc.stdout is not None
        assert "awaiting_human" == proc.stdout.readline().strip()
        proc.wait(timeout=10)
    [handoff] = ops.app.handoffs.list()
    assert "verification_failed" == handoff.kind
    run = ops.app.ledger.run(handoff.run_id)
    assert RunStatus.AWAITING_HUMAN == run.status
    assert run.lease_owner is None
    ops.app.gc()  # a parked run's staging is kept for the approval
    result = ops.app.handoffs.approve(handoff.handoff_id, by="ana", note="checked by hand")
    assert RunStatus.SUCCEEDED == result.status
    assert {"title": "Quarterly report", "approved_by_rule": False} == result.output
    assert ["article.md"] == [a.name for a in ops.app.ledger.artifacts(handoff.run_id)]
    decided = ops.app.handoffs.get(handoff.handoff_id)
    assert ("decided", "approved", "ana") == (decided.status, decided.decision, decided.decided_by)
    with pytest.raises(HandOffDecidedError):
        ops.app.handoffs.approve(handoff.handoff_id)


def test_handoff_rejected_fails_the_run(ops) -> None:
    """Rejecting fails the run as silent drift with the reason; artifacts are not committed."""
    parked = ops.app.run("writer", title="Draft")
    [handoff] = ops.app.handoffs.list(run_id=parked.run_id)
    result = ops.app.handoffs.reject(handoff.handoff_id, reason="wrong figures", by="lee")
    assert RunStatus.FAILED == result.status
    assert ErrorClass.SILENT_DRIFT == result.error_class
    assert "wrong figures" in result.error["message"]
    assert [] == ops.app.ledger.artifacts(parked.run_id)


def test_unknown_handoff_id(ops) -> None:
    """Deciding a hand-off that does not exist is a clear error."""
    with pytest.raises(HandOffNotFoundError, match="nope"):
        ops.app.handoffs.approve("nope")


def test_cli_handoffs_edit_is_verified_again(
    tmp_path: Path, ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seawall handoffs approve --edit` re-verifies: a failing edit exits 1 and stays open."""
    monkeypatch.chdir(APP_FILE.parent)
    parked = ops.app.run("writer", title="Draft")
    [handoff] = ops.app.handoffs.list(run_id=parked.run_id)
    runner = CliRunner()
    listed = runner.invoke(cli, ["handoffs", "list", "--ledger", ops.LEDGER, "--json"])
    assert [handoff.handoff_id] == [h["handoff_id"] for h in json.loads(listed.output)]
    shown = runner.invoke(
        cli, ["handoffs", "show", handoff.handoff_id, "--ledger", ops.LEDGER, "--json"]
    )
    assert "Draft" == json.loads(shown.output)["subject"]["output"]["title"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"title": "Fixed", "approved_by_rule": False}))
    refused = runner.invoke(
        cli, ["handoffs", "approve", handoff.handoff_id, "--app", "ops_app:app", "--edit", str(bad)]
    )
    assert 1 == refused.exit_code
    assert "open" == ops.app.handoffs.get(handoff.handoff_id).status
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"title": "Fixed", "approved_by_rule": True}))
    approved = runner.invoke(
        cli,
        [
            "handoffs",
            "approve",
            handoff.handoff_id,
            "--app",
            "ops_app:app",
            "--edit",
            str(good),
            "--json",
        ],
    )
    assert 0 == approved.exit_code, approved.output
    assert "succeeded" == json.loads(approved.output)["status"]
    assert {"title": "Fixed", "approved_by_rule": True} == ops.app.ledger.output(parked.run_id)
    again = runner.invoke(
        cli, ["handoffs", "reject", handoff.handoff_id, "--app", "ops_app:app", "--reason", "x"]
    )
    assert 1 == again.exit_code
    assert "handoff_decided" in again.output


def test_cli_cancel(ops) -> None:
    """`seawall cancel` on an ended run says so and exits 0."""
    result = ops.app.run("janitor", items=1)
    out = CliRunner().invoke(cli, ["cancel", result.run_id, "--ledger", ops.LEDGER])
    assert 0 == out.exit_code
    assert "already ended" in out.output
