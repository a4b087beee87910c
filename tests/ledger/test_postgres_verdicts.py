"""Verdicts on PostgreSQL: one statement per write, numbered after the attempt's last verdict.

Writers of one attempt's verdicts do not take turns on a lock: the one that numbers its rows
second fails on the primary key, writing nothing, and counts again (``_pg_writes.VERDICTS``).
Each test works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import seawall
from seawall.ledger import _pg_writes as pg_writes
from seawall.ledger import open_store
from tests.ledger.rows import create
from tests.postgres_schemas import waits_on_a_lock, with_schema

if TYPE_CHECKING:
    from seawall.ledger import PostgresStore


@pytest.fixture
def conflicts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The primary-key conflicts the verdict statement ran into (it counts again after each)."""
    seen: list[str] = []
    execute = pg_writes.execute

    def noting(conn: Any, sql: str, params: Any) -> Any:
        try:
            return execute(conn, sql, params)
        except psycopg.errors.UniqueViolation as exc:
            seen.append(str(exc.diag.constraint_name))
            raise

    monkeypatch.setattr(pg_writes, "execute", noting)
    return seen


def _open(postgres_url: str, schema: str, name: str) -> PostgresStore:
    store = open_store(with_schema(postgres_url, schema) + f"&application_name={name}")
    assert isinstance(store, seawall.ledger.PostgresStore)
    return store


def _verdict(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "passed": True, "duration": 0.01}]


def _rival_takes_ordinal_1(rival: psycopg.Connection[Any], schema: str) -> None:
    """In ``rival``'s open transaction: a verdict at ordinal 1 of run r1's attempt 1."""
    rival.execute(
        f"INSERT INTO {schema}.verifications (run_id, attempt, ordinal, kind, name, passed, "
        "error, score, message, duration, created_at) "
        "VALUES ('r1', 1, 1, 'gate', 'rival', 1, 0, NULL, NULL, 0, 1)"
    )


def _wait_until(check: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def test_a_writer_that_loses_the_numbering_counts_again(
    postgres_url: str, schema: str, conflicts: list[str]
) -> None:
    """A verdict numbered like a rival's uncommitted one waits, fails on the key, renumbers."""
    name = f"sw_verdict_{uuid.uuid4().hex[:8]}"
    store = _open(postgres_url, schema, name)
    errors: list[BaseException] = []

    def record() -> None:
        try:
            store.record_verdicts("r1", 1, "read_back", _verdict("mine"), epoch=1)
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    try:
        create(store, "r1")
        with psycopg.connect(postgres_url, autocommit=True) as rival:
            with rival.transaction():
                _rival_takes_ordinal_1(rival, schema)
                writer = threading.Thread(target=record)
                writer.start()
                # The writer counted no verdict yet and waits on the rival's row of ordinal 1.
                _wait_until(lambda: waits_on_a_lock(postgres_url, name), "the writer waits")
                assert writer.is_alive()
            writer.join(30)
        assert not errors
        assert ["verifications_pkey"] == conflicts  # the fault happened: it lost once
        assert [(1, "rival"), (2, "mine")] == [
            (v.ordinal, v.name) for v in store.list_verdicts("r1")
        ]
    finally:
        store.close()


def test_renumbering_inside_a_transaction_keeps_the_transaction(
    postgres_url: str, schema: str, conflicts: list[str]
) -> None:
    """Inside a transaction the statement renumbers in a savepoint: earlier writes stay."""
    name = f"sw_verdict_{uuid.uuid4().hex[:8]}"
    store = _open(postgres_url, schema, "sw_verdict_tx")
    try:
        create(store, "r1")
    finally:
        store.close()
    params = pg_writes.verdicts_params(
        "r1", 1, "gate", [("mine", 1, 0, 0.5, "ok", 0.01)], created_at=2.0, epoch=1
    )
    outcome: list[bool] = []
    with (
        psycopg.connect(postgres_url, autocommit=True, application_name=name) as mine,
        psycopg.connect(postgres_url, autocommit=True) as rival,
    ):
        mine.execute(f"SET search_path TO {schema}")
        with mine.transaction():
            mine.execute("UPDATE runs SET agent = 'renamed' WHERE run_id = 'r1'")
            with rival.transaction():
                _rival_takes_ordinal_1(rival, schema)
                writer = threading.Thread(
                    target=lambda: outcome.append(pg_writes.add_verdicts(mine, params))
                )
                writer.start()
                _wait_until(lambda: waits_on_a_lock(postgres_url, name), "the writer waits")
                assert writer.is_alive()
            writer.join(30)
        assert [True] == outcome
        assert ["verifications_pkey"] == conflicts
        rows = mine.execute(
            "SELECT ordinal, name, score, message FROM verifications ORDER BY ordinal"
        ).fetchall()
        assert [(1, "rival", None, None), (2, "mine", 0.5, "ok")] == rows
        assert ("renamed",) == mine.execute("SELECT agent FROM runs").fetchone()


def test_concurrent_writers_number_every_verdict_once(postgres_url: str, schema: str) -> None:
    """Eight threads writing one attempt's verdicts: ordinals 1..N, each verdict once, in order."""
    store = _open(postgres_url, schema, "sw_verdict_many")
    threads, each = 8, 10
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def record(t: int) -> None:
        try:
            start.wait(30)
            for i in range(each):
                store.record_verdicts(
                    "r1", 1, "gate", [*_verdict(f"t{t}-{i}a"), *_verdict(f"t{t}-{i}b")], epoch=1
                )
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    try:
        create(store, "r1")
        workers = [threading.Thread(target=record, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert not errors
        verdicts = store.list_verdicts("r1")
        assert list(range(1, 2 * threads * each + 1)) == [v.ordinal for v in verdicts]
        names = [v.name for v in verdicts]
        assert sorted(names) == sorted({*names})  # each once
        for t in range(threads):  # a write's rows are consecutive, a thread's writes in order
            mine = [n for n in names if n.startswith(f"t{t}-")]
            assert [f"t{t}-{i}{x}" for i in range(each) for x in "ab"] == mine
            at = names.index(f"t{t}-0a")
            assert names[at + 1] == f"t{t}-0b"
    finally:
        store.close()


def test_a_fenced_writer_writes_no_verdict(postgres_url: str, schema: str) -> None:
    """A verdict at an epoch the run has left is refused, and nothing is numbered."""
    store = _open(postgres_url, schema, "sw_verdict_fenced")
    try:
        create(store, "r1")
        assert 2 == store.claim_run("r1", "heir", 3000.0, now=1500.0)
        with pytest.raises(seawall.LeaseLostError):
            store.record_verdicts("r1", 1, "read_back", _verdict("stale"), epoch=1)
        store.record_verdicts("r1", 2, "read_back", _verdict("held"), epoch=2)
        assert [(2, 1, "held")] == [
            (v.attempt, v.ordinal, v.name) for v in store.list_verdicts("r1")
        ]
    finally:
        store.close()
