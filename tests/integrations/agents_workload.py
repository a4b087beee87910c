"""An OpenAI Agents SDK agent that refunds two orders, run as a child process that kills itself.

Usage: python agents_workload.py LEDGER_URL LOG_PATH MODE

MODE:
  in-model   SIGKILL inside the third model call, after both refunds completed
  in-tool    SIGKILL inside the second refund, after its side effect, before it is journaled
  none       run to completion (the resuming side builds the app with this mode)

The refund tool appends ``{"order", "key"}`` to LOG_PATH, skipping a key already logged (it
dedupes, as a payment API would); the key is the step's idempotency key.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelResponse, RunConfig, Usage, function_tool
from agents.testing import assistant_message, function_call

from seawall import Seawall
from seawall.integrations.openai_agents import idempotency_key, register

LEASE = 0.5


class Cashier(Model):
    """Asks for one refund a turn, A-1 then A-2, then says it is done (from what it was sent)."""

    def __init__(self, kill_on_call: int | None = None) -> None:
        self.calls = 0
        self.kill_on_call = kill_on_call

    async def get_response(self, *arguments: Any, **_options: Any) -> ModelResponse:
        """The SDK's model interface: ``arguments[1]`` is the conversation so far."""
        conversation = arguments[1]
        self.calls += 1
        if self.calls == self.kill_on_call:
            os.kill(os.getpid(), signal.SIGKILL)
        done = sum(
            1
            for item in conversation
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        )
        usage = Usage(requests=1, input_tokens=30, output_tokens=6, total_tokens=36)
        if done < 2:
            call = function_call("refund", {"order": f"A-{done + 1}"}, call_id=f"call-{done + 1}")
            return ModelResponse(output=[call], usage=usage, response_id=None)
        return ModelResponse(
            output=[assistant_message("Refunded A-1 and A-2.")], usage=usage, response_id=None
        )

    def stream_response(self, *_args: Any, **_options: Any) -> Any:
        raise NotImplementedError


def logged(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def build_app(ledger: str, log: Path, mode: str = "none") -> tuple[Seawall, Any]:
    """The app and its registered agent; the child kills itself per ``mode``."""
    app = Seawall(ledger, lease=LEASE)

    @function_tool(failure_error_function=None)
    def refund(order: str) -> str:
        key = idempotency_key()
        if key not in {entry["key"] for entry in logged(log)}:
            with log.open("a") as handle:
                handle.write(json.dumps({"order": order, "key": key}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        if mode == "in-tool" and order == "A-2":
            os.kill(os.getpid(), signal.SIGKILL)
        return f"refunded {order}"

    agent = Agent(name="cashier", model=Cashier(3 if mode == "in-model" else None), tools=[refund])
    registered = register(
        app,
        agent,
        tools={"refund": {"mutating": True, "idempotent": True}},
        run_config=RunConfig(tracing_disabled=True),
    )
    return app, registered


if __name__ == "__main__":
    ledger_url, log_path, run_mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    child, cashier = build_app(ledger_url, log_path, run_mode)
    child.run(cashier, prompt="refund my two orders")
    child.close()
