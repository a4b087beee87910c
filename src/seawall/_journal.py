"""The journal of one run as one attempt sees it: sequence numbers, recorded steps, buffering.

Rules the journal enforces:

- Steps are keyed ``(run_id, seq)``; ``seq`` restarts at 1 on every attempt, and a step the
  journal already holds as completed is served from it instead of being executed again.
- A mutating step writes its intent (in the same transaction as any buffered steps) before
  its side effect, and its result before the agent continues.
- A read-only step is buffered and written in batches: losing it to a crash only means
  running a call without side effects again.
- A mutating step found ``started`` (intent without result) is *in doubt*: it is re-issued
  with the same idempotency key only when the tool is idempotent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from seawall import _payload
from seawall.errors import (
    AttemptAbandoned,
    ConsistencyError,
    InDoubtError,
    JournalDivergenceError,
    ReplayDivergenceError,
    ReplayedToolError,
    RunCancelled,
    SerializationError,
)
from seawall.observe.cost import PriceTable, UsageEntry, UsageTotals, usage_entry
from seawall.policies.guards import NO_GUARDS, Guards

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall._breakers import Breakers
    from seawall._budgets import RetryBudgets
    from seawall._payload import Blob, PayloadCodec
    from seawall._registry import ToolSpec
    from seawall.ledger import StepRecord, StepRow, Store
    from seawall.observe.tracing import RunTrace

STARTED: Final = "started"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
SLOW_STEP: Final = 0.05
"""A read-only step that took longer than this (seconds) is written through at once."""

MISSING: Final[Any] = object()
"""Returned by :meth:`Journal.replay` when the step must be executed live."""

CHECK_READ_BACK: Final[Any] = object()
"""Returned by :meth:`Journal.replay` for an in-doubt step whose tool can read its effect back."""

_DEFAULT_PRICES: Final = PriceTable()


class Journal:
    """The journal of one run for one attempt.

    Args:
        store: The ledger.
        codec: Encoder for payloads.
        run_id: The run.
        attempt: The attempt writing new steps.
        recorded: Steps the ledger already holds for this run (empty on a first attempt).
        flush_every: Buffered read-only steps written together.
        flush_interval: Oldest age (seconds) of a buffered step before the buffer is written.
        prices: Prices LLM calls recorded without a cost.
        superseded: Steps of earlier attempts this attempt does again (their usage is counted
            as retried, apart from the run's totals).
        trace: The run's trace, when it is traced.
    """

    __slots__ = (
        "abandoned",
        "attempt",
        "breakers",
        "budgets",
        "calls",
        "calls_since_gate",
        "cancelled",
        "codec",
        "confidence",
        "destructive_since_gate",
        "facts",
        "feedback",
        "flush_every",
        "flush_interval",
        "guards",
        "mutations",
        "mutations_since_gate",
        "oldest_pending",
        "pending",
        "pending_blobs",
        "prices",
        "recorded",
        "replaying",
        "retried_usage",
        "run_id",
        "seq",
        "started",
        "store",
        "strict",
        "trace",
        "usage",
    )

    def __init__(
        self,
        store: Store,
        codec: PayloadCodec,
        run_id: str,
        attempt: int,
        recorded: list[StepRecord],
        *,
        flush_every: int = 64,
        flush_interval: float = 0.2,
        guards: Guards = NO_GUARDS,
        started: float = 0.0,
        feedback: tuple[str, ...] = (),
        strict: bool = False,
        breakers: Breakers | None = None,
        budgets: RetryBudgets | None = None,
        prices: PriceTable | None = None,
        superseded: Sequence[StepRecord] = (),
        trace: RunTrace | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.run_id = run_id
        self.attempt = attempt
        self.recorded: dict[int, StepRecord] = {step.seq: step for step in recorded}
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.seq = 0
        self.pending: list[StepRow] = []
        self.pending_blobs: list[Blob] = []
        self.oldest_pending = 0.0
        self.abandoned = False
        self.cancelled: str | None = None
        self.guards = guards
        self.started = started
        self.feedback = feedback
        self.calls = 0
        self.calls_since_gate = 0
        self.mutations_since_gate = 0
        self.destructive_since_gate = 0
        self.facts: dict[str, tuple[Any, str]] = {}
        self.confidence: float | None = None
        self.mutations = sum(
            1 for step in recorded if step.mutating and step.status in (COMPLETED, STARTED)
        )
        self.strict = strict
        self.breakers = breakers
        self.budgets = budgets
        self.replaying = bool(self.recorded) or strict
        self.usage: dict[int, UsageEntry] = {}
        self.retried_usage: list[UsageEntry] = [
            self._usage_of(step) for step in superseded if step.kind == "usage"
        ]
        self.prices = prices or _DEFAULT_PRICES
        self.trace = trace
        if strict:
            # A recorded replay executes nothing: it has no side effects of its own.
            self.mutations = 0
            return
        for step in recorded:
            if step.kind == "usage" and step.status == COMPLETED:
                self.usage[step.seq] = self._usage_of(step)

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, value: Any, where: str) -> tuple[bytes, str, bytes, list[Blob]]:
        """Encode a payload: canonical bytes, hash, row column and blobs."""
        data = self.codec.dumps(value, where)
        data_hash = _payload.digest(data)
        column, blobs = _payload.pack(data, value, data_hash)
        return data, data_hash, column, blobs

    def decode(self, column: bytes) -> Any:
        """Decode a stored column."""
        return _payload.unpack(column, self.store.get_blobs)

    # -- replay -----------------------------------------------------------------------------

    def replay(  # noqa: PLR0911 - one outcome per journal state
        self, seq: int, spec: ToolSpec | None, name: str, request_hash: str
    ) -> Any:
        """Serve step ``seq`` from the journal, or return :data:`MISSING` to run it live.

        Raises:
            JournalDivergenceError: The code asked for another step than the journal holds
                where a completed side effect forbids dropping the rest of the journal.
            InDoubtError: The step is in doubt and its tool is not idempotent.
            SerializationError: The step completed but its result could not be recorded.
        """
        if self.strict:
            return self._serve_strictly(seq, name, request_hash)
        step = self.recorded.get(seq)
        if step is None:
            return MISSING
        if step.name != name or step.request_hash != request_hash:
            self._diverge(seq, step, name)
            return MISSING
        if step.status == COMPLETED:
            return self._result_of(step, name)
        if step.status == STARTED and step.mutating:
            if spec is not None and spec.read_back is not None:
                return CHECK_READ_BACK
            if spec is not None and spec.idempotent:
                return MISSING
            raise InDoubtError(
                f"step {seq} ({name}) was in flight when its process died, so its side effect "
                f"may or may not have happened; the tool is not declared idempotent, so Seawall "
                f"will not re-issue it. Check the target system, then redrive or close the run. "
                f"Declare @app.tool(idempotent=True) if it dedupes on its idempotency_key",
                run_id=self.run_id,
                step=seq,
                tool=name,
                idempotency_key=step.idempotency_key,
            )
        return MISSING

    def _serve_strictly(self, seq: int, name: str, request_hash: str) -> Any:
        """Recorded replay: serve step ``seq`` from the original journal, or stop.

        Raises:
            ReplayDivergenceError: The journal holds another step (or none) at ``seq``, or the
                step's outcome was never recorded.
            ReplayedToolError: The step failed in the original run.
        """
        step = self.recorded.get(seq)
        if step is None:
            last = max(self.recorded, default=0)
            raise ReplayDivergenceError(
                f"step {seq}: the code asks for {name!r} but the original journal ends at step "
                f"{last}; the current code makes more calls than the recorded run",
                run_id=self.run_id,
                step=seq,
                expected="end of journal",
                got=name,
            )
        if step.name != name or step.request_hash != request_hash:
            same = "other arguments" if step.name == name else "another call"
            raise ReplayDivergenceError(
                f"step {seq}: the journal holds {step.name!r} (request {step.request_hash[:12]}) "
                f"but the code asks for {name!r} with {same} (request {request_hash[:12]})",
                run_id=self.run_id,
                step=seq,
                expected=f"{step.name} {step.request_hash[:12]}",
                got=f"{name} {request_hash[:12]}",
            )
        if step.status == STARTED:
            raise ReplayDivergenceError(
                f"step {seq} ({name}) was in doubt in the original run: its result was never "
                "recorded, so a recorded replay cannot serve it",
                run_id=self.run_id,
                step=seq,
                expected="a recorded result",
                got=name,
            )
        self.pending.append(
            (
                self.run_id,
                seq,
                self.attempt,
                step.kind,
                step.name,
                1 if step.mutating else 0,
                step.idempotency_key,
                step.request_hash,
                step.request,
                step.response,
                step.status,
                step.start_time,
                step.end_time,
                step.error_type,
                step.error_message,
                step.tries,
            )
        )
        if len(self.pending) >= self.flush_every:
            self.flush()
        if step.status == FAILED:
            raise ReplayedToolError(
                f"step {seq} ({name}) failed in the original run with {step.error_type}: "
                f"{step.error_message}",
                run_id=self.run_id,
                step=seq,
                error_type=step.error_type,
                error_message=step.error_message,
            )
        if step.kind == "usage":
            self.usage[seq] = self._usage_of(step)
        return self._result_of(step, name)

    def _result_of(self, step: StepRecord, name: str) -> Any:
        """A completed step's recorded result (one whose result could not be stored raises)."""
        if step.response is None:
            raise SerializationError(
                f"step {step.seq} ({name}) completed but its result could not be stored: "
                f"{step.error_message}",
                run_id=self.run_id,
                step=step.seq,
            )
        return self.decode(step.response)

    def _diverge(self, seq: int, step: StepRecord, name: str) -> None:
        tail = [s for s in self.recorded.values() if s.seq >= seq]
        if any(s.mutating and s.status in (COMPLETED, STARTED) for s in tail):
            raise JournalDivergenceError(
                f"step {seq}: the journal holds a call to {step.name!r} (request "
                f"{step.request_hash[:12]}) but the code now asks for {name!r} with other "
                "arguments; a completed side effect follows in the journal, so Seawall will not "
                "drop it. Make the agent deterministic given the journal (use ctx.now/uuid/"
                "random), or replay the run live",
                run_id=self.run_id,
                step=seq,
                expected=step.name,
                got=name,
            )
        # Only read-only (or failed) steps follow: they are superseded, drop them.
        self.store.delete_steps_from(self.run_id, seq)
        for s in tail:
            del self.recorded[s.seq]
            dropped = self.usage.pop(s.seq, None)
            if dropped is not None:
                self.retried_usage.append(dropped)

    # -- writing ----------------------------------------------------------------------------

    def row(
        self,
        seq: int,
        kind: str,
        name: str,
        mutating: bool,
        key: str | None,
        request_hash: str,
        request: bytes,
        response: bytes | None,
        status: str,
        start: float,
        end: float | None,
        error: BaseException | None = None,
        tries: int = 1,
    ) -> StepRow:
        """Build a step row for this attempt."""
        return (
            self.run_id,
            seq,
            self.attempt,
            kind,
            name,
            1 if mutating else 0,
            key,
            request_hash,
            request,
            response,
            status,
            start,
            end,
            None if error is None else type(error).__name__,
            None if error is None else str(error)[:2000],
            tries,
        )

    def buffer(self, row: StepRow, blobs: list[Blob], duration: float) -> None:
        """Queue a read-only step; write the buffer when it is full, old or the step slow."""
        self._fence()
        pending = self.pending
        if not pending:
            self.oldest_pending = row[11]
        pending.append(row)
        if blobs:
            self.pending_blobs.extend(blobs)
        if (
            len(pending) >= self.flush_every
            or duration >= SLOW_STEP
            or row[11] - self.oldest_pending >= self.flush_interval
        ):
            self.flush()

    def flush(self) -> None:
        """Write every buffered step now."""
        if self.pending and not self.abandoned:
            rows, blobs = self.pending, self.pending_blobs
            self.pending, self.pending_blobs = [], []
            self.store.write_steps(rows, blobs)

    def write_intent(self, row: StepRow, blobs: list[Blob]) -> None:
        """Make a mutating step's intent (and everything buffered) durable."""
        self._fence()
        rows, pending_blobs = self.pending, self.pending_blobs
        self.pending, self.pending_blobs = [], []
        self.store.write_intent(row, rows, pending_blobs + blobs if pending_blobs else blobs)

    def complete(
        self,
        seq: int,
        *,
        status: str,
        response: bytes | None,
        error: BaseException | None,
        tries: int,
        blobs: list[Blob],
    ) -> None:
        """Record the result of a mutating step whose intent is written."""
        self._fence()
        self.store.complete_step(
            self.run_id,
            seq,
            status=status,
            response=response,
            end_time=time.time(),
            error_type=None if error is None else type(error).__name__,
            error_message=None if error is None else str(error)[:2000],
            tries=tries,
            blobs=blobs,
        )

    def _fence(self) -> None:
        if self.abandoned:
            raise AttemptAbandoned
        if self.cancelled is not None:
            raise RunCancelled(self.cancelled)

    def observe(self, key: str, value: Any, source: str) -> None:
        """Record a fact read from ``source``; a different value for a known key is a conflict.

        Raises:
            ConsistencyError: Another source gave ``key`` a different value in this run.
        """
        known = self.facts.get(key)
        if known is None:
            self.facts[key] = (value, source)
            return
        if known[0] != value:
            raise ConsistencyError(
                f"{source} says {key!r} = {value!r} but {known[1]} said {known[0]!r}; the run "
                "stops before building on either (check which source is current)",
                run_id=self.run_id,
                key=key,
                verdicts=[
                    {
                        "name": f"consistency({key})",
                        "passed": False,
                        "message": f"{known[1]}: {known[0]!r} vs {source}: {value!r}",
                    }
                ],
                feedback=[f"{key!r} differs between {known[1]} and {source}"],
            )

    # -- usage ------------------------------------------------------------------------------

    def totals(self) -> UsageTotals:
        """Return the run's usage: the calls its result stands on, and superseded ones."""
        totals = UsageTotals()
        for entry in self.usage.values():
            totals.add(entry)
        for entry in self.retried_usage:
            totals.add_retried(entry)
        return totals

    def _usage_of(self, step: StepRecord) -> UsageEntry:
        request = _payload.unpack(step.request, self.store.get_blobs)
        response = None if step.response is None else self.decode(step.response)
        return usage_entry(request, response)
