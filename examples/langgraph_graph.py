"""A LangGraph graph run by Seawall (seawall.integrations.langgraph).

Runs offline on LangChain's GenericFakeChatModel: the model asks to notify on-call (a mutating
tool in a ToolNode), then an audit node fails once after the notification. Seawall retries the
run: the retry asks the model again (its answer may differ after an error), and the notification
it asks for again is served from the journal with its original key, so on-call is notified once;
a recorded replay calls nothing.

    pip install 'seawall[langgraph]'
    python examples/langgraph_graph.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import seawall
from seawall.integrations import langgraph as lg

notified: list[str] = []
audits = {"count": 0}


@tool
def notify(channel: str, text: str) -> str:
    """Post a message to an on-call channel."""
    notified.append(channel)
    return f"posted to {channel}"


def build(app: seawall.Seawall) -> Any:
    """The graph: model -> tools -> model -> audit, with Seawall-wrapped model and tool."""
    turns = [
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "notify",
                    "args": {"channel": "#oncall", "text": "disk 95%"},
                    "id": "call-1",
                }
            ],
            usage_metadata={"input_tokens": 42, "output_tokens": 9, "total_tokens": 51},
        ),
        AIMessage(
            content="On-call notified.",
            usage_metadata={"input_tokens": 60, "output_tokens": 4, "total_tokens": 64},
        ),
    ]
    # The retry asks the model again: the stand-in answers the same two turns again.
    stand_in = GenericFakeChatModel(messages=iter(turns * 2))
    model = lg.chat_model(app, stand_in, name="triage.model")

    def triage(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def audit(state: MessagesState) -> dict[str, Any]:
        audits["count"] += 1
        if audits["count"] == 1:
            raise ConnectionError("the audit log is unreachable")
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("triage", triage)
    builder.add_node("tools", ToolNode([lg.tool(app, notify, mutating=True)]))
    builder.add_node("audit", audit)
    builder.add_edge(START, "triage")
    builder.add_conditional_edges("triage", tools_condition, {"tools": "tools", END: "audit"})
    builder.add_edge("tools", "triage")
    builder.add_edge("audit", END)
    return builder.compile()


def main() -> None:
    """Run the graph under Seawall, show the journal, replay it."""
    with tempfile.TemporaryDirectory() as folder:
        app = seawall.Seawall(f"sqlite:///{Path(folder) / 'ledger.db'}")
        agent = lg.register(
            app,
            build(app),
            name="triage",
            retry=seawall.Retry(attempts=2, initial=0.01),
            verify=[seawall.verify.rule(lambda s: len(s["messages"]) == 4, "incomplete")],
        )
        result = app.run(agent, messages=[{"role": "user", "content": "disk is at 95%"}])
        print(result.status, "attempts:", len(result.attempts), "tokens:", result.tokens_used)
        print("notified:", notified)
        for step in app.ledger.steps(result.run_id):
            print(f"  step {step.record.seq}: {step.record.kind} {step.record.name}")
        replayed = app.replay(result.run_id, mode="recorded")
        print("recorded replay:", replayed.run.status, "- notified:", notified)
        app.close()


if __name__ == "__main__":
    main()
