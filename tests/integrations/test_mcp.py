"""seawall.integrations.mcp against real MCP servers built with the SDK, in child processes.

Each server (``mcp_server.py``) writes what it was asked and the side effects it made, with the
idempotency key it received in ``_meta``, to files the tests read: that external record proves
that a crash, a resume or a dead server never made a mutating call twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from seawall import (
    ConfigurationError,
    ErrorClass,
    FailureCause,
    IntegrationError,
    Retry,
    RunStatus,
    Seawall,
)
from seawall.integrations import _versions
from seawall.integrations.mcp import SUPPORTED, JournaledSession, wrap
from seawall.testing import no_waits
from tests.integrations.mcp_agent_workload import SERVER, build_app, connect

WORKLOAD = Path(__file__).with_name("mcp_agent_workload.py")


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def http_server(log: Path) -> Iterator[str]:
    """The test server on streamable HTTP, in a child process; its URL once it accepts."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, str(SERVER), str(log), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the MCP server did not start (exit {child.poll()})")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        child.terminate()
        child.wait(10)


@pytest.fixture(params=["stdio", "http"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(target, effects log)``: ``stdio`` (each connection starts a server) or an HTTP URL."""
    log = tmp_path / "effects.log"
    if request.param == "stdio":
        yield "stdio", log
        return
    with http_server(log) as url:
        yield url, log


@contextlib.asynccontextmanager
async def shop_of(
    app: Seawall, log: Path, target: str = "stdio", **options: Any
) -> AsyncIterator[JournaledSession]:
    async with connect(log, target) as session:
        yield await wrap(session, app, name="shop", **options)


def test_annotations_set_each_tools_policy(app: Seawall, tmp_path: Path) -> None:
    """readOnlyHint, destructiveHint and idempotentHint become the steps' flags; tools= wins."""

    async def scenario() -> None:
        async with shop_of(app, tmp_path / "effects.log", tools={"note": {"idempotent": True}}):
            pass

    asyncio.run(scenario())
    flags = {
        name.removeprefix("shop.tool."): (spec.mutating, spec.destructive, spec.idempotent)
        for name, spec in app.tools.items()
    }
    assert (False, False, False) == flags["lookup"]
    assert (True, False, True) == flags["refund"]
    assert (True, False, True) == flags["note"]  # overridden: it is not idempotent by itself
    assert (True, True, False) == flags["delete_order"]  # no annotations: MCP's defaults
    assert app.tools["shop.tool.lookup"].returns is not None  # its outputSchema


def test_unknown_tool_options_and_other_sessions_are_refused(app: Seawall, tmp_path: Path) -> None:
    """tools= naming a tool the server lacks, or something that is no session, is refused."""

    async def scenario() -> None:
        async with connect(tmp_path / "effects.log", "stdio") as session:
            with pytest.raises(ConfigurationError, match=r"\['refnud'\]"):
                await wrap(session, app, tools={"refnud": {}})
        with pytest.raises(ConfigurationError, match="ClientSession"):
            await wrap(object(), app)  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_calls_in_a_run_are_journaled_with_their_key_in_meta(
    app: Seawall, target: tuple[str, Path]
) -> None:
    """list_tools and each call_tool are steps; the server received each step's key."""
    url, log = target

    async def scenario() -> tuple[Any, list[Any], Any]:
        async with shop_of(app, log, url) as shop:

            @app.agent(name="support")
            async def support(ctx: Any, order: str) -> dict[str, Any]:
                listed = await shop.list_tools()
                assert "refund" in [tool.name for tool in listed.tools]
                found = await shop.call_tool("lookup", {"order": order})
                paid = found.structured_content["paid"]
                await shop.call_tool("refund", {"order": order, "amount": paid})
                return {"refunded": paid}

            result = await app.arun(support, order="A-1")
            outside = await shop.call_tool("lookup", {"order": "A-9"})  # not in a run: plain
            return result, app.ledger.steps(result.run_id), outside

    result, steps, outside = asyncio.run(scenario())
    assert RunStatus.SUCCEEDED == result.status, result.error
    assert {"refunded": 40} == result.output
    assert [
        ("shop.list_tools", False),
        ("shop.tool.lookup", False),
        ("shop.tool.refund", True),
    ] == [(s.record.name, s.record.mutating) for s in steps]
    assert {"arguments": {"order": "A-1", "amount": 40}} == steps[2].request[2]
    [effect] = lines(log)
    assert (steps[2].record.idempotency_key, {"order": "A-1", "amount": 40}) == (
        effect["key"],
        effect["args"],
    )
    calls = lines(log.with_suffix(".calls"))
    assert [steps[1].record.idempotency_key, None] == [
        c["key"] for c in calls if c["tool"] == "lookup"
    ]
    assert {"order": "A-9", "paid": 40} == outside.structured_content


def test_a_recorded_replay_calls_no_server(app: Seawall, tmp_path: Path) -> None:
    """Replay serves the tool list and every call from the journal: the server hears nothing."""
    log = tmp_path / "effects.log"

    async def scenario() -> Any:
        async with shop_of(app, log) as shop:

            @app.agent(name="support")
            async def support(ctx: Any) -> str:
                await shop.list_tools()
                done = await shop.call_tool("refund", {"order": "A-1", "amount": 5})
                return str(done.structured_content["result"])

            result = await app.arun(support)
            heard = len(lines(log.with_suffix(".calls")))
            replayed = await app.areplay(result.run_id, mode="recorded")
            assert heard == len(lines(log.with_suffix(".calls")))
            return replayed

    replayed = asyncio.run(scenario())
    assert replayed.ok, replayed.divergence
    assert "refunded 5 on A-1" == replayed.run.output
    assert 1 == len(lines(log))


@pytest.mark.parametrize(
    ("tool", "tries", "error"),
    [
        ("stock", 1, "answered an error: Error executing tool stock: no such item: A-1"),
        ("strict", 1, "answered error -32602 (order A-1 is not in this shop)"),
    ],
)
def test_error_results_and_bad_requests_are_permanent(
    app: Seawall, tmp_path: Path, tool: str, tries: int, error: str
) -> None:
    """isError, or a JSON-RPC refusal of the request itself: tried once, the run fails."""
    log = tmp_path / "effects.log"

    async def scenario() -> Any:
        async with shop_of(app, log) as shop:

            @app.agent(name="asks", retry=Retry(attempts=1))
            async def asks(ctx: Any) -> None:
                key = "item" if tool == "stock" else "order"
                await shop.call_tool(tool, {key: "A-1"})

            with no_waits():
                result = await app.arun(asks)
            return result, app.ledger.steps(result.run_id)

    result, [step] = asyncio.run(scenario())
    assert (RunStatus.FAILED, "PermanentError") == (result.status, result.error["type"])
    assert error in result.error["message"]
    assert (tries, "failed") == (step.record.tries, step.record.status)


def test_a_json_rpc_internal_error_is_transient(app: Seawall, tmp_path: Path) -> None:
    """The server's internal error once, then an answer: the step succeeds on its second try."""

    async def scenario() -> Any:
        async with shop_of(app, tmp_path / "effects.log") as shop:

            @app.agent(name="waits")
            async def waits(ctx: Any) -> str:
                answer = await shop.call_tool("busy", {"order": "A-1"})
                return str(answer.structured_content["result"])

            with no_waits():
                result = await app.arun(waits)
            return result, app.ledger.steps(result.run_id)

    result, [step] = asyncio.run(scenario())
    assert ("A-1 is ready", 2) == (result.output, step.record.tries)


def test_structured_content_outside_the_output_schema_is_stopped(
    app: Seawall, tmp_path: Path
) -> None:
    """A server answering outside its declared outputSchema: a ToolResponseError at the boundary."""
    log = tmp_path / "effects.log"

    async def scenario() -> Any:
        async with shop_of(app, log, retry=Retry(attempts=2)) as shop:

            @app.agent(name="reads", retry=Retry(attempts=1))
            async def reads(ctx: Any) -> Any:
                return (await shop.call_tool("lookup_broken", {"order": "A-1"})).structured_content

            with no_waits():
                return await app.arun(reads)

    result = asyncio.run(scenario())
    assert (RunStatus.FAILED, "ToolResponseError") == (result.status, result.error["type"])
    assert "'lots' is not of type 'integer'" in result.error["message"]
    assert 2 == len(lines(log.with_suffix(".calls")))  # read-only: tried again, then stopped


def test_destructive_calls_count_toward_the_streak_guard(app: Seawall, tmp_path: Path) -> None:
    """delete_order is destructive by MCP's defaults: the 4th in a row without a gate is refused."""
    log = tmp_path / "effects.log"

    async def scenario() -> Any:
        async with shop_of(app, log) as shop:

            @app.agent(name="purge", retry=Retry(attempts=1))
            async def purge(ctx: Any) -> None:
                for order in ("A-1", "A-2", "A-3", "A-4"):
                    await shop.call_tool("delete_order", {"order": order})

            return await app.arun(purge)

    result = asyncio.run(scenario())
    assert FailureCause.GUARD_TRIPPED == result.failure_cause
    assert ["A-1", "A-2", "A-3"] == [e["args"]["order"] for e in lines(log)]


def test_a_server_that_dies_mid_call_leaves_the_step_in_doubt(
    app: Seawall, target: tuple[str, Path]
) -> None:
    """charge acts, then its server dies before answering: the run stops in_doubt, not retried."""
    url, log = target

    async def scenario() -> Any:
        async with shop_of(app, log, url) as shop:

            @app.agent(name="charges")
            async def charges(ctx: Any) -> None:
                await shop.call_tool("charge", {"order": "A-1"})

            with no_waits():
                result = await app.arun(charges)
            return result, app.ledger.steps(result.run_id)

    result, [step] = asyncio.run(scenario())
    assert (RunStatus.FAILED, FailureCause.IN_DOUBT) == (result.status, result.failure_cause)
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert ("started", 1) == (step.record.status, step.record.attempt)  # intent, no result
    assert [step.record.idempotency_key] == [e["key"] for e in lines(log)]  # it did act, once
    assert "may or may not have acted" in result.error["message"]


def test_a_sync_agent_is_refused(app: Seawall, tmp_path: Path) -> None:
    """The SDK is async: calling the session from a sync agent is a UsageError."""

    async def scenario() -> Any:
        async with shop_of(app, tmp_path / "effects.log") as shop:

            @app.agent(name="blocking", retry=Retry(attempts=1))
            def blocking(ctx: Any) -> None:
                asyncio.run(shop.call_tool("lookup", {"order": "A-1"}))

            return await app.arun(blocking)

    result = asyncio.run(scenario())
    assert "UsageError" == result.error["type"]
    assert "async agent" in result.error["message"]


def run_agent(ledger: str, log: Path, mode: str, target: str, **env: str) -> int:
    done = subprocess.run(
        [sys.executable, str(WORKLOAD), ledger, str(log), mode, target],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    return done.returncode


async def resume_when_lapsed(app: Seawall, patience: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        results = await app.aresume()
        if results:
            return results
        await asyncio.sleep(0.1)
    raise AssertionError("no run became resumable")


async def resumed(ledger: str, log: Path, target: str) -> tuple[Any, list[Any]]:
    app, shops = build_app(ledger)
    try:
        async with connect(log, target) as session:
            shops["shop"] = await wrap(session, app, name="shop")
            [result] = await resume_when_lapsed(app)
            return result, app.ledger.steps(result.run_id)
    finally:
        app.close()


EFFECTS = [
    ("refund", {"order": "A-1", "amount": 40}),
    ("note", {"text": "refunded A-1"}),
    ("refund", {"order": "A-2", "amount": 40}),
    ("note", {"text": "refunded A-2"}),
]


@pytest.mark.crash
def test_a_killed_agent_resumes_without_repeating_a_mutating_call(
    tmp_path: Path, target: tuple[str, Path]
) -> None:
    """SIGKILL between two orders; the resumed run makes each refund and note exactly once."""
    url, log = target
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert -signal.SIGKILL == run_agent(ledger, log, "between", url)
    assert EFFECTS[:2] == [(e["tool"], e["args"]) for e in lines(log)]
    result, steps = asyncio.run(resumed(ledger, log, url))
    assert RunStatus.SUCCEEDED == result.status, result.error
    assert EFFECTS == [(e["tool"], e["args"]) for e in lines(log)]
    mutating = [s for s in steps if s.record.mutating]
    assert [e["key"] for e in lines(log)] == [s.record.idempotency_key for s in mutating]
    assert [1, 1, 2, 2] == [s.record.attempt for s in mutating]


@pytest.mark.crash
@pytest.mark.parametrize(
    ("kill_after", "status"),
    [("refund:A-2", RunStatus.SUCCEEDED), ("note:refunded A-2", RunStatus.FAILED)],
)
def test_an_agent_killed_while_its_call_is_answered_leaves_it_in_doubt(
    tmp_path: Path, kill_after: str, status: RunStatus
) -> None:
    """Killed after the server acted, before the answer: an idempotent refund is sent again with
    its key (and deduplicated); a note, not idempotent, stops the resumed run in_doubt."""
    log = tmp_path / "effects.log"
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert -signal.SIGKILL == run_agent(ledger, log, "none", "stdio", KILL_CLIENT_AFTER=kill_after)
    before = lines(log)
    result, steps = asyncio.run(resumed(ledger, log, "stdio"))
    assert status == result.status
    after = lines(log)
    assert before == after[: len(before)]
    assert EFFECTS[: len(after)] == [(e["tool"], e["args"]) for e in after]  # none twice
    if status is RunStatus.FAILED:
        assert FailureCause.IN_DOUBT == result.failure_cause
        assert after == before
    else:
        [refund] = [s for s in steps if s.request[2] == {"arguments": EFFECTS[2][1]}]
        calls = [c for c in lines(log.with_suffix(".calls")) if c["args"] == EFFECTS[2][1]]
        assert [refund.record.idempotency_key] * 2 == [c["key"] for c in calls]  # re-issued


def test_an_unsupported_mcp_version_fails_at_import_naming_the_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mcp 1.x installed: importing the integration raises, naming the supported range."""
    monkeypatch.setattr(_versions, "installed_version", lambda name: "1.9.0")
    monkeypatch.delitem(sys.modules, "seawall.integrations.mcp")
    with pytest.raises(IntegrationError) as caught:
        importlib.import_module("seawall.integrations.mcp")
    assert f"mcp{SUPPORTED}" in caught.value.message
    assert "pip install 'seawall[mcp]'" in caught.value.message
