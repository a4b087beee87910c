"""A single-step run's two writes: opening (``create_and_start``) and ending (``end_run``).

PostgreSQL writes each in fewer statements than SQLite (``seawall.ledger._pg_writes``): these
tests hold both ledgers to the same rows and the same refusals, on the paths the contract tests
do not take (no blob, no step, a redrive's entry, committed artifacts, a commit in doubt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import seawall
from seawall._failures import ErrorClass, RunStatus
from seawall.ledger import (
    LATENCY_BOUNDS,
    AttemptOutcome,
    DeadLetterQuery,
    PostgresStore,
    Store,
)
from seawall.ledger import _pg_writes as pg_writes
from seawall.ledger._dialect import POSTGRES
from tests.ledger.rows import OWNER, create, finish, new_run, outcome_of, step

if TYPE_CHECKING:
    from collections.abc import Callable

LEDGERS = ("sqlite", "postgres")
ENDED = AttemptOutcome("succeeded", 1999.0, None, None, None, None, None)


def _opened(store: Store, run_id: str, **options: Any) -> None:
    run, blobs = new_run(run_id, **options)
    assert [] == blobs  # a small input is kept in the run's row: the shortest opening
    store.create_and_start(run, blobs)


def test_a_run_opened_without_blobs_has_its_attempt_and_a_taken_id_adds_nothing(
    store: Store,
) -> None:
    """The run and its attempt 1 land together; a second run with that id is refused whole."""
    _opened(store, "r1", start=1234.5)
    again, _ = new_run("r1", start=1300.0, owner="other:1")
    with pytest.raises(seawall.LedgerError, match="already has a run r1"):
        store.create_and_start(again, [])
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.RUNNING, OWNER, 1, 1, 1234.5) == (
        record.status,
        record.lease_owner,
        record.epoch,
        record.attempts,
        record.start_time,
    )
    assert [(1, 1234.5, OWNER, "running")] == [
        (a.attempt, a.start_time, a.owner, a.status) for a in store.list_attempts("r1")
    ]


def test_a_run_ended_with_no_step_and_no_blob(store: Store) -> None:
    """end_run with nothing buffered still records the attempt's end and the run's."""
    _opened(store, "r1")
    outcome, _ = outcome_of(output="done")
    store.end_run("r1", 1, ENDED, outcome, [], [], epoch=1)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.SUCCEEDED, 2000.0, None) == (
        record.status,
        record.end_time,
        record.lease_owner,
    )
    assert [("succeeded", 1999.0)] == [(a.status, a.end_time) for a in store.list_attempts("r1")]


def _redriving(store: Store) -> str:
    """A failed run's DLQ entry, claimed, redriven by run ``redo`` (held at epoch 1)."""
    create(store, "old")
    finish(store, "old", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT)
    entry = store.claim_dead_letter(DeadLetterQuery(), OWNER, 2500.0) or pytest.fail("no entry")
    redo, _ = new_run("redo", start=3000.0)
    assert store.begin_redrive(entry.entry_id, OWNER, redo, None)
    store.start_attempt("redo", 1, 3000.0, OWNER, epoch=1)
    output_hash, stored, blobs = outcome_of(output={"answer": 1})[0].output_hash, b"", []
    store.begin_commit(
        "redo",
        output_hash=output_hash or "",
        output_column=stored,
        blobs=blobs,
        commit_json='{"files": 1}',
        artifacts=[("a.txt", 1, "ha")],
        epoch=1,
    )
    return entry.entry_id


def _entry(store: Store, entry_id: str) -> tuple[str, str | None]:
    (entry,) = [
        e for e in store.list_dead_letters(DeadLetterQuery(status=None)) if e.entry_id == entry_id
    ]
    return entry.status, entry.result


def test_ending_a_redrive_settles_its_entry_and_commits_its_artifacts(store: Store) -> None:
    """A succeeded redrive run's end marks its DLQ entry redriven and its files committed."""
    entry_id = _redriving(store)
    outcome, blobs = outcome_of(end=3100.0)
    store.end_run("redo", 1, ENDED, outcome, [], blobs, epoch=1)
    assert ("redriven", "succeeded") == _entry(store, entry_id)
    assert [("a.txt", 3100.0)] == [(a.name, a.committed_at) for a in store.list_artifacts("redo")]
    assert RunStatus.SUCCEEDED == (store.get_run("redo") or pytest.fail("lost")).status


@pytest.mark.parametrize("buffered", [False, True], ids=["no-step", "a-step"])
def test_a_stale_end_writes_nothing_anywhere(store: Store, buffered: bool) -> None:
    """Fenced out, end_run leaves the run, its attempt, steps, entry and files as they were."""
    entry_id = _redriving(store)
    store.claim_run("redo", "heir", 9000.0, now=8000.0)  # the lease had lapsed
    outcome, blobs = outcome_of(end=3100.0)
    steps = [step("redo", 1)[0]] if buffered else []
    with pytest.raises(seawall.LeaseLostError):
        store.end_run("redo", 1, ENDED, outcome, steps, blobs, epoch=1)
    record = store.get_run("redo") or pytest.fail("run lost")
    assert (RunStatus.RUNNING, "heir", 2) == (record.status, record.lease_owner, record.epoch)
    assert ["running"] == [a.status for a in store.list_attempts("redo")]
    assert [] == store.load_steps("redo")
    assert ("redriving", None) == _entry(store, entry_id)
    assert [None] == [a.committed_at for a in store.list_artifacts("redo")]


def _committed_then_redone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store's next writes commit, then run again in doubt (the answer was lost)."""
    assert isinstance(store, PostgresStore)  # only PostgreSQL redoes a write in doubt
    connections = store._db  # the retry loop is what is exercised
    real = connections.run

    def twice(work: Callable[[Any, bool], Any], what: str, **kw: Any) -> Any:
        real(work, what, **kw)  # committed, but say the connection died before the answer
        return real(lambda conn, _doubt: work(conn, True), what, **kw)

    monkeypatch.setattr(connections, "run", twice)


@pytest.mark.ledgers("postgres")
def test_an_opening_redone_in_doubt_recognises_its_own_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run opened, whose commit's answer was lost, is found again by the redo: no error."""
    _committed_then_redone(store, monkeypatch)
    _opened(store, "r1")
    monkeypatch.undo()
    assert [1] == [a.attempt for a in store.list_attempts("r1")]


@pytest.mark.ledgers("postgres")
def test_an_ending_redone_in_doubt_changes_nothing_more(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ending applied twice (its commit in doubt) leaves one ended run, counted once."""
    _opened(store, "r1")
    _committed_then_redone(store, monkeypatch)
    outcome, _ = outcome_of(output="done")
    store.end_run("r1", 1, ENDED, outcome, [step("r1", 1)[0]], [], epoch=1)
    monkeypatch.undo()
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.SUCCEEDED, ["succeeded"], [1]) == (
        record.status,
        [a.status for a in store.list_attempts("r1")],
        [s.seq for s in store.load_steps("r1")],
    )
    assert [1] == [r.runs for r in store.run_stats()]
    assert [1] == [c.calls for c in store.step_latency(bounds=LATENCY_BOUNDS)]


@pytest.mark.parametrize("count", [1, 3, 12], ids=["one", "three", "past-the-inline-few"])
def test_the_steps_an_ending_writes_are_in_the_journal_and_counted(
    store: Store, count: int
) -> None:
    """Every buffered step lands (a step buffered twice: its last row) and joins the counts."""
    _opened(store, "r1")
    rows = [step("r1", seq)[0] for seq in range(1, count + 1)]
    rows.append(step("r1", 1, response=b"J2")[0])  # seq 1 again, replaced
    outcome, _ = outcome_of(output="done")
    store.end_run("r1", 1, ENDED, outcome, rows, [], epoch=1)
    assert [(seq, b"J2" if seq == 1 else b"J1") for seq in range(1, count + 1)] == [
        (s.seq, s.response) for s in store.load_steps("r1")
    ]
    (kept,) = store.step_latency(bounds=LATENCY_BOUNDS)
    (scanned,) = store.step_latency(bounds=LATENCY_BOUNDS, since=0.5)
    assert (count, count) == (kept.calls, scanned.calls)


def test_a_few_distinct_steps_end_in_one_statement_too(store: Store) -> None:
    """Steps with distinct numbers are written by the ending's own statement, and counted."""
    _opened(store, "r1")
    rows = [step("r1", seq)[0] for seq in (1, 2)]
    outcome, _ = outcome_of(output="done")
    store.end_run("r1", 1, ENDED, outcome, rows, [], epoch=1)
    assert [1, 2] == [s.seq for s in store.load_steps("r1")]
    (kept,) = store.step_latency(bounds=LATENCY_BOUNDS)
    assert 2 == kept.calls


def test_the_statements_use_numbered_placeholders_one_per_parameter() -> None:
    """Both statements reach psycopg numbered ($1...), one number per parameter passed."""
    run, _ = new_run("numbered")
    opened = pg_writes.open_run_sql(POSTGRES)
    assert "%s" not in opened
    assert f"${len(pg_writes.open_run_params(run))}" in opened
    for steps in (0, 1, pg_writes.INLINE_STEPS):
        ended = pg_writes.end_run_sql(POSTGRES, steps)
        rows = [step("numbered", seq)[0] for seq in range(1, steps + 1)]
        params = pg_writes.end_run_params("numbered", 1, ENDED, outcome_of()[0], rows, 1)
        assert "%s" not in ended
        assert f"${len(params)}" in ended
        assert f"${len(params) + 1}" not in ended


def test_numbering_refuses_a_literal_percent() -> None:
    """A ``%`` that is no placeholder would need escaping: it is refused, not sent."""
    assert pg_writes.numbered("SELECT %s, %s") == "SELECT $1, $2"
    with pytest.raises(ValueError, match="literal %"):
        pg_writes.numbered("SELECT %s WHERE name LIKE 'a%'")
