"""Rows read from the ledger as records, one function per table.

A row is read by the names of the columns its query selected (the column lists of
:mod:`seawall.ledger._queries`: ``RUN_COLUMNS``, ``STEP_COLUMNS``...), which are the record's
field names; a function converts only the values stored in another form (booleans as integers,
JSON as text, enums as their values).
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall.ledger import _queries as queries
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


@functools.cache
def _names(columns: str) -> tuple[str, ...]:
    return tuple(column.strip() for column in columns.split(","))


def _named(columns: str, row: Sequence[Any]) -> dict[str, Any]:
    """The values of ``row`` (selected as ``columns``) by column name."""
    return dict(zip(_names(columns), row, strict=True))


def _failure(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the error class and failure cause as enums."""
    error_class, cause = values["error_class"], values["failure_cause"]
    values["error_class"] = None if error_class is None else ErrorClass(error_class)
    values["failure_cause"] = None if cause is None else FailureCause(cause)
    return values


def attempt_record(row: Sequence[Any]) -> AttemptRecord:
    """An :data:`~seawall.ledger._queries.ATTEMPT_COLUMNS` row as a record."""
    return AttemptRecord(**_failure(_named(queries.ATTEMPT_COLUMNS, row)))


def verdict_record(row: Sequence[Any]) -> VerdictRecord:
    """A :data:`~seawall.ledger._queries.VERDICT_COLUMNS` row as a record."""
    values = _named(queries.VERDICT_COLUMNS, row)
    values["passed"], values["error"] = bool(values["passed"]), bool(values["error"])
    return VerdictRecord(**values)


def step_record(row: Sequence[Any]) -> StepRecord:
    """A :data:`~seawall.ledger._queries.STEP_COLUMNS` row as a record (bytes as ``bytes``)."""
    values = _named(queries.STEP_COLUMNS, row)
    values["mutating"] = bool(values["mutating"])
    values["request"] = bytes(values["request"])
    if values["response"] is not None:
        values["response"] = bytes(values["response"])
    return StepRecord(**values)


def handoff_record(row: Sequence[Any]) -> HandOffRecord:
    """A :data:`~seawall.ledger._queries.HANDOFF_COLUMNS` row as a record."""
    values = _named(queries.HANDOFF_COLUMNS, row)
    if values["subject"] is not None:
        values["subject"] = json.loads(values["subject"])
    return HandOffRecord(**values)


def dead_letter_record(row: Sequence[Any]) -> DeadLetter:
    """A :data:`~seawall.ledger._queries.DLQ_COLUMNS` row as a record."""
    return DeadLetter(**_failure(_named(queries.DLQ_COLUMNS, row)))


def breaker_state(row: Sequence[Any]) -> BreakerState:
    """A :data:`~seawall.ledger._queries.BREAKER_COLUMNS` row as a breaker's state."""
    values = _named(queries.BREAKER_COLUMNS, row)
    values["manual"] = bool(values["manual"])
    return BreakerState(**values)


def alert_record(row: Sequence[Any]) -> AlertRecord:
    """An :data:`~seawall.ledger._queries.ALERT_COLUMNS` row as a record."""
    values = _named(queries.ALERT_COLUMNS, row)
    values["window"] = values.pop("window_desc")
    values["details"] = json.loads(values["details"])
    return AlertRecord(**values)


def drift_sample(row: Sequence[Any]) -> DriftSample:
    """A :data:`~seawall.ledger._queries.SAMPLE_COLUMNS` row as a record."""
    values = _named(queries.SAMPLE_COLUMNS, row)
    if values["verified"] is not None:
        values["verified"] = bool(values["verified"])
    return DriftSample(**values)


def drift_embedding(row: Sequence[Any]) -> DriftEmbedding:
    """An :data:`~seawall.ledger._queries.EMBEDDING_COLUMNS` row as a record."""
    values = _named(queries.EMBEDDING_COLUMNS, row)
    values["vector"] = bytes(values["vector"])
    return DriftEmbedding(**values)


def run_record(row: Sequence[Any]) -> RunRecord:
    """A :data:`~seawall.ledger._queries.RUN_COLUMNS` row as a record."""
    values = _failure(_named(queries.RUN_COLUMNS, row))
    values["status"] = RunStatus(values["status"])
    values["input_tokens"] = int(values["input_tokens"])
    values["output_tokens"] = int(values["output_tokens"])
    values["tokens_used"] = values["input_tokens"] + values["output_tokens"]
    error_json = values.pop("error_json")
    values["error"] = None if error_json is None else json.loads(error_json)
    return RunRecord(**values)
