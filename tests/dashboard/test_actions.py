"""Actions: login, CSRF, replay, redrive, breaker reset and hand-off decisions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from seawall import RunStatus
from tests.dashboard.conftest import TOKEN, csrf_of, login

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from seawall import Seawall
    from tests.dashboard.workload import Seeded


def _state(app: Seawall, name: str) -> str:
    return next(b.state for b in app.breaker_states() if b.name == name)


def _pending(app: Seawall) -> list[str]:
    return [e.run_id for e in app.dlq.list()]


def _actions(seeded: Seeded, app: Seawall) -> list[tuple[str, dict[str, str]]]:
    handoff = app.handoffs(status="open")[0].handoff_id
    entry = app.dlq.list()[0].entry_id
    return [
        (f"/runs/{seeded.ok[0]}/replay", {"mode": "live"}),
        ("/dlq/redrive", {"entry": entry}),
        ("/breakers/reset", {"name": "agent:flaky"}),
        (f"/handoffs/{handoff}/approve", {}),
        (f"/handoffs/{handoff}/reject", {"reason": "no"}),
        ("/logout", {}),
    ]


def _snapshot(app: Seawall) -> tuple[object, ...]:
    return (
        len(app.runs(limit=1000)),
        tuple(_pending(app)),
        tuple(b.state for b in app.breaker_states()),
        tuple(h.status for h in app.handoffs()),
    )


def test_posts_without_a_session_are_refused_and_change_nothing(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Every action without a session is a 403 and leaves the ledger as it was."""
    app, seeded = seeded_app
    app.open_breaker("agent:flaky", reason="test")
    before = _snapshot(app)
    for path, data in _actions(seeded, app):
        response = client.post(path, data={**data, "csrf": "forged"}, follow_redirects=False)
        assert 403 == response.status_code, path
    assert before == _snapshot(app)


def test_posts_with_a_wrong_csrf_token_are_refused(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A logged-in session without the right CSRF token is refused (403) and changes nothing."""
    app, seeded = seeded_app
    app.open_breaker("agent:flaky", reason="test")
    login(client)
    right = csrf_of(client, "/breakers")
    before = _snapshot(app)
    for path, data in _actions(seeded, app):
        for csrf in (None, "0" * 64, right[:-1]):
            body = dict(data) if csrf is None else {**data, "csrf": csrf}
            response = client.post(path, data=body, follow_redirects=False)
            assert 403 == response.status_code, (path, csrf)
    assert before == _snapshot(app)


def test_csrf_token_of_another_session_is_refused(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A CSRF token is bound to its session: another session's token is refused."""
    app, _ = seeded_app
    app.open_breaker("agent:flaky", reason="test")
    login(client)
    stolen = csrf_of(client, "/breakers")
    client.cookies.clear()
    login(client)
    response = client.post("/breakers/reset", data={"name": "agent:flaky", "csrf": stolen})
    assert 403 == response.status_code
    assert "open" == _state(app, "agent:flaky")


def test_wrong_token_does_not_log_in(client: TestClient) -> None:
    """A wrong token gets a 403 login page and no session cookie."""
    response = client.post("/login", data={"token": TOKEN + "x"}, follow_redirects=False)
    assert 403 == response.status_code
    assert "seawall_session" not in response.cookies
    assert 'name="csrf"' not in client.get("/breakers").text


def test_login_redirect_stays_on_this_site(client: TestClient) -> None:
    """The post-login redirect follows only local paths."""
    response = client.post(
        "/login", data={"token": TOKEN, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert "/?done=login" == response.headers["location"]
    response = client.post("/login", data={"token": TOKEN, "next": "/runs"}, follow_redirects=False)
    assert "/runs?done=login" == response.headers["location"]
    for target in ("/\\evil.example", "https://evil.example/", "/runs?agent=a"):
        response = client.post(
            "/login", data={"token": TOKEN, "next": target}, follow_redirects=False
        )
        expected = "/runs?agent=a&done=login" if target == "/runs?agent=a" else "/?done=login"
        assert expected == response.headers["location"]


def test_reset_breaker(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """An operator resets an open breaker from the Breakers page."""
    app, _ = seeded_app
    app.open_breaker("agent:flaky", reason="test")
    login(client)
    page = client.post(
        "/breakers/reset", data={"name": "agent:flaky", "csrf": csrf_of(client, "/breakers")}
    )
    assert 200 == page.status_code
    assert "Breaker reset" in page.text
    assert "closed" == _state(app, "agent:flaky")


def test_replay_recorded_and_live(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """Replay buttons make a new run linked to the original, recorded or live."""
    app, seeded = seeded_app
    login(client)
    csrf = csrf_of(client, f"/runs/{seeded.ok[0]}")
    for mode in ("recorded", "live"):
        page = client.post(f"/runs/{seeded.ok[0]}/replay", data={"mode": mode, "csrf": csrf})
        assert 200 == page.status_code
        assert "Replay finished" in page.text
        new_id = re.search(r"/runs/([0-9a-f]{32})\?done=replayed", str(page.url)).group(1)  # type: ignore[union-attr]
        replayed = app.get_run(new_id)
        assert seeded.ok[0] == replayed.replay_of
        assert mode == replayed.replay_mode
    assert 2 == client.get(f"/runs/{seeded.ok[0]}").text.count("<dt>replays</dt>") * 2
    bad = client.post(f"/runs/{seeded.ok[0]}/replay", data={"mode": "sideways", "csrf": csrf})
    assert 400 == bad.status_code


def test_redrive_selected_entry(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """Redriving a selected DLQ entry runs it live once; the results are shown."""
    app, seeded = seeded_app
    login(client)
    entry = next(e for e in app.dlq.list() if e.run_id == seeded.failed)
    page = client.post(
        "/dlq/redrive", data={"entry": entry.entry_id, "csrf": csrf_of(client, "/dlq")}
    )
    assert 200 == page.status_code
    assert "Redrive results" in page.text
    redriven = app.runs(agent="flaky")
    assert 2 == len(redriven)
    assert {seeded.failed} == {r.replay_of for r in redriven if r.replay_of}
    again = client.post("/dlq/redrive", data={"entry": "missing", "csrf": csrf_of(client, "/dlq")})
    assert "no longer pending" in again.text
    twice = client.post(
        "/dlq/redrive", data={"entry": entry.entry_id, "csrf": csrf_of(client, "/dlq")}
    )
    assert "no longer pending" in twice.text
    assert 2 == len(app.runs(agent="flaky"))  # each entry is redriven at most once


def test_redrive_all_matching_and_nothing_selected(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """'Redrive all matching' redrives the filtered set; a post with no choice is a 400."""
    app, _ = seeded_app
    login(client)
    csrf = csrf_of(client, "/dlq")
    assert 400 == client.post("/dlq/redrive", data={"csrf": csrf}).status_code
    page = client.post("/dlq/redrive", data={"all": "1", "agent": "flaky", "csrf": csrf})
    assert 200 == page.status_code
    assert 2 == len(app.runs(agent="flaky"))


def test_approve_handoff(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """Approving the open hand-off resumes and commits the parked run."""
    app, seeded = seeded_app
    login(client)
    handoff = app.handoffs(status="open")[0]
    page = client.post(
        f"/handoffs/{handoff.handoff_id}/approve",
        data={"note": "fine", "csrf": csrf_of(client, "/handoffs")},
    )
    assert "Hand-off approved" in page.text
    assert RunStatus.SUCCEEDED == app.get_run(seeded.parked).status


def test_approve_edited_output_and_bad_json(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """An edited output is verified again (still open when it fails); bad JSON is a 400."""
    app, seeded = seeded_app
    login(client)
    handoff = app.handoffs(status="open")[0]
    csrf = csrf_of(client, "/handoffs")
    url = f"/handoffs/{handoff.handoff_id}/approve"
    assert 400 == client.post(url, data={"edit": "1", "output": "{nope", "csrf": csrf}).status_code
    page = client.post(
        url, data={"edit": "1", "output": '{"title": "T", "ok": true}', "csrf": csrf}
    )
    assert 200 == page.status_code
    assert {"title": "T", "ok": True} == app.output_of(seeded.parked)


def test_reject_handoff(client: TestClient, seeded_app: tuple[Seawall, Seeded]) -> None:
    """Rejecting needs a reason and fails the run."""
    app, seeded = seeded_app
    login(client)
    handoff = app.handoffs(status="open")[0]
    csrf = csrf_of(client, "/handoffs")
    url = f"/handoffs/{handoff.handoff_id}/reject"
    assert 400 == client.post(url, data={"reason": " ", "csrf": csrf}).status_code
    page = client.post(url, data={"reason": "off-topic", "csrf": csrf})
    assert "Hand-off rejected" in page.text
    assert RunStatus.FAILED == app.get_run(seeded.parked).status
    assert 409 == client.post(url, data={"reason": "again", "csrf": csrf}).status_code


def test_actions_that_run_agents_need_the_app(seeded_app: tuple[Seawall, Seeded]) -> None:
    """Without --app, replay and redrive explain they need it (409); breaker reset still works."""
    from starlette.testclient import TestClient

    from seawall.dashboard import create_app

    app, seeded = seeded_app
    app.open_breaker("agent:flaky", reason="test")
    with TestClient(create_app(app.store.url, token=TOKEN)) as reader:
        login(reader)
        csrf = csrf_of(reader, "/breakers")
        page = reader.post(f"/runs/{seeded.ok[0]}/replay", data={"mode": "live", "csrf": csrf})
        assert 409 == page.status_code
        assert "--app" in page.text
        assert (
            200
            == reader.post(
                "/breakers/reset", data={"name": "agent:flaky", "csrf": csrf}
            ).status_code
        )
        assert "no app loaded" in reader.get("/").text


def test_logout_ends_the_session(client: TestClient) -> None:
    """After logging out, forms are gone."""
    login(client)
    client.post("/logout", data={"csrf": csrf_of(client, "/breakers")})
    assert "Log in to act" in client.get("/").text


def test_empty_token_is_refused() -> None:
    """create_app refuses an empty token."""
    pytest.importorskip("starlette")
    from seawall import ConfigurationError
    from seawall.dashboard import create_app

    with pytest.raises(ConfigurationError):
        create_app("sqlite:///:memory:", token="")
