"""The storage contract every ledger implements (SQLite and PostgreSQL).

The methods are synchronous on purpose: a journaled step has a budget of tens of
microseconds, which leaves no room for an event-loop hop per write. Async drivers call them
inline; they are short. Every write that must survive a crash is one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from seawall.ledger._watch_protocol import WatchStore

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from seawall._payload import Blob
    from seawall.ledger._inputs import AttemptOutcome, NewRun, RunOutcome, StepRow
    from seawall.ledger._records import (
        ArtifactRecord,
        AttemptRecord,
        BreakerEvent,
        ClaimedRun,
        CompensationRecord,
        DeadLetter,
        DeadLetterQuery,
        HandOffRecord,
        RunQuery,
        RunRecord,
        StepRecord,
        StepResolution,
        VerdictRecord,
    )
    from seawall.ledger._stats import (
        ErrorCount,
        ModelUsage,
        QueueCount,
        RunStats,
        StepLatency,
        UnpricedCount,
    )
    from seawall.policies.breaker import BreakerState

T = TypeVar("T")

IdKind = Literal["run", "handoff"]
"""The kinds of id :meth:`Store.ids_with_prefix` looks up."""


class Store(WatchStore, Protocol):
    """A ledger backend. See ``tests/ledger/test_contract.py`` for the behaviour it owes.

    Writes an attempt makes take the ``epoch`` of the lease it holds and are applied only while
    the run still carries that epoch; otherwise they raise :class:`~seawall.LeaseLostError` and
    write nothing (an intent of a cancelled run raises :class:`~seawall.RunCancelled`). Alerts,
    drift samples and operators' records are in :class:`WatchStore`.
    """

    url: str

    def close(self) -> None:
        """Release connections and background threads."""

    def schema_version(self) -> int:
        """Return the schema version recorded in the ledger."""

    # runs ---------------------------------------------------------------------------------
    def create_run(self, run: NewRun, blobs: Sequence[Blob]) -> None:
        """Record a new run (and its input snapshot blobs) durably."""

    def create_and_start(self, run: NewRun, blobs: Sequence[Blob]) -> None:
        """Record a new leased run and start its first attempt (epoch 1) in one transaction."""

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return one run, or ``None`` when the id is unknown."""

    def get_run_io(self, run_id: str) -> tuple[bytes, bytes | None] | None:
        """Return the stored input and output columns of a run."""

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Return runs matching ``query``, newest first."""

    def ids_with_prefix(self, kind: IdKind, prefix: str, limit: int = 10) -> list[str]:
        """Return up to ``limit`` ids of ``kind`` that start with ``prefix`` (exact, sorted)."""

    # aggregates (dashboard, metrics) ------------------------------------------------------
    def run_stats(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        bucket_seconds: float | None = None,
        agent: str | None = None,
    ) -> list[RunStats]:
        """Count runs (and sum their retries, tokens, cost) by bucket, agent, status and class.

        Runs submitted in ``[since, until)`` (each bound optional) of ``agent`` (any when
        ``None``). With ``bucket_seconds`` (which needs ``since``), bucket ``i`` holds the runs
        submitted in ``[since + i * bucket_seconds, since + (i + 1) * bucket_seconds)``; without,
        every row has bucket ``0``. Buckets and groups without runs are absent.
        """

    def step_latency(
        self,
        *,
        bounds: Sequence[float],
        since: float | None = None,
        until: float | None = None,
        agent: str | None = None,
    ) -> list[StepLatency]:
        """Histogram of the durations of finished tool and model calls, per kind and name.

        Counts the ``tool`` and ``llm`` steps of runs submitted in ``[since, until)`` of
        ``agent``, with cumulative counts at each of ``bounds`` (seconds, ascending).
        """

    def agent_names(self, *, limit: int = 1000) -> list[str]:
        """Return the names of the agents (and graphs) that have runs, in order."""

    def unpriced_usage(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        agent: str | None = None,
    ) -> list[UnpricedCount]:
        """Count runs submitted in ``[since, until)`` that made model calls of unknown price.

        By agent: how many runs, and how many unpriced calls (their cost is a lower bound).
        """

    def usage_by_model(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        agent: str | None = None,
    ) -> list[ModelUsage]:
        """Sum the model calls (``ctx.record_usage``) of runs submitted in ``[since, until)``.

        One row per model, the costliest first; calls whose price is unknown are counted
        apart (``unpriced_calls``), never as zero cost.
        """

    def error_counts(
        self,
        *,
        since: float,
        bucket_seconds: float,
        until: float | None = None,
        agent: str | None = None,
        limit: int = 5000,
    ) -> list[ErrorCount]:
        """Count runs with an error message by time bucket, agent, class, type and message.

        Runs submitted in ``[since, until)``; bucket ``i`` as in :meth:`run_stats`. The
        largest counts come first; at most ``limit`` rows.
        """

    def backlog(self) -> list[QueueCount]:
        """Count pending DLQ entries and open hand-offs by agent (and class or kind)."""

    def finish_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record a run's final fields durably and release its lease (fenced)."""

    def end_run(
        self,
        run_id: str,
        attempt: int,
        ended: AttemptOutcome,
        outcome: RunOutcome,
        steps: Sequence[StepRow],
        blobs: Sequence[Blob],
        *,
        epoch: int,
    ) -> None:
        """Record an attempt's end, the run's buffered ``steps`` and the run's end at once.

        One durable transaction, fenced: when another owner holds the run, nothing is written
        (:class:`~seawall.LeaseLostError`).
        """

    def set_trace(self, run_id: str, trace_id: str, span_id: str) -> None:
        """Record the OpenTelemetry span of a traced run (hex ids)."""

    # settling -----------------------------------------------------------------------------
    def begin_commit(
        self,
        run_id: str,
        *,
        output_hash: str,
        output_column: bytes,
        blobs: Sequence[Blob],
        commit_json: str,
        artifacts: Sequence[tuple[str, int, str]],
        epoch: int,
    ) -> None:
        """Record output and manifest durably before publishing (phase ``committing``)."""

    def abort_commit(self, run_id: str, *, epoch: int) -> None:
        """Forget an unfinished commit whose artifacts were not published (fenced)."""

    def get_commit(self, run_id: str) -> str | None:
        """Return the commit record (JSON) of a run in phase ``committing``."""

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifacts by name."""

    def begin_compensation(self, run_id: str, outcome: RunOutcome, *, epoch: int) -> None:
        """Record a run's final failure and enter phase ``compensating`` (fenced)."""

    def start_compensation(
        self,
        run_id: str,
        seq: int,
        tool: str,
        idempotency_key: str | None,
        start_time: float,
        *,
        epoch: int,
    ) -> None:
        """Record the intent to run a compensation, durably, before it runs (fenced)."""

    def finish_compensation(
        self,
        run_id: str,
        seq: int,
        *,
        status: str,
        end_time: float,
        tries: int,
        error_type: str | None,
        error_message: str | None,
        epoch: int,
    ) -> None:
        """Record how a compensation ended (fenced)."""

    def list_compensations(self, run_id: str) -> list[CompensationRecord]:
        """Return a run's compensations in the order they ran."""

    def open_handoff(self, handoff: HandOffRecord, *, epoch: int) -> None:
        """Record a new hand-off to a person, durably (fenced by its run's epoch)."""

    def list_handoffs(
        self,
        *,
        run_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        oldest_first: bool = False,
        after: tuple[float, str] | None = None,
    ) -> list[HandOffRecord]:
        """Return hand-offs, newest first.

        With ``oldest_first`` they come oldest first, and ``after`` (the ``(created_at,
        handoff_id)`` of the last one of a page) pages through them.
        """

    def record_verdicts(
        self,
        run_id: str,
        attempt: int,
        kind: str,
        verdicts: Sequence[dict[str, Any]],
        *,
        epoch: int,
    ) -> None:
        """Append verdicts of one attempt (fenced)."""

    def list_verdicts(self, run_id: str) -> list[VerdictRecord]:
        """Return a run's verdicts in order."""

    def request_cancel(self, run_id: str, reason: str, at: float) -> bool:
        """Record an operator's cancellation; false when the run had already ended."""

    def cancellations(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Return the cancellation reasons recorded for any of ``run_ids``."""

    def park_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record a run waiting for a person (``awaiting_human``), its output kept (fenced)."""

    def claim_parked(self, run_id: str, owner: str, expires_at: float) -> int | None:
        """Take a run waiting for a person back into ``running``; one decider wins.

        Returns:
            The new epoch of the run's lease, or ``None`` when another decider won.
        """

    def get_handoff(self, handoff_id: str) -> HandOffRecord | None:
        """Return one hand-off, or ``None``."""

    def decide_handoff(
        self, handoff_id: str, *, decision: str, decided_by: str | None, note: str | None, at: float
    ) -> bool:
        """Record a decision on an open hand-off; false when it was already decided."""

    def list_dead_letters(self, query: DeadLetterQuery) -> list[DeadLetter]:
        """Return DLQ entries matching ``query``, oldest first."""

    def claim_dead_letter(
        self, query: DeadLetterQuery, owner: str, at: float, *, stale_before: float = 0.0
    ) -> DeadLetter | None:
        """Take the oldest claimable entry matching ``query`` for redriving; one claimer wins.

        Claimable: pending, or claimed before ``stale_before`` by a redriver that died before
        its redrive run was recorded (a claim is a lease: it expires).
        """

    def begin_redrive(
        self, entry_id: str, owner: str, run: NewRun, source_run_id: str | None
    ) -> bool:
        """Record the run redriving a claimed entry, with the journal it continues, at once.

        Returns:
            Whether ``owner`` still held the claim (else nothing was written).
        """

    def resolve_step(
        self,
        run_id: str,
        seq: int,
        *,
        happened: bool,
        response: bytes | None,
        result_json: str | None,
        blobs: Sequence[Blob],
        by: str | None,
        note: str | None,
        at: float,
    ) -> bool:
        """Record an operator's word on an in-doubt step of an ended run.

        Returns:
            Whether the step was in doubt (else nothing was written).
        """

    def list_resolutions(self, run_id: str) -> list[StepResolution]:
        """Return the operators' resolutions of a run's in-doubt steps, by step."""

    def finish_dead_letter(
        self, entry_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> None:
        """Record how a redrive ended."""

    def release_dead_letter(self, entry_id: str) -> None:
        """Give a claimed entry back (its redrive could not start)."""

    def settle_dead_letter(
        self, run_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> bool:
        """Mark a run's pending entry redriven by a run made outside a redrive."""

    def purge_dead_letters(self, query: DeadLetterQuery) -> int:
        """Mark matching pending entries purged; return how many."""

    def breaker(self, name: str, kind: str) -> BreakerState:
        """Return a breaker's state (closed when never used)."""

    def update_breaker(
        self, name: str, kind: str, change: Callable[[BreakerState], tuple[BreakerState, T]]
    ) -> T:
        """Apply ``change`` to a breaker in one transaction; record the transition, if any."""

    def list_breakers(self) -> list[BreakerState]:
        """Return every breaker the ledger knows."""

    def breaker_events(self, name: str, limit: int = 100) -> list[BreakerEvent]:
        """Return a breaker's transitions, newest first."""

    def add_budget_calls(self, counts: Sequence[tuple[str, int, int]]) -> None:
        """Add call counts ``(name, bucket, calls)`` to the shared retry-budget windows."""

    def spend_retry(
        self, name: str, *, since: int, bucket: int, allows: Callable[[int, int], bool]
    ) -> bool:
        """Record one retry of ``name`` if ``allows(calls, retries)`` over the window says so."""

    # attempts -----------------------------------------------------------------------------
    def start_attempt(
        self,
        run_id: str,
        attempt: int,
        start_time: float,
        owner: str,
        *,
        epoch: int,
        base_seq: int = 0,
        completed_at_start: int = 0,
    ) -> None:
        """Record the start of an attempt (fenced) and bump the run's attempt count."""

    def finish_attempt(
        self, run_id: str, attempt: int, outcome: AttemptOutcome, *, epoch: int
    ) -> None:
        """Record the end of an attempt (fenced)."""

    def mark_fenced(self, run_id: str, attempt: int, epoch: int, at: float) -> None:
        """Note, on a stale owner's own attempt row, when it found the run taken over."""

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        """Return a run's attempts in order."""

    # journal ------------------------------------------------------------------------------
    def write_steps(self, rows: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int) -> None:
        """Write (insert or replace) a batch of one run's steps in one transaction (fenced)."""

    def write_intent(
        self, row: StepRow, pending: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Write buffered steps and a mutating step's intent in one durable transaction.

        Fenced, and refused once the run was cancelled (:class:`~seawall.RunCancelled`).
        """

    def complete_step(
        self,
        run_id: str,
        seq: int,
        *,
        status: str,
        response: bytes | None,
        end_time: float,
        error_type: str | None,
        error_message: str | None,
        tries: int,
        blobs: Sequence[Blob],
        epoch: int,
    ) -> None:
        """Record the outcome of a step whose intent was written (fenced)."""

    def load_steps(self, run_id: str) -> list[StepRecord]:
        """Return a run's journal in sequence order."""

    def delete_steps_from(self, run_id: str, seq: int, *, epoch: int) -> None:
        """Drop the journal tail from ``seq`` on (superseded read-only steps; fenced)."""

    # blobs --------------------------------------------------------------------------------
    def get_blobs(self, hashes: Sequence[str]) -> Mapping[str, Blob]:
        """Return the stored blobs among ``hashes``."""

    # leases -------------------------------------------------------------------------------
    def renew_leases(self, leases: Mapping[str, int], expires_at: float) -> list[str]:
        """Extend the leases held on runs ``{run_id: epoch}``.

        Returns:
            The runs among them that another owner took over (their epoch moved on).
        """

    def expired_runs(self, now: float, limit: int) -> list[RunRecord]:
        """Return unfinished runs whose lease lapsed before ``now``."""

    def claim_run(self, run_id: str, owner: str, expires_at: float, now: float) -> int | None:
        """Take over a run whose lease lapsed (or a pending one), raising its epoch.

        Returns:
            The new epoch of the run's lease, or ``None`` when another owner holds it.
        """

    def claim_and_start(
        self, run_id: str, owner: str, expires_at: float, now: float, agents: Sequence[str]
    ) -> ClaimedRun | None:
        """Claim a run of one of ``agents`` as :meth:`claim_run` does, and start it, at once.

        One transaction: the claim (the run pending or its lease lapsed before ``now``, its
        epoch raised), and, for a run that never started an attempt (nor a commit, nor a
        recorded replay), its first attempt started at ``now`` under the new epoch. Returns
        the run's row as left, its input column and the blob that column refers to, so the
        claimer reads nothing more to execute it (but the chunks of a very large input).

        Returns:
            The claimed run, or ``None``: another owner holds it, it ended, it is no agent
            run of ``agents``, or no run has this id (a caller tells these apart by reading it).
        """

    # takeover sweeps -----------------------------------------------------------------------
    def claim_sweeper(self, name: str, owner: str, now: float, expires_at: float) -> bool:
        """Take the sweeper lease ``name`` when it lapsed before ``now``, or renew it for ``owner``.

        Returns:
            Whether ``owner`` holds it until ``expires_at``; one owner at a time does.
        """

    def resend_lapsed(
        self, route: str, now: float, agents: Sequence[str], again_before: float, limit: int
    ) -> list[RunRecord]:
        """Mark for sending again the runs of ``agents`` on ``route`` whose lease lapsed.

        A run is returned once per lapse of its lease, and again only if it was last marked
        before ``again_before``. Oldest lapse first; concurrent callers get different runs.
        """

    def lapsed_runs(
        self, route: str | None, agents: Sequence[str], now: float, limit: int
    ) -> list[RunRecord]:
        """Return the runs of ``agents`` on ``route`` (``None``: local) whose lease lapsed."""

    def compact_counts(self, before: float, since: float = 0.0) -> int:
        """Fold the dashboard's counters of the hours that ended by ``before`` (from ``since``).

        Each key's rows become one and keys netting to zero lose theirs; every sum a read takes
        is unchanged. Safe beside other folds and while runs are written. Returns the rows
        folded.
        """

    def count_unclaimed(self, route: str | None, agents: Sequence[str], sent_before: float) -> int:
        """Count the runs of ``agents`` sent to ``route`` that no worker claimed yet.

        Only runs whose id was last sent before ``sent_before`` count.
        """

    def oldest_unclaimed(
        self, route: str | None, agents: Sequence[str], again_before: float, limit: int
    ) -> list[RunRecord]:
        """Return the ``limit`` unclaimed runs of ``agents`` on ``route`` sent first.

        Runs re-sent since ``again_before`` are left out.
        """

    def mark_resent(self, run_ids: Sequence[str], now: float, again_before: float) -> list[str]:
        """Mark re-sent those of ``run_ids`` still unclaimed and not re-sent since; return them."""

    def ledger_bytes(self) -> int:
        """Return the storage the ledger uses, in bytes."""
