"""Compensations (sagas): when they run, in what order, and what happens when they fail."""

from __future__ import annotations

from typing import Any

import pytest

from seawall import ConfigurationError, Context, ErrorClass, Retry, RunStatus, Seawall


def test_compensations_run_newest_first_with_results_and_arguments(app: Seawall) -> None:
    """A run that fails for good after three bookings undoes them in reverse order."""
    undone: list[tuple[Any, ...]] = []

    def cancel(result: dict[str, Any], item: str, *, nights: int) -> None:
        undone.append((result["id"], item, nights))

    @app.tool(mutating=True, compensate=cancel)
    def book(item: str, *, nights: int) -> dict[str, Any]:
        return {"id": f"id-{item}"}

    @app.agent(retry=Retry(attempts=1))
    def trip(ctx: Context) -> None:
        for item in ("flight", "hotel", "car"):
            ctx.call(book, item, nights=2)
        raise ValueError("declined")

    result = app.run(trip)
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert [("id-car", "car", 2), ("id-hotel", "hotel", 2), ("id-flight", "flight", 2)] == undone
    assert [3, 2, 1] == [c.seq for c in app.ledger.compensations(result.run_id)]
    assert app.ledger.run(result.run_id).phase is None


def test_no_compensation_when_a_retry_succeeds(app: Seawall) -> None:
    """Compensations run only when the run will not be retried to success."""
    undone: list[str] = []
    fail = {"left": 1}

    @app.tool(mutating=True, compensate=lambda result, item: undone.append(item))
    def book(item: str) -> str:
        return item

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def trip(ctx: Context) -> str:
        ctx.call(book, "hotel")
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("flaky")
        return "ok"

    result = app.run(trip)
    assert RunStatus.SUCCEEDED == result.status
    assert [] == undone
    assert [] == app.ledger.compensations(result.run_id)


def test_clean_abort_runs_no_compensation(app: Seawall) -> None:
    """A failure before any side effect has nothing to undo."""

    @app.agent(retry=Retry(attempts=1))
    def trip(ctx: Context) -> None:
        raise ValueError("no")

    result = app.run(trip)
    assert ErrorClass.CLEAN_ABORT == result.error_class
    assert [] == app.ledger.compensations(result.run_id)


def test_failing_compensation_opens_a_handoff_after_bounded_tries(app: Seawall) -> None:
    """A compensation that keeps failing is tried per its tool's policy, then handed to a person."""
    calls = {"n": 0}

    def refund(result: Any, amount: int) -> None:
        calls["n"] += 1
        raise ConnectionError("the payment API is down")

    @app.tool(mutating=True, compensate=refund, retry=Retry(attempts=3, initial=0.01))
    def charge(amount: int) -> str:
        return "charged"

    @app.agent(retry=Retry(attempts=1))
    def order(ctx: Context) -> None:
        ctx.call(charge, 30)
        raise ValueError("out of stock")

    result = app.run(order)
    assert 3 == calls["n"]
    [compensation] = app.ledger.compensations(result.run_id)
    assert ("failed", 3, "ConnectionError") == (
        compensation.status,
        compensation.tries,
        compensation.error_type,
    )
    [handoff] = app.handoffs.list(run_id=result.run_id)
    assert ("compensation_failed", "open") == (handoff.kind, handoff.status)
    assert {"step": 1, "tool": "charge"} == {k: handoff.subject[k] for k in ("step", "tool")}
    assert RunStatus.FAILED == result.status


def test_steps_without_compensation_are_skipped(app: Seawall) -> None:
    """Only tools that declare a compensation are undone."""
    undone: list[str] = []

    @app.tool(mutating=True)
    def notify(text: str) -> None:
        return None

    @app.tool(mutating=True, compensate=lambda result, item: undone.append(item))
    def reserve(item: str) -> str:
        return item

    @app.agent(retry=Retry(attempts=1))
    def flow(ctx: Context) -> None:
        ctx.call(reserve, "seat")
        ctx.call(notify, "reserved")
        raise ValueError("later failure")

    result = app.run(flow)
    assert ["seat"] == undone
    assert [1] == [c.seq for c in app.ledger.compensations(result.run_id)]


def test_async_compensation(app: Seawall) -> None:
    """A coroutine compensation is awaited."""
    undone: list[str] = []

    async def release(result: str, item: str) -> None:
        undone.append(item)

    @app.tool(mutating=True, compensate=release)
    async def hold(item: str) -> str:
        return item

    @app.agent(retry=Retry(attempts=1))
    async def flow(ctx: Any) -> None:
        await ctx.call(hold, "room")
        raise ValueError("nope")

    app.run(flow)
    assert ["room"] == undone


def test_compensate_requires_a_mutating_tool(app: Seawall) -> None:
    """compensate= on a read-only tool is a configuration error."""
    with pytest.raises(ConfigurationError, match="mutating=True"):

        @app.tool(compensate=lambda result: None)
        def read() -> None:
            return None
