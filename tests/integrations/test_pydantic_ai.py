"""seawall.integrations.pydantic_ai with Pydantic AI's own offline TestModel and FunctionModel."""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic import BaseModel
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

from seawall import (
    ConfigurationError,
    IntegrationError,
    OnDrift,
    Retry,
    RunStatus,
    Seawall,
    verify,
)
from seawall.integrations import _versions
from seawall.integrations.pydantic_ai import SUPPORTED, SeawallCapability, register


class Forecast(BaseModel):
    city: str
    degrees: int


def kinds(app: Seawall, run_id: str) -> list[tuple[str, str]]:
    return [(s.record.kind, s.record.name) for s in app.ledger.steps(run_id)]


def scripted(*turns: Any) -> tuple[FunctionModel, list[list[ModelMessage]]]:
    """A FunctionModel answering with the given turns in order; records what it was sent."""
    seen: list[list[ModelMessage]] = []
    queue = list(turns)

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        turn = queue.pop(0)
        return turn(messages) if callable(turn) else turn

    return FunctionModel(answer), seen


def retry_prompts(messages: list[ModelMessage]) -> list[str]:
    """What the last request told the model to retry (a retry prompt, or a retried return)."""
    found = []
    for part in messages[-1].parts:
        if isinstance(part, RetryPromptPart):
            found.append(part.model_response())
        elif getattr(part, "outcome", None) == "retried":
            found.append(str(part.content))
    return found


def call(tool: str, **args: Any) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(tool, args, tool_call_id=f"call-{tool}")])


def text(content: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(content)])


def test_model_requests_and_tool_calls_are_journaled_steps(app: Seawall) -> None:
    """TestModel: model requests are LLM steps with usage; the tool call is a tool step."""
    agent = Agent(TestModel(), output_type=Forecast, name="weather")

    @agent.tool_plain
    def forecast(city: str) -> str:
        return f"sunny in {city}"

    run = register(app, agent)
    result = app.run(run, prompt="weather in Paris?")
    assert RunStatus.SUCCEEDED == result.status
    assert {"city": "a", "degrees": 0} == result.output
    assert [
        ("llm", "weather.model"),
        ("usage", "usage"),
        ("tool", "weather.tool.forecast"),
        ("llm", "weather.model"),
        ("usage", "usage"),
    ] == kinds(app, result.run_id)
    assert 0 < result.tokens_used


def test_a_recorded_replay_calls_neither_the_model_nor_the_tools(app: Seawall) -> None:
    """Replay serves every model response and tool result from the journal."""
    model, seen = scripted(call("lookup", city="Oslo"), text("cold"))
    agent = Agent(model, name="replayed")
    looked: list[str] = []

    @agent.tool_plain
    def lookup(city: str) -> str:
        looked.append(city)
        return "-3"

    run = register(app, agent)
    original = app.run(run, prompt="Oslo?")
    replayed = app.replay(original.run_id, mode="recorded")
    assert replayed.ok, replayed.divergence
    assert "cold" == replayed.run.output
    assert (2, ["Oslo"]) == (len(seen), looked)


def test_a_retried_run_does_not_repeat_a_completed_mutating_tool(app: Seawall) -> None:
    """The run fails after a charge; its retry asks the model again and is served the charge."""
    outage = ModelHTTPError(503, "function:answer", "overloaded")
    turns: list[Any] = [
        call("charge", amount=30),
        outage,
        call("charge", amount=30),
        text("charged 30"),
    ]
    seen: list[list[ModelMessage]] = []

    def raise_or_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        turn = turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        return turn

    agent = Agent(FunctionModel(raise_or_answer), name="billing")
    charged: list[int] = []

    @agent.tool_plain
    def charge(amount: int) -> str:
        charged.append(amount)
        return f"receipt {amount}"

    run = register(
        app,
        agent,
        tools={"charge": {"mutating": True}},
        model_retry=Retry(attempts=1),
        retry=Retry(attempts=2, initial=0),
    )
    result = app.run(run, prompt="charge 30")
    assert RunStatus.SUCCEEDED == result.status
    assert "charged 30" == result.output
    assert [30] == charged
    assert 2 == len(result.attempts)
    assert 4 == len(seen)  # the model was asked twice per attempt


def test_a_transient_model_error_is_retried_by_the_model_step(app: Seawall) -> None:
    """A 503 from the model is retried within the step (its tries count 2)."""
    turns: list[Any] = [ModelHTTPError(503, "m", "busy"), text("fine")]

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        turn = turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        return turn

    run = register(app, Agent(FunctionModel(answer), name="flaky"))
    result = app.run(run, prompt="hi")
    assert "fine" == result.output
    [model_step] = [s for s in app.ledger.steps(result.run_id) if s.record.name == "flaky.model"]
    assert 2 == model_step.record.tries


def test_invalid_tool_arguments_go_back_to_the_model_not_to_the_journal(app: Seawall) -> None:
    """Arguments failing the tool's schema become a retry prompt; the run goes on."""
    model, seen = scripted(
        call("refund", order="A1", amount="a lot"), call("refund", order="A1", amount=5), text("ok")
    )
    agent = Agent(model, name="refunds")
    refunded: list[int] = []

    @agent.tool_plain
    def refund(order: str, amount: int) -> str:
        refunded.append(amount)
        return "refunded"

    run = register(app, agent, tools={"refund": {"mutating": True}})
    result = app.run(run, prompt="refund A1")
    assert RunStatus.SUCCEEDED == result.status
    assert [5] == refunded
    [prompt] = retry_prompts(seen[1])
    assert "amount" in prompt
    assert 1 == sum(1 for _, name in kinds(app, result.run_id) if name == "refunds.tool.refund")


def test_a_model_retry_from_a_tool_is_recorded_and_fed_back(app: Seawall) -> None:
    """ModelRetry inside a tool reaches the model as a retry prompt, also on replay."""
    model, seen = scripted(call("find", name="bob"), call("find", name="Bob"), text("found"))
    agent = Agent(model, name="directory")

    @agent.tool_plain
    def find(name: str) -> str:
        if not name[0].isupper():
            raise ModelRetry("names start with a capital letter")
        return "Bob: room 4"

    run = register(app, agent)
    result = app.run(run, prompt="where is bob?")
    assert "found" == result.output
    [prompt] = retry_prompts(seen[1])
    assert "capital letter" in prompt
    replayed = app.replay(result.run_id, mode="recorded")
    assert replayed.ok, replayed.divergence


def test_structured_output_goes_through_seawall_verifiers_with_feedback(app: Seawall) -> None:
    """A rule rejects the first output; the retry's prompt carries the feedback."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = next(p.content for m in messages for p in m.parts if isinstance(p, UserPromptPart))
        degrees = 21 if "rejected" in str(prompt) else -400
        return call(info.output_tools[0].name, city="Rome", degrees=degrees)

    agent = Agent(FunctionModel(answer), output_type=Forecast, name="forecaster")
    run = register(
        app,
        agent,
        verify=[
            verify.schema(Forecast),
            verify.rule(lambda f: f["degrees"] > -274, "below absolute zero"),
        ],
        on_drift=OnDrift(retries=1),
    )
    result = app.run(run, prompt="Rome?")
    assert RunStatus.SUCCEEDED == result.status
    assert {"city": "Rome", "degrees": 21} == result.output
    assert 2 == len(result.attempts)


def test_a_tool_response_failing_returns_stops_at_the_boundary(app: Seawall) -> None:
    """tools={name: {"returns": Model}}: a bad response is a ToolResponseError, not data."""
    model, _ = scripted(call("stock", sku="X"), text("never"))
    agent = Agent(model, name="shop")

    class Stock(BaseModel):
        sku: str
        units: int

    @agent.tool_plain
    def stock(sku: str) -> dict[str, Any]:
        return {"sku": sku, "units": "many"}

    run = register(
        app,
        agent,
        tools={"stock": {"returns": Stock, "retry": Retry(attempts=1)}},
        retry=Retry(attempts=1),
    )
    result = app.run(run, prompt="stock of X")
    assert RunStatus.FAILED == result.status
    assert "ToolResponseError" == (result.error or {}).get("type")


def test_a_response_without_usage_records_unknown_tokens(app: Seawall) -> None:
    """A response that omitted usage records None tokens, not zero."""
    model, _ = scripted(
        ModelResponse(parts=[TextPart("hi")], usage=RequestUsage(unmeasured_requests=1))
    )
    run = register(app, Agent(model, name="quiet"))
    result = app.run(run, prompt="hi")
    [usage] = [s.request for s in app.ledger.steps(result.run_id) if s.record.kind == "usage"]
    assert (None, None) == (usage["input_tokens"], usage["output_tokens"])
    assert 1 == app.ledger.run(result.run_id).unknown_usage_calls


def test_tools_options_for_an_unknown_tool_are_refused(app: Seawall) -> None:
    """A typo in tools= would silently drop mutating=True: it is refused."""
    agent = Agent(TestModel(), name="typo")

    @agent.tool_plain
    def send(to: str) -> str:
        return "sent"

    with pytest.raises(ConfigurationError, match=r"\['sned'\]"):
        register(app, agent, tools={"sned": {"mutating": True}})


def test_outside_a_run_the_capability_changes_nothing(app: Seawall) -> None:
    """agent.run with the capability outside any Seawall run is the plain agent run."""
    agent = Agent(TestModel(custom_output_text="plain"), name="plain")
    capability = SeawallCapability(app, prefix="plain")
    result = asyncio.run(agent.run("hi", capabilities=[capability]))
    assert "plain" == result.output
    assert [] == app.ledger.runs()


def test_an_unsupported_pydantic_ai_version_fails_at_import_naming_the_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pydantic-ai-slim 0.4 installed: importing the integration names the supported range."""
    monkeypatch.setattr(_versions, "installed_version", lambda name: "0.4.2")
    monkeypatch.delitem(sys.modules, "seawall.integrations.pydantic_ai")
    with pytest.raises(IntegrationError) as caught:
        importlib.import_module("seawall.integrations.pydantic_ai")
    assert f"pydantic-ai-slim{SUPPORTED}" in caught.value.message
    assert "seawall[pydantic-ai]" in caught.value.message
