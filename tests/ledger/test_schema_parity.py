"""Both stores' migrations build the same ledger: tables, columns, keys and indexes.

Each database's schema is read back from the database itself (SQLite's pragmas, PostgreSQL's
``information_schema`` and catalog, on a fresh schema of the test server) after a new ledger was
migrated, and compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from seawall.ledger import PostgresStore, open_store
from tests.ledger.schemas import Schema, postgres_schema, sqlite_schema
from tests.postgres_schemas import fresh_postgres_ledger
from tests.services import POSTGRES_URL, require

if TYPE_CHECKING:
    from pathlib import Path

COVERING: Final = {"runs_errors"}
"""Indexes whose SQLite twin also carries the columns its query reads (a covering index);
PostgreSQL's keeps only the key, as a B-tree entry is limited to about 2.7 kB and an error
message may be longer. The PostgreSQL key must lead SQLite's."""


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Schema, Schema]:
    """The schemas of a new SQLite ledger and a new PostgreSQL ledger."""
    require("postgresql")
    path: Path = tmp_path_factory.mktemp("parity") / "ledger.db"
    open_store(f"sqlite:///{path}").close()
    with fresh_postgres_ledger(POSTGRES_URL, "parity") as url:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        try:
            postgres = postgres_schema(store.target.conninfo, store.schema)
        finally:
            store.close()
    return sqlite_schema(str(path)), postgres


def test_both_ledgers_have_the_same_tables(schemas: tuple[Schema, Schema]) -> None:
    """Every table of one ledger is a table of the other."""
    sqlite, postgres = schemas
    assert sqlite.tables == postgres.tables


def test_every_table_has_the_same_columns(schemas: tuple[Schema, Schema]) -> None:
    """Each table has the same columns, each of the same type family and nullability."""
    sqlite, postgres = schemas
    for table in sqlite.tables:
        mine = [(c.name, c.family, c.nullable) for c in sqlite.columns[table]]
        theirs = [(c.name, c.family, c.nullable) for c in postgres.columns[table]]
        assert (table, mine) == (table, theirs)


def test_every_table_has_the_same_primary_key(schemas: tuple[Schema, Schema]) -> None:
    """Each table's primary key has the same columns, in the same order."""
    sqlite, postgres = schemas
    assert sqlite.primary_keys == postgres.primary_keys


def test_both_ledgers_have_the_same_indexes(schemas: tuple[Schema, Schema]) -> None:
    """The same indexes (and unique constraints), on the same columns, unique and partial alike."""
    sqlite, postgres = schemas
    assert sorted(sqlite.indexes) == sorted(postgres.indexes)
    for name, index in sqlite.indexes.items():
        twin = postgres.indexes[name]
        if name in COVERING:
            assert index.columns[: len(twin.columns)] == twin.columns
            assert (index.table, index.unique, index.partial) == (
                twin.table,
                twin.unique,
                twin.partial,
            )
        else:
            assert index == twin
