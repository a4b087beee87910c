"""Garbage collection of staging: the pure verdict, app.gc, and the collection at app start."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import Context, RunStatus, Seawall, _payload
from seawall.artifacts import GcEntry, staging_verdict
from seawall.ledger import NewRun, RunRecord
from seawall.testing import no_waits

NOW = 1_800_000_000.0

BASE = RunRecord(
    run_id="run-1",
    agent="agent",
    status=RunStatus.RUNNING,
    start_time=NOW - 100,
    end_time=None,
    input_hash="0" * 64,
    output_hash=None,
    tokens_used=0,
    input_tokens=0,
    output_tokens=0,
    cost_usd=None,
    error_class=None,
    failure_cause=None,
    error_type=None,
    error_message=None,
    error=None,
    attempts=2,
    workflow=None,
    parent_run_id=None,
    replay_of=None,
    code_version=None,
    lease_owner="host:1:abc",
    lease_expires_at=NOW + 30,
    updated_at=NOW - 10,
)
LAPSED = dataclasses.replace(BASE, lease_expires_at=NOW - 1)
FINAL = [s for s in RunStatus if s.final]


# -- staging_verdict: one test per branch ------------------------------------------------------


def test_unknown_run_is_garbage() -> None:
    """A folder whose run the ledger does not know is removed."""
    remove, reason = staging_verdict(None, 1, NOW)
    assert remove
    assert "no such run" in reason


def test_non_numeric_attempt_folder_is_garbage() -> None:
    """A folder whose name is not an attempt number is removed, even for a live run."""
    remove, reason = staging_verdict(BASE, None, NOW)
    assert remove
    assert "not an attempt" in reason


@pytest.mark.parametrize("status", FINAL, ids=[s.value for s in FINAL])
def test_ended_run_is_garbage_even_with_a_lease(status: RunStatus) -> None:
    """The staging of a run with a final status is removed, whatever its lease says."""
    run = dataclasses.replace(BASE, status=status, end_time=NOW - 5)
    remove, reason = staging_verdict(run, 2, NOW)
    assert remove
    assert status.value in reason


def test_committing_run_is_kept_even_when_its_lease_lapsed() -> None:
    """A run in phase committing keeps its staging: a resumer may still publish it."""
    run = dataclasses.replace(LAPSED, phase="committing")
    remove, reason = staging_verdict(run, 2, NOW)
    assert not remove
    assert "commit" in reason


def test_committing_run_keeps_even_an_older_attempt() -> None:
    """The committing check comes before the attempt checks."""
    run = dataclasses.replace(LAPSED, phase="committing")
    assert not staging_verdict(run, 1, NOW)[0]


def test_attempt_newer_than_the_ledger_is_kept() -> None:
    """An attempt the ledger has not recorded yet (starting now) is kept, even on a lapsed lease."""
    remove, reason = staging_verdict(LAPSED, 3, NOW)
    assert not remove
    assert "newer" in reason


def test_superseded_attempt_is_garbage_even_on_a_live_run() -> None:
    """An older attempt's staging is removed while the run is live."""
    remove, reason = staging_verdict(BASE, 1, NOW)
    assert remove
    assert "superseded" in reason


def test_current_attempt_of_a_live_run_is_kept() -> None:
    """The current attempt of a run whose lease is held is kept."""
    remove, reason = staging_verdict(BASE, 2, NOW)
    assert not remove
    assert "live" in reason


def test_lease_expiring_exactly_now_still_counts_as_live() -> None:
    """A lease that expires at exactly ``now`` is still held."""
    run = dataclasses.replace(BASE, lease_expires_at=NOW)
    assert not staging_verdict(run, 2, NOW)[0]


def test_current_attempt_with_a_lapsed_lease_is_garbage() -> None:
    """The current attempt of a run whose owner died is removed (a resume starts afresh)."""
    remove, reason = staging_verdict(LAPSED, 2, NOW)
    assert remove
    assert "lapsed" in reason


def test_unfinished_run_without_a_lease_is_garbage() -> None:
    """An unfinished run with no lease at all has no live owner."""
    run = dataclasses.replace(BASE, lease_expires_at=None, lease_owner=None)
    assert staging_verdict(run, 2, NOW)[0]


def test_compensating_run_follows_the_lease_rules() -> None:
    """Phase compensating is not protected like committing: a lapsed lease means garbage."""
    assert staging_verdict(dataclasses.replace(LAPSED, phase="compensating"), 2, NOW)[0]
    assert not staging_verdict(dataclasses.replace(BASE, phase="compensating"), 2, NOW)[0]


# -- app.gc ------------------------------------------------------------------------------------


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The artifact destination folder."""
    return tmp_path / "out"


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    """The staging root."""
    return tmp_path / "staging"


@pytest.fixture
def art_app(ledger_url: str, out: Path, staging: Path) -> Iterator[Seawall]:
    """An app with a local destination; retries do not sleep."""
    with no_waits(), Seawall(ledger_url, artifacts=out, staging=staging) as instance:
        yield instance


def finished_run(app: Seawall) -> str:
    """Run an agent that succeeds without staging anything; return its run id."""

    @app.agent(name="finisher")
    def finisher(ctx: Context) -> int:
        return 1

    result = app.run(finisher)
    assert RunStatus.SUCCEEDED == result.status
    return result.run_id


def foreign_run(app: Seawall, *, lease_in: float, attempts: int = 1) -> str:
    """Record a running run owned by another process, its lease lapsing in ``lease_in`` s."""
    run_id = uuid.uuid4().hex
    now = time.time()
    data = app.runtime.codec.dumps({}, "inputs")
    input_hash = _payload.digest(data)
    column, blobs = _payload.pack(data, {}, input_hash)
    owner = "elsewhere:1:dead"
    app.store.create_run(
        NewRun(
            run_id=run_id,
            agent="elsewhere",
            start_time=now,
            input_hash=input_hash,
            input_column=column,
            code_version=None,
            owner=owner,
            lease_expires_at=now + lease_in,
        ),
        blobs,
    )
    for attempt in range(1, attempts + 1):
        app.store.start_attempt(run_id, attempt, now, owner, epoch=1)
    return run_id


def make_staging(staging: Path, run_id: str, attempt: str = "1") -> Path:
    """Create ``<staging>/<run_id>/<attempt>/x`` by hand; return the attempt folder."""
    folder = staging / run_id / attempt
    folder.mkdir(parents=True)
    (folder / "x").write_text("left behind")
    return folder


def test_dry_run_lists_garbage_without_removing_it(art_app: Seawall, staging: Path) -> None:
    """gc(dry_run=True) reports the folder it would remove and leaves it in place."""
    run_id = finished_run(art_app)
    folder = make_staging(staging, run_id)
    entries = art_app.gc(dry_run=True)
    assert 1 == len(entries)
    entry = entries[0]
    assert (run_id, 1, str(folder), True) == (
        entry.run_id,
        entry.attempt,
        entry.path,
        entry.removed,
    )
    assert "succeeded" in entry.reason
    assert (folder / "x").is_file()


def test_dry_run_lists_kept_folders_as_not_removed(art_app: Seawall, staging: Path) -> None:
    """gc(dry_run=True) reports a live run's folder with removed=False."""
    run_id = foreign_run(art_app, lease_in=60)
    folder = make_staging(staging, run_id)
    [entry] = art_app.gc(dry_run=True)
    assert GcEntry(run_id, 1, str(folder), False, entry.reason) == entry
    assert folder.is_dir()


def test_gc_removes_the_staging_of_a_finished_run(art_app: Seawall, staging: Path) -> None:
    """gc() removes a finished run's staging and its emptied run folder."""
    run_id = finished_run(art_app)
    make_staging(staging, run_id)
    [entry] = art_app.gc()
    assert entry.removed
    assert not (staging / run_id).exists()
    assert staging.is_dir()


def test_gc_removes_the_staging_of_a_run_whose_lease_lapsed(
    art_app: Seawall, staging: Path
) -> None:
    """gc() removes the current attempt of a run whose owner stopped renewing its lease."""
    run_id = foreign_run(art_app, lease_in=-1)
    make_staging(staging, run_id)
    [entry] = art_app.gc()
    assert entry.removed
    assert not (staging / run_id).exists()


def test_gc_keeps_the_staging_of_a_live_run(art_app: Seawall, staging: Path) -> None:
    """gc() never touches the current attempt of a run whose lease is live."""
    run_id = foreign_run(art_app, lease_in=60)
    folder = make_staging(staging, run_id)
    [entry] = art_app.gc()
    assert not entry.removed
    assert "left behind" == (folder / "x").read_text()


def test_gc_removes_an_older_attempt_but_keeps_the_current_one(
    art_app: Seawall, staging: Path
) -> None:
    """On a live run at attempt 2, attempt 1's staging goes and attempt 2's stays."""
    run_id = foreign_run(art_app, lease_in=60, attempts=2)
    old = make_staging(staging, run_id, "1")
    current = make_staging(staging, run_id, "2")
    entries = art_app.gc()
    assert [(1, True), (2, False)] == [(e.attempt, e.removed) for e in entries]
    assert not old.exists()
    assert current.is_dir()


def test_gc_removes_staging_of_an_unknown_run(art_app: Seawall, staging: Path) -> None:
    """A run folder the ledger has never heard of is removed."""
    make_staging(staging, "no-such-run")
    [entry] = art_app.gc()
    assert ("no-such-run", True) == (entry.run_id, entry.removed)
    assert not (staging / "no-such-run").exists()


def test_gc_removes_a_non_attempt_folder(art_app: Seawall, staging: Path) -> None:
    """A folder under a live run whose name is not a number is removed; the attempt stays."""
    run_id = foreign_run(art_app, lease_in=60)
    make_staging(staging, run_id, "tmp")
    current = make_staging(staging, run_id, "1")
    entries = {e.path: e for e in art_app.gc()}
    assert entries[str(staging / run_id / "tmp")].removed
    assert entries[str(staging / run_id / "tmp")].attempt is None
    assert not (staging / run_id / "tmp").exists()
    assert current.is_dir()


def test_gc_keeps_the_staging_of_a_committing_run(art_app: Seawall, staging: Path) -> None:
    """A run in phase committing keeps its staging even after its lease lapsed."""
    run_id = foreign_run(art_app, lease_in=-1)
    data = art_app.runtime.codec.dumps(None, "output")
    column, blobs = _payload.pack(data, None, _payload.digest(data))
    art_app.store.begin_commit(
        run_id,
        output_hash=_payload.digest(data),
        output_column=column,
        blobs=blobs,
        commit_json="{}",
        artifacts=[("x", 11, "0" * 64)],
        epoch=1,
    )
    folder = make_staging(staging, run_id)
    [entry] = art_app.gc()
    assert not entry.removed
    assert folder.is_dir()


def test_gc_without_a_staging_folder_finds_nothing(art_app: Seawall, staging: Path) -> None:
    """gc() on a missing staging root returns no entries and creates nothing."""
    assert [] == art_app.gc()
    assert not staging.exists()


def test_gc_of_a_mixture_removes_only_the_garbage(art_app: Seawall, staging: Path) -> None:
    """Finished and lapsed runs lose their staging in one pass; the live run keeps it."""
    finished = finished_run(art_app)
    lapsed = foreign_run(art_app, lease_in=-1)
    live = foreign_run(art_app, lease_in=60)
    for run_id in (finished, lapsed, live):
        make_staging(staging, run_id)
    art_app.gc()
    assert [live] == [p.name for p in staging.iterdir()]


# -- collection when an app starts ------------------------------------------------------------


def test_app_with_a_destination_collects_garbage_at_start(
    ledger_url: str, out: Path, staging: Path
) -> None:
    """Opening an app with a destination removes the staging left for finished or lapsed runs."""
    with no_waits(), Seawall(ledger_url, artifacts=out, staging=staging) as first:
        finished = finished_run(first)
        lapsed = foreign_run(first, lease_in=-1)
        live = foreign_run(first, lease_in=60)
    for run_id in (finished, lapsed, live, "unknown-run"):
        make_staging(staging, run_id)
    with Seawall(ledger_url, artifacts=out, staging=staging):
        assert [live] == [p.name for p in staging.iterdir()]
        assert (staging / live / "1" / "x").is_file()


def test_app_without_a_destination_does_not_touch_staging(ledger_url: str, staging: Path) -> None:
    """Opening an app with no destination leaves the staging folder alone."""
    with Seawall(ledger_url) as first:
        lapsed = foreign_run(first, lease_in=-1)
    folder = make_staging(staging, lapsed)
    other = make_staging(staging, "unknown-run")
    with Seawall(ledger_url, staging=staging):
        assert (folder / "x").is_file()
        assert (other / "x").is_file()


def test_app_start_does_not_create_a_missing_staging_folder(
    ledger_url: str, out: Path, staging: Path
) -> None:
    """An app with a destination creates neither the staging folder nor the destination at start."""
    with Seawall(ledger_url, artifacts=out, staging=staging):
        assert not staging.exists()
        assert not out.exists()
