"""End to end through the app: drift alerts, operational alerts, sinks, the CLI."""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from seawall import (
    AlertRecord,
    AlertRules,
    ConfigurationError,
    DriftWatch,
    Guards,
    Retry,
    Seawall,
    verify,
)
from seawall.cli import cli
from seawall.testing import no_waits

runner = CliRunner()
LEDGERS = ("sqlite", "postgres")


@pytest.fixture
def received() -> list[AlertRecord]:
    return []


@pytest.fixture
def watched(ledger_url: str, received: list[AlertRecord]) -> Iterator[Seawall]:
    with no_waits():
        app = Seawall(ledger_url, alerts=[received.append])
        try:
            yield app
        finally:
            app.close()


def test_decision_shift_through_the_app_raises_one_alert(
    watched: Seawall, received: list[AlertRecord], ledger_url: str
) -> None:
    """90/10 -> 50/50 at run 200: one drift alert within 100 runs, in the ledger and the sink."""
    rng = random.Random(1)
    minority = {"share": 0.1}

    @watched.agent(
        name="triage",
        drift=DriftWatch(decision="action", features=(), reference=100, window=50, min_samples=30),
    )
    def triage(ctx, ticket: int) -> dict:
        return {"action": "escalate" if rng.random() < minority["share"] else "resolve"}

    alerted_at = None
    for i in range(300):
        if i == 200:
            minority["share"] = 0.5
        assert watched.run(triage, ticket=i).ok
        watched.runtime.monitor.flush()  # make each evaluation finish before the next run
        if received and alerted_at is None:
            alerted_at = i + 1
    assert alerted_at is not None
    assert 200 < alerted_at <= 300
    assert 1 == len(received)
    [stored] = watched.ledger.alerts(kind="drift")
    assert received[0] == stored
    assert ("triage", "decision") == (stored.agent, stored.feature)
    report = watched.ledger.drift_report("triage")
    assert ("decision",) == report.shifted
    assert report.stats[0].p_value is not None

    result = runner.invoke(cli, ["drift", "--json", "--ledger", ledger_url])
    assert 0 == result.exit_code, result.output
    body = json.loads(result.output)
    assert ["triage"] == [a["agent"] for a in body["agents"]]
    assert ["decision"] == body["agents"][0]["shifted"]
    assert [stored.alert_id] == [a["alert_id"] for a in body["alerts"]]
    human = runner.invoke(cli, ["drift", "--agent", "triage", "--ledger", ledger_url])
    assert 0 == human.exit_code, human.output
    assert "alerted" in human.output
    assert "[resolve" in human.output  # the message's brackets are not taken for markup


def test_drift_cli_without_watched_agents(ledger_url: str) -> None:
    """An empty ledger: no agents, no alerts; an unknown agent is explained."""
    Seawall(ledger_url).close()
    result = runner.invoke(cli, ["drift", "--json", "--ledger", ledger_url])
    assert 0 == result.exit_code, result.output
    assert {"agents": [], "alerts": []} == json.loads(result.output)
    result = runner.invoke(cli, ["drift", "--agent", "nobody", "--ledger", ledger_url])
    assert "not watched" in result.output
    assert 0 != runner.invoke(cli, ["drift", "--kind", "weird", "--ledger", ledger_url]).exit_code


def test_breaker_opening_raises_one_alert(watched: Seawall, received: list[AlertRecord]) -> None:
    """Three failed runs open the agent's breaker: one breaker_open alert, however many refusals."""

    @watched.agent(name="flaky", retry=Retry(attempts=1))
    def flaky(ctx) -> None:
        raise ValueError("upstream is down")

    for _ in range(6):
        watched.run(flaky)
    watched.runtime.monitor.flush()
    [alert] = watched.ledger.alerts(kind="breaker_open")
    assert ("flaky", "agent:flaky", 3.0) == (alert.agent, alert.feature, alert.threshold)
    assert "upstream is down" in alert.message
    assert [alert] == [a for a in received if a.kind == "breaker_open"]


def test_dlq_growth_raises_one_alert_per_cooldown(ledger_url: str) -> None:
    """Failures past the DLQ threshold alert once within the cooldown."""
    with no_waits(), Seawall(ledger_url, alert_rules=AlertRules(dlq_growth=2)) as app:

        @app.agent(name="broken", retry=Retry(attempts=1), breaker=False)
        def broken(ctx) -> None:
            raise ValueError("bad")

        for _ in range(5):
            app.run(broken)
            app.runtime.monitor.flush()
        [alert] = app.ledger.alerts(kind="dlq_growth")
        assert ("broken", 2.0) == (alert.agent, alert.threshold)
        assert alert.statistic >= 2


def test_handoff_raises_an_alert(watched: Seawall, received: list[AlertRecord]) -> None:
    """An output parked for a person raises handoff_waiting."""

    @watched.agent(
        name="writer",
        verify=verify.rule(lambda out: out == "good", "must be good"),
        on_drift="handoff",
    )
    def writer(ctx) -> str:
        return "bad"

    result = watched.run(writer)
    assert "awaiting_human" == result.status.value
    [alert] = watched.ledger.alerts(kind="handoff_waiting")
    assert "writer" == alert.agent
    assert result.run_id == alert.details["run_id"]


def test_handoff_alert_counts_every_open_handoff(
    watched: Seawall, received: list[AlertRecord]
) -> None:
    """The alert says how many hand-offs are open, every agent's, however many (no cap)."""
    from seawall import HandOffRecord

    @watched.agent(name="seed")
    def seed(ctx) -> str:
        return "run of the parked hand-offs"

    parked = watched.run(seed).run_id
    store = watched.store
    epoch = (store.get_run(parked) or pytest.fail("no run")).epoch
    many = 10_001

    def opening(i: int) -> Callable[[], None]:
        record = HandOffRecord(
            handoff_id=f"parked{i:05d}",
            run_id=parked,
            kind="low_confidence",
            reason="check it",
            subject={"i": i},
            status="open",
            created_at=1.0 + i,
        )
        return functools.partial(store.open_handoff, record, epoch=epoch)

    for start in range(0, many, 2_000):
        store.together([opening(i) for i in range(start, min(many, start + 2_000))])
    store.decide_handoff("parked00000", decision="approved", decided_by="ada", note=None, at=2.0)

    @watched.agent(
        name="writer", verify=verify.rule(lambda out: False, "never"), on_drift="handoff"
    )
    def writer(ctx) -> str:
        return "bad"

    assert "awaiting_human" == watched.run(writer).status.value
    watched.runtime.monitor.flush()
    [alert] = watched.ledger.alerts(kind="handoff_waiting")
    assert float(many) == alert.statistic  # 10,000 parked still open, and the writer's
    assert f"{many} hand-off(s) open" in alert.message
    assert [alert.alert_id] == [a.alert_id for a in received if a.kind == "handoff_waiting"]


def test_run_past_its_deadline_raises_an_alert(ledger_url: str) -> None:
    """A run still going after its Guards deadline is reported by the heartbeat, once."""
    got: list[AlertRecord] = []
    with no_waits(), Seawall(ledger_url, lease=0.3, alerts=[got.append]) as app:

        @app.agent(name="slow", guards=Guards(deadline=0.1))
        def slow(ctx) -> str:
            time.sleep(1.0)
            return "late"

        assert app.run(slow).ok
        app.runtime.monitor.flush()
        [alert] = app.ledger.alerts(kind="run_overdue")
        assert "slow" == alert.agent
        assert 0.1 == alert.threshold
        assert [alert] == got


def test_failing_sink_never_breaks_a_run(ledger_url: str) -> None:
    """A sink that raises is counted; the run and the ledger record are unaffected."""

    def pager(_: AlertRecord) -> None:
        raise RuntimeError("pager down")

    with no_waits(), Seawall(ledger_url, alerts=[pager]) as app:

        @app.agent(name="writer", verify=verify.rule(lambda out: False, "no"), on_drift="handoff")
        def writer(ctx) -> str:
            return "x"

        result = app.run(writer)
        app.runtime.monitor.flush()
        assert "awaiting_human" == result.status.value
        assert 1 == len(app.ledger.alerts(kind="handoff_waiting"))
        assert 1 == sum(app.runtime.monitor.alerts.failures.values())


def test_drift_report_needs_a_watch(watched: Seawall) -> None:
    """Asking for the drift of an unwatched agent says how to watch it."""

    @watched.agent(name="plain")
    def plain(ctx) -> int:
        return 1

    with pytest.raises(ConfigurationError, match="DriftWatch"):
        watched.ledger.drift_report("plain")


def test_samples_carry_the_runs_features(watched: Seawall) -> None:
    """Size, tokens, cost, latency, confidence, verification and decision reach the ledger."""

    @watched.agent(
        name="scorer",
        drift=DriftWatch(decision="label", method="psi"),
        verify=verify.rule(lambda out: "label" in out, "needs a label"),
    )
    def scorer(ctx) -> dict:
        ctx.record_usage(model="m", input_tokens=10, output_tokens=5, cost_usd=0.01)
        return {"label": "spam", "confidence": 0.9}

    watched.run(scorer)
    watched.runtime.monitor.flush()
    [s] = watched.store.list_drift_samples("scorer", newest=True, limit=10)
    assert ("spam", 15, 0.01, 0.9, True) == (
        s.decision,
        s.tokens,
        s.cost_usd,
        s.confidence,
        s.verified,
    )
    assert len('{"confidence":0.9,"label":"spam"}') == s.output_bytes
    assert s.latency is not None
    assert s.latency >= 0
