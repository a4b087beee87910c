"""How an attempt ends when it does not succeed.

Either the agent failed (its exception classified into a :class:`~seawall.runtime.outcome.Failure`:
the error class from what the attempt did, the cause from the exception), or the attempt was
interrupted for a reason that is not the agent's (another process took the run over, or the
ledger cannot be reached): then nothing is recorded as a failure and the run stays resumable.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, FailureCause, RunStatus, cause_of, classify
from seawall._result import RunResult
from seawall.errors import AttemptAbandoned, InputError, LeaseLostError, LedgerError, RunCancelled
from seawall.observe.logs import run_fields
from seawall.runtime.outcome import Failure, error_json

if TYPE_CHECKING:
    from seawall.artifacts import StagingArea
    from seawall.runtime.journal import Journal
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime

logger = logging.getLogger("seawall.runner")


async def failure_of(
    rt: Runtime,
    spec: AgentSpec,
    inputs: dict[str, Any],
    journal: Journal,
    staging: StagingArea | None,
    exc: BaseException,
) -> Failure:
    """Classify what ended the attempt (a BaseException that is not ours is re-raised)."""
    if isinstance(exc, AttemptAbandoned):
        return Failure(exc, classify_now(journal, staging), FailureCause.TIMEOUT)
    if isinstance(exc, RunCancelled):
        with contextlib.suppress(Exception):
            await rt.io.run(journal.flush)
        return Failure(exc, classify_now(journal, staging), FailureCause.CANCELLED)
    if not isinstance(exc, Exception):
        if journal.cancelled is None:
            # Interpreter shutdown or the caller's cancellation: keep what is journaled
            # and leave the run leased; once the lease lapses, it resumes elsewhere.
            raise exc
        return Failure(
            RunCancelled(journal.cancelled),
            classify_now(journal, staging),
            FailureCause.CANCELLED,
        )
    with contextlib.suppress(Exception):
        await rt.io.run(journal.flush)
    error: BaseException = exc
    if isinstance(exc, TypeError) and journal.calls == 0:
        error = misfit(spec, inputs) or exc
    return Failure(error, classify_now(journal, staging), cause_of(error))


async def interrupted(
    rt: Runtime, spec: AgentSpec, run_id: str, attempt: int, epoch: int, error: BaseException
) -> RunResult:
    """The attempt stopped for a reason that is not the agent's: leave the run resumable."""
    rt.leases.release(run_id)
    lost = isinstance(error, LeaseLostError)
    if lost:
        with contextlib.suppress(LedgerError):
            await rt.io.run(rt.store.mark_fenced, run_id, attempt, epoch, time.time())
    cause = FailureCause.LEASE_LOST if lost else FailureCause.LEDGER_UNAVAILABLE
    logger.warning(
        "run %s (%s): attempt %d stopped (%s): %s; the run %s",
        run_id,
        spec.name,
        attempt,
        cause.value,
        error,
        "goes on under its new owner" if lost else "resumes once the ledger is back",
        extra=run_fields(run_id, spec.name, attempt),
    )
    try:
        recorded: RunResult | None = await rt.io.run(rt.result_of, run_id)
    except LedgerError:
        recorded = None
    if recorded is not None and (
        recorded.status.final or recorded.status is RunStatus.AWAITING_HUMAN
    ):
        return recorded
    if recorded is not None:
        return replace(recorded, failure_cause=cause, error=error_json(error))
    return RunResult(
        run_id=run_id,
        agent=spec.name,
        status=RunStatus.RUNNING,
        output=None,
        error_class=None,
        failure_cause=cause,
        error=error_json(error),
        attempts=(),
        tokens_used=0,
        cost_usd=None,
        input_hash="",
        output_hash=None,
    )


def misfit(spec: AgentSpec, inputs: dict[str, Any]) -> InputError | None:
    """The input error when ``inputs`` do not fit the agent's signature, else ``None``."""
    try:
        inspect.signature(spec.fn).bind(None, **inputs)
    except TypeError as exc:
        return InputError(
            f"the inputs of agent {spec.name!r} do not fit its signature ({exc}); pass "
            f"exactly the keyword arguments it takes: app.run({spec.name}, ...)",
            agent=spec.name,
            inputs=sorted(inputs),
        )
    except ValueError:
        return None
    return None


def classify_now(journal: Journal, staging: StagingArea | None) -> ErrorClass:
    """The error class of a failure now: what the attempt did and staged so far."""
    return classify(journal.mutations, staged=staging is not None and staging.staged())
