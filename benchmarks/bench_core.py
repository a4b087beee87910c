"""The durable core's speed, memory and storage, against plain Python and peers in the same run.

What it measures (issue: durable core):

1. Cost per journaled step (the ANCHORS.md workload: N sequential trivial steps returning
   ~100 bytes, each (system, N) in a fresh process with a fresh ledger, interleaved rounds):
   Seawall read-only and mutating steps at both durability levels, next to a plain call,
   tenacity, raw SQLite commits, DBOS and LangGraph (``sync`` durability).
2. Per-call cost over a plain call, measured call by call inside one run (median).
3. Flat per-step cost and memory over a 10,000-step run.
4. Reading back a 1,000-step run's full record (what ``seawall show --json`` does).
5. Ledger bytes per step for an agent whose prompt grows with its history (200 steps).

Usage::

    python -m benchmarks                     # everything (what `make bench` runs)
    python -m benchmarks --quick             # one round, N=200 only
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Result,
    WorkerFn,
    fs_type,
    fsync_probe,
    interleaved,
    print_table,
    summarize,
    worker_main,
)
from benchmarks.peers import WORKERS as PEER_WORKERS
from benchmarks.peers import step_body

MODULE = "benchmarks.bench_core"
WARMUP_STEPS = 20


def _bulk_guards() -> Any:
    """Guards that allow long runs of writes (the workloads write without gates on purpose)."""
    from seawall import Guards

    return Guards(max_mutations_without_gate=None)


_BULK = _bulk_guards()


def _app(workdir: Path, durability: str = "crash") -> Any:
    from seawall import Seawall

    return Seawall(f"sqlite:///{workdir / 'ledger.db'}", durability=durability)  # type: ignore[arg-type]


def _seawall_worker(mutating: bool, durability: str) -> WorkerFn:
    def worker(n: int, workdir: Path) -> Result:
        t0 = time.perf_counter()
        app = _app(workdir, durability)
        tool = app.tool(name="step", mutating=mutating)(step_body)

        @app.agent(name="workflow", guards=_BULK)
        def workflow(ctx: Any, steps: int) -> object:
            out: object = None
            for i in range(steps):
                out = ctx.call(tool, i)
            return out

        setup_s = time.perf_counter() - t0
        app.run(workflow, steps=WARMUP_STEPS)
        start = time.perf_counter()
        result = app.run(workflow, steps=n).raise_for_status()
        us = (time.perf_counter() - start) * 1e6 / n
        rows = len(app.ledger.steps(result.run_id))
        app.close()
        return {"us_per_step": us, "setup_s": setup_s, "journal rows": rows}

    return worker


def per_call(n: int, workdir: Path) -> Result:
    """Median cost of one ctx.call over one plain call, timed call by call."""
    app = _app(workdir)
    read, write = _read_write_tools(app)
    clock = time.perf_counter

    @app.agent(name="timer", guards=_BULK)
    def timer(ctx: Any, steps: int) -> dict[str, float]:
        plain, reads, writes = [], [], []
        for i in range(steps):
            t = clock()
            step_body(i)
            plain.append(clock() - t)
            t = clock()
            ctx.call(read, i)
            reads.append(clock() - t)
            t = clock()
            ctx.call(write, i)
            writes.append(clock() - t)
        return {
            "plain": statistics.median(plain) * 1e6,
            "read": statistics.median(reads) * 1e6,
            "write": statistics.median(writes) * 1e6,
        }

    app.run(timer, steps=WARMUP_STEPS)
    medians = app.run(timer, steps=n).raise_for_status().output
    app.close()
    return {
        "us_per_step": medians["read"] - medians["plain"],
        "plain_us": medians["plain"],
        "read_over_plain_us": medians["read"] - medians["plain"],
        "write_over_plain_us": medians["write"] - medians["plain"],
        "setup_s": 0.0,
    }


def _read_write_tools(app: Any) -> tuple[Any, Any]:
    """A read-only and a mutating tool with the peers' step body (two distinct functions)."""

    def read(i: int) -> dict[str, Any]:
        return step_body(i)

    def write(i: int) -> dict[str, Any]:
        return step_body(i)

    return app.tool(name="read")(read), app.tool(name="write", mutating=True)(write)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:  # noqa: PTH123 - a procfs read
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def long_run(n: int, workdir: Path) -> Result:
    """Per-step cost and memory across one long run (read-only and mutating steps mixed)."""
    app = _app(workdir)
    read, write = _read_write_tools(app)
    clock = time.perf_counter

    @app.agent(name="long", guards=_BULK)
    def long(ctx: Any, steps: int) -> dict[str, Any]:
        times: list[float] = []
        rss: dict[str, float] = {}
        for i in range(steps):
            t = clock()
            ctx.call(write if i % 4 == 0 else read, i)
            times.append(clock() - t)
            if i + 1 in (1000, steps // 2, steps):
                rss[str(i + 1)] = _rss_mb()
        return {"times": times, "rss": rss}

    out = app.run(long, steps=n).raise_for_status().output
    app.close()
    times = out["times"]
    early = statistics.median(times[100:200]) * 1e6
    late = statistics.median(times[-100:]) * 1e6
    rss = {int(k): v for k, v in out["rss"].items()}
    return {
        "us_per_step": statistics.median(times) * 1e6,
        "early_us": early,
        "late_us": late,
        "late_over_early": late / early,
        "rss_mb_at": rss,
        "setup_s": 0.0,
    }


def show_readback(n: int, workdir: Path) -> Result:
    """Time the `seawall show RUN --json` code path on an n-step run (in-process)."""
    from seawall.cli import runs as cli_runs

    app = _app(workdir)
    read, write = _read_write_tools(app)

    @app.agent(name="big", guards=_BULK)
    def big(ctx: Any, steps: int) -> int:
        for i in range(steps):
            ctx.call(write if i % 4 == 0 else read, i)
        return steps

    run_id = app.run(big, steps=n).raise_for_status().run_id
    url = app.store.url
    app.close()
    timings = []
    size = 0
    for _ in range(7):
        buffer = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(buffer):
            cli_runs.show(run_id, ledger=url, as_json=True)
        timings.append(time.perf_counter() - t)
        size = len(buffer.getvalue())
    record = json.loads(buffer.getvalue())
    assert len(record["steps"]) == n, "show --json must return every step"
    return {
        "us_per_step": statistics.median(timings) * 1e6 / n,
        "ms": statistics.median(timings) * 1e3,
        "json_bytes": size,
        "setup_s": 0.0,
    }


def replay_recorded(n: int, workdir: Path) -> Result:
    """Recorded replay of an n-step run (1 in 4 steps mutating), end to end, in-process."""
    app = _app(workdir)
    read, write = _read_write_tools(app)

    @app.agent(name="replayed", guards=_BULK)
    def replayed(ctx: Any, steps: int) -> int:
        for i in range(steps):
            ctx.call(write if i % 4 == 0 else read, i)
        return steps

    run_id = app.run(replayed, steps=n).raise_for_status().run_id
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        result = app.replay(run_id, mode="recorded")
        timings.append(time.perf_counter() - start)
        assert result.ok, result.run.error
    app.close()
    ms = statistics.median(timings) * 1e3
    return {"us_per_step": ms * 1e3 / n, "ms": ms, "setup_s": 0.0}


def concurrent_power(n: int, workdir: Path) -> Result:
    """Power level, 8 sync runs at once, n mutating steps each: group commit at work."""
    import asyncio

    app = _app(workdir, "power")
    _, write = _read_write_tools(app)

    @app.agent(name="writer", guards=_BULK)
    def writer(ctx: Any, steps: int) -> int:
        for i in range(steps):
            ctx.call(write, i)
        return steps

    async def all_runs(steps: int) -> list[Any]:
        return await asyncio.gather(*(app.arun(writer, steps=steps) for _ in range(8)))

    asyncio.run(all_runs(WARMUP_STEPS))
    commits = app.store.group_commits
    start = time.perf_counter()
    results = asyncio.run(all_runs(n))
    wall = time.perf_counter() - start
    for result in results:
        result.raise_for_status()
    steps = 8 * n
    fsynced = app.store.group_commits - commits
    app.close()
    return {
        "us_per_step": wall * 1e6 / steps,
        "fsynced_commits_per_step": fsynced / steps,
        "setup_s": 0.0,
    }


_WORDS = [
    "agent",
    "tool",
    "ledger",
    "retry",
    "journal",
    "breaker",
    "verify",
    "commit",
    "stage",
    "replay",
    "idempotent",
    "lease",
    "heartbeat",
    "snapshot",
    "drift",
    "cascade",
    "failure",
    "recovery",
    "budget",
    "human",
    "handoff",
    "trace",
    "span",
    "cost",
    "token",
    "latency",
    "window",
    "quorum",
    "schema",
    "rule",
    "judge",
    "vote",
    "consistency",
    "backoff",
    "jitter",
]


def storage(n: int, workdir: Path) -> Result:
    """Ledger bytes per step for an agent whose prompt is its whole history."""
    rng = random.Random(7)
    app = _app(workdir)

    @app.tool(name="llm")
    def llm(messages: list[dict[str, str]]) -> dict[str, Any]:
        text = " ".join(rng.choice(_WORDS) for _ in range(60))
        return {"role": "assistant", "content": text, "usage": {"input": len(messages) * 50}}

    raw = {"bytes": 0}

    @app.agent(name="chat")
    def chat(ctx: Any, steps: int) -> int:
        history: list[dict[str, str]] = []
        for i in range(steps):
            history.append(
                {
                    "role": "user",
                    "content": f"step {i}: " + " ".join(rng.choice(_WORDS) for _ in range(30)),
                }
            )
            reply = ctx.call(llm, history)
            raw["bytes"] += len(json.dumps(["llm", [history], {}])) + len(json.dumps(reply))
            history.append({"role": reply["role"], "content": reply["content"]})
        return len(history)

    empty = workdir / "empty"
    empty.mkdir()
    blank = _app(empty)
    blank.close()
    base = _file_bytes(empty / "ledger.db")
    app.run(chat, steps=n).raise_for_status()
    app.close()
    used = _file_bytes(workdir / "ledger.db") - base
    return {
        "us_per_step": 0.0,
        "raw_json_bytes_per_step": raw["bytes"] / n,
        "ledger_bytes_per_step": used / n,
        "ratio": used / raw["bytes"],
        "setup_s": 0.0,
    }


def _file_bytes(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


WORKERS: dict[str, WorkerFn] = {
    **PEER_WORKERS,
    "seawall_read": _seawall_worker(mutating=False, durability="crash"),
    "seawall_write": _seawall_worker(mutating=True, durability="crash"),
    "seawall_power_read": _seawall_worker(mutating=False, durability="power"),
    "seawall_power_write": _seawall_worker(mutating=True, durability="power"),
    "per_call": per_call,
    "long_run": long_run,
    "show_readback": show_readback,
    "storage": storage,
    "concurrent_power": concurrent_power,
    "replay_recorded": replay_recorded,
}

STEP_SYSTEMS = (
    "baseline",
    "tenacity",
    "seawall_read",
    "seawall_write",
    "sqlite_raw_wal_normal",
    "seawall_power_read",
    "seawall_power_write",
    "sqlite_raw_wal_full",
    "dbos",
    "langgraph_sync",
)


def _check(label: str, ok: bool, detail: str) -> bool:
    print(f"  [{'ok' if ok else 'MISSED'}] {label}: {detail}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement and print tables, ratios and the issue's targets."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        return worker_main(WORKERS, args)
    quick = "--quick" in args
    rounds = 1 if quick else 5
    ns = (200,) if quick else (200, 2000)
    print(
        f"Seawall durable core benchmark: Python {sys.version.split()[0]}, SQLite "
        f"{sqlite3.sqlite_version}, {os.cpu_count()} CPUs, temp fs {fs_type()}, rounds {rounds}"
    )
    rows = summarize(interleaved(list(STEP_SYSTEMS), ns, rounds, MODULE, seed=1, log=None))
    by = {(r["system"], r["n"]): r for r in rows}
    print_table(sorted(rows, key=lambda r: (r["n"], STEP_SYSTEMS.index(r["system"]))))
    print(f"fsync probe: {fsync_probe():.1f} us per 100-byte append+fsync")

    def med(system: str, n: int) -> float | None:
        value = by.get((system, n), {}).get("median_us")
        return None if value is None else float(value)

    hit = True
    print("\nTargets (medians of the rounds above):")
    for n in ns:
        base = med("baseline", n) or 0.0
        read, write = med("seawall_read", n), med("seawall_write", n)
        pw, raw_full = med("seawall_power_write", n), med("sqlite_raw_wal_full", n)
        dbos, lg = med("dbos", n), med("langgraph_sync", n)
        if read is not None:
            hit &= _check(
                f"N={n} read-only step over a plain call <= 25 us",
                read - base <= 25,
                f"{read - base:.1f} us",
            )
        if write is not None:
            hit &= _check(
                f"N={n} mutating step over a plain call <= 60 us",
                write - base <= 60,
                f"{write - base:.1f} us",
            )
        if pw is not None and raw_full is not None:
            hit &= _check(
                f"N={n} power-level mutating step <= 1.3x raw fsync'd commit",
                pw <= 1.3 * raw_full,
                f"{pw:.0f} / {raw_full:.0f} us = {pw / raw_full:.2f}x",
            )
        for peer, value in (("DBOS", dbos), ("LangGraph-sync", lg)):
            if write is not None and value is not None:
                print(
                    f"  [info] N={n} crash-level mutating step vs {peer} (which fsyncs every step): {value / write:.0f}x cheaper"
                )
        for peer, value in (("DBOS", dbos), ("LangGraph-sync", lg)):
            if pw is not None and value is not None:
                hit &= _check(
                    f"N={n} power-level mutating step >= 5x cheaper than {peer}",
                    value >= 5 * pw,
                    f"{value:.0f} / {pw:.0f} us = {value / pw:.1f}x",
                )

    extras: dict[str, Callable[[], Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        root = Path(tmp)
        for name, n in (
            ("per_call", 5000),
            ("long_run", 10_000),
            ("show_readback", 1000),
            ("storage", 200),
            ("concurrent_power", 250),
            ("replay_recorded", 1000),
        ):
            folder = root / name
            folder.mkdir()
            extras[name] = lambda fn=WORKERS[name], n=n, folder=folder: fn(n, folder)
        results = {name: fn() for name, fn in extras.items()}
    pc, lr, sr, st, cp, rr = (
        results[k]
        for k in (
            "per_call",
            "long_run",
            "show_readback",
            "storage",
            "concurrent_power",
            "replay_recorded",
        )
    )
    print("\nPer call, timed one by one inside a run (median of 5,000):")
    hit &= _check(
        "read-only ctx.call over a plain call <= 25 us",
        pc["read_over_plain_us"] <= 25,
        f"{pc['read_over_plain_us']:.1f} us (plain call {pc['plain_us']:.2f} us)",
    )
    hit &= _check(
        "mutating ctx.call over a plain call <= 60 us",
        pc["write_over_plain_us"] <= 60,
        f"{pc['write_over_plain_us']:.1f} us",
    )
    print("\n10,000-step run (1 in 4 steps mutating):")
    hit &= _check(
        "steps 9,900-10,000 within 1.5x of steps 100-200",
        lr["late_over_early"] <= 1.5,
        f"{lr['late_us']:.1f} / {lr['early_us']:.1f} us = {lr['late_over_early']:.2f}x",
    )
    rss = lr["rss_mb_at"]
    first, last = rss[min(rss)], rss[max(rss)]
    hit &= _check(
        "memory flat (RSS at step 10,000 vs step 1,000, <= +10 MB)",
        last - first <= 10,
        f"{first:.1f} MB -> {last:.1f} MB",
    )
    print("\nRead back a 1,000-step run (seawall show --json, in-process):")
    hit &= _check(
        "<= 50 ms", sr["ms"] <= 50, f"{sr['ms']:.1f} ms for {sr['json_bytes']:,} bytes of JSON"
    )
    print("\nStorage, 200 steps whose prompt is the whole history:")
    hit &= _check(
        "ledger bytes <= 1/5 of the raw JSON given",
        st["ratio"] <= 0.2,
        f"{st['ledger_bytes_per_step']:,.0f} bytes/step for {st['raw_json_bytes_per_step']:,.0f} raw = {st['ratio']:.3f}",
    )
    print("\nRecorded replay of a 1,000-step run (in-process, end to end):")
    hit &= _check(
        "<= 100 ms",
        rr["ms"] <= 100,
        f"{rr['ms']:.1f} ms ({rr['us_per_step']:.1f} us per replayed step)",
    )
    print("\nPower level, 8 concurrent runs x 250 mutating steps (group commit):")
    print(
        f"  {cp['us_per_step']:.0f} us per mutating step (wall / steps), {cp['fsynced_commits_per_step']:.2f} fsynced intent commits per step"
    )
    print("\nall targets met" if hit else "\nsome targets MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
