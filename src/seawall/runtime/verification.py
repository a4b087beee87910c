"""Silent drift: the runtime's verification of outputs and what happens when it fails.

"No verification, no trust": after an agent reports done, its verifiers (and its confidence)
decide whether the output is trusted. When they reject it, the agent's ``on_drift`` policy
degrades: retry with the verifiers' feedback, a narrower fallback agent, quarantine, or a
hand-off to a person, who approves (possibly an edited output, verified again) or rejects it.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall.artifacts import StagingArea
from seawall.errors import (
    HandOffDecidedError,
    HandOffNotFoundError,
    UsageError,
    VerificationError,
)
from seawall.ledger import HandOffRecord
from seawall.runtime import settle
from seawall.runtime.children import AgentRunner
from seawall.runtime.journal import Journal
from seawall.runtime.outcome import (
    Failure,
    RecordedError,
    Stored,
    finish,
    outcome,
    settle_failure,
)
from seawall.verify import Verdict, VerifyContext, run_verifiers

if TYPE_CHECKING:
    from seawall._result import RunResult
    from seawall.ledger import RunRecord
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime


def _confidence_of(output: Any, journal: Journal) -> float | None:
    if journal.confidence is not None:
        return journal.confidence
    value = output.get("confidence") if isinstance(output, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


async def judge_output(
    rt: Runtime,
    spec: AgentSpec,
    run_id: str,
    output: Any,
    inputs: dict[str, Any],
    facts: Any,
    confidence: float | None,
) -> list[Verdict]:
    """Run the agent's verifiers and its confidence threshold over ``output``."""
    verdicts: list[Verdict] = []
    if spec.verify:
        context = VerifyContext(
            inputs=inputs, run_id=run_id, facts=facts, run_agent=AgentRunner(rt, run_id)
        )
        verdicts = await run_verifiers(output, spec.verify, context)
    if spec.min_confidence is not None and confidence is not None:
        passed = confidence >= spec.min_confidence
        verdicts.append(
            Verdict(
                name="confidence",
                passed=passed,
                message=""
                if passed
                else f"confidence {confidence:g} is below the threshold {spec.min_confidence:g}",
                score=confidence,
            )
        )
    return verdicts


def rejection(run_id: str, verdicts: list[Verdict]) -> VerificationError:
    """The error raised when verdicts reject an output."""
    failed = [v for v in verdicts if not v.passed]
    return VerificationError(
        "the output was not trusted: " + "; ".join(f"{v.name}: {v.message}" for v in failed),
        run_id=run_id,
        verdicts=[v.to_dict() for v in verdicts],
        feedback=[f"{v.name}: {v.message}" for v in failed],
    )


async def verify_output(
    rt: Runtime,
    spec: AgentSpec,
    run_id: str,
    attempt: int,
    output: Any,
    inputs: dict[str, Any],
    journal: Journal,
) -> None:
    """Verify an attempt's output; record every verdict.

    Raises:
        VerificationError: A verifier (or the confidence threshold) rejected it.
    """
    confidence = _confidence_of(output, journal)
    if not spec.verify and (spec.min_confidence is None or confidence is None):
        return
    start = time.time()
    verdicts = await judge_output(rt, spec, run_id, output, inputs, journal.facts, confidence)
    listed = [v.to_dict() for v in verdicts]
    await rt.io.run(
        rt.store.record_verdicts, run_id, attempt, "output", listed, epoch=journal.epoch
    )
    if journal.trace is not None:
        journal.trace.verification("output", listed, start, time.time())
    if not all(v.passed for v in verdicts):
        raise rejection(run_id, verdicts)


async def settle_drift(
    rt: Runtime,
    spec: AgentSpec,
    journal: Journal,
    attempt: int,
    failure: Failure,
    output: Any,
    staging: StagingArea | None,
    inputs: dict[str, Any],
) -> RunResult:
    """Apply the agent's degradation policy once retries with feedback are spent."""
    run_id = journal.run_id
    policy = spec.on_drift
    if policy.fallback is not None:
        fallback = rt.registry.agent(policy.fallback)
        child = await rt.engine.start_child(fallback, inputs, parent_run_id=run_id)
        await rt.io.run(
            rt.store.record_verdicts,
            run_id,
            attempt,
            "fallback",
            [
                {
                    "name": f"fallback({fallback.name})",
                    "passed": child.ok,
                    "message": f"child run {child.run_id} ended {child.status.value}",
                }
            ],
            epoch=journal.epoch,
        )
        if child.ok:
            if staging is not None:
                staging.discard()
            stored = journal.snapshot(child.output, "fallback output")
            return await finish(
                rt, spec, journal, attempt, RunStatus.SUCCEEDED, child.output, stored, None
            )
    if policy.then == "quarantine":
        if staging is not None:
            staging.discard()
        kept = _encoded(journal, output, "quarantined output")
        return await finish(rt, spec, journal, attempt, RunStatus.QUARANTINED, None, kept, failure)
    if policy.then == "handoff":
        return await _park(rt, spec, journal, attempt, failure, output, staging)
    if staging is not None:
        staging.discard()
    return await settle_failure(rt, spec, journal, attempt, failure)


def _encoded(journal: Journal, value: Any, where: str) -> Stored:
    if value is None:
        return None, None, []
    return journal.snapshot(value, where)


async def _park(
    rt: Runtime,
    spec: AgentSpec,
    journal: Journal,
    attempt: int,
    failure: Failure,
    output: Any,
    staging: StagingArea | None,
) -> RunResult:
    """Hand the output to a person: the run waits, holding no worker and no lease."""
    run_id = journal.run_id
    output_hash, column, blobs = _encoded(journal, output, "output handed to a person")
    await rt.io.run(
        rt.store.park_run,
        run_id,
        outcome(journal, attempt, RunStatus.AWAITING_HUMAN, output_hash, column, failure),
        blobs,
        epoch=journal.epoch,
    )
    error = failure.error
    staged = staging is not None and staging.staged()
    handoff = HandOffRecord(
        handoff_id=uuid.uuid4().hex,
        run_id=run_id,
        kind="verification_failed",
        reason=str(error),
        subject={
            "attempt": attempt,
            "output": output,
            "verdicts": getattr(error, "verdicts", None) or [],
            "staging": str(staging.dir) if staged and staging is not None else None,
        },
        status="open",
        created_at=time.time(),
    )
    await rt.io.run(rt.store.open_handoff, handoff, epoch=journal.epoch)
    rt.monitor.handoff_opened(handoff, spec.name)
    if journal.trace is not None:
        journal.trace.handoff(handoff.handoff_id, "verification_failed", str(error))
    return await rt.io.run(rt.result_of, run_id, agent=spec.name)


async def decide(
    rt: Runtime,
    handoff_id: str,
    *,
    approve: bool,
    output: Any,
    edited: bool,
    by: str | None,
    note: str | None,
) -> RunResult:
    """Approve (optionally with an edited output, verified again) or reject a hand-off.

    Raises:
        HandOffNotFoundError: No hand-off has this id.
        HandOffDecidedError: It was already decided.
        VerificationError: The edited output failed the agent's verifiers (still open).
    """
    handoff = rt.store.get_handoff(handoff_id)
    if handoff is None:
        raise HandOffNotFoundError(
            f"no hand-off {handoff_id!r}; list them with `seawall handoffs list`",
            handoff_id=handoff_id,
        )
    if handoff.status != "open":
        raise HandOffDecidedError(
            f"hand-off {handoff_id} was already decided ({handoff.decision} by "
            f"{handoff.decided_by or 'someone'}); nothing changed",
            handoff_id=handoff_id,
        )
    run = rt.get_run(handoff.run_id)
    spec = rt.registry.agent(run.agent)
    subject = handoff.subject or {}
    attempt = int(subject.get("attempt") or run.attempts)
    if approve and edited:
        verdicts = await judge_output(
            rt, spec, run.run_id, output, rt.inputs_of(run.run_id), {}, None
        )
        await rt.io.run(
            rt.store.record_verdicts,
            run.run_id,
            attempt,
            "handoff",
            [v.to_dict() for v in verdicts],
            epoch=run.epoch,
        )
        if not all(v.passed for v in verdicts):
            raise rejection(run.run_id, verdicts)
    if not rt.store.decide_handoff(
        handoff_id,
        decision="approved" if approve else "rejected",
        decided_by=by,
        note=note,
        at=time.time(),
    ):
        raise HandOffDecidedError(
            f"hand-off {handoff_id} was decided meanwhile", handoff_id=handoff_id
        )
    epoch = await rt.io.run(rt.store.claim_parked, run.run_id, rt.leases.owner, rt.leases.expiry())
    if epoch is None:
        raise UsageError(
            f"run {run.run_id} is not waiting for a person "
            f"(it is {rt.get_run(run.run_id).status.value})",
            run_id=run.run_id,
        )
    steps = await rt.io.run(rt.store.load_steps, run.run_id)
    journal = Journal(rt.store, rt.codec, run.run_id, attempt, steps, epoch=epoch)
    rt.leases.hold(run.run_id, epoch)
    try:
        return await _carry_out(
            rt, spec, run, journal, attempt, subject, approve, output, edited, by, note
        )
    finally:
        rt.leases.release(run.run_id)


async def _carry_out(
    rt: Runtime,
    spec: AgentSpec,
    run: RunRecord,
    journal: Journal,
    attempt: int,
    subject: dict[str, Any],
    approve: bool,
    output: Any,
    edited: bool,
    by: str | None,
    note: str | None,
) -> RunResult:
    """Finish a run a person decided on: rejected, or committed with its (edited) output."""
    staging_path = subject.get("staging")
    staging = (
        StagingArea(rt.staging_root, run.run_id, attempt, rt.max_artifact_bytes)
        if staging_path
        else None
    )
    if not approve:
        if staging is not None:
            staging.discard()
        failure = Failure(
            RecordedError(
                {
                    "code": "handoff_rejected",
                    "type": "HandOffRejected",
                    "message": f"rejected by {by or 'a person'}: {note or 'no reason given'}",
                }
            ),
            ErrorClass.SILENT_DRIFT,
            FailureCause.VERIFICATION_FAILED,
        )
        return await settle_failure(rt, spec, journal, attempt, failure)
    if not edited:
        output = await rt.io.run(rt.output_of, run.run_id)
    output_hash, column, blobs = journal.snapshot(output, "approved output")
    if staging is not None and staging.staged():
        output_hash = await settle.commit(
            rt, run.run_id, attempt, staging, output_hash, column, blobs, epoch=journal.epoch
        )
        blobs = []
    stored = (output_hash, column, blobs)
    return await finish(rt, spec, journal, attempt, RunStatus.SUCCEEDED, output, stored, None)
