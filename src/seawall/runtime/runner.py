"""The attempt loop of one run: execute, classify, retry, record, finish.

Used for new runs and for resumed ones alike; a resumed run starts with the journal its dead
owner left (and its :class:`~seawall.runtime.lineage.Lineage`), so completed steps are served
instead of executed. Every write names the epoch of the lease this process holds: when another
process took the run over, or the ledger cannot be reached, the attempt stops where it is and the
run stays resumable (it is never recorded as the agent's failure).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from seawall import _faults, _payload, _timing
from seawall._failures import MISUSE, ErrorClass, FailureCause, RunStatus
from seawall._result import RunResult
from seawall.errors import (
    BreakerOpenError,
    InDoubtError,
    JournalDivergenceError,
    LeaseLostError,
    LedgerError,
    VerificationError,
)
from seawall.ledger import AttemptOutcome, AttemptRecord
from seawall.observe.logs import log_run_end, run_fields
from seawall.observe.logs import logger as run_log
from seawall.runtime import endings, settle, verification
from seawall.runtime.attempt import start_agent
from seawall.runtime.journal import Journal
from seawall.runtime.lineage import Lineage
from seawall.runtime.outcome import (
    Failure,
    error_message,
    error_type,
    outcome,
    settle_failure,
)
from seawall.runtime.playback import Playback

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence
    from contextlib import AbstractContextManager

    from seawall._payload import Blob
    from seawall.artifacts import StagingArea
    from seawall.ledger import StepRecord
    from seawall.observe.tracing import RunTrace
    from seawall.runtime.host import Host
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime

logger = logging.getLogger("seawall.runner")
_NEVER_RETRY = (InDoubtError, JournalDivergenceError)
_UNTRACED: Final = contextlib.nullcontext(None)
"""The context of an untraced run (stateless, so shared by every run)."""


def execute_run(
    rt: Runtime,
    spec: AgentSpec,
    run_id: str,
    inputs: dict[str, Any],
    *,
    epoch: int,
    lineage: Lineage | None = None,
    started: float | None = None,
    replay_source: str | None = None,
    replay_mutations: bool = False,
    replay_report: list[dict[str, Any]] | None = None,
    host: Host | None = None,
    begun: str | None = None,
    begun_at: float | None = None,
) -> Coroutine[Any, Any, RunResult]:
    """Run attempts of ``spec`` on ``inputs`` until one succeeds or the policies give up.

    The run row must already exist and be leased to this process at ``epoch``. The run is traced
    (an ``invoke_agent`` span) when an OpenTelemetry SDK is configured.

    Args:
        rt: The app's services.
        spec: The agent.
        run_id: The run.
        inputs: The agent's keyword inputs.
        epoch: The epoch of the lease this process holds on the run.
        lineage: What earlier attempts left (a resumed run's).
        started: When the run was submitted, for the retry deadline and the guards.
        replay_source: For a recorded replay, the original run whose journal serves the steps
            (see :mod:`seawall.runtime.playback`): one attempt is made, nothing is compensated.
        replay_mutations: For a recorded replay: side effects the recording lacks may run live.
        replay_report: For a recorded replay: receives what was served, run live or stopped.
        host: For a child run of a sync agent: the parent's thread, which runs this run's
            sync agent while it waits for it (so nesting never exhausts the worker threads).
        begun: For a run recorded with its first attempt started (``Runtime.begin_run``): its
            input hash. That attempt is not started again, and the run's result is built from
            what this process recorded, without reading it back.
        begun_at: When that attempt started, when not at ``started`` (a queued run a worker
            claimed and started at once: ``Store.claim_and_start``).

    Returns:
        The run's result, as recorded. A run whose attempt was interrupted (its lease lost, the
        ledger gone) is returned with status ``running``: it goes on elsewhere, or resumes.
    """
    loop = _Attempts(rt, spec, run_id, inputs, epoch, lineage or Lineage(), None, host)
    loop.begun = begun
    loop.begun_at = begun_at
    loop.records = None if begun is None else []
    loop.replay_mutations = replay_mutations
    loop.replay_report = replay_report
    # The loop's own coroutine, with no frame around it: a run in flight holds one fewer.
    return loop.run(started, replay_source)


class _Attempts:
    """The attempt loop of one run (its state between attempts)."""

    __slots__ = (
        "attempt",
        "base",
        "begun",
        "begun_at",
        "drift_retries",
        "epoch",
        "errors",
        "feedback",
        "host",
        "inputs",
        "new_line",
        "opened",
        "records",
        "replay_mutations",
        "replay_report",
        "resumed",
        "rt",
        "run_id",
        "spec",
        "traced",
    )

    def __init__(
        self,
        rt: Runtime,
        spec: AgentSpec,
        run_id: str,
        inputs: dict[str, Any],
        epoch: int,
        lineage: Lineage,
        traced: RunTrace | None,
        host: Host | None,
    ) -> None:
        self.rt = rt
        self.spec = spec
        self.run_id = run_id
        self.inputs = inputs
        self.epoch = epoch
        self.traced = traced
        self.host = host
        self.attempt = lineage.attempts
        self.errors = lineage.errors
        self.drift_retries = lineage.drift_retries
        self.base = lineage.base
        self.new_line = lineage.new_line
        self.resumed = lineage.attempts > 0 or lineage.journaled
        self.feedback: tuple[str, ...] = ()
        self.replay_mutations = False
        self.replay_report: list[dict[str, Any]] | None = None
        self.begun: str | None = None
        """The input hash of a run recorded with its first attempt started."""
        self.begun_at: float | None = None
        self.records: list[AttemptRecord] | None = None
        """Every ended attempt of the run as recorded, when this process recorded them all."""
        self.opened: tuple[float, str, int] = (0.0, "", 0)
        """The current attempt's start time, owner and completed steps at its start."""

    async def run(self, started: float | None, replay_source: str | None) -> RunResult:
        """Make attempts until the run ends (traced when telemetry is on); log its end."""
        rt = self.rt
        first_start = started if started is not None else time.time()
        # Untraced, a run holds no context manager (a generator) while it executes.
        tracing: AbstractContextManager[RunTrace | None] = (
            rt.telemetry.run(rt.store, self.run_id, graph=False)
            if rt.telemetry.enabled()
            else _UNTRACED
        )
        with tracing as self.traced:
            rt.leases.hold(self.run_id, self.epoch)
            try:
                while True:
                    self.attempt += 1
                    try:
                        journal = await self._journal(first_start, replay_source)
                    except (LeaseLostError, LedgerError) as exc:
                        result = await self._interrupted(exc)
                        break
                    outcome = await self._one(journal, first_start)
                    if isinstance(outcome, RunResult):
                        result = outcome
                        break
                    await _timing.asleep(outcome)
            finally:
                rt.leases.release(self.run_id)
        log_run_end(result)
        return result

    async def _journal(self, first_start: float, replay_source: str | None) -> Journal:
        """Load what the journal holds, start the attempt (fenced), and open its journal."""
        rt, io, store = self.rt, self.rt.io, self.rt.store
        strict = replay_source is not None
        recorded: Sequence[StepRecord] = []
        original_base = 0
        if strict:
            assert replay_source is not None  # noqa: S101 - narrowed for the type checker
            recorded = await io.run(store.load_steps, replay_source)
            attempts = await io.run(store.list_attempts, replay_source)
            original_base = attempts[-1].base_seq if attempts else 0
        elif self.attempt > 1 or self.resumed:
            recorded = await io.run(store.load_steps, self.run_id)
        if self.new_line:
            # An error or drift retry asks again on a new line, after every step written.
            self.base = max((s.seq for s in recorded), default=self.base)
            self.new_line = False
        blobs = await _blobs_of(rt, recorded)
        playback = (
            Playback(
                recorded,
                original_base,
                allow_mutations=self.replay_mutations,
                report=self.replay_report,
            )
            if strict
            else None
        )
        completed = sum(1 for s in recorded if s.status == "completed")
        if self.begun is not None and self.attempt == 1:
            # Recorded with the run (create and start), or with its claim (claim and start).
            start = first_start if self.begun_at is None else self.begun_at
        else:
            start = time.time()
            await io.run(
                store.start_attempt,
                self.run_id,
                self.attempt,
                start,
                rt.leases.owner,
                epoch=self.epoch,
                base_seq=self.base,
                completed_at_start=completed,
            )
        self.opened = (start, rt.leases.owner, completed)
        return Journal(
            store,
            rt.codec,
            self.run_id,
            self.attempt,
            recorded,
            epoch=self.epoch,
            base=self.base,
            flush_every=rt.flush_every,
            flush_interval=rt.flush_interval,
            guards=self.spec.guards,
            started=first_start,
            feedback=self.feedback,
            strict=strict,
            breakers=None if strict else rt.breakers,
            budgets=None if strict else rt.budgets,
            prices=rt.prices,
            blobs=blobs,
            trace=self.traced,
            playback=playback,
        )

    async def _one(self, journal: Journal, first_start: float) -> RunResult | float:
        """One attempt; return the run's result, or the backoff before the next attempt."""
        rt, spec, run_id, attempt = self.rt, self.spec, self.run_id, self.attempt
        staging = rt.staging_for(run_id, attempt)
        if spec.retry_budget is not None:
            rt.budgets.count(f"agent:{spec.name}")
        live = rt.live.enter(run_id, journal)
        output: Any = None
        failure: Failure | None = None
        output_blobs: list[Blob] = []
        output_hash = output_column = None
        try:
            output = await start_agent(rt, spec, journal, staging, live, self.inputs, self.host)
            journal.check()
            if journal.playback is not None:
                journal.playback.finish()
            else:
                journal.check_all_effects_served()
            if spec.verify or spec.min_confidence is not None or journal.trim is not None:
                await rt.io.run(journal.flush)
            await verification.verify_output(
                rt, spec, run_id, attempt, output, self.inputs, journal
            )
            output_hash, output_column, output_blobs = journal.snapshot(
                output, f"output of agent {spec.name!r}"
            )
            if staging is not None and staging.staged():
                await rt.io.run(journal.flush)
                output_hash = await settle.commit(
                    rt,
                    run_id,
                    attempt,
                    staging,
                    output_hash,
                    output_column,
                    output_blobs,
                    epoch=journal.epoch,
                )
                output_blobs = []
        except BaseException as exc:
            interruption = journal.interrupted or (
                exc if isinstance(exc, LeaseLostError | LedgerError) else None
            )
            if interruption is not None:
                rt.live.leave(run_id)
                return await self._interrupted(interruption)
            failure = await endings.failure_of(rt, spec, self.inputs, journal, staging, exc)
        finally:
            rt.live.leave(run_id)
        end = time.time()
        if failure is None:
            if staging is not None:
                staging.discard()
            _faults.point("run.finishing")
            try:
                return await self._succeeded(
                    journal,
                    AttemptOutcome("succeeded", end, None, None, None, None, None),
                    output,
                    output_hash,
                    output_column,
                    output_blobs,
                )
            except (LeaseLostError, LedgerError) as exc:
                return await self._interrupted(exc)
        return await self._after_failure(journal, failure, staging, output, end - first_start)

    async def _succeeded(
        self,
        journal: Journal,
        ended: AttemptOutcome,
        output: Any,
        output_hash: str | None,
        output_column: bytes | None,
        output_blobs: list[Blob],
    ) -> RunResult:
        """Record the attempt's end, the steps still buffered and the run's end in one write."""
        rt, spec, run_id, attempt = self.rt, self.spec, self.run_id, self.attempt
        final = outcome(journal, attempt, RunStatus.SUCCEEDED, output_hash, output_column, None)
        steps, blobs = journal.pending, journal.pending_blobs
        await rt.io.together(
            rt.store.end_run,
            run_id,
            attempt,
            ended,
            final,
            steps,
            [*blobs, *output_blobs] if blobs else output_blobs,
            epoch=journal.epoch,
        )
        journal.pending, journal.pending_blobs = [], []
        self._ended(ended)
        if self.traced is not None:
            self.traced.attempt(attempt, "succeeded", None, None, None)
        if self.records is None or self.begun is None:
            result = await rt.io.run(rt.result_of, run_id, output=output, agent=spec.name)
        else:
            result = RunResult(
                run_id=run_id,
                agent=spec.name,
                status=RunStatus.SUCCEEDED,
                output=output,
                error_class=None,
                failure_cause=None,
                error=None,
                attempts=tuple(self.records),
                tokens_used=final.input_tokens + final.output_tokens,
                cost_usd=final.cost_usd,
                input_hash=self.begun,
                output_hash=output_hash,
            )
        rt.monitor.finished(spec, result, journal, output_column, output_blobs)
        return result

    def _ended(self, ended: AttemptOutcome) -> None:
        """Keep, in memory, the current attempt as its end was recorded."""
        if self.records is not None:
            start, owner, completed = self.opened
            self.records.append(
                AttemptRecord(
                    self.run_id,
                    self.attempt,
                    start,
                    ended.end_time,
                    ended.status,
                    ended.error_class,
                    ended.failure_cause,
                    ended.error_type,
                    ended.error_message,
                    ended.retry_delay,
                    owner,
                    self.epoch,
                    self.base,
                    completed,
                    None,
                    ended.decision,
                )
            )

    async def _after_failure(  # noqa: C901 - decide, record, then settle: read top-down
        self,
        journal: Journal,
        failure: Failure,
        staging: StagingArea | None,
        output: Any,
        elapsed: float,
    ) -> RunResult | float:
        """Decide whether to retry; record the attempt's end; settle the run or return the wait."""
        rt, spec, run_id, attempt = self.rt, self.spec, self.run_id, self.attempt
        error = failure.error
        if isinstance(error, BreakerOpenError):
            failure.error_class = ErrorClass.CASCADE
        drift = isinstance(error, VerificationError)
        if drift:
            failure.error_class = ErrorClass.SILENT_DRIFT
            failure.cause = FailureCause.VERIFICATION_FAILED
        retry_delay, decision = await self._decide(journal, failure, drift, elapsed)
        ended = AttemptOutcome(
            "failed",
            time.time(),
            failure.error_class,
            failure.cause,
            error_type(error),
            error_message(error),
            retry_delay,
            decision,
        )
        try:
            await rt.io.run(rt.store.finish_attempt, run_id, attempt, ended, epoch=journal.epoch)
        except (LeaseLostError, LedgerError) as exc:
            return await self._interrupted(exc)
        self._ended(ended)
        if self.traced is not None:
            self.traced.attempt(attempt, "failed", error, failure.error_class.value, retry_delay)
        if retry_delay is not None:
            run_log.info(
                "run %s (%s): attempt %d failed (%s: %s); retrying in %.2fs: %s",
                run_id,
                spec.name,
                attempt,
                error_type(error),
                error_message(error),
                retry_delay,
                decision,
                extra=run_fields(run_id, spec.name, attempt, failure.error_class.value),
            )
            if staging is not None:
                staging.discard()
            self.new_line = True
            return retry_delay
        try:
            if journal.strict:
                if staging is not None:
                    staging.discard()
                return await settle_failure(rt, spec, journal, attempt, failure, compensate=False)
            if drift:
                return await verification.settle_drift(
                    rt, spec, journal, attempt, failure, output, staging, self.inputs
                )
            if staging is not None:
                staging.discard()
            return await settle_failure(rt, spec, journal, attempt, failure)
        except (LeaseLostError, LedgerError) as exc:
            return await self._interrupted(exc)

    async def _decide(  # noqa: PLR0911 - one answer per kind of failure
        self, journal: Journal, failure: Failure, drift: bool, elapsed: float
    ) -> tuple[float | None, str]:
        """The wait before the next attempt (``None``: no retry), and why, in words."""
        spec, error = self.spec, failure.error
        if journal.strict:
            return None, "not retried: a recorded replay runs once"
        if drift:
            if self.drift_retries < spec.on_drift.retries:
                self.drift_retries += 1
                self.feedback = tuple(getattr(error, "feedback", None) or ())
                return 0.0, (
                    f"retried with the verifiers' feedback (drift retry {self.drift_retries} of "
                    f"{spec.on_drift.retries}); the next attempt asks again and serves only the "
                    "side effects already done"
                )
            return None, f"not retried: on_drift policy ({spec.on_drift.then}) applies"
        if failure.cause is FailureCause.CANCELLED:
            return None, "not retried: cancelled by an operator"
        if isinstance(error, InDoubtError):
            return None, "not retried: a call is in doubt; an operator must say whether it happened"
        if isinstance(error, JournalDivergenceError):
            return None, "not retried: the code diverged from a journal holding side effects"
        if isinstance(error, MISUSE):
            return None, (
                f"not retried: {type(error).__name__} is a programming or input error; "
                "fix the call and redrive"
            )
        self.errors += 1
        decision = spec.retry.decide(self.errors, error, elapsed, asked=journal.asked)
        # A server's wait the policy refuses is stated in the run's error.
        failure.error = decision.failure(error)
        if not decision.retry:
            before = "" if journal.asked or decision.transient else " before any model or tool call"
            return None, f"not retried: {decision.reason}{before}"
        if spec.retry_budget is not None and not await self.rt.io.run(
            self.rt.budgets.allow_retry, f"agent:{spec.name}", spec.retry_budget
        ):
            return None, f"not retried: the retry budget of agent {spec.name!r} is spent"
        effects = journal.mutations
        served = f"; it serves the {effects} side effect(s) already done" if effects else ""
        return decision.delay, (
            f"retried in {decision.delay:.2f}s ({decision.reason}, error {self.errors} of "
            f"{spec.retry.attempts}): the next attempt asks the model and the read-only tools "
            f"again{served}"
        )

    async def _interrupted(self, error: BaseException) -> RunResult:
        """The attempt stopped for a reason that is not the agent's: leave the run resumable."""
        return await endings.interrupted(
            self.rt, self.spec, self.run_id, self.attempt, self.epoch, error
        )


async def _blobs_of(rt: Runtime, steps: Sequence[StepRecord]) -> dict[str, Blob]:
    """Read the blobs the recorded steps refer to, so serving them reads nothing."""
    refs = _payload.column_refs(steps)
    if not refs:
        return {}
    return dict(await rt.io.run(rt.store.get_blobs, refs))
