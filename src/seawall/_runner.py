"""The attempt loop of one run: execute, classify, retry, record, finish.

Used for new runs and for resumed ones alike; a resumed run simply starts with the journal
its dead owner left, so completed steps are served instead of executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seawall import _settle, _timing
from seawall._context import AsyncContext, Context
from seawall._failures import ErrorClass, FailureCause, RunStatus, cause_of, classify
from seawall._journal import Journal
from seawall.errors import AttemptAbandoned, InDoubtError, JournalDivergenceError, SeawallError
from seawall.ledger import AttemptOutcome, RunOutcome

if TYPE_CHECKING:
    from seawall._app import Seawall
    from seawall._payload import Blob
    from seawall._registry import AgentSpec
    from seawall._result import RunResult
    from seawall.artifacts import StagingArea
    from seawall.ledger import RunRecord

_NEVER_RETRY = (InDoubtError, JournalDivergenceError)
_MISSING_OUTPUT: Any = object()


@dataclass(slots=True)
class _Failure:
    error: BaseException
    error_class: ErrorClass
    cause: FailureCause


def error_json(error: BaseException) -> dict[str, Any]:
    """Return the structured JSON form of an error for the ledger."""
    if isinstance(error, _RecordedError):
        return error.error
    if isinstance(error, SeawallError):
        return error.to_dict()
    if isinstance(error, AttemptAbandoned | TimeoutError) and not str(error):
        return {"code": "timeout", "type": "TimeoutError", "message": "the attempt timed out"}
    return {"code": "exception", "type": type(error).__name__, "message": str(error)[:4000]}


async def execute_run(
    app: Seawall,
    spec: AgentSpec,
    run_id: str,
    inputs: dict[str, Any],
    *,
    prior_attempts: int = 0,
    started: float | None = None,
) -> RunResult:
    """Run attempts of ``spec`` on ``inputs`` until one succeeds or the policy gives up.

    The run row must already exist and be leased to this process.

    Args:
        app: The app.
        spec: The agent.
        run_id: The run.
        inputs: The agent's keyword inputs.
        prior_attempts: Attempts already recorded (a resumed run's).
        started: When the first attempt started, for the retry deadline.

    Returns:
        The run's result, as recorded.
    """
    store = app.store
    attempt = prior_attempts
    first_start = started if started is not None else time.time()
    app.leases.hold(run_id)
    try:
        while True:
            attempt += 1
            attempt_start = time.time()
            store.start_attempt(run_id, attempt, attempt_start, app.leases.owner)
            staging = app.staging_for(run_id, attempt)
            recorded = store.load_steps(run_id) if attempt > 1 or prior_attempts else []
            journal = Journal(
                store,
                app.codec,
                run_id,
                attempt,
                recorded,
                flush_every=app.flush_every,
                flush_interval=app.flush_interval,
            )
            output: Any = None
            failure: _Failure | None = None
            output_blobs: list[Blob] = []
            output_hash = output_column = None
            try:
                output = await _attempt(app, spec, journal, inputs, staging)
                journal.flush()
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
                failure = _Failure(exc, _classify(journal, staging), cause_of(exc))
            except AttemptAbandoned as exc:
                failure = _Failure(exc, _classify(journal, staging), FailureCause.TIMEOUT)
            except BaseException:
                # Cancellation or interpreter shutdown: keep what is journaled and leave the
                # run leased; once the lease lapses, `seawall resume` picks it up.
                with contextlib.suppress(Exception):
                    journal.flush()
                raise
            end = time.time()
            if staging is not None:
                staging.discard()
            if failure is None:
                store.finish_attempt(
                    run_id,
                    attempt,
                    AttemptOutcome("succeeded", end, None, None, None, None, None),
                )
                return _finish(
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
            decision = None
            if not isinstance(failure.error, _NEVER_RETRY):
                decision = spec.retry.decide(attempt, failure.error, end - first_start)
            error = failure.error
            store.finish_attempt(
                run_id,
                attempt,
                AttemptOutcome(
                    "failed",
                    end,
                    failure.error_class,
                    failure.cause,
                    _error_type(error),
                    _error_message(error),
                    decision.delay if decision is not None and decision.retry else None,
                ),
            )
            if decision is None or not decision.retry:
                return await settle_failure(app, spec, run_id, journal, attempt, failure)
            await _timing.asleep(decision.delay)
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
) -> Any:
    loop = asyncio.get_running_loop()
    if spec.is_async:
        actx = AsyncContext(journal, spec.name, app.resolve_tool, loop, staging)
        coro = spec.fn(actx, **inputs)
        if spec.timeout is None:
            return await coro
        try:
            return await asyncio.wait_for(coro, spec.timeout)
        except TimeoutError:
            journal.abandoned = True
            raise
    ctx = Context(journal, spec.name, app.resolve_tool, loop, staging)
    future = loop.run_in_executor(app.executor, _call_sync, spec, ctx, inputs)
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
    return spec.fn(ctx, **inputs)


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _error_type(error: BaseException) -> str:
    if isinstance(error, _RecordedError):
        return str(error.error.get("type") or "Exception")
    if isinstance(error, AttemptAbandoned):
        return "TimeoutError"
    return type(error).__name__


def _error_message(error: BaseException) -> str:
    text = str(error)
    if not text and isinstance(error, TimeoutError | AttemptAbandoned):
        return "the attempt timed out"
    return text[:4000]


def _finish(
    app: Seawall,
    spec: AgentSpec,
    run_id: str,
    journal: Journal,
    attempts: int,
    status: RunStatus,
    output: Any,
    output_hash: str | None,
    output_column: bytes | None,
    output_blobs: list[Blob],
    failure: _Failure | None,
) -> RunResult:
    app.store.finish_run(
        run_id,
        _outcome(journal, attempts, status, output_hash, output_column, failure),
        output_blobs,
    )
    if output is _MISSING_OUTPUT:
        return app.result_of(run_id, agent=spec.name)
    return app.result_of(run_id, output=output, agent=spec.name)


def _outcome(
    journal: Journal,
    attempts: int,
    status: RunStatus,
    output_hash: str | None,
    output_column: bytes | None,
    failure: _Failure | None,
) -> RunOutcome:
    input_tokens, output_tokens, cost = journal.totals()
    error = None if failure is None else error_json(failure.error)
    return RunOutcome(
        status=status,
        end_time=time.time(),
        output_hash=output_hash,
        output_column=output_column,
        error_class=None if failure is None else failure.error_class,
        failure_cause=None if failure is None else failure.cause,
        error_type=None if failure is None else _error_type(failure.error),
        error_message=None if failure is None else _error_message(failure.error),
        error_json=None if error is None else json.dumps(error, sort_keys=True),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        attempts=attempts,
    )


async def finish_crashed(app: Seawall, spec: AgentSpec, run_id: str, attempts: int) -> RunResult:
    """Close a crashed run whose retry budget is spent (it died in its last attempt)."""
    journal = Journal(app.store, app.codec, run_id, attempts, app.store.load_steps(run_id))
    failure = _Failure(
        SeawallError(
            f"the process running attempt {attempts} died and the agent's retry policy allows "
            f"no more attempts ({spec.retry.attempts})",
            run_id=run_id,
        ),
        classify(journal.mutations),
        FailureCause.CRASHED,
    )
    return await settle_failure(app, spec, run_id, journal, attempts, failure)


async def settle_failure(
    app: Seawall, spec: AgentSpec, run_id: str, journal: Journal, attempts: int, failure: _Failure
) -> RunResult:
    """End a run that failed for good: compensate its side effects first, if it has any."""
    if _settle.needs_compensation(app, failure.error_class, run_id):
        app.store.begin_compensation(
            run_id, _outcome(journal, attempts, RunStatus.FAILED, None, None, failure)
        )
        await _settle.compensate(app, run_id)
    return _finish(
        app, spec, run_id, journal, attempts, RunStatus.FAILED, None, None, None, [], failure
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
        return _finish(
            app,
            spec,
            run.run_id,
            journal,
            run.attempts,
            RunStatus.SUCCEEDED,
            _MISSING_OUTPUT,
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
        failure = _Failure(
            _RecordedError(error),
            run.error_class or ErrorClass.PARTIAL_WRITE,
            run.failure_cause or FailureCause.EXCEPTION,
        )
        return _finish(
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


class _RecordedError(Exception):
    """A failure already recorded in the ledger, re-stated when a resumer ends the run."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error
