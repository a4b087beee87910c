"""A worker's claim reads the runs table by the run's key, whatever PostgreSQL's statistics say.

The claim (``claim_and_start``, one statement) is prepared on each worker connection, and its
generic plan is made once, often while ``runs`` is young. With a young table's statistics the
planner drove the claim's ``UPDATE`` from the agent's index and filtered every run of the
agent, so a claim cost more the longer the ledger (by the end of 6,000 runs in bench_celery,
6,000 index entries and 4-6 ms a claim). Here ``runs`` is analysed while it holds five runs whose agents the statistics
call distinct, 2,000 more are queued behind them, and the generic plan of the claim is read
with ``EXPLAIN ANALYZE`` (rolled back). A control statement with a plain agent test shows the
trap is set: the planner takes the agent's index for it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.sql

from seawall.ledger import open_store
from seawall.ledger._dialect import POSTGRES
from seawall.ledger._lease_writes import _claim_in_one
from tests.ledger.plans import copy_rows, table_scans
from tests.ledger.test_claim_contract import queue
from tests.postgres_schemas import with_schema

if TYPE_CHECKING:
    from collections.abc import Sequence

QUEUED = 2000


def _generic_plan(conn: psycopg.Connection[Any], sql: str, params: Sequence[object]) -> Any:
    """The executed generic plan of ``sql`` (``$n`` placeholders) with ``params``; rolled back."""
    conn.execute("DEALLOCATE ALL")
    conn.execute(f"PREPARE probe AS {sql}")
    values = ", ".join(psycopg.sql.Literal(p).as_string(conn) for p in params)
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe({values})").fetchone()
    assert row is not None
    return row[0][0]["Plan"]


def test_the_claim_reads_runs_by_key_with_a_young_tables_statistics(
    postgres_url: str, schema: str
) -> None:
    store = open_store(with_schema(postgres_url, schema))
    try:
        for i in range(5):
            queue(store, f"young{i}")
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("ALTER TABLE runs SET (autovacuum_enabled = false)")
        conn.execute("ALTER TABLE runs ALTER COLUMN agent SET (n_distinct = -1)")
        conn.execute("ANALYZE runs")
        copy_rows(conn, "runs", "young0", QUEUED, {"run_id": "'queued' || g"})
        target, now = f"queued{QUEUED // 2}", time.time()

        control = _generic_plan(
            conn,
            "UPDATE runs SET updated_at = $3 WHERE run_id = $1 AND agent IN ($2)",
            (target, "agent", now),
        )
        [trap] = list(table_scans(control))
        assert trap.get("Index Name") != "runs_pkey", "the trap is not set: nothing to prove"
        assert trap["Rows Removed by Filter"] >= QUEUED

        params = (target, now, "worker", now + 2, now, target, now, "agent", now, "worker")
        plan = _generic_plan(conn, _claim_in_one(POSTGRES, 1), params)
        scans = list(table_scans(plan))
        assert 2 == len(scans)  # the lock of the run (was), and its update (claimed)
        assert [("runs_pkey", 0)] * 2 == [
            (scan.get("Index Name"), scan.get("Rows Removed by Filter", 0)) for scan in scans
        ]
        assert [1, 1] == [scan["Actual Rows"] for scan in scans]
