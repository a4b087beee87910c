"""Every example under examples/ runs offline and prints what its docstring promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "langgraph_graph.py": [
        "succeeded attempts: 2 tokens: 115",
        "notified: ['#oncall']",
        "step 3: tool langchain.tool.notify",
        "recorded replay: succeeded - notified: ['#oncall']",
    ],
    "openai_chat.py": [
        "succeeded 'Breakers stop cascades.' tokens: 25",
        "step 1: llm openai.chat.completions.create (tries: 2)",
        "model calls during the replay: 0",
    ],
    "mcp_tools.py": [
        "shop.tool.refund: mutating=True idempotent=True",
        "succeeded 'refunded 40 on A-17'",
        "step 3: tool shop.tool.refund",
        "the server received the step's key: True",
        "recorded replay without the server: succeeded 'refunded 40 on A-17'",
    ],
    "openai_agents_sdk.py": [
        "succeeded 'Refunded 40 on A-17; your bank decides when it shows.' tokens: 96",
        "attempt 1: failed the agent's output guardrail 'no_dates' tripped",
        "step 3: tool support.tool.refund",
        "refunds made: [('A-17', 40)]",
    ],
    "pydantic_ai_agent.py": [
        "succeeded {'action': 'refund', 'amount': 40}",
        "step 5: tool support.tool.refund",
        "step 6: llm support.model",
        "recorded replay: succeeded - refunds made: 1",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    """The example exits 0 with no API key set and prints the lines it promises."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    for line in EXPECTED[name]:
        assert line in done.stdout, done.stdout


def test_every_example_is_run() -> None:
    """A new example file is added to EXPECTED, so it cannot rot unnoticed."""
    assert sorted(EXPECTED) == sorted(p.name for p in EXAMPLES.glob("*.py"))
