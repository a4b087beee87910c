"""Alert sinks: webhook retries against a local server, logging, callbacks, failing sinks."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from seawall import AlertRecord, AlertRules, ConfigurationError, LogSink, WebhookSink
from seawall.observe.alerts import Alerts, WebhookError
from seawall.testing import no_waits


def alert(kind: str = "drift") -> AlertRecord:
    return AlertRecord(
        alert_id="a1",
        kind=kind,
        agent="triage",
        feature="decision",
        statistic=0.8,
        threshold=0.2,
        window="reference: first 300 runs; current: last 100 runs",
        message="agent 'triage' drifted",
        at=1_700_000_000.0,
        details={"p_value": 1e-9},
    )


class Receiver:
    """A local HTTP endpoint answering a scripted list of status codes."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    instance = Receiver(list(getattr(request, "param", [])))
    try:
        yield instance
    finally:
        instance.close()


@pytest.mark.parametrize("receiver", [[500, 200]], indirect=True)
def test_webhook_is_retried_after_a_server_error(receiver: Receiver) -> None:
    """First response 500, second 200: the alert is delivered on the retry, as JSON."""
    with no_waits():
        WebhookSink(receiver.url, headers={"Authorization": "Bearer t"}).send(alert())
    assert 2 == len(receiver.bodies)
    assert receiver.bodies[0] == receiver.bodies[1]
    body = receiver.bodies[1]
    assert "drift" == body["kind"]
    assert "decision" == body["feature"]
    assert 0.8 == body["statistic"]
    assert {"p_value": 1e-9} == body["details"]


@pytest.mark.parametrize("receiver", [[400]], indirect=True)
def test_webhook_client_error_is_not_retried(receiver: Receiver) -> None:
    """A 4xx answer means the request is wrong: one attempt, then the error."""
    with no_waits(), pytest.raises(WebhookError, match="400"):
        WebhookSink(receiver.url).send(alert())
    assert 1 == len(receiver.bodies)


@pytest.mark.parametrize("receiver", [[503, 503, 503]], indirect=True)
def test_webhook_retries_are_bounded(receiver: Receiver) -> None:
    """After ``attempts`` transient failures the delivery fails."""
    with no_waits(), pytest.raises(WebhookError, match="503"):
        WebhookSink(receiver.url, attempts=3).send(alert())
    assert 3 == len(receiver.bodies)


def test_failing_sink_is_logged_and_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that raises does not stop the others."""
    seen: list[AlertRecord] = []

    def broken(_: AlertRecord) -> None:
        raise RuntimeError("pager down")

    sinks = Alerts([broken, seen.append])
    with caplog.at_level(logging.WARNING, logger="seawall.alerts"):
        sinks.deliver(alert())
    assert [alert()] == seen
    assert 1 == sum(sinks.failures.values())
    assert 1 == sinks.delivered
    assert "failed to deliver drift alert a1" in caplog.text


def test_log_sink_writes_one_record(caplog: pytest.LogCaptureFixture) -> None:
    """The log sink logs the message with the alert's fields."""
    with caplog.at_level(logging.WARNING, logger="seawall.alerts"):
        LogSink().send(alert("breaker_open"))
    [record] = caplog.records
    assert "breaker_open alert: agent 'triage' drifted" == record.getMessage()
    assert "a1" == record.alert_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: WebhookSink("ftp://x"), "http"),
        (lambda: WebhookSink("http://x", attempts=0), "attempts"),
        (lambda: Alerts(["not a sink"]), "functions or sinks"),
        (lambda: Alerts(print), "list"),  # type: ignore[arg-type]
        (lambda: AlertRules(dlq_growth=0), "dlq_growth"),
        (lambda: AlertRules(overdue_after=-1), "overdue_after"),
    ],
)
def test_sink_and_rule_options_are_validated(build, message: str) -> None:
    """Bad options fail with what to fix."""
    with pytest.raises(ConfigurationError, match=message):
        build()
