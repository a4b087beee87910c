"""The scale-out ledger: PostgreSQL through psycopg 3 and a connection pool.

The schema and the semantics are the SQLite ledger's (:mod:`seawall.ledger.sqlite` is the
reference); what SQLite gets from its single writer, PostgreSQL gets from row locks, unique
constraints and ``SKIP LOCKED``, so several worker processes on several machines can share one
ledger:

- lease takeover (``claim_run``), parked-run claims and hand-off decisions are conditional
  updates: under READ COMMITTED the second writer waits for the first's row lock, then
  re-checks the condition against the committed row, so exactly one wins;
- a mutating step's intent locks its run's row (``FOR SHARE``) while it checks for a
  cancellation: an intent waits for a cancellation being written and is then refused, so no
  intent is written after a cancellation commits;
- DLQ redrive claims take the oldest pending entry with ``FOR UPDATE SKIP LOCKED``: concurrent
  redrivers take different entries, each entry at most once;
- breaker transitions read the breaker ``FOR UPDATE`` (a breaker's first row is inserted with
  ``ON CONFLICT DO NOTHING`` and the transition retried when another process inserted it
  first), and retry-budget spending holds a transaction-scoped advisory lock on its name;
- runs, steps and DLQ entries are keyed by primary and unique keys; writes are upserts.

Durability follows the server: every commit is as durable as its ``synchronous_commit``
setting makes it (``on`` by default: flushed to the WAL on disk). The connection handling (pool,
retries across a server restart, what is redone when a commit's outcome is unknown) lives in
:mod:`seawall.ledger._postgres_pool`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall._payload import Blob
from seawall.errors import LedgerCorruptedError, LedgerError, SchemaVersionError
from seawall.ledger import _queries as queries
from seawall.ledger import _writes as writes
from seawall.ledger._operators import OperatorRecords
from seawall.ledger._postgres_pool import Connections, PostgresTarget, parse_url
from seawall.ledger._reads import SharedReads
from seawall.ledger._records import (
    AlertRecord,
    DeadLetter,
    DeadLetterQuery,
    DriftEmbedding,
    DriftSample,
    HandOffRecord,
    RunRecord,
)
from seawall.ledger.sqlite import (
    _statements,
)
from seawall.policies.breaker import BreakerState

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from psycopg import Connection

    from seawall.ledger._protocol import AttemptOutcome, NewRun, RunOutcome, StepRow

T = TypeVar("T")

_META_TABLE: Final = "seawall_meta"
_MIGRATION_LOCK: Final = 0x5EA1  # first key of the advisory lock serialising migrations
_BUDGET_LOCK: Final = 0x5EA2  # first key of the advisory locks serialising retry budgets
_MARKS16: Final = ", ".join(["%s"] * 16)
_STEP_UPDATE: Final = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in (s.strip() for s in queries.STEP_COLUMNS.split(",")[2:])
)
# Steps and intents are written only while the run is held at the writer's epoch (an intent: and
# not cancelled). The scalar subquery locks the run's row FOR SHARE whatever the row holds (no
# filter the planner could push below the lock), which conflicts with the UPDATE of a takeover or
# a cancellation: a write waits for one in progress and then reads it, so the check and the
# insert are atomic with respect to any other process. Parameters: the row, run_id, epoch.
_FENCED_STEP: Final = (
    f"INSERT INTO steps ({queries.STEP_COLUMNS}) SELECT {_MARKS16} WHERE "
    f"{queries.POSTGRES.sql(writes.fence(queries.POSTGRES))} "
    f"ON CONFLICT (run_id, seq) DO UPDATE SET {_STEP_UPDATE}"
)
_INSERT_INTENT: Final = (
    f"INSERT INTO steps ({queries.STEP_COLUMNS}) SELECT {_MARKS16} WHERE "
    f"{queries.POSTGRES.sql(writes.fence_for_intent(queries.POSTGRES))} "
    f"ON CONFLICT (run_id, seq) DO UPDATE SET {_STEP_UPDATE}"
)
_COMPLETE_STEP: Final = (
    "UPDATE steps SET status = %s, response = %s, end_time = %s, error_type = %s, "
    "error_message = %s, tries = %s WHERE run_id = %s AND seq = %s AND "
    + queries.POSTGRES.sql(writes.fence(queries.POSTGRES))
)
_UPSERT_ATTEMPT: Final = (
    "INSERT INTO attempts (run_id, attempt, start_time, status, owner, base_seq, "
    "completed_at_start, epoch) VALUES (%s, %s, %s, 'running', %s, %s, %s, %s) "
    "ON CONFLICT (run_id, attempt) DO UPDATE SET start_time = EXCLUDED.start_time, "
    "status = 'running', owner = EXCLUDED.owner, base_seq = EXCLUDED.base_seq, "
    "completed_at_start = EXCLUDED.completed_at_start, epoch = EXCLUDED.epoch, end_time = NULL, "
    "error_class = NULL, failure_cause = NULL, error_type = NULL, error_message = NULL, "
    "retry_delay = NULL, decision = NULL, fenced_at = NULL"
)
_FINISH_ATTEMPT: Final = queries.POSTGRES.sql(
    writes.FINISH_ATTEMPT + writes.fence(queries.POSTGRES)
)
_INSERT_BLOB: Final = (
    "INSERT INTO blobs (hash, codec, size, data) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (hash) DO NOTHING"
)


def _migrations() -> list[tuple[int, str, str]]:
    """Return ``(version, name, sql)`` for every bundled PostgreSQL migration, in order."""
    folder = resources.files("seawall.ledger.migrations.postgres")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class PostgresStore(SharedReads, OperatorRecords):
    """A :class:`~seawall.ledger.Store` on a PostgreSQL schema.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (or ``postgres://``), with any
            libpq parameter and Seawall's options in the query string: ``schema`` (default
            ``seawall``), ``pool_min_size`` (1), ``pool_max_size`` (8), ``pool_timeout``
            (seconds to wait for a free connection, 30) and ``retry_timeout`` (seconds to keep
            retrying while the server is unreachable, 30).
        **options: The same options as keyword arguments; they win over the URL's.

    Raises:
        LedgerURLError: The URL has a bad option, or the ``postgres`` extra is not installed.
        LedgerUnavailableError: The server cannot be reached or refuses the login.
        LedgerCorruptedError: The schema holds tables that are not a Seawall ledger.
        SchemaVersionError: The ledger was written by a newer Seawall.
    """

    dialect = queries.POSTGRES
    local = False
    """Calls cross the network: async code makes them on a ledger thread."""

    def __init__(self, url: str, **options: Any) -> None:
        self.target: PostgresTarget = parse_url(url, **options)
        self.url = url
        self.schema = self.target.schema
        self._db = Connections(self.target)
        self.migrated_from = 0
        """The schema version found when the store was opened (0 for a new ledger)."""
        self.migrations_applied: tuple[tuple[int, str], ...] = ()
        """The migrations this store applied when it opened, ``(version, file name)``."""
        self._migrate()

    def __repr__(self) -> str:
        return f"<PostgresStore {self.target.display} schema={self.schema}>"

    @property
    def reconnects(self) -> int:
        """Operations that ran again after their connection was lost."""
        return self._db.reconnects

    # -- schema -----------------------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            self._apply_migrations()
        except self._db.psycopg.Error as exc:
            raise self._db.translate(exc, f"migrate schema {self.schema}") from exc

    def _apply_migrations(self) -> None:
        migrations = _migrations()
        known = migrations[-1][0]
        schema = self.schema
        with self._db.connect() as conn, conn.transaction():
            # One migrator at a time per schema, whichever process or machine it runs in.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_MIGRATION_LOCK, schema)
            )
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if exists is None:
                conn.execute(f"CREATE SCHEMA {schema}")
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
                )
            }
            if tables and _META_TABLE not in tables:
                raise LedgerCorruptedError(
                    f"schema {schema} of {self.target.display} holds tables that are not a "
                    f"Seawall ledger ({sorted(tables)[:5]}, no {_META_TABLE}); they were left "
                    "untouched. Give the ledger its own schema with ?schema=NAME",
                    url=self.target.display,
                )
            conn.execute(f"SET LOCAL search_path TO {schema}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_META_TABLE} (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            recorded = {int(r[0]) for r in conn.execute(f"SELECT version FROM {_META_TABLE}")}
            current = max(recorded, default=0)
            if current > known:
                raise SchemaVersionError(
                    f"the ledger {self.target.display} (schema {schema}) has schema version "
                    f"{current}, newer than this Seawall understands ({known}); upgrade Seawall "
                    "to use it",
                    url=self.target.display,
                    version=current,
                    supported=known,
                )
            applied = []
            # Every bundled migration not recorded yet, in order (a version merged below the
            # newest applied one is applied too, not skipped).
            for version, name, sql in migrations:
                if version not in recorded:
                    conn.execute(";\n".join(_statements(sql)).encode())  # one round trip
                    conn.execute(
                        f"INSERT INTO {_META_TABLE} (version, name, applied_at) "
                        "VALUES (%s, %s, extract(epoch FROM clock_timestamp()))",
                        (version, name),
                    )
                    applied.append((version, name))
        self.migrated_from = current
        self.migrations_applied = tuple(applied)

    def close(self) -> None:
        """Close the pool's connections (idempotent)."""
        self._db.close()

    def schema_version(self) -> int:
        """Return the highest migration applied to this ledger."""

        def read(conn: Connection[Any], _doubt: bool) -> int:
            row = conn.execute(f"SELECT max(version) FROM {_META_TABLE}").fetchone()
            return int(row[0] or 0) if row else 0

        return self._db.run(read, "read the schema version", transaction=False)

    def ledger_bytes(self) -> int:
        """Return the bytes the ledger's tables and indexes use on the server."""

        def read(conn: Connection[Any], _doubt: bool) -> int:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'",
                (self.schema,),
            ).fetchone()
            return int(row[0]) if row else 0

        return self._db.run(read, "measure the ledger", transaction=False)

    # -- alerts and drift -------------------------------------------------------------------

    def record_alert(self, alert: AlertRecord) -> None:
        """Record an alert (redone safely after an unknown commit: its id is its key)."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            _insert_alert(conn, alert)

        self._db.run(write, f"record {alert.kind} alert {alert.alert_id}", transaction=False)

    def update_alert_state(
        self,
        key: str,
        change: Callable[[Any], tuple[Any, Sequence[AlertRecord]]],
    ) -> list[AlertRecord]:
        """Apply ``change`` to the state under ``key`` (row locked) and record its alerts."""

        def write(conn: Connection[Any], _doubt: bool) -> tuple[bool, list[AlertRecord]]:
            row = conn.execute(
                "SELECT state FROM alert_state WHERE state_key = %s FOR UPDATE", (key,)
            ).fetchone()
            state, alerts = change(None if row is None else json.loads(row[0]))
            text = json.dumps(state, sort_keys=True)
            if row is None:
                written = conn.execute(
                    "INSERT INTO alert_state (state_key, state, updated_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (state_key) DO NOTHING",
                    (key, text, time.time()),
                ).rowcount
                if written != 1:
                    return False, []  # another process created it first: decide again
            elif text != row[0]:
                conn.execute(
                    "UPDATE alert_state SET state = %s, updated_at = %s WHERE state_key = %s",
                    (text, time.time(), key),
                )
            for alert in alerts:
                _insert_alert(conn, alert)
            return True, list(alerts)

        while True:
            done, raised = self._db.run(write, f"update alert state {key}", redo_in_doubt=False)
            if done:
                return raised

    def alert_state(self, key: str) -> Any:
        """Return the state under ``key`` (``None`` when there is none)."""
        row = self._fetchone(
            "SELECT state FROM alert_state WHERE state_key = %s", (key,), "read alert state"
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

        def write(conn: Connection[Any], _doubt: bool) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO drift_samples ({queries.SAMPLE_COLUMNS}) VALUES "
                    f"({', '.join(['%s'] * 10)}) ON CONFLICT (agent, run_id) DO NOTHING",
                    rows,
                )

        self._db.run(write, f"record {len(rows)} drift samples")

    def count_drift_samples(self, agent: str) -> int:
        """Return how many samples of ``agent`` the ledger holds."""
        row = self._fetchone(
            "SELECT count(*) FROM drift_samples WHERE agent = %s", (agent,), "count drift samples"
        )
        return int(row[0]) if row else 0

    def add_drift_embeddings(self, embeddings: Sequence[DriftEmbedding]) -> None:
        """Record output embeddings in one transaction (a run already embedded is kept)."""
        if not embeddings:
            return
        rows = [queries.embedding_row(e) for e in embeddings]

        def write(conn: Connection[Any], _doubt: bool) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(queries.insert_embeddings(queries.POSTGRES), rows)

        self._db.run(write, f"record {len(rows)} drift embeddings")

    # -- small helpers ----------------------------------------------------------------------

    def _fetchone(self, sql: str, params: Sequence[Any], what: str) -> tuple[Any, ...] | None:
        def read(conn: Connection[Any], _doubt: bool) -> tuple[Any, ...] | None:
            return conn.execute(sql, params).fetchone()

        return self._db.run(read, what, transaction=False)

    def _fetchall(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        def read(conn: Connection[Any], _doubt: bool) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        return self._db.run(read, what, transaction=False)

    def _rowcount(self, sql: str, params: Sequence[Any], what: str) -> int:
        """Run one idempotent write statement on its own; return the rows it changed."""

        def write(conn: Connection[Any], _doubt: bool) -> int:
            return conn.execute(sql, params).rowcount

        return self._db.run(write, what, transaction=False)

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, run: NewRun, blobs: Sequence[Blob]) -> None:
        """Record a new run, leased to its owner, with its input snapshot."""

        def write(conn: Connection[Any], doubt: bool) -> None:
            _put_blobs(conn, blobs)
            inserted = conn.execute(
                queries.POSTGRES.sql(writes.INSERT_RUN) + " ON CONFLICT (run_id) DO NOTHING",
                writes.new_run_params(run),
            ).rowcount
            if inserted == 1:
                return
            mine = conn.execute(
                "SELECT 1 FROM runs WHERE run_id = %s AND lease_owner IS NOT DISTINCT FROM %s "
                "AND start_time = %s "
                "AND input_hash = %s",
                (run.run_id, run.owner, run.start_time, run.input_hash),
            ).fetchone()
            if not (doubt and mine):
                raise LedgerError(
                    f"the ledger {self.target.display} already has a run {run.run_id}; run ids "
                    "are unique (use seawall.new_run_id())",
                    run_id=run.run_id,
                )

        self._db.run(write, f"record run {run.run_id}")

    def get_run_io(self, run_id: str) -> tuple[bytes, bytes | None] | None:
        """Return the stored input and output columns of a run."""
        row = self._fetchone(
            "SELECT input, output FROM runs WHERE run_id = %s", (run_id,), "read a run's payloads"
        )
        return None if row is None else (bytes(row[0]), None if row[1] is None else bytes(row[1]))

    # -- aggregates (dashboard, metrics) ----------------------------------------------------

    def finish_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record the run's final fields and release its lease (fenced; a failure joins the DLQ)."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            _put_blobs(conn, blobs)
            writes.finish_run(conn, queries.POSTGRES, run_id, outcome, epoch)

        self._db.run(write, f"record the end of run {run_id}")

    def set_trace(self, run_id: str, trace_id: str, span_id: str) -> None:
        """Record the OpenTelemetry span of a traced run."""
        self._rowcount(
            "UPDATE runs SET trace_id = %s, span_id = %s WHERE run_id = %s",
            (trace_id, span_id, run_id),
            f"record the trace of run {run_id}",
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

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, run_id, epoch)
            _put_blobs(conn, blobs)
            conn.execute("DELETE FROM artifacts WHERE run_id = %s", (run_id,))
            if artifacts:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO artifacts (run_id, name, size, sha256) "
                        "VALUES (%s, %s, %s, %s)",
                        [(run_id, name, size, sha) for name, size, sha in artifacts],
                    )
            conn.execute(
                "UPDATE runs SET phase = 'committing', commit_json = %s, output_hash = %s, "
                "output = %s, updated_at = %s WHERE run_id = %s",
                (commit_json, output_hash, output_column, time.time(), run_id),
            )

        self._db.run(write, f"record the commit of run {run_id}")

    def abort_commit(self, run_id: str, *, epoch: int) -> None:
        """Forget an unfinished commit (its artifacts were not published; fenced)."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, run_id, epoch)
            conn.execute("DELETE FROM artifacts WHERE run_id = %s", (run_id,))
            conn.execute(
                "UPDATE runs SET phase = NULL, commit_json = NULL, output_hash = NULL, "
                "output = NULL, updated_at = %s WHERE run_id = %s",
                (time.time(), run_id),
            )

        self._db.run(write, f"roll back the commit of run {run_id}")

    def get_commit(self, run_id: str) -> str | None:
        """Return the commit record (JSON) of a run in phase ``committing``."""
        row = self._fetchone(
            "SELECT commit_json FROM runs WHERE run_id = %s", (run_id,), "read a commit"
        )
        return None if row is None else row[0]

    def begin_compensation(self, run_id: str, outcome: RunOutcome, *, epoch: int) -> None:
        """Record a run's final failure and enter phase ``compensating`` (fenced)."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.begin_compensation(conn, queries.POSTGRES, run_id, outcome, epoch)

        self._db.run(write, f"record the compensation of run {run_id}")

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

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, run_id, epoch)
            conn.execute(
                "INSERT INTO compensations (run_id, seq, tool, idempotency_key, status, "
                "start_time) VALUES (%s, %s, %s, %s, 'started', %s) ON CONFLICT (run_id, seq) "
                "DO UPDATE SET tool = EXCLUDED.tool, idempotency_key = EXCLUDED.idempotency_key, "
                "status = 'started', start_time = EXCLUDED.start_time, end_time = NULL, "
                "tries = 1, error_type = NULL, error_message = NULL",
                (run_id, seq, tool, idempotency_key, start_time),
            )

        self._db.run(write, f"record a compensation of run {run_id}")

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

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, run_id, epoch)
            conn.execute(
                "UPDATE compensations SET status = %s, end_time = %s, tries = %s, "
                "error_type = %s, error_message = %s WHERE run_id = %s AND seq = %s",
                (status, end_time, tries, error_type, error_message, run_id, seq),
            )

        self._db.run(write, f"record a compensation of run {run_id}")

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

        def write(conn: Connection[Any], doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, run_id, epoch)
            # Ordinals are per (run, attempt): lock the attempt's verdicts so two writers
            # append one after the other.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"seawall.verdicts:{run_id}",)
            )
            if (
                doubt
                and conn.execute(
                    "SELECT 1 FROM verifications WHERE run_id = %s AND attempt = %s AND kind = %s "
                    "AND created_at = %s LIMIT 1",
                    (run_id, attempt, kind, now),
                ).fetchone()
            ):
                return  # the earlier try committed them
            row = conn.execute(
                "SELECT coalesce(max(ordinal), 0) FROM verifications "
                "WHERE run_id = %s AND attempt = %s",
                (run_id, attempt),
            ).fetchone()
            start = int(row[0]) if row else 0
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO verifications (run_id, attempt, ordinal, kind, name, passed, "
                    "error, score, message, duration, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            run_id,
                            attempt,
                            start + index + 1,
                            kind,
                            v["name"],
                            1 if v["passed"] else 0,
                            1 if v.get("error") else 0,
                            v.get("score"),
                            v.get("message"),
                            float(v.get("duration") or 0.0),
                            now,
                        )
                        for index, v in enumerate(verdicts)
                    ],
                )

        self._db.run(write, f"record verdicts of run {run_id}")

    def request_cancel(self, run_id: str, reason: str, at: float) -> bool:
        """Record an operator's cancellation of an unfinished run; false if it had ended."""
        return (
            self._rowcount(
                "UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, %s), "
                "cancel_reason = coalesce(cancel_reason, %s), updated_at = %s WHERE run_id = %s "
                "AND status IN ('pending', 'running', 'awaiting_human')",
                (at, reason, at, run_id),
                f"cancel run {run_id}",
            )
            == 1
        )

    def cancellations(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Return the cancellation reasons recorded for any of ``run_ids``."""
        if not run_ids:
            return {}
        rows = self._fetchall(
            "SELECT run_id, cancel_reason FROM runs WHERE run_id = ANY(%s) "
            "AND cancel_requested_at IS NOT NULL",
            (list(run_ids),),
            "read cancellations",
        )
        return {r[0]: r[1] or "" for r in rows}

    def park_run(
        self, run_id: str, outcome: RunOutcome, blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Record a run that waits for a person (``awaiting_human``): output kept, lease freed."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            _put_blobs(conn, blobs)
            writes.park_run(conn, queries.POSTGRES, run_id, outcome, epoch)

        self._db.run(write, f"park run {run_id}")

    def claim_parked(self, run_id: str, owner: str, expires_at: float) -> int | None:
        """Take a run waiting for a person back into ``running`` (one decider wins)."""

        def write(conn: Connection[Any], doubt: bool) -> int | None:
            won = conn.execute(
                "UPDATE runs SET status = 'running', lease_owner = %s, lease_expires_at = %s, "
                "epoch = epoch + 1, updated_at = %s WHERE run_id = %s "
                "AND status = 'awaiting_human' RETURNING epoch",
                (owner, expires_at, time.time(), run_id),
            ).fetchone()
            if won is not None or not doubt:
                return None if won is None else int(won[0])
            return _is_mine(conn, run_id, owner, expires_at)

        return self._db.run(write, f"claim parked run {run_id}", transaction=False)

    def decide_handoff(
        self, handoff_id: str, *, decision: str, decided_by: str | None, note: str | None, at: float
    ) -> bool:
        """Record a decision on an open hand-off; false when it was already decided."""

        def write(conn: Connection[Any], doubt: bool) -> bool:
            won = conn.execute(
                "UPDATE handoffs SET status = 'decided', decision = %s, decided_by = %s, "
                "note = %s, decided_at = %s WHERE handoff_id = %s AND status = 'open'",
                (decision, decided_by, note, at, handoff_id),
            ).rowcount
            if won == 1 or not doubt:
                return won == 1
            # The earlier try may have committed: it did if the decision recorded is ours.
            return (
                conn.execute(
                    "SELECT 1 FROM handoffs WHERE handoff_id = %s AND decision = %s "
                    "AND decided_at = %s AND decided_by IS NOT DISTINCT FROM %s",
                    (handoff_id, decision, at, decided_by),
                ).fetchone()
                is not None
            )

        return self._db.run(write, f"decide hand-off {handoff_id}", transaction=False)

    # -- dead-letter queue ------------------------------------------------------------------

    def claim_dead_letter(
        self, query: DeadLetterQuery, owner: str, at: float, *, stale_before: float = 0.0
    ) -> DeadLetter | None:
        """Take the oldest claimable entry matching ``query`` for redriving (one claimer wins).

        Claimable: pending, or claimed before ``stale_before`` by a redriver that died before
        its redrive started. Concurrent claimers skip each other's locked rows, so each takes a
        different entry.
        """
        claimable = dataclasses.replace(
            query, status="claimable", limit=1, stale_before=stale_before
        )
        where, params = queries.dlq_where(claimable, queries.POSTGRES)
        columns = ", ".join(f"picked.{c.strip()}" for c in queries.DLQ_COLUMNS.split(","))

        def write(conn: Connection[Any], doubt: bool) -> DeadLetter | None:
            if doubt:
                mine = conn.execute(
                    f"SELECT {queries.DLQ_COLUMNS} FROM dlq WHERE status = 'redriving' "
                    "AND claimed_by = %s AND claimed_at = %s",
                    (owner, at),
                ).fetchone()
                if mine is not None:  # the earlier try committed its claim
                    return queries.dead_letter_record((*mine[:8], "pending", None, *mine[10:]))
            row = conn.execute(
                f"WITH picked AS (SELECT {queries.DLQ_COLUMNS} FROM dlq{where} "
                "ORDER BY failed_at, entry_id LIMIT 1 FOR UPDATE SKIP LOCKED), "
                "claimed AS (UPDATE dlq SET status = 'redriving', claimed_by = %s, "
                "claimed_at = %s FROM picked WHERE dlq.entry_id = picked.entry_id "
                "AND (dlq.status = 'pending' OR (dlq.status = 'redriving' "
                "AND dlq.redrive_run_id IS NULL AND dlq.claimed_at < %s)) "
                "RETURNING dlq.entry_id) "
                f"SELECT {columns} FROM picked JOIN claimed USING (entry_id)",
                [*params, owner, at, stale_before],
            ).fetchone()
            return None if row is None else queries.dead_letter_record(row)

        return self._db.run(write, "claim a DLQ entry", transaction=False)

    def begin_redrive(
        self, entry_id: str, owner: str, run: NewRun, source_run_id: str | None
    ) -> bool:
        """Record a claimed entry's redrive run (with the journal it continues) in one go."""

        def write(conn: Connection[Any], doubt: bool) -> bool:
            if (
                doubt
                and conn.execute(
                    "SELECT 1 FROM dlq WHERE entry_id = %s AND redrive_run_id = %s",
                    (entry_id, run.run_id),
                ).fetchone()
            ):
                return True  # the earlier try committed
            return writes.begin_redrive(conn, queries.POSTGRES, entry_id, owner, run, source_run_id)

        return self._db.run(write, f"begin the redrive of DLQ entry {entry_id}")

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

        def write(conn: Connection[Any], doubt: bool) -> bool:
            if (
                doubt
                and conn.execute(
                    "SELECT 1 FROM step_resolutions WHERE run_id = %s AND seq = %s "
                    "AND decided_at = %s",
                    (run_id, seq, at),
                ).fetchone()
            ):
                return True
            _put_blobs(conn, blobs)
            return writes.resolve_step(
                conn,
                queries.POSTGRES,
                run_id,
                seq,
                happened=happened,
                response=response,
                result_json=result_json,
                by=by,
                note=note,
                at=at,
            )

        return self._db.run(write, f"resolve step {seq} of run {run_id}")

    def finish_dead_letter(
        self, entry_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> None:
        """Record how a redrive ended."""
        self._rowcount(
            "UPDATE dlq SET status = 'redriven', redriven_at = %s, redrive_run_id = %s, "
            "result = %s WHERE entry_id = %s",
            (at, redrive_run_id, result, entry_id),
            "record a redrive",
        )

    def release_dead_letter(self, entry_id: str) -> None:
        """Give a claimed entry back (its redrive could not start)."""
        self._rowcount(
            "UPDATE dlq SET status = 'pending', claimed_by = NULL, claimed_at = NULL "
            "WHERE entry_id = %s AND status = 'redriving'",
            (entry_id,),
            "release a DLQ entry",
        )

    def settle_dead_letter(
        self, run_id: str, *, redrive_run_id: str, result: str, at: float
    ) -> bool:
        """Mark a run's pending entry redriven by a run made outside a redrive (a live replay)."""

        def write(conn: Connection[Any], doubt: bool) -> bool:
            won = conn.execute(
                "UPDATE dlq SET status = 'redriven', redriven_at = %s, redrive_run_id = %s, "
                "result = %s WHERE run_id = %s AND status = 'pending'",
                (at, redrive_run_id, result, run_id),
            ).rowcount
            if won == 1 or not doubt:
                return won == 1
            return (
                conn.execute(
                    "SELECT 1 FROM dlq WHERE run_id = %s AND redrive_run_id = %s "
                    "AND redriven_at = %s",
                    (run_id, redrive_run_id, at),
                ).fetchone()
                is not None
            )

        return self._db.run(write, "settle a DLQ entry", transaction=False)

    def purge_dead_letters(self, query: DeadLetterQuery) -> int:
        """Mark matching pending entries purged; return how many."""
        pending = DeadLetterQuery(
            query.agent, query.error_class, query.since, "pending", query.limit
        )
        where, params = queries.dlq_where(pending, queries.POSTGRES)

        def write(conn: Connection[Any], _doubt: bool) -> int:
            return conn.execute(
                f"UPDATE dlq SET status = 'purged' WHERE entry_id IN "
                f"(SELECT entry_id FROM dlq{where} ORDER BY failed_at LIMIT %s "
                "FOR UPDATE SKIP LOCKED)",
                [*params, query.limit],
            ).rowcount

        return self._db.run(write, "purge the DLQ", transaction=False, redo_in_doubt=False)

    # -- breakers -----------------------------------------------------------------------------

    def breaker(self, name: str, kind: str) -> BreakerState:
        """Return a breaker's state (closed when never used)."""
        row = self._fetchone(
            f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = %s",
            (name,),
            "read a breaker",
        )
        return BreakerState(name=name, kind=kind) if row is None else queries.breaker_state(row)

    def update_breaker(
        self, name: str, kind: str, change: Callable[[BreakerState], tuple[BreakerState, T]]
    ) -> T:
        """Apply ``change`` to a breaker under its row lock; record the transition, if any."""

        def write(conn: Connection[Any], _doubt: bool) -> tuple[bool, T | None]:
            row = conn.execute(
                f"SELECT {queries.BREAKER_COLUMNS} FROM breakers WHERE name = %s FOR UPDATE",
                (name,),
            ).fetchone()
            before = (
                BreakerState(name=name, kind=kind) if row is None else queries.breaker_state(row)
            )
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
                    f"INSERT INTO breakers ({queries.BREAKER_COLUMNS}, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (name) DO NOTHING",
                    values,
                ).rowcount
                if written != 1:
                    return False, None  # another process created it first: decide again
            else:
                conn.execute(
                    "UPDATE breakers SET kind = %s, state = %s, failures = %s, opened_at = %s, "
                    "reason = %s, manual = %s, probe_owner = %s, probe_at = %s, "
                    "updated_at = %s WHERE name = %s",
                    (*values[1:], name),
                )
            if after.state != before.state:
                conn.execute(
                    "INSERT INTO breaker_events (name, at, from_state, to_state, reason) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (name, now, before.state, after.state, after.reason),
                )
            return True, answer

        while True:
            done, answer = self._db.run(write, f"update breaker {name}", redo_in_doubt=False)
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

        def write(conn: Connection[Any], _doubt: bool) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO retry_budget (name, bucket, calls) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name, bucket) DO UPDATE "
                    "SET calls = retry_budget.calls + EXCLUDED.calls",
                    sorted(counts),  # one lock order for every writer: no deadlocks
                )
            conn.execute("DELETE FROM retry_budget WHERE bucket < %s", (int(time.time()) - 3600,))

        self._db.run(write, "count calls for retry budgets", redo_in_doubt=False)

    def spend_retry(
        self, name: str, *, since: int, bucket: int, allows: Callable[[int, int], bool]
    ) -> bool:
        """Record one retry of ``name`` if ``allows(calls, retries)`` over the window says so.

        Spenders of one name take turns (a transaction-scoped advisory lock), so two workers
        cannot both spend the last retry of a window.
        """

        def write(conn: Connection[Any], _doubt: bool) -> bool:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_BUDGET_LOCK, name))
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(retries), 0) FROM retry_budget "
                "WHERE name = %s AND bucket >= %s",
                (name, since),
            ).fetchone()
            calls, retries = (0, 0) if row is None else (int(row[0]), int(row[1]))
            if not allows(calls, retries):
                return False
            conn.execute(
                "INSERT INTO retry_budget (name, bucket, retries) VALUES (%s, %s, 1) "
                "ON CONFLICT (name, bucket) DO UPDATE SET retries = retry_budget.retries + 1",
                (name, bucket),
            )
            return True

        return self._db.run(write, f"spend a retry of {name}", redo_in_doubt=False)

    # -- hand-offs --------------------------------------------------------------------------

    def open_handoff(self, handoff: HandOffRecord, *, epoch: int) -> None:
        """Record a new hand-off to a person (fenced by its run's epoch)."""

        def write(conn: Connection[Any], doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, handoff.run_id, epoch)
            inserted = conn.execute(
                "INSERT INTO handoffs (handoff_id, run_id, kind, reason, subject, status, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (handoff_id) DO NOTHING",
                (
                    handoff.handoff_id,
                    handoff.run_id,
                    handoff.kind,
                    handoff.reason,
                    json.dumps(handoff.subject, sort_keys=True, default=str),
                    handoff.status,
                    handoff.created_at,
                ),
            ).rowcount
            if inserted != 1 and not doubt:
                raise LedgerError(
                    f"the ledger {self.target.display} already has a hand-off {handoff.handoff_id}",
                    run_id=handoff.run_id,
                )

        self._db.run(write, f"open a hand-off for run {handoff.run_id}")

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

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.start_attempt(
                conn,
                queries.POSTGRES,
                _UPSERT_ATTEMPT,
                (run_id, attempt, start_time, owner, base_seq, completed_at_start),
                epoch=epoch,
            )

        self._db.run(write, f"record an attempt of run {run_id}")

    def finish_attempt(
        self, run_id: str, attempt: int, outcome: AttemptOutcome, *, epoch: int
    ) -> None:
        """Record the end of an attempt (fenced)."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            params = writes.attempt_outcome_params(run_id, attempt, outcome, epoch)
            if conn.execute(_FINISH_ATTEMPT, params).rowcount != 1:
                raise writes.refusal(conn, queries.POSTGRES, run_id, epoch)

        self._db.run(write, f"record an attempt of run {run_id}")

    def mark_fenced(self, run_id: str, attempt: int, epoch: int, at: float) -> None:
        """Note, on a stale owner's own attempt row, when it found the run taken over."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.mark_fenced(conn, queries.POSTGRES, run_id, attempt, epoch, at)

        self._db.run(write, f"mark attempt {attempt} of run {run_id} fenced", transaction=False)

    # -- journal ----------------------------------------------------------------------------

    def write_steps(self, rows: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int) -> None:
        """Write (upsert) a batch of one run's steps and their blobs in one transaction (fenced).

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
        """
        if not rows and not blobs:
            return
        run_id = rows[0][0] if rows else ""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            _put_blobs(conn, blobs)
            if rows and _put_fenced_steps(conn, rows, run_id, epoch) != len(rows):
                raise writes.refusal(conn, queries.POSTGRES, run_id, epoch)

        self._db.run(write, f"write journal steps of run {run_id}")

    def write_intent(
        self, row: StepRow, pending: Sequence[StepRow], blobs: Sequence[Blob], *, epoch: int
    ) -> None:
        """Write buffered steps and a mutating step's intent in one transaction.

        Raises:
            LeaseLostError: Another owner took the run over; nothing was written.
            RunCancelled: The run was cancelled; the intent (and the buffered steps) were not
                written.
        """
        run_id = row[0]

        def write(conn: Connection[Any], _doubt: bool) -> None:
            _put_blobs(conn, blobs)
            if pending and _put_fenced_steps(conn, pending, run_id, epoch) != len(pending):
                raise writes.refusal(conn, queries.POSTGRES, run_id, epoch)
            if conn.execute(_INSERT_INTENT, (*row, run_id, epoch)).rowcount != 1:
                raise writes.refusal(conn, queries.POSTGRES, run_id, epoch)

        # Alone, it is one autocommit statement (the checks and the insert are atomic).
        alone = not pending and not blobs
        self._db.run(write, f"write an intent of run {run_id}", transaction=not alone)

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
        params = (
            status,
            response,
            end_time,
            error_type,
            error_message,
            tries,
            run_id,
            seq,
            run_id,
            epoch,
        )

        def write(conn: Connection[Any], _doubt: bool) -> None:
            _put_blobs(conn, blobs)
            if conn.execute(_COMPLETE_STEP, params).rowcount != 1:
                raise writes.refusal(conn, queries.POSTGRES, run_id, epoch)

        self._db.run(write, f"complete a step of run {run_id}", transaction=bool(blobs))

    def delete_steps_from(self, run_id: str, seq: int, *, epoch: int) -> None:
        """Drop the journal tail from ``seq`` on (fenced)."""

        def write(conn: Connection[Any], _doubt: bool) -> None:
            writes.check_fence(conn, queries.POSTGRES, run_id, epoch)
            conn.execute("DELETE FROM steps WHERE run_id = %s AND seq >= %s", (run_id, seq))

        self._db.run(write, f"trim the journal of run {run_id}")

    # -- blobs ------------------------------------------------------------------------------

    def get_blobs(self, hashes: Sequence[str]) -> Mapping[str, Blob]:
        """Return the stored blobs among ``hashes``."""
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        rows = self._fetchall(
            "SELECT hash, codec, size, data FROM blobs WHERE hash = ANY(%s)",
            (wanted,),
            "read blobs",
        )
        return {h: Blob(h, codec, size, bytes(data)) for h, codec, size, data in rows}

    # -- leases -----------------------------------------------------------------------------

    def renew_leases(self, leases: Mapping[str, int], expires_at: float) -> list[str]:
        """Extend the leases held on runs ``{run_id: epoch}``; return the ones taken over."""
        if not leases:
            return []
        held = list(leases.items())

        def write(conn: Connection[Any], _doubt: bool) -> set[str]:
            rows = conn.execute(
                "UPDATE runs SET lease_expires_at = %s FROM unnest(%s::text[], %s::integer[]) "
                "AS held(run_id, epoch) WHERE runs.run_id = held.run_id "
                "AND runs.epoch = held.epoch RETURNING runs.run_id",
                (expires_at, [r for r, _ in held], [e for _, e in held]),
            ).fetchall()
            return {row[0] for row in rows}

        renewed = self._db.run(write, "renew leases", transaction=False)
        return [run_id for run_id, _ in held if run_id not in renewed]

    def expired_runs(self, now: float, limit: int) -> list[RunRecord]:
        """Return unfinished runs whose lease lapsed before ``now``, oldest first."""
        rows = self._fetchall(
            f"SELECT {queries.RUN_COLUMNS} FROM runs WHERE status IN ('running', 'pending') "
            "AND lease_expires_at < %s ORDER BY lease_expires_at LIMIT %s",
            (now, limit),
            "list expired runs",
        )
        return [queries.run_record(row) for row in rows]

    def claim_run(self, run_id: str, owner: str, expires_at: float, now: float) -> int | None:
        """Take over a run whose lease lapsed (or a pending one); return its new epoch.

        Two claimers race on the run's row lock; the second re-checks the lease against the
        first's committed write and finds it live, so exactly one wins.
        """

        def write(conn: Connection[Any], doubt: bool) -> int | None:
            won = conn.execute(
                "UPDATE runs SET lease_owner = %s, lease_expires_at = %s, status = 'running', "
                "epoch = epoch + 1, updated_at = %s WHERE run_id = %s "
                "AND status IN ('running', 'pending') "
                "AND (lease_expires_at IS NULL OR lease_expires_at < %s) RETURNING epoch",
                (owner, expires_at, now, run_id, now),
            ).fetchone()
            if won is not None or not doubt:
                return None if won is None else int(won[0])
            return _is_mine(conn, run_id, owner, expires_at)

        return self._db.run(write, f"claim run {run_id}", transaction=False)

    # -- takeover sweeps --------------------------------------------------------------------

    def claim_sweeper(self, name: str, owner: str, now: float, expires_at: float) -> bool:
        """Take the sweeper lease ``name`` when it lapsed, or renew it for ``owner``.

        Safe to redo after a commit whose outcome is unknown: a holder renews its own lease.
        """

        def write(conn: Connection[Any], _doubt: bool) -> bool:
            return writes.claim_sweeper(conn, queries.POSTGRES, name, owner, now, expires_at)

        return self._db.run(write, "claim the sweeper lease", transaction=False)

    def resend_lapsed(
        self, route: str, now: float, agents: Sequence[str], again_before: float, limit: int
    ) -> list[RunRecord]:
        """Mark for sending again the runs of ``agents`` whose lease lapsed (``SKIP LOCKED``)."""

        def write(conn: Connection[Any], _doubt: bool) -> list[RunRecord]:
            return writes.resend_lapsed(
                conn, queries.POSTGRES, route, now, agents, again_before, limit
            )

        return self._db.run(write, "hand over lapsed runs", transaction=False)

    def mark_resent(self, run_ids: Sequence[str], now: float, again_before: float) -> list[str]:
        """Mark re-sent those of ``run_ids`` still unclaimed and not re-sent since."""

        def write(conn: Connection[Any], _doubt: bool) -> list[str]:
            return writes.mark_resent(conn, queries.POSTGRES, run_ids, now, again_before)

        return self._db.run(write, "mark runs re-sent", transaction=False)


def _is_mine(conn: Connection[Any], run_id: str, owner: str, expires_at: float) -> int | None:
    """The epoch ``owner`` holds when its in-doubt claim committed, else ``None``."""
    row = conn.execute(
        "SELECT epoch FROM runs WHERE run_id = %s AND lease_owner = %s AND lease_expires_at = %s "
        "AND status = 'running'",
        (run_id, owner, expires_at),
    ).fetchone()
    return None if row is None else int(row[0])


def _put_blobs(conn: Connection[Any], blobs: Sequence[Blob]) -> None:
    if blobs:
        unique = {b.hash: b for b in blobs}
        with conn.cursor() as cursor:
            cursor.executemany(
                _INSERT_BLOB,
                [(b.hash, b.codec, b.size, b.data) for _, b in sorted(unique.items())],
            )


def _put_fenced_steps(
    conn: Connection[Any], rows: Sequence[StepRow], run_id: str, epoch: int
) -> int:
    """Upsert one run's steps, each only while the run is held at ``epoch``; return how many."""
    with conn.cursor() as cursor:
        cursor.executemany(_FENCED_STEP, [(*row, run_id, epoch) for row in rows])
        return int(cursor.rowcount)


def _insert_alert(conn: Connection[Any], alert: AlertRecord) -> None:
    conn.execute(
        f"INSERT INTO alerts ({queries.ALERT_COLUMNS}) VALUES ({', '.join(['%s'] * 10)}) "
        "ON CONFLICT (alert_id) DO NOTHING",
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
