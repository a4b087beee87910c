"""The PostgreSQL ledger's cost per journaled step, next to SQLite and raw psycopg, in one run.

Rows (each ``(system, N)`` in a fresh process, interleaved rounds; the workload is bench_core's):

- ``baseline``: a plain call per step;
- ``seawall_sqlite_read`` / ``seawall_sqlite_write``: read-only and mutating ``ctx.call`` on the
  SQLite ledger (``crash`` level);
- ``seawall_pg_read`` / ``seawall_pg_write``: the same on the PostgreSQL ledger;
- ``psycopg_insert_commit``: a hand-written journal on the same server: one ``INSERT`` of the
  step's JSON and its commit per step (psycopg 3, autocommit) -- the floor a mutating step's
  durable write sits on (Seawall writes twice per mutating step: its intent and its result).

Each PostgreSQL worker uses a schema of its own and drops it. With PostgreSQL down the rows are
skipped with the reason. The server: ``$SEAWALL_BENCH_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``).

Usage::

    python -m benchmarks.bench_postgres            # 5 rounds, N=200 and 2000
    python -m benchmarks.bench_postgres --quick    # 1 round, N=200
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Result,
    WorkerFn,
    WorkerUnavailableError,
    interleaved,
    print_table,
    summarize,
    worker_main,
)
from benchmarks.peers import WORKERS as PEER_WORKERS
from benchmarks.peers import step_body

MODULE = "benchmarks.bench_postgres"
WARMUP_STEPS = 20
SERVER = os.environ.get("SEAWALL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    """A fresh schema name on the server, dropped afterwards (skip the row when it is down)."""
    import psycopg

    name = f"sw_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreachable"
        raise WorkerUnavailableError(f"PostgreSQL is not reachable at {SERVER}: {first}") from exc
    try:
        yield name
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.close()


def _seawall_worker(backend: str, mutating: bool) -> WorkerFn:
    def worker(n: int, workdir: Path) -> Result:
        from seawall import Guards, Seawall

        with contextlib.ExitStack() as stack:
            if backend == "postgres":
                url = f"{SERVER}?schema={stack.enter_context(_schema())}"
            else:
                url = f"sqlite:///{workdir / 'ledger.db'}"
            t0 = time.perf_counter()
            app = Seawall(url)
            stack.callback(app.close)
            tool = app.tool(name="step", mutating=mutating)(step_body)

            @app.agent(name="workflow", guards=Guards(max_mutations_without_gate=None))
            def workflow(ctx: Any, steps: int) -> object:
                out: object = None
                for i in range(steps):
                    out = ctx.call(tool, i)
                return out

            setup_s = time.perf_counter() - t0
            app.run(workflow, steps=WARMUP_STEPS).raise_for_status()
            start = time.perf_counter()
            result = app.run(workflow, steps=n).raise_for_status()
            us = (time.perf_counter() - start) * 1e6 / n
            rows = len(app.ledger.steps(result.run_id))
        return {"us_per_step": us, "setup_s": setup_s, "journal_rows": rows}

    return worker


def psycopg_insert_commit(n: int, _workdir: Path) -> Result:
    """Raw psycopg: one INSERT (autocommit: its own commit) of the step's JSON per step."""
    import psycopg

    with _schema() as schema, psycopg.connect(SERVER, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.steps (run_id TEXT, seq INTEGER, output BYTEA, "
            "PRIMARY KEY (run_id, seq))"
        )
        insert = f"INSERT INTO {schema}.steps VALUES (%s, %s, %s)"
        setup_s = time.perf_counter() - t0

        def workflow(steps: int, run_id: str) -> None:
            for i in range(steps):
                out = step_body(i)
                conn.execute(insert, (run_id, i, json.dumps(out).encode()))

        workflow(WARMUP_STEPS, "warmup")
        start = time.perf_counter()
        workflow(n, "timed")
        us = (time.perf_counter() - start) * 1e6 / n
        row = conn.execute(f"SELECT count(*) FROM {schema}.steps WHERE run_id = 'timed'")
        rows = (row.fetchone() or (0,))[0]
    return {"us_per_step": us, "setup_s": setup_s, "journal_rows": rows}


WORKERS: dict[str, WorkerFn] = {
    "baseline": PEER_WORKERS["baseline"],
    "seawall_sqlite_read": _seawall_worker("sqlite", mutating=False),
    "seawall_sqlite_write": _seawall_worker("sqlite", mutating=True),
    "seawall_pg_read": _seawall_worker("postgres", mutating=False),
    "seawall_pg_write": _seawall_worker("postgres", mutating=True),
    "psycopg_insert_commit": psycopg_insert_commit,
}
SYSTEMS = tuple(WORKERS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rows and print the table and the ratios."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        return worker_main(WORKERS, args)
    quick = "--quick" in args
    rounds = 1 if quick else 5
    ns = (200,) if quick else (200, 2000)
    print(f"\nSeawall on PostgreSQL ({SERVER.rsplit('@', 1)[-1]}): per-step cost, rounds {rounds}")
    rows = summarize(interleaved(list(SYSTEMS), ns, rounds, MODULE, seed=3, log=None))
    print_table(sorted(rows, key=lambda r: (r["n"], SYSTEMS.index(r["system"]))))
    by = {(r["system"], r["n"]): r for r in rows}

    def med(system: str, n: int) -> float | None:
        value = by.get((system, n), {}).get("median_us")
        return None if value is None else float(value)

    for n in ns:
        pg_read, pg_write = med("seawall_pg_read", n), med("seawall_pg_write", n)
        raw = med("psycopg_insert_commit", n)
        if pg_read is None or pg_write is None or raw is None:
            status = by.get(("seawall_pg_read", n), {}).get("status", "no rows")
            print(f"  [skipped] N={n} PostgreSQL rows: {status}")
            continue
        base = med("baseline", n) or 0.0
        lite_read, lite_write = med("seawall_sqlite_read", n), med("seawall_sqlite_write", n)
        print(
            f"  [info] N={n} read-only step over a plain call: PostgreSQL {pg_read - base:.1f} us"
            + ("" if lite_read is None else f", SQLite {lite_read - base:.1f} us")
        )
        print(
            f"  [info] N={n} mutating step: PostgreSQL {pg_write:.0f} us = "
            f"{pg_write / raw:.2f}x one raw psycopg insert+commit ({raw:.0f} us)"
            + ("" if lite_write is None else f"; SQLite {lite_write:.0f} us")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
