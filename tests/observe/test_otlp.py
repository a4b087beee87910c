"""Spans reach a real OTLP/HTTP endpoint: the SDK's exporter posts to a receiver in the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from seawall import Context, Seawall


class _Receiver(BaseHTTPRequestHandler):
    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.received.append((self.path, request))  # type: ignore[attr-defined]
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Keep the test output quiet."""


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_spans_are_exported_over_otlp_http(ledger_url: str, receiver: ThreadingHTTPServer) -> None:
    port = receiver.server_address[1]
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
    )
    app = Seawall(ledger_url, tracer_provider=provider)
    try:

        @app.tool
        def fetch(key: str) -> str:
            return key * 2

        @app.agent
        def agent(ctx: Context, key: str) -> str:
            value: str = ctx.call(fetch, key)
            return value

        result = app.run(agent, key="ab")
        assert result.output == "abab"
    finally:
        app.close()
    assert provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    paths = {path for path, _ in receiver.received}  # type: ignore[attr-defined]
    assert paths == {"/v1/traces"}
    spans = {
        span.name: {a.key: a.value for a in span.attributes}
        for _, request in receiver.received  # type: ignore[attr-defined]
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert set(spans) == {"invoke_agent agent", "execute_tool fetch"}
    tool = spans["execute_tool fetch"]
    assert tool["gen_ai.tool.name"].string_value == "fetch"
    assert tool["seawall.run_id"].string_value == result.run_id
