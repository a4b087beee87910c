"""Recovery keeps the guarantees: a redrive continues the failed run's journal (no completed
effect repeated), an in-doubt call waits for an operator's word, a redriver killed mid-redrive
leaves nothing stuck, and runs refused by an open breaker are parked in the DLQ, not dropped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from seawall import ErrorClass, FailureCause, RunStatus
from seawall.ledger import DeadLetterQuery

from .guarantees_app import ROOT, STEPS, build, child, effects, lapse, the_run

LEDGERS = ("sqlite", "postgres")
pytestmark = pytest.mark.crash


def keys(log: Path) -> Counter[str]:
    return Counter(e["key"] for e in effects(log))


def test_a_redrive_continues_the_journal_and_repeats_no_charge(
    tmp_path: Path, ledger_url: str
) -> None:
    """Killed at the same read four times, the run stops (crash loop, partial_write); fixed,
    its redrive serves charges 1-2 with their original keys and makes 3-5 once each."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", 3)
    app = build(ledger_url, log)
    try:
        run_id = the_run(app)
        for _ in range(3):
            lapse()
            assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", 3, run_id)
        lapse()
        [failed] = app.resume()
        assert (FailureCause.CRASH_LOOP, ErrorClass.PARTIAL_WRITE) == (
            failed.failure_cause,
            failed.error_class,
        )
        before = dict(keys(log))
        [outcome] = app.dlq.redrive()
        assert ("succeeded", "continue") == (outcome.status, outcome.mode)
        assert all(count == 1 for count in keys(log).values())
        assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
        assert before.items() <= keys(log).items()  # charges 1-2 kept their keys, not redone
        redrive = app.ledger.run(outcome.run_id or "")
        assert (run_id, "redrive") == (redrive.replay_of, redrive.replay_mode)
        [entry] = app.store.list_dead_letters(DeadLetterQuery(status=None))
        assert ("redriven", outcome.run_id, "succeeded") == (
            entry.status,
            entry.redrive_run_id,
            entry.result,
        )
    finally:
        app.close()


@pytest.mark.parametrize(
    ("mode", "happened"), [("kill-before-charge", False), ("kill-after-charge", True)]
)
def test_an_in_doubt_charge_waits_for_an_operator_then_runs_at_most_once(
    tmp_path: Path, ledger_url: str, mode: str, happened: bool
) -> None:
    """A charge in flight at the crash is not redriven until resolved; then it is served
    ("it happened") or issued once more with its original key ("it did not")."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == child(ledger_url, log, mode, 3)
    app = build(ledger_url, log)
    try:
        lapse()
        [failed] = app.resume()
        assert FailureCause.IN_DOUBT == failed.failure_cause
        run_id = failed.run_id
        in_doubt_key = (failed.error or {})["idempotency_key"]
        [waiting] = app.dlq.redrive()
        assert (None, "in_doubt") == (waiting.run_id, waiting.status)
        assert "seawall dlq resolve" in (waiting.error or "")
        logged = [e["step"] for e in effects(log)]
        assert logged == ([1, 2, 3] if happened else [1, 2])  # nothing re-executed
        resolution = app.dlq.resolve(
            run_id,
            happened=happened,
            **({"result": {"receipt": "r-3", "amount": 30}} if happened else {}),
            by="ops@example.com",
            note="checked the payment provider",
        )
        assert ("ops@example.com", 1) == (
            resolution.decided_by,
            len(app.store.list_resolutions(run_id)),
        )
        [outcome] = app.dlq.redrive()
        assert "succeeded" == outcome.status
        assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
        assert all(count == 1 for count in keys(log).values())
        assert 1 == keys(log)[in_doubt_key]  # the same key, whoever made the charge
    finally:
        app.close()


def test_a_redriver_killed_mid_redrive_leaves_nothing_stuck(
    tmp_path: Path, ledger_url: str
) -> None:
    """The redriver dies inside the redrive run; the next redrive call finishes that run, the
    entry is settled, and each charge happened once."""
    log = tmp_path / "effects.log"
    assert 0 == child(ledger_url, log, "bug-at", 3)
    assert -signal.SIGKILL == child(ledger_url, log, "kill-in-lookup", 4, "redrive")
    app = build(ledger_url, log)
    try:
        [entry] = app.store.list_dead_letters(DeadLetterQuery(status=None))
        assert ("redriving", True) == (entry.status, entry.redrive_run_id is not None)
        assert entry in app.dlq.list()  # a claimed entry is listed, with its redriver
        lapse()
        assert [] == app.dlq.redrive()  # nothing new to claim; the stalled redrive is finished
        [entry] = app.store.list_dead_letters(DeadLetterQuery(status=None))
        assert ("redriven", "succeeded") == (entry.status, entry.result)
        assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
        assert all(count == 1 for count in keys(log).values())
    finally:
        app.close()


def test_an_expired_claim_is_taken_again(ledger_url: str, tmp_path: Path) -> None:
    """A claim whose redrive never began (its redriver died at once) expires after the timeout."""
    app = build(ledger_url, tmp_path / "effects.log", "bug-at", 1)
    try:
        app.run("invoices", n=1)
        query = DeadLetterQuery(status="pending")
        claimed = app.store.claim_dead_letter(query, "dead-redriver", 1000.0)
        assert claimed is not None
        assert None is app.store.claim_dead_letter(query, "me", 1001.0, stale_before=999.0)
        again = app.store.claim_dead_letter(query, "me", 1002.0, stale_before=1001.0)
        assert again is not None
        assert claimed.entry_id == again.entry_id
    finally:
        app.close()


def test_runs_refused_by_an_open_breaker_are_parked_and_run_once_after(
    tmp_path: Path, ledger_url: str
) -> None:
    """Five runs refused while the breaker is open wait in the DLQ; redriven once it closes,
    each executes exactly once."""
    log = tmp_path / "effects.log"
    app = build(ledger_url, log)
    try:
        app.breakers.open("agent:invoices", reason="the payment provider is down")
        refused = [app.run("invoices", n=1) for _ in range(5)]
        assert {(RunStatus.SKIPPED, FailureCause.BREAKER_OPEN)} == {
            (r.status, r.failure_cause) for r in refused
        }
        parked = app.dlq.list()
        assert sorted(r.run_id for r in refused) == sorted(e.run_id for e in parked)
        assert [] == effects(log)
        app.breakers.reset("agent:invoices")
        outcomes = app.dlq.redrive()
        assert ["succeeded"] * 5 == [o.status for o in outcomes]
        assert 5 == len(effects(log))
        assert [] == app.dlq.list()
        assert [] == app.dlq.redrive()  # each at most once
        assert 5 == len(effects(log))
    finally:
        app.close()


def test_a_recorded_replay_after_a_fix_in_the_middle_succeeds_without_repeating_a_charge(
    tmp_path: Path, ledger_url: str
) -> None:
    """The bug was at step 3; after the fix a recorded replay serves steps 1-2 (charges
    included), runs the reads it lacks live, and stops rather than charge anew."""
    log = tmp_path / "effects.log"
    assert 0 == child(ledger_url, log, "bug-at", 3)
    app = build(ledger_url, log)
    try:
        run_id = the_run(app)
        assert [1, 2] == [e["step"] for e in effects(log)]
        replayed = app.replay(run_id, mode="recorded")
        assert not replayed.ok  # charge 3 is a side effect the recording lacks
        actions = [(s["step"], s["name"], s["action"]) for s in replayed.steps]
        assert [
            (1, "lookup", "served"),
            (2, "charge", "served"),
            (3, "lookup", "served"),
            (4, "charge", "served"),
            (5, "lookup", "live"),
            (6, "charge", "stopped"),
        ] == actions
        assert [1, 2] == [e["step"] for e in effects(log)]  # nothing charged by the replay
        allowed = app.replay(run_id, mode="recorded", allow_mutations=True)
        assert allowed.ok, allowed.divergence
        assert [1, 2, 3, 4, 5] == [e["step"] for e in effects(log)]
        assert ["served"] * 4 == [s["action"] for s in allowed.steps[:4]]
    finally:
        app.close()


def test_the_cli_resolves_and_redrives(tmp_path: Path, ledger_url: str) -> None:
    """`seawall dlq resolve RUN --did-not-happen` then `dlq redrive --run RUN` finish the run."""
    log = tmp_path / "effects.log"
    assert -signal.SIGKILL == child(ledger_url, log, "kill-before-charge", 2)
    app = build(ledger_url, log)
    lapse()
    [failed] = app.resume()
    app.close()
    seawall = [sys.executable, "-m", "seawall"]
    done = subprocess.run(
        [
            *seawall,
            "dlq",
            "resolve",
            failed.run_id[:20],
            "--did-not-happen",
            "--by",
            "ops",
            "--ledger",
            ledger_url,
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert "did_not_happen" == json.loads(done.stdout)["decision"]
    app = build(ledger_url, log)
    try:
        [outcome] = app.dlq.redrive(run_id=failed.run_id)
        assert "succeeded" == outcome.status
        assert list(range(1, STEPS + 1)) == [e["step"] for e in effects(log)]
    finally:
        app.close()
