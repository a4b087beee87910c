"""Every page and filter of the dashboard, through Starlette's test client."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

import pytest

from tests.dashboard.workload import XSS

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from seawall import Seawall
    from tests.dashboard.workload import Seeded

LEDGERS = ("sqlite", "postgres")  # every page reads through the store protocol


def test_overview_shows_counts_charts_and_queues(client: TestClient) -> None:
    """The overview totals the workload's runs and draws its charts as inline SVG."""
    page = client.get("/")
    assert 200 == page.status_code
    assert 'aria-label="Runs over time by outcome"' in page.text
    assert 'aria-label="Failure classes by agent"' in page.text
    assert 'aria-label="Call latency histogram"' in page.text
    assert "search" in page.text  # latency per tool
    assert "hand-offs waiting" in page.text
    assert "handoff_waiting" in page.text  # the seeded hand-off's alert
    assert "<script" not in page.text


@pytest.mark.parametrize("window", ["1h", "6h", "24h", "7d", "30d"])
def test_overview_accepts_every_range(client: TestClient, window: str) -> None:
    """Each time range renders."""
    assert 200 == client.get("/", params={"range": window}).status_code


def test_overview_agent_filter_and_bad_range(client: TestClient) -> None:
    """The agent filter narrows the totals; an unknown range is a 400."""
    page = client.get("/", params={"agent": "flaky"})
    assert 200 == page.status_code
    assert "<b>1</b><span>runs</span>" in page.text
    assert 400 == client.get("/", params={"range": "2y"}).status_code


def _run_ids(client: TestClient, **params: str) -> set[str]:
    page = client.get("/runs", params=params)
    assert 200 == page.status_code
    import re

    return set(re.findall(r'href="/runs/([0-9a-f]{32})"', page.text))


def test_runs_filters(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """Agent, status, error class, text search and time filters each narrow the table."""
    _, seeded = seeded_app
    assert set(seeded.ok) == _run_ids(client, agent="researcher")
    assert {seeded.failed} <= _run_ids(client, status="failed")
    assert seeded.ok[0] not in _run_ids(client, status="failed")
    assert {seeded.failed} == _run_ids(client, error_class="clean_abort", agent="flaky")
    assert {seeded.failed} == _run_ids(client, q="TIMED OUT")
    assert set() == _run_ids(client, q="100%_no_such")
    future = (dt.datetime.now().astimezone() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert set() == _run_ids(client, since=future)
    assert {seeded.failed} == _run_ids(client, until=future, agent="flaky")


def test_runs_bad_filters_are_400(client: TestClient) -> None:
    """A status, class, time or cursor that does not parse is a 400 with a message."""
    for params in (
        {"status": "nope"},
        {"error_class": "x"},
        {"since": "yesterday"},
        {"before": "abc:def"},
    ):
        page = client.get("/runs", params=params)
        assert 400 == page.status_code
        assert "bad filter" in page.text


def test_runs_keyset_paging_visits_every_run_once(client: TestClient) -> None:
    """Following the Older link pages through every run exactly once."""
    from seawall.dashboard import _pages

    total = len(_run_ids(client))
    seen: list[str] = []
    original = _pages.PAGE_SIZE
    _pages.PAGE_SIZE = 3
    try:
        url = "/runs"
        while url:
            page = client.get(url)
            import re

            seen += re.findall(r'href="/runs/([0-9a-f]{32})" title', page.text)
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
    finally:
        _pages.PAGE_SIZE = original
    assert total == len(seen) == len(set(seen))
    assert total > 3


def test_run_detail_shows_fields_timeline_payloads(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A run page shows the minimum fields, attempts, the waterfall and collapsed large values."""
    _, seeded = seeded_app
    page = client.get(f"/runs/{seeded.ok[0]}")
    assert 200 == page.status_code
    for name in (
        "run_id",
        "start_time",
        "end_time",
        "input_hash",
        "output_hash",
        "tokens_used",
        "cost_usd",
        "error_class",
    ):
        assert f"<dt>{name}</dt>" in page.text
    assert 'aria-label="Step timeline of run' in page.text
    assert "#1 tool search" in page.text
    assert "<details><summary" in page.text  # the 2,000-character value is collapsed


def test_failed_run_shows_attempts_and_retry(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A retried run lists both attempts and its error."""
    _, seeded = seeded_app
    page = client.get(f"/runs/{seeded.failed}")
    assert 2 == page.text.count("upstream timed out for n=1") - 1  # 2 attempts + the run's error
    assert "attempt 1" in page.text  # the waterfall names the attempt of each step


def test_graph_run_draws_its_dag(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """A graph run shows its nodes, their statuses and the edge between them."""
    _, seeded = seeded_app
    page = client.get(f"/runs/{seeded.graph}")
    assert 'class="chart dag"' in page.text
    assert "research" in page.text
    assert "summary" in page.text
    assert 'class="edge"' in page.text
    assert "skipped" in page.text


def test_agent_output_is_escaped(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """An output containing <script> is shown as text on every page that shows it."""
    _, seeded = seeded_app
    page = client.get(f"/runs/{seeded.xss}")
    assert XSS not in page.text
    assert "&lt;script&gt;alert(" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_unknown_run_is_404(client: TestClient) -> None:
    """An unknown run id is a 404 page."""
    page = client.get("/runs/" + "0" * 32)
    assert 404 == page.status_code
    assert "No run" in page.text


def test_dlq_lists_and_filters(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """The DLQ lists failed runs; filters by agent, class and status narrow it."""
    _, seeded = seeded_app
    assert seeded.failed[:12] in client.get("/dlq").text
    assert seeded.failed[:12] in client.get("/dlq", params={"agent": "flaky"}).text
    assert seeded.failed[:12] not in client.get("/dlq", params={"agent": "researcher"}).text
    assert seeded.failed[:12] not in client.get("/dlq", params={"error_class": "cascade"}).text
    assert seeded.failed[:12] not in client.get("/dlq", params={"status": "redriven"}).text
    assert seeded.failed[:12] in client.get("/dlq", params={"status": "any"}).text
    assert 400 == client.get("/dlq", params={"error_class": "nope"}).status_code


def test_breakers_page_shows_state_and_history(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A breaker opened by hand shows its state, reason and transition."""
    app, _ = seeded_app
    app.open_breaker("agent:flaky", reason="maintenance window")
    page = client.get("/breakers")
    assert "agent:flaky" in page.text
    assert "maintenance window" in page.text
    assert "closed → <b>open</b>" in page.text


def test_handoffs_page_lists_waiting_decisions(client: TestClient) -> None:
    """The open hand-off is listed with its reason; without a session there is no form."""
    page = client.get("/handoffs")
    assert "Waiting for a person (1)" in page.text
    assert "needs review" in page.text
    assert "Log in to decide" in page.text
    assert 'action="/handoffs/' not in page.text


def test_drift_page_lists_the_ledgers_alerts(client: TestClient) -> None:
    """The seeded runs parked one for a person: its handoff_waiting alert is listed."""
    page = client.get("/drift")
    assert 200 == page.status_code
    assert "handoff_waiting" in page.text


def test_drift_page_lists_alerts_when_the_store_has_them(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """When the store offers list_alerts, the page shows their fields (escaped)."""
    from dataclasses import dataclass

    @dataclass
    class Alert:
        agent: str
        feature: str
        statistic: float
        at: float

    app, _ = seeded_app
    calls: list[dict[str, object]] = []

    def list_alerts(**kwargs: object) -> list[Alert]:
        calls.append(kwargs)
        return [Alert("writer", "<b>action</b>", 0.42, time.time())]

    app.store.list_alerts = list_alerts  # type: ignore[attr-defined]
    try:
        page = client.get("/drift", params={"agent": "writer"})
    finally:
        del app.store.list_alerts  # type: ignore[attr-defined]
    assert "&lt;b&gt;action&lt;/b&gt;" in page.text
    assert "0.42" in page.text
    assert "writer" == calls[0]["agent"]


def test_metrics_route_serves_prometheus_text(client: TestClient) -> None:
    """/metrics is Prometheus text computed from the ledger."""
    page = client.get("/metrics")
    assert 200 == page.status_code
    assert page.headers["content-type"].startswith("text/plain")
    expected = (
        'seawall_runs_total{gen_ai_agent_name="researcher",seawall_error_class="",'
        'seawall_status="succeeded"} 3.0'
    )
    assert expected in page.text


def test_static_css_and_unknown_route(client: TestClient) -> None:
    """The stylesheet is served locally; an unknown path is a 404 page."""
    assert 200 == client.get("/static/style.css").status_code
    assert 404 == client.get("/nope").status_code
    assert 405 == client.get("/dlq/redrive").status_code


def test_ledger_url_password_is_not_shown() -> None:
    """A password in the ledger URL is redacted in the page footer."""
    from seawall.dashboard._views import redacted

    assert "postgresql://u:***@db:5432/x" == redacted("postgresql://u:secret@db:5432/x")
    assert "sqlite:///a.db" == redacted("sqlite:///a.db")
