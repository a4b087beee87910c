"""Write sequences both ledgers share, run inside the caller's transaction.

They take any DB-API connection whose ``execute`` returns a cursor (``sqlite3`` and psycopg 3
both do) and a :class:`~seawall.ledger._queries.Dialect` for the placeholders, so a rule of the
ledger is written once for SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final, Protocol

from seawall._failures import RunStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger._protocol import NewRun, RunOutcome
    from seawall.ledger._queries import Dialect


class Connection(Protocol):
    """The part of a DB-API connection these writes use."""

    def execute(self, sql: Any, params: Sequence[Any] = ..., /) -> Any:
        """Run one statement."""


def enqueue_dead_letter(
    conn: Connection, dialect: Dialect, run_id: str, outcome: RunOutcome
) -> None:
    """Put a failed run in the DLQ, in the transaction that records its failure.

    A recorded replay is a diagnosis, not work to redo: it is never enqueued. A live replay of a
    run that has an entry links to it (``previous_entry_id``), so a redrive chain can be read.
    """
    row = conn.execute(
        dialect.sql("SELECT agent, replay_of, replay_mode FROM runs WHERE run_id = ?"), (run_id,)
    ).fetchone()
    if row is None or row[2] == "recorded":
        return
    agent, replay_of, _ = row
    previous = None
    if replay_of is not None:
        found = conn.execute(
            dialect.sql("SELECT entry_id FROM dlq WHERE run_id = ?"), (replay_of,)
        ).fetchone()
        previous = None if found is None else found[0]
    conn.execute(
        dialect.sql(
            "INSERT INTO dlq (entry_id, run_id, agent, error_class, failure_cause, "
            "error_message, failed_at, attempts, status, previous_entry_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING"
        ),
        (
            uuid.uuid4().hex,
            run_id,
            agent,
            None if outcome.error_class is None else outcome.error_class.value,
            None if outcome.failure_cause is None else outcome.failure_cause.value,
            outcome.error_message,
            outcome.end_time,
            outcome.attempts,
            previous,
        ),
    )


INSERT_RUN: Final = (
    "INSERT INTO runs (run_id, agent, status, start_time, input_hash, input, attempts, workflow, "
    "parent_run_id, replay_of, code_version, lease_owner, lease_expires_at, updated_at, "
    "replay_mode, node) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""A new run's row; its parameters are :func:`new_run_params`."""


def new_run_params(run: NewRun) -> tuple[object, ...]:
    """The parameters of :data:`INSERT_RUN` for ``run``."""
    return (
        run.run_id,
        run.agent,
        run.status.value,
        run.start_time,
        run.input_hash,
        run.input_column,
        run.workflow,
        run.parent_run_id,
        run.replay_of,
        run.code_version,
        run.owner,
        run.lease_expires_at,
        run.start_time,
        run.replay_mode,
        run.node,
    )


# The columns a run's outcome sets, in the order ``_outcome_fields`` gives their values.
_SET_OUTCOME: Final = (
    "output_hash = ?, output = ?, error_class = ?, failure_cause = ?, error_type = ?, "
    "error_message = ?, error_json = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, "
    "attempts = ?, retried_input_tokens = ?, retried_output_tokens = ?, retried_cost_usd = ?, "
    "unknown_usage_calls = ?, unpriced_calls = ?"
)


def finish_run(conn: Connection, dialect: Dialect, run_id: str, outcome: RunOutcome) -> None:
    """Record a run's final fields and release its lease; a failed run enters the DLQ.

    A succeeded run's artifacts become committed; any other run's artifact records go.
    """
    conn.execute(
        dialect.sql(
            f"UPDATE runs SET status = ?, end_time = ?, {_SET_OUTCOME}, lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = ?, phase = NULL, commit_json = NULL "
            "WHERE run_id = ?"
        ),
        (
            outcome.status.value,
            outcome.end_time,
            *_outcome_fields(outcome),
            outcome.end_time,
            run_id,
        ),
    )
    if outcome.status is RunStatus.FAILED:
        enqueue_dead_letter(conn, dialect, run_id, outcome)
    if outcome.status is RunStatus.SUCCEEDED:
        conn.execute(
            dialect.sql(
                "UPDATE artifacts SET committed_at = ? WHERE run_id = ? AND committed_at IS NULL"
            ),
            (outcome.end_time, run_id),
        )
    else:
        conn.execute(dialect.sql("DELETE FROM artifacts WHERE run_id = ?"), (run_id,))


def park_run(conn: Connection, dialect: Dialect, run_id: str, outcome: RunOutcome) -> None:
    """Record a run that waits for a person (``awaiting_human``): output kept, lease freed."""
    conn.execute(
        dialect.sql(
            f"UPDATE runs SET status = 'awaiting_human', {_SET_OUTCOME}, lease_owner = NULL, "
            "lease_expires_at = NULL, updated_at = ? WHERE run_id = ?"
        ),
        (*_outcome_fields(outcome), outcome.end_time, run_id),
    )


def _outcome_fields(outcome: RunOutcome) -> tuple[object, ...]:
    return (
        outcome.output_hash,
        outcome.output_column,
        None if outcome.error_class is None else outcome.error_class.value,
        None if outcome.failure_cause is None else outcome.failure_cause.value,
        outcome.error_type,
        outcome.error_message,
        outcome.error_json,
        outcome.input_tokens,
        outcome.output_tokens,
        outcome.cost_usd,
        outcome.attempts,
        outcome.retried_input_tokens,
        outcome.retried_output_tokens,
        outcome.retried_cost_usd,
        outcome.unknown_usage_calls,
        outcome.unpriced_calls,
    )
