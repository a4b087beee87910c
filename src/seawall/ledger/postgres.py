"""The scale-out ledger: PostgreSQL through psycopg 3 and a connection pool.

Its queries are the one SQL store's (:mod:`seawall.ledger._sqlstore`), rendered by the
PostgreSQL :class:`~seawall.ledger._dialect.Dialect`; this module holds what only PostgreSQL
does: its connections, its migrations' locking, and one batched lease renewal. What SQLite gets
from its single writer, PostgreSQL gets from row locks, unique constraints and ``SKIP LOCKED``
(the dialect's clauses), so several worker processes on several machines can share one ledger:

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
- verdicts of one attempt are numbered by the statement that writes them: a writer that
  numbers second fails on the primary key, writes nothing, and numbers again;
- runs, steps and DLQ entries are keyed by primary and unique keys; writes are upserts.

Durability follows the server: every commit is as durable as its ``synchronous_commit``
setting makes it (``on`` by default: flushed to the WAL on disk). The connection handling (pool,
retries across a server restart, what is redone when a commit's outcome is unknown) lives in
:mod:`seawall.ledger._postgres_connections`; the URL's options in
:mod:`seawall.ledger._postgres_url`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall.errors import LedgerCorruptedError, SchemaVersionError
from seawall.ledger._dialect import POSTGRES
from seawall.ledger._postgres_connections import Connections
from seawall.ledger._postgres_group import GroupCommitter
from seawall.ledger._postgres_url import PostgresTarget, parse_url
from seawall.ledger._sqlbase import statements
from seawall.ledger._sqlstore import SQLStore
from seawall.ledger.migrations import META_TABLE
from seawall.ledger.migrations import statements as migration_statements

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from psycopg import Connection

    from seawall.ledger._sqlbase import Outcome

T = TypeVar("T")

_MIGRATION_LOCK: Final = 0x5EA1  # first key of the advisory lock serialising migrations
_STATEMENTS: Final = statements(POSTGRES)


class PostgresStore(SQLStore):
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

    dialect = POSTGRES
    statements = _STATEMENTS
    local = False
    """Calls cross the network: async code makes them on a ledger thread."""
    ledger_threads = 16
    """Ledger threads async code may use (two per pooled connection, at the default size)."""
    batch_writers = 2
    """Batches (:meth:`batch`) one event loop commits at once: one is sent while the next forms
    (more only took the same writes in smaller groups)."""

    def __init__(self, url: str, **options: Any) -> None:
        self.target: PostgresTarget = parse_url(url, **options)
        self.url = url
        self.schema = self.target.schema
        self.display = self.target.display
        self._db = Connections(self.target)
        self._group = GroupCommitter(self._db)
        self.migrated_from = 0
        self.migrations_applied = ()
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
            self._prepare_schema()
        except self._db.psycopg.Error as exc:
            raise self._db.translate(exc, f"migrate schema {self.schema}") from exc

    def _prepare_schema(self) -> None:
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
            if tables and META_TABLE not in tables:
                raise LedgerCorruptedError(
                    f"schema {schema} of {self.target.display} holds tables that are not a "
                    f"Seawall ledger ({sorted(tables)[:5]}, no {META_TABLE}); they were left "
                    "untouched. Give the ledger its own schema with ?schema=NAME",
                    url=self.target.display,
                )
            conn.execute(f"SET LOCAL search_path TO {schema}")
            self._apply_migrations(conn, _run_script)

    def _newer(self, version: int, known: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the ledger {self.target.display} (schema {self.schema}) has schema version "
            f"{version}, newer than this Seawall understands ({known}); upgrade Seawall to use it",
            url=self.target.display,
            version=version,
            supported=known,
        )

    def close(self) -> None:
        """Close the pool's connections (idempotent)."""
        self._db.close()

    def schema_version(self) -> int:
        """Return the highest migration applied to this ledger."""

        def read(conn: Connection[Any], _doubt: bool) -> int:
            row = conn.execute(f"SELECT max(version) FROM {META_TABLE}").fetchone()
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

    def _fetchall(self, sql: str, params: Sequence[Any], what: str) -> list[tuple[Any, ...]]:
        """Run one read, planned for its parameters and today's statistics (never prepared).

        psycopg prepares a statement run five times on a connection, and PostgreSQL may then
        keep one generic plan for it, made with the statistics of that moment, for as long as
        the connection lives. For a read (dashboard pages, the CLI, sweeps) that plan can be a
        scan of the ledger: with statistics from a young ledger, the runs page filtered on
        retried runs, a 50-minute ``run_stats`` and the backlog each read 8,500 blocks of
        100,000 runs, still after ``ANALYZE`` (826, 190 and 467 when planned for their
        parameters), and a text search went generic on the first 2,500 matches instead of the
        newest 51 (2,567 blocks against 165). Planning a read costs a fraction of a millisecond;
        a run's own statements, which never read, stay prepared.
        """

        def read(conn: Connection[Any], _doubt: bool) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params, prepare=False).fetchall()

        return self._db.run(read, what, transaction=False)

    def _run_alone(
        self, work: Callable[[Any, bool], T], what: str, *, durable: bool = False, **options: bool
    ) -> T:
        """Run ``work`` on a pooled connection, again after a lost one (every commit is durable)."""
        del durable
        return self._db.run(work, what, **options)

    def _statement(
        self, work: Callable[[Any, bool], None], what: str, sql: str, params: Sequence[Any]
    ) -> None:
        """Run a one-statement write in the next group commit (:mod:`._postgres_group`).

        Inside :meth:`together` it joins that group's transaction instead.
        """
        if self._in_group():
            self._run(work, what, durable=True, transaction=False)
            return
        self._group.run(work, what, sql, params)

    def batch(self, calls: Sequence[Callable[[], Any]]) -> list[Outcome]:
        """Run ``calls`` (store writes, ``begin_run``) and commit their writes as one group.

        See :meth:`~seawall.ledger._postgres_group.GroupCommitter.batch`.
        """
        return self._group.batch(calls)

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


def _run_script(conn: Connection[Any], sql: str) -> None:
    parts = migration_statements(sql)
    if parts:  # a version may change nothing here (its twin changes the other database)
        conn.execute(";\n".join(parts).encode())  # one round trip
