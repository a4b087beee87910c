"""Runs per second: single-step runs end to end, against raw floors measured in the same run.

What it measures (issue: throughput), each configuration in a fresh process with a fresh ledger,
interleaved rounds (see ``_harness``):

- ``sqlite_floor``: the raw SQLite floor of a run: three autocommit statements (insert the run,
  insert its step, update the run's end) on a WAL database at ``synchronous=NORMAL``;
- ``sqlite_run``: sequential ``app.run`` of a sync agent making one read-only call;
- ``sqlite_arun64``: ``app.arun`` of an async agent, 64 runs in flight at a time;
- ``pg_floor``: the same three statements on PostgreSQL (psycopg 3, autocommit), sequential;
- ``pg_run``: sequential ``app.run`` on the PostgreSQL ledger;
- ``pg_arun64``: ``app.arun``, 64 in flight, on the PostgreSQL ledger;
- ``pg_floor64``: the raw floor under ``pg_arun64``: psycopg's async connections (a pool of 8,
  as the ledger's) replaying, 64 runs in flight, the exact statements and transactions the
  store executed for one single-step run (traced), with no Seawall code in the way;
- ``pg_floor_grouped``: those statements for 64 runs at a time on one connection: each write
  of the 64 runs in one transaction, each statement sent for all of them at once (psycopg's
  pipelined ``executemany``): the floor of the store's group commit, one group at a time;
- ``in_flight_10k``: 10,000 async runs in flight at once (each awaits an event), peak RSS.

And two floors of our own, to show what the goals leave to Python (printed with the goals):

- ``sqlite_ledger_sql``: the statements the SQLite store executes for one single-step run,
  captured from a real run and replayed with raw ``sqlite3`` (new run ids), nothing else: the
  cost of the ledger's own schema (its indexes and the dashboard's counting triggers);
- ``sync_hops``: the thread hand-offs of a sync ``app.run`` with no work in them (the calling
  thread -> the app's loop -> an agent thread -> the loop -> the calling thread).

And what a sync tool's hop to a thread and back costs with 64 in flight, on Seawall's tool
threads (``tool_hop64``) and on a ``ThreadPoolExecutor`` of the same size
(``tool_hop64_executor``), which they replace.

The PostgreSQL rows running many runs at once also note the CPU per run, this process's and the
server's (when it runs on this machine: read from ``/proc``), and print the runs per second the
machine's CPUs could do at that cost, busy all the time: what the goal leaves to gain here.

It also counts, for one single-step run on SQLite, the statements the store executed, the
transactions it committed and the rows it read back (the goal: two commits, no re-read).

PostgreSQL rows use a schema of their own on ``$SEAWALL_BENCH_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and are skipped with the reason when it is away.

Usage::

    python -m benchmarks.bench_throughput            # 3 rounds
    python -m benchmarks.bench_throughput --quick    # 1 round, fewer runs
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Result,
    WorkerFn,
    WorkerUnavailableError,
    interleaved,
    peak_rss_mb,
    print_table,
    summarize,
    worker_main,
)

MODULE = "benchmarks.bench_throughput"
SERVER = os.environ.get("SEAWALL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CONCURRENCY = 64
WARMUP = 50


def _server_cpu_s() -> float | None:
    """CPU seconds the PostgreSQL processes of this machine used so far (``None``: not seen).

    Read from ``/proc``: the server's processes and the backends it reaped (``cutime``). Only a
    server on this machine, visible to this user, is measured; the bench's runs are the only
    work it is given meanwhile.
    """
    total, seen = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.find("(") + 1 : text.rfind(")")] != "postgres":
            continue
        fields = text[text.rfind(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        seen = True
    return total / os.sysconf("SC_CLK_TCK") if seen else None


@contextlib.contextmanager
def _cpu(n: int, result: Result) -> Iterator[None]:
    """Note in ``result`` the CPU per run of the block: this process's, and the server's."""
    server, client = _server_cpu_s(), time.process_time()
    yield
    result["cpu_us"] = (time.process_time() - client) * 1e6 / n
    after = _server_cpu_s()
    if server is not None and after is not None:
        result["server_cpu_us"] = (after - server) * 1e6 / n


def _body(i: int) -> dict[str, Any]:
    return {"i": i, "text": "x" * 80}


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    """A fresh schema on the benchmark server, dropped after."""
    try:
        import psycopg
    except ImportError as exc:
        message = "psycopg is not installed (pip install 'seawall[postgres]')"
        raise WorkerUnavailableError(message) from exc
    name = f"bench_{uuid.uuid4().hex[:12]}"
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


def _app(url: str) -> Any:
    from seawall import Seawall

    app = Seawall(url)
    read = app.tool(name="lookup")(_body)

    @app.agent(name="one_step")
    def one_step(ctx: Any, i: int) -> object:
        return ctx.call(read, i)

    @app.agent(name="one_step_async")
    async def one_step_async(ctx: Any, i: int) -> object:
        return await ctx.call(read, i)

    return app


def _sequential(url: str, n: int) -> Result:
    app = _app(url)
    try:
        for i in range(WARMUP):
            app.run("one_step", i=i).raise_for_status()
        start = time.perf_counter()
        for i in range(n):
            app.run("one_step", i=i)
        elapsed = time.perf_counter() - start
    finally:
        app.close()
    return {"us_per_step": elapsed * 1e6 / n, "runs_per_s": n / elapsed, "rss_mb": peak_rss_mb()}


async def _at64(count: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Seconds to await ``one(i)`` for each ``i < count``, CONCURRENCY at a time.

    CONCURRENCY coroutines take the numbers in turn. (A task per number waiting on a semaphore
    cost the driver itself about 7 us an item here: waking and unlinking thousands of waiters.)
    """
    numbers = iter(range(count))

    async def worker() -> None:
        for i in numbers:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - start


def _concurrent(url: str, n: int) -> Result:
    app = _app(url)

    def drive(count: int) -> Awaitable[float]:
        return _at64(count, lambda i: app.arun("one_step_async", i=i))

    cpu: Result = {}
    try:
        asyncio.run(drive(WARMUP))
        with _cpu(n, cpu):
            elapsed = asyncio.run(drive(n))
    finally:
        app.close()
    return {
        "us_per_step": elapsed * 1e6 / n,
        "runs_per_s": n / elapsed,
        "rss_mb": peak_rss_mb(),
        **cpu,
    }


def sqlite_floor(n: int, workdir: Path) -> Result:
    """Three autocommit statements per run on a WAL database (synchronous=NORMAL)."""
    db = sqlite3.connect(str(workdir / "floor.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, status TEXT, input BLOB, output BLOB, "
        "start_time REAL, end_time REAL)"
    )
    db.execute(
        "CREATE TABLE steps (run_id TEXT, seq INTEGER, response BLOB, PRIMARY KEY (run_id, seq))"
    )
    payload = b'{"i": 1, "text": "' + b"x" * 80 + b'"}'
    start = time.perf_counter()
    for i in range(n):
        run_id = f"{i:032x}"
        db.execute(
            "INSERT INTO runs VALUES (?, 'running', ?, NULL, ?, NULL)",
            (run_id, payload, time.time()),
        )
        db.execute("INSERT INTO steps VALUES (?, 1, ?)", (run_id, payload))
        db.execute(
            "UPDATE runs SET status = 'succeeded', output = ?, end_time = ? WHERE run_id = ?",
            (payload, time.time(), run_id),
        )
    elapsed = time.perf_counter() - start
    db.close()
    return {"us_per_step": elapsed * 1e6 / n, "runs_per_s": n / elapsed, "rss_mb": peak_rss_mb()}


def pg_floor(n: int, _workdir: Path) -> Result:
    """The same three statements on PostgreSQL (autocommit: a commit each)."""
    import psycopg

    with _schema() as schema, psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.runs (run_id TEXT PRIMARY KEY, status TEXT, input BYTEA, "
            "output BYTEA, start_time DOUBLE PRECISION, end_time DOUBLE PRECISION)"
        )
        conn.execute(
            f"CREATE TABLE {schema}.steps (run_id TEXT, seq INTEGER, response BYTEA, "
            "PRIMARY KEY (run_id, seq))"
        )
        payload = b'{"i": 1, "text": "' + b"x" * 80 + b'"}'
        start = time.perf_counter()
        for i in range(n):
            run_id = f"{i:032x}"
            conn.execute(
                f"INSERT INTO {schema}.runs VALUES (%s, 'running', %s, NULL, %s, NULL)",
                (run_id, payload, time.time()),
            )
            conn.execute(f"INSERT INTO {schema}.steps VALUES (%s, 1, %s)", (run_id, payload))
            conn.execute(
                f"UPDATE {schema}.runs SET status = 'succeeded', output = %s, end_time = %s "
                "WHERE run_id = %s",
                (payload, time.time(), run_id),
            )
        elapsed = time.perf_counter() - start
    return {"us_per_step": elapsed * 1e6 / n, "runs_per_s": n / elapsed, "rss_mb": peak_rss_mb()}


class _Recorder:
    """A psycopg connection that notes the statements run on it (``pg_floor64``'s trace)."""

    def __init__(self, conn: Any, notes: list[tuple[str, str, Any]]) -> None:
        self._conn, self._notes = conn, notes

    def execute(self, sql: Any, params: Any = None) -> Any:
        self._notes.append(("one", sql, params))
        return self._conn.execute(sql, params)

    @contextlib.contextmanager
    def cursor(self) -> Iterator[Any]:
        notes = self._notes

        class Many:
            rowcount = 0

            def executemany(self, sql: Any, rows: Any) -> None:
                notes.append(("many", sql, list(rows)))
                with real_cursor as cur:
                    cur.executemany(sql, rows)
                    self.rowcount = cur.rowcount

        real_cursor = self._conn.cursor()
        yield Many()


def _trace(url: str) -> tuple[str, list[tuple[bool, list[tuple[str, str, Any]]]]]:
    """The writes (transaction or not, statements) the store makes for one single-step run."""
    from seawall.ledger import _pg_writes as pg_writes

    app = _app(url)
    execute = pg_writes.execute

    def raw(conn: Any, sql: str, params: Any) -> Any:
        """The store's raw-cursor statements (numbered placeholders), noted as ``raw``."""
        if isinstance(conn, _Recorder):
            conn._notes.append(("raw", sql, params))  # noqa: SLF001 - the trace's own notes
            return execute(conn._conn, sql, params)  # noqa: SLF001
        return execute(conn, sql, params)

    pg_writes.execute = raw  # type: ignore[assignment]
    try:
        app.run("one_step", i=0).raise_for_status()
        store, ops = app.store, []
        write = store._run  # noqa: SLF001 - the trace taps the store's unit of work

        def traced(work: Any, what: str, **options: Any) -> Any:
            notes: list[tuple[str, str, Any]] = []
            ops.append((options.get("transaction", True), notes))
            return write(lambda conn, doubt: work(_Recorder(conn, notes), doubt), what, **options)

        store._run = traced  # noqa: SLF001
        # A one-statement write, grouped by the store, is traced as the write it is alone.
        store._statement = lambda work, what, _sql, _params: traced(  # noqa: SLF001
            work, what, durable=True, transaction=False
        )
        run_id = app.run("one_step", i=1).raise_for_status().run_id
    finally:
        pg_writes.execute = execute  # type: ignore[assignment]
        app.close()
    # The run's own writes (an occasional breaker flush, say, is not one run's cost).
    return run_id, [op for op in ops if any(_renamed(p, run_id, "") != p for _, _, p in op[1])]


def pg_floor64(n: int, _workdir: Path) -> Result:
    """The store's own statements for a run, replayed by raw async psycopg, 64 runs in flight."""
    from psycopg import AsyncRawCursor
    from psycopg_pool import AsyncConnectionPool

    with _schema() as schema:
        url = f"{SERVER}?schema={schema}"
        traced_id, ops = _trace(url)
        conninfo = f"{SERVER}?options=-csearch_path%3D{schema}"

        async def drive(start: int, count: int) -> float:
            async with AsyncConnectionPool(
                conninfo, min_size=8, max_size=8, kwargs={"autocommit": True}
            ) as pool:
                gate = asyncio.Semaphore(CONCURRENCY)

                async def statement(conn: Any, kind: str, sql: str, params: Any) -> None:
                    if kind == "one":
                        await conn.execute(sql, params)
                    elif kind == "raw":
                        await AsyncRawCursor(conn).execute(sql, params)
                    else:
                        async with conn.cursor() as cur:
                            await cur.executemany(sql, params)

                async def one(i: int) -> None:
                    run_id = f"floor{i:027d}"
                    async with gate:
                        for transaction, notes in ops:
                            async with pool.connection() as conn:
                                block = conn.transaction() if transaction else _nothing()
                                async with block:
                                    for kind, sql, traced_params in notes:
                                        params = _renamed(traced_params, traced_id, run_id)
                                        await statement(conn, kind, sql, params)

                began = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(start, start + count)))
                return time.perf_counter() - began

        asyncio.run(drive(0, WARMUP))
        cpu: Result = {}
        with _cpu(n, cpu):
            elapsed = asyncio.run(drive(WARMUP, n))
    return {
        "us_per_step": elapsed * 1e6 / n,
        "runs_per_s": n / elapsed,
        "rss_mb": peak_rss_mb(),
        **cpu,
    }


def pg_floor_grouped(n: int, _workdir: Path) -> Result:
    """The store's statements for 64 runs at a time, each batched across the group."""
    import psycopg

    with _schema() as schema:
        traced_id, ops = _trace(f"{SERVER}?schema={schema}")
        conninfo = f"{SERVER}?options=-csearch_path%3D{schema}"
        with psycopg.connect(conninfo, autocommit=True) as conn:

            def group(start: int, count: int) -> None:
                ids = [f"floor{i:027d}" for i in range(start, start + count)]
                for _, notes in ops:  # a group's writes commit together, whatever they are alone
                    with conn.transaction():
                        for kind, sql, params in notes:
                            rows = [_renamed(params, traced_id, run_id) for run_id in ids]
                            if kind == "many":
                                rows = [row for batch in rows for row in batch]
                            cursor = psycopg.RawCursor(conn) if kind == "raw" else conn.cursor()
                            with cursor:
                                cursor.executemany(sql, rows)

            group(0, WARMUP)
            cpu: Result = {}
            began = time.perf_counter()
            with _cpu(n, cpu):
                for start in range(WARMUP, WARMUP + n, CONCURRENCY):
                    group(start, min(CONCURRENCY, WARMUP + n - start))
            elapsed = time.perf_counter() - began
    return {
        "us_per_step": elapsed * 1e6 / n,
        "runs_per_s": n / elapsed,
        "rss_mb": peak_rss_mb(),
        **cpu,
    }


@contextlib.asynccontextmanager
async def _nothing() -> Any:
    yield


def sqlite_run(n: int, workdir: Path) -> Result:
    """Sequential app.run of a one-step sync agent on SQLite."""
    return _sequential(f"sqlite:///{workdir / 'ledger.db'}", n)


def sqlite_arun64(n: int, workdir: Path) -> Result:
    """app.arun of a one-step async agent, 64 in flight, on SQLite."""
    return _concurrent(f"sqlite:///{workdir / 'ledger.db'}", n)


def pg_run(n: int, _workdir: Path) -> Result:
    """Sequential app.run on the PostgreSQL ledger."""
    with _schema() as schema:
        return _sequential(f"{SERVER}?schema={schema}", n)


def pg_arun64(n: int, _workdir: Path) -> Result:
    """app.arun, 64 in flight, on the PostgreSQL ledger."""
    with _schema() as schema:
        return _concurrent(f"{SERVER}?schema={schema}", n)


def in_flight_10k(n: int, workdir: Path) -> Result:
    """``n`` async runs in flight at once, each waiting on an event: the process's peak RSS."""
    from seawall import Seawall

    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}", max_concurrent_runs=n + 1)
    release = asyncio.Event()
    all_started = asyncio.Event()
    started = 0

    @app.agent(name="waiting")
    async def waiting(ctx: Any, i: int) -> int:
        nonlocal started
        started += 1
        if started == n:
            all_started.set()
        await release.wait()
        return i

    async def drive() -> float:
        tasks = [asyncio.create_task(app.arun("waiting", i=i)) for i in range(n)]
        await all_started.wait()
        rss = peak_rss_mb()
        release.set()
        await asyncio.gather(*tasks)
        return rss

    before = peak_rss_mb()
    start = time.perf_counter()
    rss = asyncio.run(drive())
    elapsed = time.perf_counter() - start
    app.close()
    return {
        "us_per_step": elapsed * 1e6 / n,
        "runs_per_s": n / elapsed,
        "rss_mb": rss,
        "rss_before_mb": before,
    }


def _captured_run(folder: Path) -> tuple[Path, str, list[tuple[str, str, Any]]]:
    """A ledger with a few runs, and the statements the store executed for one more run."""
    ledger = folder / "captured.db"
    app = _app(f"sqlite:///{ledger}")
    statements: list[tuple[str, str, Any]] = []

    class Recording:
        """The store's connection, recording what it executes."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
            statements.append(("one", sql, tuple(params)))
            return self.db.execute(sql, params)

        def executemany(self, sql: str, rows: Any) -> Any:
            rows = [tuple(row) for row in rows]
            statements.append(("many", sql, rows))
            return self.db.executemany(sql, rows)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

    try:
        for i in range(WARMUP):
            app.run("one_step", i=i)
        store: Any = app.store
        real = store._db  # noqa: SLF001 - a benchmark looking at what the store executes
        store._db = Recording(real)  # noqa: SLF001
        try:
            run_id = app.run("one_step", i=-1).run_id
        finally:
            store._db = real  # noqa: SLF001
    finally:
        app.close()
    kept = [s for s in statements if not s[1].lstrip().upper().startswith("PRAGMA")]
    return ledger, run_id, kept


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` with ``old`` replaced by ``new`` in every string it holds (run ids in params)."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, (tuple, list)):
        return type(value)(_renamed(v, old, new) for v in value)
    return value


def sqlite_ledger_sql(n: int, workdir: Path) -> Result:
    """The SQLite store's own statements for a single-step run, replayed raw: our SQL floor."""
    return _replayed(n, workdir, 1)


def sqlite_ledger_sql64(n: int, workdir: Path) -> Result:
    """The same statements replayed raw as ``app.arun`` at 64 in flight groups them.

    Each of a run's transactions (its opening, its ending) is written for 64 runs at once, in
    one transaction, as the SQLite group commit does when 64 runs are in flight.
    """
    return _replayed(n, workdir, CONCURRENCY)


def _replayed(n: int, workdir: Path, group: int) -> Result:
    """The captured run's statements for ``n`` runs, each transaction written for ``group``."""
    ledger, run_id, statements = _captured_run(workdir)
    transactions: list[list[tuple[str, str, Any]]] = []  # BEGIN IMMEDIATE ... COMMIT each
    for kind, sql, params in statements:
        word = sql.split(None, 1)[0].upper()
        if word == "BEGIN":
            transactions.append([])
        elif word != "COMMIT":
            transactions[-1].append((kind, sql, params))
    runs = [
        [
            [
                (kind, sql, _renamed(params, run_id, f"{i:08x}" + run_id[8:]))
                for kind, sql, params in t
            ]
            for t in transactions
        ]
        for i in range(n)
    ]
    db = sqlite3.connect(str(ledger), isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    for first in range(0, n, group):
        for t in range(len(transactions)):
            db.execute("BEGIN IMMEDIATE")
            for run in runs[first : first + group]:
                for kind, sql, params in run[t]:
                    if kind == "one":
                        db.execute(sql, params)
                    else:
                        db.executemany(sql, params)
            db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return {
        "us_per_step": elapsed * 1e6 / n,
        "runs_per_s": n / elapsed,
        "rss_mb": peak_rss_mb(),
        "statements": len(statements),
    }


def sync_hops(n: int, _workdir: Path) -> Result:
    """The thread hand-offs of a sync ``app.run``, with no work: caller -> loop -> agent thread.

    Made as the app makes them: ``run_coroutine_threadsafe`` to the loop, then the agent's hop
    to one of Seawall's threads, in a context of its own.
    """
    import contextvars

    from seawall.runtime.hop import in_context
    from seawall.runtime.threads import Threads

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    agents = Threads(4, "bench-agent")

    def agent() -> int:
        return 1

    async def run() -> int:
        return await in_context(agents, contextvars.Context(), agent)

    for _ in range(WARMUP):
        asyncio.run_coroutine_threadsafe(run(), loop).result()
    start = time.perf_counter()
    for _ in range(n):
        asyncio.run_coroutine_threadsafe(run(), loop).result()
    elapsed = time.perf_counter() - start
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    agents.shutdown()
    return {"us_per_step": elapsed * 1e6 / n, "runs_per_s": n / elapsed, "rss_mb": peak_rss_mb()}


def _tool_hops(n: int, pool: Any) -> Result:
    """``n`` hops of a sync call (a tool's body) from 64 coroutines to ``pool`` and back."""
    from seawall.runtime.hop import in_thread

    def drive(count: int) -> Awaitable[float]:
        return _at64(count, lambda i: in_thread(pool, _body, i))

    asyncio.run(drive(WARMUP))
    cpu: Result = {}
    with _cpu(n, cpu):
        elapsed = asyncio.run(drive(n))
    return {"us_per_step": elapsed * 1e6 / n, "runs_per_s": n / elapsed, **cpu}


def tool_hop64(n: int, _workdir: Path) -> Result:
    """A sync tool's hop from an async agent, 64 in flight: Seawall's tool threads."""
    from seawall.runtime.hop import tool_threads

    return _tool_hops(n, tool_threads())


def tool_hop64_executor(n: int, _workdir: Path) -> Result:
    """The same hops to a ``ThreadPoolExecutor`` of the same size (what the threads replace)."""
    from concurrent.futures import ThreadPoolExecutor

    from seawall.runtime.hop import tool_threads

    with ThreadPoolExecutor(tool_threads().size) as pool:
        return _tool_hops(n, pool)


WORKERS: dict[str, WorkerFn] = {
    "sqlite_floor": sqlite_floor,
    "sqlite_ledger_sql": sqlite_ledger_sql,
    "sqlite_ledger_sql64": sqlite_ledger_sql64,
    "sync_hops": sync_hops,
    "tool_hop64": tool_hop64,
    "tool_hop64_executor": tool_hop64_executor,
    "sqlite_run": sqlite_run,
    "sqlite_arun64": sqlite_arun64,
    "pg_floor": pg_floor,
    "pg_run": pg_run,
    "pg_arun64": pg_arun64,
    "pg_floor64": pg_floor64,
    "pg_floor_grouped": pg_floor_grouped,
}


class _Counter:
    """Counts what a SQLite connection executes: statements, commits, reads."""

    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0
        self.selects = 0
        self._in_tx = False

    def __call__(self, sql: str) -> None:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head in ("PRAGMA", ""):
            return
        self.statements += 1
        if head == "BEGIN":
            self._in_tx = True
        elif head in ("COMMIT", "END"):
            self._in_tx = False
            self.commits += 1
        elif head == "ROLLBACK":
            self._in_tx = False
        elif head == "SELECT" or (head == "WITH" and "SELECT" in sql.upper()):
            self.selects += 1
        elif not self._in_tx and head in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            self.commits += 1  # an autocommit statement is its own transaction


def count_statements(folder: Path) -> dict[str, int]:
    """Statements, commits and reads the SQLite store makes for one single-step run."""
    app = _app(f"sqlite:///{folder / 'ledger.db'}")
    try:
        for i in range(5):
            app.run("one_step", i=i)
        counter = _Counter()
        connections = [
            value for value in vars(app.store).values() if isinstance(value, sqlite3.Connection)
        ]
        for conn in connections:
            conn.set_trace_callback(counter)
        try:
            app.run("one_step", i=99).raise_for_status()
        finally:
            for conn in connections:
                conn.set_trace_callback(None)
    finally:
        app.close()
    return {"statements": counter.statements, "commits": counter.commits, "reads": counter.selects}


def main(argv: Sequence[str] | None = None) -> int:
    """Run every configuration, print the table, the statement counts and the goals."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        registry = {**WORKERS, "in_flight_10k": in_flight_10k}
        return worker_main(registry, args)
    quick = "--quick" in args
    rounds = 1 if quick else 3
    n = 2000 if quick else 5000
    print(f"Throughput: single-step runs, {rounds} round(s) of {n} runs, {os.cpu_count()} CPUs")
    rows = summarize(interleaved(list(WORKERS), (n,), rounds, MODULE, seed=1, log=None))
    print_table(rows)
    memory = summarize(interleaved(["in_flight_10k"], (10_000,), 1, MODULE, seed=1, log=None))
    by = {r["system"]: r for r in rows + memory}

    def rate(system: str) -> float | None:
        row = by.get(system, {})
        return None if "median_us" not in row else 1e6 / float(row["median_us"])

    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
        counts = count_statements(Path(folder))
    print(
        f"\nOne single-step run on SQLite: {counts['statements']} statements, "
        f"{counts['commits']} commits, {counts['reads']} reads"
    )
    print("\nGoals (ratios to the floors measured above):")
    ok = True

    def goal(label: str, hit: bool, detail: str, missed: str = "miss") -> None:
        nonlocal ok
        ok &= hit
        print(f"  [{'ok' if hit else missed}] {label}: {detail}")

    goal(
        "single-step run: <= 2 commits, 0 re-reads",
        counts["commits"] <= 2 and counts["reads"] == 0,
        f"{counts['commits']} commits, {counts['reads']} reads",
        "over",
    )
    floor = rate("sqlite_floor")
    for system, share in (("sqlite_run", 0.20), ("sqlite_arun64", 0.35)):
        value = rate(system)
        if floor and value:
            goal(
                f"{system} >= {share:.0%} of the raw SQLite floor",
                value >= share * floor,
                f"{value:,.0f} runs/s = {value / floor:.0%} of {floor:,.0f}",
            )
    ours, hops = by.get("sqlite_ledger_sql", {}), by.get("sync_hops", {})
    if floor and "median_us" in ours and "median_us" in hops:
        ceiling = 1e6 / (float(ours["median_us"]) + float(hops["median_us"]))
        print(
            f"  [info] floor of a sync app.run here, with no Python of ours: the store's "
            f"statements replayed raw {float(ours['median_us']):.0f} us + the thread "
            f"hand-offs {float(hops['median_us']):.0f} us = {ceiling:,.0f} runs/s = "
            f"{ceiling / floor:.0%} of the raw floor"
        )
    grouped_sql, arun64 = by.get("sqlite_ledger_sql64", {}), by.get("sqlite_arun64", {})
    if floor and "median_us" in grouped_sql and "median_us" in arun64:
        sql_us, run_us = float(grouped_sql["median_us"]), float(arun64["median_us"])
        print(
            f"  [info] floor of app.arun at 64 here, with no Python of ours: the store's "
            f"statements replayed raw in groups of 64 {sql_us:.0f} us = {1e6 / sql_us:,.0f} "
            f"runs/s = {1e6 / sql_us / floor:.0%} of the raw floor; 35% leaves "
            f"{1e6 / (0.35 * floor) - sql_us:.0f} us for the rest of a run, which takes "
            f"{run_us - sql_us:.0f} us"
        )
    threads, executor = by.get("tool_hop64", {}), by.get("tool_hop64_executor", {})
    if "median_us" in threads and "median_us" in executor:
        print(
            f"  [info] a sync tool's hop from an async agent, 64 in flight: "
            f"{float(threads['median_us']):.1f} us on Seawall's tool threads, "
            f"{float(executor['median_us']):.1f} us on a ThreadPoolExecutor of the same size"
        )
    pg64 = rate("pg_arun64")
    if pg64:
        goal("pg_arun64 >= 1,500 runs/s", pg64 >= 1500, f"{pg64:,.0f} runs/s")
    for system in ("pg_arun64", "pg_floor_grouped"):
        row = by.get(system, {})
        if "cpu_us" in row and "server_cpu_us" in row:
            client, server = float(row["cpu_us"]), float(row["server_cpu_us"])
            ceiling = (os.cpu_count() or 1) * 1e6 / (client + server)
            print(
                f"  [info] {system}: CPU per run {client:,.0f} us here + {server:,.0f} us in "
                f"the server = {client + server:,.0f} us; {os.cpu_count()} CPUs busy all the "
                f"time would do {ceiling:,.0f} runs/s"
            )
    floor64 = rate("pg_floor64")
    if pg64 and floor64:
        print(
            f"  [info] pg_arun64: {pg64 / floor64:.0%} of pg_floor64 ({floor64:,.0f} runs/s: "
            "raw async psycopg doing the store's statements, 64 in flight)"
        )
    grouped = rate("pg_floor_grouped")
    if grouped:
        print(f"  [info] pg_floor_grouped: {grouped:,.0f} runs/s (the same, written set-wise)")
    pg_seq, pg_raw = rate("pg_run"), rate("pg_floor")
    if pg_seq and pg_raw:
        print(f"  [info] pg_run: {pg_seq:,.0f} runs/s = {pg_seq / pg_raw:.0%} of the raw floor")
    mem = by.get("in_flight_10k", {})
    if "rss_mb" in mem:
        goal(
            "10k runs in flight <= 150 MB RSS",
            float(mem["rss_mb"]) <= 150,
            f"{mem['rss_mb']:.0f} MB",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
