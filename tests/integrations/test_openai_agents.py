"""seawall.integrations.openai_agents: the OpenAI Agents SDK with its own scripted model, and the
real SDK over a local OpenAI-compatible server; a SIGKILL mid-run resumed without a repeat."""

from __future__ import annotations

import asyncio
import importlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

import openai
from agents import (
    Agent,
    GuardrailFunctionOutput,
    ModelResponse,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    Usage,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call

from seawall import (
    ConfigurationError,
    ErrorClass,
    FailureCause,
    IntegrationError,
    OnDrift,
    Retry,
    RunStatus,
    Seawall,
)
from seawall.integrations import _versions
from seawall.integrations.openai_agents import SUPPORTED, register
from tests.crash.test_crash_resume import resume_when_lapsed
from tests.integrations.agents_workload import build_app, logged
from tests.integrations.fake_openai import FakeOpenAI, Reply, chat_completion

QUIET = RunConfig(tracing_disabled=True)
WORKLOAD = Path(__file__).with_name("agents_workload.py")


def kinds(app: Seawall, run_id: str) -> list[tuple[str, str]]:
    return [(s.record.kind, s.record.name) for s in app.ledger.steps(run_id)]


def usage(input_tokens: int = 20, output_tokens: int = 5) -> Usage:
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def turn(*items: Any, tokens: tuple[int, int] = (20, 5)) -> ModelResponse:
    return ModelResponse(output=list(items), usage=usage(*tokens), response_id=None)


def refund_tool(done: list[str]) -> Any:
    @function_tool
    def refund(order: str, amount: int) -> str:
        done.append(order)
        return f"refunded {amount} on {order}"

    return refund


def test_model_calls_and_tools_are_journaled_with_their_usage(app: Seawall) -> None:
    """Each model call is an LLM step with usage; each function tool call a tool step."""
    done: list[str] = []

    @function_tool
    def lookup(order: str) -> dict[str, Any]:
        return {"order": order, "paid": 40}

    model = ScriptedModel(
        [
            turn(function_call("lookup", {"order": "A-1"}, call_id="c1")),
            turn(function_call("refund", {"order": "A-1", "amount": 40}, call_id="c2")),
            turn(assistant_message("Refunded 40 on A-1."), tokens=(50, 8)),
        ]
    )
    agent = Agent(name="support", model=model, tools=[lookup, refund_tool(done)])
    run = register(app, agent, tools={"refund": {"mutating": True}}, run_config=QUIET)
    result = app.run(run, prompt="refund A-1")
    assert RunStatus.SUCCEEDED == result.status
    assert "Refunded 40 on A-1." == result.output
    assert [
        ("llm", "support.model"),
        ("usage", "usage"),
        ("tool", "support.tool.lookup"),
        ("llm", "support.model"),
        ("usage", "usage"),
        ("tool", "support.tool.refund"),
        ("llm", "support.model"),
        ("usage", "usage"),
    ] == kinds(app, result.run_id)
    assert 20 + 5 + 20 + 5 + 50 + 8 == result.tokens_used
    [refund] = [
        s for s in app.ledger.steps(result.run_id) if s.record.name == "support.tool.refund"
    ]
    assert refund.record.mutating
    assert {"arguments": {"order": "A-1", "amount": 40}} == refund.request[2]
    assert ["A-1"] == done


def test_a_recorded_replay_calls_neither_the_model_nor_the_tools(app: Seawall) -> None:
    """Replay serves every model response and tool result from the journal."""
    done: list[str] = []
    model = ScriptedModel(
        [
            turn(function_call("refund", {"order": "A-7", "amount": 9}, call_id="c1")),
            turn(assistant_message("done")),
        ]
    )
    run = register(app, Agent(name="replayed", model=model, tools=[refund_tool(done)]),
                   run_config=QUIET)  # fmt: skip
    original = app.run(run, prompt="refund A-7")
    replayed = app.replay(original.run_id, mode="recorded")
    assert replayed.ok, replayed.divergence
    assert "done" == replayed.run.output
    assert 0 == model.remaining_steps
    assert ["A-7"] == done


def test_a_retried_attempt_asks_the_model_again_but_never_repeats_a_mutating_tool(
    app: Seawall,
) -> None:
    """The model fails after a refund: the next attempt serves the refund, asks the model again."""
    done: list[str] = []
    model = ScriptedModel(
        [
            turn(function_call("refund", {"order": "A-1", "amount": 40}, call_id="c1")),
            RuntimeError("the model's connection dropped"),
            turn(function_call("refund", {"order": "A-1", "amount": 40}, call_id="c1")),
            turn(assistant_message("Refunded A-1.")),
        ]
    )
    agent = Agent(name="retried", model=model, tools=[refund_tool(done)])
    run = register(
        app,
        agent,
        tools={"refund": {"mutating": True}},
        model_retry=Retry(attempts=1),
        run_config=QUIET,
        retry=Retry(attempts=2),
    )
    result = app.run(run, prompt="refund A-1")
    assert RunStatus.SUCCEEDED == result.status
    assert ["A-1"] == done
    assert ["failed", "succeeded"] == [a.status for a in app.ledger.attempts(result.run_id)]
    assert ErrorClass.PARTIAL_WRITE == app.ledger.attempts(result.run_id)[0].error_class


def test_tool_calls_of_one_turn_are_journaled_one_at_a_time_in_order(app: Seawall) -> None:
    """Two calls in one model turn, the first slower: the journal keeps the model's order."""
    started: list[str] = []

    @function_tool
    async def slow(name: str) -> str:
        started.append(name)
        await asyncio.sleep(0.05)
        return name

    @function_tool
    async def fast(name: str) -> str:
        started.append(name)
        return name

    model = ScriptedModel(
        [
            turn(
                function_call("slow", {"name": "first"}, call_id="c1"),
                function_call("fast", {"name": "second"}, call_id="c2"),
            ),
            turn(assistant_message("ok")),
        ]
    )
    run = register(app, Agent(name="pair", model=model, tools=[slow, fast]), run_config=QUIET)
    result = app.run(run, prompt="both")
    assert ["first", "second"] == started
    tools = [name for kind, name in kinds(app, result.run_id) if kind == "tool"]
    assert ["pair.tool.slow", "pair.tool.fast"] == tools
    assert app.replay(result.run_id, mode="recorded").ok


def test_an_output_guardrail_tripwire_is_a_verification_failure(app: Seawall) -> None:
    """A tripped output guardrail fails the run silent_drift / verification_failed, with why."""

    @output_guardrail
    async def no_promises(context: Any, agent: Agent[Any], output: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(
            output_info={"promised": "tomorrow" in str(output)},
            tripwire_triggered="tomorrow" in str(output),
        )

    model = ScriptedModel([turn(assistant_message("It arrives tomorrow, promised."))])
    agent = Agent(name="careful", model=model, output_guardrails=[no_promises])
    result = app.run(register(app, agent, run_config=QUIET), prompt="when?")
    assert RunStatus.FAILED == result.status
    assert ErrorClass.SILENT_DRIFT == result.error_class
    assert FailureCause.VERIFICATION_FAILED == result.failure_cause
    assert "output guardrail 'no_promises' tripped" in result.error["message"]
    assert [{"name": "guardrail:no_promises", "passed": False,
             "message": "output guardrail 'no_promises' tripped: {\"promised\": true}"}] == (
        result.error["verdicts"]
    )  # fmt: skip


def test_on_drift_retry_sends_the_guardrails_message_back_to_the_model(app: Seawall) -> None:
    """With on_drift='retry' the next attempt's prompt carries the guardrail's message."""

    @output_guardrail
    async def no_promises(context: Any, agent: Agent[Any], output: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(None, tripwire_triggered="tomorrow" in str(output).lower())

    model = ScriptedModel(
        [turn(assistant_message("Tomorrow!")), turn(assistant_message("It ships this week."))]
    )
    agent = Agent(name="careful", model=model, output_guardrails=[no_promises])
    run = register(app, agent, run_config=QUIET, on_drift=OnDrift(retries=1))
    result = app.run(run, prompt="when?")
    assert RunStatus.SUCCEEDED == result.status
    assert "It ships this week." == result.output
    second_prompt = model.calls[1].input
    assert "guardrail 'no_promises' tripped" in json.dumps(second_prompt)


def test_an_input_guardrail_tripwire_fails_before_any_tool_runs(app: Seawall) -> None:
    """A tripped input guardrail is a verification failure too; no tool ran."""
    done: list[str] = []

    @input_guardrail(run_in_parallel=False)
    async def no_refunds_over_100(
        context: Any, agent: Agent[Any], prompt: Any
    ) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput("too much", tripwire_triggered="500" in str(prompt))

    model = ScriptedModel(
        [turn(function_call("refund", {"order": "A", "amount": 500}, call_id="c"))]
    )
    agent = Agent(name="guarded", model=model, tools=[refund_tool(done)],
                  input_guardrails=[no_refunds_over_100])  # fmt: skip
    result = app.run(register(app, agent, run_config=QUIET), prompt="refund 500 on A")
    assert (RunStatus.FAILED, FailureCause.VERIFICATION_FAILED) == (
        result.status,
        result.failure_cause,
    )
    assert "input guardrail 'no_refunds_over_100' tripped: \"too much\"" in result.error["message"]
    assert [] == done


def test_an_agent_handed_off_to_is_journaled_too(app: Seawall) -> None:
    """Triage hands off to billing: billing's model call and tool are steps of the same run."""
    done: list[str] = []
    billing = Agent(
        name="billing",
        model=ScriptedModel(
            [
                turn(function_call("refund", {"order": "B-2", "amount": 5}, call_id="c2")),
                turn(assistant_message("Billing refunded B-2.")),
            ]
        ),
        tools=[refund_tool(done)],
    )
    triage = Agent(
        name="triage",
        model=ScriptedModel([turn(function_call("transfer_to_billing", {}, call_id="c1"))]),
        handoffs=[billing],
    )
    run = register(app, triage, tools={"refund": {"mutating": True}}, run_config=QUIET)
    result = app.run(run, prompt="refund B-2")
    assert "Billing refunded B-2." == result.output
    assert ("tool", "triage.tool.refund") in kinds(app, result.run_id)
    assert 3 == sum(1 for kind, _ in kinds(app, result.run_id) if kind == "llm")
    assert app.replay(result.run_id, mode="recorded").ok
    assert ["B-2"] == done


def test_the_real_sdk_over_an_openai_compatible_server(app: Seawall) -> None:
    """OpenAIChatCompletionsModel on a local server: a 500 retried by Seawall, usage and cost."""
    done: list[str] = []
    tool_call = chat_completion("")
    tool_call["choices"][0]["finish_reason"] = "tool_calls"
    tool_call["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "refund", "arguments": '{"order": "A-9", "amount": 12}'},
            }
        ],
    }
    with FakeOpenAI() as server:
        server.script(
            Reply(status=500, body={"error": {"message": "overloaded"}}),
            Reply(body=tool_call),
            Reply(body=chat_completion("Refunded 12 on A-9.")),
        )
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        model = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
        agent = Agent(name="live", instructions="You refund orders.", model=model,
                      tools=[refund_tool(done)])  # fmt: skip
        run = register(app, agent, tools={"refund": {"mutating": True}}, run_config=QUIET)
        result = app.run(run, prompt="refund A-9")
        requests = [body for path, body in server.requests if path.endswith("/chat/completions")]
    assert RunStatus.SUCCEEDED == result.status, result.error
    assert "Refunded 12 on A-9." == result.output
    assert ["A-9"] == done
    assert 3 == len(requests)  # the 500, then two calls: nothing retried twice
    assert "refund" == requests[1]["tools"][0]["function"]["name"]
    [first, second] = [s for s in app.ledger.steps(result.run_id) if s.record.kind == "llm"]
    assert (2, 1) == (first.record.tries, second.record.tries)
    assert "gpt-4o-mini" == first.request[2]["model"]
    assert 2 * 17 == result.tokens_used
    assert 0 < (result.cost_usd or 0)  # priced from the maintained table (genai-prices)
    assert 0 == app.ledger.run(result.run_id).unknown_usage_calls


def test_a_streamed_run_inside_a_seawall_run_is_refused(app: Seawall) -> None:
    """Runner.run_streamed inside a run cannot be journaled: a UsageError says so."""
    from seawall.integrations.openai_agents import _Journaled

    model = ScriptedModel([turn(assistant_message("hi"))])
    journaled = _Journaled(app, "streams", {}, None).agent(Agent(name="s", model=model))

    @app.agent(name="streams", retry=Retry(attempts=1))
    async def streams(ctx: Any) -> str:
        result = Runner.run_streamed(journaled, "hi", run_config=QUIET)
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    result = app.run(streams)
    assert RunStatus.FAILED == result.status
    assert "Runner.run_streamed" in result.error["message"]
    assert "UsageError" == result.error["type"]
    assert 1 == model.remaining_steps


def test_unknown_tool_options_and_non_agents_are_refused(app: Seawall) -> None:
    """tools= naming a tool no agent has, or a non-Agent, is a ConfigurationError."""
    agent = Agent(name="a", model=ScriptedModel([]), tools=[refund_tool([])])
    with pytest.raises(ConfigurationError, match=r"\['refnud'\]"):
        register(app, agent, tools={"refnud": {"mutating": True}})
    with pytest.raises(ConfigurationError, match=r"agents\.Agent"):
        register(app, object())  # type: ignore[arg-type]


def test_an_unsupported_sdk_version_fails_at_import_naming_the_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openai-agents 0.1 installed: importing the integration raises, naming the range."""
    monkeypatch.setattr(_versions, "installed_version", lambda name: "0.1.0")
    monkeypatch.delitem(sys.modules, "seawall.integrations.openai_agents")
    with pytest.raises(IntegrationError) as caught:
        importlib.import_module("seawall.integrations.openai_agents")
    assert f"openai-agents{SUPPORTED}" in caught.value.message
    assert "pip install 'seawall[openai-agents]'" in caught.value.message


def run_child(ledger: str, log: Path, mode: str) -> int:
    done = subprocess.run(
        [sys.executable, str(WORKLOAD), ledger, str(log), mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode


@pytest.mark.crash
@pytest.mark.parametrize("mode", ["in-model", "in-tool"])
def test_a_killed_run_resumes_without_repeating_a_tool_call(
    tmp_path: Path, ledger_url: str, mode: str
) -> None:
    """SIGKILL mid-run (in a model call, or in a refund after its effect): resume refunds once."""
    log = tmp_path / "refunds.log"
    assert -signal.SIGKILL == run_child(ledger_url, log, mode)
    before = logged(log)
    assert ["A-1", "A-2"] == [entry["order"] for entry in before]
    app, _ = build_app(ledger_url, log)
    try:
        [result] = resume_when_lapsed(app)
        assert RunStatus.SUCCEEDED == result.status, result.error
        assert "Refunded A-1 and A-2." == result.output
        assert before == logged(log)  # no refund ran twice (an in-doubt one re-issued, deduped)
        refunds = [
            s for s in app.ledger.steps(result.run_id) if s.record.name == "cashier.tool.refund"
        ]
        assert [1, 1 if mode == "in-model" else 2] == [s.record.attempt for s in refunds]
        assert [s.record.idempotency_key for s in refunds] == [e["key"] for e in before]
        assert FailureCause.CRASHED == app.ledger.attempts(result.run_id)[0].failure_cause
    finally:
        app.close()


def test_tools_of_an_mcp_server_are_journaled_with_their_annotations(
    app: Seawall, tmp_path: Path
) -> None:
    """An agent with an SDK MCP server: its tools are steps, mutating or not as annotated."""
    import os

    from agents.mcp import MCPServerStdio

    from seawall.integrations.openai_agents import mcp_meta
    from tests.integrations.mcp_agent_workload import SERVER

    log = tmp_path / "effects.log"
    model = ScriptedModel(
        [
            turn(function_call("lookup", {"order": "A-1"}, call_id="c1")),
            turn(function_call("refund", {"order": "A-1", "amount": 40}, call_id="c2")),
            turn(assistant_message("Refunded.")),
        ]
    )

    async def scenario() -> Any:
        server = MCPServerStdio(
            {"command": sys.executable, "args": [str(SERVER), str(log), "stdio"],
             "env": dict(os.environ)},
            tool_meta_resolver=mcp_meta,
        )  # fmt: skip
        async with server:
            agent = Agent(name="mcpdesk", model=model, mcp_servers=[server])
            run = register(app, agent, run_config=QUIET)
            result = await app.arun(run, prompt="refund A-1")
            return result, app.ledger.steps(result.run_id)

    result, steps = asyncio.run(scenario())
    assert RunStatus.SUCCEEDED == result.status, result.error
    tools = {s.record.name: s.record for s in steps if s.record.kind == "tool"}
    assert (False, True) == (
        tools["mcpdesk.tool.lookup"].mutating,
        tools["mcpdesk.tool.refund"].mutating,
    )
    assert app.tools["mcpdesk.tool.refund"].idempotent
    [effect] = [json.loads(line) for line in log.read_text().splitlines()]
    assert tools["mcpdesk.tool.refund"].idempotency_key == effect["key"]
