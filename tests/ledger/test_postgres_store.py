"""The PostgreSQL ledger: URLs, opening, migrations, refusals and reconnecting.

Store behaviour shared with SQLite is in ``test_contract.py``; this file holds what only the
PostgreSQL ledger has. Every test works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import sys
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import seawall
from seawall.ledger import PostgresStore, RunQuery, open_store
from seawall.ledger._dialect import POSTGRES, SQLITE
from seawall.ledger._postgres_url import parse_url, redact
from seawall.ledger.migrations import bundled, statements
from tests.ledger.rows import create
from tests.postgres_schemas import waits_on_a_lock, with_schema

LATEST = bundled(POSTGRES)[-1][0]
VERSIONS = [v for v, _, _ in bundled(POSTGRES)]


@pytest.fixture
def url(postgres_url: str, schema: str) -> str:
    """A ledger URL on that schema."""
    return with_schema(postgres_url, schema)


def _sql(postgres_url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


# -- opening and migrations ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_open_a_postgres_store(postgres_url: str, schema: str, scheme: str) -> None:
    """postgresql:// and postgres:// URLs both open a PostgresStore on the named schema."""
    opened = open_store(with_schema(postgres_url, schema).replace("postgresql", scheme, 1))
    try:
        assert (True, schema) == (isinstance(opened, PostgresStore), opened.schema)
    finally:
        opened.close()


def test_seawall_runs_an_agent_on_postgres(url: str) -> None:
    """Seawall(postgresql://...) just works: a run with a mutating call succeeds."""
    with seawall.Seawall(url) as app:

        @app.tool(mutating=True)
        def double(i: int) -> int:
            return 2 * i

        @app.agent(name="doubler")
        def doubler(ctx: seawall.Context, i: int) -> int:
            return ctx.call(double, i)

        result = app.run(doubler, i=21)
        assert (True, 42, 1) == (result.ok, result.output, len(app.ledger.steps(result.run_id)))


def test_every_migration_is_recorded(postgres_url: str, url: str, schema: str) -> None:
    """A new ledger applies every migration once and records each in seawall_meta."""
    opened = open_store(url)
    try:
        assert isinstance(opened, PostgresStore)
        assert (0, VERSIONS) == (opened.migrated_from, [v for v, _ in opened.migrations_applied])
    finally:
        opened.close()
    rows = _sql(postgres_url, f"SELECT version FROM {schema}.seawall_meta ORDER BY version")
    assert VERSIONS == [r[0] for r in rows]


def test_every_sqlite_migration_has_a_postgres_twin() -> None:
    """The PostgreSQL migrations carry the same versions and names as the SQLite ones."""
    assert [(v, n) for v, n, _ in bundled(SQLITE)] == [(v, n) for v, n, _ in bundled(POSTGRES)]


def test_reopening_applies_nothing(url: str) -> None:
    """Opening the ledger again applies no migration and keeps its runs."""
    first = open_store(url)
    create(first, "r1")
    first.close()
    second = open_store(url)
    try:
        assert isinstance(second, PostgresStore)
        assert ((), LATEST) == (second.migrations_applied, second.migrated_from)
        assert ["r1"] == [r.run_id for r in second.list_runs(RunQuery())]
    finally:
        second.close()


def test_ledger_at_version_1_is_migrated_forward(postgres_url: str, url: str, schema: str) -> None:
    """A schema written at version 1 gains every later migration and keeps its runs."""
    version, name, sql = bundled(POSTGRES)[0]
    with psycopg.connect(postgres_url, autocommit=True) as connection, connection.transaction():
        connection.execute(f"CREATE SCHEMA {schema}")
        connection.execute(f"SET LOCAL search_path TO {schema}")
        connection.execute(
            "CREATE TABLE seawall_meta (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        for statement in statements(sql):
            connection.execute(statement)  # type: ignore[arg-type]
        connection.execute("INSERT INTO seawall_meta VALUES (%s, %s, 0)", (version, name))
        connection.execute(
            "INSERT INTO runs (run_id, agent, status, start_time, input_hash, input, updated_at) "
            "VALUES ('old', 'a', 'succeeded', 1.0, 'h', 'J{}', 1.0)"
        )
    opened = open_store(url)
    try:
        assert isinstance(opened, PostgresStore)
        assert (1, LATEST) == (opened.migrated_from, opened.schema_version())
        assert opened.get_run("old") is not None
        assert [] == opened.list_verdicts("old")
    finally:
        opened.close()


def test_concurrent_first_opens_migrate_once(url: str) -> None:
    """Four stores opening a new ledger at once: one applies the migrations, all work."""
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        barrier.wait()
        try:
            opened = open_store(url)
            assert isinstance(opened, PostgresStore)
            stores.append(opened)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert [] == errors
        assert [0, 0, 0, len(VERSIONS)] == sorted(len(s.migrations_applied) for s in stores)
    finally:
        for opened in stores:
            opened.close()


def test_newer_schema_is_refused(postgres_url: str, url: str, schema: str) -> None:
    """A ledger at schema version 999 raises SchemaVersionError asking for an upgrade."""
    open_store(url).close()
    _sql(postgres_url, f"INSERT INTO {schema}.seawall_meta VALUES (999, 'future', 0)")
    with pytest.raises(seawall.SchemaVersionError, match="upgrade Seawall") as info:
        open_store(url)
    assert (999, LATEST) == (info.value.fields["version"], info.value.fields["supported"])


def test_foreign_schema_is_refused_untouched(postgres_url: str, url: str, schema: str) -> None:
    """A schema holding other tables raises LedgerCorruptedError and keeps its data."""
    _sql(postgres_url, f"CREATE SCHEMA {schema}")
    _sql(postgres_url, f"CREATE TABLE {schema}.customers (name TEXT)")
    _sql(postgres_url, f"INSERT INTO {schema}.customers VALUES ('ada')")
    with pytest.raises(seawall.LedgerCorruptedError, match="not a Seawall ledger"):
        open_store(url)
    tables = _sql(postgres_url, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'")
    assert ([("customers",)], [("ada",)]) == (
        tables,
        _sql(postgres_url, f"SELECT name FROM {schema}.customers"),
    )


def test_closed_store_is_unavailable(url: str) -> None:
    """A closed store raises LedgerUnavailableError; close is idempotent."""
    opened = open_store(url)
    opened.close()
    opened.close()
    with pytest.raises(seawall.LedgerUnavailableError, match="closed"):
        opened.get_run("r1")


# -- bad URLs and unreachable servers ------------------------------------------------------------


def test_unreachable_server_names_the_url_without_its_password() -> None:
    """A server that refuses connections raises LedgerUnavailableError saying what to check."""
    url = "postgresql://postgres:s3cret@127.0.0.1:1/test"
    with pytest.raises(seawall.LedgerUnavailableError) as info:
        seawall.Seawall(url)
    message = info.value.message
    assert "postgresql://postgres:***@127.0.0.1:1/test" in message
    assert "s3cret" not in message
    assert "Check that PostgreSQL is running" in message
    assert isinstance(info.value, seawall.LedgerError)


def test_missing_database_is_a_clear_error(postgres_url: str) -> None:
    """A database that does not exist raises LedgerUnavailableError naming it."""
    missing = f"sw_missing_{uuid.uuid4().hex[:8]}"
    base = postgres_url.rsplit("/", 1)[0]
    with pytest.raises(seawall.LedgerUnavailableError, match=missing):
        open_store(f"{base}/{missing}")


@pytest.mark.parametrize(
    "query",
    ["schema=Bad-Name", "pool_max_size=0", "pool_min_size=5&pool_max_size=2", "retry_timeout=x"],
)
def test_bad_options_are_refused(query: str) -> None:
    """A bad schema name, pool size or timeout raises LedgerURLError before connecting."""
    with pytest.raises(seawall.LedgerURLError):
        open_store(f"postgresql://postgres@127.0.0.1:1/test?{query}")


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed, a PostgreSQL URL says which extra to install."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(seawall.LedgerURLError, match=r"pip install 'seawall\[postgres\]'"):
        open_store("postgresql://postgres@127.0.0.1:1/test")


def test_url_options_reach_the_store() -> None:
    """Seawall's options leave the URL; libpq's stay; the password is redacted for display."""
    target = parse_url(
        "postgresql://u:pw@db:5433/app?schema=ledger&pool_max_size=3&sslmode=disable"
        "&password=other&retry_timeout=7"
    )
    assert ("ledger", 3, 7.0) == (target.schema, target.pool_max_size, target.retry_timeout)
    assert "sslmode=disable" in target.conninfo
    assert "pool_max_size" not in target.conninfo
    assert "pw" not in target.display
    assert "other" not in target.display
    assert "postgresql://u:***@db:5433/app" == redact("postgresql://u:pw@db:5433/app")


# -- a lost connection ---------------------------------------------------------------------------


def test_killed_connections_are_replaced_transparently(postgres_url: str, schema: str) -> None:
    """After the server kills every connection of the store, its next calls still work."""
    name = f"sw_kill_{uuid.uuid4().hex[:8]}"
    url = with_schema(postgres_url, schema) + f"&application_name={name}&pool_min_size=2"
    opened = open_store(url)
    assert isinstance(opened, PostgresStore)
    try:
        create(opened, "before")
        killed = _sql(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{name}'",
        )
        assert killed
        create(opened, "after")
        assert ["after", "before"] == sorted(r.run_id for r in opened.list_runs(RunQuery()))
        assert opened.reconnects >= 1
    finally:
        opened.close()


def test_forked_child_gets_its_own_connections(url: str) -> None:
    """A store used before fork works in the child; closing it there spares the parent's."""
    import os
    import warnings

    opened = open_store(url)
    try:
        create(opened, "parent-before")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with the pool's threads
            pid = os.fork()
        if pid == 0:  # the child: exit without running any cleanup of the parent's objects
            code = 1
            try:
                create(opened, "child")
                opened.close()  # must not close the parent's connections
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        create(opened, "parent-after")
        assert ["child", "parent-after", "parent-before"] == sorted(
            r.run_id for r in opened.list_runs(RunQuery())
        )
        assert 0 == opened.reconnects
    finally:
        opened.close()


def test_user_without_privileges_is_read_only(postgres_url: str, schema: str) -> None:
    """A login that may not create the ledger's schema raises LedgerReadOnlyError saying so."""
    role = f"sw_noperm_{uuid.uuid4().hex[:8]}"
    _sql(postgres_url, f"CREATE ROLE {role} LOGIN")
    try:
        parts = urlsplit(postgres_url)
        host = parts.netloc.rpartition("@")[2]
        url = with_schema(urlunsplit(parts._replace(netloc=f"{role}@{host}")), schema)
        with pytest.raises(seawall.LedgerReadOnlyError, match=f"create schema {schema}"):
            open_store(url)
    finally:
        _sql(postgres_url, f"DROP ROLE {role}")


def test_intent_waits_for_a_cancellation_being_written(postgres_url: str, schema: str) -> None:
    """An intent racing a cancellation's open transaction waits for it, then is refused."""
    import time

    from tests.ledger.rows import step

    name = f"sw_intent_{uuid.uuid4().hex[:8]}"
    opened = open_store(with_schema(postgres_url, schema) + f"&application_name={name}")
    outcome: dict[str, object] = {}

    def write_intent() -> None:
        intent, _ = step("r1", 1, mutating=True, status="started", response=None)
        try:
            opened.write_intent(intent, [], [], epoch=1)
            outcome["written"] = True
        except seawall.RunCancelled as cancelled:
            outcome["refused"] = cancelled.reason

    try:
        create(opened, "r1")
        with psycopg.connect(postgres_url, autocommit=True) as canceller:
            with canceller.transaction():
                canceller.execute(
                    f"UPDATE {schema}.runs SET cancel_requested_at = 1, cancel_reason = 'stop' "
                    "WHERE run_id = 'r1'"
                )
                writer = threading.Thread(target=write_intent)
                writer.start()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not waits_on_a_lock(postgres_url, name):
                    time.sleep(0.02)
                assert not outcome  # still waiting on the cancellation's row lock
            writer.join(30)
        assert {"refused": "stop"} == outcome
        assert [] == opened.load_steps("r1")
    finally:
        opened.close()


def test_a_migration_below_the_newest_applied_is_not_skipped(
    postgres_url: str, url: str, schema: str
) -> None:
    """A migration numbered below the newest applied one (merged later) is still applied."""
    open_store(url).close()
    _sql(
        postgres_url,
        f"DELETE FROM {schema}.seawall_meta WHERE version = 5; "
        f"DROP TABLE {schema}.breakers, {schema}.breaker_events, {schema}.retry_budget; "
        f"ALTER TABLE {schema}.runs DROP COLUMN node; DROP INDEX {schema}.runs_by_workflow",
    )
    opened = open_store(url)
    try:
        assert isinstance(opened, PostgresStore)
        assert [5] == [v for v, _ in opened.migrations_applied]
        assert [] == opened.list_breakers()
    finally:
        opened.close()
