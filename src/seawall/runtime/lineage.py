"""Where a run stands across its attempts, read from the ledger: a pure function of its rows.

Attempts end in three ways that matter here:

- an *error* of the agent (it raised, a verifier rejected its output): this spends the agent's
  retry budget, and a retry starts a new journal line (it asks the model and the read-only tools
  again; only side effects are served);
- an *interruption*: the process died or stalled past its lease (``crashed``, ``lease_lost``) or
  lost the ledger (``ledger_unavailable``). This is not the agent's failure: it spends nothing,
  and the next attempt continues the same line, serving everything the journal holds;
- success.

A run whose process dies again and again without progress (no completed step added to the journal
between takeovers) is in a *crash loop*: after ``Retry.crash_loop`` such takeovers in a row it
stops with failure cause ``crash_loop`` instead of killing one process after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from seawall._failures import INTERRUPTIONS, FailureCause

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger import AttemptRecord, StepRecord


@dataclass(frozen=True, slots=True)
class Lineage:
    """What the attempts so far mean for the next one.

    Attributes:
        attempts: Attempts recorded (the next one is numbered after them).
        errors: Attempts that ended in an error of the agent (they count against
            ``Retry.attempts``; drift retries count apart).
        drift_retries: Attempts retried with their verifiers' feedback.
        base: Where the next attempt's journal line starts, when it continues a line.
        new_line: Whether the next attempt starts a new line (an error or drift retry was
            scheduled before the process died).
        settled: The last attempt failed with no retry to follow, but the run was never
            finished (its process died in between): it must be finished, not run again.
        journaled: The journal already holds steps for the next attempt to read (a resumed
            run, or a redrive carrying on the journal of the run it redrives).
    """

    attempts: int = 0
    errors: int = 0
    drift_retries: int = 0
    base: int = 0
    new_line: bool = False
    settled: AttemptRecord | None = None
    journaled: bool = False


def lineage_of(attempts: Sequence[AttemptRecord]) -> Lineage:
    """Read a run's attempts (in order) into its lineage."""
    if not attempts:
        return Lineage()
    errors = sum(
        1
        for a in attempts
        if a.status == "failed"
        and a.failure_cause not in INTERRUPTIONS
        and a.failure_cause is not FailureCause.VERIFICATION_FAILED
    )
    drift = sum(
        1
        for a in attempts
        if a.failure_cause is FailureCause.VERIFICATION_FAILED and a.retry_delay is not None
    )
    last = attempts[-1]
    scheduled = last.status == "failed" and last.retry_delay is not None
    interrupted = last.status == "running" or last.failure_cause in INTERRUPTIONS
    settled = last if last.status == "failed" and not scheduled and not interrupted else None
    return Lineage(
        attempts=len(attempts),
        errors=errors,
        drift_retries=drift,
        base=last.base_seq,
        new_line=scheduled,
        settled=settled,
        journaled=True,
    )


def completed_steps(steps: Sequence[StepRecord]) -> int:
    """How many of a run's steps completed (the measure of its progress)."""
    return sum(1 for s in steps if s.status == "completed")


def crash_streak(attempts: Sequence[AttemptRecord], completed_now: int) -> int:
    """How many takeovers in a row, ending with the last attempt, found no progress.

    The last attempt is the one whose process just died (still ``running``); an earlier one
    counts when it crashed and the journal held as many completed steps when the next one
    started as when it did.
    """
    streak = 0
    later = completed_now
    for attempt in reversed(attempts):
        crashed = attempt.status == "running" or attempt.failure_cause in (
            FailureCause.CRASHED,
            FailureCause.LEASE_LOST,
        )
        if not crashed or attempt.completed_at_start is None:
            break
        if later > attempt.completed_at_start:
            break
        streak += 1
        later = attempt.completed_at_start
    return streak
