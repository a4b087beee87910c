"""Cascades at scale: run throughput, graph scheduling overhead, memory of in-flight runs.

Targets (issue: cascades):
- 10,000 single-step agent runs (a no-op tool call each) through the local coordinator with
  concurrency 64 on SQLite: >= 2,000 runs/s; the same workload through DBOS (SQLite), measured
  in the same benchmark run, for the ratio.
- A graph of 1,000 nodes schedules with <= 1 ms of coordinator overhead per node.
- 10,000 in-flight runs (each awaiting an asyncio event) hold <= 300 MB RSS.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._harness import Result, WorkerFn, run_in_subprocess, worker_main

MODULE = "benchmarks.bench_cascade"
RUNS = 10_000
CONCURRENCY = 64


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:  # noqa: PTH123 - a procfs read
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def seawall_runs(n: int, workdir: Path) -> Result:
    """n single-step runs, at most CONCURRENCY at once, through Seawall (async agents)."""
    from seawall import Seawall

    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}", max_concurrent_runs=CONCURRENCY)

    @app.tool(name="noop")
    async def noop(i: int) -> int:
        return i

    @app.agent(name="single")
    async def single(ctx: Any, i: int) -> int:
        return await ctx.call(noop, i)

    async def all_runs(count: int) -> list[Any]:
        return await asyncio.gather(*(app.arun(single, i=i) for i in range(count)))

    asyncio.run(all_runs(200))
    start = time.perf_counter()
    results = asyncio.run(all_runs(n))
    wall = time.perf_counter() - start
    assert all(r.ok for r in results)
    app.close()
    return {"us_per_step": wall * 1e6 / n, "runs_per_s": n / wall, "setup_s": 0.0}


def dbos_runs(n: int, workdir: Path) -> Result:
    """n one-step DBOS workflows, 64 at a time from a thread pool, SQLite system database."""
    from dbos import DBOS

    DBOS(
        config={
            "name": "cascade-bench",
            "system_database_url": f"sqlite:///{workdir / 'dbos.db'}",
            "log_level": "WARNING",
        }
    )  # type: ignore[typeddict-item]

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def single(i: int) -> int:
        return noop(i)

    DBOS.launch()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(single, range(200)))
        start = time.perf_counter()
        list(pool.map(single, range(n)))
        wall = time.perf_counter() - start
    DBOS.destroy()
    return {"us_per_step": wall * 1e6 / n, "runs_per_s": n / wall, "setup_s": 0.0}


def graph_overhead(n: int, workdir: Path) -> Result:
    """A chain of n no-op nodes: wall time per node, and what the coordinator adds to it."""
    from seawall import From, Graph, Input, Seawall

    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}")

    @app.agent(name="step")
    async def step(ctx: Any, x: int) -> int:
        return x + 1

    graph = Graph("chain", max_concurrency=1)
    graph.add(step, name="n0", inputs={"x": Input("x")})
    for i in range(1, n):
        graph.add(step, name=f"n{i}", inputs={"x": From(f"n{i - 1}")})
    start = time.perf_counter()
    result = app.run(graph, x=0)
    wall = time.perf_counter() - start
    assert result.ok
    nodes = app.ledger.runs(parent_run_id=result.run_id, limit=n + 10)
    inside = sum((r.end_time or r.start_time) - r.start_time for r in nodes)
    app.close()
    return {
        "us_per_step": wall * 1e6 / n,
        "ms_per_node": wall * 1e3 / n,
        "coordinator_ms_per_node": (wall - inside) * 1e3 / n,
        "setup_s": 0.0,
    }


def inflight_memory(n: int, workdir: Path) -> Result:
    """n runs in flight at once, each awaiting an event: RSS before and while they wait."""
    from seawall import Seawall

    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}", lease=60.0)
    gate: dict[str, Any] = {}
    entered = {"n": 0}

    @app.agent(name="waiter")
    async def waiter(ctx: Any, i: int) -> int:
        entered["n"] += 1
        await gate["event"].wait()
        return i

    async def main() -> tuple[float, float]:
        gate["event"] = asyncio.Event()
        before = _rss_mb()
        tasks = [asyncio.ensure_future(app.arun(waiter, i=i)) for i in range(n)]
        while entered["n"] < n:  # noqa: ASYNC110 - polling a counter the runs bump
            await asyncio.sleep(0.05)
        during = _rss_mb()
        gate["event"].set()
        results = await asyncio.gather(*tasks)
        assert all(r.ok for r in results)
        return before, during

    before, during = asyncio.run(main())
    app.close()
    return {"us_per_step": 0.0, "rss_before_mb": before, "rss_in_flight_mb": during, "setup_s": 0.0}


WORKERS: dict[str, WorkerFn] = {
    "seawall_runs": seawall_runs,
    "dbos_runs": dbos_runs,
    "graph_overhead": graph_overhead,
    "inflight_memory": inflight_memory,
}


def main(argv: list[str] | None = None) -> bool:
    """Measure everything (each in a fresh process) and print the targets."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        return worker_main(WORKERS, args) == 0
    print("\nCascades at scale (each measurement in a fresh process):")
    ours = run_in_subprocess("seawall_runs", RUNS, MODULE)
    peer = run_in_subprocess("dbos_runs", RUNS, MODULE)
    graph = run_in_subprocess("graph_overhead", 1000, MODULE)
    memory = run_in_subprocess("inflight_memory", RUNS, MODULE)
    hit = True
    if "runs_per_s" in ours:
        ok = ours["runs_per_s"] >= 2000
        hit &= ok
        line = f"  [{'ok' if ok else 'MISSED'}] {RUNS:,} single-step runs, concurrency {CONCURRENCY}: {ours['runs_per_s']:,.0f} runs/s (>= 2,000)"
        if "runs_per_s" in peer:
            line += f"; DBOS {peer['runs_per_s']:,.0f} runs/s -> {ours['runs_per_s'] / peer['runs_per_s']:.1f}x"
        else:
            line += f"; DBOS: {peer.get('skipped') or peer.get('error')}"
        print(line)
    else:
        print(f"  seawall runs failed: {ours}")
    if "coordinator_ms_per_node" in graph:
        ok = graph["coordinator_ms_per_node"] <= 1.0
        hit &= ok
        print(
            f"  [{'ok' if ok else 'MISSED'}] 1,000-node graph: {graph['coordinator_ms_per_node']:.3f} ms of coordinator overhead per node (<= 1 ms); {graph['ms_per_node']:.3f} ms per node in all"
        )
    else:
        print(f"  graph failed: {graph}")
    if "rss_in_flight_mb" in memory:
        ok = memory["rss_in_flight_mb"] <= 300
        hit &= ok
        print(
            f"  [{'ok' if ok else 'MISSED'}] {RUNS:,} runs in flight: {memory['rss_in_flight_mb']:.0f} MB RSS (<= 300; {memory['rss_before_mb']:.0f} MB before)"
        )
    else:
        print(f"  in-flight memory failed: {memory}")
    return hit


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
