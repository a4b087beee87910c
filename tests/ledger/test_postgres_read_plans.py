"""A read is planned for its parameters and the statistics of the day, never kept prepared.

psycopg prepares a statement run five times on a connection, and PostgreSQL may then keep one
generic plan for it as long as the connection lives, made with the statistics of that moment. A
long-lived reader (the dashboard, a sweeper) would go on scanning a ledger it first saw young:
an ``ANALYZE`` that leaves the table's size as it was does not invalidate the plan. Here
``runs`` holds five recent runs and 20,000 older ones, and a 50-minute ``run_stats`` is read a
dozen times while index scans are off (standing in for the statistics of a young ledger,
under which the audit saw this read scan 100,000 runs for 72), then they are on again and
``runs`` is analysed. The store's next read (its plan read on the store's own connection with
``auto_explain``) must find its five runs by the start-time index; the same statement kept
prepared on another connection still scans the table: the trap was set.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.sql

from seawall.ledger import open_store
from seawall.ledger._dialect import POSTGRES
from seawall.ledger._queries import run_stats
from tests.ledger.plans import (
    copy_rows,
    explain_store,
    range_reads,
    spending_runs,
    table_scans,
)
from tests.ledger.rows import new_run
from tests.postgres_schemas import with_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

OLD = 20_000
READS = 12


def _rows_read(plan: dict[str, Any]) -> int:
    """The rows the scans of runs in ``plan`` produced or filtered out."""
    return sum(
        int(scan["Actual Rows"]) * int(scan.get("Actual Loops", 1))
        + int(scan.get("Rows Removed by Filter", 0))
        for scan in table_scans(plan)
    )


_SCANS_ONLY = ("SET enable_indexscan = off", "SET enable_bitmapscan = off")
_ANY_PLAN = ("RESET enable_indexscan", "RESET enable_bitmapscan")


def _on(conn: psycopg.Connection[Any]) -> Callable[[Sequence[str]], None]:
    def run(settings: Sequence[str]) -> None:
        for setting in settings:
            conn.execute(setting)

    return run


def _on_store(store: Any) -> Callable[[Sequence[str]], None]:
    def run(settings: Sequence[str]) -> None:
        def apply(conn: psycopg.Connection[Any], _doubt: bool) -> None:
            for setting in settings:
                conn.execute(setting)

        store._db.run(apply, "settings", transaction=False)

    return run


def test_a_read_is_planned_with_todays_statistics_not_kept_prepared(
    postgres_url: str, schema: str
) -> None:
    url = with_schema(postgres_url, schema) + "&pool_min_size=1&pool_max_size=1"
    store = open_store(url)
    plans: list[dict[str, Any]] = []

    now = time.time()
    try:
        for i in range(5):
            store.create_run(*new_run(f"young{i}", start=now))
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"SET search_path TO {schema}")
            admin.execute("ALTER TABLE runs SET (autovacuum_enabled = false)")
            admin.execute("ANALYZE runs")
            copy_rows(
                admin,
                "runs",
                "young0",
                OLD,
                {"run_id": "'old' || g", "start_time": "t.start_time - 86400 - g"},
            )
            admin.execute("VACUUM runs")

            since = now - 3000  # not on the hour: read from runs, not the counts
            sql, params = run_stats(POSTGRES, since, None, None, None)
            with psycopg.connect(url.split("?")[0], autocommit=True) as kept:
                kept.execute(f"SET search_path TO {schema}")
                explain_store(store, plans)
                for conn_run in (_on(kept), _on_store(store)):
                    conn_run(_SCANS_ONLY)
                for _ in range(READS):
                    kept.execute(sql, params, prepare=True).fetchall()
                    assert 5 == sum(s.runs for s in store.run_stats(since=since))
                for conn_run in (_on(kept), _on_store(store)):
                    conn_run(_ANY_PLAN)
                admin.execute("ANALYZE runs")
                plans.clear()
                assert 5 == sum(s.runs for s in store.run_stats(since=since))

                [name] = [
                    row[0]
                    for row in kept.execute("SELECT name FROM pg_prepared_statements").fetchall()
                ]
                values = ", ".join(psycopg.sql.Literal(p).as_string(kept) for p in params)
                row = kept.execute(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}({values})"
                ).fetchone()
                assert row is not None
                control = row[0][0]["Plan"]
    finally:
        store.close()

    assert _rows_read(control) > OLD, "the kept plan does not scan runs: the trap is not set"
    [plan] = plans
    assert _rows_read(plan) <= 10, plan
    assert all(scan.get("Index Name") for scan in table_scans(plan))


RUNS = 20_000
SPACING = 130.0
"""Seconds between the start of one old run and the next: 20,000 runs over 30 days."""


def _copies(conn: psycopg.Connection[Any], template: str) -> None:
    """``RUNS`` copies of run ``template`` (``old1``...) and its steps, each older by SPACING."""
    older = {"run_id": "'old' || g", "start_time": f"t.start_time - {SPACING} * g"}
    copy_rows(conn, "runs", template, RUNS, older)
    copy_rows(conn, "steps", template, RUNS, {"run_id": "'old' || g"})


def test_a_range_of_runs_reads_the_steps_of_those_runs_only(postgres_url: str, schema: str) -> None:
    """Usage by model and step latency of a day and a half read that range's steps by key.

    PostgreSQL cannot estimate the tests on a step's stored bytes and took them for rare: a
    plain join of steps and runs scanned every step ever recorded (here 20,001, each probing
    its run) for the 1,000 runs of the range.
    """
    spending_runs(with_schema(postgres_url, schema), 1)
    now = time.time()
    since = now - 1000 * SPACING - SPACING / 2  # not on the hour: latency from the steps
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        [(template,)] = conn.execute("SELECT run_id FROM runs").fetchall()
        _copies(conn, template)
        [(per_run,)] = conn.execute(
            "SELECT count(*) FROM steps WHERE run_id = %s", (template,)
        ).fetchall()
        conn.execute("ANALYZE")
        for sql, params in range_reads(POSTGRES, since):
            [(explained,)] = conn.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params
            ).fetchall()
            steps = list(table_scans(explained[0]["Plan"], "steps"))
            assert steps, "the steps table is not read"
            assert all(scan["Node Type"] != "Seq Scan" for scan in steps), sql
            read = sum(int(s["Actual Rows"]) * int(s["Actual Loops"]) for s in steps)
            assert read <= 1001 * per_run, f"{read} steps read for 1,001 runs"


def test_the_retried_runs_are_listed_from_their_own_index(postgres_url: str, schema: str) -> None:
    """The runs page filtered on retried runs reads those runs, not every run (migration 16)."""
    from seawall.ledger import RunQuery
    from seawall.ledger._queries import list_runs

    store = open_store(with_schema(postgres_url, schema))
    try:
        store.create_run(*new_run("template", start=time.time()))
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        _copies(conn, "template")
        retried = ("old17000", "old18000", "old19000")  # the newest of them 25 days old
        conn.execute("UPDATE runs SET attempts = 2 WHERE run_id = ANY(%s)", (list(retried),))
        conn.execute("ANALYZE runs")
        sql, params = list_runs(RunQuery(retried=True, limit=51), POSTGRES)
        [(explained,)] = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchall()
        [found] = conn.execute(f"SELECT count(*) FROM ({sql}) listed", params).fetchall()
    scans = list(table_scans(explained[0]["Plan"]))
    assert [("runs_retried", 3)] == [(s.get("Index Name"), _rows_read(s)) for s in scans]
    assert (3,) == found
