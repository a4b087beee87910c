"""The SQLite ledger: opening, migrations, refusing foreign files, locking and round trips."""

# The house style writes asserts as `expected == actual`, which SIM300 calls a Yoda condition.
# (SIM300 is ignored for tests in pyproject.toml)

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import seawall
from seawall.ledger import (
    RunQuery,
    SQLiteStore,
    Store,
    open_store,
)
from seawall.ledger._dialect import SQLITE
from seawall.ledger.migrations import bundled
from tests.ledger.rows import create

LATEST = bundled(SQLITE)[-1][0]

if TYPE_CHECKING:
    pass


@pytest.fixture
def db_path(ledger_url: str) -> Path:
    """The file behind ``ledger_url``."""
    return Path(ledger_url.removeprefix("sqlite:///"))


def _raw_count(path: Path, sql: str) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute(sql).fetchone()[0])
    finally:
        connection.close()


# -- opening and migrations -----------------------------------------------------------------


def test_open_store_returns_a_sqlite_store(store: Store) -> None:
    """A sqlite:/// URL opens a SQLiteStore."""
    assert isinstance(store, SQLiteStore)


def test_migration_records_every_schema_version(store: Store, db_path: Path) -> None:
    """A new ledger is migrated to the newest schema and records each migration."""
    assert LATEST == store.schema_version()
    assert LATEST == _raw_count(db_path, "SELECT max(version) FROM seawall_meta")
    assert len(bundled(SQLITE)) == _raw_count(db_path, "SELECT count(*) FROM seawall_meta")


def test_ledger_at_version_1_is_migrated_forward(ledger_url: str, db_path: Path) -> None:
    """A ledger written at schema 1 gains every later migration and keeps its runs."""
    import sqlite3

    from seawall.ledger.migrations import statements

    version, name, sql = bundled(SQLITE)[0]
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TABLE seawall_meta (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        for statement in statements(sql):
            db.execute(statement)
        db.execute("INSERT INTO seawall_meta VALUES (?, ?, 0)", (version, name))
        db.execute(
            "INSERT INTO runs (run_id, agent, status, start_time, input_hash, input, updated_at) "
            "VALUES ('old', 'a', 'succeeded', 1.0, 'h', X'4A7B7D', 1.0)"
        )
    again = open_store(ledger_url)
    try:
        assert LATEST == again.schema_version()
        assert again.get_run("old") is not None
        assert [] == again.list_artifacts("old")
        assert [] == again.list_verdicts("old")
    finally:
        again.close()


def test_reopening_is_idempotent(ledger_url: str, db_path: Path) -> None:
    """Opening the same ledger again applies nothing twice and keeps its runs."""
    first = open_store(ledger_url)
    create(first, "r1")
    first.close()
    second = open_store(ledger_url)
    try:
        assert LATEST == second.schema_version()
        assert "r1" == (second.get_run("r1") or pytest.fail("run lost")).run_id
    finally:
        second.close()
    assert len(bundled(SQLITE)) == _raw_count(db_path, "SELECT count(*) FROM seawall_meta")


def test_ledger_uses_wal_mode(store: Store, db_path: Path) -> None:
    """The ledger file is switched to WAL journaling."""
    connection = sqlite3.connect(db_path)
    try:
        assert "wal" == connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def test_missing_folder_is_created(tmp_path: Path) -> None:
    """A ledger path in a folder that does not exist yet creates the folder."""
    opened = open_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'ledger.db'}")
    opened.close()
    assert (tmp_path / "a" / "b" / "ledger.db").is_file()


def test_memory_ledger_works() -> None:
    """sqlite:///:memory: opens a migrated, usable in-memory ledger."""
    opened = open_store("sqlite:///:memory:")
    try:
        create(opened, "r1")
        assert ["r1"] == [r.run_id for r in opened.list_runs(RunQuery())]
    finally:
        opened.close()


def test_random_bytes_file_is_corrupted_and_untouched(tmp_path: Path) -> None:
    """A file that is not SQLite raises LedgerCorruptedError and keeps its bytes."""
    path = tmp_path / "ledger.db"
    content = b"not a database\n" + os.urandom(8192)
    path.write_bytes(content)
    with pytest.raises(seawall.LedgerCorruptedError) as info:
        open_store(f"sqlite:///{path}")
    assert str(path) == info.value.path
    assert content == path.read_bytes()


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    """A SQLite database with unrelated tables raises LedgerCorruptedError, data intact."""
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO customers (name) VALUES ('ada')")
    connection.commit()
    connection.close()
    with pytest.raises(seawall.LedgerCorruptedError, match="not a Seawall ledger"):
        open_store(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    try:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        rows = connection.execute("SELECT name FROM customers").fetchall()
    finally:
        connection.close()
    assert ([("customers",)], [("ada",)]) == (tables, rows)


def test_newer_schema_version_is_refused(ledger_url: str, db_path: Path) -> None:
    """A ledger at schema version 999 raises SchemaVersionError asking for an upgrade."""
    open_store(ledger_url).close()
    connection = sqlite3.connect(db_path)
    connection.execute(
        "INSERT INTO seawall_meta (version, name, applied_at) VALUES (999, 'future', 0)"
    )
    connection.commit()
    connection.close()
    with pytest.raises(seawall.SchemaVersionError, match="upgrade Seawall") as info:
        open_store(ledger_url)
    assert (999, LATEST) == (info.value.version, info.value.supported)


def test_newer_schema_version_is_refused_read_only(ledger_url: str, db_path: Path) -> None:
    """Opening a newer ledger read-only also raises SchemaVersionError."""
    open_store(ledger_url).close()
    connection = sqlite3.connect(db_path)
    connection.execute(
        "INSERT INTO seawall_meta (version, name, applied_at) VALUES (999, 'future', 0)"
    )
    connection.commit()
    connection.close()
    with pytest.raises(seawall.SchemaVersionError):
        SQLiteStore(str(db_path), read_only=True)


@pytest.mark.parametrize("url", ["mysql://x", "ftp://host/ledger.db", "ledger.db"])
def test_unknown_scheme_is_refused(url: str) -> None:
    """A URL with an unknown scheme, or none, raises LedgerURLError."""
    with pytest.raises(seawall.LedgerURLError):
        open_store(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://relative.db"])
def test_empty_sqlite_path_is_refused(url: str) -> None:
    """A sqlite URL without a file path raises LedgerURLError."""
    with pytest.raises(seawall.LedgerURLError, match="no file path"):
        open_store(url)


def test_unknown_durability_is_refused(ledger_url: str) -> None:
    """A durability other than crash or power raises LedgerURLError."""
    with pytest.raises(seawall.LedgerURLError):
        open_store(ledger_url, durability="disk")  # type: ignore[arg-type]


def test_unwritable_location_is_read_only() -> None:
    """A ledger under /proc (unwritable, even for root) raises LedgerReadOnlyError."""
    with pytest.raises(seawall.LedgerReadOnlyError):
        open_store("sqlite:////proc/seawall-test/ledger.db")


def test_ledger_url_error_is_a_configuration_error() -> None:
    """LedgerURLError is a ConfigurationError, so both can be caught."""
    with pytest.raises(seawall.ConfigurationError):
        open_store("mysql://x")


# -- locking ------------------------------------------------------------------------------


def test_write_lock_held_elsewhere_raises_locked_then_recovers(ledger_url: str) -> None:
    """A write blocked past busy_timeout raises LedgerLockedError; after release all works."""
    opened = open_store(ledger_url, busy_timeout=0.2)
    assert isinstance(opened, SQLiteStore)
    try:
        create(opened, "before")
        other = sqlite3.connect(opened.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(seawall.LedgerLockedError):
                create(opened, "during")
            waited = time.monotonic() - started
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert 0.15 <= waited <= 2.0
        create(opened, "after")
        assert ["after", "before"] == sorted(r.run_id for r in opened.list_runs(RunQuery()))
    finally:
        opened.close()


def test_lock_released_within_busy_timeout_is_waited_for(ledger_url: str) -> None:
    """A write waits for a lock released before busy_timeout instead of failing."""
    opened = open_store(ledger_url, busy_timeout=5.0)
    assert isinstance(opened, SQLiteStore)
    other = sqlite3.connect(opened.path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.2, other.execute, ("ROLLBACK",))
        release.start()
        create(opened, "r1")
        release.join()
        assert opened.get_run("r1") is not None
    finally:
        other.close()
        opened.close()


def test_a_migration_below_the_newest_applied_is_not_skipped(
    ledger_url: str, db_path: Path
) -> None:
    """A migration numbered below the newest applied one (merged later) is still applied."""
    open_store(ledger_url).close()
    with sqlite3.connect(db_path) as db:
        db.execute("DELETE FROM seawall_meta WHERE version = 5")
        for statement in (
            "DROP TABLE breakers",
            "DROP TABLE breaker_events",
            "DROP TABLE retry_budget",
            "DROP INDEX runs_by_workflow",
            "ALTER TABLE runs DROP COLUMN node",
        ):
            db.execute(statement)
    again = open_store(ledger_url)
    try:
        assert isinstance(again, SQLiteStore)
        assert [5] == [v for v, _ in again.migrations_applied]
        assert [] == again.list_breakers()
    finally:
        again.close()


def test_the_retried_runs_are_listed_from_their_own_index(store: Store, db_path: Path) -> None:
    """The runs page filtered on retried runs walks the retried runs' index (migration 16)."""
    from seawall.ledger import RunQuery
    from seawall.ledger._queries import list_runs

    create(store, "once")
    create(store, "twice")
    connection = sqlite3.connect(db_path)
    try:
        connection.execute("UPDATE runs SET attempts = 2 WHERE run_id = 'twice'")
        connection.commit()
        sql, params = list_runs(RunQuery(retried=True, limit=51), SQLITE)
        plan = " ".join(
            str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        )
    finally:
        connection.close()
    assert "runs_retried" in plan
    assert ["twice"] == [run.run_id for run in store.list_runs(RunQuery(retried=True))]


def test_a_range_of_runs_reads_the_steps_of_those_runs_only(tmp_path: Path) -> None:
    """Usage by model and step latency over a range start from its runs, not every step.

    The ledger never runs ANALYZE; without statistics SQLite drove a plain join from a scan of
    every step recorded.
    """
    from tests.ledger.plans import range_reads, spending_runs

    path = tmp_path / "l.db"
    spending_runs(f"sqlite:///{path}", 3)
    since = time.time() - 5000.5  # not on the hour: latency from the steps
    connection = sqlite3.connect(path)
    try:
        plans = [
            [str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in range_reads(SQLITE, since)
        ]
    finally:
        connection.close()
    for plan in plans:
        assert plan[0].startswith("SEARCH r USING INDEX runs_by_start"), plan
        assert "SEARCH s USING PRIMARY KEY (run_id=?)" in plan
