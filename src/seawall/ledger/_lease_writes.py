"""The store's writes of who holds a run: leases, claims (takeovers) and the takeover sweeps.

Written once for both databases (see :mod:`seawall.ledger._sqlbase`). Every claim raises the
run's epoch, so the owner it replaces is fenced: its next write names the old epoch and is
refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import TYPE_CHECKING, Any, Final

from seawall._payload import Blob, column_ref
from seawall.ledger import _pg_writes as pg_writes
from seawall.ledger import _queries as queries
from seawall.ledger import _writes as writes
from seawall.ledger._records import ClaimedRun
from seawall.ledger._rows import run_record
from seawall.ledger._sqlbase import SQLBase, upsert_attempt

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from seawall.ledger._dialect import Dialect
    from seawall.ledger._records import RunRecord


_RENEW_LEASES: Final = (
    "UPDATE runs SET lease_expires_at = ? "
    "FROM (SELECT key AS run_id, value AS epoch FROM json_each(?)) AS held "
    "WHERE runs.run_id = held.run_id AND runs.epoch = held.epoch RETURNING runs.run_id"
)
"""Extends the leases of ``{run_id: epoch}`` (a JSON object) held at those epochs (SQLite)."""
_CLAIM_SET: Final = (
    "lease_owner = ?, lease_expires_at = ?, status = 'running', epoch = epoch + 1, updated_at = ?"
)
_CLAIMABLE: Final = (
    "run_id = ? AND CASE WHEN status IN ('running', 'pending') "
    "THEN lease_expires_at IS NULL OR lease_expires_at < ? END"
)
"""The run ``?``, pending or with a lease lapsed before ``?``.

The status and lease test is a ``CASE`` so that no index but the run's key can serve it. A
generic PostgreSQL plan of the claim, made while ``runs`` was young, drove it from another
index of ``runs`` instead (the agent's: the partial one of leases could be another) and
filtered every run of the agent: by the end of 6,000 runs in bench_celery, 6,000 index entries
and 4-6 ms a claim (1.6 ms on average over 10,000 runs, against 0.2 ms by the key). An
expression no index holds leaves the key as the only way in.
"""
_CLAIM: Final = f"UPDATE runs SET {_CLAIM_SET} WHERE {_CLAIMABLE}"
"""A claim of one run, pending or with a lapsed lease (params: owner, expires_at, now, run_id,
now): one claimer wins and the epoch goes up."""

_FRESH: Final = "attempts = 0 AND phase IS NULL AND COALESCE(replay_mode, '') <> 'recorded'"
"""A claimed run that never started: its claim starts its first attempt.

The claim's assignments (``_CLAIM_SET``) change none of these columns, so it reads the same in
the claim's ``RETURNING`` (SQLite's gives the new values) as before it (PostgreSQL's ``was``).
"""


def _of_agents(agents: int) -> str:
    """An agent run (not a graph's own) of one of ``agents`` agents (a ``?`` each).

    A ``CASE``, as in ``_CLAIMABLE``: the agent's index must not be the claim's way in.
    """
    return (
        f"CASE WHEN {queries.among('agent', ['?'] * agents)} "
        "AND (workflow IS NULL OR node IS NOT NULL) THEN true END"
    )


@functools.cache
def _claim_in_one(dialect: Dialect, agents: int) -> str:
    """:meth:`LeaseWrites.claim_and_start` on PostgreSQL: one autocommit statement.

    It was five round trips (``BEGIN``, the claim, the attempt count, the attempt, ``COMMIT``),
    paid by every run a worker takes. ``was`` locks the run while it is claimable and reads
    whether it never started from the version it locked (the newest, after any claimer that
    committed first: then it is no longer claimable, and nothing is claimed). Its rows: the
    claimed run's columns, its input column and whether its first attempt was started; none
    when it was not claimed. Parameters: run_id, now (``was``); owner, expires_at, now,
    run_id, now, the agents (the claim); now, owner (the attempt).
    """
    return pg_writes.numbered(
        dialect.sql(
            f"WITH was AS (SELECT {_FRESH} AS fresh FROM runs WHERE {_CLAIMABLE} FOR UPDATE), "
            f"claimed AS (UPDATE runs SET {_CLAIM_SET}, "
            "attempts = CASE WHEN was.fresh THEN 1 ELSE runs.attempts END FROM was "
            f"WHERE {_CLAIMABLE} AND {_of_agents(agents)} "
            f"RETURNING {queries.RUN_COLUMNS}, input, was.fresh), "
            "started AS ("
        )
        + upsert_attempt(
            dialect, "SELECT run_id, 1, ?, 'running', ?, 0, 0, epoch FROM claimed WHERE fresh"
        )
        + ") SELECT * FROM claimed"
    )


class LeaseWrites(SQLBase):
    """Leases on runs, claims of lapsed or pending runs, the sweeper lease and re-sends."""

    def _claim(self, conn: Any, doubt: bool, sql: str, params: Sequence[Any]) -> int | None:
        """Run a claim (``UPDATE runs ... RETURNING epoch``); return the epoch it won.

        After a commit whose outcome is unknown, the claim won if the run is held as it
        would have left it (``params`` start with the owner and the lease's expiry).
        """
        won = conn.execute(sql, params).fetchall()
        if won or not doubt:
            return int(won[0][0]) if won else None
        owner, expires_at, run_id = params[0], params[1], params[3]
        row = conn.execute(
            self._q(
                "SELECT epoch FROM runs WHERE run_id = ? AND lease_owner = ? "
                "AND lease_expires_at = ? AND status = 'running'"
            ),
            (run_id, owner, expires_at),
        ).fetchone()
        return None if row is None else int(row[0])

    # -- leases -----------------------------------------------------------------------------

    def renew_leases(self, leases: Mapping[str, int], expires_at: float) -> list[str]:
        """Extend the leases held on runs ``{run_id: epoch}``; return the ones taken over.

        One statement for them all, the leases passed as one JSON object (SQLite's
        ``json_each``; PostgreSQL's store writes its own with ``unnest``): with thousands of
        runs in flight, a statement per run held the ledger for up to seconds, and every
        write waited.
        """
        if not leases:
            return []
        held = json.dumps(leases)

        def write(conn: Any, _doubt: bool) -> list[str]:
            renewed = {row[0] for row in conn.execute(_RENEW_LEASES, (expires_at, held))}
            return [run_id for run_id in leases if run_id not in renewed]

        return self._run(write, "renew leases")

    def expired_runs(self, now: float, limit: int) -> list[RunRecord]:
        """Return unfinished runs whose lease lapsed before ``now``, oldest first."""
        rows = self._fetchall(
            self._q(
                f"SELECT {queries.RUN_COLUMNS} FROM runs WHERE status IN ('running', 'pending') "
                "AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?"
            ),
            (now, limit),
            "list expired runs",
        )
        return [run_record(row) for row in rows]

    def claim_run(self, run_id: str, owner: str, expires_at: float, now: float) -> int | None:
        """Take over a run whose lease lapsed (or a pending one); return its new epoch.

        Two claimers race on the run's row (SQLite: the write lock; PostgreSQL: the row lock,
        the second re-checking the lease against the first's committed write), so exactly one
        wins.
        """
        sql = self._q(f"{_CLAIM} RETURNING epoch")

        def write(conn: Any, doubt: bool) -> int | None:
            return self._claim(conn, doubt, sql, (owner, expires_at, now, run_id, now))

        return self._run(write, f"claim run {run_id}", durable=True, transaction=False)

    def claim_and_start(
        self, run_id: str, owner: str, expires_at: float, now: float, agents: Sequence[str]
    ) -> ClaimedRun | None:
        """Claim a run of one of ``agents`` and, when it never started, start its first attempt.

        One transaction (on PostgreSQL one statement: :func:`_claim_in_one`), whose claim is
        :meth:`claim_run`'s update (one winner, the epoch raised), narrowed to agent runs of
        ``agents``. It returns the run's row and input with the claim, so a worker executes the
        run on this one round of the ledger.
        """
        if not agents:
            return None
        params = (owner, expires_at, now, run_id, now, *agents)
        if not self.dialect.serialized:
            in_one = _claim_in_one(self.dialect, len(agents))
            in_one_params = (run_id, now, *params, now, owner)

            def claim_in_one(conn: Any, doubt: bool) -> ClaimedRun | None:
                row = pg_writes.execute(conn, in_one, in_one_params).fetchone()
                if row is None:
                    return self._claimed_before(conn, doubt, run_id, owner, expires_at, now)
                return self._claimed(conn, run_record(row[:-2]), bytes(row[-2]), bool(row[-1]))

            return self._run(claim_in_one, f"claim run {run_id}", durable=True, transaction=False)

        claim = self._q(
            f"{_CLAIM} AND {_of_agents(len(agents))} "
            f"RETURNING {queries.RUN_COLUMNS}, input, {_FRESH}"
        )

        def write(conn: Any, doubt: bool) -> ClaimedRun | None:
            row = conn.execute(claim, params).fetchone()
            if row is None:
                return self._claimed_before(conn, doubt, run_id, owner, expires_at, now)
            run, started = run_record(row[:-2]), bool(row[-1])
            if started:
                # The transaction holds the write lock: the epoch the claim set fences this
                # attempt.
                conn.execute(self._q("UPDATE runs SET attempts = 1 WHERE run_id = ?"), (run_id,))
                conn.execute(
                    self.statements.upsert_attempt, (run_id, 1, now, owner, 0, 0, run.epoch)
                )
                run = dataclasses.replace(run, attempts=1)
            return self._claimed(conn, run, bytes(row[-2]), started)

        return self._run(write, f"claim run {run_id}", durable=True)

    def _claimed_before(
        self, conn: Any, doubt: bool, run_id: str, owner: str, expires_at: float, now: float
    ) -> ClaimedRun | None:
        """After a commit whose outcome is unknown: the claim this caller may have committed."""
        if not doubt:
            return None
        row = conn.execute(
            self._q(
                f"SELECT {queries.RUN_COLUMNS}, input FROM runs WHERE run_id = ? "
                "AND lease_owner = ? AND lease_expires_at = ? AND status = 'running'"
            ),
            (run_id, owner, expires_at),
        ).fetchone()
        if row is None:
            return None
        run = run_record(row[:-1])
        started = self._found(
            conn,
            doubt,
            "SELECT 1 FROM attempts WHERE run_id = ? AND attempt = ? AND epoch = ? "
            "AND start_time = ? AND owner = ?",
            (run_id, run.attempts, run.epoch, now, owner),
        )
        return self._claimed(conn, run, bytes(row[-1]), started)

    def _claimed(self, conn: Any, run: RunRecord, column: bytes, started: bool) -> ClaimedRun:
        """The claimed run, with the blob its input column refers to (read in the claim)."""
        ref = column_ref(column)
        found = (
            []
            if ref is None
            else conn.execute(
                self._q("SELECT hash, codec, size, data FROM blobs WHERE hash = ?"), (ref,)
            ).fetchall()
        )
        blobs = {h: Blob(h, codec, size, bytes(data)) for h, codec, size, data in found}
        return ClaimedRun(run, column, blobs, started)

    # -- takeover sweeps --------------------------------------------------------------------

    def claim_sweeper(self, name: str, owner: str, now: float, expires_at: float) -> bool:
        """Take the sweeper lease ``name`` when it lapsed, or renew it for ``owner``.

        Safe to redo after a commit whose outcome is unknown: a holder renews its own lease.
        """

        def write(conn: Any, _doubt: bool) -> bool:
            return writes.claim_sweeper(conn, self.dialect, name, owner, now, expires_at)

        return self._run(write, "claim the sweeper lease", transaction=False)

    def resend_lapsed(
        self, route: str, now: float, agents: Sequence[str], again_before: float, limit: int
    ) -> list[RunRecord]:
        """Mark for sending again the runs of ``agents`` whose lease lapsed (``SKIP LOCKED``)."""

        def write(conn: Any, _doubt: bool) -> list[RunRecord]:
            return writes.resend_lapsed(conn, self.dialect, route, now, agents, again_before, limit)

        return self._run(write, "hand over lapsed runs", transaction=False)

    def mark_resent(self, run_ids: Sequence[str], now: float, again_before: float) -> list[str]:
        """Mark re-sent those of ``run_ids`` still unclaimed and not re-sent since."""

        def write(conn: Any, _doubt: bool) -> list[str]:
            return writes.mark_resent(conn, self.dialect, run_ids, now, again_before)

        return self._run(write, "mark runs re-sent", transaction=False)
