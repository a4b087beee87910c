"""A retry that can change the outcome: after an error the next attempt asks the model and the
read-only tools again and serves only the side effects already done."""

from __future__ import annotations

from typing import Any

import pytest

from seawall import (
    Context,
    ErrorClass,
    FailureCause,
    Retry,
    RunStatus,
    Seawall,
)

LEDGERS = ("sqlite", "postgres")


def flaky_model(app: Seawall, answers: list[str]) -> list[str]:
    """An LLM step answering ``answers`` in turn; returns the list of prompts it was asked."""
    asked: list[str] = []

    @app.tool(name="model", llm=True)
    def model(prompt: str) -> str:
        asked.append(prompt)
        return answers[min(len(asked), len(answers)) - 1]

    return asked


def test_a_retry_after_a_bad_answer_asks_the_model_again(app: Seawall) -> None:
    """The model's first answer breaks the agent; the retry asks again and succeeds."""
    asked = flaky_model(app, ["not a number", "42"])
    charged: list[str] = []

    @app.tool(mutating=True)
    def charge(amount: int, idempotency_key: str) -> str:
        charged.append(idempotency_key)
        return "ok"

    @app.agent(retry=Retry(attempts=2, initial=0))
    def agent(ctx: Context) -> int:
        ctx.call(charge, 10)
        answer = ctx.call("model", "how many?")
        return int(answer)  # ValueError on the first answer

    result = app.run(agent)
    assert (RunStatus.SUCCEEDED, 42) == (result.status, result.output)
    assert ["how many?", "how many?"] == asked  # asked twice
    assert 1 == len(charged)  # the side effect before it was served, not repeated
    first = result.attempts[0]
    assert (FailureCause.EXCEPTION, ErrorClass.PARTIAL_WRITE) == (
        first.failure_cause,
        first.error_class,
    )
    assert "asks the model and the read-only tools again" in (first.decision or "")
    assert "serves the 1 side effect(s) already done" in (first.decision or "")


def test_the_usage_of_an_answer_asked_again_is_counted_apart(app: Seawall) -> None:
    """The first answer's tokens and cost stay on the run as retried usage, not in its totals."""
    asked = flaky_model(app, ["not a number", "42"])

    @app.agent(retry=Retry(attempts=2, initial=0))
    def agent(ctx: Context) -> int:
        answer = ctx.call("model", "how many?")
        ctx.record_usage(model="m", input_tokens=100, output_tokens=10, cost_usd=0.5)
        return int(answer)

    result = app.run(agent)
    assert (RunStatus.SUCCEEDED, 2) == (result.status, len(asked))
    run = app.ledger.run(result.run_id)
    assert (100, 10, 0.5) == (run.input_tokens, run.output_tokens, run.cost_usd)
    assert (100, 10, 0.5) == (
        run.retried_input_tokens,
        run.retried_output_tokens,
        run.retried_cost_usd,
    )


def test_a_permanent_error_before_any_call_is_not_retried(app: Seawall) -> None:
    """Nothing was asked, so nothing can answer differently: one attempt, and it says why."""

    @app.agent(retry=Retry(attempts=3))
    def agent(ctx: Context, order: dict[str, Any]) -> int:
        return int(order["quantity"])  # KeyError: the input lacks it

    result = app.run(agent, order={"qty": 2})
    assert (RunStatus.FAILED, 1) == (result.status, len(result.attempts))
    decision = result.attempts[0].decision or ""
    assert "not retried: permanent error before any model or tool call" == decision


def test_a_retry_asking_for_another_side_effect_stops_with_a_readable_diff(app: Seawall) -> None:
    """Asked again, the model wants a different refund: the completed one is neither dropped nor
    repeated; the run stops and names what changed."""
    asked = flaky_model(app, ["30", "45"])
    refunds: list[int] = []

    @app.tool(mutating=True)
    def refund(amount: int) -> str:
        refunds.append(amount)
        return "refunded"

    failures = {"left": 1}

    @app.agent(retry=Retry(attempts=2, initial=0))
    def agent(ctx: Context) -> str:
        amount = int(ctx.call("model", "how much?"))
        ctx.call(refund, amount)
        if failures["left"]:
            failures["left"] -= 1
            raise TimeoutError("the mailer timed out")
        return "done"

    result = app.run(agent)
    assert 2 == len(asked)
    assert [30] == refunds
    assert (RunStatus.FAILED, FailureCause.DIVERGENCE) == (result.status, result.failure_cause)
    error = result.error or {}
    assert "args[0]: 30 → 45" in error["message"]
    assert [{"path": "args[0]", "before": 30, "after": 45}] == error["changes"]


def test_a_retry_that_no_longer_asks_for_a_done_side_effect_stops(app: Seawall) -> None:
    """Asked again, the model skips the refund already made: the result would not account for it,
    so the run stops (partial_write) instead of succeeding without it."""
    flaky_model(app, ["refund", "nothing to do"])
    refunds: list[str] = []

    @app.tool(mutating=True)
    def refund() -> str:
        refunds.append("r")
        return "refunded"

    failures = {"left": 1}

    @app.agent(retry=Retry(attempts=2, initial=0))
    def agent(ctx: Context) -> str:
        if ctx.call("model", "what now?") == "refund":
            ctx.call(refund)
        if failures["left"]:
            failures["left"] -= 1
            raise TimeoutError("flaky")
        return "done"

    result = app.run(agent)
    assert ["r"] == refunds
    assert (RunStatus.FAILED, ErrorClass.PARTIAL_WRITE) == (result.status, result.error_class)
    assert "ended without asking for side effects" in (result.error or {})["message"]


def test_values_drawn_before_an_error_are_served_on_the_retry(app: Seawall) -> None:
    """ctx.uuid keeps its value on a retry, so a side effect made with it is matched, not redone."""
    orders: list[str] = []
    failures = {"left": 1}

    @app.tool(mutating=True)
    def place(order_id: str) -> str:
        orders.append(order_id)
        return order_id

    @app.agent(retry=Retry(attempts=2, initial=0))
    def agent(ctx: Context) -> str:
        order_id = ctx.uuid()
        ctx.call(place, order_id)
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("lost")
        return order_id

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert [result.output] == orders


def test_pydantic_ai_output_that_fails_validation_is_asked_for_again(app: Seawall) -> None:
    """A real Pydantic AI agent gives up on an invalid output; Seawall's retry asks the model
    again (the first answer is not served back) and the run succeeds on attempt 2."""
    pytest.importorskip("pydantic_ai")
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from seawall.integrations.pydantic_ai import register

    class Forecast(BaseModel):
        city: str
        degrees: int

    calls: list[int] = []

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(len(calls))
        degrees: Any = "warm" if len(calls) == 1 else 21  # the first answer is invalid
        tool = info.output_tools[0].name
        return ModelResponse(parts=[ToolCallPart(tool, {"city": "Rome", "degrees": degrees})])

    agent = Agent(FunctionModel(answer), output_type=Forecast, name="forecaster", retries=0)
    run = register(app, agent, retry=Retry(attempts=2, initial=0))
    result = app.run(run, prompt="Rome?")
    assert RunStatus.SUCCEEDED == result.status
    assert {"city": "Rome", "degrees": 21} == result.output
    assert 2 == len(calls)
    assert 2 == len(result.attempts)
    assert "UnexpectedModelBehavior" == result.attempts[0].error_type
