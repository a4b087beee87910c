"""The storage contract: every store behaviour the runtime relies on, on SQLite and PostgreSQL.

Each test runs once per ledger (``LEDGERS``); the PostgreSQL ledger is a fresh schema of the test
server, dropped afterwards. Behaviours only one database has (SQLite's WAL mode and file
handling, PostgreSQL's URL options and server restarts) are tested in their own files.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

import seawall
from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall._payload import unpack
from seawall.ledger import (
    AlertAck,
    AlertRecord,
    AlertSilence,
    AttemptOutcome,
    DeadLetterQuery,
    HandOffClaim,
    HandOffRecord,
    OperatorAction,
    PostgresStore,
    RunQuery,
    SQLiteStore,
    Store,
    open_store,
)
from seawall.policies.breaker import BreakerState
from tests.ledger.rows import OWNER, create, finish, new_run, outcome_of, payload, step

if TYPE_CHECKING:
    from collections.abc import Callable

LEDGERS = ("sqlite", "postgres")
T = TypeVar("T")


def count_rows(store: Store, table: str) -> int:
    """Count a table's rows behind the store's back."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    assert isinstance(store, PostgresStore)
    import psycopg

    with psycopg.connect(store.target.conninfo) as connection:
        row = connection.execute(f"SELECT count(*) FROM {store.schema}.{table}").fetchone()
        return int(row[0]) if row else 0


def test_schema_is_at_the_newest_version(store: Store) -> None:
    """A new ledger is migrated to the newest schema its store knows."""
    from seawall.ledger._dialect import POSTGRES, SQLITE
    from seawall.ledger.migrations import bundled

    dialect = SQLITE if isinstance(store, SQLiteStore) else POSTGRES
    assert bundled(dialect)[-1][0] == store.schema_version()


def test_closed_store_is_unavailable(ledger_url: str) -> None:
    """Using a closed store raises LedgerUnavailableError; close is idempotent."""
    opened = open_store(ledger_url)
    opened.close()
    opened.close()
    with pytest.raises(seawall.LedgerUnavailableError):
        opened.get_run("r1")


# -- runs ---------------------------------------------------------------------------------


def test_create_run_round_trips(store: Store) -> None:
    """create_run records a running, leased run with its fields."""
    run, blobs = new_run("r1", agent="triage", start=1234.5, lease_expires_at=1300.0)
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
    create(store, "r1", agent="first")
    with pytest.raises(seawall.LedgerError):
        create(store, "r1", agent="second")
    assert "first" == (store.get_run("r1") or pytest.fail("run lost")).agent


def test_large_input_round_trips_through_blobs(store: Store) -> None:
    """A large input stored as blobs is read back equal through get_run_io and get_blobs."""
    value = {"messages": [{"n": i, "text": "hello " * 40} for i in range(100)]}
    create(store, "r1", value=value)
    columns = store.get_run_io("r1")
    assert columns is not None
    assert value == unpack(columns[0], store.get_blobs)
    assert columns[1] is None


def test_finish_run_records_outcome_and_releases_lease(store: Store) -> None:
    """finish_run writes the final fields, the output, and clears the lease."""
    create(store, "r1")
    finish(store, "r1", output={"answer": 42})
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
    create(store, "r1")
    finish(store, "r1", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
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
    create(store, "a0", agent="alpha", start=1000.0)
    create(store, "a1", agent="alpha", start=1001.0)
    create(store, "b2", agent="beta", start=1002.0)
    create(store, "a3", agent="alpha", start=1003.0)
    create(store, "b4", agent="beta", start=1004.0)
    finish(store, "a0")
    finish(store, "a1", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT)
    finish(store, "b2", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
    finish(store, "a3", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
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


def test_ids_with_prefix_finds_runs_by_their_beginning(store: Store) -> None:
    """ids_with_prefix returns the ids starting with the prefix, sorted, up to the limit."""
    for run_id in ("01ab", "01ac", "01b0", "0x1"):
        create(store, run_id)
    assert (["01ab", "01ac"], ["01ab"], ["01b0"], [], ["01ab", "01ac", "01b0"]) == (
        store.ids_with_prefix("run", "01a"),
        store.ids_with_prefix("run", "01a", limit=1),
        store.ids_with_prefix("run", "01b0"),
        store.ids_with_prefix("run", "01A"),
        store.ids_with_prefix("run", "01"),
    )


@pytest.mark.parametrize("wild", ["%", "_", "*", "?", "[", "\\"])
def test_ids_with_prefix_takes_pattern_characters_literally(store: Store, wild: str) -> None:
    """A prefix holding LIKE or GLOB wildcards matches only ids holding those characters."""
    for run_id in (f"a{wild}b", "axb", "ayb"):
        create(store, run_id)
    assert [f"a{wild}b"] == store.ids_with_prefix("run", f"a{wild}")


def test_ids_with_prefix_finds_handoffs(store: Store) -> None:
    """Hand-off ids are looked up by prefix too, and runs and hand-offs do not mix."""
    create(store, "h-run")
    store.open_handoff(_handoff("h1", "h-run", 1.0), epoch=1)
    assert (["h1"], ["h-run"]) == (
        store.ids_with_prefix("handoff", "h"),
        store.ids_with_prefix("run", "h"),
    )


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
    create(store, "r1")
    store.start_attempt("r1", 1, 1001.0, OWNER, epoch=1)
    store.start_attempt("r1", 2, 1002.0, OWNER, epoch=1)
    attempts = store.list_attempts("r1")
    assert [(1, "running", OWNER), (2, "running", OWNER)] == [
        (a.attempt, a.status, a.owner) for a in attempts
    ]
    assert 2 == (store.get_run("r1") or pytest.fail("run lost")).attempts


def test_finish_attempt_records_outcome(store: Store) -> None:
    """finish_attempt writes the attempt's end, error and retry delay."""
    create(store, "r1")
    store.start_attempt("r1", 1, 1001.0, OWNER, epoch=1)
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
        epoch=1,
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
    create(store, "r1")
    second, blobs2 = step("r1", 2, response=b"J[2]")
    first, blobs1 = step("r1", 1, response=b"J[1]")
    store.write_steps([second, first], blobs1 + blobs2, epoch=1)
    steps = store.load_steps("r1")
    assert [(1, b"J[1]", False, "completed"), (2, b"J[2]", False, "completed")] == [
        (s.seq, s.response, s.mutating, s.status) for s in steps
    ]
    assert first[8] == steps[0].request
    assert first[7] == steps[0].request_hash


def test_write_steps_replaces_a_step(store: Store) -> None:
    """Writing a step with an existing (run, seq) replaces it."""
    create(store, "r1")
    store.write_steps([step("r1", 1, response=b"J1")[0]], [], epoch=1)
    store.write_steps([step("r1", 1, response=b"J2")[0]], [], epoch=1)
    assert [b"J2"] == [s.response for s in store.load_steps("r1")]


def test_write_intent_then_complete_step(store: Store) -> None:
    """A mutating step's intent is stored as started, then completed with its response."""
    create(store, "r1")
    pending, pending_blobs = step("r1", 1)
    intent, intent_blobs = step("r1", 2, mutating=True, status="started", response=None)
    store.write_intent(intent, [pending], pending_blobs + intent_blobs, epoch=1)
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
        epoch=1,
    )
    done = store.load_steps("r1")[1]
    assert (True, "completed", b'J{"ok":true}', 200.0, 2, "r1:2") == (
        done.mutating,
        done.status,
        done.response,
        done.end_time,
        done.tries,
        done.idempotency_key,
    )


def test_write_intent_alone_is_stored(store: Store) -> None:
    """An intent with nothing buffered and no blobs (the hot path) is stored."""
    create(store, "r1")
    intent, _ = step("r1", 1, mutating=True, status="started", response=None)
    store.write_intent(intent, [], [], epoch=1)
    assert [("started", None)] == [(s.status, s.response) for s in store.load_steps("r1")]


def test_complete_step_with_large_response_stores_its_blobs(store: Store) -> None:
    """A completed step's response blobs are stored and resolvable."""
    create(store, "r1")
    intent, _ = step("r1", 1, mutating=True, status="started", response=None)
    store.write_intent(intent, [], [], epoch=1)
    value = [f"row {i}" for i in range(500)]
    _, column, blobs = payload(value)
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
        epoch=1,
    )
    assert value == unpack(store.load_steps("r1")[0].response or b"", store.get_blobs)


def test_delete_steps_from_drops_the_tail(store: Store) -> None:
    """delete_steps_from(seq) drops that step and every later one."""
    create(store, "r1")
    store.write_steps([step("r1", seq)[0] for seq in (1, 2, 3)], [], epoch=1)
    store.delete_steps_from("r1", 2, epoch=1)
    assert [1] == [s.seq for s in store.load_steps("r1")]


def test_steps_are_kept_per_run(store: Store) -> None:
    """load_steps returns only the steps of the given run."""
    create(store, "r1")
    create(store, "r2")
    store.write_steps([step("r1", 1)[0], step("r2", 1)[0], step("r2", 2)[0]], [], epoch=1)
    assert [("r2", 1), ("r2", 2)] == [(s.run_id, s.seq) for s in store.load_steps("r2")]


# -- blobs --------------------------------------------------------------------------------


def test_identical_blobs_are_stored_once(store: Store) -> None:
    """Two runs with the same large input share one blob row."""
    value = {"document": "some long text " * 100}
    create(store, "r1", value=value)
    create(store, "r2", value=value)
    (blob_hash,) = {b.hash for b in payload(value)[2]}
    assert [blob_hash] == list(store.get_blobs([blob_hash, blob_hash]))
    assert 1 == count_rows(store, "blobs")


def test_get_blobs_omits_unknown_hashes(store: Store) -> None:
    """get_blobs returns only the blobs it has."""
    value = {"document": "x" * 1000}
    create(store, "r1", value=value)
    (blob,) = payload(value)[2]
    found = store.get_blobs([blob.hash, "0" * 64])
    assert {blob.hash: blob} == dict(found)


def test_get_blobs_handles_many_hashes(store: Store) -> None:
    """get_blobs answers for more hashes than one SQL statement takes (batched by 500)."""
    value = {"document": "y" * 1000}
    create(store, "r1", value=value)
    (blob,) = payload(value)[2]
    hashes = [f"{i:064x}" for i in range(1200)] + [blob.hash]
    assert [blob.hash] == list(store.get_blobs(hashes))


# -- leases -------------------------------------------------------------------------------


def test_expired_runs_lists_only_lapsed_unfinished_runs(store: Store) -> None:
    """expired_runs returns unfinished runs whose lease lapsed before now, oldest first."""
    create(store, "live", lease_expires_at=2000.0)
    create(store, "lapsed-late", lease_expires_at=1500.0)
    create(store, "lapsed-early", lease_expires_at=1100.0)
    create(store, "finished", lease_expires_at=1000.0)
    finish(store, "finished")
    assert ["lapsed-early", "lapsed-late"] == [r.run_id for r in store.expired_runs(1600.0, 10)]
    assert ["lapsed-early"] == [r.run_id for r in store.expired_runs(1600.0, 1)]


def test_claim_fails_while_lease_is_live(store: Store) -> None:
    """claim_run refuses a run whose lease has not lapsed."""
    create(store, "r1", lease_expires_at=2000.0)
    assert not store.claim_run("r1", "thief", 3000.0, now=1500.0)
    assert OWNER == (store.get_run("r1") or pytest.fail("run lost")).lease_owner


def test_claim_succeeds_once_lease_lapsed(store: Store) -> None:
    """claim_run takes over a run whose lease lapsed and records the new lease."""
    create(store, "r1", lease_expires_at=2000.0)
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
    create(store, "r1", lease_expires_at=2000.0)
    first = store.claim_run("r1", "one", 2600.0, now=2500.0)
    second = store.claim_run("r1", "two", 2600.0, now=2500.0)
    assert (2, None) == (first, second)
    assert "one" == (store.get_run("r1") or pytest.fail("run lost")).lease_owner


def race(
    ledger_url: str, prepare: Callable[[Store], None], act: Callable[[str, Store], T]
) -> dict[str, T]:
    """Run ``act(name, store)`` at once from two stores (two connections) named one and two."""
    first, second = open_store(ledger_url), open_store(ledger_url)
    try:
        prepare(first)
        results: dict[str, T] = {}
        barrier = threading.Barrier(2)

        def go(name: str, opened: Store) -> None:
            barrier.wait()
            results[name] = act(name, opened)

        threads = [
            threading.Thread(target=go, args=(name, opened))
            for name, opened in (("one", first), ("two", second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results
    finally:
        first.close()
        second.close()


def test_concurrent_claims_from_two_stores_have_one_winner(ledger_url: str) -> None:
    """Two stores (two connections) claiming at once: exactly one succeeds."""
    results = race(
        ledger_url,
        lambda store: create(store, "r1", lease_expires_at=2000.0),
        lambda name, store: store.claim_run("r1", name, 2600.0, now=2500.0),
    )
    assert [None, 2] == sorted(results.values(), key=lambda e: e or 0)
    winner = next(name for name, won in results.items() if won)
    store = open_store(ledger_url)
    try:
        assert winner == (store.get_run("r1") or pytest.fail("run lost")).lease_owner
    finally:
        store.close()


def test_claim_refuses_a_finished_run(store: Store) -> None:
    """A finished run cannot be claimed."""
    create(store, "r1", lease_expires_at=2000.0)
    finish(store, "r1")
    assert not store.claim_run("r1", "heir", 2600.0, now=2500.0)


# -- takeover sweeps ------------------------------------------------------------------------

ROUTE = "celery:agents"


def routed(
    store: Store,
    run_id: str,
    *,
    agent: str = "agent",
    start: float = 1000.0,
    lease_expires_at: float | None = None,
    route: str | None = ROUTE,
) -> None:
    """Record a run sent to ``route``: ``pending`` for a worker, or leased until a time."""
    run, blobs = new_run(run_id, agent=agent, start=start)
    if lease_expires_at is None:
        run = dataclasses.replace(run, owner=None, lease_expires_at=None, status=RunStatus.PENDING)
    else:
        run = dataclasses.replace(run, lease_expires_at=lease_expires_at)
    store.create_run(dataclasses.replace(run, route=route), blobs)


def test_the_sweeper_lease_has_one_holder_at_a_time(store: Store) -> None:
    """A sweeper lease is renewed by its holder and taken by another only once it lapsed."""
    assert store.claim_sweeper("s", "one", now=100.0, expires_at=110.0)
    assert not store.claim_sweeper("s", "two", now=105.0, expires_at=115.0)
    assert store.claim_sweeper("s", "one", now=106.0, expires_at=116.0)
    assert not store.claim_sweeper("s", "two", now=115.0, expires_at=125.0)
    assert store.claim_sweeper("s", "two", now=117.0, expires_at=127.0)
    assert not store.claim_sweeper("s", "one", now=118.0, expires_at=128.0)
    assert store.claim_sweeper("other", "one", now=118.0, expires_at=128.0)


def test_concurrent_sweeper_claims_from_two_stores_have_one_winner(ledger_url: str) -> None:
    """Two processes claiming a lapsed sweeper lease at once: exactly one holds it."""
    results = race(
        ledger_url,
        lambda store: store.claim_sweeper("s", "old", now=100.0, expires_at=110.0),
        lambda name, store: store.claim_sweeper("s", name, now=120.0, expires_at=130.0),
    )
    assert [False, True] == sorted(results.values())


def test_resend_lapsed_hands_over_each_lapse_once(store: Store) -> None:
    """A lapsed run of the route and agents named is handed over once per lapse."""
    routed(store, "lapsed", lease_expires_at=1500.0)
    routed(store, "live", lease_expires_at=2000.0)
    routed(store, "stranger", agent="other", lease_expires_at=1500.0)
    routed(store, "elsewhere", route="celery:other", lease_expires_at=1500.0)
    routed(store, "local", route=None, lease_expires_at=1500.0)
    routed(store, "ended", lease_expires_at=1500.0)
    finish(store, "ended")

    def hand_over(now: float, again_before: float) -> list[str]:
        return [r.run_id for r in store.resend_lapsed(ROUTE, now, ["agent"], again_before, 10)]

    assert ["lapsed"] == hand_over(1600.0, 1540.0)
    assert [] == hand_over(1610.0, 1550.0)
    assert ["lapsed"] == hand_over(1700.0, 1650.0)
    assert 2 == store.claim_run("lapsed", "heir", 1800.0, now=1750.0)
    assert ["lapsed"] == hand_over(1801.0, 1741.0)


def test_resend_lapsed_takes_the_oldest_lapses_first_up_to_the_limit(store: Store) -> None:
    """The runs whose lease lapsed first are handed over first."""
    routed(store, "late", lease_expires_at=1500.0)
    routed(store, "early", lease_expires_at=1100.0)
    first = store.resend_lapsed(ROUTE, 1600.0, ["agent"], 1540.0, 1)
    second = store.resend_lapsed(ROUTE, 1600.0, ["agent"], 1540.0, 1)
    assert ["early", "late"] == [r.run_id for r in first + second]


def test_lapsed_runs_lists_a_route_s_lapsed_runs_of_the_agents_named(store: Store) -> None:
    """lapsed_runs reads (marks nothing) the lapsed runs of one route, oldest lapse first."""
    routed(store, "late", route=None, lease_expires_at=1500.0)
    routed(store, "early", route=None, lease_expires_at=1100.0)
    routed(store, "sent", lease_expires_at=1100.0)
    routed(store, "stranger", agent="other", route=None, lease_expires_at=1100.0)
    assert ["early", "late"] == [r.run_id for r in store.lapsed_runs(None, ["agent"], 1600.0, 10)]
    assert ["sent"] == [r.run_id for r in store.lapsed_runs(ROUTE, ["agent"], 1600.0, 10)]
    assert ["early"] == [r.run_id for r in store.lapsed_runs(None, ["agent"], 1600.0, 1)]


def test_unclaimed_runs_are_counted_and_listed_in_the_order_sent(store: Store) -> None:
    """Pending runs no worker claimed are counted and listed by when their id was sent."""
    routed(store, "second", start=1100.0)
    routed(store, "first", start=1000.0)
    routed(store, "stranger", agent="other", start=900.0)
    routed(store, "elsewhere", route="celery:other", start=900.0)
    routed(store, "claimed", start=900.0)
    store.claim_run("claimed", "worker", 2000.0, now=1200.0)
    routed(store, "running", start=900.0, lease_expires_at=3000.0)
    assert 2 == store.count_unclaimed(ROUTE, ["agent"], 1200.0)
    assert 1 == store.count_unclaimed(ROUTE, ["agent"], 1100.0)
    assert 3 == store.count_unclaimed(ROUTE, ["agent", "other"], 1200.0)
    assert 0 == store.count_unclaimed(ROUTE, [], 1200.0)
    oldest = store.oldest_unclaimed(ROUTE, ["agent"], 1200.0, 10)
    assert ["first", "second"] == [r.run_id for r in oldest]
    assert ["first"] == [r.run_id for r in store.oldest_unclaimed(ROUTE, ["agent"], 1200.0, 1)]


def test_a_run_marked_resent_is_sent_last_and_not_again_within_the_bound(store: Store) -> None:
    """mark_resent marks an unclaimed run once per bound; it then counts as sent at that time."""
    routed(store, "first", start=1000.0)
    routed(store, "second", start=1100.0)
    routed(store, "claimed", start=1000.0)
    store.claim_run("claimed", "worker", 2000.0, now=1200.0)
    assert ["first"] == store.mark_resent(["first", "claimed", "unknown"], 1300.0, 1240.0)
    assert [] == store.mark_resent(["first"], 1310.0, 1250.0)

    def oldest(again_before: float) -> list[str]:
        return [r.run_id for r in store.oldest_unclaimed(ROUTE, ["agent"], again_before, 10)]

    assert ["second"] == oldest(1250.0)
    assert ["second", "first"] == oldest(1400.0)
    assert 1 == store.count_unclaimed(ROUTE, ["agent"], 1200.0)
    assert ["first"] == store.mark_resent(["first"], 1400.0, 1340.0)


def test_concurrent_hand_overs_from_two_stores_take_each_run_once(ledger_url: str) -> None:
    """Two sweeps at once: every lapsed run is handed over by exactly one of them."""

    def prepare(store: Store) -> None:
        for i in range(20):
            routed(store, f"r{i:02}", lease_expires_at=1500.0)

    def sweep(_: str, store: Store) -> list[str]:
        taken: list[str] = []
        while batch := store.resend_lapsed(ROUTE, 1600.0, ["agent"], 1540.0, 3):
            taken += [r.run_id for r in batch]
        return taken

    results = race(ledger_url, prepare, sweep)
    assert sorted(f"r{i:02}" for i in range(20)) == sorted(results["one"] + results["two"])


def test_renew_leases_extends_only_leases_held_at_their_epoch(store: Store) -> None:
    """renew_leases moves the expiry of runs still held at the given epoch, and reports the rest."""
    create(store, "mine", lease_expires_at=2000.0)
    create(store, "taken", lease_expires_at=1000.0)
    assert 2 == store.claim_run("taken", "heir", 2600.0, now=1500.0)
    lost = store.renew_leases({"mine": 1, "taken": 1}, 5000.0)
    expiries = {r.run_id: r.lease_expires_at for r in store.list_runs(RunQuery())}
    assert (["taken"], {"mine": 5000.0, "taken": 2600.0}) == (lost, expiries)


def test_renew_leases_of_many_runs_at_once(store: Store) -> None:
    """Hundreds of leases in one call: the held ones move, the taken and unknown are reported."""
    ids = [f'r"{i:03}' for i in range(300)]  # a quote: the ids travel as data, not as SQL
    for run_id in ids:
        create(store, run_id, lease_expires_at=2000.0)
    for run_id in ids[::50]:
        assert 2 == store.claim_run(run_id, "heir", 2600.0, now=2500.0)
    lost = store.renew_leases({**dict.fromkeys(ids, 1), "nobody": 1}, 5000.0)
    expiries = {r.run_id: r.lease_expires_at for r in store.list_runs(RunQuery(limit=1000))}
    assert [*ids[::50], "nobody"] == lost
    assert {run_id: 2600.0 if run_id in ids[::50] else 5000.0 for run_id in ids} == expiries


def test_every_claim_raises_the_epoch(store: Store) -> None:
    """A run is created at epoch 1 (0 when queued); every takeover raises it by one."""
    create(store, "r1", lease_expires_at=1000.0)
    queued, blobs = new_run("queued")
    store.create_run(
        dataclasses.replace(queued, owner=None, lease_expires_at=None, status=RunStatus.PENDING),
        blobs,
    )
    assert (1, 0) == (
        (store.get_run("r1") or pytest.fail("run lost")).epoch,
        (store.get_run("queued") or pytest.fail("run lost")).epoch,
    )
    assert 1 == store.claim_run("queued", "worker", 2000.0, now=1500.0)
    assert 2 == store.claim_run("r1", "heir", 2000.0, now=1500.0)
    assert 3 == store.claim_run("r1", "heir2", 3000.0, now=2500.0)


def test_writes_of_a_stale_epoch_are_refused_and_change_nothing(store: Store) -> None:
    """After a takeover, every write of the old owner raises LeaseLostError and writes nothing."""
    create(store, "r1", lease_expires_at=1000.0)
    store.start_attempt("r1", 1, 1001.0, OWNER, epoch=1)
    assert 2 == store.claim_run("r1", "heir", 3000.0, now=1500.0)
    store.start_attempt("r1", 2, 1600.0, "heir", epoch=2)
    intent, blobs = step("r1", 1, status="started", response=None)
    stale: list[Callable[[], object]] = [
        lambda: store.write_steps([step("r1", 1)[0]], [], epoch=1),
        lambda: store.write_intent(intent, [], blobs, epoch=1),
        lambda: store.start_attempt("r1", 2, 1700.0, OWNER, epoch=1),
        lambda: store.finish_attempt(
            "r1", 1, AttemptOutcome("succeeded", 1700.0, None, None, None, None, None), epoch=1
        ),
        lambda: store.finish_run("r1", *outcome_of(), epoch=1),
        lambda: store.delete_steps_from("r1", 1, epoch=1),
        lambda: store.record_verdicts("r1", 1, "output", [{"name": "a", "passed": True}], epoch=1),
    ]
    for write in stale:
        with pytest.raises(seawall.LeaseLostError):
            write()
    record = store.get_run("r1") or pytest.fail("run lost")
    attempts = store.list_attempts("r1")
    assert (RunStatus.RUNNING, "heir", 2) == (record.status, record.lease_owner, record.epoch)
    assert [("running", "heir", 2)] == [(a.status, a.owner, a.epoch) for a in attempts[1:]]
    assert [] == store.load_steps("r1")
    assert [] == store.list_verdicts("r1")
    assert [] == store.list_dead_letters(DeadLetterQuery())


def test_a_fenced_owner_can_only_mark_its_own_attempt(store: Store) -> None:
    """mark_fenced notes when a stale owner found out, on its own attempt row only."""
    create(store, "r1", lease_expires_at=1000.0)
    store.start_attempt("r1", 1, 1001.0, OWNER, epoch=1)
    store.claim_run("r1", "heir", 3000.0, now=1500.0)
    store.start_attempt("r1", 2, 1600.0, "heir", epoch=2)
    store.mark_fenced("r1", 1, 1, 1700.0)
    store.mark_fenced("r1", 2, 1, 1700.0)
    assert [1700.0, None] == [a.fenced_at for a in store.list_attempts("r1")]


def test_create_and_start_records_the_run_with_its_first_attempt(store: Store) -> None:
    """create_and_start records the leased run and its attempt 1 (epoch 1) together."""
    run, blobs = new_run("r1", start=1234.5)
    store.create_and_start(run, blobs)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.RUNNING, 1, 1, OWNER) == (
        record.status,
        record.attempts,
        record.epoch,
        record.lease_owner,
    )
    assert [(1, 1234.5, "running", OWNER, 1, 0, 0)] == [
        (a.attempt, a.start_time, a.status, a.owner, a.epoch, a.base_seq, a.completed_at_start)
        for a in store.list_attempts("r1")
    ]
    with pytest.raises(seawall.LedgerError):
        store.create_and_start(run, blobs)


def test_end_run_records_attempt_steps_and_run_at_once(store: Store) -> None:
    """end_run writes the attempt's end, the buffered steps and the run's end."""
    run, blobs = new_run("r1")
    store.create_and_start(run, blobs)
    row, step_blobs = step("r1", 1)
    outcome, output_blobs = outcome_of(output={"answer": 42})
    ended = AttemptOutcome("succeeded", 1999.0, None, None, None, None, None)
    store.end_run("r1", 1, ended, outcome, [row], [*step_blobs, *output_blobs], epoch=1)
    record = store.get_run("r1") or pytest.fail("run lost")
    columns = store.get_run_io("r1") or pytest.fail("run lost")
    assert (RunStatus.SUCCEEDED, 2000.0, None, {"answer": 42}) == (
        record.status,
        record.end_time,
        record.lease_owner,
        unpack(columns[1] or b"", store.get_blobs),
    )
    assert [("succeeded", 1999.0)] == [(a.status, a.end_time) for a in store.list_attempts("r1")]
    assert [(1, "completed")] == [(s.seq, s.status) for s in store.load_steps("r1")]


def test_a_fenced_owner_cannot_end_the_run(store: Store) -> None:
    """end_run by a stale owner is refused whole: no step, no attempt end, no final status."""
    run, blobs = new_run("r1", lease_expires_at=1000.0)
    store.create_and_start(run, blobs)
    store.claim_run("r1", "heir", 3000.0, now=1500.0)
    row, step_blobs = step("r1", 1)
    outcome, output_blobs = outcome_of()
    ended = AttemptOutcome("succeeded", 1999.0, None, None, None, None, None)
    with pytest.raises(seawall.LeaseLostError):
        store.end_run("r1", 1, ended, outcome, [row], [*step_blobs, *output_blobs], epoch=1)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.RUNNING, "heir", 2) == (record.status, record.lease_owner, record.epoch)
    assert ["running"] == [a.status for a in store.list_attempts("r1")]
    assert [] == store.load_steps("r1")


def test_ledger_bytes_is_positive(store: Store) -> None:
    """ledger_bytes reports the storage the ledger uses."""
    create(store, "r1")
    assert store.ledger_bytes() > 0


# -- settling: commits and compensations ------------------------------------------------------


def _begin_commit(store: Store, run_id: str) -> None:
    output_hash, stored, blobs = payload({"answer": 1})
    store.begin_commit(
        run_id,
        output_hash=output_hash,
        output_column=stored,
        blobs=blobs,
        commit_json='{"files": 2}',
        artifacts=[("b.txt", 2, "hb"), ("a.txt", 1, "ha")],
        epoch=1,
    )


def test_begin_commit_records_phase_manifest_and_output(store: Store) -> None:
    """begin_commit puts the run in phase committing with its manifest and uncommitted files."""
    create(store, "r1")
    _begin_commit(store, "r1")
    record = store.get_run("r1") or pytest.fail("run lost")
    columns = store.get_run_io("r1") or pytest.fail("run lost")
    assert ("committing", '{"files": 2}', {"answer": 1}) == (
        record.phase,
        store.get_commit("r1"),
        unpack(columns[1] or b"", store.get_blobs),
    )
    assert [("a.txt", 1, "ha", None), ("b.txt", 2, "hb", None)] == [
        (a.name, a.size, a.sha256, a.committed_at) for a in store.list_artifacts("r1")
    ]


def test_success_commits_the_artifacts(store: Store) -> None:
    """finish_run(succeeded) marks the artifacts committed and leaves the phase."""
    create(store, "r1")
    _begin_commit(store, "r1")
    finish(store, "r1", end=2500.0)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (None, None) == (record.phase, store.get_commit("r1"))
    assert [2500.0, 2500.0] == [a.committed_at for a in store.list_artifacts("r1")]


def test_abort_commit_forgets_manifest_and_output(store: Store) -> None:
    """abort_commit drops the artifacts, the phase and the output."""
    create(store, "r1")
    _begin_commit(store, "r1")
    store.abort_commit("r1", epoch=1)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (None, None, None, []) == (
        record.phase,
        record.output_hash,
        store.get_commit("r1"),
        store.list_artifacts("r1"),
    )


def test_failure_drops_uncommitted_artifacts(store: Store) -> None:
    """finish_run(failed) deletes the run's artifact rows."""
    create(store, "r1")
    _begin_commit(store, "r1")
    finish(store, "r1", RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
    assert [] == store.list_artifacts("r1")


def test_compensations_are_listed_newest_step_first(store: Store) -> None:
    """Compensations record intent then outcome, listed in the order they run (seq desc)."""
    create(store, "r1")
    failed, _ = outcome_of(RunStatus.FAILED, error_class=ErrorClass.PARTIAL_WRITE)
    store.begin_compensation("r1", failed, epoch=1)
    store.start_compensation("r1", 1, "charge", "r1:1", 10.0, epoch=1)
    store.start_compensation("r1", 3, "email", None, 11.0, epoch=1)
    store.finish_compensation(
        "r1",
        3,
        status="failed",
        end_time=12.0,
        tries=2,
        error_type="E",
        error_message="no",
        epoch=1,
    )
    record = store.get_run("r1") or pytest.fail("run lost")
    assert ("compensating", ErrorClass.PARTIAL_WRITE) == (record.phase, record.error_class)
    assert [(3, "email", "failed", 2, "E"), (1, "charge", "started", 1, None)] == [
        (c.seq, c.tool, c.status, c.tries, c.error_type) for c in store.list_compensations("r1")
    ]


# -- verdicts, cancellation, parking and hand-offs ----------------------------------------------


def test_verdicts_append_in_order(store: Store) -> None:
    """record_verdicts appends with increasing ordinals per attempt."""
    create(store, "r1")
    store.record_verdicts(
        "r1", 1, "output", [{"name": "a", "passed": True, "duration": 0.1}], epoch=1
    )
    store.record_verdicts(
        "r1", 1, "gate", [{"name": "b", "passed": False, "message": "no", "score": 0.5}], epoch=1
    )
    store.record_verdicts(
        "r1", 2, "output", [{"name": "c", "passed": True, "error": True}], epoch=1
    )
    store.record_verdicts("r1", 2, "output", [], epoch=1)
    assert [
        (1, 1, "output", "a", True, False, None),
        (1, 2, "gate", "b", False, False, 0.5),
        (2, 1, "output", "c", True, True, None),
    ] == [
        (v.attempt, v.ordinal, v.kind, v.name, v.passed, v.error, v.score)
        for v in store.list_verdicts("r1")
    ]


def test_verdicts_of_one_write_keep_their_order_and_values(store: Store) -> None:
    """One write of several verdicts: consecutive ordinals; scores of any number type kept."""
    create(store, "r1")
    store.record_verdicts(
        "r1",
        1,
        "output",
        [
            {"name": "whole", "passed": True, "score": 1},
            {"name": "half", "passed": False, "score": 0.5, "message": "short", "error": True},
            {"name": "none", "passed": True, "duration": 2},
        ],
        epoch=1,
    )
    assert [
        (1, "whole", True, False, 1.0, None, 0.0),
        (2, "half", False, True, 0.5, "short", 0.0),
        (3, "none", True, False, None, None, 2.0),
    ] == [
        (v.ordinal, v.name, v.passed, v.error, v.score, v.message, v.duration)
        for v in store.list_verdicts("r1")
    ]


def test_cancel_is_recorded_once_for_an_unfinished_run(store: Store) -> None:
    """request_cancel keeps the first reason; a finished run cannot be cancelled."""
    create(store, "r1")
    create(store, "done")
    finish(store, "done")
    assert (True, True, False) == (
        store.request_cancel("r1", "first", 5.0),
        store.request_cancel("r1", "second", 6.0),
        store.request_cancel("done", "late", 7.0),
    )
    assert {"r1": "first"} == store.cancellations(["r1", "done", "unknown"])
    assert {} == store.cancellations([])


def test_intent_after_cancel_is_refused(store: Store) -> None:
    """A mutating intent of a cancelled run raises RunCancelled and is not stored."""
    create(store, "r1")
    store.request_cancel("r1", "stop it", 5.0)
    intent, _ = step("r1", 1, mutating=True, status="started", response=None)
    with pytest.raises(seawall.RunCancelled) as info:
        store.write_intent(intent, [], [], epoch=1)
    assert "stop it" == info.value.reason
    assert [] == store.load_steps("r1")


def test_intent_with_buffered_steps_after_cancel_stores_nothing(store: Store) -> None:
    """Cancelled: neither the intent nor the steps buffered before it are written."""
    create(store, "r1")
    store.request_cancel("r1", "stop", 5.0)
    pending, pending_blobs = step("r1", 1)
    intent, intent_blobs = step("r1", 2, mutating=True, status="started", response=None)
    with pytest.raises(seawall.RunCancelled):
        store.write_intent(intent, [pending], pending_blobs + intent_blobs, epoch=1)
    assert [] == store.load_steps("r1")


def test_parked_run_is_claimed_once(store: Store) -> None:
    """park_run frees the lease; claim_parked takes it back once."""
    create(store, "r1")
    parked, blobs = outcome_of(RunStatus.AWAITING_HUMAN, output={"draft": 1})
    store.park_run("r1", parked, blobs, epoch=1)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.AWAITING_HUMAN, None) == (record.status, record.lease_owner)
    assert (2, None) == (
        store.claim_parked("r1", "decider", 9000.0),
        store.claim_parked("r1", "other", 9000.0),
    )
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (RunStatus.RUNNING, "decider") == (record.status, record.lease_owner)


def _handoff(handoff_id: str, run_id: str, created_at: float) -> HandOffRecord:
    return HandOffRecord(
        handoff_id=handoff_id,
        run_id=run_id,
        kind="low_confidence",
        reason="check it",
        subject={"output": [1, 2]},
        status="open",
        created_at=created_at,
    )


def test_handoffs_round_trip_and_are_decided_once(store: Store) -> None:
    """open_handoff, list_handoffs (newest first), get_handoff, decide_handoff once."""
    create(store, "r1")
    store.open_handoff(_handoff("h1", "r1", 1.0), epoch=1)
    store.open_handoff(_handoff("h2", "r1", 2.0), epoch=1)
    assert ["h2", "h1"] == [h.handoff_id for h in store.list_handoffs(run_id="r1")]
    assert {"output": [1, 2]} == (store.get_handoff("h1") or pytest.fail("lost")).subject
    assert store.get_handoff("nope") is None
    assert (True, False) == (
        store.decide_handoff("h1", decision="approved", decided_by="ada", note="ok", at=3.0),
        store.decide_handoff("h1", decision="rejected", decided_by="bob", note=None, at=4.0),
    )
    decided = store.get_handoff("h1") or pytest.fail("lost")
    assert ("decided", "approved", "ada", "ok", 3.0) == (
        decided.status,
        decided.decision,
        decided.decided_by,
        decided.note,
        decided.decided_at,
    )
    assert ["h2"] == [h.handoff_id for h in store.list_handoffs(status="open")]


def test_handoffs_page_oldest_first(store: Store) -> None:
    """list_handoffs(oldest_first=True, after=...) pages in creation order, ties by id."""
    create(store, "r1")
    for handoff_id, at in (("h3", 2.0), ("h1", 1.0), ("h2", 2.0)):
        store.open_handoff(_handoff(handoff_id, "r1", at), epoch=1)
    first = store.list_handoffs(status="open", oldest_first=True, limit=2)
    assert ["h1", "h2"] == [h.handoff_id for h in first]
    rest = store.list_handoffs(status="open", oldest_first=True, after=(2.0, "h2"))
    assert ["h3"] == [h.handoff_id for h in rest]


# -- dead-letter queue ------------------------------------------------------------------------


def _failed(store: Store, run_id: str, *, agent: str = "agent", end: float = 2000.0) -> None:
    create(store, run_id, agent=agent)
    finish(store, run_id, RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT, end=end)


def test_failed_run_is_enqueued_once(store: Store) -> None:
    """A failed run gets one pending DLQ entry, even if its failure is recorded twice."""
    _failed(store, "r1")
    finish(store, "r1", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT, end=2100.0)
    (entry,) = store.list_dead_letters(DeadLetterQuery(status=None))
    assert ("r1", "agent", "pending", ErrorClass.CLEAN_ABORT, FailureCause.EXCEPTION) == (
        entry.run_id,
        entry.agent,
        entry.status,
        entry.error_class,
        entry.failure_cause,
    )


def test_recorded_replay_is_not_enqueued(store: Store) -> None:
    """A recorded replay that fails is a diagnosis: no DLQ entry."""
    create(store, "r1", replay_of="orig", replay_mode="recorded")
    finish(store, "r1", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT)
    assert [] == store.list_dead_letters(DeadLetterQuery(status=None))


def test_dlq_filters(store: Store) -> None:
    """list_dead_letters filters by agent, window and excluded agents, oldest first."""
    _failed(store, "a1", agent="alpha", end=10.0)
    _failed(store, "b1", agent="beta", end=20.0)
    _failed(store, "a2", agent="alpha", end=30.0)

    def ids(**filters: Any) -> list[str]:
        return [e.run_id for e in store.list_dead_letters(DeadLetterQuery(**filters))]

    assert ["a1", "b1", "a2"] == ids()
    assert ["a1", "a2"] == ids(agent="alpha")
    assert ["b1"] == ids(since=15.0, until=30.0)
    assert ["b1"] == ids(excluded=("alpha",))
    assert ["a1"] == ids(limit=1)


def test_claim_takes_the_oldest_pending_entry_once(store: Store) -> None:
    """claim_dead_letter takes entries oldest first, each once, then returns None."""
    _failed(store, "old", end=10.0)
    _failed(store, "new", end=20.0)
    query = DeadLetterQuery()
    first = store.claim_dead_letter(query, "me", 50.0)
    second = store.claim_dead_letter(query, "me", 51.0)
    assert ("old", "new", None) == (
        first and first.run_id,
        second and second.run_id,
        store.claim_dead_letter(query, "me", 52.0),
    )
    statuses = {
        e.run_id: (e.status, e.claimed_by)
        for e in store.list_dead_letters(DeadLetterQuery(status=None))
    }
    assert {"old": ("redriving", "me"), "new": ("redriving", "me")} == statuses


def test_entry_ids_select_exactly_those_entries(store: Store) -> None:
    """DeadLetterQuery(entry_ids=...) lists and claims only the named entries."""
    _failed(store, "old", end=10.0)
    _failed(store, "mid", end=20.0)
    _failed(store, "new", end=30.0)
    by_run = {e.run_id: e.entry_id for e in store.list_dead_letters(DeadLetterQuery())}
    chosen = DeadLetterQuery(entry_ids=(by_run["new"], by_run["mid"]))
    assert ["mid", "new"] == [e.run_id for e in store.list_dead_letters(chosen)]
    claimed = store.claim_dead_letter(DeadLetterQuery(entry_ids=(by_run["new"],)), "me", 50.0)
    assert "new" == (claimed or pytest.fail("not claimed")).run_id
    assert store.claim_dead_letter(DeadLetterQuery(entry_ids=(by_run["new"],)), "me", 51.0) is None
    assert ["old", "mid"] == [e.run_id for e in store.list_dead_letters(DeadLetterQuery())]


def test_released_entry_can_be_claimed_again(store: Store) -> None:
    """release_dead_letter gives a claimed entry back to pending."""
    _failed(store, "r1")
    entry = store.claim_dead_letter(DeadLetterQuery(), "me", 50.0) or pytest.fail("none")
    store.release_dead_letter(entry.entry_id)
    again = store.claim_dead_letter(DeadLetterQuery(), "you", 60.0)
    assert entry.entry_id == (again or pytest.fail("not released")).entry_id


def test_finished_redrive_is_recorded(store: Store) -> None:
    """finish_dead_letter records the redrive run and its result."""
    _failed(store, "r1")
    entry = store.claim_dead_letter(DeadLetterQuery(), "me", 50.0) or pytest.fail("none")
    store.finish_dead_letter(entry.entry_id, redrive_run_id="r2", result="succeeded", at=60.0)
    (done,) = store.list_dead_letters(DeadLetterQuery(status=None))
    assert ("redriven", "r2", "succeeded", 60.0) == (
        done.status,
        done.redrive_run_id,
        done.result,
        done.redriven_at,
    )


def test_settle_marks_a_pending_entry_once(store: Store) -> None:
    """settle_dead_letter settles a run's pending entry; a second settle is refused."""
    _failed(store, "r1")
    assert (True, False) == (
        store.settle_dead_letter("r1", redrive_run_id="r2", result="succeeded", at=60.0),
        store.settle_dead_letter("r1", redrive_run_id="r3", result="succeeded", at=61.0),
    )


def test_purge_marks_matching_pending_entries(store: Store) -> None:
    """purge_dead_letters purges the matching pending entries and says how many."""
    _failed(store, "a1", agent="alpha")
    _failed(store, "b1", agent="beta")
    assert 1 == store.purge_dead_letters(DeadLetterQuery(agent="alpha"))
    assert ["b1"] == [e.run_id for e in store.list_dead_letters(DeadLetterQuery())]


def test_failed_replay_links_to_the_previous_entry(store: Store) -> None:
    """A failed live replay's entry names the entry of the run it replayed."""
    _failed(store, "r1")
    create(store, "r2", replay_of="r1", replay_mode="live")
    finish(store, "r2", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT, end=3000.0)
    first, second = store.list_dead_letters(DeadLetterQuery())
    assert first.entry_id == second.previous_entry_id


# -- breakers and retry budgets -----------------------------------------------------------------


def _fail_once(state: BreakerState) -> tuple[BreakerState, int]:
    failures = state.failures + 1
    opened = failures >= 2
    after = BreakerState(
        name=state.name,
        kind=state.kind,
        state="open" if opened else state.state,
        failures=failures,
        opened_at=5.0 if opened else state.opened_at,
        reason="two failures" if opened else state.reason,
    )
    return after, failures


def test_unused_breaker_is_closed_and_unlisted(store: Store) -> None:
    """A breaker never changed reads closed and is not stored."""
    assert BreakerState(name="tool:x", kind="tool") == store.breaker("tool:x", "tool")
    assert 0 == store.update_breaker("tool:x", "tool", lambda s: (s, 0))
    assert [] == store.list_breakers()


def test_breaker_transitions_are_recorded(store: Store) -> None:
    """update_breaker applies a change, returns its answer and records a state change once."""
    assert [1, 2] == [store.update_breaker("agent:a", "agent", _fail_once) for _ in range(2)]
    state = store.breaker("agent:a", "agent")
    assert ("open", 2, 5.0, "two failures") == (
        state.state,
        state.failures,
        state.opened_at,
        state.reason,
    )
    assert [("closed", "open", "two failures")] == [
        (e.from_state, e.to_state, e.reason) for e in store.breaker_events("agent:a")
    ]
    assert ["agent:a"] == [b.name for b in store.list_breakers()]


def test_retry_budget_counts_calls_and_spends_retries(store: Store) -> None:
    """spend_retry sees the calls and retries of the window and records a spent retry."""
    import time

    bucket = int(time.time())
    store.add_budget_calls([("tool:x", bucket, 10), ("tool:x", bucket, 5)])
    seen: list[tuple[int, int]] = []

    def allows(calls: int, retries: int) -> bool:
        seen.append((calls, retries))
        return retries < 1

    assert (True, False) == (
        store.spend_retry("tool:x", since=bucket - 10, bucket=bucket, allows=allows),
        store.spend_retry("tool:x", since=bucket - 10, bucket=bucket, allows=allows),
    )
    assert [(15, 0), (15, 1)] == seen


def test_trace_of_a_run_is_recorded(store: Store) -> None:
    """set_trace stores the run's OpenTelemetry trace and span ids."""
    create(store, "r1")
    store.set_trace("r1", "ab" * 16, "cd" * 8)
    record = store.get_run("r1") or pytest.fail("run lost")
    assert ("ab" * 16, "cd" * 8) == (record.trace_id, record.span_id)


def test_usage_of_retries_and_unknown_calls_round_trips(store: Store) -> None:
    """finish_run keeps retried usage, unknown-usage and unpriced call counts apart."""
    import dataclasses

    create(store, "r1")
    done, blobs = outcome_of()
    store.finish_run(
        "r1",
        dataclasses.replace(
            done,
            retried_input_tokens=40,
            retried_output_tokens=4,
            retried_cost_usd=0.5,
            unknown_usage_calls=2,
            unpriced_calls=1,
        ),
        blobs,
        epoch=1,
    )
    record = store.get_run("r1") or pytest.fail("run lost")
    assert (40, 4, 0.5, 2, 1) == (
        record.retried_input_tokens,
        record.retried_output_tokens,
        record.retried_cost_usd,
        record.unknown_usage_calls,
        record.unpriced_calls,
    )


# -- drift embeddings -----------------------------------------------------------------------------


def embedding(
    i: int, at: float, *, agent: str = "a", model: str = "m1"
) -> seawall.ledger.DriftEmbedding:
    """An embedding whose codes cover the whole signed-byte range."""
    from seawall.ledger import DriftEmbedding

    codes = bytes([(i * 37 + k) % 256 for k in range(8)]) + b"\x00\x7f\x80\xff"
    return DriftEmbedding(agent, f"r{i:03d}", at, model, 0.01 * (i + 1), codes, f"réponse {i} ✓")


def test_drift_embeddings_round_trip_by_agent_model_and_window(store: Store) -> None:
    """Embeddings come back byte for byte, in finishing order, per agent and model."""
    store.add_drift_embeddings([embedding(i, float(i)) for i in range(10)])
    store.add_drift_embeddings([embedding(0, 99.0)])  # the same run again: kept as it was
    store.add_drift_embeddings([embedding(0, 0.0, agent="b"), embedding(20, 5.5, model="m2")])
    assert [embedding(i, float(i)) for i in range(3)] == store.list_drift_embeddings(
        "a", model="m1", newest=False, limit=3
    )
    assert ["r007", "r008", "r009"] == [
        e.run_id for e in store.list_drift_embeddings("a", model="m1", newest=True, limit=3)
    ]
    assert ["r002", "r003"] == [
        e.run_id
        for e in store.list_drift_embeddings(
            "a", model="m1", newest=False, limit=9, since=2, until=4
        )
    ]
    assert [embedding(20, 5.5, model="m2")] == store.list_drift_embeddings(
        "a", model="m2", newest=True, limit=10
    )
    assert ["r000"] == [
        e.run_id for e in store.list_drift_embeddings("b", model="m1", newest=True, limit=5)
    ]
    assert 10 == count_rows(store, "drift_embeddings") - 2


# -- operators' records -----------------------------------------------------------------------


def _alert(store: Store, alert_id: str, *, at: float = 10.0, agent: str = "a") -> None:
    store.record_alert(
        AlertRecord(alert_id, "drift", agent, "decision", 0.4, 0.2, "w", "m", at, {"psi": 0.4})
    )


def test_first_acknowledgement_of_an_alert_stands(store: Store) -> None:
    """acknowledge_alert records one ack per alert (the first), none for an unknown alert."""
    _alert(store, "x")
    first = store.acknowledge_alert(AlertAck("x", "ada", 11.0, "on it"))
    second = store.acknowledge_alert(AlertAck("x", "bob", 12.0, None))
    assert AlertAck("x", "ada", 11.0, "on it") == first == second
    assert store.acknowledge_alert(AlertAck("nope", "ada", 11.0)) is None
    assert {"x": first} == store.alert_acks(["x", "nope", "x"])
    assert {} == store.alert_acks([])


def test_list_alerts_filters_by_acknowledgement(store: Store) -> None:
    """list_alerts(acknowledged=...) keeps alerts with, or without, an acknowledgement."""
    _alert(store, "x", at=1.0)
    _alert(store, "y", at=2.0)
    store.acknowledge_alert(AlertAck("x", "ada", 3.0))
    assert ["x"] == [a.alert_id for a in store.list_alerts(acknowledged=True)]
    assert ["y"] == [a.alert_id for a in store.list_alerts(acknowledged=False)]
    assert ["y", "x"] == [a.alert_id for a in store.list_alerts()]


def test_silences_are_listed_and_lifted_once(store: Store) -> None:
    """A silence mutes its kind, agent and feature while it lasts; lifting ends it once."""
    silence = AlertSilence("s1", "drift", "a", None, 100.0, 200.0, "ada", "deploy")
    store.add_silence(silence)
    store.add_silence(AlertSilence("s2", "dlq_growth", None, None, 100.0, 150.0, "bob"))
    assert ["s1", "s2"] == [s.silence_id for s in store.list_silences()]
    assert ["s1"] == [s.silence_id for s in store.list_silences(ending_after=160.0)]
    (kept,) = store.list_silences(ending_after=160.0)
    assert silence == kept
    raised = AlertRecord("x", "drift", "a", "latency", 0.4, 0.2, "w", "m", 120.0)
    assert (True, False, False) == (
        kept.mutes(raised),
        kept.mutes(replace(raised, agent="b")),
        kept.mutes(replace(raised, at=250.0)),
    )
    assert (True, False) == (
        store.lift_silence("s1", by="bob", at=130.0),
        store.lift_silence("s1", by="bob", at=131.0),
    )
    assert False is store.lift_silence("s2", by="bob", at=160.0)  # already over
    assert [] == store.list_silences(ending_after=160.0)
    lifted = store.list_silences()[0]
    assert ("bob", 130.0, 130.0) == (lifted.lifted_by, lifted.lifted_at, lifted.until)
    assert False is lifted.mutes(raised)  # lifting shows what it muted


def test_handoff_claims_warn_and_can_be_taken_over(store: Store) -> None:
    """The first claim on an open hand-off stands unless taken over; decided ones refuse."""
    create(store, "r1")
    store.open_handoff(_handoff("h1", "r1", 1.0), epoch=1)
    store.open_handoff(_handoff("h2", "r1", 2.0), epoch=1)
    assert HandOffClaim("h1", "ada", 5.0) == store.claim_handoff(HandOffClaim("h1", "ada", 5.0))
    assert (
        "ada" == (store.claim_handoff(HandOffClaim("h1", "bob", 6.0)) or pytest.fail("no claim")).by
    )
    taken = store.claim_handoff(HandOffClaim("h1", "bob", 7.0), take_over=True)
    assert HandOffClaim("h1", "bob", 7.0) == taken
    assert (False, True) == (
        store.release_handoff("h1", by="ada"),
        store.release_handoff("h1", by="bob"),
    )
    assert {} == store.handoff_claims(["h1", "h2"])
    store.decide_handoff("h2", decision="approved", decided_by="ada", note=None, at=8.0)
    assert store.claim_handoff(HandOffClaim("h2", "ada", 9.0)) is None
    assert store.claim_handoff(HandOffClaim("nope", "ada", 9.0)) is None


def test_operator_actions_round_trip_newest_first(store: Store) -> None:
    """record_operator_action keeps who did what; the list filters and pages by keyset."""
    for i, (who, what) in enumerate((("ada", "replay"), ("bob", "redrive"), ("ada", "redrive"))):
        store.record_operator_action(
            OperatorAction(f"a{i}", 10.0 + i, who, what, f"run{i}", {"n": i, "ids": ["x"]})
        )
    store.record_operator_action(OperatorAction("a0", 99.0, "eve", "forged", "x"))
    actions = store.list_operator_actions()
    assert ["a2", "a1", "a0"] == [a.action_id for a in actions]
    assert OperatorAction("a0", 10.0, "ada", "replay", "run0", {"ids": ["x"], "n": 0}) == actions[2]
    assert ["a2", "a0"] == [a.action_id for a in store.list_operator_actions(operator="ada")]
    assert ["a2", "a1"] == [a.action_id for a in store.list_operator_actions(action="redrive")]
    assert ["a1"] == [a.action_id for a in store.list_operator_actions(target="run1")]
    assert ["a1", "a0"] == [
        a.action_id for a in store.list_operator_actions(before=(actions[0].at, "a2"))
    ]
    assert ["a2"] == [a.action_id for a in store.list_operator_actions(limit=1)]
