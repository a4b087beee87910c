"""Run statuses, the four error classes, failure causes, and the classification rule.

Classification is done by the runtime from what it observed, never by the user.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from seawall.errors import (
    AttemptAbandoned,
    BreakerOpenError,
    BudgetExceededError,
    ConfigurationError,
    GuardTrippedError,
    InDoubtError,
    InputError,
    JournalDivergenceError,
    PayloadTooLargeError,
    RegistrationError,
    RunCancelled,
    SerializationError,
    UsageError,
    VerificationError,
)


class RunStatus(StrEnum):
    """Where a run stands. Only ``succeeded`` means a verified, committed result."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"
    AWAITING_HUMAN = "awaiting_human"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Whether the run will not change status again on its own."""
        return self in _FINAL


_FINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.SKIPPED,
        RunStatus.QUARANTINED,
        RunStatus.CANCELLED,
    }
)


class ErrorClass(StrEnum):
    """The one class every run that does not end in a verified success gets."""

    CLEAN_ABORT = "clean_abort"
    PARTIAL_WRITE = "partial_write"
    SILENT_DRIFT = "silent_drift"
    CASCADE = "cascade"


class FailureCause(StrEnum):
    """Why a run or attempt failed, in finer words than its error class."""

    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    BUDGET_EXCEEDED = "budget_exceeded"
    GUARD_TRIPPED = "guard_tripped"
    VERIFICATION_FAILED = "verification_failed"
    UPSTREAM_FAILED = "upstream_failed"
    BREAKER_OPEN = "breaker_open"
    CRASHED = "crashed"
    IN_DOUBT = "in_doubt"
    DIVERGENCE = "divergence"
    CANCELLED = "cancelled"
    CRASH_LOOP = "crash_loop"
    """The run's process died at the same point again and again (no progress)."""
    LEASE_LOST = "lease_lost"
    """An attempt stopped because another process took the run over (it stalled)."""
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    """An attempt stopped because the ledger could not be reached; the run resumes."""
    BAD_INPUT = "bad_input"
    """The run's inputs do not fit its agent (the caller's mistake: not retried)."""


INTERRUPTIONS: Final = frozenset(
    {FailureCause.CRASHED, FailureCause.LEASE_LOST, FailureCause.LEDGER_UNAVAILABLE}
)
"""Attempt ends that are not the agent's failure: they never spend its retry budget."""

MISUSE: Final = (
    InputError,
    SerializationError,
    PayloadTooLargeError,
    UsageError,
    ConfigurationError,
    RegistrationError,
)
"""Programming errors: never retried as the agent's failure, never counted by a breaker."""


def cause_of(error: BaseException) -> FailureCause:  # noqa: PLR0911 - one cause per error kind
    """Name the failure cause of an exception raised by (or around) an attempt."""
    if isinstance(error, InputError):
        return FailureCause.BAD_INPUT
    if isinstance(error, InDoubtError):
        return FailureCause.IN_DOUBT
    if isinstance(error, BreakerOpenError):
        return FailureCause.BREAKER_OPEN
    if isinstance(error, BudgetExceededError):
        return FailureCause.BUDGET_EXCEEDED
    if isinstance(error, GuardTrippedError):
        return FailureCause.GUARD_TRIPPED
    if isinstance(error, VerificationError):
        return FailureCause.VERIFICATION_FAILED
    if isinstance(error, RunCancelled):
        return FailureCause.CANCELLED
    if isinstance(error, JournalDivergenceError):
        return FailureCause.DIVERGENCE
    if isinstance(error, TimeoutError | AttemptAbandoned):
        return FailureCause.TIMEOUT
    return FailureCause.EXCEPTION


def classify(completed_mutations: int, *, staged: bool = False) -> ErrorClass:
    """Return the error class of a failed run or attempt.

    Args:
        completed_mutations: Mutating tool calls of the run that completed (or may have, when
            in doubt) before it failed.
        staged: Whether the attempt had staged artifacts.

    Returns:
        ``partial_write`` after a side effect or with staged artifacts, else ``clean_abort``.
    """
    if completed_mutations or staged:
        return ErrorClass.PARTIAL_WRITE
    return ErrorClass.CLEAN_ABORT
