"""A run's opening and a succeeded run's ending in fewer statements, on PostgreSQL.

On SQLite a statement is a call into a library; on PostgreSQL it is a round trip to the server,
and with many runs in flight those round trips (the client's CPU, the server's, the waiting)
are most of what a run costs. The two writes of a single-step run are written here as
data-modifying ``WITH`` queries: the same rows, under the same rules, in fewer statements.

- :func:`open_run`: the run's insert and, only when it was inserted, its first attempt's, in
  one autocommit statement (it was four round trips: ``BEGIN``, two inserts, ``COMMIT``). A run
  id already taken inserts nothing, the attempt included.
- :func:`end_run`: a succeeded run's end, fenced (applied only while the run is held at the
  writer's epoch) and, only when it was applied, its attempt's end, the DLQ entry a redrive of
  it settles and its artifacts committed, in one statement. It runs after the buffered steps
  (fenced, as before), in their transaction: a run's steps are in place when its status
  changes, which is when the ledger counts them. Refused, it wrote nothing, and the caller
  rolls the transaction back (seven round trips before; four now with steps, three without).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

from seawall.ledger import _writes as writes
from seawall.ledger._sqlbase import upsert_attempt

if TYPE_CHECKING:
    from seawall.ledger._dialect import Dialect
    from seawall.ledger._inputs import AttemptOutcome, NewRun, RunOutcome

_ENDED: Final = "EXISTS (SELECT 1 FROM ended)"


@functools.cache
def open_run_sql(dialect: Dialect) -> str:
    """The statement of :func:`open_run_params`: insert a run, and its attempt if it was new."""
    opened = f"WITH opened AS ({writes.INSERT_RUN} ON CONFLICT (run_id) DO NOTHING "
    opened += "RETURNING run_id) "
    return dialect.sql(opened) + upsert_attempt(
        dialect, "SELECT run_id, 1, ?, 'running', ?, 0, 0, 1 FROM opened"
    )


def open_run_params(run: NewRun) -> tuple[object, ...]:
    """The parameters of :func:`open_run_sql`: the run (one attempt started) and the attempt's.

    Its row count is 1 when the run was inserted, 0 when its id was taken.
    """
    return (*writes.new_run_params(run, attempts=1), run.start_time, run.owner)


@functools.cache
def end_run_sql(dialect: Dialect) -> str:
    """The statement of :func:`end_run_params`; its one row: (runs ended, attempts ended)."""
    return dialect.sql(
        f"WITH ended AS (UPDATE runs SET {writes.FINISH_RUN} WHERE run_id = ? AND epoch = ? "
        "RETURNING run_id), "
        f"attempt AS ({writes.FINISH_ATTEMPT}{_ENDED} RETURNING 1), "
        "redriven AS (UPDATE dlq SET status = 'redriven', redriven_at = ?, result = ? "
        f"WHERE redrive_run_id = ? AND status = 'redriving' AND {_ENDED}), "
        "committed AS (UPDATE artifacts SET committed_at = ? WHERE run_id = ? "
        f"AND committed_at IS NULL AND {_ENDED}) "
        "SELECT (SELECT count(*) FROM ended), (SELECT count(*) FROM attempt)"
    )


def end_run_params(
    run_id: str, attempt: int, ended: AttemptOutcome, outcome: RunOutcome, epoch: int
) -> tuple[object, ...]:
    """The parameters of :func:`end_run_sql` for a succeeded run held at ``epoch``."""
    end = outcome.end_time
    return (
        *writes.finish_run_params(outcome),
        run_id,
        epoch,
        *writes.attempt_outcome_params(run_id, attempt, ended, epoch)[:-2],  # not its fence
        end,
        outcome.status.value,
        run_id,
        end,
        run_id,
    )
