"""Drift evaluation from the ledger: the windows, their comparison, one alert per shift.

The samples of every process that runs a watched agent are in the ledger, and so is the state
of each agent's features (:class:`~seawall.observe.drift.FeatureState`), changed in one
transaction with the alerts it raises: of several processes judging the same window, one alerts.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from seawall.ledger import AlertRecord
from seawall.observe.drift import (
    Baseline,
    DriftWatch,
    FeatureStat,
    FeatureState,
    advance,
    compare,
    describe_shift,
    prepare,
    utc,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger import DriftSample, Store

WATCHES_KEY: Final = "drift:watches"
"""Alert-state key of the watches of every agent (so the CLI can evaluate without the app)."""
MAX_PINNED: Final = 100_000
"""Most samples read for a pinned reference period."""


def drift_key(agent: str) -> str:
    """Alert-state key of one agent's drift state."""
    return f"drift:{agent}"


@dataclass(frozen=True, slots=True)
class DriftReport:
    """One evaluation of an agent's drift.

    Attributes:
        agent: The agent.
        watch: What is watched.
        samples: Samples of the agent in the ledger.
        reference_n: Runs in the reference window.
        current_n: Runs in the current window.
        reference: The reference window in words.
        current: The current window in words.
        stats: One comparison per watched feature.
        shifted: Features currently alerted and not recovered.
        at: When it was evaluated.
        alerts: Alerts this evaluation raised.
    """

    agent: str
    watch: DriftWatch
    samples: int
    reference_n: int
    current_n: int
    reference: str
    current: str
    stats: tuple[FeatureStat, ...]
    shifted: tuple[str, ...]
    at: float
    alerts: tuple[AlertRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "agent": self.agent,
            "watch": self.watch.to_dict(),
            "samples": self.samples,
            "reference": {"runs": self.reference_n, "window": self.reference},
            "current": {"runs": self.current_n, "window": self.current},
            "stats": [s.to_dict() for s in self.stats],
            "shifted": list(self.shifted),
            "at": self.at,
            "alerts": [a.alert_id for a in self.alerts],
        }


def evaluate(  # noqa: C901 - windows, comparison, state: one evaluation read top-down
    store: Store,
    agent: str,
    watch: DriftWatch,
    *,
    record: bool,
    now: float | None = None,
    reference_cache: References | None = None,
    full: bool = True,
) -> DriftReport:
    """Compare an agent's current window with its reference window, from the ledger.

    Args:
        store: The ledger.
        agent: The agent.
        watch: What to compare and how.
        record: Fold the result into the agent's state in the ledger and record the alerts it
            raises (``False``: only look).
        now: The evaluation time (default: now).
        reference_cache: Complete reference windows by agent, reused between evaluations.
        full: A full report: every test's p-value, the features alerted, the sample count.
            ``False`` (the monitor's own evaluations) runs a test only where the PSI could
            make a shift, and leaves ``shifted`` empty and ``samples`` at -1.

    Returns:
        The statistics, and the alerts raised when ``record``.
    """
    now = time.time() if now is None else now
    reference = _reference(store, agent, watch, now, reference_cache)
    ref_ids = {s.run_id for s in reference}
    if isinstance(watch.reference, tuple):
        since: float | None = watch.reference[1]
        complete = now >= watch.reference[1]
    else:
        since = reference[-1].at if reference else None
        complete = len(reference) >= watch.reference
    # Reference runs that finished at the very instant the current window starts are fetched
    # too, then left out.
    ties = sum(1 for s in reference if s.at == since)
    current = (
        [
            s
            for s in store.list_drift_samples(
                agent, newest=True, limit=watch.window + ties, since=since
            )
            if s.run_id not in ref_ids
        ][-watch.window :]
        if complete
        else []
    )
    stats: tuple[FeatureStat, ...] = ()
    if complete:
        baselines = None if reference_cache is None else reference_cache.baselines.get(agent)
        if baselines is None:
            baselines = prepare(watch, reference)
            if reference_cache is not None and agent in reference_cache.samples:
                reference_cache.baselines[agent] = baselines
        stats = tuple(compare(watch, baselines, current, p_values=full))
    alerts: tuple[AlertRecord, ...] = ()
    ref_text = _describe(watch.describe_reference(), reference)
    cur_text = _describe(f"the last {watch.window} runs", current)
    if record and current:
        through = [current[-1].at, current[-1].run_id]

        def change(state: Any) -> tuple[Any, list[AlertRecord]]:
            state = dict(state or {})
            seen = state.get("through")
            if seen is not None and list(seen) >= through:
                return state, []  # another process already judged this window (or a newer one)
            features = dict(state.get("features") or {})
            raised: list[AlertRecord] = []
            for stat in stats:
                before = FeatureState.of(features.get(stat.feature))
                after, alert = advance(watch, before, stat, now)
                features[stat.feature] = asdict(after)
                if alert:
                    raised.append(_drift_alert(agent, watch, stat, ref_text, cur_text, now))
            if features == state.get("features"):
                return state, raised  # nothing moved: the store need not write
            state.update(features=features, through=through)
            return state, raised

        alerts = tuple(store.update_alert_state(drift_key(agent), change))
    shifted: tuple[str, ...] = ()
    if full:
        state = store.alert_state(drift_key(agent)) or {}
        shifted = tuple(
            name
            for name, data in sorted((state.get("features") or {}).items())
            if FeatureState.of(data).shifted
        )
    return DriftReport(
        agent=agent,
        watch=watch,
        samples=store.count_drift_samples(agent) if full else -1,
        reference_n=len(reference),
        current_n=len(current),
        reference=ref_text,
        current=cur_text,
        stats=stats,
        shifted=shifted,
        at=now,
        alerts=alerts,
    )


class References:
    """Complete reference windows by agent, and their prepared baselines.

    A complete reference never changes, so it is read and prepared once; an agent's is
    forgotten when its watch changes.
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[DriftSample]] = {}
        self.baselines: dict[str, dict[str, Baseline]] = {}

    def forget(self, agent: str) -> None:
        """Drop what is kept for ``agent``."""
        self.samples.pop(agent, None)
        self.baselines.pop(agent, None)


def _reference(
    store: Store,
    agent: str,
    watch: DriftWatch,
    now: float,
    cache: References | None,
) -> list[DriftSample]:
    if cache is not None and agent in cache.samples:
        return cache.samples[agent]
    if isinstance(watch.reference, tuple):
        start, end = watch.reference
        found = store.list_drift_samples(
            agent, newest=False, limit=MAX_PINNED, since=start, until=end
        )
        complete = now >= end
    else:
        found = store.list_drift_samples(agent, newest=False, limit=watch.reference)
        complete = len(found) >= watch.reference
    if complete and cache is not None:
        cache.samples[agent] = found
    return found


def _describe(label: str, samples: Sequence[DriftSample]) -> str:
    if not samples:
        return f"{label} (none yet)"
    return f"{label} ({len(samples)} runs, {utc(samples[0].at)} to {utc(samples[-1].at)})"


def _drift_alert(
    agent: str, watch: DriftWatch, stat: FeatureStat, reference: str, current: str, now: float
) -> AlertRecord:
    return AlertRecord(
        alert_id=uuid.uuid4().hex,
        kind="drift",
        agent=agent,
        feature=stat.feature,
        statistic=stat.psi,
        threshold=watch.psi,
        window=f"reference: {reference}; current: {current}",
        message=(
            f"agent {agent!r} drifted: {describe_shift(stat)}. Check recent changes to its "
            f"model, prompt or inputs; `seawall drift --agent {agent}` shows every feature"
        ),
        at=now,
        details={
            "test": stat.test,
            "p_value": stat.p_value,
            "alpha": watch.alpha if watch.method == "test" else None,
            "psi": stat.psi,
            "reference": stat.reference,
            "current": stat.current,
            "reference_n": stat.reference_n,
            "current_n": stat.current_n,
        },
    )


def watches_in(store: Store) -> dict[str, dict[str, Any]]:
    """The watches (JSON form) recorded in the ledger by apps that watch agents, by agent."""
    found: dict[str, dict[str, Any]] = store.alert_state(WATCHES_KEY) or {}
    return found
