"""SIGKILL during staging, at every step of the commit, and during compensations."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import seawall.artifacts
from seawall import ArtifactError, ErrorClass, RunStatus, Seawall

from .artifact_workload import FILES, LEASE, build_app

pytestmark = pytest.mark.crash
WORKLOAD = Path(__file__).with_name("artifact_workload.py")
LOCAL_POINTS = [
    "commit.sealed",
    "commit.intent",
    "commit.publish",
    "commit.renamed",
    "commit.published",
]
FSSPEC_POINTS = [
    "commit.sealed",
    "commit.intent",
    "commit.upload.0",
    "commit.upload.4",
    "commit.manifest",
    "commit.renamed",
]


def run_child(
    ledger: str, workdir: Path, destination: str, mode: str, point: str | None = None
) -> int:
    args = [sys.executable, str(WORKLOAD), ledger, str(workdir), destination, mode]
    if point is not None:
        args.append(point)
    return subprocess.run(args, check=False, capture_output=True, timeout=60).returncode


def resume(app: Seawall, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = app.resume()
        if results:
            return results
        time.sleep(0.1)
    raise AssertionError("nothing became resumable")


def visible(run_id: str, destination: str) -> list[str]:
    """What a reader going through the manifest sees of a run."""
    try:
        return seawall.artifacts.read(run_id, destination).names
    except ArtifactError:
        return []


def only_run(app: Seawall) -> str:
    [run] = app.ledger.runs()
    return run.run_id


def expected_names() -> list[str]:
    return [f"part-{i:02d}.txt" for i in range(FILES)]


def test_killed_after_half_its_files_shows_nothing_and_resumes(
    tmp_path: Path, ledger_url: str
) -> None:
    """Half-staged files never reach the destination; the next start removes them; resume commits."""
    out = str(tmp_path / "out")
    assert -signal.SIGKILL == run_child(ledger_url, tmp_path, out, "stage-half")
    probe = Seawall(ledger_url)
    run_id = only_run(probe)
    probe.close()
    assert [] == visible(run_id, out)
    staged = tmp_path / "staging" / run_id / "1"
    assert 5 == len(list(staged.iterdir()))
    time.sleep(LEASE * 1.5)
    app = build_app(ledger_url, tmp_path, out)  # an app with a destination collects at start
    try:
        assert not staged.exists()
        [result] = resume(app)
        assert RunStatus.SUCCEEDED == result.status
        assert expected_names() == visible(run_id, out)
        assert 10 == len(app.ledger.artifacts(run_id))
        assert not (tmp_path / "staging" / run_id).exists()
    finally:
        app.close()


@pytest.mark.parametrize("point", LOCAL_POINTS)
def test_killed_during_local_commit_is_all_or_nothing(
    tmp_path: Path, ledger_url: str, point: str
) -> None:
    """At every step of a local commit, readers see all artifacts or none; resume finishes it."""
    _check_commit_crash(tmp_path, ledger_url, str(tmp_path / "out"), point)


@pytest.mark.parametrize("point", FSSPEC_POINTS)
def test_killed_during_object_store_commit_is_all_or_nothing(
    tmp_path: Path, ledger_url: str, point: str
) -> None:
    """With the manifest-last protocol (fsspec file://), readers see all or none; resume finishes."""
    _check_commit_crash(tmp_path, ledger_url, f"file://{tmp_path / 'bucket'}", point)


def _check_commit_crash(tmp_path: Path, ledger_url: str, out: str, point: str) -> None:
    assert -signal.SIGKILL == run_child(ledger_url, tmp_path, out, "commit", point)
    probe = Seawall(ledger_url)
    run_id = only_run(probe)
    probe.close()
    assert visible(run_id, out) in ([], expected_names())
    time.sleep(LEASE * 1.5)
    app = build_app(ledger_url, tmp_path, out)
    try:
        [result] = resume(app)
        assert RunStatus.SUCCEEDED == result.status
        committed = seawall.artifacts.read(run_id, out)
        assert expected_names() == committed.names
        assert all(committed.read_text(name).startswith("content ") for name in committed.names)
        records = app.ledger.artifacts(run_id)
        assert expected_names() == [a.name for a in records]
        assert all(a.committed_at is not None for a in records)
        assert app.ledger.run(run_id).phase is None
        assert not (tmp_path / "staging" / run_id).exists()
    finally:
        app.close()


@pytest.mark.parametrize(
    "point", ["compensation.started.2", "compensation.done.2", "compensation.done.1"]
)
def test_killed_while_compensating_runs_each_compensation_once(
    tmp_path: Path, ledger_url: str, point: str
) -> None:
    """A crash in the middle of compensations: after resume each one ran exactly once."""
    out = str(tmp_path / "out")
    assert -signal.SIGKILL == run_child(ledger_url, tmp_path, out, "saga", point)
    time.sleep(LEASE * 1.5)
    app = build_app(ledger_url, tmp_path, out)
    try:
        [result] = resume(app)
        assert RunStatus.FAILED == result.status
        assert ErrorClass.PARTIAL_WRITE == result.error_class
        undone = [
            json.loads(line)["item"] for line in (tmp_path / "undo.log").read_text().splitlines()
        ]
        assert ["car", "hotel", "flight"] == undone
        assert ["completed"] * 3 == [c.status for c in app.ledger.compensations(result.run_id)]
        assert [] == app.handoffs.list(run_id=result.run_id)
        booked = [
            json.loads(line)["item"] for line in (tmp_path / "book.log").read_text().splitlines()
        ]
        assert ["flight", "hotel", "car"] == booked
    finally:
        app.close()


def test_in_doubt_compensation_that_cannot_dedupe_is_handed_to_a_person(
    tmp_path: Path, ledger_url: str
) -> None:
    """A compensation in flight during a crash, with no idempotency key, is not run twice."""
    out = str(tmp_path / "out")
    assert -signal.SIGKILL == run_child(
        ledger_url, tmp_path, out, "saga-plain", "compensation.done.2"
    )
    time.sleep(LEASE * 1.5)
    app = build_app(ledger_url, tmp_path, out, "saga-plain")
    try:
        [result] = resume(app)
        assert RunStatus.FAILED == result.status
        undone = [
            json.loads(line)["item"] for line in (tmp_path / "undo.log").read_text().splitlines()
        ]
        assert ["car", "hotel", "flight"] == undone
        statuses = {c.seq: c.status for c in app.ledger.compensations(result.run_id)}
        assert {3: "completed", 2: "failed", 1: "completed"} == statuses
        [handoff] = app.handoffs.list(run_id=result.run_id)
        assert "compensation_in_doubt" == handoff.kind
        assert 2 == handoff.subject["step"]
    finally:
        app.close()
