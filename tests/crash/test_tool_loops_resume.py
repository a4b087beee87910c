"""The OpenAI SDK and LangGraph ToolNode tool-calling loops, SIGKILLed and resumed with no divergence.

Each loop puts a tool result into its next prompt as JSON text; a journal that served the result
with its keys sorted (or ``1.0`` as ``1``) made the resumed run ask the model something else and
stop in ``JournalDivergenceError`` before the refund that followed (issue 15, case 1).
"""

from __future__ import annotations

import copy
import functools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seawall import Context, FailureCause, RunStatus, Seawall
from seawall.cli import cli
from tests.integrations.fake_openai import FakeOpenAI, Reply, chat_completion, tool_call_completion

from .test_crash_resume import resume_when_lapsed
from .tool_loops_workload import (
    ANSWER,
    LOOKUP,
    MODEL_LATENCY,
    OPENAI_MODEL_STEP,
    QUESTION,
    langgraph_loop,
    logged,
    openai_loop,
)

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers

pytestmark = pytest.mark.crash
WORKLOAD = Path(__file__).with_name("tool_loops_workload.py")
SORTED_DUMPS = functools.partial(json.dumps, sort_keys=True)
"""How the agent's prompt looked after a resume when the journal served results keys sorted."""


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    """Run one loop in a child process that kills itself near the end of its run."""
    return subprocess.run(
        [sys.executable, str(WORKLOAD), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )


def cashier(_path: str, body: dict[str, Any]) -> Reply:
    """The model: asks for a lookup, then a refund of the total it read back, then answers."""
    last = body["messages"][-1]
    if last["role"] == "user":
        reply = tool_call_completion("lookup", {"order": "A-17"}, "call_lookup")
    elif last.get("tool_call_id") == "call_lookup":
        found = json.loads(last["content"])
        arguments = {"order": found["order"], "amount": found["total"]}
        reply = tool_call_completion("refund", arguments, "call_refund")
    else:
        reply = chat_completion(ANSWER)
    return Reply(body=reply, delay=MODEL_LATENCY)


def assert_resumed_once(app: Seawall, result: Any, log: Path) -> None:
    """The run succeeded on its second attempt, after the crash, and refunded exactly once."""
    assert RunStatus.SUCCEEDED == result.status, result.error
    attempts = app.ledger.attempts(result.run_id)
    # No attempt ended in JournalDivergenceError: the first died, the second succeeded.
    assert [("failed", FailureCause.CRASHED, "Crashed"), ("succeeded", None, None)] == [
        (a.status, a.failure_cause, a.error_type) for a in attempts
    ]
    [refund] = [s for s in app.ledger.steps(result.run_id) if s.record.mutating]
    assert (1, "completed") == (refund.record.attempt, refund.record.status)
    assert 1 == len(logged(log))


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """The model, a local OpenAI-compatible server answering as :func:`cashier`."""
    pytest.importorskip("openai")
    with FakeOpenAI(answer=cashier) as fake:
        yield fake


def test_a_served_tool_result_dumps_to_the_same_json_text(app: Seawall) -> None:
    """Served from the journal, the lookup result is json.dumps-identical to what the tool
    returned, byte for byte (and a journal serving its keys sorted would fail this)."""
    seen: list[Any] = []

    @app.tool
    def lookup(order: str) -> dict[str, Any]:
        return copy.deepcopy(LOOKUP)

    @app.agent
    def agent(ctx: Context, order: str) -> str:
        seen.append(ctx.call(lookup, order))
        return json.dumps(seen[-1])

    original = app.run(agent, order="A-17")
    replayed = app.replay(original.run_id, mode="recorded")
    assert replayed.ok, replayed.divergence
    [live, served] = seen
    for dumps in (json.dumps, functools.partial(json.dumps, ensure_ascii=False)):
        assert (dumps(LOOKUP), dumps(LOOKUP)) == (dumps(live), dumps(served))
    assert json.dumps(LOOKUP) != SORTED_DUMPS(LOOKUP)
    assert '"total": 1.0' in json.dumps(served)


def test_the_openai_sdk_loop_resumes_after_a_sigkill(
    tmp_path: Path, ledger_url: str, server: FakeOpenAI
) -> None:
    """Killed after the refund and the final model call: the resume serves every call (no request
    reaches the model again), refunds once, and a recorded replay matches the run."""
    log = tmp_path / "refunds.log"
    child = run_child("openai", ledger_url, str(log), server.base_url)
    assert -signal.SIGKILL == child.returncode, child.stderr
    assert 3 == len(server.requests)
    assert json.dumps(LOOKUP) == server.requests[1][1]["messages"][2]["content"]

    loop = openai_loop(ledger_url, log, server.base_url)
    try:
        [result] = resume_when_lapsed(loop.app)
        assert_resumed_once(loop.app, result, log)
        assert {"answer": ANSWER, "turns": 6} == result.output
        assert 3 == len(server.requests)  # the journal answered every model call
        assert [] == loop.lookups
        assert [json.dumps(LOOKUP)] == [json.dumps(served) for served in loop.seen]
        [refund] = [s for s in loop.app.ledger.steps(result.run_id) if s.record.mutating]
        assert [refund.record.idempotency_key] == [entry["key"] for entry in logged(log)]

        replayed = loop.app.replay(result.run_id, mode="recorded")
        assert replayed.ok, replayed.divergence
        assert ([], 3, 1) == (replayed.output_changes, len(server.requests), len(logged(log)))
    finally:
        loop.app.close()


def test_the_langgraph_toolnode_loop_resumes_after_a_sigkill(
    tmp_path: Path, ledger_url: str
) -> None:
    """The same with a ToolNode: the dict result is the ToolMessage's JSON text, every model call
    is served on resume and replay, and the refund happened once."""
    pytest.importorskip("langgraph")
    log = tmp_path / "refunds.log"
    child = run_child("langgraph", ledger_url, str(log))
    assert -signal.SIGKILL == child.returncode, child.stderr

    loop = langgraph_loop(ledger_url, log)
    try:
        [result] = resume_when_lapsed(loop.app)
        assert_resumed_once(loop.app, result, log)
        messages = result.output["messages"]
        assert ["human", "ai", "tool", "ai", "tool", "ai"] == [m["type"] for m in messages]
        assert json.dumps(LOOKUP, ensure_ascii=False) == messages[2]["data"]["content"]
        assert ANSWER == messages[-1]["data"]["content"]
        assert ([], []) == (loop.drawn, loop.lookups)  # no model call, no lookup asked again

        replayed = loop.app.replay(result.run_id, mode="recorded")
        assert replayed.ok, replayed.divergence
        assert ([], [], 1) == (replayed.output_changes, loop.drawn, len(logged(log)))
    finally:
        loop.app.close()


def resume_with_sorted_keys(tmp_path: Path, ledger: str, server: FakeOpenAI) -> Any:
    """Kill the OpenAI loop's child, then resume it with code that dumps results keys sorted."""
    child = run_child("openai", ledger, str(tmp_path / "refunds.log"), server.base_url)
    assert -signal.SIGKILL == child.returncode, child.stderr
    loop = openai_loop(ledger, tmp_path / "refunds.log", server.base_url, dumps=SORTED_DUMPS)
    try:
        [result] = resume_when_lapsed(loop.app)
    finally:
        loop.app.close()
    return result


def test_a_resume_whose_prompt_differs_stops_before_repeating_the_refund(
    tmp_path: Path, ledger_url: str, server: FakeOpenAI
) -> None:
    """What a sorted-keys journal did: the resumed prompt differs before the completed refund, so
    the run stops in JournalDivergenceError, asking the model nothing and refunding nothing."""
    result = resume_with_sorted_keys(tmp_path, ledger_url, server)
    assert (RunStatus.FAILED, FailureCause.DIVERGENCE) == (result.status, result.failure_cause)
    error = result.error or {}
    assert ("JournalDivergenceError", 4) == (error["type"], error["step"])
    assert (OPENAI_MODEL_STEP, OPENAI_MODEL_STEP) == (error["expected"], error["got"])
    assert (3, 1) == (len(server.requests), len(logged(tmp_path / "refunds.log")))


def test_a_resume_whose_prompt_differs_says_which_field_changed(
    tmp_path: Path, server: FakeOpenAI
) -> None:
    """The divergence names ``messages[2].content`` and both texts, in the error's changes, its
    message and `seawall show` (the request is a blob reference, over 256 bytes; SQLite only)."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = resume_with_sorted_keys(tmp_path, ledger, server)
    error = result.error or {}
    change = {
        "path": "messages[2].content",
        "before": json.dumps(LOOKUP),
        "after": SORTED_DUMPS(LOOKUP),
    }
    assert [change] == error["changes"]
    assert 'messages[2].content: "{\\"order\\"' in error["message"]
    shown = CliRunner().invoke(cli, ["show", result.run_id, "--ledger", ledger])
    assert 0 == shown.exit_code, shown.output
    assert 'messages[2].content: "{\\"order\\": \\"A-17\\"' in shown.output
    assert QUESTION not in shown.output  # the part that changed, not the whole prompt
