"""OpenTelemetry: the span tree, its GenAI attributes, retries, replays links and metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import seawall
from seawall import Context, From, Graph, Input, Retry, Seawall, verify
from seawall.testing import no_waits


class _FlakyError(Exception):
    """A transient failure of the search tool."""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def traced_app(
    ledger_url: str, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> Iterator[Seawall]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with no_waits():
        app = Seawall(
            ledger_url,
            tracer_provider=provider,
            meter_provider=MeterProvider(metric_readers=[reader]),
            prices={"house-model": seawall.Price(1.0, 2.0)},
        )
        try:
            yield app
        finally:
            app.close()


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = _by_name(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan | None:
    assert span.parent is not None
    return next(
        (s for s in spans if s.context is not None and s.context.span_id == span.parent.span_id),
        None,
    )


def test_a_graph_with_a_retry_a_tool_error_and_a_failed_verification(
    traced_app: Seawall, exporter: InMemorySpanExporter
) -> None:
    app = traced_app
    calls = {"search": 0}

    @app.tool(retry=Retry(attempts=3, retry_on=(_FlakyError,)))
    def search(query: str) -> list[str]:
        calls["search"] += 1
        if calls["search"] == 1:
            raise _FlakyError("index warming up")
        return [f"{query} result"]

    @app.tool(retry=Retry(attempts=1))
    def broken(query: str) -> str:
        raise ValueError(f"no such table for {query}")

    @app.tool(llm=True)
    def complete(prompt: str, model: str) -> str:
        return f"summary of {prompt}"

    @app.agent
    def research(ctx: Context, topic: str) -> list[str]:
        found: list[str] = ctx.call(search, topic)
        with contextlib.suppress(ValueError):  # the agent copes; the span shows the error
            ctx.call(broken, topic)
        return found

    @app.agent(retry=Retry(attempts=1), verify=[verify.rule(lambda s: "!" in s, "be excited")])
    def write(ctx: Context, points: list[str]) -> str:
        text: str = ctx.call(complete, ", ".join(points), model="house-model")
        ctx.record_usage(model="house-model", input_tokens=120, output_tokens=30)
        return text

    graph = Graph("report")
    graph.add(research, inputs={"topic": Input("topic")})
    graph.add(write, inputs={"points": From("research")})
    result = app.run(graph, topic="seawalls")
    assert not result.ok

    spans = exporter.get_finished_spans()
    root = _one(spans, "invoke_workflow report")
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["seawall.run_id"] == result.run_id
    assert root.status.status_code is StatusCode.ERROR

    research_span = _one(spans, "invoke_agent research")
    write_span = _one(spans, "invoke_agent write")
    for agent_span in (research_span, write_span):
        assert _parent_of(agent_span, spans) is root
        assert agent_span.attributes is not None
        assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert research_span.attributes is not None
    assert research_span.attributes["gen_ai.agent.name"] == "research"

    search_span = _one(spans, "execute_tool search")
    assert _parent_of(search_span, spans) is research_span
    assert search_span.attributes is not None
    assert search_span.attributes["gen_ai.tool.name"] == "search"
    assert search_span.attributes["seawall.tries"] == 2
    assert search_span.status.status_code is not StatusCode.ERROR
    retries = [e for e in search_span.events if e.name == "seawall.retry"]
    assert len(retries) == 1
    assert retries[0].attributes is not None
    assert retries[0].attributes["error.type"] == "_FlakyError"
    assert "seawall.backoff_seconds" in retries[0].attributes

    broken_span = _one(spans, "execute_tool broken")
    assert broken_span.status.status_code is StatusCode.ERROR
    assert broken_span.attributes is not None
    assert broken_span.attributes["error.type"] == "ValueError"

    chat = _one(spans, "chat house-model")
    assert _parent_of(chat, spans) is write_span
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "house-model"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120
    assert chat.attributes["gen_ai.usage.output_tokens"] == 30

    check = _one(spans, "seawall.verify")
    assert _parent_of(check, spans) is write_span
    assert check.attributes is not None
    assert check.attributes["seawall.passed"] is False
    assert check.status.status_code is StatusCode.ERROR

    assert write_span.attributes is not None
    assert write_span.attributes["seawall.error_class"] == "silent_drift"
    assert write_span.attributes["error.type"] == "VerificationError"
    assert write_span.status.status_code is StatusCode.ERROR
    attempts = [e for e in write_span.events if e.name == "seawall.attempt"]
    assert [e.attributes["seawall.attempt"] for e in attempts if e.attributes] == [1]
    # Every span of the run carries its run id.
    run_ids = {s.attributes.get("seawall.run_id") for s in spans if s.attributes is not None}
    assert None not in run_ids


def test_run_attempts_and_their_backoff_are_events(
    traced_app: Seawall, exporter: InMemorySpanExporter
) -> None:
    app = traced_app
    tries = {"n": 0}

    @app.agent(retry=Retry(attempts=3, retry_on=(_FlakyError,)))
    def shaky(ctx: Context) -> str:
        tries["n"] += 1
        if tries["n"] < 3:
            raise _FlakyError("not yet")
        return "done"

    result = app.run(shaky)
    assert result.ok
    span = _one(exporter.get_finished_spans(), "invoke_agent shaky")
    events = [e.attributes for e in span.events if e.name == "seawall.attempt"]
    assert [e["seawall.outcome"] for e in events if e] == ["failed", "failed", "succeeded"]
    assert all("seawall.backoff_seconds" in e for e in events[:2] if e)
    assert span.attributes is not None
    assert span.attributes["seawall.attempts"] == 3
    assert span.attributes["seawall.status"] == "succeeded"


def test_a_replay_links_to_the_original_run(
    traced_app: Seawall, exporter: InMemorySpanExporter
) -> None:
    app = traced_app

    @app.agent
    def echo(ctx: Context, text: str) -> str:
        return text

    first = app.run(echo, text="hi")
    original = _one(exporter.get_finished_spans(), "invoke_agent echo")
    exporter.clear()
    replayed = app.replay(first.run_id, mode="live")
    span = _one(exporter.get_finished_spans(), "invoke_agent echo")
    assert span.attributes is not None
    assert span.attributes["seawall.replay_of"] == first.run_id
    assert span.attributes["seawall.run_id"] == replayed.run.run_id
    assert [link.context.span_id for link in span.links] == [original.context.span_id]
    record = app.store.get_run(first.run_id)
    assert record is not None
    assert record.trace_id == f"{original.context.trace_id:032x}"


def test_a_handoff_is_a_span(traced_app: Seawall, exporter: InMemorySpanExporter) -> None:
    app = traced_app

    @app.agent(verify=[verify.rule(bool, "must not be empty")], on_drift="handoff")
    def blank(ctx: Context) -> str:
        return ""

    result = app.run(blank)
    assert result.status is seawall.RunStatus.AWAITING_HUMAN
    handoff = _one(exporter.get_finished_spans(), "seawall.handoff")
    assert handoff.attributes is not None
    assert handoff.attributes["seawall.handoff_kind"] == "verification_failed"


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_metrics_after_a_known_workload(traced_app: Seawall, reader: InMemoryMetricReader) -> None:
    app = traced_app

    @app.tool
    def lookup(key: str) -> str:
        return key.upper()

    @app.tool(llm=True)
    def complete(prompt: str, model: str) -> str:
        return prompt

    @app.agent
    def agent(ctx: Context, n: int) -> int:
        for i in range(n):
            ctx.call(lookup, f"k{i}")
        ctx.call(complete, "p", model="house-model")
        ctx.record_usage(model="house-model", input_tokens=1_000_000, output_tokens=500_000)
        return n

    for n in (1, 2, 3):
        assert app.run(agent, n=n).ok
    points = _points(reader)
    (tool,) = points["seawall.tool.duration"]
    assert tool.count == 6
    assert tool.attributes == {"gen_ai.tool.name": "lookup"}
    (llm,) = points["gen_ai.client.operation.duration"]
    assert llm.count == 3
    assert llm.attributes["gen_ai.request.model"] == "house-model"
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": 3_000_000, "output": 1_500_000}
    (cost,) = points["seawall.cost"]
    assert cost.value == pytest.approx(6.0)
    (runs,) = points["seawall.runs"]
    assert runs.value == 3
    assert runs.attributes == {"gen_ai.agent.name": "agent", "seawall.status": "succeeded"}
    # Nothing failed: no dead letters, no hand-offs, no breaker open (read from the ledger).
    assert points.get("seawall.dlq.depth", []) == []
    assert points.get("seawall.handoffs.waiting", []) == []
    assert all(p.value == 0 for p in points.get("seawall.breakers.open", []))


def test_queue_gauges_read_the_ledger(traced_app: Seawall, reader: InMemoryMetricReader) -> None:
    app = traced_app

    @app.agent(retry=Retry(attempts=1))
    def failing(ctx: Context) -> None:
        raise ValueError("broken")

    @app.agent(verify=[verify.rule(bool, "must not be empty")], on_drift="handoff")
    def blank(ctx: Context) -> str:
        return ""

    for _ in range(3):  # the third consecutive failure opens the agent's breaker
        app.run(failing)
    app.run(blank)
    points = _points(reader)
    opened = {p.attributes["seawall.kind"]: p.value for p in points["seawall.breakers.open"]}
    assert opened["agent"] == 1
    (dlq,) = points["seawall.dlq.depth"]
    assert (dlq.value, dlq.attributes["gen_ai.agent.name"]) == (3, "failing")
    assert dlq.attributes["seawall.error_class"] == "clean_abort"
    (waiting,) = points["seawall.handoffs.waiting"]
    assert (waiting.value, waiting.attributes["seawall.handoff_kind"]) == (
        1,
        "verification_failed",
    )


def test_no_sdk_means_no_trace_work(ledger_url: str) -> None:
    app = Seawall(ledger_url)
    try:

        @app.agent
        def quiet(ctx: Context) -> int:
            return 1

        result = app.run(quiet)
        assert not app.runtime.telemetry.enabled()
        record = app.store.get_run(result.run_id)
        assert record is not None
        assert record.trace_id is None
    finally:
        app.close()
