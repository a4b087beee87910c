"""Every page and filter of the dashboard, through Starlette's test client."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from seawall.ledger import AlertAck
from tests.dashboard.workload import DRIFT_EVIDENCE, XSS, record_drift

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from seawall import Seawall
    from tests.dashboard.workload import Seeded

LEDGERS = ("sqlite", "postgres")  # every page reads through the store protocol


def test_overview_shows_counts_charts_and_queues(reader: TestClient) -> None:
    """The overview totals the workload's runs and draws its charts as inline SVG."""
    page = reader.get("/")
    assert 200 == page.status_code
    assert 'aria-label="Runs over time by outcome"' in page.text
    assert 'aria-label="Failure classes by agent"' in page.text
    assert 'aria-label="Call latency histogram"' in page.text
    assert "search" in page.text  # latency per tool
    assert "hand-offs waiting" in page.text
    assert "<b>1</b><span>operational alerts open</span>" in page.text  # the hand-off's
    assert "<b>0</b><span>drift alerts open</span>" in page.text  # kept apart from drift
    assert "<script" not in page.text


@pytest.mark.parametrize("window", ["1h", "6h", "24h", "7d", "30d"])
def test_overview_accepts_every_range(reader: TestClient, window: str) -> None:
    """Each time range renders."""
    assert 200 == reader.get("/", params={"range": window}).status_code


def test_overview_agent_filter_and_bad_range(reader: TestClient) -> None:
    """The agent filter narrows the totals; an unknown range is a 400."""
    page = reader.get("/", params={"agent": "flaky"})
    assert 200 == page.status_code
    assert "<b>1</b><span>runs</span>" in page.text
    assert 400 == reader.get("/", params={"range": "2y"}).status_code


def _run_ids(reader: TestClient, **params: str) -> set[str]:
    page = reader.get("/runs", params=params)
    assert 200 == page.status_code
    import re

    return set(re.findall(r'href="/runs/([0-9a-f]{32})"', page.text))


def test_runs_filters(reader: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """Agent, status, error class, text search and time filters each narrow the table."""
    _, seeded = seeded_app
    assert set(seeded.ok) == _run_ids(reader, agent="researcher")
    assert {seeded.failed} <= _run_ids(reader, status="failed")
    assert seeded.ok[0] not in _run_ids(reader, status="failed")
    assert {seeded.failed} == _run_ids(reader, error_class="clean_abort", agent="flaky")
    assert {seeded.failed} == _run_ids(reader, q="TIMED OUT")
    assert set() == _run_ids(reader, q="100%_no_such")
    future = (dt.datetime.now().astimezone() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert set() == _run_ids(reader, since=future)
    assert {seeded.failed} == _run_ids(reader, until=future, agent="flaky")


def test_runs_bad_filters_are_400(reader: TestClient) -> None:
    """A status, class, time or cursor that does not parse is a 400 with a message."""
    for params in (
        {"status": "nope"},
        {"error_class": "x"},
        {"since": "yesterday"},
        {"before": "abc:def"},
    ):
        page = reader.get("/runs", params=params)
        assert 400 == page.status_code
        assert "bad filter" in page.text


def test_runs_keyset_paging_visits_every_run_once(reader: TestClient) -> None:
    """Following the Older link pages through every run exactly once."""
    from seawall.dashboard import _pages

    total = len(_run_ids(reader))
    seen: list[str] = []
    original = _pages.PAGE_SIZE
    _pages.PAGE_SIZE = 3
    try:
        url = "/runs"
        while url:
            page = reader.get(url)
            import re

            seen += re.findall(r'href="/runs/([0-9a-f]{32})" title', page.text)
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
    finally:
        _pages.PAGE_SIZE = original
    assert total == len(seen) == len(set(seen))
    assert total > 3


def test_run_detail_shows_fields_timeline_payloads(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A run page shows the minimum fields, attempts, the waterfall and collapsed large values."""
    _, seeded = seeded_app
    page = reader.get(f"/runs/{seeded.ok[0]}")
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
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A retried run lists both attempts and its error."""
    _, seeded = seeded_app
    page = reader.get(f"/runs/{seeded.failed}")
    assert 2 == page.text.count("upstream timed out for n=1") - 1  # 2 attempts + the run's error
    assert "attempt 1" in page.text  # the waterfall names the attempt of each step


def test_a_divergence_shows_what_changed_field_by_field(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A run stopped by a divergence lists each changed field, journal next to now."""
    from seawall import Context, Retry

    app, _ = seeded_app
    sent: list[str] = []

    @app.tool(name="send_note", mutating=True)
    def send_note(text: str) -> str:
        sent.append(text)
        return "ok"

    @app.agent(name="noter", retry=Retry(attempts=2))
    def noter(ctx: Context) -> str:
        ctx.call(send_note, f"sent at 10:0{len(sent)}")  # the retry asks with another text
        raise RuntimeError("flaky after the note")

    run = app.run(noter)
    assert ["sent at 10:00"] == sent
    page = reader.get(f"/runs/{run.run_id}")
    assert 'id="divergence"' in page.text
    assert "Diverged at step 1" in page.text
    assert "sent at 10:00" in page.text
    assert "sent at 10:01" in page.text


def test_graph_run_draws_its_dag(reader: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """A graph run shows its nodes, their statuses and the edge between them."""
    _, seeded = seeded_app
    page = reader.get(f"/runs/{seeded.graph}")
    assert 'class="chart dag"' in page.text
    assert "research" in page.text
    assert "summary" in page.text
    assert 'class="edge"' in page.text
    assert "skipped" in page.text


def test_agent_output_is_escaped(reader: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """An output containing <script> is shown as text on every page that shows it."""
    _, seeded = seeded_app
    page = reader.get(f"/runs/{seeded.xss}")
    assert XSS not in page.text
    assert "&lt;script&gt;alert(" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_unknown_run_is_404(reader: TestClient) -> None:
    """An unknown run id is a 404 page."""
    page = reader.get("/runs/" + "0" * 32)
    assert 404 == page.status_code
    assert "No run" in page.text


def test_dlq_lists_and_filters(reader: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """The DLQ lists failed runs; filters by agent, class and status narrow it."""
    _, seeded = seeded_app
    assert seeded.failed[:12] in reader.get("/dlq").text
    assert seeded.failed[:12] in reader.get("/dlq", params={"agent": "flaky"}).text
    assert seeded.failed[:12] not in reader.get("/dlq", params={"agent": "researcher"}).text
    assert seeded.failed[:12] not in reader.get("/dlq", params={"error_class": "cascade"}).text
    assert seeded.failed[:12] not in reader.get("/dlq", params={"status": "redriven"}).text
    assert seeded.failed[:12] in reader.get("/dlq", params={"status": "any"}).text
    assert 400 == reader.get("/dlq", params={"error_class": "nope"}).status_code


def test_breakers_page_shows_state_and_history(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A breaker opened by hand shows its state, reason and transition."""
    app, _ = seeded_app
    app.breakers.open("agent:flaky", reason="maintenance window")
    page = reader.get("/breakers")
    assert "agent:flaky" in page.text
    assert "maintenance window" in page.text
    assert "closed → <b>open</b>" in page.text


def test_handoffs_page_lists_waiting_decisions(reader: TestClient) -> None:
    """The open hand-off is listed with its reason and age; a viewer gets no form."""
    page = reader.get("/handoffs")
    assert "Waiting for a person (1)" in page.text
    assert "needs review" in page.text
    assert re.search(r"waiting \d+ s", page.text)
    assert "Log in as an operator to decide" in page.text
    assert 'action="/handoffs/' not in page.text


def test_handoffs_are_paged_oldest_first(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Hand-offs come oldest first, a page at a time, each page following the last."""
    from seawall.dashboard import _queues

    app, _ = seeded_app
    for title in ("B", "C", "D"):
        app.run("writer", title=title)
    ids = [h.run_id for h in app.store.list_handoffs(status="open", oldest_first=True)]
    original = _queues.HANDOFF_PAGE
    _queues.HANDOFF_PAGE = 3
    try:
        first = reader.get("/handoffs").text
        assert "Waiting for a person (4)" in first
        link = re.search(r'rel="next" href="([^"]+)"', first)
        assert link is not None
        second = reader.get(link.group(1).replace("&amp;", "&")).text
    finally:
        _queues.HANDOFF_PAGE = original
    shown = re.findall(
        r'<section class="panel handoff".*?href="/runs/([0-9a-f]{32})"', first, re.DOTALL
    )
    assert ids[:3] == shown
    assert ids[3][:12] in second
    assert ids[0][:12] not in second


def test_drift_page_shows_the_evidence(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A drift alert shows its effect size, p-value, both distributions and the window."""
    app, _ = seeded_app
    record_drift(app, "d1")
    page = reader.get("/drift").text
    assert '<b>0.310</b> <span class="badge c-large">large</span>' in page  # PSI, in words
    assert '<b>2e-07</b> <span class="dim">chi2, significant below 1e-05' in page
    assert "300 reference · 100 recent" in page
    assert 'aria-label="decision: reference and recent distributions"' in page
    assert "refund · reference: 15.0%" in page
    assert "refund · recent: 38.0%" in page
    assert "the first 300 runs" in page
    assert "handoff_waiting" not in page  # operational alerts are apart


def test_drift_evidence_of_unknown_shape_is_shown_generically(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Numbers that are not shares become a table; keys the page does not know are listed."""
    app, _ = seeded_app
    record_drift(
        app,
        "d2",
        {
            "reference": {"p50": 120.0, "p90": 300.0},
            "current": {"p50": 180.0, "p90": 900.0},
            "centroid_distance": 0.42,
            "examples": ["<b>odd</b> answer", "another"],
        },
        feature="latency",
    )
    page = reader.get("/drift").text
    assert "+50%" in page  # p50 moved
    assert "+200%" in page  # p90 moved
    assert "<dt><bdi>centroid_distance</bdi></dt><dd><code><bdi>0.42</bdi></code>" in page
    assert "&lt;b&gt;odd&lt;/b&gt; answer" in page


def test_operational_alerts_have_their_own_page(reader: TestClient) -> None:
    """The seeded hand-off's handoff_waiting alert is on /alerts, not on /drift."""
    page = reader.get("/alerts")
    assert 200 == page.status_code
    assert "handoff_waiting" in page.text
    assert "No open alerts" in reader.get("/drift").text


def test_overview_drift_panel_shows_open_drift_only(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """The overview lists open drift alerts (not acknowledged ones, not operational ones)."""
    app, _ = seeded_app
    record_drift(app, "d1")
    record_drift(app, "d2", {**DRIFT_EVIDENCE, "psi": 0.12}, agent="echo", feature="verified")
    app.store.acknowledge_alert(AlertAck("d2", "ada", time.time()))
    page = reader.get("/").text
    assert "<b>1</b><span>drift alerts open</span>" in page
    panel = page.split("Drift alerts open</h2>")[1].split("</section>")[0]
    assert "researcher" in panel
    assert "large shift" in panel
    assert "verified" not in panel  # acknowledged
    assert "handoff" not in panel  # operational


def test_overview_separates_root_failures_from_contained_ones(reader: TestClient) -> None:
    """The graph's skipped node and the graph run count as contained, not as root failures."""
    page = reader.get("/").text
    assert "<b>3</b><span>root failures" in page  # flaky, the graph's node, writer's drift
    assert "<b>2</b><span>contained" in page  # the skipped node and the graph run
    assert "<b>9</b><span>runs</span>" in page
    top = re.search(r'<a href="(/runs\?[^"]*top=1[^"]*)">Top-level runs only', page)
    assert top is not None
    assert 7 == len(_listed(reader, top.group(1)))  # the graph's two nodes left out


def _params(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url.replace("&amp;", "&")).query))


def _listed(reader: TestClient, url: str) -> set[str]:
    """The runs a link of the dashboard lists."""
    page = reader.get(url.replace("&amp;", "&"))
    assert 200 == page.status_code
    return set(re.findall(r'href="/runs/([0-9a-f]{32})" title', page.text))


def test_overview_bars_and_cards_link_to_their_runs(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Bars and cards link to the runs they count: following one lists exactly those runs."""
    _, seeded = seeded_app
    page = reader.get("/").text
    outcomes = page.split('aria-label="Runs over time by outcome"')[1].split("</svg>")[0]
    bars = re.findall(r'<a href="(/runs\?[^"]+)"><rect class="c-clean_abort"', outcomes)
    assert 1 == len(bars)  # the bucket holding the failed runs
    assert {seeded.failed, seeded.graph} & _listed(reader, bars[0]) == {seeded.failed}
    root = re.search(r'<a class="card bad" href="([^"]+)"><b>3</b>', page)
    assert root is not None
    failed = _listed(reader, root.group(1))
    assert seeded.failed in failed
    assert seeded.parked in failed
    assert seeded.ok[0] not in failed
    classes = page.split('aria-label="Failure classes by agent"')[1].split("</svg>")[0]
    by_agent = re.search(r'<a href="(/runs\?[^"]*agent=flaky[^"]*)"><rect', classes)
    assert by_agent is not None
    assert {seeded.failed} == _listed(reader, by_agent.group(1))


def test_runs_filters_top_level_classes_and_retried(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Top-level runs leave the graph's nodes out; several classes combine; retried runs."""
    app, seeded = seeded_app
    nodes = {r.run_id for r in app.ledger.runs(limit=100) if r.parent_run_id}
    top = _run_ids(reader, top="1")
    assert seeded.graph in top
    assert not nodes & top
    found = _listed(reader, "/runs?error_class=clean_abort&error_class=cascade")
    assert {seeded.failed, seeded.graph} <= found
    assert seeded.ok[0] not in found
    assert {seeded.failed} == _run_ids(reader, retried="1")


def test_agent_picker_lists_every_agent(reader: TestClient) -> None:
    """The runs, overview, DLQ, drift and errors filters offer each agent of the ledger."""
    for path in ("/", "/runs", "/dlq", "/drift", "/errors", "/cost"):
        page = reader.get(path).text
        picker = page.split('<select name="agent">')[1].split("</select>")[0]
        for name in ("echo", "flaky", "pipeline", "researcher", "writer"):
            assert f"<option>{name}</option>" in picker, (path, name)


def test_errors_are_grouped_by_signature_with_a_trend(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Messages differing by a number are one signature; its count links to its runs."""
    app, seeded = seeded_app
    for n in (2, 3):
        app.run("flaky", n=n)
    page = reader.get("/errors").text
    assert "TimeoutError: upstream timed out for n=&lt;n&gt;" in page
    row = page.split("upstream timed out for n=&lt;n&gt;")[1].split("</tr>")[0]
    assert 'class="spark"' in row
    runs_link = re.search(r'<a href="(/runs\?[^"]+)">3</a>', row)
    assert runs_link is not None
    found = _listed(reader, runs_link.group(1))
    assert 3 == len(found)
    assert seeded.failed in found
    assert page.index("upstream timed out") < page.index('<tr class="contained">')  # roots first


def test_unpriced_calls_are_shown_never_as_zero(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A model without a price makes the cost a lower bound, and says how many calls."""
    app, _ = seeded_app

    @app.agent(name="pricey")
    def pricey(ctx: Any) -> int:
        ctx.record_usage(model="no-price-model-zz", input_tokens=10, output_tokens=5)
        return 1

    run_id = app.run("pricey").run_id
    page = reader.get("/").text
    assert "≥ $0.03" in page
    assert "1 calls unpriced" in page
    costs = reader.get("/cost").text
    assert "unpriced (1 calls)" in costs  # cost by model
    assert "$0.0300" in costs  # the researcher's priced calls
    assert "1 calls unpriced" in reader.get(f"/runs/{run_id}").text


def test_times_name_their_zone(seeded_app: tuple[Seawall, Seeded]) -> None:
    """With timezone=, every time is shown in that zone, named."""
    from starlette.testclient import TestClient

    from tests.dashboard.conftest import BASE_URL, ORIGIN, VIEWER_TOKEN, dashboard, login

    app, seeded = seeded_app
    web = dashboard(app, timezone="Asia/Kolkata")
    with TestClient(web, base_url=BASE_URL, headers=ORIGIN) as client:
        login(client, VIEWER_TOKEN)
        page = client.get(f"/runs/{seeded.ok[0]}").text
    assert re.search(r"<time datetime=\"[^\"]+\" title=\"[^\"]+ UTC\">[-0-9 :]+ IST</time>", page)
    assert "times in <b>IST</b>" in page


def test_trace_link_from_the_template(seeded_app: tuple[Seawall, Seeded]) -> None:
    """A traced run shows its trace id, linked through the configured URL template."""
    from starlette.testclient import TestClient

    from tests.dashboard.conftest import BASE_URL, ORIGIN, VIEWER_TOKEN, dashboard, login

    app, seeded = seeded_app
    app.store.set_trace(seeded.ok[0], "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    web = dashboard(app, trace_url="https://tempo.example/explore?trace={trace_id}&run={run_id}")
    with TestClient(web, base_url=BASE_URL, headers=ORIGIN) as client:
        login(client, VIEWER_TOKEN)
        page = client.get(f"/runs/{seeded.ok[0]}").text
    expected = f"https://tempo.example/explore?trace=4bf92f3577b34da6a3ce929d0e0e4736&amp;run={seeded.ok[0]}"
    assert f'href="{expected}"' in page
    assert "not traced" in reader_page(app, seeded.failed)


def reader_page(app: Seawall, run_id: str) -> str:
    """A run's page as a viewer sees it (no trace URL configured)."""
    from starlette.testclient import TestClient

    from tests.dashboard.conftest import BASE_URL, ORIGIN, VIEWER_TOKEN, dashboard

    with TestClient(dashboard(app), base_url=BASE_URL, headers=ORIGIN) as client:
        client.post("/login", data={"token": VIEWER_TOKEN})
        return client.get(f"/runs/{run_id}").text


def test_hostile_names_are_isolated_and_cut(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A right-to-left override is shown as a marker inside <bdi>; a long name is cut."""
    app, _ = seeded_app
    rtl = "invoice\u202egnp.exe"
    long_name = "n" * 300
    for name in (rtl, long_name):
        app.agent(name=name)(lambda ctx: 1)
        app.run(name)
    page = reader.get("/runs").text
    assert "\u202e" not in page.replace('value="invoice\u202egnp.exe"', "")  # a form value
    assert "<bdi>invoice&lt;U+202E&gt;gnp.exe</bdi>" in page
    assert f"<bdi>{'n' * 32}</bdi>…" in page  # cut, the rest on demand
    assert f'<bdi class="full">{long_name}</bdi>' in page


def test_a_100_kb_value_is_cut_with_a_note(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A value past what a page shows is cut, saying how much more there is and where."""
    from seawall.dashboard import _views

    app, _ = seeded_app
    run_id = app.run("echo", text="y" * 300_000).run_id
    page = reader.get(f"/runs/{run_id}").text
    assert "y" * (_views.SHOWN_AT_MOST - 10) in page
    assert "more characters not shown" in page
    assert "y" * 300_000 not in page


def test_auto_refresh_is_optional(reader: TestClient) -> None:
    """?refresh=30 adds a meta refresh; without it (or with another value) there is none."""
    assert '<meta http-equiv="refresh" content="30">' in reader.get("/?refresh=30").text
    assert "http-equiv" not in reader.get("/").text
    assert "http-equiv" not in reader.get("/?refresh=1").text
    refresh = re.search(
        r'href="(/runs\?[^"]*refresh=10[^"]*)"', reader.get("/runs?agent=echo").text
    )
    assert refresh is not None
    assert {"refresh": "10", "agent": "echo"} == _params(refresh.group(1))


def test_activity_lists_decisions_by_operator(
    reader: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """The decision log shows who did what, filtered by operator."""
    from seawall.ledger import OperatorAction

    app, _ = seeded_app
    for i, who in enumerate(("ada", "bob")):
        app.store.record_operator_action(
            OperatorAction(f"a{i}", time.time() + i, who, "breaker_reset", "agent:flaky")
        )
    page = reader.get("/activity").text
    assert page.index(">bob<") < page.index(">ada<")  # newest first
    assert ">bob<" not in reader.get("/activity", params={"operator": "ada"}).text


def test_metrics_route_serves_prometheus_text(reader: TestClient) -> None:
    """/metrics is Prometheus text computed from the ledger."""
    page = reader.get("/metrics")
    assert 200 == page.status_code
    assert page.headers["content-type"].startswith("text/plain")
    expected = (
        'seawall_runs_total{gen_ai_agent_name="researcher",seawall_error_class="",'
        'seawall_status="succeeded"} 3.0'
    )
    assert expected in page.text


def test_static_css_and_unknown_route(reader: TestClient) -> None:
    """The stylesheet is served locally; an unknown path is a 404 page."""
    assert 200 == reader.get("/static/style.css").status_code
    assert 404 == reader.get("/nope").status_code
    assert 405 == reader.get("/dlq/redrive").status_code


def test_ledger_url_password_is_not_shown() -> None:
    """A password in the ledger URL is redacted in the page footer."""
    from seawall.dashboard._views import redacted

    assert "postgresql://u:***@db:5432/x" == redacted("postgresql://u:secret@db:5432/x")
    assert "sqlite:///a.db" == redacted("sqlite:///a.db")
