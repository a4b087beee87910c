"""The journal of one run as one attempt sees it: lines, recorded steps, effects, buffering.

Rules the journal enforces:

- Steps are keyed ``(run_id, seq)``. An attempt writes its steps on a *line*: the seqs after the
  line's base (``base + 1``, ``base + 2``...). A crash resume continues the line of the attempt
  that died, so every step it holds is served in order. An error or drift retry starts a new line
  after every step written so far: it asks the model and the read-only tools again, and serves
  only the *effects* of earlier lines (their mutating calls, matched in order by tool and
  request, with their original idempotency keys). A retry that asks for a different mutating call
  than the one already done, or that ends without asking for one, stops with a readable diff:
  a completed side effect is never dropped nor repeated.
- A mutating step writes its intent (in the same transaction as any buffered steps) before its
  side effect, and its result before the agent continues.
- A read-only step is buffered and written in batches: losing it to a crash only means
  running a call without side effects again.
- A mutating step found ``started`` (intent without result) is *in doubt*: it is re-issued
  with the same idempotency key only when the tool is idempotent, checked with its
  ``read_back`` when it has one, and otherwise handed to a person.
- Every write names the epoch of the lease the attempt holds (fencing). Once a write finds the
  run taken over (:class:`~seawall.LeaseLostError`) or the ledger gone
  (:class:`~seawall.LedgerError`), the journal is *interrupted*: every further ``ctx`` call
  raises that error again, so no tool call starts after it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol

from seawall import _payload
from seawall._diff import describe
from seawall.errors import (
    AttemptAbandoned,
    ConsistencyError,
    JournalDivergenceError,
    LeaseLostError,
    LedgerError,
    RunCancelled,
)
from seawall.ledger._waiting import LedgerWouldBlock
from seawall.observe.cost import PriceTable, UsageEntry, UsageTotals, usage_entry
from seawall.policies.guards import NO_GUARDS, Guards
from seawall.runtime.serving import (
    _DONE,
    COMPLETED,
    FAILED,
    LIVE,
    VALUE_KINDS,
    Asked,
    Recorded,
    ServedSteps,
    is_effect,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from seawall._payload import Blob, PayloadCodec
    from seawall.ledger import StepRecord, StepRow, Store
    from seawall.observe.tracing import RunTrace
    from seawall.runtime.breakers import Breakers
    from seawall.runtime.budgets import RetryBudgets
    from seawall.runtime.registry import ToolSpec

SLOW_STEP: Final = 0.05
"""A read-only step that took longer than this (seconds) is written through at once."""

_DEFAULT_PRICES: Final = PriceTable()


class Recording(Protocol):
    """A recording a replay serves every step from (:class:`seawall.runtime.playback.Playback`)."""

    def serve(
        self,
        journal: Journal,
        seq: int,
        name: str,
        request_hash: str,
        request: Asked,
        *,
        effect: bool,
    ) -> Recorded:
        """Serve step ``seq`` from the recording, or say it runs live."""

    def finish(self) -> None:
        """Report the recorded side effects the code never asked for."""


class Journal(ServedSteps):
    """The journal of one run for one attempt.

    Args:
        store: The ledger.
        codec: Encoder for payloads.
        run_id: The run.
        attempt: The attempt writing new steps.
        recorded: Every step the ledger holds for this run (empty on a first attempt).
        epoch: The fencing epoch of the lease the attempt holds.
        base: Where this attempt's line starts (see the module docstring).
        flush_every: Buffered read-only steps written together.
        flush_interval: Oldest age (seconds) of a buffered step before the buffer is written.
        guards: The run's budgets and guards.
        started: When the run was submitted.
        feedback: The verifiers' messages from a rejected earlier attempt.
        strict: A recorded replay: steps are served from ``recorded`` by ``playback``.
        breakers: The app's breakers (``None``: none checked).
        budgets: The app's retry budgets (``None``: none counted).
        prices: Prices LLM calls recorded without a cost.
        blobs: Blobs of ``recorded`` read beforehand, so serving a step reads nothing.
        trace: The run's trace, when it is traced.
        playback: For a recorded replay: the recording it serves from.
    """

    __slots__ = (
        "abandoned",
        "asked",
        "attempt",
        "base",
        "blobs",
        "breakers",
        "budgets",
        "calls",
        "calls_since_gate",
        "cancelled",
        "codec",
        "confidence",
        "destructive_since_gate",
        "effects",
        "epoch",
        "facts",
        "feedback",
        "flush_every",
        "flush_interval",
        "guards",
        "interrupted",
        "line",
        "mutations",
        "mutations_since_gate",
        "oldest_pending",
        "pending",
        "pending_blobs",
        "playback",
        "prices",
        "replaying",
        "retried_usage",
        "run_id",
        "seq",
        "started",
        "store",
        "strict",
        "trace",
        "trim",
        "usage",
        "values",
    )

    def __init__(
        self,
        store: Store,
        codec: PayloadCodec,
        run_id: str,
        attempt: int,
        recorded: Sequence[StepRecord],
        *,
        epoch: int,
        base: int = 0,
        flush_every: int = 64,
        flush_interval: float = 0.2,
        guards: Guards = NO_GUARDS,
        started: float = 0.0,
        feedback: tuple[str, ...] = (),
        strict: bool = False,
        breakers: Breakers | None = None,
        budgets: RetryBudgets | None = None,
        prices: PriceTable | None = None,
        blobs: Mapping[str, Blob] | None = None,
        trace: RunTrace | None = None,
        playback: Recording | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.run_id = run_id
        self.attempt = attempt
        self.epoch = epoch
        self.base = base
        self.line: dict[int, StepRecord] = {s.seq: s for s in recorded if s.seq > base}
        earlier = sorted((s for s in recorded if s.seq <= base), key=lambda s: s.seq)
        self.effects: deque[StepRecord] | None
        self.values: dict[str, deque[StepRecord]]
        self.effects, self.values = _served_again(earlier)
        self.blobs: dict[str, Blob] = dict(blobs or {})
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.seq = base
        self.pending: list[StepRow] = []
        self.pending_blobs: list[Blob] = []
        self.oldest_pending = 0.0
        self.abandoned = False
        self.cancelled: str | None = None
        self.interrupted: BaseException | None = None
        self.trim: int | None = None
        self.guards = guards
        self.started = started
        self.feedback = feedback
        self.calls = 0
        self.asked = False
        """Whether the attempt asked a model or a read-only tool (an error after that may change
        when they are asked again)."""
        self.calls_since_gate = 0
        self.mutations_since_gate = 0
        self.destructive_since_gate = 0
        self.facts: dict[str, tuple[Any, str]] = {}
        self.confidence: float | None = None
        self.mutations = sum(1 for step in recorded if is_effect(step))
        self.strict = strict or playback is not None
        self.playback = playback
        self.breakers = breakers
        self.budgets = budgets
        self.replaying = bool(recorded) or self.strict
        self.usage: dict[int, UsageEntry] = {}
        self.prices = prices or _DEFAULT_PRICES
        self.trace = trace
        self.retried_usage: list[UsageEntry] = []
        if self.strict:
            # A recorded replay has no side effects of its own.
            self.mutations = 0
            return
        for step in earlier:
            if step.kind == "usage" and step.status == COMPLETED:
                self.retried_usage.append(self.usage_of(step))
        for step in self.line.values():
            if step.kind == "usage" and step.status == COMPLETED:
                self.usage[step.seq] = self.usage_of(step)

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, value: Any, where: str) -> tuple[bytes, str, bytes, list[Blob]]:
        """Encode a request: its canonical bytes, hash, row column and blobs."""
        data = self.codec.dumps(value, where)
        data_hash = _payload.digest(data)
        column, blobs = _payload.pack(data, value, data_hash)
        return data, data_hash, column, blobs

    def stored(self, value: Any, where: str) -> tuple[bytes, list[Blob]]:
        """Encode a result that is served back as given: its row column and blobs."""
        return self.codec.stored(value, where)

    def snapshot(self, value: Any, where: str) -> tuple[str, bytes, list[Blob]]:
        """Encode an output: the hash of its canonical form, its column and blobs as given."""
        return self.codec.snapshot(value, where)

    # -- replay -----------------------------------------------------------------------------

    def next_step(
        self,
        spec: ToolSpec | None,
        name: str,
        request_hash: str,
        request: bytes | None = None,
        *,
        effect: bool = False,
        blobs: Sequence[Blob] = (),
    ) -> Recorded:
        """Move to the next step of this attempt's line (:attr:`seq`); say what it holds there.

        Args:
            spec: The tool, for a tool step.
            name: The tool's (or the step kind's) name.
            request_hash: The hash of the request the code makes.
            request: Its stored column, to show a divergence as a diff.
            effect: Whether the step is a side effect (a mutating call, a child run).
            blobs: The blobs of ``request`` (not written yet), to decode it for a diff.

        Returns:
            Whether to serve a recorded result or execute the step (and where).

        Raises:
            JournalDivergenceError: The code asks for another step than the journal holds
                where a completed side effect forbids dropping the rest of the journal.
            InDoubtError: The step is in doubt and its tool is not idempotent.
            SerializationError: The step completed but its result could not be recorded.
        """
        seq = self.seq + 1
        recorded = (
            self._replay(seq, spec, name, request_hash, Asked(request, blobs), effect=effect)
            if self.replaying
            else LIVE
        )
        self.seq = seq
        return recorded

    def _replay(
        self,
        seq: int,
        spec: ToolSpec | None,
        name: str,
        request_hash: str,
        asked: Asked,
        *,
        effect: bool,
    ) -> Recorded:
        """What the journal holds at ``seq`` (a line already written) for the step asked."""
        if self.playback is not None:
            return self.playback.serve(self, seq, name, request_hash, asked, effect=effect)
        step = self.line.get(seq)
        if step is not None:
            if step.name == name and step.request_hash == request_hash:
                return self._recorded(step, spec, name)
            self._diverge(seq, step, name, asked)
        if effect and self.effects:
            return self._earlier_effect(seq, spec, name, request_hash, asked)
        earlier = self.values.get(name) if spec is None else None
        if earlier:
            # ctx.now/uuid/random of an earlier line: served in the order they were drawn, so a
            # retry that asks again still gets the ids and times its side effects were made with.
            return Recorded("serve", self.result_of(earlier.popleft(), name))
        return LIVE

    def _diverge(self, seq: int, step: StepRecord, name: str, request: Asked) -> None:
        tail = [s for s in self.line.values() if s.seq >= seq]
        if any(is_effect(s) for s in tail):
            changes = self.changes(step, name, request)
            raise JournalDivergenceError(
                f"step {seq}: the journal holds a call to {step.name!r} but the code now asks for "
                f"{name!r}"
                + (f" with other arguments ({describe(changes)})" if step.name == name else "")
                + "; a completed side effect follows in the journal, so Seawall will not drop it."
                " Make the agent deterministic given the journal (use ctx.now/uuid/random), or "
                "replay the run live",
                run_id=self.run_id,
                step=seq,
                expected=step.name,
                got=name,
                changes=[c.to_dict() for c in changes],
            )
        # Only read-only (or failed) steps follow: they are superseded, drop them (their rows
        # are deleted before the journal's next write, see :meth:`_trim`).
        self.trim = seq if self.trim is None else min(self.trim, seq)
        for s in tail:
            del self.line[s.seq]
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

    def buffer(self, row: StepRow, blobs: list[Blob], duration: float) -> bool:
        """Queue a read-only step; return whether the buffer is due to be written now."""
        self.check()
        pending = self.pending
        if not pending:
            self.oldest_pending = row[11]
        pending.append(row)
        if blobs:
            self.pending_blobs.extend(blobs)
        return (
            len(pending) >= self.flush_every
            or duration >= SLOW_STEP
            or row[11] - self.oldest_pending >= self.flush_interval
        )

    def _trim(self) -> None:
        """Delete the superseded rows a divergence left, before rows replace them."""
        if self.trim is not None:
            self._write(self.store.delete_steps_from, self.run_id, self.trim, epoch=self.epoch)
            self.trim = None

    def flush(self) -> None:
        """Write every buffered step now (nothing once the attempt was abandoned)."""
        if self.abandoned or self.interrupted is not None:
            return
        self._trim()
        if self.pending:
            rows, blobs = self.pending, self.pending_blobs
            self._write(self.store.write_steps, rows, blobs, epoch=self.epoch)
            # Cleared once written: a write that must wait is tried again whole.
            self.pending, self.pending_blobs = [], []

    def write_intent(self, row: StepRow, blobs: list[Blob]) -> None:
        """Make a mutating step's intent (and everything buffered) durable."""
        self.check()
        if self.trim is not None:
            self._trim()
        rows, pending_blobs = self.pending, self.pending_blobs
        # Called as a step machine's Ledger request, whose driver interrupts the attempt when
        # the lease or the ledger is lost.
        self.store.write_intent(
            row, rows, pending_blobs + blobs if pending_blobs else blobs, epoch=self.epoch
        )
        self.pending, self.pending_blobs = [], []

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
        """Record the result of a mutating step whose intent is written.

        Called as a step machine's Ledger request, like :meth:`write_intent`.
        """
        self.check()
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
            epoch=self.epoch,
        )

    def _write(self, write: Any, *args: Any, **kwargs: Any) -> None:
        """Run a store write; a lost lease or a lost ledger interrupts the attempt for good."""
        try:
            write(*args, **kwargs)
        except LedgerWouldBlock:
            raise  # the async driver waits for it off the event loop and tries again
        except (LeaseLostError, LedgerError) as exc:
            self.interrupt(exc)
            raise

    def interrupt(self, error: BaseException) -> None:
        """Stop the attempt: every further ``ctx`` call raises ``error``."""
        if self.interrupted is None:
            self.interrupted = error

    def check(self) -> None:
        """Raise when the attempt must not go on (abandoned, cancelled, interrupted)."""
        if self.interrupted is not None:
            raise self.interrupted
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

    def usage_of(self, step: StepRecord) -> UsageEntry:
        """The usage a recorded ``usage`` step holds."""
        request = self.decode(step.request)
        response = None if step.response is None else self.decode(step.response)
        return usage_entry(request, response)


def _served_again(
    earlier: list[StepRecord],
) -> tuple[deque[StepRecord] | None, dict[str, deque[StepRecord]]]:
    """What earlier lines hold for a new line: their side effects, and their drawn values.

    Made only when there are earlier lines: a first attempt (the usual case, with thousands in
    flight) keeps no empty deques, each of which allocates a block of its own.
    """
    if not earlier:
        return None, {}
    effects = deque(s for s in earlier if s.mutating and s.status in (*_DONE, FAILED))
    values = {
        kind: deque(s for s in earlier if s.kind == kind and s.status == COMPLETED)
        for kind in VALUE_KINDS
    }
    return effects, values
