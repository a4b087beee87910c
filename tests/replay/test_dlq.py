"""The dead-letter queue: every failed run listed, redriven at most once, purged."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from seawall import (
    ConfigurationError,
    Context,
    ErrorClass,
    FailureCause,
    Retry,
    RunStatus,
    Seawall,
    verify,
)

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers


@dataclass
class Desk:
    """Agents with switchable bugs, one per error class, and one that always succeeds."""

    app: Seawall
    fixed: set[str] = field(default_factory=set)
    charged: list[int] = field(default_factory=list)


@pytest.fixture
def desk(app: Seawall) -> Desk:
    """Register the agents; none of them is fixed yet."""
    state = Desk(app)

    @app.tool(name="charge", mutating=True)
    def charge(amount: int) -> int:
        state.charged.append(amount)
        return amount

    @app.agent(name="clean", retry=Retry(attempts=1))
    def clean(ctx: Context, n: int) -> int:
        if "clean" not in state.fixed:
            raise RuntimeError("bug before any side effect")
        return n

    @app.agent(name="partial", retry=Retry(attempts=1))
    def partial(ctx: Context, n: int) -> int:
        ctx.call(charge, n)
        if "partial" not in state.fixed:
            raise KeyError("bug after the charge")
        return n

    @app.agent(name="drift", verify=[verify.rule(lambda out: out > 0, "must be positive")])
    def drift(ctx: Context, n: int) -> int:
        return n if "drift" in state.fixed else -n

    @app.agent(name="fine")
    def fine(ctx: Context, n: int) -> int:
        return n

    return state


def fail_all(desk: Desk) -> dict[str, str]:
    """Run each buggy agent once; return their run ids by agent."""
    runs = {
        name: desk.app.run(name, n=i + 1) for i, name in enumerate(("clean", "partial", "drift"))
    }
    assert all(RunStatus.FAILED == r.status for r in runs.values())
    return {name: r.run_id for name, r in runs.items()}


def test_every_failed_run_is_listed_with_its_failure(desk: Desk) -> None:
    """Each error class enters the queue with agent, class, cause, attempts and time."""
    before = time.time()
    run_ids = fail_all(desk)
    after = time.time()
    entries = {e.agent: e for e in desk.app.dlq.list()}
    assert {"clean", "partial", "drift"} == set(entries)
    expected = {
        "clean": (ErrorClass.CLEAN_ABORT, FailureCause.EXCEPTION),
        "partial": (ErrorClass.PARTIAL_WRITE, FailureCause.EXCEPTION),
        "drift": (ErrorClass.SILENT_DRIFT, FailureCause.VERIFICATION_FAILED),
    }
    for name, (error_class, cause) in expected.items():
        entry = entries[name]
        run = desk.app.ledger.run(run_ids[name])
        assert run_ids[name] == entry.run_id
        assert error_class == entry.error_class
        assert cause == entry.failure_cause
        assert run.attempts == entry.attempts
        assert 1 == entry.attempts
        assert run.end_time == entry.failed_at
        assert before <= entry.failed_at <= after
        assert "pending" == entry.status
        assert entry.previous_entry_id is None


def test_succeeded_runs_are_not_in_the_queue(desk: Desk) -> None:
    """Only failed runs enter."""
    desk.app.run("fine", n=1)
    desk.fixed.add("clean")
    desk.app.run("clean", n=1)
    assert [] == desk.app.dlq.list(status=None)


def test_list_filters_by_agent(desk: Desk) -> None:
    """agent= keeps that agent's entries."""
    run_ids = fail_all(desk)
    assert [run_ids["partial"]] == [e.run_id for e in desk.app.dlq.list(agent="partial")]


@pytest.mark.parametrize("error_class", [ErrorClass.SILENT_DRIFT, "silent_drift"])
def test_list_filters_by_error_class(desk: Desk, error_class: ErrorClass | str) -> None:
    """error_class= takes the enum or its value."""
    run_ids = fail_all(desk)
    assert [run_ids["drift"]] == [e.run_id for e in desk.app.dlq.list(error_class=error_class)]


def test_list_filters_by_since(desk: Desk) -> None:
    """since= keeps entries that failed at or after that time."""
    desk.app.run("clean", n=1)
    cutoff = time.time()
    later = desk.app.run("partial", n=2).run_id
    assert [later] == [e.run_id for e in desk.app.dlq.list(since=cutoff)]
    assert 2 == len(desk.app.dlq.list(since=cutoff - 3600))


def test_list_filters_by_status(desk: Desk) -> None:
    """status= picks pending, redriven or purged entries; None lists them all."""
    run_ids = fail_all(desk)
    desk.fixed.add("clean")
    desk.app.dlq.redrive(agent="clean")
    desk.app.dlq.purge(agent="drift")
    assert [run_ids["partial"]] == [e.run_id for e in desk.app.dlq.list()]
    assert [run_ids["clean"]] == [e.run_id for e in desk.app.dlq.list(status="redriven")]
    assert [run_ids["drift"]] == [e.run_id for e in desk.app.dlq.list(status="purged")]
    assert set(run_ids.values()) == {e.run_id for e in desk.app.dlq.list(status=None)}


def test_redrive_after_a_fix_continues_each_run(desk: Desk) -> None:
    """Fixed entries go on with the current code; completed side effects are not repeated."""
    run_ids = fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    outcomes = desk.app.dlq.redrive()
    assert ["clean", "partial", "drift"] == [o.entry.agent for o in outcomes]
    assert ["succeeded"] * 3 == [o.status for o in outcomes]
    entries = {e.run_id: e for e in desk.app.dlq.list(status=None)}
    assert set(run_ids.values()) == set(entries)
    for outcome in outcomes:
        entry = entries[outcome.entry.run_id]
        assert "redriven" == entry.status
        assert "succeeded" == entry.result
        assert entry.redrive_run_id is not None
        assert outcome.run_id == entry.redrive_run_id
        redrive = desk.app.ledger.run(entry.redrive_run_id)
        assert entry.run_id == redrive.replay_of
        assert "redrive" == redrive.replay_mode
        assert RunStatus.SUCCEEDED == redrive.status
    assert [2] == desk.charged


def test_a_fresh_redrive_repeats_side_effects_only_when_confirmed(desk: Desk) -> None:
    """fresh=True starts over with new keys; a run with a completed charge needs consent."""
    run_ids = fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    [refused] = desk.app.dlq.redrive(agent="partial", fresh=True)
    assert ("error", None, "fresh") == (refused.status, refused.run_id, refused.mode)
    assert refused.error is not None
    assert "repeat 1 side effect" in refused.error
    assert 1 == len(refused.repeats)
    assert [run_ids["partial"]] == [e.run_id for e in desk.app.dlq.list(agent="partial")]
    [outcome] = desk.app.dlq.redrive(agent="partial", fresh=True, repeat_effects=True)
    assert "succeeded" == outcome.status
    assert outcome.run_id is not None
    assert "live" == desk.app.ledger.run(outcome.run_id).replay_mode
    assert [2, 2] == desk.charged


def test_an_entry_is_redriven_at_most_once(desk: Desk) -> None:
    """A second redrive finds nothing left to do."""
    fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    assert 3 == len(desk.app.dlq.redrive())
    assert [] == desk.app.dlq.redrive()
    assert 6 == len(desk.app.ledger.runs())


def test_a_redrive_that_fails_again_is_a_new_entry_linked_to_the_old(desk: Desk) -> None:
    """Still broken: the old entry records the failure and a new pending one points at it."""
    original = desk.app.run("partial", n=5).run_id
    [old] = desk.app.dlq.list()
    [outcome] = desk.app.dlq.redrive()
    assert "failed" == outcome.status
    assert outcome.run_id is not None
    [new] = desk.app.dlq.list()
    assert outcome.run_id == new.run_id
    assert old.entry_id == new.previous_entry_id
    assert "pending" == new.status
    [redriven] = desk.app.dlq.list(status="redriven")
    assert original == redriven.run_id
    assert "failed" == redriven.result
    assert outcome.run_id == redriven.redrive_run_id


def test_one_redrive_call_reruns_a_still_failing_entry_once(desk: Desk) -> None:
    """A redrive that fails again leaves its new entry for a later call."""
    desk.app.run("partial", n=5)
    outcomes = desk.app.dlq.redrive(limit=5)
    assert ["failed"] == [o.status for o in outcomes]
    assert [5] == desk.charged
    assert 1 == len(desk.app.dlq.list())


def test_dry_run_claims_nothing(desk: Desk) -> None:
    """A dry run reports the matching entries and leaves them pending."""
    run_ids = fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    outcomes = desk.app.dlq.redrive(dry_run=True)
    assert list(run_ids.values()) == [o.entry.run_id for o in outcomes]
    assert ["would redrive"] * 3 == [o.status for o in outcomes]
    assert [None] * 3 == [o.run_id for o in outcomes]
    assert ["pending"] * 3 == [e.status for e in desk.app.dlq.list(status=None)]
    assert 3 == len(desk.app.ledger.runs())
    assert [2] == desk.charged


def test_entry_ids_redrive_exactly_the_confirmed_entries(desk: Desk) -> None:
    """A dry run's entry ids, confirmed, redrive those entries and no others."""
    run_ids = fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    preview = desk.app.dlq.redrive(dry_run=True, entry_ids=[], agent="clean")
    chosen = [o.entry.entry_id for o in preview]
    assert [run_ids["clean"]] == [e.run_id for e in desk.app.dlq.list(entry_ids=chosen)]
    outcomes = desk.app.dlq.redrive(entry_ids=chosen)
    assert [(run_ids["clean"], "succeeded")] == [(o.entry.run_id, o.status) for o in outcomes]
    assert [] == desk.app.dlq.redrive(entry_ids=chosen)  # each entry at most once
    pending = {e.run_id for e in desk.app.dlq.list()}
    assert {run_ids["partial"], run_ids["drift"]} == pending


def test_rate_spaces_the_redrives(desk: Desk) -> None:
    """rate=20 per second: three redrives take at least two intervals of 50 ms."""
    fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    start = time.monotonic()
    outcomes = desk.app.dlq.redrive(rate=20)
    elapsed = time.monotonic() - start
    assert 3 == len(outcomes)
    assert elapsed >= 0.09


def test_limit_caps_the_entries_redriven(desk: Desk) -> None:
    """limit=2 redrives the two oldest and leaves the third pending."""
    run_ids = fail_all(desk)
    desk.fixed.update({"clean", "partial", "drift"})
    outcomes = desk.app.dlq.redrive(limit=2)
    assert [run_ids["clean"], run_ids["partial"]] == [o.entry.run_id for o in outcomes]
    assert [run_ids["drift"]] == [e.run_id for e in desk.app.dlq.list()]


def test_purge_marks_pending_entries_purged(desk: Desk) -> None:
    """Purged entries leave the pending list but stay in the ledger, as do their runs."""
    run_ids = fail_all(desk)
    assert 3 == desk.app.dlq.purge()
    assert [] == desk.app.dlq.list()
    assert set(run_ids.values()) == {e.run_id for e in desk.app.dlq.list(status="purged")}
    assert 3 == len(desk.app.ledger.runs(status=RunStatus.FAILED))


def test_purge_touches_only_pending_entries(desk: Desk) -> None:
    """A redriven entry is not purged."""
    fail_all(desk)
    desk.fixed.add("clean")
    desk.app.dlq.redrive(agent="clean")
    assert 2 == desk.app.dlq.purge()
    assert ["clean"] == [e.agent for e in desk.app.dlq.list(status="redriven")]


def test_a_filter_matching_nothing_redrives_and_purges_nothing(desk: Desk) -> None:
    """No match: redrive returns [] and purge 0, and the entries stay pending."""
    fail_all(desk)
    assert [] == desk.app.dlq.redrive(agent="nobody")
    assert 0 == desk.app.dlq.purge(agent="nobody")
    assert [] == desk.app.dlq.redrive(error_class="cascade")
    assert 3 == len(desk.app.dlq.list())


@pytest.mark.parametrize("method", ["list", "redrive", "purge"])
def test_an_unknown_error_class_is_a_configuration_error(desk: Desk, method: str) -> None:
    """Every DLQ method rejects an error class that does not exist."""
    fail_all(desk)
    with pytest.raises(ConfigurationError, match="error classes"):
        getattr(desk.app.dlq, method)(error_class="meltdown")
    assert 3 == len(desk.app.dlq.list())


def test_a_zero_rate_is_a_configuration_error(desk: Desk) -> None:
    """rate must be a positive number of redrives per second."""
    fail_all(desk)
    with pytest.raises(ConfigurationError, match="rate"):
        desk.app.dlq.redrive(rate=0)
    assert 3 == len(desk.app.dlq.list())


def test_aredrive_runs_from_asyncio(desk: Desk) -> None:
    """The async twin redrives from a running event loop."""
    fail_all(desk)
    desk.fixed.add("drift")
    outcomes = asyncio.run(desk.app.dlq.aredrive(agent="drift"))
    assert ["succeeded"] == [o.status for o in outcomes]
