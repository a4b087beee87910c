"""How a run's end is recorded: the failure, its JSON form, the final ledger fields."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall.errors import AttemptAbandoned, RunCancelled, SeawallError
from seawall.ledger import RunOutcome
from seawall.runtime import settle

if TYPE_CHECKING:
    from seawall._payload import Blob
    from seawall._result import RunResult
    from seawall.runtime.journal import Journal
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime

MISSING_OUTPUT: Any = object()
"""Passed as ``output`` to :func:`finish` to read the output back from the ledger."""


@dataclass(slots=True)
class Failure:
    """Why an attempt or a run failed, as the runtime classified it."""

    error: BaseException
    error_class: ErrorClass
    cause: FailureCause


Stored: TypeAlias = "tuple[str | None, bytes | None, list[Blob]]"
"""An output's stored form: its hash, its ledger column and the blobs the column refers to."""


def error_json(error: BaseException) -> dict[str, Any]:
    """Return the structured JSON form of an error for the ledger."""
    if isinstance(error, RecordedError):
        return error.error
    if isinstance(error, RunCancelled):
        return {"code": "cancelled", "type": "RunCancelled", "message": error.reason or "cancelled"}
    if isinstance(error, SeawallError):
        return error.to_dict()
    if isinstance(error, AttemptAbandoned | TimeoutError) and not str(error):
        return {"code": "timeout", "type": "TimeoutError", "message": "the attempt timed out"}
    return {"code": "exception", "type": type(error).__name__, "message": str(error)[:4000]}


def error_type(error: BaseException) -> str:
    """The type name recorded for the error that ended an attempt."""
    if isinstance(error, RunCancelled):
        return "RunCancelled"
    if isinstance(error, RecordedError):
        return str(error.error.get("type") or "Exception")
    if isinstance(error, AttemptAbandoned):
        return "TimeoutError"
    return type(error).__name__


def error_message(error: BaseException) -> str:
    """The message recorded for the error that ended an attempt."""
    if isinstance(error, RunCancelled):
        return f"cancelled by an operator: {error.reason}" if error.reason else "cancelled"
    text = str(error)
    if not text and isinstance(error, TimeoutError | AttemptAbandoned):
        return "the attempt timed out"
    return text[:4000]


async def finish(
    rt: Runtime,
    spec: AgentSpec,
    journal: Journal,
    attempts: int,
    status: RunStatus,
    output: Any,
    stored: Stored | None,
    failure: Failure | None,
) -> RunResult:
    """Record the end of the journal's run (fenced by its epoch) and return its result.

    ``stored`` is the output's stored form, ``(hash, column, blobs)`` as
    :meth:`~seawall.runtime.journal.Journal.snapshot` makes it; ``None`` when nothing is kept.

    Raises:
        LeaseLostError: Another process took the run over: nothing was recorded.
        LedgerError: The ledger could not be reached.
    """
    run_id = journal.run_id
    output_hash, output_column, output_blobs = stored or (None, None, [])
    await rt.io.run(
        rt.store.finish_run,
        run_id,
        outcome(journal, attempts, status, output_hash, output_column, failure),
        output_blobs,
        epoch=journal.epoch,
    )
    if output is MISSING_OUTPUT:
        result = await rt.io.run(rt.result_of, run_id, agent=spec.name)
    else:
        result = await rt.io.run(rt.result_of, run_id, output=output, agent=spec.name)
    rt.monitor.finished(spec, result, journal, output_column, output_blobs)
    return result


def outcome(
    journal: Journal,
    attempts: int,
    status: RunStatus,
    output_hash: str | None,
    output_column: bytes | None,
    failure: Failure | None,
) -> RunOutcome:
    """The final ledger fields of a run that ends with ``status``."""
    usage = journal.totals()
    error = None if failure is None else error_json(failure.error)
    return RunOutcome(
        status=status,
        end_time=time.time(),
        output_hash=output_hash,
        output_column=output_column,
        error_class=None if failure is None else failure.error_class,
        failure_cause=None if failure is None else failure.cause,
        error_type=None if failure is None else error_type(failure.error),
        error_message=None if failure is None else error_message(failure.error),
        error_json=None if error is None else json.dumps(error, sort_keys=True),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
        attempts=attempts,
        retried_input_tokens=usage.retried_input_tokens,
        retried_output_tokens=usage.retried_output_tokens,
        retried_cost_usd=usage.retried_cost_usd,
        unknown_usage_calls=usage.unknown_usage,
        unpriced_calls=usage.unpriced,
    )


async def settle_failure(
    rt: Runtime,
    spec: AgentSpec,
    journal: Journal,
    attempts: int,
    failure: Failure,
    *,
    compensate: bool = True,
) -> RunResult:
    """End a run that failed (or was cancelled) for good: compensate its side effects first.

    A failed ``partial_write`` and a cancelled run with completed side effects are compensated.
    """
    run_id = journal.run_id
    cancelled = failure.cause is FailureCause.CANCELLED
    status = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
    undo_class = ErrorClass.PARTIAL_WRITE if cancelled else failure.error_class
    if compensate and await settle.needs_compensation(rt, undo_class, run_id):
        await rt.io.run(
            rt.store.begin_compensation,
            run_id,
            outcome(journal, attempts, status, None, None, failure),
            epoch=journal.epoch,
        )
        await settle.compensate(rt, run_id, journal.epoch)
    return await finish(rt, spec, journal, attempts, status, None, None, failure)


class RecordedError(Exception):
    """A failure already recorded in the ledger, re-stated when a resumer ends the run."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error
