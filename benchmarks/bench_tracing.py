"""What tracing costs per journaled step (issue: observability).

Targets: with an SDK and an in-memory exporter, tracing adds <= 30 us per journaled step; with
no SDK configured, <= 3 us.

Each figure is the median of per-call timings of a read-only ``ctx.call`` in one run of 5,000
calls, in a fresh process per configuration (the OpenTelemetry globals are per process):

- ``off``: no SDK anywhere (the API's proxy providers) -- what every user without OTel pays;
- ``bare``: the same run with Seawall's telemetry hook removed (``Telemetry.enabled`` forced to
  false before the run, so no per-run provider check either) -- the floor ``off`` is compared to;
- ``on``: an SDK tracer provider with a batch processor (what production uses) into an
  in-memory exporter, plus an SDK meter provider with an in-memory reader (spans and metrics
  both recorded).

A plain-Python call of the same step body is timed in the same loop as the baseline.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Result, WorkerFn, run_in_subprocess, worker_main
from benchmarks.peers import step_body

MODULE = "benchmarks.bench_tracing"
CALLS = 5_000


def _timed(mode: str, n: int, workdir: Path) -> Result:
    from seawall import Guards, Seawall

    options: dict[str, Any] = {}
    exporter = None
    if mode == "on":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        options["tracer_provider"] = provider
        options["meter_provider"] = MeterProvider(metric_readers=[InMemoryMetricReader()])
    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}", **options)
    if mode == "bare":
        app.runtime.telemetry.enabled = lambda: False  # type: ignore[method-assign]
    read = app.tool(name="read")(step_body)
    clock = time.perf_counter

    @app.agent(name="timer", guards=Guards(max_mutations_without_gate=None))
    def timer(ctx: Any, steps: int) -> dict[str, float]:
        plain, reads = [], []
        for i in range(steps):
            t = clock()
            step_body(i)
            plain.append(clock() - t)
            t = clock()
            ctx.call(read, i)
            reads.append(clock() - t)
        return {"plain": statistics.median(plain) * 1e6, "read": statistics.median(reads) * 1e6}

    app.run(timer, steps=200)
    medians = app.run(timer, steps=n).raise_for_status().output
    sdk_us = _sdk_floor(options, n) if mode == "on" else 0.0
    app.close()
    if exporter is not None:
        options["tracer_provider"].force_flush()
    spans = 0 if exporter is None else len(exporter.get_finished_spans())
    return {
        "us_per_step": medians["read"] - medians["plain"],
        "plain_us": medians["plain"],
        "spans": spans,
        "sdk_us": sdk_us,
        "setup_s": 0.0,
    }


def _sdk_floor(options: dict[str, Any], n: int) -> float:
    """Median cost of what the SDK itself does per traced step: one span and one histogram."""
    from opentelemetry import trace

    tracer = options["tracer_provider"].get_tracer("bench")
    histogram = options["meter_provider"].get_meter("bench").create_histogram("bench.duration")
    parent = trace.set_span_in_context(tracer.start_span("parent"))
    clock = time.perf_counter
    costs = []
    for i in range(n):
        t = clock()
        span = tracer.start_span(
            "execute_tool read", context=parent, attributes={"a": "b", "c": i, "d": "e"}
        )
        span.end()
        histogram.record(0.001, {"gen_ai.tool.name": "read"})
        costs.append(clock() - t)
    return statistics.median(costs) * 1e6


def _worker(mode: str) -> WorkerFn:
    def worker(n: int, workdir: Path) -> Result:
        return _timed(mode, n, workdir)

    return worker


WORKERS: dict[str, WorkerFn] = {mode: _worker(mode) for mode in ("bare", "off", "on")}


def main(argv: list[str] | None = None) -> bool:
    """Measure the three configurations (each in a fresh process, 3 rounds) and print targets."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        return worker_main(WORKERS, args) == 0
    print("\nTracing cost per journaled read-only step (median of 5,000 calls, 3 rounds):")
    rounds: dict[str, list[Result]] = {mode: [] for mode in WORKERS}
    for _ in range(3):
        for mode in WORKERS:
            rounds[mode].append(run_in_subprocess(mode, CALLS, MODULE))
    failed = [r for results in rounds.values() for r in results if "us_per_step" not in r]
    if failed:
        print(f"  tracing benchmark failed: {failed[0]}")
        return False
    cost = {mode: statistics.median(r["us_per_step"] for r in rs) for mode, rs in rounds.items()}
    plain = statistics.median(r["plain_us"] for rs in rounds.values() for r in rs)
    for mode in WORKERS:
        print(f"  {mode:>5}: {cost[mode]:6.2f} us per step over a plain call ({plain:.2f} us)")
    off = cost["off"] - cost["bare"]
    on = cost["on"] - cost["off"]
    sdk = statistics.median(r["sdk_us"] for r in rounds["on"])
    print(
        f"  the SDK's own work per traced step (one span + one histogram record, same process): "
        f"{sdk:.2f} us; Seawall's part of the traced cost: {on - sdk:+.2f} us"
    )
    ok_off, ok_on = off <= 3.0, on <= 30.0
    print(f"  [{'ok' if ok_off else 'MISSED'}] no SDK: +{off:.2f} us per step (<= 3)")
    print(
        f"  [{'ok' if ok_on else 'MISSED'}] SDK + in-memory exporter: +{on:.2f} us per step (<= 30)"
    )
    return ok_off and ok_on


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
