"""Cost per durable step of peer systems, measured on this machine (workload: ANCHORS.md).

Each worker runs, in a fresh process with a fresh database file, a 20-step warm-up workflow and
then one timed workflow of ``N`` sequential trivial steps (each returns a ~100-byte dict). The
timed section covers the whole workflow, start and finish bookkeeping included, and is divided
by ``N``. Workers import their optional package inside the function; a missing package gives a
``{"skipped": ...}`` row instead of a failure.

Usage::

    python -m benchmarks.peers                        # default systems, N=200 and 2000, 3 rounds
    python -m benchmarks.peers --rounds 1 --n 200 --systems dbos,langgraph_sync
    python -m benchmarks.peers --worker dbos --n 200 --dir /some/empty/dir   # one worker

Another benchmark can call :func:`measure_peers` and print ratios against its own numbers.
Set ``SEAWALL_BENCH_TMPDIR`` to put the databases on another disk than the system temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypedDict

from benchmarks._harness import (
    Key,
    Result,
    WorkerFn,
    fs_type,
    fsync_probe,
    interleaved,
    print_table,
    summarize,
    worker_main,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

MODULE = "benchmarks.peers"
WARMUP_STEPS = 20
DEFAULT_NS = (200, 2000)
DEFAULT_ROUNDS = 3

_FILLER = "x" * 62


def step_body(i: int) -> dict[str, Any]:
    """The trivial step every system runs: returns a dict of about 100 bytes as JSON."""
    return {"step": i, "status": "ok", "data": _FILLER}


def _version(dist: str) -> str:
    """Return ``dist==version`` of an installed distribution (for the record)."""
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return f"{dist}==?"


def _timed(n: int, workflow: Callable[[int, str], object]) -> float:
    """Run a warm-up workflow, then one timed ``n``-step workflow; return us per step."""
    workflow(WARMUP_STEPS, "warmup")
    t0 = time.perf_counter()
    workflow(n, "timed")
    return (time.perf_counter() - t0) * 1e6 / n


# --------------------------------------------------------------------------- in-memory peers


def baseline(n: int, _workdir: Path) -> Result:
    """Plain Python function call per step."""
    t0 = time.perf_counter()
    setup_s = time.perf_counter() - t0

    def workflow(steps: int, _run_id: str) -> object:
        out: object = None
        for i in range(steps):
            out = step_body(i)
        return out

    return {"us_per_step": _timed(n, workflow), "setup_s": setup_s}


def tenacity_worker(n: int, _workdir: Path) -> Result:
    """Each step wrapped by ``@retry(stop=stop_after_attempt(3), wait=wait_exponential())``."""
    t0 = time.perf_counter()
    from tenacity import retry, stop_after_attempt, wait_exponential

    step = retry(stop=stop_after_attempt(3), wait=wait_exponential())(step_body)
    setup_s = time.perf_counter() - t0

    def workflow(steps: int, _run_id: str) -> object:
        out: object = None
        for i in range(steps):
            out = step(i)
        return out

    return {"us_per_step": _timed(n, workflow), "setup_s": setup_s, "version": _version("tenacity")}


# --------------------------------------------------------------------------- hand-written floors


def _sqlite_raw(n: int, workdir: Path, journal_mode: str, synchronous: str) -> Result:
    """Hand-written SQLite journal: per step a replay SELECT, then BEGIN IMMEDIATE/INSERT/COMMIT.

    Workflow start inserts a run row and finish marks it done (one commit each), so the timed
    section carries the same kind of bookkeeping as a product's workflow status.
    """
    t0 = time.perf_counter()
    conn = sqlite3.connect(workdir / "raw.sqlite", isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, status TEXT, output TEXT)")
    conn.execute(
        "CREATE TABLE steps (run_id TEXT, seq INTEGER, output TEXT, PRIMARY KEY (run_id, seq))"
    )
    setup_s = time.perf_counter() - t0

    def workflow(steps: int, run_id: str) -> object:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR IGNORE INTO runs VALUES (?, 'PENDING', NULL)", (run_id,))
        conn.execute("COMMIT")
        out: object = None
        for i in range(steps):
            row = conn.execute(
                "SELECT output FROM steps WHERE run_id = ? AND seq = ?", (run_id, i)
            ).fetchone()
            if row is not None:
                out = json.loads(row[0])
                continue
            out = step_body(i)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO steps VALUES (?, ?, ?)", (run_id, i, json.dumps(out)))
            conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE runs SET status = 'SUCCESS', output = ? WHERE run_id = ?",
            (json.dumps(out), run_id),
        )
        conn.execute("COMMIT")
        return out

    us = _timed(n, workflow)
    rows = conn.execute("SELECT count(*) FROM steps WHERE run_id = 'timed'").fetchone()[0]
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    return {
        "us_per_step": us,
        "setup_s": setup_s,
        "journal_rows": rows,
        "journal_mode": mode,
    }


def sqlite_raw_wal_normal(n: int, workdir: Path) -> Result:
    """Raw SQLite journal, ``journal_mode=WAL``, ``synchronous=NORMAL`` (no fsync per commit)."""
    return _sqlite_raw(n, workdir, "WAL", "NORMAL")


def sqlite_raw_wal_full(n: int, workdir: Path) -> Result:
    """Raw SQLite journal, ``journal_mode=WAL``, ``synchronous=FULL`` (one fsync per commit)."""
    return _sqlite_raw(n, workdir, "WAL", "FULL")


def sqlite_raw_delete_full(n: int, workdir: Path) -> Result:
    """Raw SQLite journal, ``journal_mode=DELETE``, ``synchronous=FULL`` (DBOS's SQLite mode)."""
    return _sqlite_raw(n, workdir, "DELETE", "FULL")


def jsonl_fsync(n: int, workdir: Path) -> Result:
    """Append one JSON line and ``os.fsync`` per step (plus a start and an end record)."""
    t0 = time.perf_counter()
    fd = os.open(workdir / "journal.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    setup_s = time.perf_counter() - t0

    def append(record: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(record) + "\n").encode())
        os.fsync(fd)

    def workflow(steps: int, run_id: str) -> object:
        append({"run": run_id, "event": "start"})
        out: object = None
        for i in range(steps):
            out = step_body(i)
            append({"run": run_id, "seq": i, "output": out})
        append({"run": run_id, "event": "end", "output": out})
        return out

    us = _timed(n, workflow)
    os.close(fd)
    return {"us_per_step": us, "setup_s": setup_s, "journal_rows": n}


# --------------------------------------------------------------------------- products


def dbos_worker(n: int, workdir: Path) -> Result:
    """DBOS: a ``@DBOS.workflow`` calling ``n`` ``@DBOS.step`` functions, SQLite system DB."""
    t0 = time.perf_counter()
    from dbos import DBOS, SetWorkflowID

    DBOS(
        config={
            "name": "seawall-peer-bench",
            "system_database_url": f"sqlite:///{workdir / 'dbos.sqlite'}",
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    def dbos_step(i: int) -> dict[str, Any]:
        return step_body(i)

    @DBOS.workflow()
    def dbos_workflow(steps: int) -> object:
        out: object = None
        for i in range(steps):
            out = dbos_step(i)
        return out

    DBOS.launch()
    setup_s = time.perf_counter() - t0

    def workflow(steps: int, run_id: str) -> object:
        with SetWorkflowID(run_id):
            return dbos_workflow(steps)

    try:
        us = _timed(n, workflow)
        rows = len(DBOS.list_workflow_steps("timed", load_output=False))
    finally:
        DBOS.destroy()
    return {
        "us_per_step": us,
        "setup_s": setup_s,
        "journal_rows": rows,
        "version": _version("dbos"),
    }


class LoopState(TypedDict):
    """LangGraph state: the loop counter, its bound and the last step's output."""

    i: int
    n: int
    out: dict[str, Any]


def _langgraph(n: int, workdir: Path, durability: str | None) -> Result:
    """LangGraph: one node looping ``n`` times through a conditional edge.

    Args:
        n: Number of node executions (steps) in the timed run.
        workdir: Folder for the checkpoint database.
        durability: ``"sync"`` or ``"async"`` with a ``SqliteSaver``; ``None`` for no
            checkpointer at all.
    """
    t0 = time.perf_counter()
    from langgraph.graph import END, START, StateGraph

    def node(state: LoopState) -> dict[str, Any]:
        return {"i": state["i"] + 1, "out": step_body(state["i"])}

    def route(state: LoopState) -> str:
        return "node" if state["i"] < state["n"] else END

    builder = StateGraph(LoopState)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    builder.add_conditional_edges("node", route, ["node", END])
    saver: Any = None
    if durability is not None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(workdir / "checkpoints.sqlite", check_same_thread=False)
        saver = SqliteSaver(conn)
    graph = builder.compile(checkpointer=saver)
    setup_s = time.perf_counter() - t0

    def workflow(steps: int, run_id: str) -> object:
        config: Any = {"recursion_limit": steps + 10}
        kwargs: dict[str, Any] = {}
        if saver is not None:
            config["configurable"] = {"thread_id": run_id}
            kwargs["durability"] = durability
        start: LoopState = {"i": 0, "n": steps, "out": {}}
        state = graph.invoke(start, config, **kwargs)
        if state["i"] != steps:
            raise RuntimeError(f"graph stopped after {state['i']} of {steps} steps")
        return state["out"]

    us = _timed(n, workflow)
    out: Result = {"us_per_step": us, "setup_s": setup_s, "version": _version("langgraph")}
    if saver is not None:
        out["journal_rows"] = sum(1 for _ in saver.list({"configurable": {"thread_id": "timed"}}))
        out["version"] += " " + _version("langgraph-checkpoint-sqlite")
    return out


def langgraph_sync(n: int, workdir: Path) -> Result:
    """LangGraph with ``SqliteSaver`` and ``durability="sync"`` (checkpoint before next step)."""
    return _langgraph(n, workdir, "sync")


def langgraph_async(n: int, workdir: Path) -> Result:
    """LangGraph with ``SqliteSaver`` and its default ``durability="async"`` (not crash-safe)."""
    return _langgraph(n, workdir, "async")


def langgraph_nockpt(n: int, workdir: Path) -> Result:
    """The same LangGraph graph without a checkpointer: the framework's own cost."""
    return _langgraph(n, workdir, None)


WORKERS: dict[str, WorkerFn] = {
    "baseline": baseline,
    "tenacity": tenacity_worker,
    "sqlite_raw_wal_normal": sqlite_raw_wal_normal,
    "sqlite_raw_wal_full": sqlite_raw_wal_full,
    "sqlite_raw_delete_full": sqlite_raw_delete_full,
    "jsonl_fsync": jsonl_fsync,
    "dbos": dbos_worker,
    "langgraph_nockpt": langgraph_nockpt,
    "langgraph_sync": langgraph_sync,
    "langgraph_async": langgraph_async,
}
"""Every registered worker, by system name."""

DEFAULT_SYSTEMS: tuple[str, ...] = (
    "baseline",
    "tenacity",
    "sqlite_raw_wal_normal",
    "sqlite_raw_wal_full",
    "dbos",
    "langgraph_nockpt",
    "langgraph_sync",
)
"""Systems run by default; the others are available with ``--systems``."""


def measure_peers(
    systems: Sequence[str] | None = None,
    ns: Sequence[int] = DEFAULT_NS,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    verbose: bool = True,
) -> dict[Key, Result]:
    """Measure peers in interleaved, shuffled rounds, each run in a fresh subprocess.

    Args:
        systems: Names from :data:`WORKERS`; :data:`DEFAULT_SYSTEMS` if ``None``.
        ns: Step counts of the timed workflow.
        rounds: Runs per configuration.
        seed: Seed for the per-round shuffle.
        verbose: Print one progress line per run to stderr.

    Returns:
        Summary rows (see :func:`benchmarks._harness.summarize`) by ``(system, n)``; each has
        ``median_us`` when at least one run succeeded, and always a ``status``.

    Raises:
        ValueError: If a system name is not registered.
    """
    names = list(systems or DEFAULT_SYSTEMS)
    unknown = [s for s in names if s not in WORKERS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}; known: {sorted(WORKERS)}")
    raw = interleaved(names, ns, rounds, MODULE, seed=seed, log=sys.stderr if verbose else None)
    return {(row["system"], row["n"]): row for row in summarize(raw)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run one worker (``--worker``) or measure and print all peers."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args_list:
        return worker_main(WORKERS, args_list)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--n", type=int, action="append", help="step count; repeatable")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, from: {', '.join(WORKERS)}",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(args_list)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    ns = args.n or list(DEFAULT_NS)
    try:
        results = measure_peers(systems, ns, args.rounds, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    rows = sorted(results.values(), key=lambda r: (r["n"], systems.index(r["system"])))
    print(
        f"Peers: {args.rounds} round(s), N in {ns}, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, temp fs {fs_type()}"
    )
    print_table(rows)
    versions = sorted({v for r in rows for v in str(r.get("version") or "").split()})
    if versions:
        print("versions: " + "; ".join(versions))
    print(f"fsync probe: {fsync_probe():.1f} us median per 100-byte append+fsync (200 calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
