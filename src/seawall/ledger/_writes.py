"""Write sequences both ledgers share, run inside the caller's transaction.

They take any DB-API connection whose ``execute`` returns a cursor (``sqlite3`` and psycopg 3
both do) and a :class:`~seawall.ledger._queries.Dialect` for the placeholders, so a rule of the
ledger is written once for SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger._protocol import RunOutcome
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
