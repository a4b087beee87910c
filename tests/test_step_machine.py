"""The step machine of ``ctx.call`` on its own: it asks for I/O and is given the answers.

These tests build the journal's state (recorded steps, counters, an interrupted attempt) and
step the machine by hand, so a backoff is a ``Wait`` request to look at, never a sleep; then
they check that the sync and the async driver carry out one machine alike.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from seawall import Context, Guards, Retry, RunStatus, Seawall
from seawall.errors import (
    BudgetExceededError,
    GuardTrippedError,
    InDoubtError,
    LeaseLostError,
    RetryableError,
    VerificationError,
)
from seawall.ledger import StepRecord
from seawall.runtime.calls import call
from seawall.runtime.children import child_run
from seawall.runtime.journal import Journal
from seawall.runtime.ledger_io import LedgerIO
from seawall.runtime.registry import ToolSpec
from seawall.runtime.serving import COMPLETED, FAILED, STARTED
from seawall.runtime.steps import Gather, Invoke, Ledger, Steps, Wait, adrive, drive
from seawall.verify import Verdict, rule

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
    return Journal(app.store, app.runtime.codec, RUN, 1, recorded or [], epoch=1, **options)


def recorded_step(
    app: Seawall, spec: ToolSpec, args: tuple[Any, ...], status: str, result: Any = None
) -> StepRecord:
    """The row an earlier attempt left for ``spec(*args)`` at seq 1."""
    return recorded_row(
        app, spec.kind, spec.name, spec.mutating, (spec.name, args, {}), status, result
    )


def recorded_row(
    app: Seawall,
    kind: str,
    name: str,
    mutating: bool,
    request: Any,
    status: str,
    result: Any = None,
    key: str = f"{RUN}:1",
) -> StepRecord:
    """The row an earlier attempt left at seq 1 for a step of ``kind`` asking ``request``."""
    scratch = journal(app)
    _, request_hash, column, _ = scratch.encode(request, "request")
    response = scratch.stored(result, "response")[0] if status == COMPLETED else None
    return StepRecord(
        run_id=RUN,
        seq=1,
        attempt=1,
        kind=kind,
        name=name,
        mutating=mutating,
        idempotency_key=key,
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


def test_a_breaker_not_known_closed_is_asked_before_the_call(app: Seawall) -> None:
    """Unknown state: one ledger request to admit the call, before the tool is invoked."""
    spec = ToolSpec.build(echo, name=None, mutating=False, idempotent=False, retry=Retry())
    steps = call(journal(app, breakers=app.runtime.breakers), spec, ("hi",), {})
    check = next(steps)
    assert (Ledger, app.runtime.breakers.check, "tool:echo") == (
        type(check),
        check.fn,
        check.args[0],
    )
    assert Invoke is type(steps.send(None))


def test_an_interrupted_attempt_makes_no_further_request(app: Seawall) -> None:
    """Once the lease is lost, every call raises that loss again."""
    work = journal(app)
    lost = LeaseLostError("taken over")
    work.interrupt(lost)
    with pytest.raises(LeaseLostError) as raised:
        next(call(work, tool(echo), ("hi",), {}))
    assert lost is raised.value


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


# -- child runs and gates ---------------------------------------------------------------------


class Children:
    """What the child-run machine asks of the app; nothing here is called by the tests."""

    def __init__(self, app: Seawall) -> None:
        self.app = app
        self.seen: list[str] = []

    def resolve(self, agent: Any) -> Any:
        return self.app.runtime.registry.agent(agent)

    def result_of(self, run_id: str) -> Any:
        raise AssertionError(run_id)

    def start(self, _spec: Any, _inputs: dict[str, Any], run_id: str) -> str:
        self.seen.append(f"start {run_id}")
        return "started"

    def see_through(self, _spec: Any, _inputs: dict[str, Any], run_id: str) -> str:
        self.seen.append(f"see through {run_id}")
        return "seen through"


@pytest.fixture
def child(app: Seawall) -> Callable[..., Any]:
    """A registered agent to start as a child."""

    @app.agent(name="child")
    def child(ctx: Context, n: int) -> int:
        return n

    return child


def test_a_child_run_makes_its_id_durable_before_it_starts(
    app: Seawall, child: Callable[..., Any]
) -> None:
    """Intent keyed by the child's id, then the child, then its end (failed if it failed)."""
    children = Children(app)
    work = journal(app)
    steps = child_run(work, children, child, {"n": 1})
    intent = next(steps)
    assert isinstance(intent, Ledger)
    child_id = intent.args[0][6]
    assert (work.write_intent, "run", STARTED) == (intent.fn, intent.args[0][3], intent.args[0][10])
    started = steps.send(None)
    assert isinstance(started, Gather)
    assert ("started", [f"start {child_id}"]) == (started.make(), children.seen)
    failed = SimpleNamespace(status=RunStatus.FAILED)
    end = steps.send(failed)
    assert isinstance(end, Ledger)
    assert (work.complete, FAILED) == (end.fn, end.kwargs["status"])
    assert failed is finished(steps)


def test_a_child_cut_off_by_a_crash_is_seen_through_not_started_again(
    app: Seawall, child: Callable[..., Any]
) -> None:
    """The recorded intent's child id is taken over; no new id, no new intent."""
    step = recorded_row(
        app, "run", "child", True, ("child", [], {"n": 1}), STARTED, key="child-run-1"
    )
    children = Children(app)
    steps = child_run(journal(app, [step]), children, child, {"n": 1})
    taken = next(steps)
    assert isinstance(taken, Gather)
    assert ("seen through", ["see through child-run-1"]) == (taken.make(), children.seen)


def test_a_completed_child_is_served_from_the_ledger(
    app: Seawall, child: Callable[..., Any]
) -> None:
    """The child's result is read back by its id; it does not run."""
    step = recorded_row(
        app,
        "run",
        "child",
        True,
        ("child", [], {"n": 1}),
        COMPLETED,
        {"run_id": "child-run-1", "status": "succeeded"},
    )
    children = Children(app)
    steps = child_run(journal(app, [step]), children, child, {"n": 1})
    read = next(steps)
    assert (Ledger, children.result_of, ("child-run-1",)) == (type(read), read.fn, read.args)


def test_a_gate_records_its_verdicts_then_refuses_a_failing_value(
    app: Seawall, loop: asyncio.AbstractEventLoop
) -> None:
    """The verifiers are one Gather request; their verdicts are written before the refusal."""
    work = journal(app)
    ctx = Context(work, "agent", app.runtime.registry.tool, loop)
    positive = rule(lambda value: value > 0, "must be positive")
    steps = ctx._gate_steps(-1, (positive,))  # the machine behind ctx.verify
    assert isinstance(next(steps), Gather)
    verdicts = steps.send([Verdict(name=positive.name, passed=False, message="must be positive")])
    assert isinstance(verdicts, Ledger)
    assert (work.store.record_verdicts, "gate") == (verdicts.fn, verdicts.args[2])
    with pytest.raises(VerificationError, match="must be positive"):
        steps.send(None)


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
