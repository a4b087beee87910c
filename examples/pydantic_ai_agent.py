"""A Pydantic AI agent run by Seawall (seawall.integrations.pydantic_ai).

Runs offline on Pydantic AI's FunctionModel, a stand-in for a real model: it asks for a refund
with arguments that fail the tool's schema (sent back to the model, which corrects them), then
answers with a structured decision that a Seawall verifier checks.

    pip install 'seawall[pydantic-ai]'
    python examples/pydantic_ai_agent.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import seawall
from seawall.integrations.pydantic_ai import register


class Decision(BaseModel):
    """What the support agent decided."""

    action: str
    amount: int


def stand_in(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A scripted model: a bad refund call, a corrected one, then the decision."""
    returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
    if not returns:
        return ModelResponse(parts=[ToolCallPart("refund", {"order": "A-17", "amount": "all"})])
    if returns[-1].outcome == "retried":
        return ModelResponse(parts=[ToolCallPart("refund", {"order": "A-17", "amount": 40})])
    final = info.output_tools[0].name
    return ModelResponse(parts=[ToolCallPart(final, {"action": "refund", "amount": 40})])


support = Agent(FunctionModel(stand_in), output_type=Decision, name="support")
refunds: list[tuple[str, int]] = []


@support.tool_plain
def refund(order: str, amount: int) -> str:
    """Refund an order (a side effect: Seawall runs it at most once per run)."""
    refunds.append((order, amount))
    return f"refunded {amount} on {order}"


def main() -> None:
    """Run the agent, show the journal, and replay the run without calling anything."""
    with tempfile.TemporaryDirectory() as folder:
        app = seawall.Seawall(f"sqlite:///{Path(folder) / 'ledger.db'}")
        run = register(
            app,
            support,
            tools={"refund": {"mutating": True}},
            verify=[
                seawall.verify.schema(Decision),
                seawall.verify.rule(lambda d: d["amount"] <= 100, "refunds above 100 need a human"),
            ],
        )
        result = app.run(run, prompt="Order A-17 arrived broken, please refund it.")
        print(result.status, result.output)
        for step in app.ledger.steps(result.run_id):
            print(f"  step {step.record.seq}: {step.record.kind} {step.record.name}")
        replayed = app.replay(result.run_id, mode="recorded")
        print("recorded replay:", replayed.run.status, "- refunds made:", len(refunds))
        app.close()


if __name__ == "__main__":
    main()
