"""The app's monitor: drift samples on the run path, evaluation and alerts off it.

When a run of a watched agent finishes, its sample (decision, size, tokens, cost, latency,
confidence, verification) is appended to an in-memory buffer: a few microseconds, no I/O.
Every ``DriftWatch.every`` samples, one daemon thread writes the buffer to the ledger in one
transaction, compares the agent's current window with its reference window from the ledger (so
every process's runs count), folds the result into the state the ledger keeps per agent (so a
sustained shift raises one alert for all processes) and delivers the alerts it raises. The same
thread records and delivers operational alerts (breaker openings, DLQ growth, hand-offs,
overdue runs), so a slow webhook never delays a run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from seawall import _payload
from seawall._failures import FailureCause, RunStatus
from seawall.errors import ConfigurationError, SeawallError
from seawall.ledger import AlertRecord, DeadLetterQuery, DriftSample
from seawall.observe.alerts import AlertRules, Alerts
from seawall.observe.drift import (
    Baseline,
    DriftWatch,
    FeatureStat,
    FeatureState,
    advance,
    compare,
    decision_of,
    describe_shift,
    prepare,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall._journal import Journal
    from seawall._payload import Blob
    from seawall._registry import AgentSpec
    from seawall._result import RunResult
    from seawall.ledger import HandOffRecord, Store
    from seawall.policies.breaker import BreakerState

logger = logging.getLogger("seawall.monitor")

WATCHES_KEY: Final = "drift:watches"
"""Alert-state key of the watches of every agent (so the CLI can evaluate without the app)."""
MAX_PINNED: Final = 100_000
"""Most samples read for a pinned reference period."""
FLUSH_AFTER: Final = 1.0
"""Seconds buffered samples wait at most before the heartbeat writes them."""


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


@dataclass(slots=True)
class _AgentBuffer:
    samples: list[_Finished] = field(default_factory=list)
    finished: int = 0
    oldest: float = 0.0


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
    from seawall.observe.drift import _utc  # noqa: PLC0415 - one formatter for both modules

    return f"{label} ({len(samples)} runs, {_utc(samples[0].at)} to {_utc(samples[-1].at)})"


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


class Monitor:
    """Drift detection and operational alerts of one app.

    Args:
        store: The ledger.
        alerts: The sinks.
        rules: Which operational conditions raise alerts.
    """

    def __init__(self, store: Store, alerts: Alerts, rules: AlertRules) -> None:
        if not isinstance(rules, AlertRules):
            raise ConfigurationError(f"Seawall(alert_rules={rules!r}) must be a seawall.AlertRules")
        self.store = store
        self.alerts = alerts
        self.rules = rules
        self.evaluations = 0
        self._buffers: defaultdict[str, _AgentBuffer] = defaultdict(_AgentBuffer)
        self._watches: dict[str, DriftWatch] = {}
        self._references = References()
        self._overdue: set[str] = set()
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._queued: set[str] = set()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- the run path ---------------------------------------------------------------------

    def finished(
        self,
        spec: AgentSpec,
        result: RunResult,
        journal: Journal,
        output_column: bytes | None,
        output_blobs: Sequence[Blob],
    ) -> None:
        """A run of ``spec`` reached its final status (called on the run path: no I/O)."""
        if result.status is RunStatus.FAILED and self.rules.dlq_growth is not None:
            self._submit(f"dlq:{spec.name}", lambda: self._check_dlq(spec.name))
        watch = spec.drift
        if watch is None or result.status not in _SAMPLED:
            return
        now = time.time()
        # The sample is built on the monitor thread: here only what it needs is kept.
        finished = _Finished(
            spec, result, now, journal.started, journal.confidence, output_column, output_blobs
        )
        with self._lock:
            buffer = self._buffers[spec.name]
            if not buffer.samples:
                buffer.oldest = now
            buffer.samples.append(finished)
            buffer.finished += 1
            due = buffer.finished % watch.every == 0
        if due:
            self._submit(f"drift:{spec.name}", lambda: self._evaluate(spec.name, watch))

    # -- operational alerts ---------------------------------------------------------------

    def breaker_opened(self, before: BreakerState, after: BreakerState, threshold: int) -> None:
        """A breaker went from closed to open."""
        if not self.rules.breaker_open:
            return
        kind, _, name = after.name.partition(":")
        how = "by hand" if after.manual else f"after {after.failures} consecutive failures"
        alert = AlertRecord(
            alert_id=uuid.uuid4().hex,
            kind="breaker_open",
            agent=name if kind == "agent" else None,
            feature=after.name,
            statistic=float(after.failures),
            threshold=float(threshold),
            window=f"consecutive failures since the breaker was {before.state}",
            message=(
                f"breaker {after.name} opened {how}: {after.reason or 'no reason recorded'}. "
                f"New {kind} {'runs' if kind == 'agent' else 'calls'} are refused until it "
                f"half-opens; `seawall breakers reset {after.name}` closes it"
            ),
            at=after.opened_at or time.time(),
            details={"reason": after.reason, "manual": after.manual},
        )
        self._submit(None, lambda: self._record(alert))

    def handoff_opened(self, handoff: HandOffRecord, agent: str | None) -> None:
        """A run was parked for a person."""
        if not self.rules.handoff_waiting:
            return
        self._submit(None, lambda: self._check_handoffs(handoff, agent))

    def beat(self, live: Sequence[tuple[str, Journal]]) -> None:
        """Heartbeat work: write samples that waited too long; report runs past their deadline."""
        now = time.time()
        with self._lock:
            stale = any(b.samples and now - b.oldest >= FLUSH_AFTER for b in self._buffers.values())
        if stale:
            self._submit("flush", self._write_samples)
        for run_id, journal in live:
            if run_id in self._overdue or journal.started <= 0:
                continue
            limit = journal.guards.deadline
            if limit is None:
                limit = self.rules.overdue_after
            if limit is None or now - journal.started <= limit:
                continue
            self._overdue.add(run_id)
            overdue = now - journal.started - limit
            self._submit(None, functools.partial(self._run_overdue, run_id, overdue, limit))
        self._overdue.intersection_update(run_id for run_id, _ in live)

    # -- evaluation (monitor thread) ------------------------------------------------------

    def evaluate(
        self, agent: str, watch: DriftWatch, *, record: bool = True, full: bool = True
    ) -> DriftReport:
        """Write buffered samples, then evaluate ``agent`` now (alerts delivered when recorded)."""
        self._write_samples()
        self._register(agent, watch)
        report = evaluate(
            self.store,
            agent,
            watch,
            record=record,
            reference_cache=self._references,
            full=full,
        )
        with self._lock:
            self.evaluations += 1
        for alert in report.alerts:
            self.alerts.deliver(alert)
        return report

    def _evaluate(self, agent: str, watch: DriftWatch) -> None:
        self.evaluate(agent, watch, full=False)

    def _register(self, agent: str, watch: DriftWatch) -> None:
        if self._watches.get(agent) == watch:
            return
        data = watch.to_dict()

        def change(state: Any) -> tuple[Any, list[AlertRecord]]:
            state = dict(state or {})
            state[agent] = data
            return state, []

        self.store.update_alert_state(WATCHES_KEY, change)
        if self._watches.get(agent) not in (None, watch):
            self._references.forget(agent)
        self._watches[agent] = watch

    def _write_samples(self) -> None:
        with self._lock:
            finished = [s for b in self._buffers.values() for s in b.samples]
            for buffer in self._buffers.values():
                buffer.samples = []
        self.store.add_drift_samples([_sample_of(f) for f in finished])

    def _record(self, alert: AlertRecord) -> None:
        self.store.record_alert(alert)
        self.alerts.deliver(alert)

    def _once_per_cooldown(self, key: str, alert: AlertRecord) -> None:
        cooldown = self.rules.cooldown

        def change(state: Any) -> tuple[Any, list[AlertRecord]]:
            last = (state or {}).get("last")
            if last is not None and alert.at - float(last) < cooldown:
                return state, []
            return {"last": alert.at}, [alert]

        for raised in self.store.update_alert_state(key, change):
            self.alerts.deliver(raised)

    def _check_dlq(self, agent: str) -> None:
        threshold = self.rules.dlq_growth
        if threshold is None:
            return
        now = time.time()
        period = self.rules.dlq_period
        entries = self.store.list_dead_letters(
            DeadLetterQuery(agent=agent, since=now - period, status=None, limit=threshold * 10)
        )
        if len(entries) < threshold:
            return
        self._once_per_cooldown(
            f"dlq_growth:{agent}",
            AlertRecord(
                alert_id=uuid.uuid4().hex,
                kind="dlq_growth",
                agent=agent,
                feature="dlq",
                statistic=float(len(entries)),
                threshold=float(threshold),
                window=f"runs that failed in the last {period:g} s",
                message=(
                    f"{len(entries)} runs of agent {agent!r} failed into the DLQ in the last "
                    f"{period:g} s (threshold {threshold}); `seawall dlq list --agent {agent}` "
                    "shows them, `seawall dlq redrive` re-runs them after a fix"
                ),
                at=now,
                details={"entries": [e.entry_id for e in entries[:20]]},
            ),
        )

    def _check_handoffs(self, handoff: HandOffRecord, agent: str | None) -> None:
        waiting = len(self.store.list_handoffs(status="open", limit=10_000))
        self._once_per_cooldown(
            f"handoff_waiting:{agent}",
            AlertRecord(
                alert_id=uuid.uuid4().hex,
                kind="handoff_waiting",
                agent=agent,
                feature="handoffs",
                statistic=float(waiting),
                threshold=1.0,
                window="hand-offs open now",
                message=(
                    f"run {handoff.run_id} of agent {agent!r} waits for a person "
                    f"({handoff.kind}: {handoff.reason[:200]}); {waiting} hand-off(s) open. "
                    f"`seawall handoffs show {handoff.handoff_id}` to decide"
                ),
                at=handoff.created_at,
                details={"handoff_id": handoff.handoff_id, "run_id": handoff.run_id},
            ),
        )

    def _run_overdue(self, run_id: str, overdue: float, limit: float) -> None:
        run = self.store.get_run(run_id)
        if run is None or run.status.final:
            return
        self._record(
            AlertRecord(
                alert_id=uuid.uuid4().hex,
                kind="run_overdue",
                agent=run.agent,
                feature=run_id,
                statistic=overdue,
                threshold=limit,
                window=f"since the run was submitted at {run.start_time:.3f}",
                message=(
                    f"run {run_id} of agent {run.agent!r} is still running {overdue:.1f} s past "
                    f"its {limit:g} s deadline; `seawall show {run_id}` shows where it is, "
                    f"`seawall cancel {run_id}` stops it"
                ),
                at=time.time(),
                details={"run_id": run_id, "attempts": run.attempts},
            )
        )

    # -- the monitor thread ---------------------------------------------------------------

    def _submit(self, key: str | None, job: Callable[[], None]) -> None:
        """Queue ``job`` for the monitor thread (one queued job per ``key`` at a time)."""
        with self._idle:
            if self._closed or (key is not None and key in self._queued):
                return
            if key is not None:
                self._queued.add(key)
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="seawall-monitor", daemon=True
                )
                self._thread.start()

        def run() -> None:
            if key is not None:
                with self._idle:
                    self._queued.discard(key)
            job()

        self._jobs.put(run)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except SeawallError:
                logger.warning("monitor work failed; it runs again later", exc_info=True)
            except Exception:
                logger.exception("monitor work failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until queued evaluations and deliveries are done, then write buffered samples.

        Returns:
            Whether the work finished within ``timeout`` seconds.
        """
        with self._idle:
            done = self._idle.wait_for(lambda: self._pending == 0, timeout)
        with contextlib.suppress(SeawallError):
            self._write_samples()
        return done

    def close(self) -> None:
        """Finish queued work and stop the monitor thread."""
        self.flush()
        with self._idle:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout=5)


class _Finished(NamedTuple):
    """What the run path keeps of a finished run of a watched agent (a tuple: cheapest)."""

    spec: AgentSpec
    result: RunResult
    at: float
    started: float
    confidence: float | None
    output_column: bytes | None
    output_blobs: Sequence[Blob]


def _sample_of(run: _Finished) -> DriftSample:
    """The drift sample of a finished run (on the monitor thread)."""
    spec, result = run.spec, run.result
    watch = spec.drift
    output = result.output
    succeeded = result.status is RunStatus.SUCCEEDED
    verified: bool | None = None
    if spec.verify or spec.min_confidence is not None:
        if succeeded:
            verified = True
        elif result.failure_cause is FailureCause.VERIFICATION_FAILED:
            verified = False
    return DriftSample(
        agent=spec.name,
        run_id=result.run_id,
        at=run.at,
        decision=decision_of(output, watch.decision)
        if succeeded and watch is not None and watch.decision is not None
        else None,
        output_bytes=_size(run.output_column, run.output_blobs) if succeeded else None,
        tokens=result.tokens_used,
        cost_usd=result.cost_usd,
        latency=run.at - run.started if run.started > 0 else None,
        confidence=run.confidence if run.confidence is not None else _confidence(output),
        verified=verified,
    )


_SAMPLED: Final = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.QUARANTINED})


def _size(column: bytes | None, blobs: Sequence[Blob]) -> int | None:
    """Bytes of an output's canonical JSON, from its stored column (no re-encoding)."""
    if column is None:
        return None
    ref = _payload.column_ref(column)
    if ref is None:
        return len(column) - 1
    for blob in blobs:
        if blob.hash == ref:
            return blob.size if blob.codec.startswith("json") else sum(b.size for b in blobs)
    return None


def _confidence(output: Any) -> float | None:
    value = output.get("confidence") if isinstance(output, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
