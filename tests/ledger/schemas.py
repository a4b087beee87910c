"""Read a migrated ledger's schema back from the database: tables, columns, keys, indexes.

SQLite is read through its pragmas, PostgreSQL through ``information_schema`` and the ``pg_``
catalog, into one shape so the two can be compared (``test_schema_parity``) and a schema can be
pinned (``test_migrations``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

FAMILIES: Final = {
    "TEXT": "text",
    "INTEGER": "integer",
    "REAL": "real",
    "BLOB": "bytes",
    "text": "text",
    "integer": "integer",
    "bigint": "integer",
    "double precision": "real",
    "bytea": "bytes",
}
"""Each declared type's family: the types a value of one database reads back as in the other."""


FULL_TEXT: Final = {"runs_search": ("runs", "error_message")}
"""SQLite's full-text indexes: the table and the columns each indexes."""


@dataclass(frozen=True, order=True)
class Column:
    """A column: its declared type, its family and whether it may hold NULL."""

    name: str
    type: str
    family: str
    nullable: bool


@dataclass(frozen=True, order=True)
class Index:
    """An index other than a primary key's: its key columns, uniqueness and whether partial."""

    table: str
    columns: tuple[str, ...]
    unique: bool
    partial: bool


@dataclass(frozen=True)
class Schema:
    """A ledger's schema as the database reports it."""

    columns: dict[str, tuple[Column, ...]]
    primary_keys: dict[str, tuple[str, ...]]
    indexes: dict[str, Index]
    """Named indexes by name; a unique constraint's index by ``table(columns)``."""

    @property
    def tables(self) -> list[str]:
        """The tables' names, sorted."""
        return sorted(self.columns)


def sqlite_schema(path: str) -> Schema:
    """The schema of the SQLite ledger at ``path``."""
    db = sqlite3.connect(path)
    try:
        found = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        # A full-text index (an FTS5 virtual table and its shadow tables NAME_data...) is an
        # index on the column it indexes: PostgreSQL's twin is a trigram index on that column.
        virtual = {name for name, sql in found if sql.upper().startswith("CREATE VIRTUAL")}
        shadows = {name for name, _ in found if any(name.startswith(f"{v}_") for v in virtual)}
        tables = [name for name, _ in found if name not in virtual | shadows]
        columns: dict[str, tuple[Column, ...]] = {}
        keys: dict[str, tuple[str, ...]] = {}
        indexes: dict[str, Index] = {
            name: Index(FULL_TEXT[name][0], FULL_TEXT[name][1:], False, False) for name in virtual
        }
        for table in tables:
            info = db.execute(f"PRAGMA table_info({table})").fetchall()
            columns[table] = tuple(
                sorted(
                    Column(name, kind, FAMILIES[kind], not notnull and not pk)
                    for _, name, kind, notnull, _, pk in info
                )
            )
            keys[table] = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
            for _, name, unique, origin, partial in db.execute(f"PRAGMA index_list({table})"):
                if origin == "pk":
                    continue
                key = tuple(r[2] for r in db.execute(f"PRAGMA index_info({name})"))
                label = name if origin == "c" else f"{table}({', '.join(key)})"
                indexes[label] = Index(table, key, bool(unique), bool(partial))
        return Schema(columns, keys, indexes)
    finally:
        db.close()


def postgres_schema(conninfo: str, schema: str) -> Schema:
    """The schema of the PostgreSQL ledger in ``schema`` of the server ``conninfo`` reaches."""
    import psycopg

    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        found = connection.execute(
            "SELECT t.relname, i.relname, ix.indisunique, ix.indisprimary, "
            "c.contype IS NOT NULL, ix.indpred IS NOT NULL, "
            "array(SELECT a.attname FROM unnest(ix.indkey[0:ix.indnkeyatts - 1]) "
            "WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a "
            "ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n) "
            "FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid "
            "JOIN pg_class t ON t.oid = ix.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "LEFT JOIN pg_constraint c ON c.conindid = ix.indexrelid "
            "WHERE n.nspname = %s",
            (schema,),
        ).fetchall()
    columns: dict[str, list[Column]] = {}
    for table, name, kind, nullable in rows:
        columns.setdefault(table, []).append(Column(name, kind, FAMILIES[kind], nullable == "YES"))
    keys: dict[str, tuple[str, ...]] = dict.fromkeys(columns, ())
    indexes: dict[str, Index] = {}
    for table, name, unique, primary, constraint, partial, key in found:
        if primary:
            keys[table] = tuple(key)
            continue
        label = f"{table}({', '.join(key)})" if constraint else name
        indexes[label] = Index(table, tuple(key), bool(unique), bool(partial))
    return Schema({table: tuple(sorted(cols)) for table, cols in columns.items()}, keys, indexes)
