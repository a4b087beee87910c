"""`seawall replay` and `seawall dlq list|redrive|purge` on an app imported with --app."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from seawall import RunStatus
from seawall.cli import cli

MODULE = "seawall_replay_cli_app"
APP = f"{MODULE}:app"

APP_SOURCE = textwrap.dedent(
    '''
    """A checkout app whose bug the tests fix by emptying BROKEN."""

    import os

    from seawall import Context, Retry, Seawall

    app = Seawall(os.environ["SEAWALL_REPLAY_CLI_LEDGER"], lease=2.0)
    BROKEN = {"tea", "coffee"}
    EXTRA_CALL = False
    EXTRA_LOOKUP = False
    CALLS = []


    @app.tool(name="lookup")
    def lookup(sku: str) -> int:
        CALLS.append(("lookup", sku))
        return 10


    @app.tool(name="charge", mutating=True)
    def charge(amount: int) -> int:
        CALLS.append(("charge", amount))
        return amount


    @app.agent(name="checkout", retry=Retry(attempts=1))
    def checkout(ctx: Context, sku: str) -> dict:
        price = ctx.call(lookup, sku)
        paid = ctx.call(charge, price)
        if EXTRA_LOOKUP:
            ctx.call(lookup, "gift-wrap")
        if EXTRA_CALL:
            ctx.call(charge, 1)
        if sku in BROKEN:
            raise RuntimeError("bug: the receipt is never built")
        return {"sku": sku, "paid": paid}
    '''
)

runner = CliRunner()


@pytest.fixture
def shop(tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The app module, importable as MODULE here and by `--app`; closed and forgotten after."""
    (tmp_path / f"{MODULE}.py").write_text(APP_SOURCE)
    monkeypatch.setenv("SEAWALL_REPLAY_CLI_LEDGER", ledger_url)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.chdir(tmp_path)
    sys.modules.pop(MODULE, None)
    module = importlib.import_module(MODULE)
    try:
        yield module
    finally:
        module.app.close()
        sys.modules.pop(MODULE, None)


def failed(shop: ModuleType, sku: str = "tea") -> str:
    """Run the buggy checkout; return the failed run's id."""
    result = shop.app.run("checkout", sku=sku)
    assert RunStatus.FAILED == result.status
    return result.run_id


def invoke(*args: str, **kwargs: Any) -> Any:
    return runner.invoke(cli, list(args), **kwargs)


def test_recorded_replay_prints_json_and_exits_0(shop: ModuleType) -> None:
    """After the fix, a recorded replay succeeds, calls nothing and reports the changes."""
    original = failed(shop)
    calls = list(shop.CALLS)
    shop.BROKEN.clear()
    out = invoke("replay", original, "--app", APP, "--recorded", "--json")
    assert 0 == out.exit_code, out.output
    body = json.loads(out.stdout)
    assert "recorded" == body["mode"]
    assert original == body["original_run_id"]
    assert original != body["run_id"]
    assert "succeeded" == body["status"]
    assert body["divergence"] is None
    after = {"sku": "tea", "paid": 10}
    assert [{"path": "$", "before": None, "after": after}] == body["output_changes"]
    assert calls == shop.CALLS
    assert original == shop.app.ledger.run(body["run_id"]).replay_of


def test_extra_read_only_call_runs_live_and_is_reported(shop: ModuleType) -> None:
    """A read-only call the recording lacks runs live; the report names the step."""
    original = failed(shop)
    shop.BROKEN.clear()
    shop.EXTRA_LOOKUP = True
    before = len(shop.CALLS)
    out = invoke("replay", original, "--app", APP, "--recorded")
    assert 0 == out.exit_code, out.output
    assert "2 of 3 step(s) served from the recording" in out.output
    assert "step 3 lookup: live" in out.output
    assert [("lookup", "gift-wrap")] == shop.CALLS[before:]


def test_divergent_replay_exits_1_and_names_the_step(shop: ModuleType) -> None:
    """A replay asking for a side effect the journal lacks exits 1 and prints where."""
    original = failed(shop)
    shop.BROKEN.clear()
    shop.EXTRA_CALL = True
    out = invoke("replay", original, "--app", APP, "--recorded")
    assert 1 == out.exit_code, out.output
    assert "diverged" in out.output
    assert "step 3" in out.output


def test_divergent_replay_json_has_the_divergence(shop: ModuleType) -> None:
    """--json carries the step, what the journal holds and what the code asked for."""
    original = failed(shop)
    shop.EXTRA_CALL = True
    out = invoke("replay", original, "--app", APP, "--json")
    assert 1 == out.exit_code, out.output
    body = json.loads(out.stdout)
    assert "failed" == body["status"]
    assert "divergence" == body["failure_cause"]
    assert 3 == body["divergence"]["step"]
    assert "end of journal" == body["divergence"]["expected"]
    assert body["divergence"]["got"].startswith("charge ")


def test_live_replay_calls_the_tools(shop: ModuleType) -> None:
    """--live executes the calls again."""
    original = failed(shop)
    shop.BROKEN.clear()
    out = invoke("replay", original, "--app", APP, "--live", "--json")
    assert 0 == out.exit_code, out.output
    body = json.loads(out.stdout)
    assert "live" == body["mode"]
    assert "succeeded" == body["status"]
    assert [("lookup", "tea"), ("charge", 10)] * 2 == shop.CALLS
    assert "live" == shop.app.ledger.run(body["run_id"]).replay_mode


def test_dlq_list_prints_the_entries_as_json(shop: ModuleType, ledger_url: str) -> None:
    """Each failed run is listed with its failure and status."""
    first, second = failed(shop, "tea"), failed(shop, "coffee")
    shop.app.run("checkout", sku="water")
    out = invoke("dlq", "list", "--ledger", ledger_url, "--json")
    assert 0 == out.exit_code, out.output
    body = json.loads(out.stdout)
    assert [first, second] == [e["run_id"] for e in body]
    entry = body[0]
    assert "checkout" == entry["agent"]
    assert "partial_write" == entry["error_class"]
    assert "exception" == entry["failure_cause"]
    assert 1 == entry["attempts"]
    assert "pending" == entry["status"]
    assert entry["failed_at"].endswith("+00:00")


def test_dlq_redrive_exits_0_when_every_entry_succeeds(shop: ModuleType) -> None:
    """Fixed entries are redriven and reported as succeeded."""
    originals = [failed(shop, "tea"), failed(shop, "coffee")]
    shop.BROKEN.clear()
    out = invoke("dlq", "redrive", "--app", APP, "--json")
    assert 0 == out.exit_code, out.output
    body = json.loads(out.stdout)
    assert originals == [o["entry"]["run_id"] for o in body]
    assert ["succeeded", "succeeded"] == [o["status"] for o in body]
    assert [] == shop.app.dlq.list()


def test_dlq_redrive_exits_1_when_an_entry_fails_again(shop: ModuleType) -> None:
    """One entry still broken: the command says so with exit 1."""
    failed(shop, "tea")
    failed(shop, "coffee")
    shop.BROKEN.discard("tea")
    out = invoke("dlq", "redrive", "--app", APP, "--json")
    assert 1 == out.exit_code, out.output
    body = json.loads(out.stdout)
    assert [("tea", "succeeded"), ("coffee", "failed")] == [
        (shop.app.ledger.inputs(o["entry"]["run_id"])["sku"], o["status"]) for o in body
    ]


def test_dlq_redrive_matching_nothing_says_0_and_exits_0(shop: ModuleType) -> None:
    """A filter that matches no entry redrives nothing, successfully."""
    failed(shop)
    out = invoke("dlq", "redrive", "--app", APP, "--agent", "nobody")
    assert 0 == out.exit_code, out.output
    assert "redrove 0 entries" in out.output
    assert 1 == len(shop.app.dlq.list())


def test_dlq_purge_yes_purges_without_asking(shop: ModuleType, ledger_url: str) -> None:
    """--yes purges every matching pending entry."""
    failed(shop, "tea")
    failed(shop, "coffee")
    out = invoke("dlq", "purge", "--ledger", ledger_url, "--yes")
    assert 0 == out.exit_code, out.output
    assert "Purged 2 entries" in out.output
    assert [] == shop.app.dlq.list()
    assert 2 == len(shop.app.dlq.list(status="purged"))


def test_dlq_purge_declined_exits_1_and_purges_nothing(shop: ModuleType, ledger_url: str) -> None:
    """Answering no to the confirmation leaves the entries pending."""
    failed(shop)
    out = invoke("dlq", "purge", "--ledger", ledger_url, input="n\n")
    assert 1 == out.exit_code, out.output
    assert "Purge 1 entries?" in out.output
    assert 1 == len(shop.app.dlq.list())
    assert [] == shop.app.dlq.list(status="purged")


def test_dlq_purge_matching_nothing_says_so_and_exits_0(shop: ModuleType, ledger_url: str) -> None:
    """A filter that matches no entry purges nothing."""
    failed(shop)
    out = invoke("dlq", "purge", "--ledger", ledger_url, "--agent", "nobody", "--yes")
    assert 0 == out.exit_code, out.output
    assert "0 entries match" in out.output
    assert 1 == len(shop.app.dlq.list())
