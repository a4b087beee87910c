"""The store's writes of shared state: hand-offs, the DLQ, breakers, retry budgets, alerts, drift.

Written once for both databases (see :mod:`seawall.ledger._sqlbase`). Where SQLite's writers
take turns, PostgreSQL's claims lock what they read (``FOR UPDATE``, ``SKIP LOCKED``, advisory
locks): the dialect supplies those clauses, empty on SQLite.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall.errors import LedgerError
from seawall.ledger import _queries as queries
from seawall.ledger import _writes as writes
from seawall.ledger._records import DeadLetterQuery
from seawall.ledger._rows import breaker_state, dead_letter_record
from seawall.ledger._sqlbase import SQLBase
from seawall.policies.breaker import BreakerState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from seawall._payload import Blob
    from seawall.ledger._inputs import NewRun
    from seawall.ledger._records import DeadLetter, HandOffRecord
    from seawall.ledger._watch_records import AlertRecord, DriftEmbedding, DriftSample

T = TypeVar("T")

_BUDGET_LOCK: Final = 0x5EA2  # first key of the advisory locks serialising retry budgets
_HANDOFF_COLUMNS: Final = "handoff_id, run_id, kind, reason, subject, status, created_at"


class QueueWrites(SQLBase):
    """Hand-offs, dead letters, breakers, retry budgets, alerts and drift samples."""

    # -- hand-offs --------------------------------------------------------------------------

    def open_handoff(self, handoff: HandOffRecord, *, epoch: int) -> None:
        """Record a new hand-off to a person (durably; fenced by its run's epoch)."""
        insert = self._q(
            f"INSERT INTO handoffs ({_HANDOFF_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (handoff_id) DO NOTHING"
        )
        values = (
            handoff.handoff_id,
            handoff.run_id,
            handoff.kind,
            handoff.reason,
            json.dumps(handoff.subject, sort_keys=True, default=str),
            handoff.status,
            handoff.created_at,
        )

        def write(conn: Any, doubt: bool) -> None:
            writes.check_fence(conn, self.dialect, handoff.run_id, epoch)
            if conn.execute(insert, values).rowcount != 1 and not doubt:
                raise LedgerError(
                    f"the ledger {self.display} already has a hand-off {handoff.handoff_id}",
                    run_id=handoff.run_id,
                )

        self._run(write, f"open a hand-off for run {handoff.run_id}", durable=True)

    def decide_handoff(
        self, handoff_id: str, *, decision: str, decided_by: str | None, note: str | None, at: float
    ) -> bool:
        """Record a decision on an open hand-off; false when it was already decided."""
        return self._decide(
            "UPDATE handoffs SET status = 'decided', decision = ?, decided_by = ?, note = ?, "
            "decided_at = ? WHERE handoff_id = ? AND status = 'open'",
            (decision, decided_by, note, at, handoff_id),
            "SELECT 1 FROM handoffs WHERE handoff_id = ? AND decision = ? AND decided_at = ? "
            "AND decided_by IS NOT DISTINCT FROM ?",
            (handoff_id, decision, at, decided_by),
            f"decide hand-off {handoff_id}",
        )

    # -- dead-letter queue ------------------------------------------------------------------

    def claim_dead_letter(
        self, query: DeadLetterQuery, owner: str, at: float, *, stale_before: float = 0.0
    ) -> DeadLetter | None:
        """Take the oldest claimable entry matching ``query`` for redriving (one claimer wins).

        Claimable: pending, or claimed before ``stale_before`` by a redriver that died before
        its redrive started. Concurrent claimers skip each other's locked rows (PostgreSQL),
        so each takes a different entry.
        """
        claimable = dataclasses.replace(
            query, status="claimable", limit=1, stale_before=stale_before
        )
        where, params = queries.dlq_where(claimable, self.dialect)
        pick = (
            f"SELECT {queries.DLQ_COLUMNS} FROM dlq{where} ORDER BY failed_at, entry_id LIMIT 1"
            + self.dialect.skip_locked
        )
        claim = self._q(
            "UPDATE dlq SET status = 'redriving', claimed_by = ?, claimed_at = ? "
            f"WHERE entry_id = ? AND {queries.CLAIMABLE}"
        )

        def write(conn: Any, doubt: bool) -> DeadLetter | None:
            if doubt:
                mine = conn.execute(
                    self._q(
                        f"SELECT {queries.DLQ_COLUMNS} FROM dlq WHERE status = 'redriving' "
                        "AND claimed_by = ? AND claimed_at = ?"
                    ),
                    (owner, at),
                ).fetchone()
                if mine is not None:  # the earlier try committed its claim
                    return dead_letter_record((*mine[:8], "pending", None, *mine[10:]))
            row = conn.execute(pick, params).fetchone()
            if row is None:
                return None
            claimed = conn.execute(claim, (owner, at, row[0], stale_before)).rowcount
            return dead_letter_record(row) if claimed == 1 else None

        return self._run(write, "claim a DLQ entry", durable=True)

    def begin_redrive(
        self, entry_id: str, owner: str, run: NewRun, source_run_id: str | None
    ) -> bool:
        """Record a claimed entry's redrive run (with the journal it continues) in one go."""

        def write(conn: Any, doubt: bool) -> bool:
            if self._found(
                conn,
                doubt,
                "SELECT 1 FROM dlq WHERE entry_id = ? AND redrive_run_id = ?",
                (entry_id, run.run_id),
            ):
                return True  # the earlier try committed
            return writes.begin_redrive(conn, self.dialect, entry_id, owner, run, source_run_id)

        return self._run(write, f"begin the redrive of DLQ entry {entry_id}", durable=True)

    def resolve_step(
        self,
        run_id: str,
        seq: int,
        *,
        happened: bool,
        response: bytes | None,
        result_json: str | None,
        blobs: Sequence[Blob],
        by: str | None,
        note: str | None,
        at: float,
    ) -> bool:
        """Record an operator's word on an in-doubt step of an ended run."""

        def write(conn: Any, doubt: bool) -> bool:
            if self._found(
                conn,
                doubt,
                "SELECT 1 FROM step_resolutions WHERE run_id = ? AND seq = ? AND decided_at = ?",
                (run_id, seq, at),
            ):
                return True  # the earlier try committed
            self._put_blobs(conn, blobs)
            return writes.resolve_step(
                conn,
                self.dialect,
                run_id,
                seq,
                happened=happened,
                response=response,
                result_json=result_json,
                by=by,
                note=note,
                at=at,
            )

        return self._run(write, f"resolve step {seq} of run {run_id}", durable=True)

    def finish_dead_letter(
        self, entry_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> None:
        """Record how a redrive ended."""
        sql = self._q(
            "UPDATE dlq SET status = 'redriven', redriven_at = ?, redrive_run_id = ?, "
            "result = ? WHERE entry_id = ?"
        )
        self._run(
            lambda conn, _doubt: conn.execute(sql, (at, redrive_run_id, result, entry_id)),
            "record a redrive",
            durable=True,
            transaction=False,
        )

    def release_dead_letter(self, entry_id: str) -> None:
        """Give a claimed entry back (its redrive could not start)."""
        sql = self._q(
            "UPDATE dlq SET status = 'pending', claimed_by = NULL, claimed_at = NULL "
            "WHERE entry_id = ? AND status = 'redriving'"
        )
        self._run(
            lambda conn, _doubt: conn.execute(sql, (entry_id,)),
            "release a DLQ entry",
            durable=True,
            transaction=False,
        )

    def settle_dead_letter(
        self, run_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> bool:
        """Mark a run's pending entry redriven by a run made outside a redrive (a live replay)."""
        return self._decide(
            "UPDATE dlq SET status = 'redriven', redriven_at = ?, redrive_run_id = ?, result = ? "
            "WHERE run_id = ? AND status = 'pending'",
            (at, redrive_run_id, result, run_id),
            "SELECT 1 FROM dlq WHERE run_id = ? AND redrive_run_id = ? AND redriven_at = ?",
            (run_id, redrive_run_id, at),
            "settle a DLQ entry",
        )

    def purge_dead_letters(self, query: DeadLetterQuery) -> int:
        """Mark matching pending entries purged; return how many."""
        pending = DeadLetterQuery(
            query.agent, query.error_class, query.since, "pending", query.limit
        )
        where, params = queries.dlq_where(pending, self.dialect)
        sql = self._q(
            f"UPDATE dlq SET status = 'purged' WHERE entry_id IN "
            f"(SELECT entry_id FROM dlq{where} ORDER BY failed_at LIMIT ?"
            f"{self.dialect.skip_locked})"
        )
        purged: int = self._run(
            lambda conn, _doubt: conn.execute(sql, [*params, query.limit]).rowcount,
            "purge the DLQ",
            durable=True,
            transaction=False,
            redo_in_doubt=False,
        )
        return purged

    # -- breakers -----------------------------------------------------------------------------

    def breaker(self, name: str, kind: str) -> BreakerState:
        """Return a breaker's state (closed when never used)."""
        row = self._one(
            f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = ?",
            (name,),
            "read a breaker",
        )
        return BreakerState(name=name, kind=kind) if row is None else breaker_state(row)

    def update_breaker(
        self, name: str, kind: str, change: Callable[[BreakerState], tuple[BreakerState, T]]
    ) -> T:
        """Apply ``change`` to a breaker under its row lock; record the transition, if any."""
        read = self._q(
            f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = ?"
            + self.dialect.for_update
        )

        def write(conn: Any, _doubt: bool) -> tuple[bool, T | None]:
            row = conn.execute(read, (name,)).fetchone()
            before = BreakerState(name=name, kind=kind) if row is None else breaker_state(row)
            after, answer = change(before)
            if after == before:
                return True, answer
            now = time.time()
            values = (
                name,
                kind,
                after.state,
                after.failures,
                after.opened_at,
                after.reason,
                1 if after.manual else 0,
                after.probe_owner,
                after.probe_at,
                now,
            )
            if row is None:
                written = conn.execute(
                    self._q(
                        f"INSERT INTO breakers ({queries.BREAKER_COLUMNS}, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"
                    ),
                    values,
                ).rowcount
                if written != 1:
                    return False, None  # another process created it first: decide again
            else:
                conn.execute(
                    self._q(
                        "UPDATE breakers SET kind = ?, state = ?, failures = ?, opened_at = ?, "
                        "reason = ?, manual = ?, probe_owner = ?, probe_at = ?, "
                        "updated_at = ? WHERE name = ?"
                    ),
                    (*values[1:], name),
                )
            if after.state != before.state:
                conn.execute(
                    self._q(
                        "INSERT INTO breaker_events (name, at, from_state, to_state, reason) "
                        "VALUES (?, ?, ?, ?, ?)"
                    ),
                    (name, now, before.state, after.state, after.reason),
                )
            return True, answer

        while True:
            done, answer = self._run(
                write, f"update breaker {name}", durable=True, redo_in_doubt=False
            )
            if done:
                return answer  # type: ignore[return-value]

    # -- retry budgets -------------------------------------------------------------------------

    def add_budget_calls(self, counts: Sequence[tuple[str, int, int]]) -> None:
        """Add call counts ``(name, bucket, calls)`` to the shared retry-budget windows.

        A commit whose outcome is unknown is not redone: counts are advisory, and a lost count
        errs on the strict side (fewer calls, so fewer retries allowed).
        """
        if not counts:
            return

        def write(conn: Any, _doubt: bool) -> None:
            self.dialect.executemany(
                conn,
                self._q(
                    "INSERT INTO retry_budget (name, bucket, calls) VALUES (?, ?, ?) "
                    "ON CONFLICT (name, bucket) DO UPDATE "
                    "SET calls = retry_budget.calls + excluded.calls"
                ),
                sorted(counts),  # one lock order for every writer: no deadlocks
            )
            conn.execute(
                self._q("DELETE FROM retry_budget WHERE bucket < ?"), (int(time.time()) - 3600,)
            )

        self._run(write, "count calls for retry budgets", redo_in_doubt=False)

    def spend_retry(
        self, name: str, *, since: int, bucket: int, allows: Callable[[int, int], bool]
    ) -> bool:
        """Record one retry of ``name`` if ``allows(calls, retries)`` over the window says so.

        Spenders of one name take turns, so two workers cannot both spend the last retry of a
        window.
        """

        def write(conn: Any, _doubt: bool) -> bool:
            self._take_turns(
                conn, "SELECT pg_advisory_xact_lock(?, hashtext(?))", (_BUDGET_LOCK, name)
            )
            row = conn.execute(
                self._q(
                    "SELECT coalesce(sum(calls), 0), coalesce(sum(retries), 0) FROM retry_budget "
                    "WHERE name = ? AND bucket >= ?"
                ),
                (name, since),
            ).fetchone()
            calls, retries = (0, 0) if row is None else (int(row[0]), int(row[1]))
            if not allows(calls, retries):
                return False
            conn.execute(
                self._q(
                    "INSERT INTO retry_budget (name, bucket, retries) VALUES (?, ?, 1) "
                    "ON CONFLICT (name, bucket) DO UPDATE SET retries = retry_budget.retries + 1"
                ),
                (name, bucket),
            )
            return True

        return self._run(write, f"spend a retry of {name}", redo_in_doubt=False)

    # -- alerts and drift -------------------------------------------------------------------

    def _insert_alert(self, conn: Any, alert: AlertRecord) -> None:
        conn.execute(
            self._q(
                f"INSERT INTO alerts ({queries.ALERT_COLUMNS}) VALUES ({', '.join('?' * 10)}) "
                "ON CONFLICT (alert_id) DO NOTHING"
            ),
            (
                alert.alert_id,
                alert.kind,
                alert.agent,
                alert.feature,
                alert.statistic,
                alert.threshold,
                alert.window,
                alert.message,
                json.dumps(alert.details, sort_keys=True, default=str),
                alert.at,
            ),
        )

    def record_alert(self, alert: AlertRecord) -> None:
        """Record an alert durably (redone safely after an unknown commit: its id is its key)."""
        self._run(
            lambda conn, _doubt: self._insert_alert(conn, alert),
            f"record {alert.kind} alert {alert.alert_id}",
            durable=True,
            transaction=False,
        )

    def update_alert_state(
        self,
        key: str,
        change: Callable[[Any], tuple[Any, Sequence[AlertRecord]]],
    ) -> list[AlertRecord]:
        """Apply ``change`` to the state under ``key`` (row locked) and record its alerts."""
        read = self._q(
            "SELECT state FROM alert_state WHERE state_key = ?" + self.dialect.for_update
        )

        def write(conn: Any, _doubt: bool) -> tuple[bool, list[AlertRecord]]:
            row = conn.execute(read, (key,)).fetchone()
            state, alerts = change(None if row is None else json.loads(row[0]))
            text = json.dumps(state, sort_keys=True)
            if row is None:
                written = conn.execute(
                    self._q(
                        "INSERT INTO alert_state (state_key, state, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (state_key) DO NOTHING"
                    ),
                    (key, text, time.time()),
                ).rowcount
                if written != 1:
                    return False, []  # another process created it first: decide again
            elif text != row[0]:
                conn.execute(
                    self._q("UPDATE alert_state SET state = ?, updated_at = ? WHERE state_key = ?"),
                    (text, time.time(), key),
                )
            for alert in alerts:
                self._insert_alert(conn, alert)
            return True, list(alerts)

        while True:
            done, raised = self._run(
                write, f"update alert state {key}", durable=True, redo_in_doubt=False
            )
            if done:
                return raised

    def alert_state(self, key: str) -> Any:
        """Return the state under ``key`` (``None`` when there is none)."""
        row = self._one(
            "SELECT state FROM alert_state WHERE state_key = ?", (key,), "read alert state"
        )
        return None if row is None else json.loads(row[0])

    def add_drift_samples(self, samples: Sequence[DriftSample]) -> None:
        """Record drift samples in one transaction (a run already sampled is kept as it was)."""
        if not samples:
            return
        rows = [
            (
                s.agent,
                s.run_id,
                s.at,
                s.decision,
                s.output_bytes,
                s.tokens,
                s.cost_usd,
                s.latency,
                s.confidence,
                None if s.verified is None else int(s.verified),
            )
            for s in samples
        ]
        insert = self.dialect.ignore(
            "drift_samples",
            queries.SAMPLE_COLUMNS,
            "agent, run_id",
            f"VALUES ({', '.join('?' * 10)})",
        )
        self._run(
            lambda conn, _doubt: self.dialect.executemany(conn, insert, rows),
            f"record {len(rows)} drift samples",
        )

    def count_drift_samples(self, agent: str) -> int:
        """Return how many samples of ``agent`` the ledger holds."""
        row = self._one(
            "SELECT count(*) FROM drift_samples WHERE agent = ?", (agent,), "count drift samples"
        )
        return int(row[0]) if row else 0

    def add_drift_embeddings(self, embeddings: Sequence[DriftEmbedding]) -> None:
        """Record output embeddings in one transaction (a run already embedded is kept)."""
        if not embeddings:
            return
        rows = [queries.embedding_row(e) for e in embeddings]
        insert = queries.insert_embeddings(self.dialect)
        self._run(
            lambda conn, _doubt: self.dialect.executemany(conn, insert, rows),
            f"record {len(rows)} drift embeddings",
        )
