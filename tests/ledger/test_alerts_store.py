"""The alert store: alerts, keyed alert state and drift samples, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from seawall.ledger import AlertRecord, DriftSample, Store, open_store

LEDGERS = ("sqlite", "postgres")


def alert(alert_id: str, *, kind: str = "drift", agent: str | None = "a", at: float = 1.0):
    return AlertRecord(
        alert_id=alert_id,
        kind=kind,
        agent=agent,
        feature="decision",
        statistic=0.5,
        threshold=0.2,
        window="w",
        message="m",
        at=at,
        details={"psi": 0.5, "reference": {"x": 0.9}},
    )


def test_alerts_round_trip_and_filter(store: Store) -> None:
    """Every field comes back; filters combine; newest first; limit applies."""
    store.record_alert(alert("1", at=1.0))
    store.record_alert(alert("2", kind="breaker_open", agent=None, at=2.0))
    store.record_alert(alert("3", agent="b", at=3.0))
    assert ["3", "2", "1"] == [a.alert_id for a in store.list_alerts()]
    assert alert("1", at=1.0) == store.list_alerts(agent="a")[0]
    assert ["2"] == [a.alert_id for a in store.list_alerts(kind="breaker_open")]
    assert ["3", "2"] == [a.alert_id for a in store.list_alerts(since=2.0)]
    assert ["3"] == [a.alert_id for a in store.list_alerts(limit=1)]
    assert [] == store.list_alerts(agent="a", kind="breaker_open")


def test_alert_state_change_and_its_alerts_are_one_transaction(store: Store) -> None:
    """A change that raises is all or nothing; state persists as JSON."""
    assert store.alert_state("k") is None
    raised = store.update_alert_state("k", lambda state: ({"n": 1}, [alert("x")]))
    assert ["x"] == [a.alert_id for a in raised]
    assert {"n": 1} == store.alert_state("k")

    def boom(state: dict) -> tuple[dict, list[AlertRecord]]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.update_alert_state("k", boom)
    assert {"n": 1} == store.alert_state("k")
    assert ["x"] == [a.alert_id for a in store.list_alerts()]


def test_concurrent_state_changes_raise_one_alert(ledger_url: str) -> None:
    """Two stores (as two processes) racing on one key: exactly one alert."""
    stores = [open_store(ledger_url), open_store(ledger_url)]

    def once(state: dict | None) -> tuple[dict, list[AlertRecord]]:
        if state:
            return state, []
        return {"raised": True}, [alert(f"from-{threading.get_ident()}")]

    threads = [
        threading.Thread(target=s.update_alert_state, args=("dlq_growth:a", once)) for s in stores
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert 1 == len(stores[0].list_alerts())
    finally:
        for s in stores:
            s.close()


def sample(i: int, at: float, agent: str = "a") -> DriftSample:
    return DriftSample(agent, f"r{i:03d}", at, "yes", 10, 5, 0.1, 1.5, None, i % 2 == 0)


def test_drift_samples_first_last_and_periods(store: Store) -> None:
    """First N, last N and a period come back in finishing order; a resample is ignored."""
    store.add_drift_samples([sample(i, float(i)) for i in range(10)])
    store.add_drift_samples([sample(0, 99.0)])  # same run again: kept as it was
    store.add_drift_samples([sample(0, 0.0, agent="b")])
    assert ["r000", "r001", "r002"] == [
        s.run_id for s in store.list_drift_samples("a", newest=False, limit=3)
    ]
    assert ["r007", "r008", "r009"] == [
        s.run_id for s in store.list_drift_samples("a", newest=True, limit=3)
    ]
    assert ["r002", "r003"] == [
        s.run_id for s in store.list_drift_samples("a", newest=False, limit=9, since=2, until=4)
    ]
    assert sample(3, 3.0) == store.list_drift_samples("a", newest=False, limit=1, since=3)[0]
    assert 10 == store.count_drift_samples("a")
    assert 1 == store.count_drift_samples("b")
