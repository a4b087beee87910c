"""Private by default: identities, allowed hosts, same-origin posts, sessions, limits, headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.dashboard.conftest import (
    BASE_URL,
    ORIGIN,
    TOKEN,
    VIEWER_TOKEN,
    csrf_of,
    dashboard,
    login,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.testclient import TestClient

    from seawall import Seawall
    from tests.dashboard.workload import Seeded

PAGES = (
    "/",
    "/runs",
    "/errors",
    "/drift",
    "/alerts",
    "/dlq",
    "/breakers",
    "/handoffs",
    "/activity",
)


def _breaker(app: Seawall) -> str:
    return next(b.state for b in app.breakers.list() if b.name == "agent:flaky")


@pytest.fixture
def opened(seeded_app: tuple[Seawall, Seeded]) -> Iterator[Seawall]:
    """The seeded app with the flaky agent's breaker opened by hand."""
    app, _ = seeded_app
    app.breakers.open("agent:flaky", reason="test")
    return app


def test_every_page_needs_an_identity(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Without a session each page redirects to the login form, keeping where it was going."""
    _, seeded = seeded_app
    for path in (*PAGES, f"/runs/{seeded.xss}", "/runs?agent=echo"):
        response = client.get(path, follow_redirects=False)
        assert 303 == response.status_code, path
        assert response.headers["location"].startswith("/login?next=%2F"), path
    assert "echo" not in client.get(f"/runs/{seeded.xss}").text
    assert 200 == client.get("/login").status_code
    assert 200 == client.get("/static/style.css").status_code


def test_metrics_needs_a_bearer_token(client: TestClient) -> None:
    """/metrics answers 401 with a challenge; a viewer's bearer token reads it; a wrong one not."""
    refused = client.get("/metrics")
    assert 401 == refused.status_code
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "seawall_runs_total" not in refused.text
    for token, expected in ((VIEWER_TOKEN, 200), (TOKEN, 200), ("x" * 20, 401)):
        page = client.get("/metrics", headers={"authorization": f"Bearer {token}"})
        assert expected == page.status_code
    page = client.get("/metrics", headers={"authorization": f"Bearer {VIEWER_TOKEN}"})
    assert "seawall_runs_total" in page.text


def test_a_bearer_token_reads_but_never_acts(client: TestClient, opened: Seawall) -> None:
    """A bearer token opens no session: a post with it is refused."""
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert 200 == client.get("/breakers", headers=bearer).status_code
    response = client.post("/breakers/reset", data={"name": "agent:flaky"}, headers=bearer)
    assert 403 == response.status_code
    assert "open" == _breaker(opened)


def test_public_read_opts_out_of_reading_with_a_login(seeded_app: tuple[Seawall, Seeded]) -> None:
    """public_read=True serves every page without a login; acting still needs an operator."""
    from starlette.testclient import TestClient

    app, _ = seeded_app
    app.breakers.open("agent:flaky", reason="test")
    with TestClient(dashboard(app, public_read=True), base_url=BASE_URL, headers=ORIGIN) as web:
        for path in (*PAGES, "/metrics"):
            assert 200 == web.get(path).status_code, path
        assert "Log in" in web.get("/").text
        response = web.post("/breakers/reset", data={"name": "agent:flaky", "confirm": "1"})
        assert 403 == response.status_code
    assert "open" == _breaker(app)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("LOCALHOST", True),
        ("[::1]:8765", True),
        ("attacker.example", False),
        ("attacker.example:8765", False),
        ("127.0.0.1.attacker.example", False),
        ("", False),
    ],
)
def test_only_allowed_hosts_are_served(client: TestClient, host: str, allowed: bool) -> None:
    """A DNS-rebinding Host gets a 400 before anything else, even with a valid session."""
    login(client)
    response = client.get("/runs", headers={"host": host})
    assert (200 if allowed else 400) == response.status_code
    assert ("researcher" in response.text) is allowed


def test_allowed_hosts_match_names_and_subdomains(seeded_app: tuple[Seawall, Seeded]) -> None:
    """allowed_hosts takes exact names and *.domain patterns (the loopback names then refused)."""
    from starlette.testclient import TestClient

    app, _ = seeded_app
    web = dashboard(app, allowed_hosts=["dash.example.com", "*.ops.example"], public_read=True)
    with TestClient(web, base_url="https://dash.example.com") as client:
        for host, expected in (
            ("dash.example.com", 200),
            ("a.ops.example:443", 200),
            ("ops.example", 400),
            ("evilops.example", 400),
            ("127.0.0.1", 400),
        ):
            assert expected == client.get("/", headers={"host": host}).status_code, host


def test_cross_origin_post_is_refused_and_changes_nothing(
    client: TestClient, opened: Seawall
) -> None:
    """A post with a valid session and form token but another Origin is a 403; nothing changes."""
    login(client)
    csrf = csrf_of(client, "/breakers")
    form = {"name": "agent:flaky", "csrf": csrf, "confirm": "1"}
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "http://127.0.0.1:9999"},  # same site, other port
        {"origin": "null"},
        {"origin": "", "referer": "http://evil.example/page"},
        {"origin": "", "referer": ""},
    ):
        response = client.post("/breakers/reset", data=form, headers=headers)
        assert 403 == response.status_code, headers
    assert "open" == _breaker(opened)
    referred = {"origin": "", "referer": f"{BASE_URL}/breakers"}
    assert 200 == client.post("/breakers/reset", data=form, headers=referred).status_code
    assert "closed" == _breaker(opened)


def test_logout_revokes_the_session_on_the_server(client: TestClient) -> None:
    """After logout the old cookie opens nothing, even if a copy of it is replayed."""
    login(client)
    stolen = dict(client.cookies)
    client.post("/logout", data={"csrf": csrf_of(client, "/breakers")})
    assert 303 == client.get("/", follow_redirects=False).status_code
    client.cookies.update(stolen)
    assert 303 == client.get("/", follow_redirects=False).status_code


def test_sessions_expire_when_idle_and_at_their_end(client: TestClient) -> None:
    """A session ends after idle_timeout without a request, and after session_ttl in any case."""
    sessions = client.app.state.dashboard.sessions  # type: ignore[attr-defined]
    now = [1000.0]
    sessions.clock = lambda: now[0]
    login(client)
    now[0] += sessions.idle - 1
    assert 200 == client.get("/").status_code
    now[0] += sessions.idle + 1
    assert 303 == client.get("/", follow_redirects=False).status_code
    login(client)
    for _ in range(int(sessions.ttl // (sessions.idle / 2)) + 1):
        now[0] += sessions.idle / 2
        client.get("/", follow_redirects=False)
    assert 303 == client.get("/", follow_redirects=False).status_code


def test_failed_logins_are_rate_limited(client: TestClient) -> None:
    """After five wrong tokens the client waits (429 with Retry-After), even with the right one."""
    for _ in range(5):
        assert 403 == client.post("/login", data={"token": "wrong-token-000000"}).status_code
    throttled = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert 429 == throttled.status_code
    assert int(throttled.headers["retry-after"]) >= 1
    assert "seawall_session" not in throttled.cookies


def test_tokens_are_long_unique_and_needed() -> None:
    """create_app refuses short or shared tokens, no way in, bad hosts, zones and trace URLs."""
    pytest.importorskip("starlette")
    from seawall import ConfigurationError
    from seawall.dashboard import create_app

    url = "sqlite:///:memory:"
    for options in (
        {"token": ""},
        {"token": "short"},
        {"operators": {"ada": "t" * 20, "bob": "t" * 20}},
        {"operators": {"": "t" * 20}},
        {},
        {"token": "t" * 20, "allowed_hosts": []},
        {"token": "t" * 20, "timezone": "Mars/Olympus"},
        {"token": "t" * 20, "trace_url": "jaeger/{trace_id}"},
        {"token": "t" * 20, "trace_url": "http://jaeger/{trace}"},
        {"token": "t" * 20, "session_ttl": 0},
        {"token": "t" * 20, "max_body": 10},
    ):
        with pytest.raises(ConfigurationError):
            create_app(url, **options)  # type: ignore[arg-type]


def test_large_bodies_are_refused_before_they_are_read(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """40 MB without a session: 403 unread; a big login form: 413; past max_body: 413."""
    body = b"x" * (40 * 1024 * 1024)
    response = client.post(
        "/dlq/redrive", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert 403 == response.status_code
    big_login = client.post("/login", data={"token": "x" * 100_000})
    assert 413 == big_login.status_code
    login(client)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b"a=" + b"x" * (1024 * 1024)

    streamed = client.post(
        "/breakers/reset",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert 413 == streamed.status_code


def test_pages_are_not_cached_and_carry_security_headers(reader: TestClient) -> None:
    """Data pages and /metrics are no-store with a script-free CSP; the stylesheet may be cached."""
    for path in ("/", "/runs", "/metrics", "/login"):
        headers = reader.get(path).headers
        assert "no-store" == headers["cache-control"], path
        assert "script-src" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "DENY" == headers["x-frame-options"]
        assert "same-origin" == headers["referrer-policy"]
    assert "no-store" not in reader.get("/static/style.css").headers.get("cache-control", "")


def test_a_viewer_reads_but_cannot_act(reader: TestClient, opened: Seawall) -> None:
    """A viewer's session has no action forms, and its posts are refused."""
    page = reader.get("/breakers").text
    assert "/breakers/reset" not in page
    csrf = csrf_of(reader, "/breakers")  # the logout form's token
    response = reader.post("/breakers/reset", data={"name": "agent:flaky", "csrf": csrf})
    assert 403 == response.status_code
    assert "open" == _breaker(opened)


def test_a_trusted_proxy_names_the_operator(seeded_app: tuple[Seawall, Seeded]) -> None:
    """operator_header is believed from trusted proxies only; the decision records that name."""
    from starlette.testclient import TestClient

    from seawall import RunStatus

    app, seeded = seeded_app
    web = dashboard(app, operator_header="X-Forwarded-User", trusted_proxies=["testclient"])
    with TestClient(web, base_url=BASE_URL, headers=ORIGIN) as client:
        who = {"x-forwarded-user": "grace"}
        assert 303 == client.get("/", follow_redirects=False).status_code
        page = client.get("/handoffs", headers=who)
        assert "grace" in page.text
        csrf = _csrf(page.text)
        handoff = app.handoffs.list(status="open")[0].handoff_id
        client.post(
            f"/handoffs/{handoff}/approve", data={"csrf": csrf, "confirm": "1"}, headers=who
        )
    assert RunStatus.SUCCEEDED == app.ledger.run(seeded.parked).status
    assert "grace" == app.handoffs.get(handoff).decided_by
    untrusted = dashboard(app, operator_header="X-Forwarded-User", trusted_proxies=["10.0.0.1"])
    with TestClient(untrusted, base_url=BASE_URL) as client:
        response = client.get("/", headers={"x-forwarded-user": "mallory"}, follow_redirects=False)
        assert 303 == response.status_code


def _csrf(page: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)
