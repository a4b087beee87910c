"""Actions: CSRF, previews and confirmations, named decisions, hand-off claims, alert answers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from seawall import RunStatus
from seawall.ledger import AlertRecord
from tests.dashboard.conftest import BASE_URL, OPERATOR, ORIGIN, TOKEN, csrf_of, login
from tests.dashboard.workload import record_drift

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from seawall import Seawall
    from tests.dashboard.workload import Seeded


def _state(app: Seawall, name: str) -> str:
    return next(b.state for b in app.breakers.list() if b.name == name)


def _pending(app: Seawall) -> list[str]:
    return [e.run_id for e in app.dlq.list()]


def _actions(seeded: Seeded, app: Seawall) -> list[tuple[str, dict[str, str]]]:
    handoff = app.handoffs.list(status="open")[0].handoff_id
    entry = app.dlq.list()[0].entry_id
    return [
        (f"/runs/{seeded.ok[0]}/replay", {"mode": "live", "confirm": "1"}),
        ("/dlq/redrive", {"entry": entry, "confirm": "1"}),
        ("/breakers/reset", {"name": "agent:flaky", "confirm": "1"}),
        (f"/handoffs/{handoff}/approve", {"confirm": "1"}),
        (f"/handoffs/{handoff}/reject", {"reason": "no"}),
        (f"/handoffs/{handoff}/claim", {}),
        ("/alerts/silence", {"kind": "drift", "for": "1h"}),
        ("/logout", {}),
    ]


def _snapshot(app: Seawall) -> tuple[object, ...]:
    return (
        len(app.ledger.runs(limit=1000)),
        tuple(_pending(app)),
        tuple(b.state for b in app.breakers.list()),
        tuple(h.status for h in app.handoffs.list()),
        len(app.store.list_silences()),
        len(app.store.list_operator_actions()),
    )


def _actions_of(app: Seawall) -> list[tuple[str, str, str]]:
    """The decision log, oldest first: (operator, action, target)."""
    return [(a.operator, a.action, a.target) for a in reversed(app.store.list_operator_actions())]


def test_posts_without_a_session_are_refused_and_change_nothing(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Every action without a session is a 403 and leaves the ledger as it was."""
    app, seeded = seeded_app
    app.breakers.open("agent:flaky", reason="test")
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
    app.breakers.open("agent:flaky", reason="test")
    login(client)
    right = csrf_of(client, "/breakers")
    before = _snapshot(app)
    for path, data in _actions(seeded, app):
        for csrf in (None, "0" * 43, right[:-1]):
            body = dict(data) if csrf is None else {**data, "csrf": csrf}
            response = client.post(path, data=body, follow_redirects=False)
            assert 403 == response.status_code, (path, csrf)
    assert before == _snapshot(app)


def test_csrf_token_of_another_session_is_refused(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A CSRF token is bound to its session: another session's token is refused."""
    app, _ = seeded_app
    app.breakers.open("agent:flaky", reason="test")
    login(client)
    stolen = csrf_of(client, "/breakers")
    client.cookies.clear()
    login(client)
    response = client.post(
        "/breakers/reset", data={"name": "agent:flaky", "csrf": stolen, "confirm": "1"}
    )
    assert 403 == response.status_code
    assert "open" == _state(app, "agent:flaky")


def test_wrong_token_does_not_log_in(client: TestClient) -> None:
    """A wrong token gets a 403 login page and no session cookie."""
    response = client.post("/login", data={"token": TOKEN + "x"}, follow_redirects=False)
    assert 403 == response.status_code
    assert "seawall_session" not in response.cookies
    assert 303 == client.get("/breakers", follow_redirects=False).status_code


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


def test_reset_breaker_asks_first_then_records_who(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """The first post shows what a reset does; the confirmed one resets, logged under the name."""
    app, _ = seeded_app
    app.breakers.open("agent:flaky", reason="maintenance")
    login(client)
    csrf = csrf_of(client, "/breakers")
    asked = client.post("/breakers/reset", data={"name": "agent:flaky", "csrf": csrf})
    assert "Reset breaker" in asked.text
    assert "maintenance" in asked.text
    assert "open" == _state(app, "agent:flaky")
    done = client.post(
        "/breakers/reset", data={"name": "agent:flaky", "csrf": csrf, "confirm": "1"}
    )
    assert "Breaker reset" in done.text
    assert "closed" == _state(app, "agent:flaky")
    assert [(OPERATOR, "breaker_reset", "agent:flaky")] == _actions_of(app)
    unknown = client.post("/breakers/reset", data={"name": "agent:nope", "csrf": csrf})
    assert 404 == unknown.status_code


def test_replay_recorded_at_once_and_live_after_confirming(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A recorded replay runs at once; a live one asks first; both are linked and logged."""
    app, seeded = seeded_app
    login(client)
    csrf = csrf_of(client, f"/runs/{seeded.ok[0]}")
    url = f"/runs/{seeded.ok[0]}/replay"
    asked = client.post(url, data={"mode": "live", "csrf": csrf})
    assert "Replay this run live?" in asked.text
    assert 1 == len(app.ledger.runs(agent="researcher", limit=100)) - 2  # nothing ran yet
    for mode, extra in (("recorded", {}), ("live", {"confirm": "1"})):
        page = client.post(url, data={"mode": mode, "csrf": csrf, **extra})
        assert "Replay finished" in page.text
        new_id = re.search(r"/runs/([0-9a-f]{32})\?done=replayed", str(page.url)).group(1)  # type: ignore[union-attr]
        replayed = app.ledger.run(new_id)
        assert (seeded.ok[0], mode) == (replayed.replay_of, replayed.replay_mode)
    assert [(OPERATOR, "replay", seeded.ok[0])] * 2 == _actions_of(app)
    assert 400 == client.post(url, data={"mode": "sideways", "csrf": csrf}).status_code


def test_redrive_previews_then_redrives_exactly_what_was_shown(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """The preview is a dry run listing the entries; the confirmed post redrives those, once."""
    app, seeded = seeded_app
    login(client)
    csrf = csrf_of(client, "/dlq")
    entry = next(e for e in app.dlq.list() if e.run_id == seeded.failed)
    preview = client.post("/dlq/redrive", data={"entry": entry.entry_id, "csrf": csrf})
    assert "Redrive preview" in preview.text
    assert seeded.failed[:12] in preview.text
    assert 1 == len(app.ledger.runs(agent="flaky"))  # a dry run: nothing ran
    shown = re.findall(r'name="entry" value="([0-9a-f]+)"', preview.text)
    assert [entry.entry_id] == shown
    done = client.post("/dlq/redrive", data={"entry": shown, "csrf": csrf, "confirm": "1"})
    assert "Redrive results" in done.text
    redriven = app.ledger.runs(agent="flaky")
    assert {seeded.failed} == {r.replay_of for r in redriven if r.replay_of}
    twice = client.post("/dlq/redrive", data={"entry": shown, "csrf": csrf, "confirm": "1"})
    assert "no longer pending" in twice.text
    assert len(redriven) == len(
        app.ledger.runs(agent="flaky")
    )  # each entry is redriven at most once
    action = app.store.list_operator_actions(action="redrive")[-1]
    assert (OPERATOR, [entry.entry_id]) == (action.operator, action.details["entry_ids"])
    assert [entry.entry_id] == list(action.details["results"])


def test_redrive_all_matching_previews_the_filtered_set(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """'All matching' previews the filter's pending entries; no choice at all is a 400."""
    app, seeded = seeded_app
    login(client)
    csrf = csrf_of(client, "/dlq")
    assert 400 == client.post("/dlq/redrive", data={"csrf": csrf}).status_code
    preview = client.post("/dlq/redrive", data={"all": "1", "agent": "flaky", "csrf": csrf})
    shown = re.findall(r'name="entry" value="([0-9a-f]+)"', preview.text)
    assert [e.entry_id for e in app.dlq.list(agent="flaky")] == shown
    assert 400 == client.post("/dlq/redrive", data={"csrf": csrf, "confirm": "1"}).status_code
    client.post("/dlq/redrive", data={"entry": shown, "csrf": csrf, "confirm": "1"})
    assert 2 == len(app.ledger.runs(agent="flaky"))
    assert seeded.failed not in _pending(app)


def test_approve_needs_the_review_box_and_records_the_operator(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Approving without ticking 'I reviewed' does nothing; with it the run commits, by ada."""
    app, seeded = seeded_app
    login(client)
    handoff = app.handoffs.list(status="open")[0]
    csrf = csrf_of(client, "/handoffs")
    url = f"/handoffs/{handoff.handoff_id}/approve"
    unticked = client.post(url, data={"note": "fine", "csrf": csrf})
    assert 400 == unticked.status_code
    assert 'value="fine"' in unticked.text  # the note is kept
    assert RunStatus.AWAITING_HUMAN == app.ledger.run(seeded.parked).status
    page = client.post(url, data={"note": "fine", "csrf": csrf, "confirm": "1"})
    assert "Hand-off approved" in page.text
    assert RunStatus.SUCCEEDED == app.ledger.run(seeded.parked).status
    assert OPERATOR == app.handoffs.get(handoff.handoff_id).decided_by
    assert [(OPERATOR, "handoff_approve", handoff.handoff_id)] == _actions_of(app)


def test_a_failed_approve_keeps_the_edit(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Bad JSON or an edit the verifiers reject shows the error with the edit kept."""
    app, seeded = seeded_app
    login(client)
    handoff = app.handoffs.list(status="open")[0]
    csrf = csrf_of(client, "/handoffs")
    url = f"/handoffs/{handoff.handoff_id}/approve"
    form = {"edit": "1", "csrf": csrf, "confirm": "1", "note": "my note"}
    bad = client.post(url, data={**form, "output": '{"title": "nope'})
    assert 400 == bad.status_code
    assert "not JSON" in bad.text
    assert "{&#34;title&#34;: &#34;nope" in bad.text
    rejected = client.post(url, data={**form, "output": '{"title": "T2", "ok": false}'})
    assert 409 == rejected.status_code
    assert "needs review" in rejected.text
    assert "{&#34;title&#34;: &#34;T2&#34;, &#34;ok&#34;: false}" in rejected.text
    assert 'value="my note"' in rejected.text
    assert "open" == app.handoffs.get(handoff.handoff_id).status
    page = client.post(url, data={**form, "output": '{"title": "T", "ok": true}'})
    assert 200 == page.status_code
    assert {"title": "T", "ok": True} == app.ledger.output(seeded.parked)


def test_reject_needs_a_reason_and_records_the_operator(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """Rejecting needs a reason, fails the run and names who rejected it."""
    app, seeded = seeded_app
    login(client)
    handoff = app.handoffs.list(status="open")[0]
    csrf = csrf_of(client, "/handoffs")
    url = f"/handoffs/{handoff.handoff_id}/reject"
    assert 400 == client.post(url, data={"reason": " ", "csrf": csrf}).status_code
    page = client.post(url, data={"reason": "off-topic", "csrf": csrf})
    assert "Hand-off rejected" in page.text
    assert RunStatus.FAILED == app.ledger.run(seeded.parked).status
    assert (OPERATOR, "off-topic") == (
        app.handoffs.get(handoff.handoff_id).decided_by,
        app.handoffs.get(handoff.handoff_id).note,
    )
    again = client.post(url, data={"reason": "again", "csrf": csrf})
    assert 409 == again.status_code
    assert 'value="again"' in again.text


def test_claims_show_who_is_on_a_handoff(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """An operator claims a hand-off; others see it and may take it over; the claimer releases."""
    from starlette.testclient import TestClient

    from tests.dashboard.conftest import dashboard

    app, _ = seeded_app
    handoff = app.handoffs.list(status="open")[0].handoff_id
    url = f"/handoffs/{handoff}/claim"
    login(client)
    csrf = csrf_of(client, "/handoffs")
    assert "Hand-off claimed" not in client.post(url, data={"csrf": csrf}).text
    assert "claimed by" in client.get("/handoffs").text
    assert OPERATOR == app.store.handoff_claims([handoff])[handoff].by
    other = dashboard(app, operators={OPERATOR: TOKEN, "bob": "bob-token-0123456789"})
    with TestClient(other, base_url=BASE_URL, headers=ORIGIN) as bob:
        login(bob, "bob-token-0123456789")
        bob_csrf = csrf_of(bob, "/handoffs")
        assert "Take over from" in bob.get("/handoffs").text
        assert 409 == bob.post(url, data={"csrf": bob_csrf}).status_code
        bob.post(url, data={"csrf": bob_csrf, "what": "take_over"})
    assert "bob" == app.store.handoff_claims([handoff])[handoff].by
    assert 409 == client.post(url, data={"csrf": csrf, "what": "release"}).status_code
    actions = [(who, what) for who, what, _ in _actions_of(app)]
    assert [(OPERATOR, "handoff_claim"), ("bob", "handoff_claim")] == actions


def test_acknowledge_an_alert_records_who_and_moves_it(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """An acknowledged drift alert leaves the open list; the ledger keeps who and the note."""
    app, _ = seeded_app
    record_drift(app, "d1")
    login(client)
    csrf = csrf_of(client, "/drift")
    page = client.post(
        "/alerts/d1/ack", data={"csrf": csrf, "note": "new prompt", "next": "/drift?state=open"}
    )
    assert "Alert acknowledged" in page.text
    assert "researcher" not in page.text.split("<main>")[1].split("</form>", 1)[1]
    ack = app.store.alert_acks(["d1"])["d1"]
    assert (OPERATOR, "new prompt") == (ack.by, ack.note)
    assert "new prompt" in client.get("/drift", params={"state": "acknowledged"}).text
    assert 409 == client.post("/alerts/d1/ack", data={"csrf": csrf}).status_code
    assert 404 == client.post("/alerts/nope/ack", data={"csrf": csrf}).status_code
    assert [(OPERATOR, "alert_ack", "d1")] == _actions_of(app)


def test_silence_mutes_matching_alerts_until_lifted(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """A silence hides the agent's drift alerts from the open list; lifting it shows them again."""
    app, _ = seeded_app
    login(client)
    csrf = csrf_of(client, "/drift")
    form = {"csrf": csrf, "kind": "drift", "agent": "researcher", "for": "4h", "note": "deploy"}
    assert 400 == client.post("/alerts/silence", data={**form, "for": "1y"}).status_code
    assert 400 == client.post("/alerts/silence", data={**form, "kind": "nope"}).status_code
    client.post("/alerts/silence", data=form)
    import time

    app.store.record_alert(
        AlertRecord("d2", "drift", "researcher", "decision", 0.3, 0.2, "w", "muted", time.time())
    )
    assert "muted" not in client.get("/drift").text
    assert "muted" in client.get("/drift", params={"state": "silenced"}).text
    (silence,) = app.store.list_silences()
    assert (OPERATOR, "deploy") == (silence.created_by, silence.note)
    client.post(f"/alerts/silences/{silence.silence_id}/lift", data={"csrf": csrf})
    assert "muted" in client.get("/drift").text
    assert (
        409
        == client.post(
            f"/alerts/silences/{silence.silence_id}/lift", data={"csrf": csrf}
        ).status_code
    )
    assert ["alert_silence", "alert_unsilence"] == [a for _, a, _ in _actions_of(app)]


def test_actions_that_run_agents_need_the_app(seeded_app: tuple[Seawall, Seeded]) -> None:
    """Without --app, replay and redrive explain they need it (409); breaker reset still works."""
    from starlette.testclient import TestClient

    from seawall.dashboard import create_app

    app, seeded = seeded_app
    app.breakers.open("agent:flaky", reason="test")
    web = create_app(app.store.url, operators={OPERATOR: TOKEN})
    with TestClient(web, base_url=BASE_URL, headers=ORIGIN) as reader:
        login(reader)
        csrf = csrf_of(reader, "/breakers")
        page = reader.post(
            f"/runs/{seeded.ok[0]}/replay", data={"mode": "live", "csrf": csrf, "confirm": "1"}
        )
        assert 409 == page.status_code
        assert "--app" in page.text
        entry = app.dlq.list()[0].entry_id
        preview = reader.post("/dlq/redrive", data={"entry": entry, "csrf": csrf})
        assert "needs your app" in preview.text
        assert (
            409
            == reader.post(
                "/dlq/redrive", data={"entry": entry, "csrf": csrf, "confirm": "1"}
            ).status_code
        )
        reset = reader.post(
            "/breakers/reset", data={"name": "agent:flaky", "csrf": csrf, "confirm": "1"}
        )
        assert 200 == reset.status_code
        assert "no app loaded" in reader.get("/").text


def test_logout_ends_the_session(client: TestClient) -> None:
    """After logging out, the login form shows and pages need a login again."""
    login(client)
    page = client.post("/logout", data={"csrf": csrf_of(client, "/breakers")})
    assert "Logged out" in page.text
    assert 303 == client.get("/", follow_redirects=False).status_code


@pytest.mark.parametrize("token", ["", "short"])
def test_short_tokens_are_refused(token: str) -> None:
    """create_app refuses an empty or short token."""
    pytest.importorskip("starlette")
    from seawall import ConfigurationError
    from seawall.dashboard import create_app

    with pytest.raises(ConfigurationError, match="at least 16"):
        create_app("sqlite:///:memory:", token=token)


def test_an_in_doubt_step_is_resolved_from_the_run_page(
    client: TestClient, seeded_app: tuple[Seawall, Seeded]
) -> None:
    """The run page asks whether the in-doubt call happened; the answer is recorded with the name."""
    from seawall import Context, InDoubtError, Retry

    app, _ = seeded_app
    sent: list[int] = []

    @app.tool(name="wire", mutating=True)
    def wire(amount: int) -> str:
        sent.append(amount)
        if len(sent) == 1:
            raise InDoubtError("the bank hung up mid-call")
        return "tx-again"

    @app.agent(name="payer", retry=Retry(attempts=1))
    def payer(ctx: Context) -> str:
        return str(ctx.call(wire, 5))

    run = app.run(payer)
    assert "in_doubt" == (run.failure_cause.value if run.failure_cause else None)
    login(client)
    page = client.get(f"/runs/{run.run_id}")
    assert 'id="in-doubt"' in page.text
    csrf = csrf_of(client, f"/runs/{run.run_id}")
    url = f"/runs/{run.run_id}/resolve"
    bad = client.post(url, data={"csrf": csrf, "step": "1", "decision": "happened", "result": "{"})
    assert 400 == bad.status_code
    answer = {"csrf": csrf, "step": "1", "decision": "happened", "result": '"tx-9"'}
    done = client.post(url, data={**answer, "note": "the bank says it is paid"})
    assert "Recorded" in done.text
    assert 'id="in-doubt"' not in done.text
    [resolution] = app.store.list_resolutions(run.run_id)
    assert (1, "happened", OPERATOR, "the bank says it is paid") == (
        resolution.seq,
        resolution.decision,
        resolution.decided_by,
        resolution.note,
    )
    assert (OPERATOR, "resolve_step", run.run_id) == _actions_of(app)[-1]
    again = client.post(url, data={"csrf": csrf, "step": "1", "decision": "did_not_happen"})
    assert 409 == again.status_code
    [outcome] = app.dlq.redrive(run_id=run.run_id)
    assert ("succeeded", [5]) == (outcome.status, sent)  # served as it happened: not sent again
    assert outcome.run_id is not None
    assert "tx-9" == app.ledger.output(outcome.run_id)
