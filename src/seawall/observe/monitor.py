"""The app's monitor: drift samples on the run path, evaluation and alerts off it.

When a run of a watched agent finishes, its sample (decision, size, tokens, cost, latency,
confidence, verification) is appended to an in-memory buffer: a few microseconds, no I/O.
Every ``DriftWatch.every`` samples, one daemon thread writes the buffer to the ledger in one
transaction (and, for agents watched for meaning, embeds their outputs in one batch per
embedder and writes the quantised embeddings: no model runs on a run's path), compares the
agent's current window with its reference window from the ledger (so every process's runs
count), folds the result into the state the ledger keeps per agent (so a sustained shift raises
one alert for all processes) and delivers the alerts it raises. The same thread records and
delivers operational alerts (breaker openings, DLQ growth, hand-offs, overdue runs), so a slow
webhook never delays a run.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from seawall import _payload
from seawall._failures import FailureCause, RunStatus
from seawall.errors import ConfigurationError, SeawallError
from seawall.ledger import AlertRecord, DeadLetterQuery, DriftEmbedding, DriftSample
from seawall.observe.alerts import AlertRules, Alerts
from seawall.observe.drift import DriftWatch, decision_of
from seawall.observe.evaluation import WATCHES_KEY, DriftReport, References, evaluate
from seawall.observe.semantic import quantise

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall._payload import Blob
    from seawall._result import RunResult
    from seawall.ledger import HandOffRecord, Store
    from seawall.observe.semantic import SemanticWatch
    from seawall.policies.breaker import BreakerState
    from seawall.runtime.journal import Journal
    from seawall.runtime.registry import AgentSpec

logger = logging.getLogger("seawall.monitor")

FLUSH_AFTER: Final = 1.0
"""Seconds buffered samples wait at most before the heartbeat writes them."""


@dataclass(slots=True)
class _AgentBuffer:
    samples: list[_Finished] = field(default_factory=list)
    finished: int = 0
    oldest: float = 0.0


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
        self.embedding_failures = 0
        """Outputs left without an embedding because their embedder failed."""
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
        self._embed(finished)

    def _embed(self, finished: Sequence[_Finished]) -> None:
        """Embed the outputs of runs of agents watched for meaning, a batch per embedder."""
        batches: dict[int, tuple[SemanticWatch, list[tuple[_Finished, str]]]] = {}
        for run in finished:
            watch = run.spec.drift
            semantic = None if watch is None else watch.semantic
            if semantic is None or run.result.status is not RunStatus.SUCCEEDED:
                continue
            text = semantic.text_of(run.result.output)
            if text is not None:
                batches.setdefault(id(semantic), (semantic, []))[1].append((run, text))
        for semantic, batch in batches.values():
            try:
                vectors = semantic.embed([text for _, text in batch])
            except Exception:
                with self._lock:
                    self.embedding_failures += len(batch)
                logger.warning(
                    "embedder %s failed on %d outputs; their runs have no embedding",
                    semantic.model,
                    len(batch),
                    exc_info=True,
                )
                continue
            rows = []
            for (run, text), vector in zip(batch, vectors, strict=True):
                scale, codes = quantise(vector)
                rows.append(
                    DriftEmbedding(
                        agent=run.spec.name,
                        run_id=run.result.run_id,
                        at=run.at,
                        model=semantic.model,
                        scale=scale,
                        vector=codes,
                        excerpt=text[: semantic.excerpt],
                    )
                )
            self.store.add_drift_embeddings(rows)

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
        # Counted by the ledger: reading the open hand-offs to count them read up to 10,000
        # rows (subjects and all) for each new hand-off, and said 10,000 when more were open.
        waiting = sum(c.count for c in self.store.backlog() if c.queue == "handoff")
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
