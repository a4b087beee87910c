"""What the runtime hands a store to write: a new run, a step row, a run's or attempt's outcome.

Plain frozen values with no I/O; :class:`~seawall.ledger.Store` methods take them, and
:mod:`seawall.ledger._writes` turns them into statement parameters.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seawall._failures import RunStatus

if TYPE_CHECKING:
    from seawall._failures import ErrorClass, FailureCause


StepRow = tuple[
    str,  # run_id
    int,  # seq
    int,  # attempt
    str,  # kind
    str,  # name
    int,  # mutating
    str | None,  # idempotency_key
    str,  # request_hash
    bytes,  # request column
    bytes | None,  # response column
    str,  # status
    float,  # start_time
    float | None,  # end_time
    str | None,  # error_type
    str | None,  # error_message
    int,  # tries
]
"""A step as written: the columns of :class:`~seawall.ledger.StepRecord` in declaration order."""


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run about to be recorded: ``running`` and leased to ``owner``, or ``pending``.

    A ``pending`` run (queued for a distributed executor) has no lease
    (``lease_expires_at`` ``None``): :meth:`Store.expired_runs` does not list it, and the
    first worker whose :meth:`Store.claim_run` succeeds runs it. Its ``route`` names where it
    was sent (``celery:QUEUE``): the takeover sweeps of that route look after it.
    """

    run_id: str
    agent: str
    start_time: float
    input_hash: str
    input_column: bytes
    code_version: str | None
    owner: str | None
    lease_expires_at: float | None
    workflow: str | None = None
    parent_run_id: str | None = None
    replay_of: str | None = None
    replay_mode: str | None = None
    node: str | None = None
    status: RunStatus = RunStatus.RUNNING
    route: str | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The final fields written when a run ends."""

    status: RunStatus
    end_time: float
    output_hash: str | None
    output_column: bytes | None
    error_class: ErrorClass | None
    failure_cause: FailureCause | None
    error_type: str | None
    error_message: str | None
    error_json: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    attempts: int
    retried_input_tokens: int = 0
    retried_output_tokens: int = 0
    retried_cost_usd: float = 0.0
    unknown_usage_calls: int = 0
    unpriced_calls: int = 0

    @classmethod
    def not_executed(
        cls,
        status: RunStatus,
        error_class: ErrorClass,
        cause: FailureCause,
        error_type: str,
        message: str,
        error: dict[str, Any],
        *,
        attempts: int = 0,
        at: float | None = None,
    ) -> RunOutcome:
        """The outcome of a run that ended without executing: no output, no usage."""
        return cls(
            status=status,
            end_time=time.time() if at is None else at,
            output_hash=None,
            output_column=None,
            error_class=error_class,
            failure_cause=cause,
            error_type=error_type,
            error_message=message,
            error_json=json.dumps(error, sort_keys=True),
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            attempts=attempts,
        )


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """The fields written when an attempt ends."""

    status: str
    end_time: float
    error_class: ErrorClass | None
    failure_cause: FailureCause | None
    error_type: str | None
    error_message: str | None
    retry_delay: float | None
    decision: str | None = None
    """Why the attempt was, or was not, followed by another (shown by ``seawall show``)."""
