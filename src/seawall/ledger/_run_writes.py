"""The store's writes of a run's life: the run, its attempts and journal, settling.

Written once for both databases (see :mod:`seawall.ledger._sqlbase`). A write that a
PostgreSQL store may redo after a lost connection either is idempotent or, when ``doubt`` says
an earlier try may have committed, recognises its own committed write.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from seawall._failures import RunStatus
from seawall._payload import Blob
from seawall.errors import LedgerError
from seawall.ledger import _pg_writes as pg_writes
from seawall.ledger import _writes as writes
from seawall.ledger._lease_writes import LeaseWrites

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from seawall.ledger._inputs import AttemptOutcome, NewRun, RunOutcome, StepRow


class RunWrites(LeaseWrites):
    """Runs, attempts, the journal, commits and compensations, verdicts (leases: the base)."""

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, run: NewRun, blobs: Sequence[Blob]) -> None:
        """Record a new run, leased to its owner, with its input snapshot."""
        insert = self._q(writes.INSERT_RUN + " ON CONFLICT (run_id) DO NOTHING")

        def write(conn: Any, doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            if conn.execute(insert, writes.new_run_params(run)).rowcount == 1:
                return
            mine = conn.execute(
                self._q(
                    "SELECT 1 FROM runs WHERE run_id = ? AND lease_owner IS NOT DISTINCT FROM ? "
                    "AND start_time = ? AND input_hash = ?"
                ),
                (run.run_id, run.owner, run.start_time, run.input_hash),
            ).fetchone()
            if not (doubt and mine):
                raise LedgerError(
                    f"the ledger {self.display} already has a run {run.run_id}; run ids "
                    "are unique (use seawall.new_run_id())",
                    run_id=run.run_id,
                )

        self._run(write, f"record run {run.run_id}", durable=True)

    def create_and_start(self, run: NewRun, blobs: Sequence[Blob]) -> None:
        """Record a new run leased to its owner and start its first attempt, in one transaction.

        The attempt starts at the run's start time, at epoch 1, its journal line at 0.
        """
        # On PostgreSQL, with no blob to store first, one statement inserts the run and its
        # attempt (see _pg_writes); elsewhere, one transaction.
        alone = not self.dialect.serialized and not blobs
        if alone:
            insert, params = pg_writes.open_run_sql(self.dialect), pg_writes.open_run_params(run)
        else:
            insert = self._q(writes.INSERT_RUN + " ON CONFLICT (run_id) DO NOTHING")
            params = writes.new_run_params(run, attempts=1)
        attempt = (run.run_id, 1, run.start_time, run.owner, 0, 0, 1)

        def write(conn: Any, doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            inserted = (
                pg_writes.execute(conn, insert, params) if alone else conn.execute(insert, params)
            )
            if inserted.rowcount != 1:
                # Only a redo in doubt of this very write may find its run: then it committed,
                # its attempt with it.
                mine = self._found(
                    conn,
                    doubt,
                    "SELECT 1 FROM runs WHERE run_id = ? AND lease_owner IS NOT DISTINCT FROM ? "
                    "AND start_time = ? AND input_hash = ?",
                    (run.run_id, run.owner, run.start_time, run.input_hash),
                )
                if not mine:
                    raise LedgerError(
                        f"the ledger {self.display} already has a run {run.run_id}; run ids "
                        "are unique (use seawall.new_run_id())",
                        run_id=run.run_id,
                    )
                return
            if not alone:
                # The run was inserted at epoch 1 in this very transaction: no fence to check.
                conn.execute(self.statements.upsert_attempt, attempt)

        if alone:
            self._statement(write, f"record run {run.run_id}", insert, params)
        else:
            self._run(write, f"record run {run.run_id}", durable=True)

    def get_run_io(self, run_id: str) -> tuple[bytes, bytes | None] | None:
        """Return the stored input and output columns of a run."""
        row = self._one(
            "SELECT input, output FROM runs WHERE run_id = ?", (run_id,), "read a run's payloads"
        )
        return None if row is None else (bytes(row[0]), None if row[1] is None else bytes(row[1]))

    def finish_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record the run's final fields and release its lease (fenced; a failure joins the DLQ)."""

        def write(conn: Any, _doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            writes.finish_run(conn, self.dialect, run_id, outcome, epoch)

        self._run(write, f"record the end of run {run_id}", durable=True)

    def end_run(
        self,
        run_id: str,
        attempt: int,
        ended: AttemptOutcome,
        outcome: RunOutcome,
        steps: Sequence[StepRow],
        blobs: Sequence[Blob],
        *,
        epoch: int,
    ) -> None:
        """Record an attempt's end, the run's steps still buffered and the run's end, at once.

        One durable transaction, fenced like :meth:`finish_attempt`, :meth:`write_steps` and
        :meth:`finish_run`: when another owner took the run over, nothing is written.

        Raises:
            LeaseLostError: Another owner took the run over.
        """
        if not self.dialect.serialized and outcome.status is RunStatus.SUCCEEDED:
            self._end_in_one(run_id, attempt, ended, outcome, steps, blobs, epoch=epoch)
            return
        params = writes.attempt_outcome_params(run_id, attempt, ended, epoch)

        def write(conn: Any, _doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            # The fenced attempt update comes first: on SQLite, where writers take turns, the
            # fence it checked holds for the rest of the transaction.
            if conn.execute(self.statements.finish_attempt, params).rowcount != 1:
                raise writes.refusal(conn, self.dialect, run_id, epoch)
            if steps:
                if self.dialect.serialized:
                    self.dialect.executemany(conn, self.statements.insert_step, steps)
                elif self._put_fenced_steps(conn, steps, run_id, epoch) != len(steps):
                    raise writes.refusal(conn, self.dialect, run_id, epoch)
            writes.finish_run(conn, self.dialect, run_id, outcome, epoch)

        self._run(write, f"record the end of run {run_id}", durable=True)

    def _end_in_one(
        self,
        run_id: str,
        attempt: int,
        ended: AttemptOutcome,
        outcome: RunOutcome,
        steps: Sequence[StepRow],
        blobs: Sequence[Blob],
        *,
        epoch: int,
    ) -> None:
        """:meth:`end_run` of a succeeded run on PostgreSQL: one statement (see _pg_writes)."""
        # A statement must not write one row twice: a step buffered twice goes first, alone.
        inline = len({row[1] for row in steps}) == len(steps) <= pg_writes.INLINE_STEPS
        sql = pg_writes.end_run_sql(self.dialect, len(steps) if inline else 0)
        params = pg_writes.end_run_params(
            run_id, attempt, ended, outcome, steps if inline else (), epoch
        )

        def write(conn: Any, _doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            if not inline and self._put_fenced_steps(conn, steps, run_id, epoch) != len(steps):
                raise writes.refusal(conn, self.dialect, run_id, epoch)
            row = pg_writes.execute(conn, sql, params).fetchone()
            if row is None or tuple(row) != (1, 1):
                raise writes.refusal(conn, self.dialect, run_id, epoch)

        if inline and not blobs:  # one statement: atomic without a transaction
            self._statement(write, f"record the end of run {run_id}", sql, params)
        else:
            self._run(write, f"record the end of run {run_id}", durable=True)

    def set_trace(self, run_id: str, trace_id: str, span_id: str) -> None:
        """Record the OpenTelemetry span of a traced run."""
        sql = self._q("UPDATE runs SET trace_id = ?, span_id = ? WHERE run_id = ?")
        self._run(
            lambda conn, _doubt: conn.execute(sql, (trace_id, span_id, run_id)),
            f"record the trace of run {run_id}",
            transaction=False,
        )

    # -- settling: commits and compensations --------------------------------------------------

    def begin_commit(
        self,
        run_id: str,
        *,
        output_hash: str,
        output_column: bytes,
        blobs: Sequence[Blob],
        commit_json: str,
        artifacts: Sequence[tuple[str, int, str]],
        epoch: int,
    ) -> None:
        """Record output and manifest before publishing them (phase ``committing``; fenced)."""

        def write(conn: Any, _doubt: bool) -> None:
            writes.check_fence(conn, self.dialect, run_id, epoch)
            self._put_blobs(conn, blobs)
            conn.execute(self._q("DELETE FROM artifacts WHERE run_id = ?"), (run_id,))
            self.dialect.executemany(
                conn,
                self._q("INSERT INTO artifacts (run_id, name, size, sha256) VALUES (?, ?, ?, ?)"),
                [(run_id, name, size, sha) for name, size, sha in artifacts],
            )
            conn.execute(
                self._q(
                    "UPDATE runs SET phase = 'committing', commit_json = ?, output_hash = ?, "
                    "output = ?, updated_at = ? WHERE run_id = ?"
                ),
                (commit_json, output_hash, output_column, time.time(), run_id),
            )

        self._run(write, f"record the commit of run {run_id}", durable=True)

    def abort_commit(self, run_id: str, *, epoch: int) -> None:
        """Forget an unfinished commit (its artifacts were not published; fenced)."""

        def write(conn: Any, _doubt: bool) -> None:
            writes.check_fence(conn, self.dialect, run_id, epoch)
            conn.execute(self._q("DELETE FROM artifacts WHERE run_id = ?"), (run_id,))
            conn.execute(
                self._q(
                    "UPDATE runs SET phase = NULL, commit_json = NULL, output_hash = NULL, "
                    "output = NULL, updated_at = ? WHERE run_id = ?"
                ),
                (time.time(), run_id),
            )

        self._run(write, f"roll back the commit of run {run_id}", durable=True)

    def get_commit(self, run_id: str) -> str | None:
        """Return the commit record (JSON) of a run in phase ``committing``."""
        row = self._one("SELECT commit_json FROM runs WHERE run_id = ?", (run_id,), "read a commit")
        return None if row is None else row[0]

    def begin_compensation(self, run_id: str, outcome: RunOutcome, *, epoch: int) -> None:
        """Record a run's final failure and enter phase ``compensating`` (fenced)."""

        def write(conn: Any, _doubt: bool) -> None:
            writes.begin_compensation(conn, self.dialect, run_id, outcome, epoch)

        self._run(write, f"record the compensation of run {run_id}", durable=True)

    def start_compensation(
        self,
        run_id: str,
        seq: int,
        tool: str,
        idempotency_key: str | None,
        start_time: float,
        *,
        epoch: int,
    ) -> None:
        """Record the intent to run a compensation (durable before it runs; fenced)."""
        upsert = self.dialect.replace(
            "compensations",
            "run_id, seq, tool, idempotency_key, status, start_time",
            "run_id, seq",
            "VALUES (?, ?, ?, ?, 'started', ?)",
            reset="end_time = NULL, tries = 1, error_type = NULL, error_message = NULL",
        )

        def write(conn: Any, _doubt: bool) -> None:
            writes.check_fence(conn, self.dialect, run_id, epoch)
            conn.execute(upsert, (run_id, seq, tool, idempotency_key, start_time))

        self._run(write, f"record a compensation of run {run_id}", durable=True)

    def finish_compensation(
        self,
        run_id: str,
        seq: int,
        *,
        status: str,
        end_time: float,
        tries: int,
        error_type: str | None,
        error_message: str | None,
        epoch: int,
    ) -> None:
        """Record how a compensation ended (fenced)."""

        def write(conn: Any, _doubt: bool) -> None:
            writes.check_fence(conn, self.dialect, run_id, epoch)
            conn.execute(
                self._q(
                    "UPDATE compensations SET status = ?, end_time = ?, tries = ?, "
                    "error_type = ?, error_message = ? WHERE run_id = ? AND seq = ?"
                ),
                (status, end_time, tries, error_type, error_message, run_id, seq),
            )

        self._run(write, f"record a compensation of run {run_id}", durable=True)

    # -- verification, cancellation, parking ---------------------------------------------------

    def record_verdicts(
        self,
        run_id: str,
        attempt: int,
        kind: str,
        verdicts: Sequence[dict[str, Any]],
        *,
        epoch: int,
    ) -> None:
        """Append verdicts of one attempt (each a dict: name, passed, message, duration...)."""
        if not verdicts:
            return
        now = time.time()
        rows = [
            (
                str(v["name"]),
                1 if v["passed"] else 0,
                1 if v.get("error") else 0,
                None if v.get("score") is None else float(v["score"]),
                None if v.get("message") is None else str(v["message"]),
                float(v.get("duration") or 0.0),
            )
            for v in verdicts
        ]
        what = f"record verdicts of run {run_id}"
        found = (
            (
                "SELECT 1 FROM verifications WHERE run_id = ? AND attempt = ? AND kind = ? "
                "AND created_at = ? LIMIT 1"
            ),
            (run_id, attempt, kind, now),
        )
        if not self.dialect.serialized:  # one statement (see _pg_writes)
            params = pg_writes.verdicts_params(run_id, attempt, kind, rows, now, epoch)

            def add(conn: Any, doubt: bool) -> None:
                if self._found(conn, doubt, *found):
                    return  # the earlier try committed them
                if not pg_writes.add_verdicts(conn, params):
                    raise writes.refusal(conn, self.dialect, run_id, epoch)

            self._statement(add, what, pg_writes.VERDICTS, params)
            return

        def write(conn: Any, doubt: bool) -> None:
            # Writers take turns here: the fence and the last ordinal hold for the transaction.
            writes.check_fence(conn, self.dialect, run_id, epoch)
            if self._found(conn, doubt, *found):
                return  # the earlier try committed them
            row = conn.execute(
                self._q(
                    "SELECT coalesce(max(ordinal), 0) FROM verifications "
                    "WHERE run_id = ? AND attempt = ?"
                ),
                (run_id, attempt),
            ).fetchone()
            start = int(row[0]) if row else 0
            self.dialect.executemany(
                conn,
                self._q(
                    "INSERT INTO verifications (run_id, attempt, ordinal, kind, name, passed, "
                    "error, score, message, duration, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    (run_id, attempt, start + index, kind, *row, now)
                    for index, row in enumerate(rows, 1)
                ],
            )

        self._run(write, what)

    def request_cancel(self, run_id: str, reason: str, at: float) -> bool:
        """Record an operator's cancellation of an unfinished run; false if it had ended."""
        sql = self._q(
            "UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, ?), "
            "cancel_reason = coalesce(cancel_reason, ?), updated_at = ? WHERE run_id = ? "
            "AND status IN ('pending', 'running', 'awaiting_human')"
        )
        changed: int = self._run(
            lambda conn, _doubt: conn.execute(sql, (at, reason, at, run_id)).rowcount,
            f"cancel run {run_id}",
            durable=True,
            transaction=False,
        )
        return changed == 1

    def cancellations(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Return the cancellation reasons recorded for any of ``run_ids``."""
        rows = self._among(
            "SELECT run_id, cancel_reason FROM runs WHERE run_id IN ({}) "
            "AND cancel_requested_at IS NOT NULL",
            run_ids,
            "read cancellations",
        )
        return {r[0]: r[1] or "" for r in rows}

    def park_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record a run that waits for a person (``awaiting_human``): output kept, lease freed."""

        def write(conn: Any, _doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            writes.park_run(conn, self.dialect, run_id, outcome, epoch)

        self._run(write, f"park run {run_id}", durable=True)

    def claim_parked(self, run_id: str, owner: str, expires_at: float) -> int | None:
        """Take a run waiting for a person back into ``running`` (one decider wins)."""
        sql = self._q(
            "UPDATE runs SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
            "epoch = epoch + 1, updated_at = ? WHERE run_id = ? "
            "AND status = 'awaiting_human' RETURNING epoch"
        )

        def write(conn: Any, doubt: bool) -> int | None:
            return self._claim(conn, doubt, sql, (owner, expires_at, time.time(), run_id))

        return self._run(write, f"claim parked run {run_id}", durable=True, transaction=False)

    # -- attempts ---------------------------------------------------------------------------

    def start_attempt(
        self,
        run_id: str,
        attempt: int,
        start_time: float,
        owner: str,
        *,
        epoch: int,
        base_seq: int = 0,
        completed_at_start: int = 0,
    ) -> None:
        """Record the start of an attempt (fenced) and bump the run's attempt count."""
        params = (run_id, attempt, start_time, owner, base_seq, completed_at_start)

        def write(conn: Any, _doubt: bool) -> None:
            writes.start_attempt(
                conn, self.dialect, self.statements.upsert_attempt, params, epoch=epoch
            )

        self._run(write, f"record an attempt of run {run_id}")

    def finish_attempt(
        self, run_id: str, attempt: int, outcome: AttemptOutcome, *, epoch: int
    ) -> None:
        """Record the end of an attempt (fenced)."""
        params = writes.attempt_outcome_params(run_id, attempt, outcome, epoch)

        def write(conn: Any, _doubt: bool) -> None:
            if conn.execute(self.statements.finish_attempt, params).rowcount != 1:
                raise writes.refusal(conn, self.dialect, run_id, epoch)

        self._run(write, f"record an attempt of run {run_id}")

    def mark_fenced(self, run_id: str, attempt: int, epoch: int, at: float) -> None:
        """Note, on a stale owner's own attempt row, when it found the run taken over."""

        def write(conn: Any, _doubt: bool) -> None:
            writes.mark_fenced(conn, self.dialect, run_id, attempt, epoch, at)

        self._run(write, f"mark attempt {attempt} of run {run_id} fenced", transaction=False)

    # -- journal ----------------------------------------------------------------------------

    def write_steps(self, rows: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int) -> None:
        """Write (replace) a batch of one run's steps and their blobs in one transaction (fenced).

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
        """
        if not rows and not blobs:
            return
        run_id = rows[0][0] if rows else ""

        def write(conn: Any, _doubt: bool) -> None:
            if self.dialect.serialized:
                # Writers take turns: the fence checked once holds for the whole transaction.
                if rows:
                    writes.check_fence(conn, self.dialect, run_id, epoch)
                self._put_blobs(conn, blobs)
                self.dialect.executemany(conn, self.statements.insert_step, rows)
                return
            self._put_blobs(conn, blobs)
            if rows and self._put_fenced_steps(conn, rows, run_id, epoch) != len(rows):
                raise writes.refusal(conn, self.dialect, run_id, epoch)

        self._run(write, f"write journal steps of run {run_id}")

    def _put_fenced_steps(self, conn: Any, rows: Sequence[StepRow], run_id: str, epoch: int) -> int:
        """Write one run's steps, each only while the run is held at ``epoch``; return how many."""
        return self.dialect.executemany(
            conn, self.statements.fenced_step, [(*row, run_id, epoch) for row in rows]
        )

    def write_intent(
        self, row: StepRow, pending: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Write buffered steps and a mutating step's intent in one durable transaction.

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
            RunCancelled: The run was cancelled; the intent (and the buffered steps) were not
                written.
        """
        run_id = row[0]

        def write(conn: Any, _doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            if self.dialect.serialized:
                # Writers take turns: the intent's fence, checked last, holds for the buffered
                # steps too (a refused intent rolls them back).
                self.dialect.executemany(conn, self.statements.insert_step, pending)
            elif pending and self._put_fenced_steps(conn, pending, run_id, epoch) != len(pending):
                raise writes.refusal(conn, self.dialect, run_id, epoch)
            if conn.execute(self.statements.insert_intent, (*row, run_id, epoch)).rowcount != 1:
                raise writes.refusal(conn, self.dialect, run_id, epoch)

        # Alone, it is one autocommit statement (the checks and the insert are atomic).
        alone = not pending and not blobs
        self._run(write, f"write an intent of run {run_id}", durable=True, transaction=not alone)

    def complete_step(
        self,
        run_id: str,
        seq: int,
        *,
        status: str,
        response: bytes | None,
        end_time: float,
        error_type: str | None,
        error_message: str | None,
        tries: int,
        blobs: Sequence[Blob],
        epoch: int,
    ) -> None:
        """Record the outcome of a step whose intent was written (fenced).

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
        """
        params = (status, response, end_time, error_type, error_message, tries, run_id, seq)

        def write(conn: Any, _doubt: bool) -> None:
            self._put_blobs(conn, blobs)
            if conn.execute(self.statements.complete_step, (*params, run_id, epoch)).rowcount != 1:
                raise writes.refusal(conn, self.dialect, run_id, epoch)

        self._run(write, f"complete a step of run {run_id}", transaction=bool(blobs))

    def delete_steps_from(self, run_id: str, seq: int, *, epoch: int) -> None:
        """Drop the journal tail from ``seq`` on (fenced)."""

        def write(conn: Any, _doubt: bool) -> None:
            writes.check_fence(conn, self.dialect, run_id, epoch)
            conn.execute(self._q("DELETE FROM steps WHERE run_id = ? AND seq >= ?"), (run_id, seq))

        self._run(write, f"trim the journal of run {run_id}")

    # -- blobs ------------------------------------------------------------------------------

    def get_blobs(self, hashes: Sequence[str]) -> Mapping[str, Blob]:
        """Return the stored blobs among ``hashes``."""
        rows = self._among(
            "SELECT hash, codec, size, data FROM blobs WHERE hash IN ({})", hashes, "read blobs"
        )
        return {h: Blob(h, codec, size, bytes(data)) for h, codec, size, data in rows}
