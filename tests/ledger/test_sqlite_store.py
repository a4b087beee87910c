"""The SQLite ledger: opening, migrations, refusing foreign files, locking and round trips."""

# The house style writes asserts as `expected == actual`, which SIM300 calls a Yoda condition.
# (SIM300 is ignored for tests in pyproject.toml)

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import seawall
from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall._payload import PayloadCodec, digest, pack, unpack
from seawall.ledger import (
    AttemptOutcome,
    NewRun,
    RunOutcome,
    RunQuery,
    SQLiteStore,
    StepRow,
    Store,
    open_store,
)
from seawall.ledger.sqlite import _migrations

LATEST = _migrations()[-1][0]

if TYPE_CHECKING:
    from collections.abc import Iterator

    from seawall._payload import Blob

OWNER = "host:1234"


@pytest.fixture
def db_path(ledger_url: str) -> Path:
    """The file behind ``ledger_url``."""
    return Path(ledger_url.removeprefix("sqlite:///"))


@pytest.fixture
def store(ledger_url: str) -> Iterator[Store]:
    """An open store on a fresh ledger."""
    opened = open_store(ledger_url)
    try:
        yield opened
    finally:
        opened.close()


def _column(value: Any) -> tuple[str, bytes, list[Blob]]:
    data = PayloadCodec().dumps(value, "inputs")
    data_hash = digest(data)
    column, blobs = pack(data, value, data_hash)
    return data_hash, column, blobs


def _new_run(
    run_id: str,
    *,
    agent: str = "agent",
    start: float = 1000.0,
    lease_expires_at: float | None = None,
    owner: str = OWNER,
    value: Any = None,
) -> tuple[NewRun, list[Blob]]:
    data_hash, column, blobs = _column({"run": run_id} if value is None else value)
    run = NewRun(
        run_id=run_id,
        agent=agent,
        start_time=start,
        input_hash=data_hash,
        input_column=column,
        code_version="v1",
        owner=owner,
        lease_expires_at=start + 30 if lease_expires_at is None else lease_expires_at,
    )
    return run, blobs


def _create(store: Store, run_id: str, **options: Any) -> None:
    run, blobs = _new_run(run_id, **options)
    store.create_run(run, blobs)


def _outcome(
    status: RunStatus = RunStatus.SUCCEEDED,
    *,
    error_class: ErrorClass | None = None,
    end: float = 2000.0,
    output: Any = "done",
) -> tuple[RunOutcome, list[Blob]]:
    output_hash, column, blobs = _column(output)
    failed = status is RunStatus.FAILED
    outcome = RunOutcome(
        status=status,
        end_time=end,
        output_hash=None if failed else output_hash,
        output_column=None if failed else column,
        error_class=error_class,
        failure_cause=FailureCause.EXCEPTION if failed else None,
        error_type="ValueError" if failed else None,
        error_message="bad" if failed else None,
        error_json='{"code": "exception", "message": "bad", "type": "ValueError"}'
        if failed
        else None,
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.25,
        attempts=1,
    )
    return outcome, [] if failed else blobs


def _finish(store: Store, run_id: str, *args: Any, **options: Any) -> None:
    outcome, blobs = _outcome(*args, **options)
    store.finish_run(run_id, outcome, blobs)


def _step(
    run_id: str,
    seq: int,
    *,
    mutating: bool = False,
    status: str = "completed",
    response: bytes | None = b"J1",
    request: Any = None,
) -> tuple[StepRow, list[Blob]]:
    request_hash, column, blobs = _column(["tool", [seq], {}] if request is None else request)
    row: StepRow = (
        run_id,
        seq,
        1,
        "tool",
        "tool",
        1 if mutating else 0,
        f"{run_id}:{seq}",
        request_hash,
        column,
        response,
        status,
        100.0 + seq,
        None if status == "started" else 100.5 + seq,
        None,
        None,
        1,
    )
    return row, blobs


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
    assert len(_migrations()) == _raw_count(db_path, "SELECT count(*) FROM seawall_meta")


def test_ledger_at_version_1_is_migrated_forward(ledger_url: str, db_path: Path) -> None:
    """A ledger written at schema 1 gains every later migration and keeps its runs."""
    import sqlite3

    from seawall.ledger.sqlite import _statements

    version, name, sql = _migrations()[0]
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TABLE seawall_meta (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        for statement in _statements(sql):
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
    _create(first, "r1")
    first.close()
    second = open_store(ledger_url)
    try:
        assert LATEST == second.schema_version()
        assert "r1" == (second.get_run("r1") or pytest.fail("run lost")).run_id
    finally:
        second.close()
    assert len(_migrations()) == _raw_count(db_path, "SELECT count(*) FROM seawall_meta")


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
        _create(opened, "r1")
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


def test_postgresql_is_not_available_yet() -> None:
    """A postgresql:// URL raises LedgerURLError saying the backend is not available."""
    with pytest.raises(seawall.LedgerURLError, match="not available"):
        open_store("postgresql://user@localhost/seawall")


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


def test_closed_store_is_unavailable(ledger_url: str) -> None:
    """Using a closed store raises LedgerUnavailableError; close is idempotent."""
    opened = open_store(ledger_url)
    opened.close()
    opened.close()
    with pytest.raises(seawall.LedgerUnavailableError):
        opened.get_run("r1")


# -- locking ------------------------------------------------------------------------------


def test_write_lock_held_elsewhere_raises_locked_then_recovers(ledger_url: str) -> None:
    """A write blocked past busy_timeout raises LedgerLockedError; after release all works."""
    opened = open_store(ledger_url, busy_timeout=0.2)
    assert isinstance(opened, SQLiteStore)
    try:
        _create(opened, "before")
        other = sqlite3.connect(opened.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(seawall.LedgerLockedError):
                _create(opened, "during")
            waited = time.monotonic() - started
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert 0.15 <= waited <= 2.0
        _create(opened, "after")
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
        _create(opened, "r1")
        release.join()
        assert opened.get_run("r1") is not None
    finally:
        other.close()
        opened.close()


# -- runs ---------------------------------------------------------------------------------


def test_create_run_round_trips(store: Store) -> None:
    """create_run records a running, leased run with its fields."""
    run, blobs = _new_run("r1", agent="triage", start=1234.5, lease_expires_at=1300.0)
    store.create_run(run, blobs)
    record = store.get_run("r1")
    assert record is not None
    assert (
        "r1",
        "triage",
        RunStatus.RUNNING,
        1234.5,
        None,
        run.input_hash,
        0,
        "v1",
        OWNER,
        1300.0,
    ) == (
        record.run_id,
        record.agent,
        record.status,
        record.start_time,
        record.end_time,
        record.input_hash,
        record.attempts,
        record.code_version,
        record.lease_owner,
        record.lease_expires_at,
    )


def test_unknown_run_is_none(store: Store) -> None:
    """get_run and get_run_io return None for an unknown id."""
    assert (None, None) == (store.get_run("nope"), store.get_run_io("nope"))


def test_duplicate_run_id_is_refused(store: Store) -> None:
    """Creating a run twice with one id fails with a LedgerError and keeps the first."""
    _create(store, "r1", agent="first")
    with pytest.raises(seawall.LedgerError):
        _create(store, "r1", agent="second")
    assert "first" == (store.get_run("r1") or pytest.fail("run lost")).agent


def test_large_input_round_trips_through_blobs(store: Store) -> None:
    """A large input stored as blobs is read back equal through get_run_io and get_blobs."""
    value = {"messages": [{"n": i, "text": "hello " * 40} for i in range(100)]}
    _create(store, "r1", value=value)
    columns = store.get_run_io("r1")
    assert columns is not None
    assert value == unpack(columns[0], store.get_blobs)
    assert columns[1] is None


def test_finish_run_records_outcome_and_releases_lease(store: Store) -> None:
    """finish_run writes the final fields, the output, and clears the lease."""
    _create(store, "r1")
    _finish(store, "r1", output={"answer": 42})
    record = store.get_run("r1")
    columns = store.get_run_io("r1")
    assert record is not None
    assert columns is not None
    assert (RunStatus.SUCCEEDED, 2000.0, 1000.0, 10, 5, 15, 0.25, None, None) == (
        record.status,
        record.end_time,
        record.duration,
        record.input_tokens,
        record.output_tokens,
        record.tokens_used,
        record.cost_usd,
        record.lease_owner,
        record.lease_expires_at,
    )
    assert {"answer": 42} == unpack(columns[1] or b"", store.get_blobs)


def test_failed_run_records_error(store: Store) -> None:
    """A failed run keeps its error class, cause, type, message and JSON error."""
    _create(store, "r1")
    _finish(store, "r1", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
    record = store.get_run("r1")
    assert record is not None
    assert (
        RunStatus.FAILED,
        ErrorClass.PARTIAL_WRITE,
        FailureCause.EXCEPTION,
        "ValueError",
        "bad",
        {"code": "exception", "message": "bad", "type": "ValueError"},
        None,
    ) == (
        record.status,
        record.error_class,
        record.failure_cause,
        record.error_type,
        record.error_message,
        record.error,
        record.output_hash,
    )


@pytest.fixture
def populated(store: Store) -> Store:
    """Five runs of two agents with mixed outcomes, started at 1000..1004."""
    _create(store, "a0", agent="alpha", start=1000.0)
    _create(store, "a1", agent="alpha", start=1001.0)
    _create(store, "b2", agent="beta", start=1002.0)
    _create(store, "a3", agent="alpha", start=1003.0)
    _create(store, "b4", agent="beta", start=1004.0)
    _finish(store, "a0")
    _finish(store, "a1", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT)
    _finish(store, "b2", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
    _finish(store, "a3", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
    return store


def _ids(store: Store, **filters: Any) -> list[str]:
    return [record.run_id for record in store.list_runs(RunQuery(**filters))]


def test_list_runs_is_newest_first(populated: Store) -> None:
    """list_runs with no filter returns every run, newest first."""
    assert ["b4", "a3", "b2", "a1", "a0"] == _ids(populated)


def test_list_runs_by_status(populated: Store) -> None:
    """list_runs(status=...) keeps runs with that status."""
    assert ["a3", "b2", "a1"] == _ids(populated, status=RunStatus.FAILED)
    assert ["b4"] == _ids(populated, status=RunStatus.RUNNING)


def test_list_runs_by_agent(populated: Store) -> None:
    """list_runs(agent=...) keeps runs of that agent."""
    assert ["b4", "b2"] == _ids(populated, agent="beta")


def test_list_runs_by_error_class(populated: Store) -> None:
    """list_runs(error_class=...) keeps runs of that class."""
    assert ["a3", "b2"] == _ids(populated, error_class=ErrorClass.PARTIAL_WRITE)


def test_list_runs_since(populated: Store) -> None:
    """list_runs(since=t) keeps runs submitted at or after t."""
    assert ["b4", "a3", "b2"] == _ids(populated, since=1002.0)


def test_list_runs_limit_and_offset(populated: Store) -> None:
    """limit and offset page through the runs, newest first."""
    assert ["a3", "b2"] == _ids(populated, limit=2, offset=1)
    assert [] == _ids(populated, offset=5)


def test_list_runs_combines_filters(populated: Store) -> None:
    """Filters combine with AND."""
    assert ["a3"] == _ids(
        populated, agent="alpha", status=RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE
    )


# -- attempts -----------------------------------------------------------------------------


def test_start_attempt_bumps_the_run_attempt_count(store: Store) -> None:
    """start_attempt records a running attempt and the run's attempt count."""
    _create(store, "r1")
    store.start_attempt("r1", 1, 1001.0, OWNER)
    store.start_attempt("r1", 2, 1002.0, OWNER)
    attempts = store.list_attempts("r1")
    assert [(1, "running", OWNER), (2, "running", OWNER)] == [
        (a.attempt, a.status, a.owner) for a in attempts
    ]
    assert 2 == (store.get_run("r1") or pytest.fail("run lost")).attempts


def test_finish_attempt_records_outcome(store: Store) -> None:
    """finish_attempt writes the attempt's end, error and retry delay."""
    _create(store, "r1")
    store.start_attempt("r1", 1, 1001.0, OWNER)
    store.finish_attempt(
        "r1",
        1,
        AttemptOutcome(
            "failed",
            1002.0,
            ErrorClass.CLEAN_ABORT,
            FailureCause.TIMEOUT,
            "TimeoutError",
            "slow",
            0.5,
        ),
    )
    (attempt,) = store.list_attempts("r1")
    assert (
        "failed",
        1002.0,
        ErrorClass.CLEAN_ABORT,
        FailureCause.TIMEOUT,
        "TimeoutError",
        "slow",
        0.5,
    ) == (
        attempt.status,
        attempt.end_time,
        attempt.error_class,
        attempt.failure_cause,
        attempt.error_type,
        attempt.error_message,
        attempt.retry_delay,
    )


# -- journal ------------------------------------------------------------------------------


def test_write_steps_round_trips(store: Store) -> None:
    """write_steps stores rows that load_steps returns in sequence order."""
    _create(store, "r1")
    second, blobs2 = _step("r1", 2, response=b"J[2]")
    first, blobs1 = _step("r1", 1, response=b"J[1]")
    store.write_steps([second, first], blobs1 + blobs2)
    steps = store.load_steps("r1")
    assert [(1, b"J[1]", False, "completed"), (2, b"J[2]", False, "completed")] == [
        (s.seq, s.response, s.mutating, s.status) for s in steps
    ]
    assert first[8] == steps[0].request
    assert first[7] == steps[0].request_hash


def test_write_steps_replaces_a_step(store: Store) -> None:
    """Writing a step with an existing (run, seq) replaces it."""
    _create(store, "r1")
    store.write_steps([_step("r1", 1, response=b"J1")[0]], [])
    store.write_steps([_step("r1", 1, response=b"J2")[0]], [])
    assert [b"J2"] == [s.response for s in store.load_steps("r1")]


def test_write_intent_then_complete_step(store: Store) -> None:
    """A mutating step's intent is stored as started, then completed with its response."""
    _create(store, "r1")
    pending, pending_blobs = _step("r1", 1)
    intent, intent_blobs = _step("r1", 2, mutating=True, status="started", response=None)
    store.write_intent(intent, [pending], pending_blobs + intent_blobs)
    assert [(1, "completed"), (2, "started")] == [(s.seq, s.status) for s in store.load_steps("r1")]
    store.complete_step(
        "r1",
        2,
        status="completed",
        response=b'J{"ok":true}',
        end_time=200.0,
        error_type=None,
        error_message=None,
        tries=2,
        blobs=[],
    )
    step = store.load_steps("r1")[1]
    assert (True, "completed", b'J{"ok":true}', 200.0, 2, "r1:2") == (
        step.mutating,
        step.status,
        step.response,
        step.end_time,
        step.tries,
        step.idempotency_key,
    )


def test_write_intent_alone_is_stored(store: Store) -> None:
    """An intent with nothing buffered and no blobs (the hot path) is stored."""
    _create(store, "r1")
    intent, _ = _step("r1", 1, mutating=True, status="started", response=None)
    store.write_intent(intent, [], [])
    assert [("started", None)] == [(s.status, s.response) for s in store.load_steps("r1")]


def test_complete_step_with_large_response_stores_its_blobs(store: Store) -> None:
    """A completed step's response blobs are stored and resolvable."""
    _create(store, "r1")
    intent, _ = _step("r1", 1, mutating=True, status="started", response=None)
    store.write_intent(intent, [], [])
    value = [f"row {i}" for i in range(500)]
    _, column, blobs = _column(value)
    store.complete_step(
        "r1",
        1,
        status="completed",
        response=column,
        end_time=200.0,
        error_type=None,
        error_message=None,
        tries=1,
        blobs=blobs,
    )
    assert value == unpack(store.load_steps("r1")[0].response or b"", store.get_blobs)


def test_delete_steps_from_drops_the_tail(store: Store) -> None:
    """delete_steps_from(seq) drops that step and every later one."""
    _create(store, "r1")
    store.write_steps([_step("r1", seq)[0] for seq in (1, 2, 3)], [])
    store.delete_steps_from("r1", 2)
    assert [1] == [s.seq for s in store.load_steps("r1")]


def test_steps_are_kept_per_run(store: Store) -> None:
    """load_steps returns only the steps of the given run."""
    _create(store, "r1")
    _create(store, "r2")
    store.write_steps([_step("r1", 1)[0], _step("r2", 1)[0], _step("r2", 2)[0]], [])
    assert [("r2", 1), ("r2", 2)] == [(s.run_id, s.seq) for s in store.load_steps("r2")]


# -- blobs --------------------------------------------------------------------------------


def test_identical_blobs_are_stored_once(store: Store, db_path: Path) -> None:
    """Two runs with the same large input share one blob row."""
    value = {"document": "some long text " * 100}
    _create(store, "r1", value=value)
    _create(store, "r2", value=value)
    (blob_hash,) = {b.hash for b in _column(value)[2]}
    assert [blob_hash] == list(store.get_blobs([blob_hash, blob_hash]))
    assert 1 == _raw_count(db_path, "SELECT count(*) FROM blobs")


def test_get_blobs_omits_unknown_hashes(store: Store) -> None:
    """get_blobs returns only the blobs it has."""
    value = {"document": "x" * 1000}
    _create(store, "r1", value=value)
    (blob,) = _column(value)[2]
    found = store.get_blobs([blob.hash, "0" * 64])
    assert {blob.hash: blob} == dict(found)


def test_get_blobs_handles_many_hashes(store: Store) -> None:
    """get_blobs answers for more hashes than one SQL statement takes (batched by 500)."""
    value = {"document": "y" * 1000}
    _create(store, "r1", value=value)
    (blob,) = _column(value)[2]
    hashes = [f"{i:064x}" for i in range(1200)] + [blob.hash]
    assert [blob.hash] == list(store.get_blobs(hashes))


# -- leases -------------------------------------------------------------------------------


def test_expired_runs_lists_only_lapsed_unfinished_runs(store: Store) -> None:
    """expired_runs returns unfinished runs whose lease lapsed before now, oldest first."""
    _create(store, "live", lease_expires_at=2000.0)
    _create(store, "lapsed-late", lease_expires_at=1500.0)
    _create(store, "lapsed-early", lease_expires_at=1100.0)
    _create(store, "finished", lease_expires_at=1000.0)
    _finish(store, "finished")
    assert ["lapsed-early", "lapsed-late"] == [r.run_id for r in store.expired_runs(1600.0, 10)]
    assert ["lapsed-early"] == [r.run_id for r in store.expired_runs(1600.0, 1)]


def test_claim_fails_while_lease_is_live(store: Store) -> None:
    """claim_run refuses a run whose lease has not lapsed."""
    _create(store, "r1", lease_expires_at=2000.0)
    assert not store.claim_run("r1", "thief", 3000.0, now=1500.0)
    assert OWNER == (store.get_run("r1") or pytest.fail("run lost")).lease_owner


def test_claim_succeeds_once_lease_lapsed(store: Store) -> None:
    """claim_run takes over a run whose lease lapsed and records the new lease."""
    _create(store, "r1", lease_expires_at=2000.0)
    assert store.claim_run("r1", "heir", 2600.0, now=2500.0)
    record = store.get_run("r1")
    assert record is not None
    assert ("heir", 2600.0, RunStatus.RUNNING) == (
        record.lease_owner,
        record.lease_expires_at,
        record.status,
    )


def test_only_one_of_two_claims_succeeds(store: Store) -> None:
    """Two claims of the same lapsed run: the first wins, the second is refused."""
    _create(store, "r1", lease_expires_at=2000.0)
    first = store.claim_run("r1", "one", 2600.0, now=2500.0)
    second = store.claim_run("r1", "two", 2600.0, now=2500.0)
    assert (True, False) == (first, second)
    assert "one" == (store.get_run("r1") or pytest.fail("run lost")).lease_owner


def test_concurrent_claims_from_two_stores_have_one_winner(ledger_url: str) -> None:
    """Two stores (two connections) claiming at once: exactly one succeeds."""
    first, second = open_store(ledger_url), open_store(ledger_url)
    try:
        _create(first, "r1", lease_expires_at=2000.0)
        results: dict[str, bool] = {}
        barrier = threading.Barrier(2)

        def claim(name: str, opened: Store) -> None:
            barrier.wait()
            results[name] = opened.claim_run("r1", name, 2600.0, now=2500.0)

        threads = [
            threading.Thread(target=claim, args=(name, opened))
            for name, opened in (("one", first), ("two", second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [False, True] == sorted(results.values())
        winner = next(name for name, won in results.items() if won)
        assert winner == (first.get_run("r1") or pytest.fail("run lost")).lease_owner
    finally:
        first.close()
        second.close()


def test_claim_refuses_a_finished_run(store: Store) -> None:
    """A finished run cannot be claimed."""
    _create(store, "r1", lease_expires_at=2000.0)
    _finish(store, "r1")
    assert not store.claim_run("r1", "heir", 2600.0, now=2500.0)


def test_renew_leases_extends_only_the_owners_runs(store: Store) -> None:
    """renew_leases moves the expiry of runs held by that owner and no others."""
    _create(store, "mine", lease_expires_at=2000.0)
    _create(store, "theirs", lease_expires_at=2000.0, owner="other")
    store.renew_leases(OWNER, ["mine", "theirs"], 5000.0)
    expiries = {r.run_id: r.lease_expires_at for r in store.list_runs(RunQuery())}
    assert {"mine": 5000.0, "theirs": 2000.0} == expiries
