"""Regressions found in review: served writes, in-doubt recovery, conversions, invalid responses."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from seawall import (
    ConfigurationError,
    Context,
    Retry,
    RetryableError,
    RunStatus,
    Seawall,
    ToolResponseError,
)


def test_served_write_with_read_back_is_checked_again_and_resets_the_guard(app: Seawall) -> None:
    """On a retry, served writes re-run their read-back, so the mutation guard does not trip."""
    state: set[str] = set()
    checks: list[str] = []

    def present(result: str, key: str) -> bool:
        checks.append(key)
        return key in state

    @app.tool(mutating=True, read_back=present)
    def put(key: str) -> str:
        state.add(key)
        return key

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> str:
        for key in "abcde":
            ctx.call(put, key)
        if ctx.attempt == 1:
            raise RetryableError("flaky")
        return "done"

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert list("abcde") * 2 == checks


def test_returns_function_is_not_applied_twice_to_a_served_step(app: Seawall) -> None:
    """A converting returns= runs once; the journal serves the converted value as it was."""
    seen: list[int] = []

    @app.tool(returns=lambda v: v * 2)
    def five() -> int:
        return 5

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> int:
        value = ctx.call(five)
        seen.append(value)
        if ctx.attempt == 1:
            raise RetryableError("again")
        return value

    assert 10 == app.run(agent).output
    assert [10, 10] == seen


def test_invalid_response_of_a_mutating_tool_is_not_executed_again(app: Seawall) -> None:
    """The effect of a write whose response fails returns= happened: it is not retried."""
    calls = {"n": 0}

    class Receipt(BaseModel):
        id: str

    @app.tool(mutating=True, returns=Receipt, retry=Retry(attempts=3, initial=0.01))
    def pay(amount: int) -> dict[str, Any]:
        calls["n"] += 1
        return {"unexpected": amount}

    @app.agent(retry=Retry(attempts=2, initial=0.01))
    def agent(ctx: Context) -> None:
        ctx.call(pay, 5)

    result = app.run(agent)
    assert 1 == calls["n"]
    assert "ToolResponseError" == result.error["type"]
    [step] = app.ledger.steps(result.run_id)
    assert "completed" == step.record.status


def test_invalid_json_schema_is_refused_at_registration(app: Seawall) -> None:
    """returns= with a schema that is not valid JSON Schema fails when the tool is registered."""
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):

        @app.tool(returns={"type": "no-such-type"})
        def tool() -> int:
            return 1


def test_response_error_is_retried_for_a_read_only_tool(app: Seawall) -> None:
    """A malformed read is transient: the tool's policy calls it again."""
    calls = {"n": 0}

    @app.tool(returns=int, retry=Retry(attempts=3, initial=0.01))
    def read() -> Any:
        calls["n"] += 1
        return "x" if calls["n"] < 3 else 3

    @app.agent
    def agent(ctx: Context) -> int:
        return ctx.call(read)

    assert 3 == app.run(agent).output
    assert issubclass(ToolResponseError, RetryableError)


class _Crash(BaseException):
    """Stands in for the process dying between a side effect and its journal write."""


def test_in_doubt_write_recovered_by_read_back_gets_its_result(ledger_url: str) -> None:
    """read_back returning the current state recovers an in-doubt write with a real result."""
    import time

    class Receipt(BaseModel):
        id: str

    ledger: dict[str, str] = {}
    crash = {"armed": True}
    app = Seawall(ledger_url, lease=0.2)

    @app.tool(
        mutating=True,
        returns=Receipt,
        read_back=lambda result, key: {"id": ledger[key]} if key in ledger else None,
    )
    def book(key: str) -> dict[str, str]:
        ledger[key] = f"bk-{key}"
        if crash["armed"]:
            crash["armed"] = False
            raise _Crash
        return {"id": ledger[key]}

    @app.agent
    def agent(ctx: Context) -> str:
        return ctx.call(book, "k").id

    try:
        with pytest.raises(_Crash):
            app.run(agent)
        time.sleep(0.3)
        [result] = app.resume()
        assert RunStatus.SUCCEEDED == result.status
        assert "bk-k" == result.output
        assert {"k": "bk-k"} == ledger
    finally:
        app.close()
