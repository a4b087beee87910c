"""Taking over a run whose owner died (its lease lapsed), and seeing it through.

The new owner claims the run (raising its epoch, so the old owner is fenced if it wakes up),
closes the dead owner's attempt as ``crashed`` (which spends none of the agent's retry budget),
and continues from the journal: a run cut off in its commit or its compensations finishes them;
any other continues its journal line, serving every completed step. A run whose process keeps
dying without progress stops as ``crash_loop`` (see :mod:`seawall.runtime.lineage`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from seawall import _payload
from seawall._failures import ErrorClass, FailureCause, RunStatus, classify
from seawall.errors import LeaseLostError, RunNotFoundError, SeawallError
from seawall.ledger import AttemptOutcome
from seawall.runtime import settle
from seawall.runtime.journal import Journal
from seawall.runtime.lineage import completed_steps, crash_streak, lineage_of
from seawall.runtime.outcome import MISSING_OUTPUT, Failure, RecordedError, finish, settle_failure
from seawall.runtime.runner import execute_run
from seawall.runtime.serving import is_effect

if TYPE_CHECKING:
    from seawall._result import RunResult
    from seawall.ledger import AttemptRecord, RunRecord, StepRecord
    from seawall.runtime.host import Host
    from seawall.runtime.outcome import Stored
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime


async def resume_agent_run(
    rt: Runtime,
    run: RunRecord,
    now: float,
    *,
    epoch: int | None = None,
    host: Host | None = None,
) -> RunResult | None:
    """Take ``run`` over (unless ``epoch`` says it is already claimed) and see it through.

    Returns:
        The run's result, or ``None`` when another live process holds its lease.
    """
    spec = rt.registry.agent(run.agent)
    if epoch is None:
        epoch = await rt.io.run(
            rt.store.claim_run, run.run_id, rt.leases.owner, rt.leases.expiry(), now
        )
        if epoch is None:
            return None
    try:
        return await _see_through(rt, spec, run, now, epoch, host)
    except LeaseLostError:
        # Another process claimed the run after this one did (this one stalled past its lease
        # between its claim and its first write): the run is that process's now, and the write
        # that found out was refused, so this process wrote nothing under the new epoch.
        return None


async def _see_through(
    rt: Runtime, spec: AgentSpec, run: RunRecord, now: float, epoch: int, host: Host | None
) -> RunResult | None:
    """Close what the dead owner left open, then continue the run's journal under ``epoch``."""
    if run.replay_mode == "recorded":
        # A recorded replay serves a journal; resumed live it could make real calls.
        return await _close(rt, spec, run.run_id, epoch, max(run.attempts, 1), crashed=True)
    columns = await rt.io.run(rt.store.get_run_io, run.run_id)
    if columns is None:
        raise RunNotFoundError(f"run {run.run_id} vanished from the ledger", run_id=run.run_id)
    inputs = _payload.unpack(columns[0], rt.store.get_blobs)
    if run.phase is not None:
        settled = await _resume_settling(rt, spec, run, epoch)
        if settled is not None:
            return settled
        run = rt.get_run(run.run_id)
    attempts = await rt.io.run(rt.store.list_attempts, run.run_id)
    if attempts and attempts[-1].status == "running":
        steps = await rt.io.run(rt.store.load_steps, run.run_id)
        streak = await _close_crashed(rt, spec, run.run_id, epoch, attempts, steps, now)
        if streak >= spec.retry.crash_loop:
            return await _crash_loop(rt, spec, run.run_id, epoch, len(attempts), steps, streak)
        attempts = await rt.io.run(rt.store.list_attempts, run.run_id)
    lineage = lineage_of(attempts)
    if lineage.settled is not None:
        return await _close(rt, spec, run.run_id, epoch, lineage.attempts, last=lineage.settled)
    return await execute_run(
        rt,
        spec,
        run.run_id,
        inputs,
        epoch=epoch,
        lineage=lineage,
        started=run.start_time,
        host=host,
    )


async def _close_crashed(
    rt: Runtime,
    spec: AgentSpec,
    run_id: str,
    epoch: int,
    attempts: list[AttemptRecord],
    steps: list[StepRecord],
    now: float,
) -> int:
    """Record the dead owner's attempt as crashed; return the crashes in a row without progress."""
    last = attempts[-1]
    streak = crash_streak(attempts, completed_steps(steps))
    mutations = sum(1 for s in steps if is_effect(s))
    limit = spec.retry.crash_loop
    decision = (
        f"its process ({last.owner}) stopped renewing its lease: it died or stalled; taken over "
        f"by {rt.leases.owner} (epoch {epoch}), which continues from the journal. A crash "
        "spends none of the retry budget"
        + (f"; no progress in {streak} takeover(s) in a row (crash_loop={limit})" if streak else "")
    )
    await rt.io.run(
        rt.store.finish_attempt,
        run_id,
        last.attempt,
        AttemptOutcome(
            "failed",
            now,
            classify(mutations),
            FailureCause.CRASHED,
            "Crashed",
            f"the owner {last.owner} stopped renewing its lease",
            None,
            decision,
        ),
        epoch=epoch,
    )
    return streak


async def _crash_loop(
    rt: Runtime,
    spec: AgentSpec,
    run_id: str,
    epoch: int,
    attempts: int,
    steps: list[StepRecord],
    streak: int,
) -> RunResult:
    """Stop a run whose process keeps dying at the same point."""
    journal = Journal(rt.store, rt.codec, run_id, attempts, steps, epoch=epoch)
    failure = Failure(
        SeawallError(
            f"the process running this run died {streak} times in a row without progress (the "
            f"journal gained no completed step between takeovers; Retry(crash_loop="
            f"{spec.retry.crash_loop})): something in the agent or a tool kills its process at "
            "the same point. The run stops rather than kill more processes; fix it, then redrive",
            run_id=run_id,
            crashes=streak,
        ),
        classify(journal.mutations),
        FailureCause.CRASH_LOOP,
    )
    rt.leases.hold(run_id, epoch)
    try:
        return await settle_failure(rt, spec, journal, attempts, failure)
    finally:
        rt.leases.release(run_id)


async def _close(
    rt: Runtime,
    spec: AgentSpec,
    run_id: str,
    epoch: int,
    attempts: int,
    *,
    crashed: bool = False,
    last: AttemptRecord | None = None,
) -> RunResult:
    """Finish a run without running it again.

    It is a recorded replay cut off by a crash, or a run whose final failure was recorded on its
    last attempt but whose end was not.
    """
    steps = await rt.io.run(rt.store.load_steps, run_id)
    journal = Journal(rt.store, rt.codec, run_id, attempts, steps, epoch=epoch)
    if last is not None:
        error = RecordedError(
            {
                "code": "exception",
                "type": last.error_type or "Exception",
                "message": last.error_message or "",
            }
        )
        failure = Failure(
            error,
            last.error_class or classify(journal.mutations),
            last.failure_cause or FailureCause.EXCEPTION,
        )
    else:
        failure = Failure(
            SeawallError(
                f"the process running attempt {attempts} died during a recorded replay, which "
                "is never resumed live",
                run_id=run_id,
            ),
            classify(journal.mutations),
            FailureCause.CRASHED,
        )
    rt.leases.hold(run_id, epoch)
    try:
        return await settle_failure(rt, spec, journal, attempts, failure, compensate=not crashed)
    finally:
        rt.leases.release(run_id)


async def _resume_settling(
    rt: Runtime, spec: AgentSpec, run: RunRecord, epoch: int
) -> RunResult | None:
    """Continue a run its dead owner left committing or compensating.

    Returns:
        The run's result, or ``None`` when the agent must run again (a commit that could
        not be finished was rolled back).
    """
    steps = await rt.io.run(rt.store.load_steps, run.run_id)
    journal = Journal(rt.store, rt.codec, run.run_id, run.attempts, steps, epoch=epoch)
    rt.leases.hold(run.run_id, epoch)
    try:
        if run.phase == "committing":
            if not await settle.roll_forward(rt, run, epoch):
                return None
            columns = await rt.io.run(rt.store.get_run_io, run.run_id)
            output_column = None if columns is None else columns[1]
            await rt.io.run(
                rt.store.finish_attempt,
                run.run_id,
                run.attempts,
                AttemptOutcome("succeeded", time.time(), None, None, None, None, None),
                epoch=epoch,
            )
            stored: Stored = (run.output_hash, output_column, [])
            return await finish(
                rt, spec, journal, run.attempts, RunStatus.SUCCEEDED, MISSING_OUTPUT, stored, None
            )
        if run.phase == "compensating":
            await settle.compensate(rt, run.run_id, epoch)
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
            return await finish(
                rt, spec, journal, run.attempts, RunStatus.FAILED, None, None, failure
            )
        return None
    finally:
        rt.leases.release(run.run_id)
