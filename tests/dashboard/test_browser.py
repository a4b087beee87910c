"""The dashboard in a real browser: Playwright driving Debian's Chromium, headless.

Each test saves screenshots of the pages it visits under its temporary folder.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from seawall import RunStatus
from tests.dashboard.conftest import TOKEN

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from seawall import Seawall
    from tests.dashboard.workload import Seeded

pytest.importorskip("playwright")
pytestmark = pytest.mark.slow


@pytest.fixture
def server(seeded_app: tuple[Seawall, Seeded]) -> Iterator[str]:
    """The dashboard over the seeded app, served by uvicorn on a free local port."""
    import uvicorn

    from seawall.dashboard import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(app=seeded_app[0], token=TOKEN), host="127.0.0.1", port=port, log_level="error"
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not web.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(chromium_path: str, server: str) -> Iterator[Any]:
    """A headless Chromium page, 1440x900 like a laptop screen."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server)
            yield context.new_page()
        finally:
            browser.close()


def _login(page: Any) -> None:
    page.goto("/login")
    page.fill("input[name=token]", TOKEN)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=Logged in")


def test_overview_on_a_seeded_ledger(page: Any, tmp_path: Path) -> None:
    """The overview renders its cards and charts; no request leaves the machine."""
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if "127.0.0.1" not in r.url else None)
    page.goto("/")
    assert page.locator("svg[aria-label='Runs over time by outcome'] rect").count() > 0
    assert "hand-offs waiting" in page.inner_text(".cards")
    page.screenshot(path=tmp_path / "overview.png", full_page=True)
    page.select_option("select[name=range]", "7d")
    page.fill("input[name=agent]", "researcher")
    page.click("button:has-text('Apply')")
    assert "3\nruns" in page.inner_text(".cards")
    assert [] == remote


def test_filter_runs_and_open_a_timeline(
    page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path
) -> None:
    """Filtering runs by status narrows the table; a run opens on its step timeline."""
    _, seeded = seeded_app
    page.goto("/runs")
    page.screenshot(path=tmp_path / "runs.png", full_page=True)
    page.select_option("select[name=status]", "failed")
    page.click("button:has-text('Filter')")
    rows = page.locator("table.runs tbody tr")
    assert 3 == rows.count()  # flaky, the graph run and its failed node
    page.fill("input[name=q]", "timed out")
    page.click("button:has-text('Filter')")
    assert 1 == rows.count()
    page.screenshot(path=tmp_path / "runs-filtered.png", full_page=True)
    rows.first.locator("a").first.click()
    assert seeded.failed in page.inner_text("dl.fields")
    page.goto(f"/runs/{seeded.ok[0]}")
    assert page.locator("svg.waterfall rect").count() >= 2
    page.screenshot(path=tmp_path / "run-detail.png", full_page=True)
    page.goto(f"/runs/{seeded.graph}")
    assert page.locator("svg.dag rect.node").count() == 2
    page.screenshot(path=tmp_path / "graph-run.png", full_page=True)


def test_xss_output_is_text_in_the_browser(page: Any, seeded_app: tuple[Seawall, Seeded]) -> None:
    """The <script> output is shown as text and never runs."""
    _, seeded = seeded_app
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"/runs/{seeded.xss}")
    assert "<script>alert('pwned')</script>" in page.inner_text("main")
    assert [] == dialogs


def test_approve_a_handoff(page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path) -> None:
    """An operator logs in and approves the waiting hand-off; the run succeeds."""
    app, seeded = seeded_app
    _login(page)
    page.goto("/handoffs")
    page.screenshot(path=tmp_path / "handoffs.png", full_page=True)
    page.fill("input[name=note]", "looks right")
    page.click("button:has-text('Approve')")
    page.wait_for_selector("text=Hand-off approved")
    assert RunStatus.SUCCEEDED == app.get_run(seeded.parked).status
    page.screenshot(path=tmp_path / "handoffs-decided.png", full_page=True)


def test_redrive_a_dlq_entry(page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path) -> None:
    """An operator selects a DLQ entry and redrives it; the new run is listed."""
    app, seeded = seeded_app
    _login(page)
    page.goto("/dlq?agent=flaky")
    page.screenshot(path=tmp_path / "dlq.png", full_page=True)
    page.check("input[name=entry]")
    page.click("button:has-text('Redrive selected')")
    page.wait_for_selector("text=Redrive results")
    page.screenshot(path=tmp_path / "dlq-redriven.png", full_page=True)
    assert {seeded.failed} == {r.replay_of for r in app.runs(agent="flaky") if r.replay_of}


def test_breakers_and_drift_pages(
    page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path
) -> None:
    """The breakers page resets an open breaker; the drift page lists the alerts."""
    app, _ = seeded_app
    app.open_breaker("agent:flaky", reason="maintenance")
    _login(page)
    page.goto("/breakers")
    page.screenshot(path=tmp_path / "breakers.png", full_page=True)
    page.click("button:has-text('Reset')")
    page.wait_for_selector("text=Breaker reset")
    page.goto("/drift")
    assert "handoff_waiting" in page.inner_text("main")
    page.screenshot(path=tmp_path / "drift.png", full_page=True)


def test_retried_run_timeline(
    page: Any, seeded_app: tuple[Seawall, Seeded], tmp_path: Path
) -> None:
    """A retried run's timeline shows each attempt and the backoff after the first."""
    _, seeded = seeded_app
    page.goto(f"/runs/{seeded.failed}")
    timeline = page.text_content("svg.waterfall") or ""
    assert "attempt 1" in timeline
    assert "attempt 2" in timeline
    page.screenshot(path=tmp_path / "run-retried.png", full_page=True)
