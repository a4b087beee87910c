"""Rows read from the ledger as records, one function per table.

Each reads the columns in the order the column lists of :mod:`seawall.ledger._queries` give
them (``RUN_COLUMNS``, ``STEP_COLUMNS``...).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall.ledger._records import (
    AttemptRecord,
    DeadLetter,
    HandOffRecord,
    RunRecord,
    StepRecord,
    VerdictRecord,
)
from seawall.ledger._watch_records import AlertRecord, DriftEmbedding, DriftSample
from seawall.policies.breaker import BreakerState

if TYPE_CHECKING:
    from collections.abc import Sequence


def attempt_record(r: Sequence[Any]) -> AttemptRecord:
    """An :data:`ATTEMPTS` row as a record."""
    return AttemptRecord(
        run_id=r[0],
        attempt=r[1],
        start_time=r[2],
        end_time=r[3],
        status=r[4],
        error_class=None if r[5] is None else ErrorClass(r[5]),
        failure_cause=None if r[6] is None else FailureCause(r[6]),
        error_type=r[7],
        error_message=r[8],
        retry_delay=r[9],
        owner=r[10],
        epoch=r[11],
        base_seq=r[12],
        completed_at_start=r[13],
        fenced_at=r[14],
        decision=r[15],
    )


def verdict_record(r: Sequence[Any]) -> VerdictRecord:
    """A :data:`VERDICTS` row as a record."""
    return VerdictRecord(
        r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), r[7], r[8], r[9], r[10]
    )


def step_record(r: Sequence[Any]) -> StepRecord:
    """A steps row (the store's step columns) as a record; byte columns become ``bytes``."""
    return StepRecord(
        run_id=r[0],
        seq=r[1],
        attempt=r[2],
        kind=r[3],
        name=r[4],
        mutating=bool(r[5]),
        idempotency_key=r[6],
        request_hash=r[7],
        request=bytes(r[8]),
        response=None if r[9] is None else bytes(r[9]),
        status=r[10],
        start_time=r[11],
        end_time=r[12],
        error_type=r[13],
        error_message=r[14],
        tries=r[15],
    )


def handoff_record(r: Sequence[Any]) -> HandOffRecord:
    """A :data:`HANDOFF_COLUMNS` row as a record."""
    return HandOffRecord(
        handoff_id=r[0],
        run_id=r[1],
        kind=r[2],
        reason=r[3],
        subject=None if r[4] is None else json.loads(r[4]),
        status=r[5],
        created_at=r[6],
        decision=r[7],
        decided_by=r[8],
        decided_at=r[9],
        note=r[10],
    )


def dead_letter_record(row: Sequence[Any]) -> DeadLetter:
    """A :data:`DLQ_COLUMNS` row as a record."""
    return DeadLetter(
        entry_id=row[0],
        run_id=row[1],
        agent=row[2],
        error_class=None if row[3] is None else ErrorClass(row[3]),
        failure_cause=None if row[4] is None else FailureCause(row[4]),
        error_message=row[5],
        failed_at=row[6],
        attempts=row[7],
        status=row[8],
        claimed_by=row[9],
        redriven_at=row[10],
        redrive_run_id=row[11],
        result=row[12],
        previous_entry_id=row[13],
        claimed_at=row[14],
    )


def breaker_state(row: Sequence[Any]) -> BreakerState:
    """A :data:`BREAKER_COLUMNS` row as a breaker's state."""
    return BreakerState(
        name=row[0],
        kind=row[1],
        state=row[2],
        failures=row[3],
        opened_at=row[4],
        reason=row[5],
        manual=bool(row[6]),
        probe_owner=row[7],
        probe_at=row[8],
    )


def alert_record(row: Sequence[Any]) -> AlertRecord:
    """An :data:`ALERT_COLUMNS` row as a record."""
    return AlertRecord(
        alert_id=row[0],
        kind=row[1],
        agent=row[2],
        feature=row[3],
        statistic=row[4],
        threshold=row[5],
        window=row[6],
        message=row[7],
        details=json.loads(row[8]),
        at=row[9],
    )


def drift_sample(row: Sequence[Any]) -> DriftSample:
    """A :data:`SAMPLE_COLUMNS` row as a record."""
    return DriftSample(
        agent=row[0],
        run_id=row[1],
        at=row[2],
        decision=row[3],
        output_bytes=row[4],
        tokens=row[5],
        cost_usd=row[6],
        latency=row[7],
        confidence=row[8],
        verified=None if row[9] is None else bool(row[9]),
    )


def run_record(row: Sequence[Any]) -> RunRecord:
    """A :data:`RUN_COLUMNS` row as a record."""
    input_tokens = int(row[7])
    output_tokens = int(row[8])
    return RunRecord(
        run_id=row[0],
        agent=row[1],
        status=RunStatus(row[2]),
        start_time=row[3],
        end_time=row[4],
        input_hash=row[5],
        output_hash=row[6],
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tokens_used=input_tokens + output_tokens,
        cost_usd=row[9],
        error_class=None if row[10] is None else ErrorClass(row[10]),
        failure_cause=None if row[11] is None else FailureCause(row[11]),
        error_type=row[12],
        error_message=row[13],
        error=None if row[14] is None else json.loads(row[14]),
        attempts=row[15],
        workflow=row[16],
        parent_run_id=row[17],
        replay_of=row[18],
        code_version=row[19],
        lease_owner=row[20],
        lease_expires_at=row[21],
        updated_at=row[22],
        phase=row[23],
        replay_mode=row[24],
        node=row[25],
        retried_input_tokens=row[26],
        retried_output_tokens=row[27],
        retried_cost_usd=row[28],
        unknown_usage_calls=row[29],
        unpriced_calls=row[30],
        trace_id=row[31],
        span_id=row[32],
        epoch=row[33],
    )


def drift_embedding(row: Sequence[Any]) -> DriftEmbedding:
    """An :data:`EMBEDDING_COLUMNS` row as a record."""
    return DriftEmbedding(
        agent=row[0],
        run_id=row[1],
        at=row[2],
        model=row[3],
        scale=row[4],
        vector=bytes(row[5]),
        excerpt=row[6],
    )
