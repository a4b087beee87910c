"""Breakers live in the ledger: every process sees the same breaker; probes and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from seawall import Breaker, Context, FailureCause, Retry, RunStatus, Seawall
from seawall.cli import cli

FAILER = """
import sys
from seawall import Breaker, Retry, Seawall

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers
app = Seawall(sys.argv[1], retry=Retry(attempts=1))

@app.agent(name="fragile", breaker=Breaker(failures=3, cooldown=60))
def fragile(ctx):
    raise ValueError("broken")

print([app.run("fragile").failure_cause.value for _ in range(4)])
app.close()
"""


def test_a_breaker_opened_by_one_process_refuses_runs_in_another(
    tmp_path: Path, ledger_url: str
) -> None:
    """Process A fails an agent three times; process B does not start it."""
    script = tmp_path / "failer.py"
    script.write_text(FAILER)
    done = subprocess.run(
        [sys.executable, str(script), ledger_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "['exception', 'exception', 'exception', 'breaker_open']" == done.stdout.strip()
    app = Seawall(ledger_url, retry=Retry(attempts=1))
    calls = {"n": 0}

    @app.agent(name="fragile", breaker=Breaker(failures=3, cooldown=60))
    def fragile(ctx: Context) -> str:
        calls["n"] += 1
        return "fixed"

    try:
        result = app.run(fragile)
        assert RunStatus.SKIPPED == result.status
        assert FailureCause.BREAKER_OPEN == result.failure_cause
        assert 0 == calls["n"]
        [state] = [s for s in app.breakers.list() if s.name == "agent:fragile"]
        assert "open" == state.state
    finally:
        app.close()


def test_half_open_lets_one_probe_through_and_a_success_closes(app: Seawall) -> None:
    """After the cooldown one probe runs; its success closes the breaker."""
    broken = {"yes": True}

    @app.agent(retry=Retry(attempts=1), breaker=Breaker(failures=1, cooldown=0.2))
    def flaky(ctx: Context) -> str:
        if broken["yes"]:
            raise ValueError("down")
        return "up"

    assert FailureCause.EXCEPTION == app.run(flaky).failure_cause
    assert FailureCause.BREAKER_OPEN == app.run(flaky).failure_cause
    time.sleep(0.3)
    broken["yes"] = False
    assert RunStatus.SUCCEEDED == app.run(flaky).status
    transitions = [(e.from_state, e.to_state) for e in reversed(app.breakers.events("agent:flaky"))]
    assert [("closed", "open"), ("open", "half_open"), ("half_open", "closed")] == transitions


def test_a_failed_probe_opens_again(app: Seawall) -> None:
    """A probe that fails re-opens the breaker for another cooldown."""

    @app.agent(retry=Retry(attempts=1), breaker=Breaker(failures=1, cooldown=0.1))
    def down(ctx: Context) -> None:
        raise ValueError("still down")

    app.run(down)
    time.sleep(0.15)
    assert FailureCause.EXCEPTION == app.run(down).failure_cause
    assert FailureCause.BREAKER_OPEN == app.run(down).failure_cause
    [state] = app.breakers.list()
    assert "open" == state.state


def test_tool_frozen_by_hand_fails_calls_fast_with_the_reason(app: Seawall) -> None:
    """A tool breaker opened by an operator refuses calls without calling the tool."""
    calls = {"n": 0}

    @app.tool(mutating=True)
    def delete(path: str) -> None:
        calls["n"] += 1

    @app.agent(retry=Retry(attempts=1))
    def janitor(ctx: Context) -> None:
        ctx.call(delete, "/data")

    app.breakers.open("tool:delete", reason="incident 42")
    result = app.run(janitor)
    assert 0 == calls["n"]
    assert FailureCause.BREAKER_OPEN == result.failure_cause
    assert "incident 42" in result.error["message"]
    app.breakers.reset("tool:delete")
    assert RunStatus.SUCCEEDED == app.run(janitor).status


def test_cli_breakers_list_open_reset(ledger_url: str) -> None:
    """`seawall breakers open|list|reset` work on the shared ledger."""
    runner = CliRunner()
    opened = runner.invoke(
        cli, ["breakers", "open", "agent:writer", "--reason", "freeze", "--ledger", ledger_url]
    )
    assert 0 == opened.exit_code, opened.output
    listed = runner.invoke(cli, ["breakers", "list", "--ledger", ledger_url, "--json"])
    [entry] = json.loads(listed.output)
    assert ("agent:writer", "open", True, "freeze") == (
        entry["name"],
        entry["state"],
        entry["manual"],
        entry["reason"],
    )
    reset = runner.invoke(cli, ["breakers", "reset", "agent:writer", "--ledger", ledger_url])
    assert 0 == reset.exit_code
    listed = runner.invoke(cli, ["breakers", "list", "--ledger", ledger_url, "--json"])
    assert "closed" == json.loads(listed.output)[0]["state"]
    bad = runner.invoke(
        cli, ["breakers", "open", "writer", "--reason", "x", "--ledger", ledger_url]
    )
    assert 1 == bad.exit_code


def test_contradictory_results_open_the_tool_breaker(app: Seawall) -> None:
    """Two answers for one key that disagree: the step stops and the breaker opens."""
    answers = iter([90, 90, 30])

    @app.tool(consistency_key=lambda policy: policy)
    def refund_days(policy: str) -> int:
        return next(answers)

    @app.agent(retry=Retry(attempts=1))
    def ask(ctx: Context) -> int:
        return ctx.call(refund_days, "bereavement")

    assert RunStatus.SUCCEEDED == app.run(ask).status
    assert RunStatus.SUCCEEDED == app.run(ask).status
    third = app.run(ask)
    assert "ConsistencyError" == third.error["type"]
    assert "contradicted itself" in third.error["message"]
    [state] = [b for b in app.breakers.list() if b.name == "tool:refund_days"]
    assert "open" == state.state
    assert "contradictory results: 90 then 30" == state.reason
    fourth = app.run(ask)
    assert FailureCause.BREAKER_OPEN == fourth.failure_cause


def test_contradicts_decides_what_disagrees(app: Seawall) -> None:
    """A custom contradicts= tolerates small differences."""
    answers = iter([100.0, 100.4, 130.0])

    @app.tool(contradicts=lambda before, after: abs(before - after) > 1)
    def price() -> float:
        return next(answers)

    @app.agent(retry=Retry(attempts=1))
    def quote(ctx: Context) -> float:
        return ctx.call(price)

    assert [True, True, False] == [app.run(quote).ok for _ in range(3)]
