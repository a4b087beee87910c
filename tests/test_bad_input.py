"""Bad input through the public API: clear errors, nothing half-recorded, no repeated effects."""

# The house style writes asserts as `expected == actual`, which SIM300 calls a Yoda condition.
# (SIM300 is ignored for tests in pyproject.toml)

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

import seawall
from seawall import ErrorClass, FailureCause, RunStatus, Seawall


def _failure(result: seawall.RunResult) -> tuple[Any, ...]:
    """The fields that say how a run failed."""
    error = result.error or {}
    return (result.status, error.get("type"), result.failure_cause, result.error_class)


# -- inputs -------------------------------------------------------------------------------


def test_non_serialisable_input_raises_and_records_nothing(app: Seawall) -> None:
    """An input that is not JSON raises SerializationError naming it; no run is recorded."""

    @app.agent(name="echo")
    def echo(ctx: seawall.Context, **inputs: Any) -> Any:
        return inputs

    with pytest.raises(seawall.SerializationError) as info:
        app.run(echo, when=object())
    assert "inputs of agent 'echo'.when" == info.value.path
    assert [] == app.ledger.runs()


def test_set_nested_in_input_names_its_path(app: Seawall) -> None:
    """A set deep inside an input is named by its full path."""

    @app.agent(name="echo")
    def echo(ctx: seawall.Context, **inputs: Any) -> Any:
        return inputs

    with pytest.raises(seawall.SerializationError) as info:
        app.run(echo, order={"items": [{"tags": {"a", "b"}}]})
    assert "inputs of agent 'echo'.order.items[0].tags" == info.value.path
    assert str(info.value).startswith("inputs")
    assert [] == app.ledger.runs()


def test_input_with_registered_encoder_is_accepted(ledger_url: str) -> None:
    """Seawall(encoders=...) lets an input of that type be recorded."""
    with Seawall(ledger_url, encoders={datetime: datetime.isoformat}) as app:

        @app.agent(name="echo")
        def echo(ctx: seawall.Context, when: datetime) -> str:
            return when.isoformat()

        result = app.run(echo, when=datetime(2024, 1, 2, tzinfo=UTC))
        assert {"when": "2024-01-02T00:00:00+00:00"} == app.ledger.inputs(result.run_id)


def test_input_over_max_payload_bytes_is_refused(ledger_url: str) -> None:
    """An input over max_payload_bytes raises PayloadTooLargeError; no run is recorded."""
    with Seawall(ledger_url, max_payload_bytes=1000) as app:

        @app.agent(name="echo")
        def echo(ctx: seawall.Context, text: str) -> str:
            return text

        with pytest.raises(seawall.PayloadTooLargeError) as info:
            app.run(echo, text="x" * 2000)
        assert 1000 == info.value.limit
        assert info.value.size > 1000
        assert [] == app.ledger.runs()


# -- tools --------------------------------------------------------------------------------


def test_unregistered_tool_fails_the_run_without_calling_it(app: Seawall) -> None:
    """ctx.call on a tool not registered with the app fails the run; the tool never runs."""
    calls: list[int] = []

    def stray() -> int:
        calls.append(1)
        return 1

    @app.agent(name="caller")
    def caller(ctx: seawall.Context) -> Any:
        return ctx.call(stray)

    result = app.run(caller)
    assert (
        RunStatus.FAILED,
        "RegistrationError",
        FailureCause.EXCEPTION,
        ErrorClass.CLEAN_ABORT,
    ) == _failure(result)
    assert [] == calls
    assert 1 == len(result.attempts)


def test_unregistered_tool_by_name_fails_the_run(app: Seawall) -> None:
    """ctx.call with an unknown tool name fails the run with RegistrationError."""

    @app.agent(name="caller")
    def caller(ctx: seawall.Context) -> Any:
        return ctx.call("no_such_tool")

    result = app.run(caller)
    assert "RegistrationError" == (result.error or {}).get("type")
    assert "no_such_tool" == (result.error or {}).get("tool")


def test_read_only_tool_returning_non_serialisable_fails_the_run(app: Seawall) -> None:
    """A read-only tool returning a non-JSON value fails the run with SerializationError."""
    calls: list[int] = []

    @app.tool(name="lookup")
    def lookup() -> set[int]:
        calls.append(1)
        return {1, 2}

    @app.agent(name="caller")
    def caller(ctx: seawall.Context) -> Any:
        return ctx.call(lookup)

    result = app.run(caller)
    assert (
        RunStatus.FAILED,
        "SerializationError",
        FailureCause.EXCEPTION,
        ErrorClass.CLEAN_ABORT,
    ) == _failure(result)
    assert "result of tool 'lookup'" == (result.error or {}).get("path")
    assert [1] == calls


def test_mutating_tool_returning_non_serialisable_is_a_partial_write(app: Seawall) -> None:
    """A mutating tool returning a non-JSON value: partial_write, and it ran exactly once."""
    calls: list[int] = []

    @app.tool(name="charge", mutating=True)
    def charge() -> object:
        calls.append(1)
        return object()

    @app.agent(name="caller", retry=seawall.Retry(attempts=3))
    def caller(ctx: seawall.Context) -> Any:
        return ctx.call(charge)

    result = app.run(caller)
    assert (
        RunStatus.FAILED,
        "SerializationError",
        FailureCause.EXCEPTION,
        ErrorClass.PARTIAL_WRITE,
    ) == _failure(result)
    assert [1] == calls
    assert 1 == len(result.attempts)


def test_mutating_tool_result_failure_is_journaled_as_completed(app: Seawall) -> None:
    """The mutating step that ran is journaled completed (never to be re-issued), no result."""

    @app.tool(name="charge", mutating=True)
    def charge() -> object:
        return object()

    @app.agent(name="caller")
    def caller(ctx: seawall.Context) -> Any:
        return ctx.call(charge)

    result = app.run(caller)
    (step,) = app.ledger.steps(result.run_id)
    assert ("charge", True, "completed", "SerializationError", None) == (
        step.record.name,
        step.record.mutating,
        step.record.status,
        step.record.error_type,
        step.response,
    )


def test_non_serialisable_tool_argument_fails_before_the_call(app: Seawall) -> None:
    """A non-JSON tool argument fails the run and the tool is not called."""
    calls: list[int] = []

    @app.tool(name="send", mutating=True)
    def send(payload: Any) -> None:
        calls.append(1)

    @app.agent(name="caller")
    def caller(ctx: seawall.Context) -> Any:
        return ctx.call(send, {"to": {"a", "b"}})

    result = app.run(caller)
    assert (
        RunStatus.FAILED,
        "SerializationError",
        FailureCause.EXCEPTION,
        ErrorClass.CLEAN_ABORT,
    ) == _failure(result)
    assert [] == calls


# -- outputs ------------------------------------------------------------------------------


def test_non_serialisable_output_fails_the_run(app: Seawall) -> None:
    """An agent returning a non-JSON output fails with an error naming the output."""

    @app.agent(name="maker")
    def maker(ctx: seawall.Context) -> Any:
        return {"result": {1, 2}}

    result = app.run(maker)
    error = result.error or {}
    assert (RunStatus.FAILED, "SerializationError") == (result.status, error.get("type"))
    assert "output of agent 'maker'.result" == error.get("path")
    assert "output" in error.get("message", "")
    assert result.output is None


def test_output_over_max_payload_bytes_fails_the_run(ledger_url: str) -> None:
    """An output over max_payload_bytes fails the run with PayloadTooLargeError."""
    with Seawall(ledger_url, max_payload_bytes=1000) as app:

        @app.agent(name="maker")
        def maker(ctx: seawall.Context) -> str:
            return "x" * 5000

        result = app.run(maker)
        assert (RunStatus.FAILED, "PayloadTooLargeError") == (
            result.status,
            (result.error or {}).get("type"),
        )


# -- lookups and registration -------------------------------------------------------------


def test_unknown_run_id_raises_run_not_found(app: Seawall) -> None:
    """get_run on an unknown id raises RunNotFoundError."""
    with pytest.raises(seawall.RunNotFoundError) as info:
        app.ledger.run("nope")
    assert "nope" == info.value.run_id


def test_unknown_agent_name_raises_registration_error(app: Seawall) -> None:
    """Running an agent name that is not registered raises RegistrationError."""
    with pytest.raises(seawall.RegistrationError) as info:
        app.run("unknown_agent")
    assert "unknown_agent" == info.value.agent
    assert [] == app.ledger.runs()


def test_unregistered_agent_function_raises_registration_error(app: Seawall) -> None:
    """Running a plain function that was never registered raises RegistrationError."""

    def loose(ctx: seawall.Context) -> None:
        return None

    with pytest.raises(seawall.RegistrationError):
        app.run(loose)


def test_two_functions_under_one_agent_name_are_refused(app: Seawall) -> None:
    """Registering a different function under an existing agent name raises."""

    @app.agent(name="dup")
    def first(ctx: seawall.Context) -> int:
        return 1

    def second(ctx: seawall.Context) -> int:
        return 2

    with pytest.raises(seawall.ConfigurationError, match="already registered"):
        app.agent(name="dup")(second)
    assert first is app.agents["dup"].fn


def test_two_functions_under_one_tool_name_are_refused(app: Seawall) -> None:
    """Registering a different function under an existing tool name raises."""

    @app.tool(name="dup")
    def first() -> int:
        return 1

    def second() -> int:
        return 2

    with pytest.raises(seawall.ConfigurationError, match="already registered"):
        app.tool(name="dup")(second)


def test_registering_the_same_function_twice_is_allowed(app: Seawall) -> None:
    """Registering one function twice under its name is a no-op, not an error."""

    def same(ctx: seawall.Context) -> int:
        return 1

    app.agent(name="same")(same)
    app.agent(name="same")(same)
    assert ["same"] == list(app.agents)


@pytest.mark.parametrize("timeout", [-1, 0, "10"])
def test_invalid_agent_timeout_is_refused(app: Seawall, timeout: Any) -> None:
    """@app.agent(timeout=...) must be a positive number."""
    with pytest.raises(seawall.ConfigurationError):

        @app.agent(timeout=timeout)
        def agent(ctx: seawall.Context) -> None:
            return None


def test_agent_without_positional_context_is_refused(app: Seawall) -> None:
    """An agent that cannot take the context positionally is refused."""
    with pytest.raises(seawall.ConfigurationError, match="first"):

        @app.agent
        def agent(*, ctx: seawall.Context) -> None:
            return None


# -- app configuration --------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://x", "mysql://x", "sqlite://"])
def test_bad_ledger_url_is_refused(url: str) -> None:
    """Seawall() with an unusable ledger URL raises LedgerURLError."""
    with pytest.raises(seawall.LedgerURLError):
        Seawall(url)


@pytest.mark.parametrize(
    "options",
    [
        {"lease": 0},
        {"lease": -5},
        {"lease": True},
        {"busy_timeout": 0},
        {"max_payload_bytes": 0},
        {"max_threads": 0},
        {"retry": 3},
        {"encoders": {"datetime": str}},
    ],
    ids=repr,
)
def test_invalid_app_options_are_refused(ledger_url: str, options: dict[str, Any]) -> None:
    """Invalid Seawall() arguments raise ConfigurationError."""
    with pytest.raises(seawall.ConfigurationError):
        Seawall(ledger_url, **options)


def test_run_inside_event_loop_is_a_usage_error(app: Seawall) -> None:
    """app.run inside a running event loop raises UsageError and records nothing."""

    @app.agent(name="echo")
    def echo(ctx: seawall.Context) -> int:
        return 1

    async def main() -> None:
        app.run(echo)

    with pytest.raises(seawall.UsageError, match="arun"):
        asyncio.run(main())
    assert [] == app.ledger.runs()


def test_waiting_on_a_handle_inside_event_loop_is_a_usage_error_at_once(app: Seawall) -> None:
    """handle.result() inside a running loop names aresult() before waiting for the run."""
    release = threading.Event()

    @app.agent(name="held")
    def held(ctx: seawall.Context) -> int:
        release.wait(10)
        return 1

    async def main() -> None:
        handle = app.submit(held)
        try:
            handle.result()
        finally:
            release.set()

    with pytest.raises(seawall.UsageError, match=r"handle\.aresult"):
        asyncio.run(main())


@pytest.mark.parametrize(
    "options", [{"status": "bogus"}, {"error_class": "bogus"}, {"limit": -1}], ids=repr
)
def test_invalid_runs_filter_is_refused(app: Seawall, options: dict[str, Any]) -> None:
    """app.ledger.runs with an unknown status or class, or a negative limit, raises."""
    with pytest.raises(seawall.ConfigurationError):
        app.ledger.runs(**options)


# -- usage records ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage",
    [{"input_tokens": -1}, {"output_tokens": 1.5}, {"input_tokens": True}, {"cost_usd": -0.01}],
    ids=repr,
)
def test_invalid_usage_record_fails_the_run(app: Seawall, usage: dict[str, Any]) -> None:
    """ctx.record_usage with a negative or non-integer count fails with ConfigurationError."""

    @app.agent(name="spender")
    def spender(ctx: seawall.Context) -> None:
        ctx.record_usage(model="m", **usage)

    result = app.run(spender)
    assert (
        RunStatus.FAILED,
        "ConfigurationError",
        FailureCause.EXCEPTION,
        ErrorClass.CLEAN_ABORT,
    ) == _failure(result)
    assert 1 == len(result.attempts)
