"""The step machine of ``ctx.call`` on its own: it asks for I/O and is given the answers.

These tests build the journal's state (recorded steps, counters, an interrupted attempt) and
step the machine by hand, so a backoff is a ``Wait`` request to look at, never a sleep; then
they check that the sync and the async driver carry out one machine alike.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from seawall import Guards, Retry, Seawall
from seawall._calls import call
from seawall._journal import COMPLETED, STARTED, Journal
from seawall._ledger_io import LedgerIO
from seawall._registry import ToolSpec
from seawall._steps import Gather, Invoke, Ledger, Steps, Wait, adrive, drive
from seawall.errors import (
    BudgetExceededError,
    GuardTrippedError,
    InDoubtError,
    LeaseLostError,
    RetryableError,
)
from seawall.ledger import StepRecord

RUN = "run-machine"


def echo(text: str) -> dict[str, str]:
    """A read-only tool."""
    return {"echo": text}


def charge(amount: int) -> str:
    """A mutating tool."""
    return f"charged {amount}"


def tool(fn: Callable[..., Any], **options: Any) -> ToolSpec:
    """Describe ``fn`` as ``@app.tool`` would, with no breaker and no retry budget."""
    options.setdefault("mutating", False)
    options.setdefault("idempotent", False)
    options.setdefault("retry", Retry(attempts=1))
    return ToolSpec.build(fn, name=None, breaker=False, retry_budget=False, **options)


def journal(app: Seawall, recorded: list[StepRecord] | None = None, **options: Any) -> Journal:
    """A first attempt's journal (or a resumed one holding ``recorded``)."""
    return Journal(app.store, app.codec, RUN, 1, recorded or [], epoch=1, **options)


def recorded_step(
    app: Seawall, spec: ToolSpec, args: tuple[Any, ...], status: str, result: Any = None
) -> StepRecord:
    """The row an earlier attempt left for ``spec(*args)`` at seq 1."""
    scratch = journal(app)
    _, request_hash, column, _ = scratch.encode((spec.name, args, {}), "request")
    response = scratch.stored(result, "response")[0] if status == COMPLETED else None
    return StepRecord(
        run_id=RUN,
        seq=1,
        attempt=1,
        kind=spec.kind,
        name=spec.name,
        mutating=spec.mutating,
        idempotency_key=f"{RUN}:1",
        request_hash=request_hash,
        status=status,
        start_time=1.0,
        end_time=2.0 if status == COMPLETED else None,
        error_type=None,
        error_message=None,
        tries=1,
        request=column,
        response=response,
    )


def finished(steps: Steps[Any], answer: Any = None) -> Any:
    """Send ``answer`` and return the machine's value; fail if it asks for more."""
    with pytest.raises(StopIteration) as done:
        steps.send(answer)
    return done.value.value


def test_a_read_only_call_asks_for_the_tool_and_nothing_else(app: Seawall) -> None:
    """A live read-only call: one Invoke, and its row buffered rather than written."""
    spec = tool(echo)
    work = journal(app)
    steps = call(work, spec, ("hi",), {})
    request = next(steps)
    assert (Invoke, echo, ("hi",)) == (type(request), request.fn, request.args)
    assert {"echo": "hi"} == finished(steps, echo("hi"))
    assert (1, [COMPLETED]) == (work.seq, [row[10] for row in work.pending])


def test_a_mutating_call_writes_its_intent_before_and_its_result_after(app: Seawall) -> None:
    """Intent (with the step's key), the call, then the result: in that order."""
    spec = tool(charge, mutating=True)
    work = journal(app)
    steps = call(work, spec, (5,), {})
    intent = next(steps)
    assert isinstance(intent, Ledger)
    assert (work.write_intent, STARTED, f"{RUN}:1") == (
        intent.fn,
        intent.args[0][10],
        intent.args[0][6],
    )
    invoke = steps.send(None)
    assert (Invoke, charge, (5,)) == (type(invoke), invoke.fn, invoke.args)
    result = steps.send("charged 5")
    assert isinstance(result, Ledger)
    assert (work.complete, 1, COMPLETED) == (result.fn, result.args[0], result.kwargs["status"])
    assert "charged 5" == finished(steps)
    assert 1 == work.mutations


def test_a_failed_try_asks_to_wait_for_the_server_then_tries_again(app: Seawall) -> None:
    """The backoff is a Wait request of the server's delay; nothing sleeps."""
    spec = tool(echo, retry=Retry(attempts=2, initial=0))
    steps = call(journal(app), spec, ("hi",), {})
    next(steps)
    wait = steps.throw(RetryableError("busy", retry_after=7))
    assert (Wait, 7.0) == (type(wait), wait.seconds)
    again = steps.send(None)
    assert (Invoke, echo) == (type(again), again.fn)
    assert {"echo": "hi"} == finished(steps, {"echo": "hi"})


def test_a_mutating_call_out_of_tries_is_recorded_failed_then_raises(app: Seawall) -> None:
    """The last error is recorded on the step's row before it reaches the agent."""
    spec = tool(charge, mutating=True)
    work = journal(app)
    steps = call(work, spec, (5,), {})
    next(steps)
    steps.send(None)
    failure = steps.throw(ConnectionError("gone"))
    assert isinstance(failure, Ledger)
    assert ("failed", ConnectionError) == (
        failure.kwargs["status"],
        type(failure.kwargs["error"]),
    )
    with pytest.raises(ConnectionError):
        steps.send(None)
    assert 0 == work.mutations


def test_a_completed_step_is_served_without_any_request(app: Seawall) -> None:
    """A resumed attempt gets the recorded result and the tool is not asked."""
    spec = tool(echo)
    step = recorded_step(app, spec, ("hi",), COMPLETED, {"echo": "recorded"})
    steps = call(journal(app, [step]), spec, ("hi",), {})
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert {"echo": "recorded"} == done.value.value


def test_an_in_doubt_call_is_read_back_before_anything_else(app: Seawall) -> None:
    """An intent without a result, on a tool with read_back: the read-back comes first."""

    def charged(result: Any, amount: int) -> bool:
        return True

    spec = tool(charge, mutating=True, read_back=charged)
    step = recorded_step(app, spec, (5,), STARTED)
    steps = call(journal(app, [step]), spec, (5,), {})
    read_back = next(steps)
    assert (Invoke, charged, (None, 5)) == (type(read_back), read_back.fn, read_back.args)
    recorded = steps.send(True)
    assert (Ledger, COMPLETED) == (type(recorded), recorded.kwargs["status"])
    assert finished(steps) is None


def test_an_in_doubt_call_nothing_can_settle_is_refused(app: Seawall) -> None:
    """Neither idempotent nor able to read back: InDoubtError before any request."""
    spec = tool(charge, mutating=True)
    step = recorded_step(app, spec, (5,), STARTED)
    with pytest.raises(InDoubtError):
        next(call(journal(app, [step]), spec, (5,), {}))


def test_a_budget_refuses_the_call_before_any_request(app: Seawall) -> None:
    """A run that has made its allowed calls is refused at once."""
    work = journal(app, guards=Guards(max_tool_calls=2))
    work.calls = 2
    with pytest.raises(BudgetExceededError):
        next(call(work, tool(echo), ("hi",), {}))


def test_the_streak_guard_refuses_the_call_before_any_request(app: Seawall) -> None:
    """Too many calls in a row without a passing gate: refused before the tool is asked."""
    work = journal(app, guards=Guards(max_calls_without_gate=2))
    work.calls_since_gate = 2
    with pytest.raises(GuardTrippedError):
        next(call(work, tool(echo), ("hi",), {}))


def test_an_interrupted_attempt_makes_no_further_request(app: Seawall) -> None:
    """Once the lease is lost, every call raises that loss again."""
    work = journal(app)
    lost = LeaseLostError("taken over")
    work.interrupt(lost)
    with pytest.raises(LeaseLostError) as raised:
        next(call(work, tool(echo), ("hi",), {}))
    assert lost is raised.value


# -- the two drivers --------------------------------------------------------------------------


async def doubled(value: int) -> int:
    """An async tool."""
    return value * 2


async def tripled(value: int) -> int:
    """One of Seawall's own coroutines."""
    return value * 3


def refuse(value: int) -> int:
    """A store call that fails."""
    raise ValueError(value)


def every_request(seen: list[Any]) -> Steps[list[Any]]:
    """A machine that makes each kind of request and catches an error thrown back into it."""
    seen.append((yield Ledger(len, "abc")))
    seen.append((yield Invoke(doubled, 4)))
    seen.append((yield Invoke(echo, "x")))
    seen.append((yield Wait(0.0)))
    seen.append((yield Gather(lambda: tripled(5))))
    try:
        yield Ledger(refuse, 9)
    except ValueError as exc:
        seen.append(("thrown back", exc.args))
    return seen


EXPECTED = [3, 8, {"echo": "x"}, None, 15, ("thrown back", (9,))]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, as the app's is."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join()
    running.close()


def test_the_sync_driver_carries_out_every_request(
    app: Seawall, loop: asyncio.AbstractEventLoop
) -> None:
    """In the calling thread; coroutines on the loop; errors thrown back into the machine."""
    assert EXPECTED == drive(every_request([]), journal(app), loop)


def test_the_async_driver_carries_out_every_request(app: Seawall) -> None:
    """On the running loop, with the same answers as the sync driver."""
    ledger = LedgerIO(app.store)
    try:
        assert EXPECTED == asyncio.run(adrive(every_request([]), journal(app), ledger))
    finally:
        ledger.close()


def test_a_lost_lease_in_a_store_call_interrupts_the_attempt(
    app: Seawall, loop: asyncio.AbstractEventLoop
) -> None:
    """The driver marks the journal interrupted, so no later call starts."""

    def lose() -> None:
        raise LeaseLostError("taken over")

    def one_write() -> Steps[None]:
        yield Ledger(lose)

    work = journal(app)
    with pytest.raises(LeaseLostError):
        drive(one_write(), work, loop)
    assert isinstance(work.interrupted, LeaseLostError)
