"""What differs between the ledgers' SQL: one :class:`Dialect` per database.

The store's queries are written once, with ``?`` placeholders, in the SQL both databases speak;
where they differ (placeholders, upserts, row locks and ``SKIP LOCKED``, whether
writers take turns anyway) the query asks its dialect. How a statement reaches the database
(SQLite's one connection, PostgreSQL's pool and retries) and how a driver's errors become
ledger errors belong to the stores, :class:`~seawall.ledger.SQLiteStore` and
:class:`~seawall.ledger.PostgresStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the ledgers' SQL.

    Attributes:
        name: ``sqlite`` or ``postgresql``.
        migrations: The folder of ``seawall.ledger.migrations`` holding the migrations only
            this database has (the others are shared, rendered by :meth:`render`).
        tokens: What each token of a shared migration (``{REAL}``, ``{BLOB}``...) stands for.
        now: The time a migration is recorded as applied (SQLite: a Julian day number, as the
            first ledgers recorded it; PostgreSQL: Unix seconds).
        mark: The placeholder of the driver (``?`` or ``%s``).
        like: The case-insensitive ``LIKE`` (SQLite's ``LIKE`` ignores ASCII case already).
        floor: An integer floor of a non-negative number, ``{}`` standing for the number.
        starts_with: The case-sensitive prefix match: SQLite's ``GLOB`` (its ``LIKE`` ignores
            case), PostgreSQL's ``LIKE``.
        ranges_prefixes: ``starts_with`` uses the column's index only under some collations
            (PostgreSQL's ``LIKE``: ``C`` alone, not ``C.UTF-8`` or ``en_US.UTF-8``): a prefix
            of an id is also bounded by a range the index serves, where the database sorts ids
            as their bytes (:data:`~seawall.ledger._queries.ID_ORDER_PROBE`).
        inline: Whether a payload column (``{}``) holds its JSON inline (see
            ``seawall._payload.pack``: a ``J`` byte, then the JSON).
        field: A field of an inline payload column's JSON object as text: ``{column}`` and
            ``{name}`` stand for the column and the field.
        text_index: A condition narrowing a text search in error messages to the runs a
            full-text index finds (``{}`` standing for the quoted phrase searched), or empty where
            the database's own index serves the ``LIKE`` itself (PostgreSQL's trigram index).
        serialized: Writers take turns (SQLite's ``BEGIN IMMEDIATE``): a condition checked
            in a write transaction holds until it commits, so no row lock is needed.
        share: The clause that locks a row read in a write against concurrent updates until
            the transaction ends (``FOR SHARE``); empty where writers are serialised anyway.
        for_update: The clause that locks a row read in a write for this writer alone until
            the transaction ends (``FOR UPDATE``); empty where writers are serialised.
        skip_locked: The clause that locks the rows a claim picks and skips the rows another
            claimer holds (``FOR UPDATE SKIP LOCKED``); empty where writers are serialised.
    """

    name: str
    migrations: str
    tokens: tuple[tuple[str, str], ...]
    now: str
    mark: str
    like: str
    floor: str
    starts_with: str
    inline: str
    field: str
    text_index: str = ""
    ranges_prefixes: bool = False
    run_steps: str = "runs r JOIN steps s ON s.run_id = r.run_id"
    """``FROM`` the steps (``s``) of the runs (``r``) a ``WHERE`` selects, read run by run."""
    serialized: bool = False
    share: str = ""
    for_update: str = ""
    skip_locked: str = ""

    def sql(self, text: str) -> str:
        """``text`` (written with ``?`` placeholders) in this dialect."""
        return text if self.mark == "?" else text.replace("?", self.mark)

    def render(self, migration: str) -> str:
        """A shared migration (written with tokens) in this database's DDL."""
        for token, text in self.tokens:
            migration = migration.replace(token, text)
        return migration

    def prefix_pattern(self, prefix: str) -> str:
        """The :attr:`starts_with` pattern of exactly the values beginning with ``prefix``."""
        if self.starts_with == "GLOB":
            literal = "".join(f"[{c}]" if c in "*?[" else c for c in prefix)
            return literal + "*"
        literal = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return literal + "%"

    def replace(self, table: str, columns: str, key: str, source: str, *, reset: str = "") -> str:
        """An insert that replaces the row holding the same ``key``, in this dialect.

        Args:
            table: The table.
            columns: The columns inserted, comma-separated.
            key: The primary key's columns, comma-separated.
            source: ``VALUES (...)`` or a ``SELECT ... WHERE ...`` giving the row.
            reset: Assignments (``col = NULL, ...``) putting back the defaults of the columns
                not inserted, so an upsert leaves the row a replacement would (SQLite's
                ``INSERT OR REPLACE`` drops the old row and so resets them itself).

        Returns:
            The statement, with ``?`` placeholders converted.
        """
        if self.serialized:
            return self.sql(f"INSERT OR REPLACE INTO {table} ({columns}) {source}")
        keys = {k.strip() for k in key.split(",")}
        sets = [f"{c} = EXCLUDED.{c}" for c in _names(columns) if c not in keys]
        if reset:
            sets.append(reset)
        return self.sql(
            f"INSERT INTO {table} ({columns}) {source} "
            f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)}"
        )

    def ignore(self, table: str, columns: str, key: str, source: str) -> str:
        """An insert that keeps the row already holding the same ``key``, in this dialect."""
        if self.serialized:
            return self.sql(f"INSERT OR IGNORE INTO {table} ({columns}) {source}")
        return self.sql(f"INSERT INTO {table} ({columns}) {source} ON CONFLICT ({key}) DO NOTHING")

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` (in this dialect) once per row on ``conn``; return the rows changed."""
        if not rows:
            return 0
        if self.serialized:  # sqlite3: the connection runs it
            return int(conn.executemany(sql, rows).rowcount)
        with conn.cursor() as cursor:  # psycopg: a cursor runs it (pipelined)
            cursor.executemany(sql, rows)
            return int(cursor.rowcount)


def _names(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",")]


SQLITE: Final = Dialect(
    name="sqlite",
    migrations="sqlite",
    tokens=(
        ("{REAL}", "REAL"),
        ("{BLOB}", "BLOB"),
        ("{BIGINT}", "INTEGER"),
        ("{WITHOUT_ROWID}", " WITHOUT ROWID"),
    ),
    now="julianday('now')",
    mark="?",
    like="LIKE",
    floor="CAST({} AS INTEGER)",
    starts_with="GLOB",
    inline="substr({}, 1, 1) = X'4A'",
    field="json_extract(CAST(substr({column}, 2) AS TEXT), '$.{name}')",
    text_index="run_id IN (SELECT run_id FROM runs_search WHERE runs_search MATCH {})",
    serialized=True,
    # SQLite keeps the tables of a CROSS JOIN in the order written. With no ANALYZE statistics
    # (the ledger never runs it) a plain join scanned every step and looked each one's run up.
    run_steps="runs r CROSS JOIN steps s ON s.run_id = r.run_id",
)
POSTGRES: Final = Dialect(
    name="postgresql",
    migrations="postgres",
    tokens=(
        ("{REAL}", "DOUBLE PRECISION"),
        ("{BLOB}", "BYTEA"),
        ("{BIGINT}", "BIGINT"),
        ("{WITHOUT_ROWID}", ""),
    ),
    now="extract(epoch FROM clock_timestamp())",
    mark="%s",
    like="ILIKE",
    floor="floor({})::bigint",
    starts_with="LIKE",
    ranges_prefixes=True,
    inline="get_byte({}, 0) = 74",
    field="(convert_from(substring({column} from 2), 'UTF8')::jsonb ->> '{name}')",
    share=" FOR SHARE",
    for_update=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    # Each selected run's steps by its key: PostgreSQL cannot estimate the tests on a step's
    # stored bytes (``get_byte``), took them for rare, and drove a plain join from a scan of
    # every step ever recorded, probing the run of each (300,000 steps and 400,000 blocks for
    # a day's usage at 100,000 runs, 320-385 ms; this way, 64 ms). The ``OFFSET 0`` keeps the
    # subquery from being flattened back into that join.
    run_steps=(
        "runs r CROSS JOIN LATERAL (SELECT * FROM steps WHERE steps.run_id = r.run_id OFFSET 0) s"
    ),
)
