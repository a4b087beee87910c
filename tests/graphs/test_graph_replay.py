"""Replaying graph runs, whole or from a node."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seawall import Context, From, Graph, Input, Retry, RunStatus, Seawall, UsageError
from seawall.cli import cli


def build(app: Seawall, fixed: dict[str, bool], calls: dict[str, int]) -> Graph:
    @app.tool
    def search(topic: str) -> list[str]:
        calls["search"] += 1
        return [topic, f"{topic}!"]

    @app.agent(breaker=False)
    def research(ctx: Context, topic: str) -> list:
        return ctx.call(search, topic)

    @app.agent(breaker=False)
    def draft(ctx: Context, notes: list) -> str:
        calls["draft"] += 1
        if not fixed["yes"]:
            raise ValueError("bug in draft")
        return " ".join(notes)

    graph = Graph("pipeline")
    graph.add(research, inputs={"topic": Input("topic")})
    graph.add(draft, inputs={"notes": From("research")})
    return app.graph(graph)


@pytest.fixture
def failed_graph(ledger_url: str):
    fixed = {"yes": False}
    calls = {"search": 0, "draft": 0}
    app = Seawall(ledger_url, retry=Retry(attempts=1))
    graph = build(app, fixed, calls)
    result = app.run(graph, topic="ai")
    assert RunStatus.FAILED == result.status
    fixed["yes"] = True
    yield app, result, calls
    app.close()


def test_recorded_graph_replay_from_a_node_calls_nothing(failed_graph) -> None:
    """From the failed node: upstream outputs are served, the node's journal is replayed."""
    app, original, calls = failed_graph
    replayed = app.replay(original.run_id, mode="recorded", from_node="draft")
    assert replayed.ok
    assert {"research": ["ai", "ai!"], "draft": "ai ai!"} == replayed.run.output
    assert 1 == calls["search"]
    assert replayed.run.nodes["research"].run_id == original.nodes["research"].run_id
    draft = app.ledger.run(replayed.run.nodes["draft"].run_id)
    assert (replayed.run.run_id, "recorded", "draft") == (
        draft.parent_run_id,
        draft.replay_mode,
        draft.node,
    )
    assert original.run_id == app.ledger.run(replayed.run.run_id).replay_of


def test_live_graph_replay_from_a_node_reuses_upstream_outputs(failed_graph) -> None:
    """Live from a node: upstream nodes are not run again; the node runs live."""
    app, original, calls = failed_graph
    replayed = app.replay(original.run_id, mode="live", from_node="draft")
    assert replayed.ok
    assert (1, 2) == (calls["search"], calls["draft"])


def test_live_graph_replay_runs_every_node(failed_graph) -> None:
    """Without --from, a live replay runs the whole graph again."""
    app, original, calls = failed_graph
    assert app.replay(original.run_id, mode="live").ok
    assert 2 == calls["search"]


def test_unknown_node_and_from_on_an_agent_run_are_refused(failed_graph) -> None:
    """--from names a node of the graph, and only applies to graph runs."""
    app, original, _ = failed_graph
    with pytest.raises(UsageError, match="no node 'nope'"):
        app.replay(original.run_id, from_node="nope")
    node_run = original.nodes["research"].run_id
    with pytest.raises(UsageError, match="not a graph run"):
        app.replay(node_run, from_node="draft")


def test_cli_replay_from(tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`seawall replay GRAPH_RUN --from NODE --json`."""
    module = tmp_path / "graphapp.py"
    module.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from seawall import Retry, Seawall\n"
        "from test_graph_replay import build\n"
        f"app = Seawall({ledger_url!r}, retry=Retry(attempts=1))\n"
        "build(app, {'yes': True}, {'search': 0, 'draft': 0})\n"
    )
    fixed = {"yes": False}
    first = Seawall(ledger_url, retry=Retry(attempts=1))
    original = first.run(build(first, fixed, {"search": 0, "draft": 0}), topic="x")
    first.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    out = CliRunner().invoke(
        cli, ["replay", original.run_id, "--app", "graphapp:app", "--from", "draft", "--json"]
    )
    assert 0 == out.exit_code, out.output
    body = json.loads(out.output)
    assert ("recorded", "succeeded") == (body["mode"], body["status"])
    sys.modules.pop("graphapp").app.close()
    sys.modules.pop("test_graph_replay", None)
