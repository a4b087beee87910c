"""Graphs: build-time checks, containment, concurrency, breakers inside graphs."""

from __future__ import annotations

import asyncio
import random
from typing import Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seawall import (
    Breaker,
    ConfigurationError,
    Context,
    ErrorClass,
    FailureCause,
    From,
    Graph,
    Input,
    Retry,
    RunStatus,
    Seawall,
)
from seawall.testing import no_waits


class Facts(TypedDict):
    topic: str
    count: int


def test_a_node_cannot_depend_on_a_node_added_later(app: Seawall) -> None:
    """Forward references (and so cycles) are refused when the graph is built."""

    @app.agent
    def a(ctx: Context, x: int) -> int:
        return x

    graph = Graph("g")
    with pytest.raises(ConfigurationError, match="cannot have cycles"):
        graph.add(a, inputs={"x": From("b")})


def test_missing_and_unknown_inputs_are_refused(app: Seawall) -> None:
    """Every required parameter must be mapped, and only parameters the agent takes."""

    @app.agent
    def a(ctx: Context, x: int, y: int = 2) -> int:
        return x + y

    graph = Graph("g")
    with pytest.raises(ConfigurationError, match="input 'x' is not mapped"):
        graph.add(a, inputs={})
    with pytest.raises(ConfigurationError, match="takes no input 'z'"):
        graph.add(a, inputs={"x": Input("x"), "z": Input("z")})
    assert "a" == graph.add(a, inputs={"x": Input("x")})
    with pytest.raises(ConfigurationError, match="already has a node"):
        graph.add(a, inputs={"x": Input("x")})


def test_types_and_fields_are_checked_at_build_time(app: Seawall) -> None:
    """A field the upstream type lacks, or an incompatible type, is refused by add()."""

    @app.agent
    def facts(ctx: Context, topic: str) -> Facts:
        return {"topic": topic, "count": 1}

    @app.agent
    def count_words(ctx: Context, count: int) -> int:
        return count

    @app.agent
    def shout(ctx: Context, text: str) -> str:
        return text.upper()

    graph = Graph("g")
    graph.add(facts, inputs={"topic": Input("topic")})
    with pytest.raises(ConfigurationError, match="has no field 'words'"):
        graph.add(count_words, inputs={"count": From("facts", "words")})
    with pytest.raises(ConfigurationError, match="wants str but 'facts' produces int"):
        graph.add(shout, inputs={"text": From("facts", "count")})
    graph.add(count_words, inputs={"count": From("facts", "count")})


def test_unregistered_agent_and_missing_graph_inputs_are_refused(app: Seawall) -> None:
    """app.run refuses a graph with an unknown agent or without its inputs."""

    def stranger(ctx: Context, x: int) -> int:
        return x

    @app.agent
    def known(ctx: Context, x: int) -> int:
        return x

    graph = Graph("g")
    graph.add(stranger, inputs={"x": Input("x")})
    with pytest.raises(ConfigurationError, match="not registered"):
        app.run(graph, x=1)
    other = Graph("h")
    other.add(known, inputs={"x": Input("x")})
    with pytest.raises(ConfigurationError, match=r"needs the inputs \['x'\]"):
        app.run(other)


def test_outputs_flow_downstream_and_the_graph_succeeds(app: Seawall) -> None:
    """Upstream outputs (whole or one field) feed downstream inputs; each node is a child run."""

    @app.agent
    def facts(ctx: Context, topic: str) -> Facts:
        return {"topic": topic, "count": 2}

    @app.agent
    def render(ctx: Context, topic: str, count: int) -> str:
        return f"{topic} x{count}"

    graph = Graph("report")
    graph.add(facts, inputs={"topic": Input("topic")})
    graph.add(render, inputs={"topic": From("facts", "topic"), "count": From("facts", "count")})
    result = app.run(graph, topic="ai")
    assert RunStatus.SUCCEEDED == result.status
    assert {"facts": {"topic": "ai", "count": 2}, "render": "ai x2"} == result.output
    children = app.ledger.runs(parent_run_id=result.run_id)
    assert {"facts", "render"} == {c.node for c in children}
    assert {"report"} == {c.workflow for c in children}


def test_diamond_breaker_opens_at_the_nth_error_and_contains_the_join(app: Seawall) -> None:
    """One branch's tool fails: its breaker opens at exactly the 2nd error, the other branch
    completes, the join is skipped with a blocked_by chain naming the failed node."""
    calls = {"n": 0}

    @app.tool(retry=Retry(attempts=1), breaker=Breaker(failures=2, cooldown=60))
    def provider(topic: str) -> str:
        calls["n"] += 1
        raise ConnectionError("provider down")

    @app.agent
    def fetch(ctx: Context, topic: str) -> str:
        return topic

    @app.agent
    def summary(ctx: Context, text: str) -> str:
        return f"summary of {text}"

    @app.agent(retry=Retry(attempts=1), breaker=False)
    def enrich(ctx: Context, text: str) -> str:
        return ctx.call(provider, text)

    @app.agent
    def join(ctx: Context, a: str, b: str) -> str:
        return a + b

    graph = Graph("diamond")
    graph.add(fetch, inputs={"topic": Input("topic")})
    graph.add(summary, inputs={"text": From("fetch")})
    graph.add(enrich, inputs={"text": From("fetch")})
    graph.add(join, inputs={"a": From("summary"), "b": From("enrich")})
    outcomes = [app.run(graph, topic="t") for _ in range(3)]
    assert 2 == calls["n"]
    assert ["exception", "exception", "breaker_open"] == [
        r.nodes["enrich"].failure_cause.value for r in outcomes
    ]
    assert ErrorClass.CASCADE == outcomes[2].nodes["enrich"].error_class
    for result in outcomes:
        assert RunStatus.SUCCEEDED == result.nodes["summary"].status
        join_result = result.nodes["join"]
        assert RunStatus.SKIPPED == join_result.status
        assert ErrorClass.CASCADE == join_result.error_class
        assert FailureCause.UPSTREAM_FAILED == join_result.failure_cause
        assert "enrich" == join_result.error["blocked_by"][0]["node"]
        assert RunStatus.FAILED == result.status
    [event] = app.breakers.events("tool:provider")
    assert ("closed", "open") == (event.from_state, event.to_state)


def test_agent_breaker_open_skips_the_node_and_its_dependents(app: Seawall) -> None:
    """An agent frozen by hand is not started; its dependents are skipped, others run."""

    @app.agent
    def first(ctx: Context, x: int) -> int:
        return x

    @app.agent
    def frozen(ctx: Context, x: int) -> int:
        return x

    @app.agent
    def after(ctx: Context, x: int) -> int:
        return x

    @app.agent
    def free(ctx: Context, x: int) -> int:
        return x

    graph = Graph("g")
    graph.add(first, inputs={"x": Input("x")})
    graph.add(frozen, inputs={"x": From("first")})
    graph.add(after, inputs={"x": From("frozen")})
    graph.add(free, inputs={"x": From("first")})
    app.breakers.open("agent:frozen", reason="code freeze")
    result = app.run(graph, x=1)
    assert FailureCause.BREAKER_OPEN == result.nodes["frozen"].failure_cause
    assert "code freeze" in result.nodes["frozen"].error["message"]
    assert RunStatus.SKIPPED == result.nodes["after"].status
    assert [("frozen", "skipped")] == [
        (b["node"], b["status"]) for b in result.nodes["after"].error["blocked_by"]
    ]
    assert RunStatus.SUCCEEDED == result.nodes["free"].status
    app.breakers.reset("agent:frozen")
    assert RunStatus.SUCCEEDED == app.run(graph, x=1).status


def test_ready_nodes_run_concurrently_up_to_the_bound(app: Seawall) -> None:
    """Independent nodes overlap, never more than max_concurrency at once."""
    active = {"now": 0, "peak": 0}

    async def work(ctx: Any, x: int) -> int:
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        await asyncio.sleep(0.05)
        active["now"] -= 1
        return x

    graph = Graph("fan", max_concurrency=3)
    for i in range(8):
        agent = app.agent(name=f"w{i}")(_clone(work, f"w{i}"))
        graph.add(agent, name=f"w{i}", inputs={"x": Input("x")})
    result = app.run(graph, x=1)
    assert RunStatus.SUCCEEDED == result.status
    assert 3 == active["peak"]  # they overlapped, up to the bound (no wall-clock assertion)
    assert 0 == active["now"]


def _clone(fn: Any, name: str) -> Any:
    async def clone(ctx: Any, x: int) -> int:
        return await fn(ctx, x)

    clone.__name__ = clone.__qualname__ = name
    return clone


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_dags_contain_every_failure(ledger_url: str, data: st.DataObject) -> None:
    """Random DAGs with random failing nodes: nothing downstream of a failure starts, everything
    else completes, and the ledger's statuses say so."""
    size = data.draw(st.integers(min_value=1, max_value=9), label="nodes")
    parents = {
        i: sorted(data.draw(st.sets(st.integers(0, i - 1), max_size=3), label=f"parents {i}"))
        if i
        else []
        for i in range(size)
    }
    failing = data.draw(st.sets(st.integers(0, size - 1)), label="failing")
    started: list[int] = []
    with no_waits():
        app = Seawall(
            ledger_url.replace("ledger.db", f"dag-{random.random()}.db"), retry=Retry(attempts=1)
        )
        try:
            graph = Graph("dag", max_concurrency=4)
            for i in range(size):

                def body(ctx: Any, _i: int = i, **upstream: Any) -> int:
                    started.append(_i)
                    if _i in failing:
                        raise ValueError(f"node {_i} fails")
                    return _i

                agent = app.agent(name=f"n{i}", breaker=False)(body)
                graph.add(agent, name=f"n{i}", inputs={f"p{p}": From(f"n{p}") for p in parents[i]})
            result = app.run(graph)
        finally:
            app.close()
    doomed: set[int] = set()
    for i in range(size):
        if any(p in failing or p in doomed for p in parents[i]):
            doomed.add(i)
    assert sorted(set(range(size)) - doomed) == sorted(started)
    for i in range(size):
        status = result.nodes[f"n{i}"].status
        if i in doomed:
            assert RunStatus.SKIPPED == status
            assert ErrorClass.CASCADE == result.nodes[f"n{i}"].error_class
        elif i in failing:
            assert RunStatus.FAILED == status
        else:
            assert RunStatus.SUCCEEDED == status
    assert (RunStatus.SUCCEEDED if not failing else RunStatus.FAILED) == result.status
