"""Drift evaluation from the ledger: the windows, their comparison, one alert per shift.

The samples of every process that runs a watched agent are in the ledger, and so is the state
of each agent's features (:class:`~seawall.observe.drift.FeatureState`), changed in one
transaction with the alerts it raises: of several processes judging the same window, one alerts.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from seawall.ledger import AlertRecord
from seawall.observe import semantic as meaning
from seawall.observe.drift import (
    Baseline,
    DriftWatch,
    FeatureStat,
    FeatureState,
    advance,
    compare,
    describe_shift,
    hold,
    prepare,
    utc,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from seawall.ledger import DriftEmbedding, DriftSample, Store
    from seawall.observe.semantic import SemanticStat, SemanticWatch

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
        semantic: How the meaning of the outputs compares (``None``: not watched).
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
    semantic: SemanticStat | None = None

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
            "semantic": None if self.semantic is None else self.semantic.to_dict(),
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
    if isinstance(watch.reference, tuple):
        since: float | None = watch.reference[1]
        complete = now >= watch.reference[1]
    else:
        since = reference[-1].at if reference else None
        complete = len(reference) >= watch.reference
    current = (
        _after(
            reference,
            since,
            watch.window,
            lambda limit: store.list_drift_samples(agent, newest=True, limit=limit, since=since),
        )
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
    semantic = (
        None
        if watch.semantic is None
        else _meaning(store, agent, watch, watch.semantic, now, reference_cache, full=full)
    )
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
            if semantic is not None and semantic.shifted is not None and semantic.shift is not None:
                sem = cast("SemanticWatch", watch.semantic)
                before = FeatureState.of(features.get("semantic"))
                after, alert = hold(
                    watch,
                    before,
                    shifted=semantic.shifted,
                    calm=semantic.shift < sem.min_shift / 2,
                    now=now,
                )
                features["semantic"] = asdict(after)
                if alert:
                    raised.append(_meaning_alert(agent, sem, semantic, ref_text, cur_text, now))
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
        semantic=semantic,
    )


class References:
    """Complete reference windows by agent, and their prepared baselines.

    A complete reference never changes, so it is read and prepared once; an agent's is
    forgotten when its watch changes.
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[DriftSample]] = {}
        self.baselines: dict[str, dict[str, Baseline]] = {}
        self.meanings: dict[tuple[str, str], meaning.Reference] = {}

    def forget(self, agent: str) -> None:
        """Drop what is kept for ``agent``."""
        self.samples.pop(agent, None)
        self.baselines.pop(agent, None)
        for key in [k for k in self.meanings if k[0] == agent]:
            del self.meanings[key]


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


def _after(
    reference: Sequence[Any],
    since: float | None,
    window: int,
    newest: Callable[[int], Sequence[Any]],
) -> list[Any]:
    """The current window: the newest ``window`` rows since ``since`` not in the reference.

    Reference rows that finished at the very instant the window starts are fetched too (by
    ``newest(limit)``), then left out.
    """
    ids = {r.run_id for r in reference}
    ties = sum(1 for r in reference if r.at == since)
    return [r for r in newest(window + ties) if r.run_id not in ids][-window:]


def _meaning(
    store: Store,
    agent: str,
    watch: DriftWatch,
    semantic: SemanticWatch,
    now: float,
    cache: References | None,
    *,
    full: bool,
) -> SemanticStat:
    """Compare the embeddings of the current window's outputs with the reference window's."""
    model = semantic.model
    key = (agent, model)
    prepared = None if cache is None else cache.meanings.get(key)
    found: Sequence[DriftEmbedding]
    if prepared is not None:
        found = prepared.embeddings
        complete = True
    elif isinstance(watch.reference, tuple):
        start, end = watch.reference
        found = store.list_drift_embeddings(
            agent, model=model, newest=False, limit=MAX_PINNED, since=start, until=end
        )
        complete = now >= end
    else:
        found = store.list_drift_embeddings(agent, model=model, newest=False, limit=watch.reference)
        complete = len(found) >= watch.reference
    if not complete or not found:
        return meaning.compare(semantic, None, found, min_samples=watch.min_samples)
    if prepared is None:
        prepared = meaning.Reference.of(found)
        if cache is not None:
            cache.meanings[key] = prepared
    since = watch.reference[1] if isinstance(watch.reference, tuple) else found[-1].at
    current = _after(
        found,
        since,
        watch.window,
        lambda limit: store.list_drift_embeddings(
            agent, model=model, newest=True, limit=limit, since=since
        ),
    )
    return meaning.compare(
        semantic, prepared, current, min_samples=watch.min_samples, p_values=full
    )


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
        window=_windows(reference, current),
        message=(
            f"agent {agent!r} drifted: {describe_shift(stat)}. " + _advice(agent, "every feature")
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


def _meaning_alert(
    agent: str,
    semantic: SemanticWatch,
    stat: SemanticStat,
    reference: str,
    current: str,
    now: float,
) -> AlertRecord:
    typical = "" if stat.typical is None else f" Typically it said {_quote(stat.typical.text)};"
    shifted = f" now it says {_quote(stat.most_shifted[0].text)}." if stat.most_shifted else ""
    return AlertRecord(
        alert_id=uuid.uuid4().hex,
        kind="drift",
        agent=agent,
        feature="semantic",
        statistic=stat.shift,
        threshold=semantic.min_shift,
        window=_windows(reference, current),
        message=(
            f"agent {agent!r} drifted: {stat.describe()}.{typical}{shifted} "
            + _advice(agent, "the evidence")
        ),
        at=now,
        details={**stat.to_dict(), "alpha": semantic.alpha, "min_shift": semantic.min_shift},
    )


def _windows(reference: str, current: str) -> str:
    """The two windows a drift alert compares, described."""
    return f"reference: {reference}; current: {current}"


def _advice(agent: str, shows: str) -> str:
    """What a drift alert advises, ending with the command that ``shows`` more."""
    return (
        "Check recent changes to its model, prompt or inputs; "
        f"`seawall drift --agent {agent}` shows {shows}"
    )


def _quote(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def watches_in(store: Store) -> dict[str, dict[str, Any]]:
    """The watches (JSON form) recorded in the ledger by apps that watch agents, by agent."""
    found: dict[str, dict[str, Any]] = store.alert_state(WATCHES_KEY) or {}
    return found
