"""Drift detection: statistics, hysteresis and evaluation from the ledger, fed directly."""

from __future__ import annotations

import builtins
import random
from collections.abc import Iterator
from typing import Any

import pytest

from seawall import ConfigurationError, DriftWatch, MissingExtraError
from seawall.ledger import DriftSample, SQLiteStore
from seawall.observe.drift import (
    FeatureStat,
    FeatureState,
    advance,
    compare_feature,
    decision_of,
    psi_of,
)
from seawall.observe.evaluation import References, evaluate


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    instance = SQLiteStore(":memory:")
    try:
        yield instance
    finally:
        instance.close()


def sample(i: int, rng: random.Random, *, minority: float, agent: str = "triage") -> DriftSample:
    """One synthetic run: a 2-way decision plus stable numeric features."""
    return DriftSample(
        agent=agent,
        run_id=f"run-{i:06d}",
        at=1_000_000.0 + i,
        decision="escalate" if rng.random() < minority else "resolve",
        output_bytes=int(rng.gauss(500, 50)),
        tokens=int(rng.gauss(1200, 150)),
        cost_usd=rng.lognormvariate(-6, 0.3),
        latency=rng.lognormvariate(0, 0.5),
        confidence=min(1.0, rng.gauss(0.85, 0.05)),
        verified=rng.random() < 0.95,
    )


def feed(
    store: SQLiteStore, watch: DriftWatch, samples: list[DriftSample]
) -> list[tuple[int, Any]]:
    """Write samples one by one and evaluate every ``watch.every``; return (run index, alert)."""
    raised = []
    cache = References()
    for index, item in enumerate(samples, start=1):
        store.add_drift_samples([item])
        if index % watch.every == 0:
            report = evaluate(
                store,
                item.agent,
                watch,
                record=True,
                now=item.at,
                reference_cache=cache,
                full=False,
            )
            raised.extend((index, alert) for alert in report.alerts)
    return raised


def test_decision_mix_change_raises_exactly_one_alert_within_100_runs(store: SQLiteStore) -> None:
    """90/10 -> 50/50 at run 500: one alert, on the decision, within 100 runs, none before."""
    rng = random.Random(7)
    samples = [sample(i, rng, minority=0.1 if i < 500 else 0.5) for i in range(700)]
    raised = feed(store, DriftWatch(decision="action"), samples)
    assert 1 == len(raised)
    index, alert = raised[0]
    assert 500 < index <= 600
    assert "drift" == alert.kind
    assert "decision" == alert.feature
    assert "triage" == alert.agent
    assert alert.statistic >= alert.threshold
    assert alert.details["p_value"] < 1e-5
    assert "first 300 runs" in alert.window
    assert [alert.alert_id] == [a.alert_id for a in store.list_alerts(kind="drift")]


def test_stable_stream_of_5000_runs_raises_no_alert(store: SQLiteStore) -> None:
    """Default settings, every feature watched, 5,000 runs from one distribution: no alert."""
    rng = random.Random(11)
    samples = [sample(i, rng, minority=0.1) for i in range(5000)]
    assert [] == feed(store, DriftWatch(decision="action"), samples)
    assert [] == store.list_alerts()


def test_small_windows_are_not_judged() -> None:
    """Below min_samples a feature is 'too few runs', whatever its values."""
    watch = DriftWatch(decision="action", min_samples=50)
    stat = compare_feature(watch, "decision", ["a"] * 49, ["b"] * 49)
    assert stat.shifted is None
    assert stat.psi is None
    assert (FeatureState(), False) == advance(watch, FeatureState(), stat, 0.0)


def test_numeric_shift_is_found_by_ks_and_psi() -> None:
    """Latency tripling is a shift; the same distribution is not."""
    rng = random.Random(3)
    watch = DriftWatch()
    ref = [rng.lognormvariate(0, 0.3) for _ in range(300)]
    same = [rng.lognormvariate(0, 0.3) for _ in range(100)]
    slow = [3 * rng.lognormvariate(0, 0.3) for _ in range(100)]
    assert compare_feature(watch, "latency", ref, slow).shifted is True
    calm = compare_feature(watch, "latency", ref, same)
    assert calm.shifted is False
    assert "ks" == calm.test
    assert {"p10", "p50", "p90", "mean"} == set(calm.reference)


def stat(psi: float, *, shifted: bool) -> FeatureStat:
    return FeatureStat("decision", "categorical", "chi2", psi, 0.0, 300, 100, shifted, {}, {})


def test_hysteresis_confirms_holds_recovers_and_cools_down() -> None:
    """Alert on the 2nd shifted evaluation only; stay quiet while shifted; re-alert after cooldown."""
    watch = DriftWatch(decision="action", confirm=2, cooldown=100.0)
    state, alert = advance(watch, FeatureState(), stat(0.5, shifted=True), 0.0)
    assert not alert
    state, alert = advance(watch, state, stat(0.5, shifted=True), 1.0)
    assert alert
    for t in range(2, 50):
        state, alert = advance(watch, state, stat(0.5, shifted=True), float(t))
        assert not alert
    state, _ = advance(watch, state, stat(0.15, shifted=False), 50.0)
    assert state.shifted  # between psi/2 and psi: not recovered
    state, _ = advance(watch, state, stat(0.01, shifted=False), 51.0)
    state, _ = advance(watch, state, stat(0.01, shifted=False), 52.0)
    assert not state.shifted
    state, _ = advance(watch, state, stat(0.5, shifted=True), 60.0)
    state, alert = advance(watch, state, stat(0.5, shifted=True), 61.0)
    assert not alert  # within the cooldown of the alert at t=1
    state, alert = advance(watch, state, stat(0.5, shifted=True), 101.0)
    assert alert


def test_psi_of_identical_histograms_is_zero_and_grows_with_the_shift() -> None:
    """PSI is 0 for the same shares and large for 90/10 against 50/50."""
    assert 0.0 == pytest.approx(psi_of([90, 10], [90, 10]))
    assert psi_of([90, 10], [50, 50]) > 0.8
    assert psi_of([90, 10], [50, 50]) > psi_of([90, 10], [80, 20])


def test_psi_method_needs_no_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SciPy, method='test' names the extra; method='psi' works."""
    real_import = builtins.__import__

    def no_scipy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError("No module named 'scipy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(MissingExtraError, match=r"seawall\[drift\]") as caught:
        DriftWatch(decision="action")
    assert isinstance(caught.value, ImportError)
    watch = DriftWatch(decision="action", method="psi")
    shifted = compare_feature(watch, "decision", ["a"] * 270 + ["b"] * 30, ["a", "b"] * 50)
    assert shifted.shifted is True
    assert shifted.p_value is None
    assert "psi" == shifted.test


def test_decision_is_read_from_a_dotted_path() -> None:
    """Nested fields, non-string values and missing fields."""
    assert "approve" == decision_of({"review": {"verdict": "approve"}}, "review.verdict")
    assert "true" == decision_of({"ok": True}, "ok")
    assert decision_of({"other": 1}, "action") is None
    assert decision_of("plain text", "action") is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"decision": ""}, "must name an output field"),
        ({"features": ("colour",)}, "unknown features"),
        ({"window": 1}, "window"),
        ({"reference": (5.0, 1.0)}, "pinned period"),
        ({"method": "bayes"}, "method"),
        ({"alpha": 2}, "alpha"),
        ({"psi": 0}, "psi"),
    ],
)
def test_watch_options_are_validated(options: dict[str, Any], message: str) -> None:
    """Bad options fail at construction with what to fix."""
    with pytest.raises(ConfigurationError, match=message):
        DriftWatch(**options)


def test_pinned_reference_period(store: SQLiteStore) -> None:
    """A pinned period is the reference; runs after it are the current window."""
    rng = random.Random(5)
    samples = [sample(i, rng, minority=0.1 if i < 400 else 0.6) for i in range(600)]
    store.add_drift_samples(samples)
    watch = DriftWatch(decision="action", reference=(1_000_000.0, 1_000_300.0), features=())
    report = evaluate(store, "triage", watch, record=False, now=1_000_600.0)
    assert 300 == report.reference_n
    assert 100 == report.current_n
    assert report.stats[0].shifted is True
    assert "pinned period" in report.reference
    assert () == report.alerts


def test_watch_round_trips_through_its_json_form() -> None:
    """The form kept in the ledger rebuilds the same watch."""
    watch = DriftWatch(decision="a.b", features=("latency",), reference=(1.0, 2.0), every=5)
    assert watch == DriftWatch.from_dict(watch.to_dict())
