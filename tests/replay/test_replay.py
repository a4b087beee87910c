"""Replay: the current code on a run's input snapshot, served from its journal or live."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from seawall import (
    Context,
    FailureCause,
    RegistrationError,
    Retry,
    RunNotFoundError,
    RunStatus,
    Seawall,
    UsageError,
    _payload,
)
from seawall._diff import diff
from seawall.errors import SnapshotError
from seawall.ledger import NewRun


@dataclass
class Shop:
    """A checkout agent with a switchable bug, and what its tools were asked to do."""

    app: Seawall
    calls: Counter[str] = field(default_factory=Counter)
    charged: list[int] = field(default_factory=list)
    refunded: list[int] = field(default_factory=list)
    fixed: bool = False
    variant: str = "same"
    currency: str = "USD"
    lines: tuple[str, ...] = ()


@pytest.fixture
def shop(app: Seawall) -> Shop:
    """Register a read-only tool, a mutating tool with a compensation, and the agent."""
    state = Shop(app)

    @app.tool(name="lookup")
    def lookup(sku: str) -> int:
        state.calls["lookup"] += 1
        return 10

    @app.tool(name="stock")
    def stock(sku: str) -> int:
        state.calls["stock"] += 1
        return 10

    def refund(result: dict[str, int], amount: int) -> None:
        state.refunded.append(amount)

    @app.tool(name="charge", mutating=True, compensate=refund)
    def charge(amount: int) -> dict[str, int]:
        state.calls["charge"] += 1
        state.charged.append(amount)
        return {"charged": amount}

    @app.agent(name="checkout", retry=Retry(attempts=1))
    def checkout(ctx: Context, sku: str, qty: int) -> dict[str, Any]:
        if state.variant == "other_tool":
            price = ctx.call(stock, sku)
        elif state.variant == "other_args":
            price = ctx.call(lookup, sku.upper())
        else:
            price = ctx.call(lookup, sku)
        amount = price * qty + (1 if state.variant == "other_amount" else 0)
        paid = ctx.call(charge, amount)
        if state.variant == "more":
            ctx.call(lookup, "gift-wrap")
        if state.variant == "more_charge":
            ctx.call(charge, 1)
        if not state.fixed:
            raise RuntimeError("bug: the receipt is never built")
        return {
            "sku": sku,
            "total": paid["charged"],
            "currency": state.currency,
            "lines": [sku, *state.lines],
        }

    return state


def failed_run(shop: Shop) -> str:
    """Run the buggy checkout once; it fails after its side effect. Return the run id."""
    result = shop.app.run("checkout", sku="tea", qty=3)
    assert RunStatus.FAILED == result.status
    return result.run_id


def ledger_path(ledger_url: str) -> str:
    return ledger_url.removeprefix("sqlite:///")


def run_count(app: Seawall) -> int:
    return len(app.ledger.runs(limit=10_000))


def test_recorded_replay_after_a_fix_succeeds_without_calling_a_tool(shop: Shop) -> None:
    """Every call is served from the journal: no tool runs, no side effect repeats."""
    original = failed_run(shop)
    shop.fixed = True
    result = shop.app.replay(original, mode="recorded")
    assert result.ok
    assert RunStatus.SUCCEEDED == result.run.status
    assert {"sku": "tea", "total": 30, "currency": "USD", "lines": ["tea"]} == result.run.output
    assert Counter({"lookup": 1, "charge": 1}) == shop.calls
    assert [30] == shop.charged


def test_recorded_replay_is_a_new_run_marked_as_a_replay(shop: Shop) -> None:
    """The new run records the run it replays and how."""
    original = failed_run(shop)
    shop.fixed = True
    result = shop.app.replay(original, mode="recorded")
    run = shop.app.ledger.run(result.run.run_id)
    assert original != run.run_id
    assert original == run.replay_of
    assert "recorded" == run.replay_mode
    assert "recorded" == result.mode
    assert original == result.original.run_id


def test_replay_leaves_the_original_run_unchanged(shop: Shop) -> None:
    """The original's row, output and journal are exactly as before the replay."""
    original = failed_run(shop)
    row, output, steps = (
        shop.app.ledger.run(original),
        shop.app.ledger.output(original),
        shop.app.ledger.steps(original),
    )
    shop.fixed = True
    shop.app.replay(original, mode="recorded")
    shop.app.replay(original, mode="live")
    assert row == shop.app.ledger.run(original)
    assert RunStatus.FAILED == shop.app.ledger.run(original).status
    assert output == shop.app.ledger.output(original)
    assert steps == shop.app.ledger.steps(original)


def test_live_replay_calls_the_tools_again(shop: Shop) -> None:
    """A live replay executes every call and is marked live."""
    original = failed_run(shop)
    shop.fixed = True
    result = shop.app.replay(original, mode="live")
    assert result.ok
    assert Counter({"lookup": 2, "charge": 2}) == shop.calls
    assert [30, 30] == shop.charged
    assert "live" == shop.app.ledger.run(result.run.run_id).replay_mode
    assert original == shop.app.ledger.run(result.run.run_id).replay_of


def test_output_changes_of_a_fixed_run_start_at_the_root(shop: Shop) -> None:
    """The original failed with no output, so the whole new output is one change at $."""
    original = failed_run(shop)
    shop.fixed = True
    result = shop.app.replay(original)
    after = {"sku": "tea", "total": 30, "currency": "USD", "lines": ["tea"]}
    assert [{"path": "$", "before": None, "after": after}] == result.output_changes


def test_output_changes_list_each_difference_by_path(shop: Shop) -> None:
    """Changed and added values are listed by path, with before and after."""
    shop.fixed = True
    original = shop.app.run("checkout", sku="tea", qty=3)
    shop.currency = "EUR"
    shop.lines = ("gift-wrap",)
    result = shop.app.replay(original.run_id)
    expected = [
        {"path": "$.currency", "before": "USD", "after": "EUR"},
        {"path": "$.lines[1]", "before": "<absent>", "after": "gift-wrap"},
    ]
    assert expected == result.output_changes
    assert [c.to_dict() for c in diff(original.output, result.run.output)] == (
        result.output_changes
    )


def test_replay_of_an_unchanged_output_reports_no_changes(shop: Shop) -> None:
    """Replaying a succeeded run with the same code changes nothing."""
    shop.fixed = True
    original = shop.app.run("checkout", sku="tea", qty=3)
    result = shop.app.replay(original.run_id)
    assert [] == result.output_changes
    assert original.output_hash == result.run.output_hash


@pytest.mark.parametrize(
    ("variant", "live"),
    [("other_tool", "stock"), ("other_args", "lookup"), ("more", "lookup")],
)
def test_a_read_the_recording_lacks_runs_live(shop: Shop, variant: str, live: str) -> None:
    """Code asking for a read the recording does not hold runs it live and reports the step."""
    original = failed_run(shop)
    shop.fixed = True
    shop.variant = variant
    result = shop.app.replay(original, mode="recorded")
    assert result.ok, result.steps
    actions = [(s["name"], s["action"]) for s in result.steps]
    assert (live, "live") in actions
    assert ("charge", "served") in actions
    assert 1 == shop.calls["charge"]
    assert [30] == shop.charged


@pytest.mark.parametrize(
    ("variant", "step", "expected_end"),
    [("other_amount", 2, False), ("more_charge", 3, True)],
)
def test_a_side_effect_the_recording_lacks_stops_the_replay(
    shop: Shop, variant: str, step: int, expected_end: bool
) -> None:
    """A side effect not held next by the recording is a divergence, with a readable diff."""
    original = failed_run(shop)
    recorded_charge = shop.app.ledger.steps(original)[1].record.request_hash[:12]
    shop.fixed = True
    shop.variant = variant
    result = shop.app.replay(original, mode="recorded")
    assert not result.ok
    assert RunStatus.FAILED == result.run.status
    assert FailureCause.DIVERGENCE == result.run.failure_cause
    assert FailureCause.DIVERGENCE == shop.app.ledger.run(result.run.run_id).failure_cause
    assert result.divergence is not None
    assert step == result.divergence["step"]
    assert result.divergence["got"].startswith("charge ")
    if expected_end:
        assert "end of journal" == result.divergence["expected"]
    else:
        assert f"charge {recorded_charge}" == result.divergence["expected"]
        assert result.divergence["changes"], "the diff names what changed"
    assert [30] == shop.charged
    assert ("charge", "stopped") == (result.steps[-1]["name"], result.steps[-1]["action"])


def test_allow_mutations_lets_a_new_side_effect_run_live(shop: Shop) -> None:
    """With allow_mutations the replay sends the side effect the recording lacks."""
    original = failed_run(shop)
    shop.fixed = True
    shop.variant = "more_charge"
    result = shop.app.replay(original, mode="recorded", allow_mutations=True)
    assert result.ok, result.steps
    assert [30, 1] == shop.charged


def test_an_in_doubt_step_of_the_original_is_a_divergence(shop: Shop, ledger_url: str) -> None:
    """A step whose result was never recorded cannot be served."""
    original = failed_run(shop)
    with contextlib.closing(sqlite3.connect(ledger_path(ledger_url))) as db, db:
        db.execute(
            "UPDATE steps SET status = 'started', response = NULL, end_time = NULL "
            "WHERE run_id = ? AND seq = 2",
            (original,),
        )
    shop.fixed = True
    result = shop.app.replay(original, mode="recorded")
    assert not result.ok
    assert FailureCause.DIVERGENCE == result.run.failure_cause
    assert result.divergence is not None
    assert 2 == result.divergence["step"]
    assert "a recorded result" == result.divergence["expected"]
    assert result.divergence["got"].startswith("charge ")
    assert [30] == shop.charged


def test_a_side_effect_that_failed_in_the_original_fails_the_same_way(app: Seawall) -> None:
    """A recorded failed side effect is raised again as ReplayedToolError, never re-sent."""
    calls: list[str] = []

    @app.tool(name="ship", mutating=True)
    def ship(sku: str) -> int:
        calls.append(sku)
        raise ValueError("no such sku")

    @app.agent(name="shipper", retry=Retry(attempts=1))
    def shipper(ctx: Context, sku: str) -> int:
        return int(ctx.call(ship, sku))

    original = app.run("shipper", sku="tea")
    assert "ValueError" == original.error["type"]
    result = app.replay(original.run_id, mode="recorded")
    assert RunStatus.FAILED == result.run.status
    assert result.divergence is None
    assert "ReplayedToolError" == result.run.error["type"]
    assert "ValueError" == result.run.error["error_type"]
    assert "no such sku" == result.run.error["error_message"]
    assert "ValueError" in result.run.error["message"]
    assert ["tea"] == calls
    assert [("served", "its recorded failure")] == [
        (s["action"], s["detail"]) for s in result.steps
    ]


def test_a_read_that_failed_in_the_original_is_asked_again(app: Seawall) -> None:
    """A failed read-only call runs live in the replay (it may answer now) and is reported."""
    calls: list[str] = []
    healthy: list[bool] = []

    @app.tool(name="quote")
    def quote(sku: str) -> int:
        calls.append(sku)
        if not healthy:
            raise ValueError("quote service down")
        return 7

    @app.agent(name="quoter", retry=Retry(attempts=1))
    def quoter(ctx: Context, sku: str) -> int:
        return int(ctx.call(quote, sku))

    original = app.run("quoter", sku="tea")
    assert "ValueError" == original.error["type"]
    healthy.append(True)
    result = app.replay(original.run_id, mode="recorded")
    assert result.ok
    assert 7 == result.run.output
    assert ["tea", "tea"] == calls
    assert [("live", "it failed in the recording: asked again")] == [
        (s["action"], s["detail"]) for s in result.steps
    ]


def test_clock_uuid_and_random_are_served_so_the_output_hash_is_identical(app: Seawall) -> None:
    """ctx.now/uuid/random come from the journal, so a recorded replay reproduces the output."""

    @app.agent(name="stamper")
    def stamper(ctx: Context) -> dict[str, Any]:
        return {"at": ctx.now(), "id": ctx.uuid(), "roll": ctx.random()}

    original = app.run("stamper")
    result = app.replay(original.run_id, mode="recorded")
    assert result.ok
    assert original.output_hash == result.run.output_hash
    assert original.output == result.run.output
    assert [] == result.output_changes


def test_recorded_replay_never_runs_compensations(shop: Shop) -> None:
    """A replay that fails after a served side effect undoes nothing: it did nothing."""
    original = failed_run(shop)
    assert [30] == shop.refunded
    result = shop.app.replay(original, mode="recorded")
    assert RunStatus.FAILED == result.run.status
    assert [30] == shop.refunded
    assert [] == shop.app.ledger.compensations(result.run.run_id)
    assert [30] == shop.charged


def test_recorded_replay_keeps_the_original_dead_letter_single_and_pending(shop: Shop) -> None:
    """The original's entry is neither consumed nor duplicated by a replay."""
    original = failed_run(shop)
    shop.app.replay(original, mode="recorded")
    mine = [e for e in shop.app.dlq.list(status=None) if e.run_id == original]
    assert 1 == len(mine)
    assert "pending" == mine[0].status


def test_failed_recorded_replay_adds_no_pending_dead_letter(shop: Shop) -> None:
    """A diagnostic replay that fails leaves the original as the only pending entry."""
    original = failed_run(shop)
    shop.app.replay(original, mode="recorded")
    assert [original] == [e.run_id for e in shop.app.dlq.list(status=None)]


def test_replay_of_an_unknown_run_raises_run_not_found(app: Seawall) -> None:
    """An id the ledger does not hold is refused."""
    with pytest.raises(RunNotFoundError):
        app.replay("no-such-run")


def test_replay_of_a_running_run_is_refused(shop: Shop) -> None:
    """A run still leased to its owner cannot be replayed."""
    data = shop.app.runtime.codec.dumps({"sku": "tea", "qty": 1}, "inputs")
    input_hash = _payload.digest(data)
    column, blobs = _payload.pack(data, {"sku": "tea", "qty": 1}, input_hash)
    now = time.time()
    shop.app.store.create_run(
        NewRun(
            run_id="still-running",
            agent="checkout",
            start_time=now,
            input_hash=input_hash,
            input_column=column,
            code_version=None,
            owner="elsewhere:1:alive",
            lease_expires_at=now + 60,
        ),
        blobs,
    )
    with pytest.raises(UsageError, match="still running"):
        shop.app.replay("still-running")
    assert 1 == run_count(shop.app)
    assert 0 == sum(shop.calls.values())


def test_replay_without_the_agent_names_it_and_its_code_version(
    shop: Shop, ledger_url: str
) -> None:
    """An app that does not register the run's agent refuses, saying which code made it."""
    original = failed_run(shop)
    version = shop.app.ledger.run(original).code_version
    assert version
    with Seawall(ledger_url, lease=2.0) as other:
        with pytest.raises(RegistrationError) as info:
            other.replay(original)
        assert 1 == run_count(other)
    assert "'checkout'" in info.value.message
    assert version in info.value.message
    assert "checkout" == info.value.fields["agent"]
    assert version == info.value.fields["code_version"]


def test_corrupted_snapshot_is_refused_and_creates_no_run(shop: Shop, ledger_url: str) -> None:
    """Inputs whose bytes no longer match the recorded hash are never replayed."""
    original = failed_run(shop)
    forged = b"J" + shop.app.runtime.codec.dumps({"sku": "gold", "qty": 1000}, "forged inputs")
    with contextlib.closing(sqlite3.connect(ledger_path(ledger_url))) as db, db:
        db.execute("UPDATE runs SET input = ? WHERE run_id = ?", (forged, original))
    shop.fixed = True
    with pytest.raises(SnapshotError, match="does not match its recorded hash"):
        shop.app.replay(original, mode="live")
    assert 1 == run_count(shop.app)
    assert Counter({"lookup": 1, "charge": 1}) == shop.calls


def test_missing_snapshot_blob_is_refused(shop: Shop, ledger_url: str) -> None:
    """Inputs stored as a blob that is gone cannot be replayed."""
    sku = "t" * 400
    original = shop.app.run("checkout", sku=sku, qty=1).run_id
    column = shop.app.store.get_run_io(original)
    assert column is not None
    assert _payload.column_ref(column[0]) is not None
    with contextlib.closing(sqlite3.connect(ledger_path(ledger_url))) as db, db:
        db.execute("DELETE FROM blobs")
    with pytest.raises(SnapshotError, match="missing"):
        shop.app.replay(original)
    assert 1 == run_count(shop.app)


def test_unknown_mode_is_a_usage_error(shop: Shop) -> None:
    """Only 'recorded' and 'live' are modes."""
    original = failed_run(shop)
    with pytest.raises(UsageError, match="bogus"):
        shop.app.replay(original, mode="bogus")  # type: ignore[arg-type]
    assert 1 == run_count(shop.app)


def test_areplay_runs_from_asyncio(shop: Shop) -> None:
    """The async twin replays from a running event loop."""
    original = failed_run(shop)
    shop.fixed = True
    result = asyncio.run(shop.app.areplay(original, mode="recorded"))
    assert result.ok
    assert original == shop.app.ledger.run(result.run.run_id).replay_of
    assert Counter({"lookup": 1, "charge": 1}) == shop.calls
