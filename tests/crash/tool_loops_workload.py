"""Two tool-calling loops, run as a child process that SIGKILLs itself near their end.

Usage: python tool_loops_workload.py LOOP LEDGER_URL LOG_PATH [BASE_URL]

LOOP:
  openai     the real ``openai`` SDK client, wrapped by ``seawall.integrations.openai``,
             against the OpenAI-compatible server at BASE_URL (the test's fake one)
  langgraph  a LangGraph graph whose ``ToolNode`` runs the tools, with a scripted chat model

Both loops go: model -> ``lookup`` (read-only; a dict whose keys are not in sorted order, with
non-ASCII text and the float ``1.0``) -> the result as ``json.dumps`` text in the conversation ->
model -> ``refund`` (mutating, not idempotent: appends its key to LOG_PATH, fsynced) -> model ->
final answer. The child kills itself once the refund completed and the model call after it is in
the journal; the resuming side builds the same app with ``kill=False``.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seawall import Context, Seawall, current_context

LEASE = 0.5
MODEL_LATENCY = 0.1
"""How long a model takes to answer: like a real one, longer than the 50 ms after which Seawall
writes a read-only step to the journal at once (so the last model call is journaled when the
child dies)."""

LOOKUP: dict[str, Any] = {
    "order": "A-17",
    "status": "delivered",
    "customer": "Zoë Ångström",
    "total": 1.0,
    "currency": "EUR",
    "lines": [{"sku": "Tasse ☕", "qty": 2, "price": 0.5}],
}
"""What ``lookup`` returns: its ``json.dumps`` differs from the one with sorted keys."""
QUESTION = "Please refund my order A-17."
ANSWER = "Refunded 1.0 EUR to Zoë Ångström."
OPENAI_MODEL_STEP = "openai.chat.completions.create"
LANGGRAPH_MODEL_STEP = "support.model"
INPUTS: dict[str, dict[str, Any]] = {
    "openai": {"question": QUESTION},
    "langgraph": {"messages": [{"role": "user", "content": QUESTION}]},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look an order up.",
            "parameters": {
                "type": "object",
                "properties": {"order": {"type": "string"}},
                "required": ["order"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "refund",
            "description": "Refund an order.",
            "parameters": {
                "type": "object",
                "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["order", "amount"],
            },
        },
    },
]


@dataclass
class Loop:
    """One loop's app and agent, and what its code saw in this process.

    Attributes:
        app: The app.
        agent: The registered agent.
        lookups: Orders the ``lookup`` tool was executed for (not served) here.
        seen: Each ``lookup`` result as the agent's code received it (OpenAI loop).
        drawn: The scripted model's answers drawn here (LangGraph loop).
    """

    app: Seawall
    agent: Any
    lookups: list[str] = field(default_factory=list)
    seen: list[Any] = field(default_factory=list)
    drawn: list[Any] = field(default_factory=list)


def logged(log: Path) -> list[dict[str, Any]]:
    """The effect log's entries, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def _record_refund(log: Path, order: str, key: str) -> None:
    with log.open("a") as handle:
        handle.write(json.dumps({"order": order, "key": key}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _die_once_journaled(app: Seawall, model_step: str) -> None:
    """SIGKILL this process, once the refund and three model calls are in the ledger."""
    ctx = current_context()
    assert ctx is not None
    steps = [s.record for s in app.ledger.steps(ctx.run_id) if s.record.status == "completed"]
    models = sum(1 for s in steps if s.name == model_step)
    refunds = sum(1 for s in steps if s.mutating)
    if (models, refunds) != (3, 1):
        sys.stderr.write(
            f"before the kill the ledger held {models} model calls, {refunds} refunds\n"
        )
        sys.stderr.flush()
        os._exit(3)
    signal.pthread_kill(threading.get_ident(), signal.SIGKILL)  # this thread, at once


def openai_loop(
    ledger: str,
    log: Path,
    base_url: str,
    *,
    kill: bool = False,
    dumps: Callable[[Any], str] = json.dumps,
) -> Loop:
    """The OpenAI SDK's tool-calling loop, its model at ``base_url``.

    Args:
        ledger: The ledger URL.
        log: The refunds' effect log.
        base_url: The OpenAI-compatible server.
        kill: Kill the process after the final answer is journaled (the child).
        dumps: How the agent writes a tool result into the conversation.
    """
    import openai  # only this loop needs the SDK

    from seawall.integrations.openai import wrap

    app = Seawall(ledger, lease=LEASE)
    client = wrap(openai.OpenAI(base_url=base_url, api_key="test", timeout=10.0), app)
    loop = Loop(app, None)

    @app.tool
    def lookup(order: str) -> dict[str, Any]:
        loop.lookups.append(order)
        return copy.deepcopy(LOOKUP)

    @app.tool(mutating=True)
    def refund(order: str, amount: float, idempotency_key: str) -> dict[str, Any]:
        _record_refund(log, order, idempotency_key)
        return {"order": order, "refunded": amount, "status": "done"}

    tools = {"lookup": lookup, "refund": refund}

    @app.agent(name="support")
    def support(ctx: Context, question: str) -> dict[str, Any]:
        messages: list[Any] = [{"role": "user", "content": question}]
        for _turn in range(5):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS
            )
            message = reply.choices[0].message
            messages.append(message)
            if not message.tool_calls:
                if kill:
                    _die_once_journaled(app, OPENAI_MODEL_STEP)
                return {"answer": message.content, "turns": len(messages)}
            for call in message.tool_calls:
                result = ctx.call(tools[call.function.name], **json.loads(call.function.arguments))
                if call.function.name == "lookup":
                    loop.seen.append(result)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": dumps(result)})
        raise RuntimeError("the model never gave a final answer")

    loop.agent = support
    return loop


def _scripted(turns: list[Any], drawn: list[Any]) -> Iterator[Any]:
    """The model's answers in order, each after the model's latency; ``drawn`` lists them."""
    for turn in turns:
        time.sleep(MODEL_LATENCY)
        drawn.append(turn)
        yield turn


def langgraph_loop(ledger: str, log: Path, *, kill: bool = False) -> Loop:
    """A LangGraph graph: agent -> ToolNode(lookup, refund) -> agent ... -> wrap_up.

    Args:
        ledger: The ledger URL.
        log: The refunds' effect log.
        kill: Kill the process in ``wrap_up``, after the final answer is journaled (the child).
    """
    # Only this loop needs LangGraph.
    from langchain_core.language_models.fake_chat_models import (
        GenericFakeChatModel,
    )
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool as lc_tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    from seawall.integrations import langgraph as lg

    app = Seawall(ledger, lease=LEASE)
    loop = Loop(app, None)

    @lc_tool
    def lookup(order: str) -> dict[str, Any]:
        """Look an order up."""
        loop.lookups.append(order)
        return copy.deepcopy(LOOKUP)

    @lc_tool
    def refund(order: str, amount: float) -> dict[str, Any]:
        """Refund an order."""
        ctx = current_context()
        assert ctx is not None
        _record_refund(log, order, f"{ctx.idempotency_key}:refund:{order}")
        return {"order": order, "refunded": amount, "status": "done"}

    turns = [
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"order": "A-17"}, "id": "c1"}]),
        AIMessage(
            "",
            tool_calls=[{"name": "refund", "args": {"order": "A-17", "amount": 1.0}, "id": "c2"}],
        ),
        AIMessage(ANSWER),
    ]
    model = lg.chat_model(
        app,
        GenericFakeChatModel(messages=_scripted(turns, loop.drawn)),
        name=LANGGRAPH_MODEL_STEP,
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def wrap_up(_state: MessagesState) -> dict[str, Any]:
        if kill:
            _die_once_journaled(app, LANGGRAPH_MODEL_STEP)
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([lg.tool(app, lookup), lg.tool(app, refund, mutating=True)]))
    builder.add_node("wrap_up", wrap_up)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "wrap_up"})
    builder.add_edge("tools", "agent")
    builder.add_edge("wrap_up", END)
    loop.agent = lg.register(app, builder.compile(), name="support_graph")
    return loop


if __name__ == "__main__":
    kind, ledger_url, log_path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    child = (
        openai_loop(ledger_url, log_path, sys.argv[4], kill=True)
        if kind == "openai"
        else langgraph_loop(ledger_url, log_path, kill=True)
    )
    ended = child.app.run(child.agent, **INPUTS[kind])
    # Not reached while the loop works: the run kills its process before it ends.
    sys.stderr.write(f"the run ended {ended.status.value}: {ended.error}\n")
    sys.exit(4)
