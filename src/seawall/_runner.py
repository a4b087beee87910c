"""The attempt loop of one run: execute, classify, retry, record, finish.

Used for new runs and for resumed ones alike; a resumed run simply starts with the journal
its dead owner left, so completed steps are served instead of executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from seawall import _drift, _settle, _timing
from seawall._context import AsyncContext, Context, entered
from seawall._failures import ErrorClass, FailureCause, RunStatus, cause_of, classify
from seawall._journal import Journal
from seawall._outcome import (
    MISSING_OUTPUT,
    Failure,
    RecordedError,
    error_message,
    error_type,
    finish,
    settle_failure,
)
from seawall.errors import (
    AttemptAbandoned,
    BreakerOpenError,
    InDoubtError,
    JournalDivergenceError,
    RunCancelled,
    SeawallError,
    VerificationError,
)
from seawall.ledger import AttemptOutcome
from seawall.observe.logs import logger as run_log
from seawall.observe.logs import run_fields

if TYPE_CHECKING:
    from seawall._app import LiveRun, Seawall
    from seawall._payload import Blob
    from seawall._registry import AgentSpec
    from seawall._result import RunResult
    from seawall.artifacts import StagingArea
    from seawall.ledger import RunRecord, StepRecord
    from seawall.observe.tracing import RunTrace

_NEVER_RETRY = (InDoubtError, JournalDivergenceError)


async def execute_run(
    app: Seawall,
    spec: AgentSpec,
    run_id: str,
    inputs: dict[str, Any],
    *,
    prior_attempts: int = 0,
    started: float | None = None,
    replay_source: str | None = None,
) -> RunResult:
    """Run attempts of ``spec`` on ``inputs`` until one succeeds or the policies give up.

    The run row must already exist and be leased to this process. The run is traced (an
    ``invoke_agent`` span) when an OpenTelemetry SDK is configured; see :func:`_attempts`.
    """
    with app.telemetry.run(app.store, run_id, graph=False) as traced:
        result = await _attempts(
            app, spec, run_id, inputs, prior_attempts, started, replay_source, traced
        )
    _log_end(result)
    return result


def _log_end(result: RunResult) -> None:
    error_class = None if result.error_class is None else result.error_class.value
    attempts = len(result.attempts)
    fields = run_fields(result.run_id, result.agent, attempts, error_class)
    if result.ok:
        run_log.info("run %s (%s) succeeded", result.run_id, result.agent, extra=fields)
        return
    error = result.error or {}
    run_log.warning(
        "run %s (%s) ended %s after %d attempt(s): %s (%s: %s)",
        result.run_id,
        result.agent,
        result.status.value,
        attempts,
        error_class,
        error.get("type"),
        error.get("message"),
        extra=fields,
    )


async def _attempts(  # noqa: C901, PLR0912, PLR0915 - the attempt loop reads top-down
    app: Seawall,
    spec: AgentSpec,
    run_id: str,
    inputs: dict[str, Any],
    prior_attempts: int = 0,
    started: float | None = None,
    replay_source: str | None = None,
    traced: RunTrace | None = None,
) -> RunResult:
    """Run attempts of ``spec`` on ``inputs`` until one succeeds or the policies give up.

    The run row must already exist and be leased to this process.

    Args:
        app: The app.
        spec: The agent.
        run_id: The run.
        inputs: The agent's keyword inputs.
        prior_attempts: Attempts already recorded (a resumed run's).
        started: When the run was submitted, for the retry deadline and the guards.
        replay_source: For a recorded replay, the original run whose journal serves every
            step: nothing is executed live, one attempt is made, nothing is compensated.
        traced: The run's trace, when an OpenTelemetry SDK is configured.

    Returns:
        The run's result, as recorded.
    """
    store = app.store
    attempt = prior_attempts
    first_start = started if started is not None else time.time()
    feedback: tuple[str, ...] = ()
    drift_retries = 0
    fresh_reads = False
    app.leases.hold(run_id)
    try:
        while True:
            attempt += 1
            attempt_start = time.time()
            store.start_attempt(run_id, attempt, attempt_start, app.leases.owner)
            staging = app.staging_for(run_id, attempt)
            if replay_source is not None:
                recorded = store.load_steps(replay_source)
            elif attempt > 1 or prior_attempts:
                recorded = store.load_steps(run_id)
            else:
                recorded = []
            superseded: list[StepRecord] = []
            if fresh_reads:
                # A drift retry asks the model again: only side effects are served.
                superseded = [step for step in recorded if not step.mutating]
                recorded = [step for step in recorded if step.mutating]
            journal = Journal(
                store,
                app.codec,
                run_id,
                attempt,
                recorded,
                flush_every=app.flush_every,
                flush_interval=app.flush_interval,
                guards=spec.guards,
                started=first_start,
                feedback=feedback,
                strict=replay_source is not None,
                breakers=None if replay_source is not None else app.breakers,
                budgets=None if replay_source is not None else app.budgets,
                prices=app.prices,
                superseded=superseded,
                trace=traced,
            )
            if spec.retry_budget is not None:
                app.budgets.count(f"agent:{spec.name}")
            live = app.live.enter(run_id, journal)
            output: Any = None
            failure: Failure | None = None
            output_blobs: list[Blob] = []
            output_hash = output_column = None
            try:
                output = await _attempt(app, spec, journal, inputs, staging, live)
                journal.flush()
                await _drift.verify_output(app, spec, run_id, attempt, output, inputs, journal)
                _, output_hash, output_column, output_blobs = journal.encode(
                    output, f"output of agent {spec.name!r}"
                )
                if staging is not None and staging.staged():
                    output_hash = _settle.commit(
                        app, run_id, attempt, staging, output_hash, output_column, output_blobs
                    )
                    output_blobs = []
            except Exception as exc:
                with contextlib.suppress(Exception):
                    journal.flush()
                failure = Failure(exc, _classify(journal, staging), cause_of(exc))
            except AttemptAbandoned as exc:
                failure = Failure(exc, _classify(journal, staging), FailureCause.TIMEOUT)
            except RunCancelled as exc:
                with contextlib.suppress(Exception):
                    journal.flush()
                failure = Failure(exc, _classify(journal, staging), FailureCause.CANCELLED)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    journal.flush()
                if journal.cancelled is None:
                    # Interpreter shutdown or the caller's cancellation: keep what is journaled
                    # and leave the run leased; once the lease lapses, `seawall resume` picks
                    # it up.
                    raise
                failure = Failure(
                    RunCancelled(journal.cancelled),
                    _classify(journal, staging),
                    FailureCause.CANCELLED,
                )
                del exc
            finally:
                app.live.leave(run_id)
            end = time.time()
            if failure is None:
                if staging is not None:
                    staging.discard()
                store.finish_attempt(
                    run_id,
                    attempt,
                    AttemptOutcome("succeeded", end, None, None, None, None, None),
                )
                if traced is not None:
                    traced.attempt(attempt, "succeeded", None, None, None)
                return finish(
                    app,
                    spec,
                    run_id,
                    journal,
                    attempt,
                    RunStatus.SUCCEEDED,
                    output,
                    output_hash,
                    output_column,
                    output_blobs,
                    None,
                )
            error = failure.error
            if isinstance(error, BreakerOpenError):
                failure.error_class = ErrorClass.CASCADE
            drift = isinstance(error, VerificationError)
            if drift:
                failure.error_class = ErrorClass.SILENT_DRIFT
                failure.cause = FailureCause.VERIFICATION_FAILED
            retry_delay: float | None = None
            # A recorded replay shows what the code does with the journal, once: never retried.
            may_retry = replay_source is None
            if may_retry and drift and drift_retries < spec.on_drift.retries:
                drift_retries += 1
                retry_delay = 0.0
                feedback = tuple(getattr(error, "feedback", None) or ())
                fresh_reads = True
            elif (
                may_retry
                and not drift
                and failure.cause is not FailureCause.CANCELLED
                and not isinstance(error, _NEVER_RETRY)
            ):
                decision = spec.retry.decide(attempt, error, end - first_start)
                retry_delay = decision.delay if decision.retry else None
                # A server's wait the policy refuses is stated in the run's error.
                error = failure.error = decision.failure(error)
                if (
                    retry_delay is not None
                    and spec.retry_budget is not None
                    and not app.budgets.allow_retry(f"agent:{spec.name}", spec.retry_budget)
                ):
                    retry_delay = None  # the agent's retry budget is spent: no retry storm
            store.finish_attempt(
                run_id,
                attempt,
                AttemptOutcome(
                    "failed",
                    end,
                    failure.error_class,
                    failure.cause,
                    error_type(error),
                    error_message(error),
                    retry_delay,
                ),
            )
            if traced is not None:
                traced.attempt(attempt, "failed", error, failure.error_class.value, retry_delay)
            if retry_delay is not None:
                run_log.info(
                    "run %s (%s): attempt %d failed (%s: %s); retrying in %.2fs",
                    run_id,
                    spec.name,
                    attempt,
                    error_type(error),
                    error_message(error),
                    retry_delay,
                    extra=run_fields(run_id, spec.name, attempt, failure.error_class.value),
                )
                if staging is not None:
                    staging.discard()
                await _timing.asleep(retry_delay)
                continue
            if staging is not None and replay_source is not None:
                staging.discard()
            if replay_source is not None:
                return await settle_failure(
                    app, spec, run_id, journal, attempt, failure, compensate=False
                )
            if drift:
                return await _drift.settle_drift(
                    app, spec, run_id, journal, attempt, failure, output, staging, inputs
                )
            if staging is not None:
                staging.discard()
            return await settle_failure(app, spec, run_id, journal, attempt, failure)
    finally:
        app.leases.release(run_id)


def _classify(journal: Journal, staging: StagingArea | None) -> ErrorClass:
    return classify(journal.mutations, staged=staging is not None and staging.staged())


async def _attempt(
    app: Seawall,
    spec: AgentSpec,
    journal: Journal,
    inputs: dict[str, Any],
    staging: StagingArea | None,
    live: LiveRun,
) -> Any:
    loop = asyncio.get_running_loop()
    runner = app.agent_runner(journal.run_id)
    if spec.is_async:
        actx = AsyncContext(journal, spec.name, app.resolve_tool, loop, staging, inputs, runner)
        with entered(actx):
            # The task copies the context variables as they are now.
            task = asyncio.ensure_future(spec.fn(actx, **inputs))
        live.task = task
        live.loop = loop
        if spec.timeout is None:
            return await task
        try:
            return await asyncio.wait_for(task, spec.timeout)
        except TimeoutError:
            journal.abandoned = True
            raise
    ctx = Context(journal, spec.name, app.resolve_tool, loop, staging, inputs, runner)
    future = loop.run_in_executor(app.agent_threads, _call_sync, spec, ctx, inputs)
    if spec.timeout is None:
        return await future
    try:
        return await asyncio.wait_for(asyncio.shield(future), spec.timeout)
    except TimeoutError:
        # A thread cannot be stopped from outside: fence its journal so anything it still
        # tries to record is refused, and its next ctx call raises AttemptAbandoned.
        journal.abandoned = True
        future.add_done_callback(_ignore_outcome)
        raise


def _call_sync(spec: AgentSpec, ctx: Context, inputs: dict[str, Any]) -> Any:
    with entered(ctx):
        return spec.fn(ctx, **inputs)


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def finish_crashed(
    app: Seawall, spec: AgentSpec, run_id: str, attempts: int, *, compensate: bool = True
) -> RunResult:
    """Close a crashed run whose retry budget is spent (it died in its last attempt)."""
    journal = Journal(app.store, app.codec, run_id, attempts, app.store.load_steps(run_id))
    failure = Failure(
        SeawallError(
            f"the process running attempt {attempts} died and the agent's retry policy allows "
            f"no more attempts ({spec.retry.attempts})",
            run_id=run_id,
        ),
        classify(journal.mutations),
        FailureCause.CRASHED,
    )
    return await settle_failure(
        app, spec, run_id, journal, attempts, failure, compensate=compensate
    )


async def resume_settling(app: Seawall, spec: AgentSpec, run: RunRecord) -> RunResult | None:
    """Continue a run its dead owner left committing or compensating.

    Returns:
        The run's result, or ``None`` when the agent must run again (a commit that could
        not be finished was rolled back).
    """
    journal = Journal(
        app.store, app.codec, run.run_id, run.attempts, app.store.load_steps(run.run_id)
    )
    if run.phase == "committing":
        if not _settle.roll_forward(app, run):
            return None
        columns = app.store.get_run_io(run.run_id)
        output_column = None if columns is None else columns[1]
        app.store.finish_attempt(
            run.run_id,
            run.attempts,
            AttemptOutcome("succeeded", time.time(), None, None, None, None, None),
        )
        return finish(
            app,
            spec,
            run.run_id,
            journal,
            run.attempts,
            RunStatus.SUCCEEDED,
            MISSING_OUTPUT,
            run.output_hash,
            output_column,
            [],
            None,
        )
    if run.phase == "compensating":
        await _settle.compensate(app, run.run_id)
        error = run.error or {
            "code": "exception",
            "type": run.error_type,
            "message": run.error_message,
        }
        failure = Failure(
            RecordedError(error),
            run.error_class or ErrorClass.PARTIAL_WRITE,
            run.failure_cause or FailureCause.EXCEPTION,
        )
        return finish(
            app,
            spec,
            run.run_id,
            journal,
            run.attempts,
            RunStatus.FAILED,
            None,
            None,
            None,
            [],
            failure,
        )
    return None
