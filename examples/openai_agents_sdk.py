"""An OpenAI Agents SDK agent run by Seawall (seawall.integrations.openai_agents).

Runs offline on a stand-in model implementing the SDK's ``Model`` interface: it asks for a
refund (a mutating tool, run at most once per run), then answers. An output guardrail refuses an
answer that promises a date; its tripwire is a verification failure, so the run is retried once
with the guardrail's message, and the second answer passes.

    pip install 'seawall[openai-agents]'
    python examples/openai_agents_sdk.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    Model,
    ModelResponse,
    RunConfig,
    Usage,
    function_tool,
    output_guardrail,
)
from agents.testing import assistant_message, function_call

import seawall
from seawall.integrations.openai_agents import idempotency_key, register


class StandIn(Model):
    """A scripted model: a refund call, then an answer (a careless one on the first attempt)."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_response(self, *arguments: Any, **_options: Any) -> ModelResponse:
        """The SDK's model interface: ``arguments[1]`` is the conversation so far."""
        self.calls += 1
        conversation = arguments[1]
        text = str(conversation)
        usage = Usage(requests=1, input_tokens=40, output_tokens=8, total_tokens=48)
        if "function_call_output" not in text:
            call = function_call("refund", {"order": "A-17", "amount": 40}, call_id="call-1")
            return ModelResponse(output=[call], usage=usage, response_id=None)
        answer = "Refunded 40 on A-17; the money arrives tomorrow."
        if "guardrail" in text:  # the guardrail's message came back with the retry
            answer = "Refunded 40 on A-17; your bank decides when it shows."
        return ModelResponse(output=[assistant_message(answer)], usage=usage, response_id=None)

    def stream_response(self, *_arguments: Any, **_options: Any) -> Any:
        """Not used: Seawall runs the SDK without streaming."""
        raise NotImplementedError


refunds: list[tuple[str, int]] = []
keys: list[str | None] = []


@function_tool
def refund(order: str, amount: int) -> str:
    """Refund an order (a side effect: Seawall runs it at most once per run)."""
    keys.append(idempotency_key())  # give it to your payment API: it is the same on a resume
    refunds.append((order, amount))
    return f"refunded {amount} on {order}"


@output_guardrail
async def no_dates(context: Any, agent: Agent[Any], output: Any) -> GuardrailFunctionOutput:
    """Support may not promise when money arrives."""
    promised = "tomorrow" in str(output)
    return GuardrailFunctionOutput({"promised_a_date": promised}, tripwire_triggered=promised)


def main() -> None:
    """Run the agent; show its attempts, its journal and the refunds made."""
    model = StandIn()
    support = Agent(name="support", model=model, tools=[refund], output_guardrails=[no_dates])
    with tempfile.TemporaryDirectory() as folder:
        app = seawall.Seawall(f"sqlite:///{Path(folder) / 'ledger.db'}")
        run = register(
            app,
            support,
            tools={"refund": {"mutating": True}},
            run_config=RunConfig(tracing_disabled=True),
            on_drift=seawall.OnDrift(retries=1),
        )
        result = app.run(run, prompt="Order A-17 arrived broken, please refund it.")
        print(result.status, repr(result.output), "tokens:", result.tokens_used)
        for attempt in app.ledger.attempts(result.run_id):
            print(f"  attempt {attempt.attempt}: {attempt.status} {attempt.error_message or ''}")
        for step in app.ledger.steps(result.run_id):
            print(f"  step {step.record.seq}: {step.record.kind} {step.record.name}")
        print("refunds made:", refunds)
        app.close()


if __name__ == "__main__":
    main()
