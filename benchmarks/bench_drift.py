"""Drift detection's cost: on the run path, per evaluation, and on a whole run.

Targets (issue: observability, drift):
- Recording a finished run's drift sample (on the run path) costs <= 20 us.
- The statistics run every ``DriftWatch.every`` runs on the monitor thread: reported per
  evaluation (reference 300 runs, window 100, the decision and six features) and per run.
- A sequential stream of runs of a watched agent, evaluations included, against the same agent
  unwatched, in the same process: the difference per run is reported.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks._harness import Result, WorkerFn, run_in_subprocess, worker_main

MODULE = "benchmarks.bench_drift"


def hot_path(n: int, workdir: Path) -> Result:
    """monitor.finished() for n runs of a watched agent, evaluations kept out (every=huge)."""
    from seawall import DriftWatch, Seawall

    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}")
    watch = DriftWatch(decision="action", every=10**9)

    @app.agent(name="triage", drift=watch)
    def triage(ctx: Any) -> dict[str, Any]:
        return {"action": "resolve", "confidence": 0.9}

    result = app.run(triage)
    spec = app.agents["triage"]
    journal: Any = SimpleNamespace(started=time.time(), confidence=None)
    column = b'J{"action":"resolve","confidence":0.9}'
    finished = app.runtime.monitor.finished
    for _ in range(1000):
        finished(spec, result, journal, column, [])
    start = time.perf_counter()
    for _ in range(n):
        finished(spec, result, journal, column, [])
    wall = time.perf_counter() - start
    app.close()
    # A plain-Python baseline measured in the same process: one small dict per call.
    start = time.perf_counter()
    for i in range(n):
        baseline(i, result, journal, column)
    base = time.perf_counter() - start
    return {"us_per_step": wall * 1e6 / n, "baseline_us": base * 1e6 / n, "setup_s": 0.0}


def baseline(i: int, result: Any, journal: Any, column: bytes) -> dict[str, Any]:
    """What recording a sample would cost as one plain dict built per call."""
    return {"i": i, "result": result, "at": time.time(), "started": journal.started, "c": column}


def evaluation(n: int, workdir: Path) -> Result:
    """n evaluations of a 1,000-sample ledger, with the test method and with PSI alone."""
    from seawall import DriftWatch
    from seawall.ledger import DriftSample, SQLiteStore
    from seawall.observe.evaluation import References, evaluate

    store = SQLiteStore(str(workdir / "ledger.db"))
    rng = random.Random(1)
    store.add_drift_samples(
        [
            DriftSample(
                "triage",
                f"r{i:05d}",
                float(i),
                "escalate" if rng.random() < 0.1 else "resolve",
                int(rng.gauss(500, 50)),
                int(rng.gauss(1200, 100)),
                rng.lognormvariate(-6, 0.3),
                rng.lognormvariate(0, 0.5),
                rng.gauss(0.85, 0.05),
                rng.random() < 0.95,
            )
            for i in range(1000)
        ]
    )
    out: Result = {"setup_s": 0.0}
    for method in ("test", "psi"):
        watch = DriftWatch(decision="action", method=method)  # type: ignore[arg-type]
        cache = References()
        for _ in range(5):
            evaluate(store, "triage", watch, record=True, reference_cache=cache, full=False)
        start = time.perf_counter()
        for _ in range(n):
            evaluate(store, "triage", watch, record=True, reference_cache=cache, full=False)
        out[f"{method}_ms"] = (time.perf_counter() - start) * 1e3 / n
    store.close()
    out["us_per_step"] = out["test_ms"] * 1e3
    return out


def whole_runs(n: int, workdir: Path) -> Result:
    """n sequential runs of the same agent unwatched and watched, interleaved in blocks."""
    from seawall import DriftWatch, Seawall

    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}")
    rng = random.Random(2)

    def body(ctx: Any) -> dict[str, Any]:
        return {"action": "escalate" if rng.random() < 0.1 else "resolve"}

    @app.agent(name="plain")
    def plain(ctx: Any) -> dict[str, Any]:
        return body(ctx)

    @app.agent(name="watched", drift=DriftWatch(decision="action"))
    def watched(ctx: Any) -> dict[str, Any]:
        return body(ctx)

    for _ in range(400):
        app.run(plain)
        app.run(watched)
    app.runtime.monitor.flush()
    times = {"plain": 0.0, "watched": 0.0}
    block = 100
    for _ in range(max(1, n // block)):
        for name, agent in (("plain", plain), ("watched", watched)):
            start = time.perf_counter()
            for _ in range(block):
                app.run(agent)
            if name == "watched":
                app.runtime.monitor.flush()  # the evaluations this block caused count against it
            times[name] += time.perf_counter() - start
    app.close()
    runs = max(1, n // block) * block
    plain_us = times["plain"] * 1e6 / runs
    watched_us = times["watched"] * 1e6 / runs
    return {
        "us_per_step": watched_us - plain_us,
        "plain_us": plain_us,
        "watched_us": watched_us,
        "setup_s": 0.0,
    }


WORKERS: dict[str, WorkerFn] = {
    "hot_path": hot_path,
    "evaluation": evaluation,
    "whole_runs": whole_runs,
}


def main(argv: list[str] | None = None) -> bool:
    """Measure everything (each in a fresh process) and print the targets."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        return worker_main(WORKERS, args) == 0
    print("\nDrift detection (each measurement in a fresh process):")
    hot = run_in_subprocess("hot_path", 100_000, MODULE)
    evals = run_in_subprocess("evaluation", 200, MODULE)
    runs = run_in_subprocess("whole_runs", 2000, MODULE)
    hit = True
    if "us_per_step" in hot:
        ok = hot["us_per_step"] <= 20
        hit &= ok
        print(
            f"  [{'ok' if ok else 'MISSED'}] run path: {hot['us_per_step']:.2f} us per finished run to record its drift sample (<= 20 us); a plain dict per call: {hot['baseline_us']:.2f} us -> {hot['us_per_step'] / hot['baseline_us']:.1f}x"
        )
    else:
        print(f"  hot path failed: {hot}")
    if "test_ms" in evals:
        print(
            f"  evaluation on the monitor thread (reference 300, window 100, 7 features): {evals['test_ms']:.2f} ms with method='test', {evals['psi_ms']:.2f} ms with method='psi'; every=10 -> {evals['test_ms'] * 100:.0f} us per run"
        )
    else:
        print(f"  evaluation failed: {evals}")
    if "plain_us" in runs:
        print(
            f"  sequential runs: {runs['plain_us']:.0f} us unwatched, {runs['watched_us']:.0f} us watched (evaluations included) -> {runs['us_per_step']:+.0f} us per run"
        )
    else:
        print(f"  whole runs failed: {runs}")
    return hit


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
