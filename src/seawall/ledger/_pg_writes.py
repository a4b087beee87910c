"""A run's opening and a succeeded run's ending in fewer statements, on PostgreSQL.

On SQLite a statement is a call into a library; on PostgreSQL it is a round trip to the server,
and with many runs in flight those round trips (the client's CPU, the server's, the waiting)
are most of what a run costs. The two writes of a single-step run are written here as
data-modifying ``WITH`` queries: the same rows, under the same rules, in fewer statements.

- :func:`open_run_sql`: the run's insert and, only when it was inserted, its first attempt's, in
  one autocommit statement (it was four round trips: ``BEGIN``, two inserts, ``COMMIT``). A run
  id already taken inserts nothing, the attempt included.
- :data:`VERDICTS`: verdicts of an attempt, fenced and numbered after the attempt's last one,
  in one autocommit statement (it was six round trips: ``BEGIN``, the fence, an advisory lock,
  the last ordinal, the rows, ``COMMIT``; a read-back verdict after every checked side effect
  paid them). Concurrent writers of one attempt's verdicts no longer take turns on a lock: the
  one that numbers its rows second fails on the primary key, writing nothing, and counts again.
- :func:`end_run_sql`: a succeeded run's end, fenced (applied only while the run is held at
  the writer's epoch and its attempt is recorded) and, only when it was applied, its attempt's
  end, its buffered steps, the DLQ entry a redrive of it settles and its artifacts committed:
  one autocommit statement (it was seven round trips). Refused, it wrote nothing. The steps
  are written by the statement that changes the run's status, whose trigger counts them: a
  trigger fires when its whole statement is done, and sees all of it. With blobs to store
  first, or many steps, the same statement ends a transaction that writes them before it.

Both statements use PostgreSQL's own numbered placeholders (``$1``), run by :func:`execute`:
psycopg turns ``%s`` into them itself, but parses anew, on every call, a statement with more
than 50 parameters, as the ending has (about 130 us a run, 14% of a sequential run's CPU).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

from seawall.errors import LedgerError
from seawall.ledger import _queries as queries
from seawall.ledger import _writes as writes
from seawall.ledger._sqlbase import upsert_attempt

if TYPE_CHECKING:
    from collections.abc import Sequence

    from psycopg import Connection, Cursor

    from seawall.ledger._dialect import Dialect
    from seawall.ledger._inputs import AttemptOutcome, NewRun, RunOutcome, StepRow

_ENDED: Final = "EXISTS (SELECT 1 FROM ended)"


def numbered(sql: str) -> str:
    """``sql``, written with psycopg's ``%s`` placeholders, with ``$1``, ``$2``... instead.

    Raises:
        ValueError: ``sql`` holds a ``%`` that is no placeholder (it would need escaping).
    """
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError(f"a literal % in a statement to number: {sql[:80]}...")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


def execute(conn: Connection[Any], sql: str, params: Sequence[object]) -> Cursor[Any]:
    """Run a statement of this module (numbered placeholders) on a psycopg connection."""
    from psycopg import RawCursor  # noqa: PLC0415 - the postgres extra is optional

    return RawCursor(conn).execute(sql, params)


@functools.cache
def open_run_sql(dialect: Dialect) -> str:
    """The statement of :func:`open_run_params`: insert a run, and its attempt if it was new."""
    opened = f"WITH opened AS ({writes.INSERT_RUN} ON CONFLICT (run_id) DO NOTHING "
    opened += "RETURNING run_id) "
    return numbered(
        dialect.sql(opened)
        + upsert_attempt(dialect, "SELECT run_id, 1, ?, 'running', ?, 0, 0, 1 FROM opened")
        + " RETURNING 1"
    )


def open_run_params(run: NewRun) -> tuple[object, ...]:
    """The parameters of :func:`open_run_sql`: the run (one attempt started) and the attempt's.

    It returns one row, ``(1,)``, when the run was inserted; none when its id was taken.
    """
    return (*writes.new_run_params(run, attempts=1), run.start_time, run.owner)


VERDICTS: Final = numbered(
    "WITH held AS (SELECT 1 FROM runs WHERE run_id = %s AND epoch = %s FOR SHARE), "
    "added AS (INSERT INTO verifications (run_id, attempt, ordinal, kind, name, passed, error, "
    "score, message, duration, created_at) "
    "SELECT r.run_id, r.attempt, r.top + v.i, r.kind, v.name, v.passed, v.error, v.score, "
    "v.message, v.duration, r.created_at "
    "FROM (SELECT %s::text AS run_id, %s::integer AS attempt, %s::text AS kind, "
    "%s::double precision AS created_at, (SELECT coalesce(max(ordinal), 0) FROM verifications "
    "WHERE run_id = %s AND attempt = %s) AS top) r, "
    "unnest(%s::text[], %s::integer[], %s::integer[], %s::double precision[], %s::text[], "
    "%s::double precision[]) WITH ORDINALITY AS v(name, passed, error, score, message, "
    "duration, i) "
    "WHERE EXISTS (SELECT 1 FROM held) RETURNING 1) "
    "SELECT (SELECT 1 FROM added LIMIT 1)"
)
"""Verdicts of an attempt, numbered after its last one, while the run is held at an epoch.

Its one row is ``(1,)`` when it wrote them, ``(None,)`` when the run is not held at that epoch
(nothing written). Its parameters: :func:`verdicts_params`.
"""


def verdicts_params(
    run_id: str,
    attempt: int,
    kind: str,
    rows: Sequence[tuple[str, int, int, float | None, str | None, float]],
    created_at: float,
    epoch: int,
) -> tuple[object, ...]:
    """The parameters of :data:`VERDICTS`.

    ``rows``: one per verdict, (name, passed, error, score, message, duration).
    """
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    return (
        run_id,
        epoch,
        run_id,
        attempt,
        kind,
        created_at,
        run_id,
        attempt,
        *(list(column) for column in columns),
    )


RENUMBERINGS: Final = 100
"""Tries of :func:`add_verdicts` before it gives up (each lost to a writer that committed)."""


def add_verdicts(conn: Connection[Any], params: Sequence[object]) -> bool:
    """Run :data:`VERDICTS` until its rows are numbered first; whether the run was held.

    Raises:
        LedgerError: Other writers of the attempt's verdicts took the next ordinals
            :data:`RENUMBERINGS` times in a row.
    """
    from psycopg import errors  # noqa: PLC0415 - the postgres extra is optional
    from psycopg.pq import TransactionStatus  # noqa: PLC0415

    for _ in range(RENUMBERINGS):
        try:
            if conn.info.transaction_status == TransactionStatus.IDLE:
                row = execute(conn, VERDICTS, params).fetchone()
            else:  # in a transaction: a savepoint, so that losing the numbering spoils nothing
                with conn.transaction():
                    row = execute(conn, VERDICTS, params).fetchone()
        except errors.UniqueViolation:
            continue  # a concurrent writer took those ordinals, and committed: count again
        return row is not None and row[0] == 1
    raise LedgerError(
        f"verdicts of run {params[0]} lost the numbering to concurrent writers "
        f"{RENUMBERINGS} times in a row; record them again"
    )


INLINE_STEPS: Final = 8
"""Buffered steps an ending writes in its own statement; more go first, in its transaction."""


@functools.cache
def end_run_sql(dialect: Dialect, steps: int) -> str:
    """The statement of :func:`end_run_params`, writing ``steps`` buffered steps.

    Its one row: (runs ended, attempts ended), both 1 when it was applied.
    """
    marks = ", ".join("?" * 16)
    writes_steps = "".join(
        f"step{i} AS ("
        + dialect.replace(
            "steps", queries.STEP_COLUMNS, "run_id, seq", f"SELECT {marks} WHERE {_ENDED}"
        )
        + "), "
        for i in range(steps)
    )
    return numbered(
        dialect.sql(
            f"WITH ended AS (UPDATE runs SET {writes.FINISH_RUN} WHERE run_id = ? AND epoch = ? "
            "AND EXISTS (SELECT 1 FROM attempts WHERE run_id = ? AND attempt = ?) "
            "RETURNING run_id), "
            f"attempt AS ({writes.FINISH_ATTEMPT}{_ENDED} RETURNING 1), "
        )
        + writes_steps
        + dialect.sql(
            "redriven AS (UPDATE dlq SET status = 'redriven', redriven_at = ?, result = ? "
            f"WHERE redrive_run_id = ? AND status = 'redriving' AND {_ENDED}), "
            "committed AS (UPDATE artifacts SET committed_at = ? WHERE run_id = ? "
            f"AND committed_at IS NULL AND {_ENDED}) "
            "SELECT (SELECT count(*) FROM ended), (SELECT count(*) FROM attempt)"
        )
    )


def end_run_params(
    run_id: str,
    attempt: int,
    ended: AttemptOutcome,
    outcome: RunOutcome,
    steps: Sequence[StepRow],
    epoch: int,
) -> tuple[object, ...]:
    """The parameters of :func:`end_run_sql` for a succeeded run held at ``epoch``."""
    end = outcome.end_time
    return (
        *writes.finish_run_params(outcome),
        run_id,
        epoch,
        run_id,
        attempt,
        *writes.attempt_outcome_params(run_id, attempt, ended, epoch)[:-2],  # not its fence
        *(value for row in steps for value in row),
        end,
        outcome.status.value,
        run_id,
        end,
        run_id,
    )
