"""Write sequences both ledgers share, run inside the caller's transaction.

They take any DB-API connection whose ``execute`` returns a cursor (``sqlite3`` and psycopg 3
both do) and a :class:`~seawall.ledger._dialect.Dialect` for the placeholders, so a rule of the
ledger is written once for SQLite and PostgreSQL.

Fencing: every write an attempt makes names the epoch of the lease it holds, and is applied only
while the run's row still carries that epoch. A takeover raises the epoch in the same row, so a
process that stalled past its lease finds out at its next write (:class:`LeaseLostError`) and
nothing it writes after the takeover lands. On PostgreSQL the check reads the run's row
``FOR SHARE``: a takeover waits for a write in flight to commit, and a write waits for a
takeover in flight, so the two are never interleaved. SQLite serialises writers already.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final, Protocol

from seawall._failures import FailureCause, RunStatus
from seawall.errors import LeaseLostError, RunCancelled
from seawall.ledger._queries import LAPSED, RUN_COLUMNS, UNCLAIMED, among, routed
from seawall.ledger._rows import run_record

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger._dialect import Dialect
    from seawall.ledger._inputs import AttemptOutcome, NewRun, RunOutcome
    from seawall.ledger._records import RunRecord


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
        dialect.sql(
            "SELECT agent, replay_of, replay_mode, parent_run_id, node FROM runs WHERE run_id = ?"
        ),
        (run_id,),
    ).fetchone()
    if row is None or row[2] == "recorded":
        return
    agent, replay_of, _, parent, node = row
    if outcome.status is RunStatus.SKIPPED and (parent is not None or node is not None):
        return  # a refused child or graph node: its parent's own entry redrives it
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


def fence(dialect: Dialect) -> str:
    """A condition that holds while run ``?`` is held at epoch ``?`` (two parameters)."""
    return f"(SELECT epoch FROM runs WHERE run_id = ?{dialect.share}) = ?"


def fence_for_intent(dialect: Dialect) -> str:
    """:func:`fence`, also false once the run was cancelled: no mutating call starts after."""
    return (
        "(SELECT CASE WHEN cancel_requested_at IS NULL THEN epoch END FROM runs "
        f"WHERE run_id = ?{dialect.share}) = ?"
    )


def refusal(conn: Connection, dialect: Dialect, run_id: str, epoch: int) -> BaseException:
    """Why a fenced write was refused: the lease is lost, or (for an intent) the run cancelled."""
    row = conn.execute(
        dialect.sql(
            "SELECT epoch, lease_owner, status, cancel_requested_at, cancel_reason FROM runs "
            "WHERE run_id = ?"
        ),
        (run_id,),
    ).fetchone()
    if row is None:
        return LeaseLostError(
            f"run {run_id} is no longer in the ledger; this attempt stops", run_id=run_id
        )
    current, owner, status, cancelled_at, reason = row
    if current != epoch:
        return lease_lost(run_id, epoch, current, owner)
    if cancelled_at is not None:
        return RunCancelled(reason or "")
    return LeaseLostError(
        f"run {run_id} refused a write of epoch {epoch} (it is {status}); this attempt stops",
        run_id=run_id,
        epoch=epoch,
    )


def lease_lost(run_id: str, epoch: int, current: int | None, owner: str | None) -> LeaseLostError:
    """The error of an attempt whose run was taken over."""
    by = f" by {owner}" if owner else ""
    return LeaseLostError(
        f"run {run_id} was taken over{by} (epoch {epoch} -> {current}) while this process held "
        "it, most likely because it stalled longer than its lease (a pause, SIGSTOP, a long "
        "computation holding the GIL, a partition); this attempt stops here and writes nothing "
        "more. The new owner continues the run from its journal",
        run_id=run_id,
        epoch=epoch,
        current_epoch=current,
        owner=owner,
    )


def check_fence(conn: Connection, dialect: Dialect, run_id: str, epoch: int) -> None:
    """Raise unless run ``run_id`` is held at ``epoch`` (its row locked until commit).

    Raises:
        LeaseLostError: Another owner took the run over.
    """
    row = conn.execute(
        dialect.sql(f"SELECT epoch, lease_owner FROM runs WHERE run_id = ?{dialect.share}"),
        (run_id,),
    ).fetchone()
    if row is None or row[0] != epoch:
        raise lease_lost(
            run_id, epoch, None if row is None else row[0], None if row is None else row[1]
        )


def update_held(
    conn: Connection,
    dialect: Dialect,
    assignments: str,
    params: Sequence[object],
    run_id: str,
    epoch: int,
) -> None:
    """``UPDATE runs SET assignments`` (``?`` placeholders) while the run is held at ``epoch``.

    Raises:
        LeaseLostError: Another owner took the run over: nothing is written.
    """
    updated = conn.execute(
        dialect.sql(f"UPDATE runs SET {assignments} WHERE run_id = ? AND epoch = ?"),
        (*params, run_id, epoch),
    ).rowcount
    if updated != 1:
        raise refusal(conn, dialect, run_id, epoch)


def start_attempt(
    conn: Connection,
    dialect: Dialect,
    upsert: str,
    params: tuple[object, ...],
    *,
    epoch: int,
) -> None:
    """Bump the run's attempt count (fenced) and record the attempt with ``upsert``.

    ``upsert`` is in the dialect already; ``params`` are ``(run_id, attempt, start_time, owner,
    base_seq, completed_at_start)``.

    Raises:
        LeaseLostError: Another owner took the run over.
    """
    run_id, attempt, start_time = params[0], params[1], params[2]
    update_held(
        conn, dialect, "attempts = ?, updated_at = ?", (attempt, start_time), str(run_id), epoch
    )
    conn.execute(upsert, (*params, epoch))


FINISH_ATTEMPT: Final = (
    "UPDATE attempts SET end_time = ?, status = ?, error_class = ?, failure_cause = ?, "
    "error_type = ?, error_message = ?, retry_delay = ?, decision = ? "
    "WHERE run_id = ? AND attempt = ? AND "
)
"""Record an attempt's end; followed by :func:`fence`."""


def attempt_outcome_params(
    run_id: str, attempt: int, outcome: AttemptOutcome, epoch: int
) -> tuple[object, ...]:
    """The parameters of :data:`FINISH_ATTEMPT` and its fence."""
    return (
        outcome.end_time,
        outcome.status,
        None if outcome.error_class is None else outcome.error_class.value,
        None if outcome.failure_cause is None else outcome.failure_cause.value,
        outcome.error_type,
        outcome.error_message,
        outcome.retry_delay,
        outcome.decision,
        run_id,
        attempt,
        run_id,
        epoch,
    )


def mark_fenced(
    conn: Connection, dialect: Dialect, run_id: str, attempt: int, epoch: int, at: float
) -> None:
    """Note, on the stale owner's own attempt row only, when it found itself fenced."""
    conn.execute(
        dialect.sql(
            "UPDATE attempts SET fenced_at = ? WHERE run_id = ? AND attempt = ? AND epoch = ? "
            "AND fenced_at IS NULL"
        ),
        (at, run_id, attempt, epoch),
    )


INSERT_RUN: Final = (
    "INSERT INTO runs (run_id, agent, status, start_time, input_hash, input, attempts, workflow, "
    "parent_run_id, replay_of, code_version, lease_owner, lease_expires_at, updated_at, "
    "replay_mode, node, epoch, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""A new run's row; its parameters are :func:`new_run_params`."""


def new_run_params(run: NewRun, attempts: int = 0) -> tuple[object, ...]:
    """The parameters of :data:`INSERT_RUN` for ``run``, with ``attempts`` started."""
    return (
        run.run_id,
        run.agent,
        run.status.value,
        run.start_time,
        run.input_hash,
        run.input_column,
        attempts,
        run.workflow,
        run.parent_run_id,
        run.replay_of,
        run.code_version,
        run.owner,
        run.lease_expires_at,
        run.start_time,
        run.replay_mode,
        run.node,
        0 if run.owner is None else 1,
        run.route,
    )


# The columns a run's outcome sets, in the order ``_outcome_fields`` gives their values.
_SET_OUTCOME: Final = (
    "output_hash = ?, output = ?, error_class = ?, failure_cause = ?, error_type = ?, "
    "error_message = ?, error_json = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, "
    "attempts = ?, retried_input_tokens = ?, retried_output_tokens = ?, retried_cost_usd = ?, "
    "unknown_usage_calls = ?, unpriced_calls = ?"
)

FINISH_RUN: Final = (
    f"status = ?, end_time = ?, {_SET_OUTCOME}, lease_owner = NULL, lease_expires_at = NULL, "
    "updated_at = ?, phase = NULL, commit_json = NULL"
)
"""The assignments recording a run's end and releasing its lease (:func:`finish_run_params`)."""


def finish_run_params(outcome: RunOutcome) -> tuple[object, ...]:
    """The parameters of :data:`FINISH_RUN`."""
    return (outcome.status.value, outcome.end_time, *_outcome_fields(outcome), outcome.end_time)


def finish_run(
    conn: Connection, dialect: Dialect, run_id: str, outcome: RunOutcome, epoch: int
) -> None:
    """Record a run's final fields and release its lease; a failed run enters the DLQ.

    A succeeded run's artifacts become committed; any other run's artifact records go.

    Raises:
        LeaseLostError: Another owner took the run over: nothing is written.
    """
    update_held(conn, dialect, FINISH_RUN, finish_run_params(outcome), run_id, epoch)
    if outcome.status is RunStatus.FAILED or (
        outcome.status is RunStatus.SKIPPED and outcome.failure_cause is FailureCause.BREAKER_OPEN
    ):
        # A run an open breaker refused is parked in the DLQ, not dropped (nothing lost).
        enqueue_dead_letter(conn, dialect, run_id, outcome)
    # The end of a redrive run settles the DLQ entry it redrove.
    conn.execute(
        dialect.sql(
            "UPDATE dlq SET status = 'redriven', redriven_at = ?, result = ? "
            "WHERE redrive_run_id = ? AND status = 'redriving'"
        ),
        (outcome.end_time, outcome.status.value, run_id),
    )
    if outcome.status is RunStatus.SUCCEEDED:
        conn.execute(
            dialect.sql(
                "UPDATE artifacts SET committed_at = ? WHERE run_id = ? AND committed_at IS NULL"
            ),
            (outcome.end_time, run_id),
        )
    else:
        conn.execute(dialect.sql("DELETE FROM artifacts WHERE run_id = ?"), (run_id,))


def park_run(
    conn: Connection, dialect: Dialect, run_id: str, outcome: RunOutcome, epoch: int
) -> None:
    """Record a run that waits for a person (``awaiting_human``): output kept, lease freed.

    Raises:
        LeaseLostError: Another owner took the run over: nothing is written.
    """
    update_held(
        conn,
        dialect,
        f"status = 'awaiting_human', {_SET_OUTCOME}, lease_owner = NULL, "
        "lease_expires_at = NULL, updated_at = ?",
        (*_outcome_fields(outcome), outcome.end_time),
        run_id,
        epoch,
    )


def begin_compensation(
    conn: Connection, dialect: Dialect, run_id: str, outcome: RunOutcome, epoch: int
) -> None:
    """Record a run's final failure and enter phase ``compensating``.

    Raises:
        LeaseLostError: Another owner took the run over: nothing is written.
    """
    update_held(
        conn,
        dialect,
        "phase = 'compensating', error_class = ?, failure_cause = ?, error_type = ?, "
        "error_message = ?, error_json = ?, attempts = ?, updated_at = ?",
        (
            None if outcome.error_class is None else outcome.error_class.value,
            None if outcome.failure_cause is None else outcome.failure_cause.value,
            outcome.error_type,
            outcome.error_message,
            outcome.error_json,
            outcome.attempts,
            outcome.end_time,
        ),
        run_id,
        epoch,
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


# -- takeover sweeps --------------------------------------------------------------------------


def claim_sweeper(
    conn: Connection, dialect: Dialect, name: str, owner: str, now: float, expires_at: float
) -> bool:
    """Take the sweeper lease ``name`` when it lapsed, or renew it for its holder.

    Returns:
        Whether ``owner`` holds it until ``expires_at`` (one process at a time does).
    """
    cursor = conn.execute(
        dialect.sql(
            "INSERT INTO sweepers (name, owner, expires_at, swept_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at, swept_at = excluded.swept_at "
            "WHERE sweepers.owner = excluded.owner OR sweepers.expires_at < ?"
        ),
        (name, owner, expires_at, now, now),
    )
    return bool(cursor.rowcount == 1)


def resend_lapsed(
    conn: Connection,
    dialect: Dialect,
    route: str,
    now: float,
    agents: Sequence[str],
    again_before: float,
    limit: int,
) -> list[RunRecord]:
    """Mark re-sent (at ``now``) the runs of ``agents`` on ``route`` whose lease lapsed.

    A run is taken once per lapse of its lease, and again only when the id sent then did not
    lead to a claim before ``again_before``. On PostgreSQL the rows are claimed with
    ``SKIP LOCKED``: two sweeps never take the same run.

    Returns:
        The runs marked, oldest lapse first.
    """
    where, params = routed(route)
    rows = conn.execute(
        dialect.sql(
            "UPDATE runs SET resent_at = ? WHERE run_id IN (SELECT run_id FROM runs WHERE "
            f"{LAPSED} AND {where} AND {among('agent', agents)} AND "
            "(resent_at IS NULL OR resent_at < lease_expires_at OR resent_at < ?) "
            f"ORDER BY lease_expires_at LIMIT ?{dialect.skip_locked}) RETURNING {RUN_COLUMNS}"
        ),
        (now, now, *params, *agents, again_before, limit),
    ).fetchall()
    return sorted((run_record(row) for row in rows), key=lambda r: (r.lease_expires_at, r.run_id))


def mark_resent(
    conn: Connection, dialect: Dialect, run_ids: Sequence[str], now: float, again_before: float
) -> list[str]:
    """Mark re-sent (at ``now``) those of ``run_ids`` still unclaimed and not re-sent since.

    Returns:
        The runs marked, which the caller sends again (in ``run_ids`` order).
    """
    if not run_ids:
        return []
    rows = conn.execute(
        dialect.sql(
            "UPDATE runs SET resent_at = ? WHERE run_id IN (SELECT run_id FROM runs WHERE "
            f"{among('run_id', run_ids)} AND {UNCLAIMED} AND "
            f"(resent_at IS NULL OR resent_at < ?){dialect.skip_locked}) RETURNING run_id"
        ),
        (now, *run_ids, again_before),
    ).fetchall()
    marked = {row[0] for row in rows}
    return [run_id for run_id in run_ids if run_id in marked]


STEP_COPY: Final = (
    "INSERT INTO steps (run_id, seq, attempt, kind, name, mutating, idempotency_key, "
    "request_hash, request, response, status, start_time, end_time, error_type, error_message, "
    "tries) SELECT ?, seq, 0, kind, name, mutating, idempotency_key, request_hash, request, "
    "response, status, start_time, end_time, error_type, error_message, tries FROM steps "
    "WHERE run_id = ?"
)
"""Copy one run's journal into another's (attempt 0: carried over), keys and results kept."""


def begin_redrive(
    conn: Connection,
    dialect: Dialect,
    entry_id: str,
    owner: str,
    run: NewRun,
    source_run_id: str | None,
) -> bool:
    """Record the run that redrives a claimed entry, with the failed run's journal if it goes on.

    One transaction: the entry names the new run (so a redriver that dies now leaves a run any
    process resumes, never a second redrive), the run is recorded, and the journal it continues
    is copied into it (``source_run_id``; ``None`` for a fresh start).

    Returns:
        Whether the entry was still claimed by ``owner`` (else nothing is written).
    """
    linked = conn.execute(
        dialect.sql(
            "UPDATE dlq SET redrive_run_id = ? WHERE entry_id = ? AND status = 'redriving' "
            "AND claimed_by = ? AND redrive_run_id IS NULL"
        ),
        (run.run_id, entry_id, owner),
    ).rowcount
    if linked != 1:
        return False
    conn.execute(dialect.sql(INSERT_RUN), new_run_params(run))
    if source_run_id is not None:
        conn.execute(dialect.sql(STEP_COPY), (run.run_id, source_run_id))
    return True


def resolve_step(
    conn: Connection,
    dialect: Dialect,
    run_id: str,
    seq: int,
    *,
    happened: bool,
    response: bytes | None,
    result_json: str | None,
    by: str | None,
    note: str | None,
    at: float,
) -> bool:
    """Record an operator's word on an in-doubt step of an ended run; false if none is there.

    "It happened" completes the step (with the result given, if any): a redrive serves it.
    "It did not happen" marks it failed: a redrive issues it again, with its original key.
    """
    updated = conn.execute(
        dialect.sql(
            "UPDATE steps SET status = ?, response = ?, end_time = ?, error_type = ?, "
            "error_message = ? WHERE run_id = ? AND seq = ? AND status = 'started' "
            "AND mutating = 1 AND EXISTS (SELECT 1 FROM runs WHERE run_id = ? "
            "AND status NOT IN ('pending', 'running'))"
        ),
        (
            "completed" if happened else "failed",
            response if happened else None,
            at,
            None if happened else "ResolvedNotHappened",
            None if happened else f"an operator ({by or 'unnamed'}) said it did not happen",
            run_id,
            seq,
            run_id,
        ),
    ).rowcount
    if updated != 1:
        return False
    conn.execute(
        dialect.sql(
            "INSERT INTO step_resolutions (run_id, seq, decision, result, decided_by, decided_at, "
            "note) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ),
        (
            run_id,
            seq,
            "happened" if happened else "did_not_happen",
            result_json,
            by,
            at,
            note,
        ),
    )
    return True
