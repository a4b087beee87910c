"""The ledger keeps its run counts and its text search index in the runs' own writes.

``run_counts`` (what ``/metrics`` and the overview sum) must always equal a ``GROUP BY`` over
the runs, however the runs changed: a plain run, retries, a failure into the dead-letter queue,
a redrive after a fix, a replay. ``run_stats`` over whole hours reads the counts; over a range
that does not start on an hour it counts the runs themselves: the two must agree. Text search
finds what a scan of the error messages finds, with or without the full-text index.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

from seawall import Context, Retry, RunStatus, Seawall, verify
from seawall.ledger import (
    LATENCY_BOUNDS,
    RunQuery,
    RunStats,
    SQLiteStore,
    StepLatency,
    open_store,
)
from seawall.ledger._counts_upkeep import COUNTERS, FOLDED_SLOT, all_zero
from seawall.ledger._dialect import SQLITE
from seawall.ledger.migrations import bundled
from seawall.testing import no_waits
from tests.ledger.rows import new_run

LEDGERS = ("sqlite", "postgres")
LATEST = bundled(SQLITE)[-1][0]


def _key(row: RunStats) -> tuple[object, ...]:
    return (
        row.agent,
        row.status,
        row.error_class,
        row.runs,
        row.retries,
        row.input_tokens,
        row.output_tokens,
        round(row.cost_usd, 9),
    )


def assert_counts_match(app: Seawall) -> None:
    """The kept counts equal a count of the runs themselves (since=0.5: not on an hour)."""
    counted = sorted(_key(r) for r in app.store.run_stats())
    scanned = sorted(_key(r) for r in app.store.run_stats(since=0.5))
    assert scanned == counted
    assert sum(r.runs for r in app.store.run_stats()) == len(app.ledger.runs(limit=1000))
    kept = app.store.step_latency(bounds=LATENCY_BOUNDS)
    scanned_calls = app.store.step_latency(bounds=LATENCY_BOUNDS, since=0.5)
    assert [_call(r) for r in scanned_calls] == [_call(r) for r in kept]


def _call(row: StepLatency) -> tuple[object, ...]:
    return (
        row.kind,
        row.name,
        row.calls,
        row.errors,
        row.retries,
        round(row.total_seconds, 6),
        row.cumulative,
    )


def test_counts_follow_runs_retries_redrives_and_replays(app: Seawall) -> None:
    """Every change of a run's status, attempts or usage moves it between the counts."""
    _retries_redrives_and_replays(app)


def _retries_redrives_and_replays(app: Seawall) -> None:
    """Runs retried, failed, redriven and replayed, with the counts checked at each stage."""
    fixed: set[str] = set()
    tries: dict[int, int] = {}

    @app.tool
    def lookup(n: int) -> int:
        if n == 2 and tries[n] < 2:
            raise ConnectionError("lookup failed")
        return n

    @app.agent(name="flaky", retry=Retry(attempts=3))
    def flaky(ctx: Context, n: int) -> int:
        tries[n] = tries.get(n, 0) + 1
        ctx.call(lookup, n)
        if tries[n] < 2:
            raise TimeoutError("slow upstream")
        ctx.record_usage(model="m", input_tokens=10 * n, output_tokens=n, cost_usd=0.01 * n)
        return n

    @app.agent(name="broken", retry=Retry(attempts=2))
    def broken(ctx: Context, n: int) -> int:
        if "broken" not in fixed:
            raise RuntimeError(f"bug number {n}")
        return n

    assert_counts_match(app)
    for n in range(1, 4):
        assert RunStatus.SUCCEEDED == app.run("flaky", n=n).status
    failed = [app.run("broken", n=n) for n in range(1, 3)]
    assert all(RunStatus.FAILED == r.status for r in failed)
    assert_counts_match(app)
    assert {("flaky", "succeeded", None, 3, 3), ("broken", "failed", "clean_abort", 2, 2)} == {
        (r.agent, r.status, r.error_class, r.runs, r.retries) for r in app.store.run_stats()
    }
    [calls] = app.store.step_latency(bounds=LATENCY_BOUNDS)
    assert ("lookup", 6, 1) == (calls.name, calls.calls, calls.errors)
    fixed.add("broken")
    assert ["succeeded", "succeeded"] == [o.status for o in app.dlq.redrive()]
    assert_counts_match(app)
    app.replay(failed[0].run_id)
    assert_counts_match(app)


def test_counts_follow_a_run_parked_for_a_person_then_approved(app: Seawall) -> None:
    """A run waiting for a person is counted with its calls; approved, it moves to succeeded."""

    @app.tool
    def draft(topic: str) -> str:
        return topic.upper()

    @app.agent(
        name="writer",
        verify=[verify.rule(lambda out: "!" in out, "needs review")],
        on_drift="handoff",
    )
    def writer(ctx: Context, topic: str) -> str:
        return str(ctx.call(draft, topic))

    parked = app.run("writer", topic="report")
    assert RunStatus.AWAITING_HUMAN == parked.status
    assert_counts_match(app)
    [handoff] = app.handoffs.list()
    assert RunStatus.SUCCEEDED == app.handoffs.approve(handoff.handoff_id, by="ana").status
    assert_counts_match(app)
    assert [("writer", "succeeded", 1)] == [
        (r.agent, r.status, r.runs) for r in app.store.run_stats()
    ]
    [calls] = app.store.step_latency(bounds=LATENCY_BOUNDS)
    assert ("draft", 1) == (calls.name, calls.calls)


def test_search_finds_what_a_scan_of_the_messages_finds(app: Seawall) -> None:
    """Any text, short or long, frequent or rare, odd characters included, finds the same runs."""

    @app.agent(name="failing", retry=Retry(attempts=1))
    def failing(ctx: Context, text: str) -> str:
        raise RuntimeError(text)

    messages = [
        "quota exhausted for account 7",
        "Quota 50% used_up",
        'a "quoted" ÉCHEC',
        "TimeoutError: slow",
    ] + [f"common failure {i}" for i in range(30)]
    for text in messages:
        app.run("failing", text=text)
    app.run("failing", text="no longer failing")
    for probe in (
        "quota",
        "QUOTA",
        "50%",
        "used_up",
        "_",
        '"quoted"',
        "échec",
        "ÉCHEC",
        "common",
        "failure 2",
        "zz",
        "nowhere to be found",
        "TimeoutError",
    ):
        found = {r.run_id for r in app.store.list_runs(RunQuery(search=probe, limit=1000))}
        expected = {
            r.run_id
            for r in app.ledger.runs(limit=1000)
            if r.error_message and probe.lower() in r.error_message.lower()
        }
        if probe == "échec":  # LIKE folds ASCII case only (SQLite), ILIKE all (PostgreSQL)
            assert found <= expected
            continue
        assert expected == found, probe


def test_an_existing_ledger_gets_its_counts_and_index_when_migrated(tmp_path: Path) -> None:
    """A ledger written before migration 14 is backfilled: counts and search see its runs."""
    path = tmp_path / "ledger.db"
    with Seawall(f"sqlite:///{path}") as app:

        @app.agent(name="a", retry=Retry(attempts=1))
        def a(ctx: Context, n: int) -> int:
            if n % 2:
                raise ValueError(f"odd input {n}")
            return n

        for n in range(6):
            app.run("a", n=n)
    db = sqlite3.connect(path)
    for name in ("run_counts", "step_counts", "runs_search"):
        db.execute(f"DROP TABLE {name}")
    for (trigger,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    ).fetchall():
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DELETE FROM seawall_meta WHERE version >= 14")
    db.commit()
    db.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert (13, LATEST) == (store.migrated_from, store.schema_version())
        assert {("a", "succeeded", 3), ("a", "failed", 3)} == {
            (r.agent, r.status, r.runs) for r in store.run_stats()
        }
        assert 3 == len(store.list_runs(RunQuery(search="odd input")))
    finally:
        store.close()


def test_step_counts_kept_by_0014s_triggers_go_on_with_0015s(tmp_path: Path) -> None:
    """Migration 15 re-creates step_counts' triggers: the counts go on where 0014's left them."""
    path = tmp_path / "ledger.db"
    with Seawall(f"sqlite:///{path}") as app:
        _retries_redrives_and_replays(app)
    [(_, _, first)] = [m for m in bundled(SQLITE) if m[0] == 14]
    db = sqlite3.connect(path)
    for name in ("step_counts_final", "step_counts_unfinal"):
        db.execute(f"DROP TRIGGER {name}")
        [trigger] = re.findall(rf"CREATE TRIGGER {name} .*?\nEND;", first, re.DOTALL)
        db.execute(trigger)
    db.execute("DELETE FROM seawall_meta WHERE version >= 15")  # and any later: a ledger at 14
    db.commit()
    db.close()
    with Seawall(f"sqlite:///{path}") as app:
        assert (14, LATEST) == (app.store.migrated_from, app.store.schema_version())
        whens = [
            sql.split("BEGIN", 1)[0]
            for (sql,) in sqlite3.connect(path).execute(
                "SELECT sql FROM sqlite_master WHERE name LIKE 'step_counts_%final'"
            )
        ]
        assert 2 == len(whens)
        assert all(" IN (" not in when and "OR OLD.status" in when for when in whens)
        assert_counts_match(app)
        counted = sum(r.calls for r in app.store.step_latency(bounds=LATENCY_BOUNDS))

        @app.tool
        def echo(n: int) -> int:
            return n

        @app.agent(name="later", retry=Retry(attempts=1))
        def later(ctx: Context, n: int) -> int:
            if not ctx.call(echo, n):
                raise ValueError("zero")
            return n

        failed = app.run("later", n=0)
        assert [RunStatus.FAILED, RunStatus.SUCCEEDED] == [
            failed.status,
            app.run("later", n=1).status,
        ]
        app.replay(failed.run_id)
        assert_counts_match(app)
        assert counted + 3 == sum(r.calls for r in app.store.step_latency(bounds=LATENCY_BOUNDS))


def test_reads_do_not_wait_for_a_writer_holding_the_connection(tmp_path: Path) -> None:
    """A page's read uses its own connection: it is answered while a write holds the store."""
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert isinstance(store, SQLiteStore)
    read: list[int] = []
    try:
        with store._write():  # this thread's write transaction holds the store's connection
            reader = threading.Thread(target=lambda: read.append(len(store.list_runs(RunQuery()))))
            reader.start()
            reader.join(timeout=5)
            assert [0] == read
    finally:
        store.close()


def _count_rows(app: Seawall) -> dict[str, tuple[int, int]]:
    """Each counters table's rows, and those a fold would take (zero, or in a writer's slot)."""
    store = app.store
    folded = 0 if store.dialect.serialized else FOLDED_SLOT  # type: ignore[attr-defined]
    found = {}
    for table, _key_columns, figures in COUNTERS:
        zero = all_zero(figures)
        sql = (
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN slot <> {folded} OR ({zero}) THEN 1 "
            f"ELSE 0 END), 0) FROM {table}"
        )
        [(rows, unfolded)] = store._fetchall(sql, (), "count counter rows")  # type: ignore[attr-defined]
        found[table] = (int(rows), int(unfolded))
    return found


def test_folding_the_counters_keeps_every_sum(app: Seawall) -> None:
    """compact_counts drops the rows netting to zero and folds slots; every read stays the same.

    The fold here takes the current hour too (the runtime folds only ended ones): the triggers
    must go on keeping the counts of runs that change after it, a retried and a redriven run.
    """
    _retries_redrives_and_replays(app)
    before = _count_rows(app)
    # SQLite: rows netting to zero (pending, running); PostgreSQL: rows in connections' slots.
    assert before["run_counts"][1] > 0, f"nothing to fold: {before}"
    folded = app.store.compact_counts(time.time() + 2 * 3600)
    after = _count_rows(app)
    assert folded > 0
    assert all(unfolded == 0 for _rows, unfolded in after.values()), after
    assert after["run_counts"][0] < before["run_counts"][0]
    assert_counts_match(app)
    assert 0 == app.store.compact_counts(time.time() + 2 * 3600)  # nothing left to fold

    again = app.run("flaky", n=4)
    assert RunStatus.SUCCEEDED == again.status, again.error
    assert RunStatus.SUCCEEDED == app.run("broken", n=5).status  # fixed before the redrive
    assert_counts_match(app)


def test_counters_folded_while_runs_change_keep_every_sum(postgres_url: str, schema: str) -> None:
    """PostgreSQL: folds racing the triggers of four connections lose and double nothing.

    Four writers, each on its own connection (so its own slot), flip the status of runs of
    three hours back and forth while another connection folds those hours again and again.
    Afterwards the counts must equal a count of the runs.
    """
    import psycopg

    from tests.postgres_schemas import with_schema

    url = with_schema(postgres_url, schema)
    now = time.time()
    starts = [now - 3 * 3600 + 3600 * (i % 3) for i in range(60)]
    with no_waits(), Seawall(url) as app:
        store = app.store
        for i, start in enumerate(starts):
            run, blobs = new_run(f"r{i:02d}", agent=f"agent{i % 2}", start=start)
            store.create_run(run, blobs)
        stop = threading.Event()
        flips = [0] * 4
        folds: list[int] = []
        errors: list[BaseException] = []

        def flip(writer: int) -> None:
            try:
                with psycopg.connect(postgres_url, autocommit=True) as conn:
                    conn.execute(f"SET search_path TO {schema}")
                    while not stop.is_set() or flips[writer] < 200:
                        run_id = f"r{(writer * 7 + flips[writer]) % 60:02d}"
                        conn.execute(
                            "UPDATE runs SET status = CASE status WHEN 'succeeded' "
                            "THEN 'failed' ELSE 'succeeded' END, attempts = attempts + 1 "
                            "WHERE run_id = %s",
                            (run_id,),
                        )
                        flips[writer] += 1
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

        writers = [threading.Thread(target=flip, args=(w,)) for w in range(4)]
        for thread in writers:
            thread.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline or len(folds) < 20:
            folds.append(store.compact_counts(now + 3600, since=now - 4 * 3600))
        stop.set()
        for thread in writers:
            thread.join(timeout=30)
        assert not errors, errors
        folds.append(store.compact_counts(now + 3600, since=now - 4 * 3600))
        assert sum(flips) >= 800
        assert sum(folds[:-1]) > 0, "no fold took a row while the writers ran"
        assert_counts_match(app)
        assert 60 == sum(r.runs for r in store.run_stats())


def test_a_fold_drops_a_key_whose_slots_cancel_and_sums_the_others(
    postgres_url: str, schema: str
) -> None:
    """PostgreSQL: a key whose slots cancel leaves no row; another becomes one folded row.

    The key's already folded row counts too: one that the new rows cancel goes. Hours outside
    the fold's range are left as they are.
    """
    from tests.postgres_schemas import with_schema

    seeded = [
        (10, "a", "running", "", FOLDED_SLOT, 3, 0, 0, 0, 0.0),
        (10, "a", "running", "", 5, -3, 0, 0, 0, 0.0),
        (10, "a", "succeeded", "", 0, 2, 1, 20, 2, 0.5),
        (10, "a", "succeeded", "", 9, 1, 0, 10, 1, 0.25),
        (12, "a", "running", "", 5, 0, 0, 0, 0, 0.0),
    ]
    store = open_store(with_schema(postgres_url, schema))
    try:
        insert = store._q(f"INSERT INTO run_counts VALUES ({', '.join('?' * 10)})")  # type: ignore[attr-defined]
        store._run(  # type: ignore[attr-defined]
            lambda conn, _doubt: conn.cursor().executemany(insert, seeded), "seed the counts"
        )
        assert 3 == store.compact_counts(11 * 3600, since=10 * 3600)  # the rows taken
        left = store._fetchall(  # type: ignore[attr-defined]
            "SELECT * FROM run_counts ORDER BY hour, status", (), "read the counts"
        )
    finally:
        store.close()
    assert [
        (10, "a", "succeeded", "", FOLDED_SLOT, 3, 1, 30, 3, 0.75),
        (12, "a", "running", "", 5, 0, 0, 0, 0, 0.0),
    ] == [tuple(row) for row in left]
