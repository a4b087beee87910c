"""The runtime: runs, retries, classification, journaling, timeouts, sync and async agents."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from seawall import (
    AsyncContext,
    Context,
    ErrorClass,
    FailureCause,
    PermanentError,
    Retry,
    RetryableError,
    RunFailedError,
    RunStatus,
    Seawall,
    UsageError,
)
from seawall.cli import cli

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers


def test_sync_agent_succeeds_and_records_minimum_fields(app: Seawall) -> None:
    """A successful run has every minimum ledger field filled."""

    @app.agent
    def greet(ctx: Context, name: str) -> str:
        return f"hello {name}"

    result = app.run(greet, name="ada")
    assert RunStatus.SUCCEEDED == result.status
    assert "hello ada" == result.output
    run = app.ledger.run(result.run_id)
    assert "greet" == run.agent
    assert run.end_time is not None
    assert run.end_time >= run.start_time
    assert 64 == len(run.input_hash)
    assert 64 == len(run.output_hash or "")
    assert run.error_class is None
    assert 1 == run.attempts
    assert run.code_version
    assert run.lease_owner is None
    assert {"name": "ada"} == app.ledger.inputs(result.run_id)
    assert "hello ada" == app.ledger.output(result.run_id)


def test_async_agent_and_async_tool(app: Seawall) -> None:
    """Async agents await ctx.call; async tools are awaited inline."""

    @app.tool
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @app.agent
    async def agent(ctx: AsyncContext, x: int) -> int:
        return await ctx.call(double, x) + 1

    assert 9 == app.run(agent, x=4).output


def test_sync_tool_from_async_agent_and_async_tool_from_sync_agent(app: Seawall) -> None:
    """Tools of the other colour work from both kinds of agents."""

    @app.tool
    def sync_tool(x: int) -> int:
        return x + 1

    @app.tool
    async def async_tool(x: int) -> int:
        return x + 10

    @app.agent
    async def async_agent(ctx: AsyncContext) -> int:
        return await ctx.call(sync_tool, 1)

    @app.agent
    def sync_agent(ctx: Context) -> int:
        return ctx.call(async_tool, 1)

    assert 2 == app.run(async_agent).output
    assert 11 == app.run(sync_agent).output


def test_decorated_functions_stay_plain_outside_a_run(app: Seawall) -> None:
    """Calling a decorated agent or tool directly is a plain call."""

    @app.tool(mutating=True)
    def tool(x: int) -> int:
        return x * 3

    @app.agent
    def agent(ctx: Any, x: int) -> int:
        return x + 1

    assert 6 == tool(2)
    assert 2 == agent(None, 1)
    assert [] == app.ledger.runs()


def test_transient_failure_is_retried_and_every_attempt_recorded(app: Seawall) -> None:
    """A transient agent failure is retried; failed attempts stay visible."""
    calls = {"n": 0}

    @app.agent(retry=Retry(attempts=3, initial=0.01))
    def flaky(ctx: Context) -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError(f"down {calls['n']}")
        return "up"

    result = app.run(flaky)
    assert RunStatus.SUCCEEDED == result.status
    assert ["failed", "failed", "succeeded"] == [a.status for a in result.attempts]
    assert ["down 1", "down 2", None] == [a.error_message for a in result.attempts]
    assert all(a.retry_delay is not None for a in result.attempts[:2])
    assert ErrorClass.CLEAN_ABORT == result.attempts[0].error_class


def test_retries_exhausted_end_in_clean_abort(app: Seawall) -> None:
    """With no side effect, a run that keeps failing ends clean_abort after its attempts."""

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def broken(ctx: Context) -> None:
        raise TimeoutError("model timed out")

    result = app.run(broken)
    assert RunStatus.FAILED == result.status
    assert ErrorClass.CLEAN_ABORT == result.error_class
    assert FailureCause.TIMEOUT == result.failure_cause
    assert 2 == len(result.attempts)
    assert "TimeoutError" == result.error["type"]
    with pytest.raises(RunFailedError, match="clean_abort"):
        result.raise_for_status()


def test_permanent_failure_is_not_retried(app: Seawall) -> None:
    """A permanent error ends the run after one attempt."""
    calls = {"n": 0}

    @app.agent(retry=Retry(attempts=5))
    def invalid(ctx: Context) -> None:
        calls["n"] += 1
        raise PermanentError("the order id is malformed")

    result = app.run(invalid)
    assert 1 == calls["n"]
    assert FailureCause.EXCEPTION == result.failure_cause
    assert "permanent" == result.error["code"]


def test_failure_after_mutating_call_is_partial_write(app: Seawall) -> None:
    """A run that fails after a completed mutating call is classified partial_write."""

    @app.tool(mutating=True)
    def charge(amount: int) -> str:
        return "charged"

    @app.agent(retry=Retry(attempts=1))
    def agent(ctx: Context) -> None:
        ctx.call(charge, 5)
        raise ValueError("bad receipt")

    result = app.run(agent)
    assert ErrorClass.PARTIAL_WRITE == result.error_class


def test_completed_mutating_call_is_not_repeated_on_retry(app: Seawall) -> None:
    """An error retry asks the read-only tool again and serves the completed side effect."""
    effects: list[tuple[int, str]] = []
    reads = {"n": 0}
    fail = {"left": 1}

    @app.tool
    def lookup() -> int:
        reads["n"] += 1
        return 41

    @app.tool(mutating=True)
    def send(value: int, idempotency_key: str) -> str:
        effects.append((value, idempotency_key))
        return "sent"

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> int:
        value = ctx.call(lookup) + 1
        ctx.call(send, value)
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("lost the reply")
        return value

    result = app.run(agent)
    assert 42 == result.output
    assert 1 == len(effects)
    assert 2 == reads["n"]
    assert effects[0][1] == f"{result.run_id}:2"
    assert ErrorClass.PARTIAL_WRITE == result.attempts[0].error_class


def test_failed_tool_retries_inside_the_step(app: Seawall) -> None:
    """A tool's own retry policy retries inside one journal step and records the tries."""
    calls = {"n": 0}

    @app.tool(retry=Retry(attempts=3, initial=0.01))
    def index(q: str) -> list[str]:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("index down")
        return [q]

    @app.agent
    def agent(ctx: Context) -> list[str]:
        return ctx.call(index, "x")

    result = app.run(agent)
    assert ["x"] == result.output
    [step] = app.ledger.steps(result.run_id)
    assert 3 == step.record.tries
    assert "completed" == step.record.status
    assert 1 == len(result.attempts)


def test_failed_tool_step_is_journaled_with_its_error(app: Seawall) -> None:
    """A tool that fails for good is journaled as failed, with its error."""

    @app.tool(retry=Retry(attempts=1))
    def boom() -> None:
        raise KeyError("missing")

    @app.agent(retry=Retry(attempts=1))
    def agent(ctx: Context) -> None:
        ctx.call(boom)

    result = app.run(agent)
    [step] = app.ledger.steps(result.run_id)
    assert "failed" == step.record.status
    assert "KeyError" == step.record.error_type
    assert "KeyError" == result.error["type"]


def test_caller_idempotency_key_is_used(app: Seawall) -> None:
    """A key given by the caller is passed to the tool and recorded on the step."""
    seen: list[str] = []

    @app.tool(mutating=True, idempotent=True)
    def pay(amount: int, idempotency_key: str) -> int:
        seen.append(idempotency_key)
        return amount

    @app.agent
    def agent(ctx: Context) -> int:
        return ctx.call(pay, 3, idempotency_key="order-17")

    result = app.run(agent)
    assert ["order-17"] == seen
    assert "order-17" == app.ledger.steps(result.run_id)[0].record.idempotency_key


def test_now_uuid_random_are_journaled_and_served_on_retry(app: Seawall) -> None:
    """ctx.now/uuid/random return the same values on a retry that replays them."""
    values: list[tuple[float, str, float]] = []
    fail = {"left": 1}

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> list[Any]:
        triple = (ctx.now(), ctx.uuid(), ctx.random())
        values.append(triple)
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("again")
        return list(triple)

    result = app.run(agent)
    assert values[0] == values[1]
    kinds = [s.record.kind for s in app.ledger.steps(result.run_id)]
    assert ["now", "uuid", "random"] == kinds


def test_usage_is_rolled_up_once_across_attempts(app: Seawall) -> None:
    """Tokens and cost recorded before a retry are counted once, not per attempt."""
    fail = {"left": 1}

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> str:
        ctx.record_usage(model="m", input_tokens=100, output_tokens=20, cost_usd=0.5)
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("retry me")
        ctx.record_usage(model="m", input_tokens=1, output_tokens=2, cost_usd=0.25)
        return "ok"

    result = app.run(agent)
    assert 123 == result.tokens_used
    assert 0.75 == pytest.approx(result.cost_usd)
    run = app.ledger.run(result.run_id)
    assert (101, 22) == (run.input_tokens, run.output_tokens)


def test_an_error_retry_asks_again_on_a_new_line(app: Seawall) -> None:
    """An error retry asks every read-only call again on a new journal line; the old one stays."""
    attempt = {"n": 0}

    @app.tool
    def fetch(x: int) -> int:
        return x

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> int:
        attempt["n"] += 1
        first = ctx.call(fetch, 1)
        second = ctx.call(fetch, 10 * attempt["n"])
        if attempt["n"] == 1:
            raise ConnectionError("retry")
        return first + second

    result = app.run(agent)
    assert 21 == result.output
    steps = app.ledger.steps(result.run_id)
    assert [([1], 1), ([10], 1), ([1], 2), ([20], 2)] == [
        (s.request[1], s.record.attempt) for s in steps
    ]
    assert [0, 2] == [a.base_seq for a in result.attempts]


def test_divergence_over_a_completed_side_effect_stops_the_run(app: Seawall) -> None:
    """A retry that would skip a completed mutating step fails with a divergence report."""
    attempt = {"n": 0}

    @app.tool(mutating=True)
    def write(x: int) -> int:
        return x

    @app.agent(retry=Retry(attempts=3, initial=0.01))
    def agent(ctx: Context) -> None:
        attempt["n"] += 1
        ctx.call(write, attempt["n"])
        raise ConnectionError("retry")

    result = app.run(agent)
    assert FailureCause.DIVERGENCE == result.failure_cause
    assert 2 == len(result.attempts)
    assert 1 == result.error["step"]
    assert ErrorClass.PARTIAL_WRITE == result.error_class


SYSTEM_PROMPT = "You file support tickets."


@pytest.mark.parametrize(
    "system",
    [
        pytest.param(SYSTEM_PROMPT, id="inline-request"),
        pytest.param(SYSTEM_PROMPT + " Be brief." * 30, id="blob-request"),
    ],
)
def test_a_divergence_over_a_completed_side_effect_says_what_changed(
    app: Seawall, ledger_url: str, system: str
) -> None:
    """A retry sends a completed side effect another conversation: the error's message, its
    ``changes`` and `seawall show` name the field (``messages[3].content``) and both values."""
    stamps = iter(["sent at 10:00", "sent at 10:05"])  # a wall clock, not ctx.now()

    @app.tool(mutating=True)
    def post_transcript(messages: list[dict[str, str]]) -> str:
        return "posted"

    failures = {"left": 1}

    @app.agent(retry=Retry(attempts=2, initial=0))
    def agent(ctx: Context) -> str:
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": "My parcel is late."},
            {"role": "assistant", "content": "I filed ticket T-9."},
            {"role": "user", "content": next(stamps)},
        ]
        ctx.call(post_transcript, messages=messages)
        if failures["left"]:
            failures["left"] -= 1
            raise TimeoutError("the mailer timed out")
        return "done"

    result = app.run(agent)
    assert (RunStatus.FAILED, FailureCause.DIVERGENCE) == (result.status, result.failure_cause)
    error = result.error or {}
    change = {"path": "messages[3].content", "before": "sent at 10:00", "after": "sent at 10:05"}
    assert [change] == error["changes"]
    line = 'messages[3].content: "sent at 10:00" → "sent at 10:05"'
    assert line in error["message"]
    shown = CliRunner().invoke(cli, ["show", result.run_id, "--ledger", ledger_url])
    assert 0 == shown.exit_code, shown.output
    assert f"  {line}\n" in shown.output  # on a line of its own, not wrapped in a table cell


def test_async_agent_timeout(app: Seawall) -> None:
    """An async agent past its timeout is cancelled and the attempt recorded as a timeout."""

    @app.agent(timeout=0.05, retry=Retry(attempts=1))
    async def slow(ctx: AsyncContext) -> None:
        await asyncio.sleep(5)

    result = app.run(slow)
    assert FailureCause.TIMEOUT == result.failure_cause
    assert ErrorClass.CLEAN_ABORT == result.error_class


def test_sync_agent_timeout_fences_the_abandoned_thread(app: Seawall) -> None:
    """A timed-out sync agent cannot start a tool call after the attempt was abandoned."""
    calls: list[int] = []
    release = threading.Event()

    @app.tool(mutating=True)
    def effect(x: int) -> int:
        calls.append(x)
        return x

    @app.agent(timeout=0.05, retry=Retry(attempts=1))
    def slow(ctx: Context) -> None:
        release.wait(2)
        ctx.call(effect, 1)

    result = app.run(slow)
    release.set()
    time.sleep(0.1)
    assert FailureCause.TIMEOUT == result.failure_cause
    assert [] == calls
    assert [] == app.ledger.steps(result.run_id)


def test_sync_api_inside_event_loop_is_refused(app: Seawall) -> None:
    """app.run inside a running loop raises UsageError naming arun."""

    @app.agent
    def agent(ctx: Context) -> int:
        return 1

    async def main() -> None:
        with pytest.raises(UsageError, match="arun"):
            app.run(agent)
        assert 1 == (await app.arun(agent)).output

    asyncio.run(main())


def test_concurrent_async_runs(app: Seawall) -> None:
    """Many runs awaited together each get their own journal and result."""

    @app.tool
    async def square(x: int) -> int:
        await asyncio.sleep(0.001)
        return x * x

    @app.agent
    async def agent(ctx: AsyncContext, x: int) -> int:
        return await ctx.call(square, x)

    async def main() -> list[int]:
        results = await asyncio.gather(*(app.arun(agent, x=i) for i in range(50)))
        return [r.output for r in results]

    assert [i * i for i in range(50)] == asyncio.run(main())
    assert 50 == len(app.ledger.runs(limit=100))


def test_retry_after_is_honoured_within_max_delay(app: Seawall) -> None:
    """A RetryableError's retry_after sets the recorded backoff (capped by max_delay)."""
    calls = {"n": 0}

    @app.agent(retry=Retry(attempts=2, initial=0.01, max_delay=3))
    def agent(ctx: Context) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RetryableError("rate limited", retry_after=2.5)
        return "ok"

    result = app.run(agent)
    assert 2.5 == result.attempts[0].retry_delay


def test_runs_filters(app: Seawall) -> None:
    """app.ledger.runs filters by status, agent and error class."""

    @app.agent(retry=Retry(attempts=1))
    def good(ctx: Context) -> int:
        return 1

    @app.agent(retry=Retry(attempts=1))
    def bad(ctx: Context) -> None:
        raise ValueError("no")

    app.run(good)
    app.run(bad)
    app.run(good)
    assert 3 == len(app.ledger.runs())
    assert 2 == len(app.ledger.runs(status="succeeded"))
    assert ["bad"] == [r.agent for r in app.ledger.runs(error_class="clean_abort")]
    assert 1 == len(app.ledger.runs(agent="bad"))
    assert 1 == len(app.ledger.runs(limit=1))
    assert 2 == len(app.ledger.runs(offset=1))


def test_one_function_cannot_be_two_tools(app: Seawall) -> None:
    """Registering one function under a second tool name is refused (calls would be ambiguous)."""
    from seawall import ConfigurationError

    def body(x: int) -> int:
        return x

    app.tool(name="read")(body)
    with pytest.raises(ConfigurationError, match="ambiguous"):
        app.tool(name="write", mutating=True)(body)
    assert app.tool(name="read")(body) is body
