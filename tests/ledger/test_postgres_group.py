"""PostgreSQL's group commit: concurrent runs' one-statement writes committed together.

Each write learns what it would have learnt alone: a fenced one is refused (to its caller only)
while the others commit; a commit whose answer is lost leaves every write of the group in
doubt, and each is redone alone, recognising its own committed write. The same holds whether
the writes come from threads waiting for their group or are put off by the calls of one
``batch`` (the event loop's runs), which the tests of a group run both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import types
from typing import TYPE_CHECKING, Any, Self

import psycopg
import pytest

import seawall
from seawall._failures import RunStatus
from seawall.ledger import LATENCY_BOUNDS, AttemptOutcome, PostgresStore
from seawall.ledger._postgres_connections import make_put_off
from tests.ledger.rows import new_run, outcome_of, step
from tests.postgres_schemas import drop_schema, new_schema_name, with_schema
from tests.servers import ThrowawayPostgres

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ENDED = AttemptOutcome("succeeded", 1999.0, None, None, None, None, None)


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    """A PostgreSQL store on a schema of its own, dropped after the test."""
    name = new_schema_name("pgg")
    opened = PostgresStore(with_schema(postgres_url, name))
    try:
        yield opened
    finally:
        opened.close()
        drop_schema(postgres_url, name)


def _batched(store: PostgresStore, calls: list[Callable[[], object]]) -> list[BaseException | None]:
    """Make ``calls`` in one ``batch``: their writes put off, then committed as one group."""
    return [error for _, error in store.batch(calls)]


@pytest.fixture(params=["threads", "batch"])
def grouped(request: pytest.FixtureRequest) -> Callable[..., list[BaseException | None]]:
    """Make calls in one group: from waiting threads, or put off by one batch."""
    return _threaded if request.param == "threads" else _batched


def _threaded(
    store: PostgresStore, calls: list[Callable[[], object]]
) -> list[BaseException | None]:
    """Make ``calls`` from threads of their own, all queued before one group takes them."""
    group = store._group
    with group._lock:  # every lead is taken: the calls queue up
        group._leaders = group.in_flight
    outcomes: list[BaseException | None] = [None] * len(calls)

    def call(index: int) -> None:
        try:
            calls[index]()
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    while True:
        with group._lock:
            if len(group._waiting) == len(calls):
                group._leaders = 1  # the lead now passes to the first writer, then frees
                heir = group._waiting[0]
                heir.lead = True
                heir.wake.set()
                break
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    return outcomes


def test_a_fenced_write_is_refused_alone_and_the_rest_of_its_group_commits(
    store: PostgresStore, grouped: Callable[..., list[BaseException | None]]
) -> None:
    """Three runs end in one group; the one taken over raises to its caller, two end."""
    for run_id in ("a", "b", "c"):
        run, blobs = new_run(run_id, lease_expires_at=1000.0)
        store.create_and_start(run, blobs)
    store.claim_run("b", "heir", 3000.0, now=1500.0)
    outcome, _ = outcome_of()
    before = (store._group.groups, store._group.grouped)

    def end(run_id: str) -> Callable[[], object]:
        row = step(run_id, 1)[0]
        return lambda: store.end_run(run_id, 1, ENDED, outcome, [row], [], epoch=1)

    outcomes = grouped(store, [end("a"), end("b"), end("c")])
    assert (before[0] + 1, before[1] + 3) == (store._group.groups, store._group.grouped)
    assert [None, seawall.LeaseLostError, None] == [
        None if o is None else type(o) for o in outcomes
    ]
    statuses = {r: (store.get_run(r) or pytest.fail("lost")).status for r in ("a", "b", "c")}
    assert {"a": RunStatus.SUCCEEDED, "b": RunStatus.RUNNING, "c": RunStatus.SUCCEEDED} == statuses
    assert ([1], [], [1]) == tuple([s.seq for s in store.load_steps(r)] for r in ("a", "b", "c"))
    assert [2] == [c.calls for c in store.step_latency(bounds=LATENCY_BOUNDS)]


def test_a_taken_run_id_is_refused_alone_in_its_group(
    store: PostgresStore, grouped: Callable[..., list[BaseException | None]]
) -> None:
    """Two new runs and one reusing an id open in one group: only the reused id is refused."""
    taken, blobs = new_run("taken", start=1.0)
    store.create_and_start(taken, blobs)
    again, _ = new_run("taken", start=2.0, owner="other:1")
    fresh = [new_run(r)[0] for r in ("x", "y")]
    outcomes = grouped(
        store,
        [
            lambda: store.create_and_start(fresh[0], []),
            lambda: store.create_and_start(again, []),
            lambda: store.create_and_start(fresh[1], []),
        ],
    )
    assert [None, seawall.LedgerError, None] == [None if o is None else type(o) for o in outcomes]
    assert 1.0 == (store.get_run("taken") or pytest.fail("lost")).start_time
    assert [[1], [1]] == [[a.attempt for a in store.list_attempts(r)] for r in ("x", "y")]


class _CommitThenLost:
    """A pooled connection whose next transaction commits, then reports the connection lost."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._connection.transaction() as block:
            yield block
        raise psycopg.OperationalError("server closed the connection unexpectedly")


def test_a_group_whose_commit_answer_is_lost_is_redone_alone_in_doubt(
    store: PostgresStore,
    monkeypatch: pytest.MonkeyPatch,
    grouped: Callable[..., list[BaseException | None]],
) -> None:
    """Every write of the group is in doubt; each redone alone finds its own: no error, once."""
    for run_id in ("a", "b"):
        run, blobs = new_run(run_id)
        store.create_and_start(run, blobs)
    pool = store._db.pool
    real = pool.connection
    lost: list[int] = []

    @contextlib.contextmanager
    def connection(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as conn:
            if lost:  # only the group's: the redos alone get a sound connection
                yield conn
                return
            lost.append(1)
            yield _CommitThenLost(conn)

    monkeypatch.setattr(pool, "connection", connection)
    outcome, _ = outcome_of()
    fresh, _ = new_run("c")
    outcomes = grouped(
        store,
        [
            lambda: store.end_run("a", 1, ENDED, outcome, [step("a", 1)[0]], [], epoch=1),
            lambda: store.end_run("b", 1, ENDED, outcome, [], [], epoch=1),
            lambda: store.create_and_start(fresh, []),
        ],
    )
    monkeypatch.undo()
    assert [None, None, None] == outcomes
    assert [1] == lost  # the group ran once, and lost its answer
    statuses = [(store.get_run(r) or pytest.fail("lost")).status for r in ("a", "b", "c")]
    assert [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED, RunStatus.RUNNING] == statuses
    assert [[1], [1], [1]] == [[a.attempt for a in store.list_attempts(r)] for r in "abc"]
    assert [1] == [c.calls for c in store.step_latency(bounds=LATENCY_BOUNDS)]
    assert 3 == sum(r.runs for r in store.run_stats())


class _KilledAtCommit:
    """A pooled connection whose server side is killed just before its transaction commits."""

    def __init__(self, connection: Any, server: ThrowawayPostgres) -> None:
        self._connection = connection
        self._server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._connection.transaction() as block:
            yield block
            assert self._server.terminate_connections() >= 1  # then COMMIT meets a dead socket


@pytest.mark.slow
def test_a_group_whose_connection_is_killed_at_commit_is_redone_alone(
    throwaway_postgres: ThrowawayPostgres,
    throwaway_postgres_ledger: str,
    monkeypatch: pytest.MonkeyPatch,
    grouped: Callable[..., list[BaseException | None]],
) -> None:
    """A real server kill during the group's COMMIT: each write, in doubt, is redone alone."""
    store = PostgresStore(throwaway_postgres_ledger)
    try:
        run, blobs = new_run("a")
        store.create_and_start(run, blobs)
        pool = store._db.pool
        real = pool.connection
        killed: list[int] = []

        @contextlib.contextmanager
        def connection(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with real(*args, **kwargs) as conn:
                if killed:
                    yield conn
                    return
                killed.append(1)
                yield _KilledAtCommit(conn, throwaway_postgres)

        monkeypatch.setattr(pool, "connection", connection)
        outcome, _ = outcome_of()
        fresh = [new_run(r)[0] for r in ("b", "c")]
        outcomes = grouped(
            store,
            [
                lambda: store.end_run("a", 1, ENDED, outcome, [step("a", 1)[0]], [], epoch=1),
                lambda: store.create_and_start(fresh[0], []),
                lambda: store.create_and_start(fresh[1], []),
            ],
        )
        monkeypatch.undo()
        assert ([None, None, None], [1]) == (outcomes, killed)
        assert store.reconnects >= 1
        statuses = [(store.get_run(r) or pytest.fail("lost")).status for r in "abc"]
        assert [RunStatus.SUCCEEDED, RunStatus.RUNNING, RunStatus.RUNNING] == statuses
        assert [[1], [1], [1]] == [[a.attempt for a in store.list_attempts(r)] for r in "abc"]
        assert [1] == [s.seq for s in store.load_steps("a")]
    finally:
        store.close()


class _Cursor:
    """A cursor that applies every statement it is sent (one row of ones each)."""

    def __init__(self, log: list[object]) -> None:
        self._log = log
        self._results: list[list[tuple[int]]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def executemany(self, _sql: str, rows: list[tuple[object]], *, returning: bool) -> None:
        assert returning
        time.sleep(0.001)  # a round trip: the next writes queue up meanwhile
        self._log.extend(row[0] for row in rows)
        self._results = [[(1,)] for _ in rows]

    def fetchall(self) -> list[tuple[int]]:
        return self._results[0]

    def nextset(self) -> bool:
        self._results.pop(0)
        return bool(self._results)


class _Connections:
    """The part of ``Connections`` a group committer uses, with no server behind it."""

    # The committer's cursors (psycopg.RawCursor(connection)) are the fake connection's.
    psycopg = types.SimpleNamespace(
        Error=psycopg.Error, RawCursor=lambda connection: connection.cursor()
    )

    def __init__(self) -> None:
        self.target = type("Target", (), {"pool_timeout": 5.0, "pool_max_size": 8})()
        self.grouped: list[object] = []
        self.alone: list[object] = []
        self.pool = self

    @contextlib.contextmanager
    def connection(self, timeout: float) -> Iterator[Any]:
        del timeout
        log = self.grouped
        yield type(
            "Conn",
            (),
            {
                "transaction": staticmethod(contextlib.nullcontext),
                "cursor": staticmethod(lambda: _Cursor(log)),
            },
        )()

    def ensure_open(self) -> None:
        return None

    def run(self, work: Callable[[Any, bool], Any], what: str, **_: Any) -> Any:
        del what
        make_put_off()  # as Connections.run: a write put off first
        time.sleep(0.001)  # a round trip
        return work(None, False)


def test_under_contention_each_write_is_written_once_and_every_caller_answered() -> None:
    """32 threads writing at once: each write lands once (grouped or alone), none waits on."""
    from seawall.ledger._postgres_group import GroupCommitter

    connections = _Connections()
    committer = GroupCommitter(connections)  # type: ignore[arg-type]

    def writer(base: int) -> None:
        for i in range(base, base + 50):
            committer.run(lambda _conn, _doubt, i=i: connections.alone.append(i), "w", "S", (i,))

    threads = [threading.Thread(target=writer, args=(t * 1000,)) for t in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    written = connections.grouped + connections.alone
    assert sorted(written) == sorted(t * 1000 + i for t in range(32) for i in range(50))
    assert committer.groups > 0
    # Every lead was given back: a lead handed twice to one waiting write was lost, and once
    # all were lost, no write would ever commit again.
    assert committer._leaders == 0


def test_a_leader_whose_write_another_leader_took_waits_for_that_group() -> None:
    """Two writers both lead; the second takes both writes: the first is answered by its group."""
    from seawall.ledger._postgres_group import GroupCommitter

    connections = _Connections()
    committer = GroupCommitter(connections)  # type: ignore[arg-type]
    real_lead = committer._lead
    paused, resume = threading.Event(), threading.Event()
    leads: list[int] = []

    def lead() -> None:
        leads.append(1)
        if len(leads) == 1:  # the first leader stops before taking its group
            paused.set()
            resume.wait()
        real_lead()

    committer._lead = lead  # type: ignore[method-assign]
    outcomes: list[object] = []

    def write(i: int) -> None:
        outcomes.append(committer.run(lambda *_: connections.alone.append(i), "w", "S", (i,)))

    first = threading.Thread(target=write, args=(1,))
    first.start()
    paused.wait()
    second = threading.Thread(target=write, args=(2,))
    second.start()
    second.join()  # it led a group of both writes
    resume.set()
    first.join()
    assert ([None, None], [1, 2], []) == (outcomes, sorted(connections.grouped), connections.alone)


def test_a_batch_call_that_reads_after_its_write_has_it_made_first(store: PostgresStore) -> None:
    """The write put off is made alone before the call's read: the read sees it."""
    runs = [new_run(r)[0] for r in ("a", "b", "c")]

    def open_then_read() -> object:
        store.create_and_start(runs[0], [])
        return (store.get_run("a") or pytest.fail("the write put off was not made")).status

    before = (store._group.groups, store._group.grouped)
    outcomes = store.batch(
        [
            open_then_read,
            lambda: store.create_and_start(runs[1], []),
            lambda: store.create_and_start(runs[2], []),
        ]
    )
    assert [(RunStatus.RUNNING, None), (None, None), (None, None)] == outcomes
    assert (before[0] + 1, before[1] + 2) == (store._group.groups, store._group.grouped)
    assert [[1], [1], [1]] == [[a.attempt for a in store.list_attempts(r)] for r in "abc"]


def test_a_batch_call_with_two_writes_makes_them_in_order(store: PostgresStore) -> None:
    """A call's second write makes its first before it: the end finds the run it ends."""
    run, _ = new_run("a")
    outcome, _ = outcome_of()

    def open_and_end() -> None:
        store.create_and_start(run, [])
        store.end_run("a", 1, ENDED, outcome, [step("a", 1)[0]], [], epoch=1)

    assert [(None, None)] == store.batch([open_and_end])
    assert RunStatus.SUCCEEDED == (store.get_run("a") or pytest.fail("lost")).status
    assert [1] == [s.seq for s in store.load_steps("a")]


def test_a_batch_call_failing_after_its_write_keeps_the_write_and_its_error(
    store: PostgresStore,
) -> None:
    """As without a batch: the write was made, and the call's own error is its caller's."""
    runs = [new_run(r)[0] for r in ("a", "b")]

    def open_then_fail() -> None:
        store.create_and_start(runs[0], [])
        raise seawall.LedgerError("failed after its write")

    outcomes = store.batch([open_then_fail, lambda: store.create_and_start(runs[1], [])])
    assert [seawall.LedgerError, None] == [None if e is None else type(e) for _, e in outcomes]
    assert [RunStatus.RUNNING, RunStatus.RUNNING] == [
        (store.get_run(r) or pytest.fail("lost")).status for r in "ab"
    ]


def test_a_batch_of_many_calls_is_one_group_each_write_once() -> None:
    """200 calls: one group commit of every write put off, none made alone."""
    from seawall.ledger._postgres_group import GroupCommitter

    connections = _Connections()
    committer = GroupCommitter(connections)  # type: ignore[arg-type]
    calls = [
        lambda i=i: committer.run(lambda *_: connections.alone.append(i), "w", "S", (i,))
        for i in range(200)
    ]
    outcomes = committer.batch(calls)
    assert [(None, None)] * 200 == outcomes
    assert (list(range(200)), [], 1) == (connections.grouped, connections.alone, committer.groups)


def test_64_concurrent_runs_commit_their_starts_and_ends_in_batches(postgres_url: str) -> None:
    """The event loop's runs hand their writes over in groups: far fewer commits than writes."""
    name = new_schema_name("pgb")
    app = seawall.Seawall(with_schema(postgres_url, name))
    try:

        @app.agent(name="one")
        async def one(ctx: Any, i: int) -> int:
            del ctx
            return i

        async def main() -> list[seawall.RunResult]:
            return await asyncio.gather(*(app.arun("one", i=i) for i in range(64)))

        results = asyncio.run(main())
        assert list(range(64)) == [r.output for r in results]
        store: Any = app.store
        assert {RunStatus.SUCCEEDED} == {r.status for r in app.ledger.runs(limit=100)}
        assert store._group.grouped >= 64  # at least half the 128 writes went in groups
        assert store._group.groups <= store._group.grouped // 4
        assert app.runtime.io.hops < 64  # a hand-off per group, not per write
    finally:
        app.close()
        drop_schema(postgres_url, name)
