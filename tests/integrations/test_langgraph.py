"""seawall.integrations.langgraph with real LangGraph graphs and LangChain's fake chat models."""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool as lc_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

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
from seawall.integrations import langgraph as lg


class Draft(MessagesState):
    approved: bool


def fake(*answers: Any) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(answers))


def steps(app: Seawall, run_id: str) -> list[tuple[int, str, str]]:
    return [(s.record.attempt, s.record.kind, s.record.name) for s in app.ledger.steps(run_id)]


def mailer(app: Seawall, sent: list[str], fail_audit_once: bool = False, **options: Any) -> Any:
    """agent -> tools (send_email, mutating) -> agent -> audit, with a fake model."""

    @lc_tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    call = {"name": "send_email", "args": {"to": "ops@example.com", "body": "hi"}, "id": "c1"}
    turns = [
        AIMessage(
            content="",
            tool_calls=[call],
            usage_metadata={"input_tokens": 30, "output_tokens": 8, "total_tokens": 38},
        ),
        AIMessage(
            content="done",
            usage_metadata={"input_tokens": 50, "output_tokens": 2, "total_tokens": 52},
        ),
    ]
    # An error retry asks the model again: a retried run hears the same two turns again.
    model = lg.chat_model(
        app, fake(*turns, *(turns if fail_audit_once else [])), name="mailer.model"
    )
    audits = {"count": 0}

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def audit(state: MessagesState) -> dict[str, Any]:
        audits["count"] += 1
        if fail_audit_once and audits["count"] == 1:
            raise ConnectionError("the audit log is down")
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([lg.tool(app, send_email, mutating=True)]))
    builder.add_node("audit", audit)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "audit"})
    builder.add_edge("tools", "agent")
    builder.add_edge("audit", END)
    return lg.register(app, builder.compile(), name="mailer", **options)


PROMPT = [{"role": "user", "content": "tell ops"}]


def test_a_graph_run_journals_its_model_calls_and_tools(app: Seawall) -> None:
    """Model calls are LLM steps with usage; the ToolNode's tool call is a tool step."""
    sent: list[str] = []
    result = app.run(mailer(app, sent), messages=PROMPT)
    assert RunStatus.SUCCEEDED == result.status
    assert ["ops@example.com"] == sent
    assert [
        (1, "llm", "mailer.model"),
        (1, "usage", "usage"),
        (1, "tool", "langchain.tool.send_email"),
        (1, "llm", "mailer.model"),
        (1, "usage", "usage"),
    ] == steps(app, result.run_id)
    assert 90 == result.tokens_used
    assert "done" == result.output["messages"][-1]["data"]["content"]


def test_a_retried_graph_run_asks_the_model_again_and_sends_the_email_once(
    app: Seawall,
) -> None:
    """A node fails after the side effect; the retry asks the model again, the email is served."""
    sent: list[str] = []
    agent = mailer(app, sent, fail_audit_once=True, retry=Retry(attempts=2, initial=0))
    result = app.run(agent, messages=PROMPT)
    assert RunStatus.SUCCEEDED == result.status
    assert 2 == len(result.attempts)
    assert ["ops@example.com"] == sent
    assert [
        (1, "llm", "mailer.model"),
        (1, "usage", "usage"),
        (1, "tool", "langchain.tool.send_email"),
        (1, "llm", "mailer.model"),
        (1, "usage", "usage"),
        (2, "llm", "mailer.model"),
        (2, "usage", "usage"),
        (2, "llm", "mailer.model"),
        (2, "usage", "usage"),
    ] == steps(app, result.run_id)


def test_a_recorded_replay_reproduces_the_graph_run(app: Seawall) -> None:
    """Replay serves every model and tool call; the output is identical (message ids aside)."""
    sent: list[str] = []
    original = app.run(mailer(app, sent), messages=PROMPT)
    replayed = app.replay(original.run_id, mode="recorded")
    assert replayed.ok, replayed.divergence
    assert [] == replayed.output_changes
    assert ["ops@example.com"] == sent


def test_the_final_state_goes_through_seawall_verifiers(app: Seawall) -> None:
    """A rule on the final state rejects the first draft; the retry, told why, is approved."""
    model = lg.chat_model(
        app, fake("too long draft", "no", "short draft", "ok"), name="writer.model"
    )

    feedback: list[list[str]] = []

    def draft(state: Draft, config: RunnableConfig) -> dict[str, Any]:
        feedback.append(list(config["configurable"]["seawall_feedback"]))
        return {"messages": [model.invoke(state["messages"])]}

    def review(state: Draft) -> dict[str, Any]:
        verdict = model.invoke([*state["messages"], ("user", "approve?")])
        return {"approved": verdict.content == "ok"}

    builder = StateGraph(Draft)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", END)
    agent = lg.register(
        app,
        builder.compile(),
        name="writer",
        verify=[verify.rule(lambda state: state["approved"], "the reviewer did not approve")],
        on_drift=OnDrift(retries=1),
    )
    result = app.run(agent, messages=PROMPT, approved=False)
    assert RunStatus.SUCCEEDED == result.status
    assert True is result.output["approved"]
    assert 2 == len(result.attempts)
    assert [] == feedback[0]
    assert "the reviewer did not approve" in " ".join(feedback[1])


def test_a_message_without_usage_records_unknown_tokens(app: Seawall) -> None:
    """An AIMessage without usage_metadata: tokens recorded as unknown."""
    model = lg.chat_model(app, fake("plain text"), name="quiet.model")
    builder = StateGraph(MessagesState)
    builder.add_node("say", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_edge(START, "say")
    builder.add_edge("say", END)
    result = app.run(lg.register(app, builder.compile(), name="quiet"), messages=PROMPT)
    [usage] = [s.request for s in app.ledger.steps(result.run_id) if s.record.kind == "usage"]
    assert (None, None) == (usage["input_tokens"], usage["output_tokens"])
    assert 1 == app.ledger.run(result.run_id).unknown_usage_calls


def test_a_checkpointer_keeps_working_with_a_thread_per_attempt(app: Seawall) -> None:
    """With a checkpointer, each attempt is its own LangGraph thread, named after the run."""
    saver = InMemorySaver()
    model = lg.chat_model(app, fake("hello"), name="saved.model")
    builder = StateGraph(MessagesState)
    builder.add_node("say", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_edge(START, "say")
    builder.add_edge("say", END)
    graph = builder.compile(checkpointer=saver)
    result = app.run(lg.register(app, graph, name="saved"), messages=PROMPT)
    state = graph.get_state({"configurable": {"thread_id": f"{result.run_id}-1"}})
    assert "hello" == state.values["messages"][-1].content


def test_an_async_graph_runs_from_an_async_agent(app: Seawall) -> None:
    """asynchronous=True: async nodes, ainvoke on the wrapped model, the same journal."""
    model = lg.chat_model(
        app,
        fake(
            AIMessage(
                content="async hello",
                usage_metadata={"input_tokens": 4, "output_tokens": 2, "total_tokens": 6},
            )
        ),
        name="async.model",
    )

    async def say(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("say", say)
    builder.add_edge(START, "say")
    builder.add_edge("say", END)
    agent = lg.register(app, builder.compile(), name="async_graph", asynchronous=True)
    result = app.run(agent, messages=PROMPT)
    assert "async hello" == result.output["messages"][-1]["data"]["content"]
    assert 6 == result.tokens_used
    assert app.replay(result.run_id, mode="recorded").ok


def test_outside_a_run_the_wrapped_model_and_tool_are_plain(app: Seawall) -> None:
    """Invoked outside any Seawall run they call the wrapped objects directly."""
    model = lg.chat_model(app, fake("plain"), name="plain.model")

    @lc_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert "plain" == model.invoke("hi").content
    assert (
        "async" == asyncio.run(lg.chat_model(app, fake("async"), name="p2").ainvoke("hi")).content
    )
    assert 5 == lg.tool(app, add).invoke({"a": 2, "b": 3})
    assert [] == app.ledger.runs()


def test_a_model_error_is_retried_by_the_llm_step(app: Seawall) -> None:
    """A transient failure of the model is retried within its step."""

    class Flaky(GenericFakeChatModel):
        failures: int = 1

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise TimeoutError("model timed out")
            return super()._generate(*args, **kwargs)

    model = lg.chat_model(app, Flaky(messages=iter(["recovered"])), name="flaky.model")
    builder = StateGraph(MessagesState)
    builder.add_node("say", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_edge(START, "say")
    builder.add_edge("say", END)
    result = app.run(lg.register(app, builder.compile(), name="flaky"), messages=PROMPT)
    assert RunStatus.SUCCEEDED == result.status
    [step] = [s for s in app.ledger.steps(result.run_id) if s.record.kind == "llm"]
    assert 2 == step.record.tries


def test_bind_tools_reaches_the_model_through_the_journal(app: Seawall) -> None:
    """Tools bound on the wrapped model are formatted by the inner model and journaled."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    seen: list[Any] = []

    class ToolAware(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> Any:
            seen.append(kwargs.get("tools"))
            return super()._generate(messages, stop, run_manager, **kwargs)

    @lc_tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return city

    model = lg.chat_model(app, ToolAware(messages=iter(["ok"])), name="bound.model").bind_tools(
        [lookup]
    )
    builder = StateGraph(MessagesState)
    builder.add_node("say", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_edge(START, "say")
    builder.add_edge("say", END)
    result = app.run(lg.register(app, builder.compile(), name="bound"), messages=PROMPT)
    assert RunStatus.SUCCEEDED == result.status
    assert ["lookup"] == [tool["function"]["name"] for tool in seen[0]]
    [step] = [s for s in app.ledger.steps(result.run_id) if s.record.kind == "llm"]
    assert "lookup" == step.request[2]["options"]["tools"][0]["function"]["name"]


def test_register_refuses_what_is_not_a_compiled_graph(app: Seawall) -> None:
    """A builder (not compiled) is refused with the fix."""
    with pytest.raises(ConfigurationError, match=r"builder.compile\(\)"):
        lg.register(app, StateGraph(MessagesState), name="nope")


def test_two_models_under_one_name_are_refused(app: Seawall) -> None:
    """Each wrapped model needs its own step name."""
    lg.chat_model(app, fake("a"), name="same")
    with pytest.raises(ConfigurationError, match="its own name="):
        lg.chat_model(app, fake("b"), name="same")


@pytest.mark.parametrize("distribution", ["langgraph", "langchain-core"])
def test_an_unsupported_version_fails_at_import_naming_the_range(
    monkeypatch: pytest.MonkeyPatch, distribution: str
) -> None:
    """langgraph or langchain-core 0.x: importing the integration names the supported range."""
    real = _versions.installed_version
    monkeypatch.setattr(
        _versions,
        "installed_version",
        lambda name: "0.6.4" if name == distribution else real(name),
    )
    monkeypatch.delitem(sys.modules, "seawall.integrations.langgraph")
    with pytest.raises(IntegrationError) as caught:
        importlib.import_module("seawall.integrations.langgraph")
    assert f"{distribution}>=1.0,<2" in caught.value.message
    assert "seawall[langgraph]" in caught.value.message
