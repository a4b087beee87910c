"""What the ledger holds, as frozen value objects shared by the runtime, the CLI and stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from seawall._failures import ErrorClass, FailureCause, RunStatus
    from seawall._payload import Blob


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run's ledger row: the fields an on-call engineer needs a week later.

    Attributes:
        run_id: Unique id of the run.
        agent: Registered name of the agent.
        status: Where the run stands.
        start_time: Unix time the run was submitted.
        end_time: Unix time it reached a final status, if it has.
        input_hash: sha256 of the canonical JSON of its inputs (the input snapshot).
        output_hash: sha256 of the canonical JSON of its output, once it has one.
        tokens_used: Input plus output tokens recorded by the run.
        input_tokens: Input (prompt) tokens recorded by the run.
        output_tokens: Output (completion) tokens recorded by the run.
        cost_usd: Cost recorded by the run (``None`` when a usage record had no known price).
        error_class: One of the four classes, for a run that did not succeed.
        failure_cause: Why, in finer words.
        error_type: Type name of the final error.
        error_message: Message of the final error.
        error: The structured JSON form of the final error.
        attempts: Attempts started so far.
        workflow: Graph name, when the run is a graph node.
        parent_run_id: Run that spawned this one.
        replay_of: Run this one replays.
        code_version: Version of the agent's code that ran it.
        lease_owner: Process holding the run's lease while it runs.
        lease_expires_at: When that lease lapses unless renewed.
        updated_at: Last time the row changed.
        phase: While an unfinished run settles: ``committing`` (publishing its artifacts) or
            ``compensating`` (undoing its side effects); ``None`` otherwise.
        replay_mode: For a replay, ``recorded`` or ``live``.
        node: For a run of a graph node, the node's name.
        retried_input_tokens: Input tokens of LLM calls that a retry made again (not in the
            totals above).
        retried_output_tokens: Output tokens of those calls.
        retried_cost_usd: Cost of those calls.
        unknown_usage_calls: LLM calls whose response carried no usage (not counted as zero).
        unpriced_calls: LLM calls whose cost is unknown (their model has no price): the run
            cost is then a lower bound.
        trace_id: OpenTelemetry trace of the run's span, when it was traced.
        span_id: That span.
        epoch: The fencing epoch of its lease: raised on every takeover; every write of an
            attempt is conditional on the epoch it holds.
    """

    run_id: str
    agent: str
    status: RunStatus
    start_time: float
    end_time: float | None
    input_hash: str
    output_hash: str | None
    tokens_used: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    error_class: ErrorClass | None
    failure_cause: FailureCause | None
    error_type: str | None
    error_message: str | None
    error: dict[str, Any] | None
    attempts: int
    workflow: str | None
    parent_run_id: str | None
    replay_of: str | None
    code_version: str | None
    lease_owner: str | None
    lease_expires_at: float | None
    updated_at: float
    phase: str | None = None
    replay_mode: str | None = None
    node: str | None = None
    retried_input_tokens: int = 0
    retried_output_tokens: int = 0
    retried_cost_usd: float = 0.0
    unknown_usage_calls: int = 0
    unpriced_calls: int = 0
    trace_id: str | None = None
    span_id: str | None = None
    epoch: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from submission to the final status, when the run has one."""
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a run.

    Attributes:
        run_id: The run.
        attempt: 1-based attempt number.
        start_time: Unix time it started.
        end_time: Unix time it ended, if it has.
        status: ``running``, ``succeeded`` or ``failed``.
        error_class: Class of its failure.
        failure_cause: Cause of its failure.
        error_type: Type name of its error.
        error_message: Message of its error.
        retry_delay: Backoff waited after it before the next attempt.
        owner: Process that ran it.
        epoch: The fencing epoch it held.
        base_seq: Where its journal line starts: steps up to it belong to earlier lines, whose
            side effects it serves (an error or drift retry asks everything else again).
        completed_at_start: Completed steps the journal held when it started (a crash after
            which this has not grown made no progress).
        fenced_at: When its process found that another owner had taken the run over.
        decision: Why it was, or was not, followed by another attempt.
    """

    run_id: str
    attempt: int
    start_time: float
    end_time: float | None
    status: str
    error_class: ErrorClass | None
    failure_cause: FailureCause | None
    error_type: str | None
    error_message: str | None
    retry_delay: float | None
    owner: str | None
    epoch: int | None = None
    base_seq: int = 0
    completed_at_start: int | None = None
    fenced_at: float | None = None
    decision: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run a worker claimed, and what executing it needs (``Store.claim_and_start``).

    Attributes:
        run: The run's row as the claim left it: leased to the claimer at ``run.epoch``.
        input: The run's stored input column.
        blobs: The blob that column refers to, by its hash (none for an inline input; the
            chunks of an input cut in chunks are read as it is decoded).
        started: Its attempt ``run.attempts`` was started by the claim, at the claim's time: the
            run had never started one. Otherwise the run is to be resumed from its journal.
    """

    run: RunRecord
    input: bytes
    blobs: Mapping[str, Blob]
    started: bool


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One journaled step of a run.

    Attributes:
        run_id: The run.
        seq: 1-based position in the run's journal.
        attempt: Attempt that wrote it.
        kind: ``tool``, ``now``, ``uuid``, ``random`` or ``usage``.
        name: Tool name (or the kind for clock/random/usage steps).
        mutating: Whether the step has a side effect.
        idempotency_key: Key passed to the tool for this step.
        request_hash: sha256 of the canonical request (tool, args, kwargs).
        status: ``started`` (intent only), ``completed`` or ``failed``.
        start_time: Unix time it started.
        end_time: Unix time it ended, if it has.
        error_type: Type of the error it raised, if it failed.
        error_message: Message of that error.
        tries: Calls made for it (more than 1 when the tool's retry policy retried).
        request: Stored request column (see ``seawall._payload``).
        response: Stored response column, once completed.
    """

    run_id: str
    seq: int
    attempt: int
    kind: str
    name: str
    mutating: bool
    idempotency_key: str | None
    request_hash: str
    status: str
    start_time: float
    end_time: float | None
    error_type: str | None
    error_message: str | None
    tries: int
    request: bytes = field(repr=False)
    response: bytes | None = field(repr=False)

    @property
    def duration(self) -> float | None:
        """Seconds the step took, once it ended."""
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters for listing runs (newest first).

    Attributes:
        status: Only runs with this status.
        agent: Only runs of this agent.
        error_class: Only runs with this error class.
        since: Only runs submitted at or after this Unix time.
        parent_run_id: Only children of this run.
        limit: At most this many runs.
        offset: Skip this many runs first (paging).
        until: Only runs submitted before this Unix time.
        search: Only runs whose error message contains this text (case-insensitive).
        before: Keyset paging: only runs after ``(start_time, run_id)`` in the newest-first
            order, i.e. older than the last run of the previous page. Unlike ``offset`` it stays
            fast however deep the page.
        replay_of: Only replays of this run.
        top_level: Only runs no other run spawned (no parent: graph runs and lone agent
            runs, not a graph's nodes nor a run's children).
        error_classes: Only runs with one of these error classes (with ``error_class``, the
            runs must match both).
        retried: Only runs that took more than one attempt.
    """

    status: RunStatus | None = None
    agent: str | None = None
    error_class: ErrorClass | None = None
    since: float | None = None
    parent_run_id: str | None = None
    limit: int = 100
    offset: int = 0
    until: float | None = None
    search: str | None = None
    before: tuple[float, str] | None = None
    replay_of: str | None = None
    top_level: bool = False
    error_classes: tuple[ErrorClass, ...] = ()
    retried: bool = False


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One artifact of a run, as the ledger records it.

    Attributes:
        run_id: The run.
        name: Relative path.
        size: Bytes.
        sha256: Hex digest of its bytes.
        committed_at: When it became visible (``None`` while its commit is in progress).
    """

    run_id: str
    name: str
    size: int
    sha256: str
    committed_at: float | None


@dataclass(frozen=True, slots=True)
class CompensationRecord:
    """The compensation (undo) of one completed mutating step.

    Attributes:
        run_id: The run.
        seq: The step it undoes.
        tool: The step's tool.
        idempotency_key: Key passed to the compensation.
        status: ``started``, ``completed`` or ``failed``.
        start_time: When it started.
        end_time: When it ended.
        tries: Calls made.
        error_type: Type of its error, if it failed.
        error_message: Message of that error.
    """

    run_id: str
    seq: int
    tool: str
    idempotency_key: str | None
    status: str
    start_time: float
    end_time: float | None
    tries: int
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class HandOffRecord:
    """A decision handed to a person.

    Attributes:
        handoff_id: Unique id.
        run_id: The run concerned.
        kind: What needs a person (``compensation_failed``, ...).
        reason: Why, in words.
        subject: The step, output or error in question (JSON).
        status: ``open`` until decided.
        created_at: When it was opened.
        decision: ``approved`` or ``rejected`` once decided.
        decided_by: Who decided.
        decided_at: When.
        note: Their note.
    """

    handoff_id: str
    run_id: str
    kind: str
    reason: str
    subject: Any
    status: str
    created_at: float
    decision: str | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """One verifier verdict as the ledger records it.

    Attributes:
        run_id: The run.
        attempt: The attempt whose output (or gate) it judged.
        ordinal: Its order among the attempt's verdicts.
        kind: ``output`` (the final check, the confidence threshold included), ``gate``
            (``ctx.verify``), ``read_back``, ``fallback`` or ``handoff`` (an edited output
            verified again).
        name: The verifier.
        passed: Whether the value passed.
        error: Whether the verifier itself raised.
        score: A judge's score.
        message: The feedback or note.
        duration: Seconds it took.
        created_at: When.
    """

    run_id: str
    attempt: int
    ordinal: int
    kind: str
    name: str
    passed: bool
    error: bool
    score: float | None
    message: str | None
    duration: float
    created_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of the dead-letter queue: a run that ended failed.

    Attributes:
        entry_id: Unique id.
        run_id: The failed run (its input snapshot is what a redrive runs on).
        agent: Its agent.
        error_class: Its error class.
        failure_cause: Its failure cause.
        error_message: Its final error.
        failed_at: When it failed.
        attempts: Attempts it made.
        status: ``pending``, ``redriving``, ``redriven`` or ``purged``.
        claimed_by: The redriver that took it.
        claimed_at: When it was taken (a claim whose redrive never started expires).
        redriven_at: When it was redriven.
        redrive_run_id: The run that redrove it.
        result: How that run ended.
        previous_entry_id: The entry this one's run redrove, when it failed again.
    """

    entry_id: str
    run_id: str
    agent: str
    error_class: ErrorClass | None
    failure_cause: FailureCause | None
    error_message: str | None
    failed_at: float
    attempts: int
    status: str
    claimed_by: str | None
    redriven_at: float | None
    redrive_run_id: str | None
    result: str | None
    previous_entry_id: str | None
    claimed_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """Filters over the dead-letter queue (oldest first).

    Attributes:
        agent: Only entries of this agent.
        error_class: Only entries of this class.
        since: Only entries that failed at or after this Unix time.
        status: Only entries with this status (``None``: any; ``open``: pending or being
            redriven; ``claimable``: pending, or claimed by a redriver that died before its
            redrive started, longer ago than ``stale_before``).
        limit: At most this many.
        until: Only entries that failed before this Unix time.
        excluded: Agents whose entries are left out.
        run_id: Only the entry of this run.
        stale_before: For ``claimable``: claims older than this Unix time have expired.
        excluded_runs: Runs whose entries are left out.
        entry_ids: Only these entries (empty: any).
    """

    agent: str | None = None
    error_class: ErrorClass | None = None
    since: float | None = None
    status: str | None = "pending"
    limit: int = 1000
    until: float | None = None
    excluded: tuple[str, ...] = ()
    run_id: str | None = None
    stale_before: float | None = None
    excluded_runs: tuple[str, ...] = ()
    entry_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepResolution:
    """What an operator said of a step left in doubt.

    Attributes:
        run_id: The run.
        seq: The step.
        decision: ``happened`` or ``did_not_happen``.
        result: The step's result as the operator gave it (for ``happened``), if any.
        decided_by: Who said so.
        decided_at: When.
        note: Why, in their words.
    """

    run_id: str
    seq: int
    decision: str
    result: Any
    decided_by: str | None
    decided_at: float
    note: str | None


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One transition of a breaker.

    Attributes:
        name: The breaker (``agent:<name>`` or ``tool:<name>``).
        at: When.
        from_state: Its state before.
        to_state: Its state after.
        reason: Why.
    """

    name: str
    at: float
    from_state: str
    to_state: str
    reason: str | None
