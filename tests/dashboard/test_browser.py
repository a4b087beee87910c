"""The dashboard in a real browser: Playwright driving Debian's Chromium, headless.

Each test saves screenshots of the pages it visits under its temporary folder.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from seawall import RunStatus
from seawall.testing import no_waits
from tests.dashboard.browser import chromium, free_port, log_in, overflow, serving
from tests.dashboard.conftest import TOKEN, dashboard
from tests.dashboard.workload import record_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from seawall import Seawall
    from tests.dashboard.scene import Scene
    from tests.dashboard.workload import Seeded

pytest.importorskip("playwright")
pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}


@pytest.fixture
def server(seeded_app: tuple[Seawall, Seeded]) -> Iterator[tuple[str, Any]]:
    """The dashboard over the seeded app on a free local port, and the ASGI app."""
    web = dashboard(seeded_app[0])
    with serving(web) as url:
        yield url, web


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    """Debian's Chromium, headless."""
    with chromium(chromium_path) as launched:
        yield launched


@pytest.fixture
def page(server: tuple[str, Any], browser: Any) -> Iterator[Any]:
    """A laptop-sized page on the seeded dashboard, not logged in (the server starts first: the
    workload runs before Playwright's event loop does)."""
    context = browser.new_context(viewport=LAPTOP, base_url=server[0])
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def scene_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Scene]]:
    """The 3 a.m. scene (drift, cascade, hostile names) served once for the read-only tests."""
    pytest.importorskip("starlette")
    from seawall import Seawall
    from tests.dashboard.scene import TRACE_URL, build

    folder = tmp_path_factory.mktemp("scene")
    with no_waits():
        app = Seawall(f"sqlite:///{folder / 'ledger.db'}", staging=folder / "staging")
        try:
            scene = build(app, reference=80, recent=80)
            with serving(dashboard(app, trace_url=TRACE_URL)) as url:
                yield url, scene
        finally:
            app.close()


def test_login_logout_and_expiry(page: Any, server: tuple[str, Any], tmp_path: Path) -> None:
    """Pages send a stranger to the login form; logout and expiry both end the session."""
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if "127.0.0.1" not in r.url else None)
    page.goto("/runs")
    assert "/login" in page.url
    page.screenshot(path=tmp_path / "login.png")
    page.fill("input[name=token]", "not-the-token-at-all")
    page.click("button:has-text('Log in')")
    assert "not a dashboard token" in page.inner_text("main")
    page.fill("input[name=token]", TOKEN)
    page.click("button:has-text('Log in')")
    assert page.url.endswith("/runs?done=login")  # back where it was going
    assert "ada" in page.inner_text("header")
    page.click("button:has-text('Log out')")
    assert "Logged out" in page.inner_text("main")
    page.goto("/")
    assert "/login" in page.url
    sessions = server[1].state.dashboard.sessions
    now = [1000.0]
    sessions.clock = lambda: now[0]
    log_in(page, TOKEN)
    page.goto("/breakers")
    assert "/breakers" in page.url
    now[0] += sessions.idle + 1  # idle past the timeout
    page.goto("/breakers")
    assert "/login" in page.url
    assert [] == remote


def test_a_dns_rebinding_host_is_refused(page: Any, server: tuple[str, Any]) -> None:
    """A page served as attacker.example (resolving to this machine) gets a 400, no data."""
    port = server[0].rsplit(":", 1)[1]
    log_in(page, TOKEN)
    response = page.goto(f"http://attacker.example:{port}/runs")
    assert 400 == response.status
    assert "does not serve the host 'attacker.example'" in page.inner_text("body")
    assert "researcher" not in page.content()


def test_a_cross_origin_post_is_refused(
    seeded_app: tuple[Seawall, Seeded], server: tuple[str, Any], browser: Any
) -> None:
    """A form on another origin of the same site, with the session cookie and even the right
    form token, is refused (403) and changes nothing."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    app, _ = seeded_app
    app.breakers.open("agent:flaky", reason="test")
    url, _ = server
    context = browser.new_context(viewport=LAPTOP, base_url=url)
    page = context.new_page()
    log_in(page, TOKEN)
    page.goto("/breakers")
    csrf = page.get_attribute("input[name=csrf]", "value")
    attack = (
        f'<form method="post" action="{url}/breakers/reset">'
        '<input name="name" value="agent:flaky"><input name="confirm" value="1">'
        f'<input name="csrf" value="{csrf}"><button>Win a prize</button></form>'
    )
    evil = Starlette(routes=[Route("/", lambda _: HTMLResponse(attack))])
    with serving(evil, free_port()) as evil_url:
        page.goto(evil_url)
        with page.expect_navigation():
            page.click("text=Win a prize")
    assert "cross-site post refused" in page.inner_text("main").lower()
    assert "open" == next(b.state for b in app.breakers.list() if b.name == "agent:flaky")
    assert [] == app.store.list_operator_actions()
    context.close()


def test_drift_evidence_and_acknowledge(
    page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path
) -> None:
    """The drift page shows the shift's evidence; acknowledging moves it out of the open list."""
    app, _ = seeded_app
    record_drift(app, "d1")
    log_in(page, TOKEN)
    page.goto("/")
    assert "1\ndrift alerts open" in page.inner_text(".attention")
    page.click("text=Evidence, acknowledge, silence")
    evidence = page.inner_text(".alert")
    assert "0.310" in evidence
    assert "2e-07" in evidence
    assert "300 reference · 100 recent" in evidence
    assert 2 == page.locator("svg.distribution rect.c-recent:has(title)").count()
    page.screenshot(path=tmp_path / "drift.png", full_page=True)
    page.fill("input[name=note]", "new prompt shipped at 02:10")
    page.click("button:has-text('Acknowledge')")
    assert "Alert acknowledged" in page.inner_text("main")
    assert "No open alerts" in page.inner_text("main")
    assert "ada" == app.store.alert_acks(["d1"])["d1"].by
    page.select_option("select[name=state]", "acknowledged")
    page.click("button:has-text('Filter')")
    assert "new prompt shipped" in page.inner_text("main")


def test_drill_down_from_an_overview_bar(browser: Any, scene_server: tuple[str, Scene]) -> None:
    """Clicking a failure bar of the overview lists exactly the runs it counts."""
    url, _ = scene_server
    page = browser.new_context(viewport=LAPTOP, base_url=url).new_page()
    log_in(page, TOKEN)
    page.goto("/?range=24h")
    bar = page.locator(
        "svg[aria-label='Failure classes by agent'] a[href*='agent=fetch_orders'] rect.c-clean_abort"
    )
    counted = int(bar.locator("title").text_content().rsplit(":", 1)[1])
    bar.click()
    page.wait_for_url(re.compile(r"/runs\?"))
    rows = page.locator("table.runs tbody tr")
    assert counted == rows.count()
    for i in range(rows.count()):
        text = rows.nth(i).inner_text()
        assert "fetch_orders" in text
        assert "clean_abort" in text
    page.goto("/")
    page.locator("svg[aria-label='Runs over time by outcome'] a rect.c-cascade").first.click()
    page.wait_for_url(re.compile(r"error_class=cascade"))
    assert rows.count() > 0
    assert all("cascade" in rows.nth(i).inner_text() for i in range(rows.count()))


def test_redrive_preview_then_confirm(
    page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path
) -> None:
    """Selecting a DLQ entry shows a dry run first; only confirming redrives it."""
    app, seeded = seeded_app
    log_in(page, TOKEN)
    page.goto("/dlq?agent=flaky")
    page.check("input[name=entry]")
    page.click("button:has-text('Preview redrive of selected')")
    assert "redrive preview (dry run)" in page.inner_text("main").lower()
    assert seeded.failed[:12] in page.inner_text("main")
    assert [] == [r for r in app.ledger.runs(agent="flaky") if r.replay_of]  # nothing ran yet
    page.screenshot(path=tmp_path / "dlq-preview.png", full_page=True)
    page.click("button:has-text('Confirm: redrive 1 entry')")
    page.wait_for_selector("text=Redrive results")
    assert {seeded.failed} == {r.replay_of for r in app.ledger.runs(agent="flaky") if r.replay_of}
    assert "redrive" in page.goto("/activity").text()


def test_approve_a_handoff(page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path) -> None:
    """An operator claims, reviews and approves the waiting hand-off; the run succeeds."""
    app, seeded = seeded_app
    log_in(page, TOKEN)
    page.goto("/handoffs")
    page.click("button:has-text('Claim')")
    assert "claimed by ada" in page.inner_text("main")
    page.fill("input[name=note]", "looks right")
    page.check("input[name=confirm]")
    page.click("button:has-text('Approve')")
    page.wait_for_selector("text=Hand-off approved")
    assert RunStatus.SUCCEEDED == app.ledger.run(seeded.parked).status
    page.screenshot(path=tmp_path / "handoffs-decided.png", full_page=True)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_hostile_names_stay_within_the_viewport(
    browser: Any, scene_server: tuple[str, Scene], viewport: dict[str, int], tmp_path: Path
) -> None:
    """A 300-character name, a right-to-left override and a 100 KB value: nothing sticks out."""
    url, scene = scene_server
    page = browser.new_context(viewport=viewport, base_url=url).new_page()
    log_in(page, TOKEN)
    for path in (
        "/",
        "/runs",
        "/errors",
        "/cost",
        "/dlq",
        "/drift",
        "/handoffs",
        *(f"/runs/{run_id}" for run_id in scene.hostile),
    ):
        page.goto(path)
        assert 0 == overflow(page), path
    page.goto("/runs")
    assert "invoice<U+202E>gnp.exe" in page.inner_text("table.runs")
    page.screenshot(path=tmp_path / "hostile.png", full_page=True)


def test_xss_output_is_text_and_dark_mode_applies(
    seeded_app: tuple[Seawall, Seeded], server: tuple[str, Any], browser: Any
) -> None:
    """The <script> output shows as text and never runs; a dark system gets the dark palette."""
    _, seeded = seeded_app
    context = browser.new_context(viewport=LAPTOP, base_url=server[0], color_scheme="dark")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, TOKEN)
    page.goto(f"/runs/{seeded.xss}")
    assert "<script>alert('pwned')</script>" in page.inner_text("main")
    assert [] == dialogs
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert "rgb(15, 19, 27)" == background
    context.close()
