"""Load benchmark of the Celery executor: N single-step runs on 4 worker processes.

Three scenarios on the same workload (one agent, one journaled mutating call per run):

1. ``celery``: N runs submitted to 4 Celery workers (prefork, one pool process each).
2. ``celery+kill``: the same while a worker executing a run is SIGKILLed whole (main process and
   pool) after 1 s and then every 10 s, and restarted. Redis keeps its default visibility
   timeout (an hour): the killed worker's runs are taken over by the takeover sweeps. Prints the
   takeover latency (p50/p99, from the kill to the run's claim by another worker) and fails when
   no worker was killed or no run was taken over.
3. ``local``: the same N runs submitted to the local executor (4 submission threads).

``celery`` and ``local`` take turns for ``--rounds`` rounds (3), so that both see the same
drift of the machine; each prints its median round, and the ratio is of the two medians (each
round's ratio is printed too). ``celery+kill`` runs once, last.

For each: runs/s (first submission to last finish), p50/p99 submit-to-finish latency (from the
ledger's start and end times), and the proof that nothing was lost or duplicated: every run
has exactly one row, in a final status, succeeded; every run's side effect was applied exactly
once (one line in its own effect file). Every round is checked.

Usage::

    python -m benchmarks.bench_celery [--runs 10000] [--rounds 3]
                                      [--ledger auto|sqlite|postgresql]
                                      [--kill-every 10] [--workers 4]

``make bench`` runs it with ``SEAWALL_BENCH_CELERY_RUNS`` runs (default 10,000) and
``SEAWALL_BENCH_CELERY_ROUNDS`` rounds (default 3). It needs
Redis on 127.0.0.1:6379 (``SEAWALL_BENCH_REDIS``), and PostgreSQL on 127.0.0.1:5432
(``SEAWALL_BENCH_POSTGRES``) for the PostgreSQL ledger; ``auto`` falls back to SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._harness import REPO_ROOT, TMPDIR_ENV

REDIS = os.environ.get("SEAWALL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get("SEAWALL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
APP = "benchmarks.celery_app:celery_app"
Scenario = tuple[str, Callable[[Path], dict[str, Any]]]
"""A scenario's name, and what runs it in a folder of its own and returns its figures."""
CELERY_SHARE = 0.60
"""The goal: Celery's runs/s as a share of the local executor's (same ledger, same run)."""


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def ledger_for(kind: str, folder: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(ledger URL, label)``: a fresh PostgreSQL database (dropped after) or SQLite."""
    if kind == "auto":
        kind = "postgresql" if _postgres_available() else "sqlite"
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'ledger.db'}", "SQLite (one file, WAL)"
        return
    import psycopg

    name = f"seawall_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.rpartition('/')[0]}/{name}", "PostgreSQL"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_available() -> bool:
    if not _reachable(5432):
        return False
    # A connection is enough: opening a store here created the default `seawall` schema (an
    # empty ledger) in the server's database and left it there.
    try:
        import psycopg

        with psycopg.connect(POSTGRES, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception:
        return False
    return True


class Workers:
    """Celery worker processes (each its own process group), always killed at the end."""

    def __init__(self, folder: Path, env: dict[str, str], queue: str) -> None:
        self.folder = folder
        self.env = env
        self.queue = queue
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started = 0
        self.kills = 0

    def start(self, slot: int) -> None:
        self.started += 1
        log = self.folder / f"worker-{slot}-{self.started}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    APP,
                    "worker",
                    "-Q",
                    self.queue,
                    "-n",
                    f"bench{slot}-{self.started}-{self.queue}@%h",
                    "-c",
                    "1",
                    "-P",
                    "prefork",
                    "-l",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[slot] = proc

    def slot_of(self, pid: int) -> int | None:
        """The slot of the worker whose process group holds ``pid`` (``None``: gone)."""
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return next((slot for slot, proc in self.procs.items() if proc.pid == group), None)

    def kill(self, slot: int) -> None:
        proc = self.procs.pop(slot)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for slot in list(self.procs):
            self.kill(slot)


SUBMITTERS = 4
"""Threads submitting at once: a submission waits on the broker's and ledger's round trips."""


def _submit_all(app: Any, n: int, tag: str) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        for _ in pool.map(lambda i: app.submit("single_step", key=f"{tag}-{i}"), range(n)):
            pass
    return time.perf_counter() - began


def _wait_all(app: Any, n: int, timeout: float) -> None:
    """Wait until the ledger holds ``n`` runs, all of them in a final status.

    It reads the ledger's kept counts (a few rows), not the runs: reading 10,000 runs twice a
    second took about a fifth of a CPU here (and PostgreSQL's time to serve them) from the
    scenario being measured, and the longer its queue took to drain the more it took.
    """
    from seawall import RunStatus

    deadline = time.monotonic() + timeout
    while True:
        counts: Counter[str] = Counter()
        for row in app.store.run_stats():
            counts[row.status] += row.runs
        if sum(counts.values()) >= n and all(RunStatus(s).final for s in +counts):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs did not all finish within {timeout:.0f} s: {dict(counts)}")
        time.sleep(0.1)


FIRST_KILL = 1.0
"""Seconds before the first kill: a short load gets one too."""
LOST = re.compile(r"(\d+) pending run\(s\) whose message the broker lost")
LAPSED = re.compile(r"(\d+) run\(s\) whose owner stopped renewing its lease")
RESENT = re.compile(
    r"^\[([\d-]+ [\d:,]+): WARNING/MainProcess\] \d+ run\(s\) whose owner stopped renewing "
    r"its lease; sent to the workers again: (.*)$",
    re.MULTILINE,
)


def _first_resends(logs: list[str]) -> dict[str, float]:
    """When a sweep first sent each lapsed run again, from the workers' logs (local time)."""
    first: dict[str, float] = {}
    for text in logs:
        for stamp, ids in RESENT.findall(text):
            at = time.mktime(time.strptime(stamp.split(",")[0], "%Y-%m-%d %H:%M:%S"))
            at += int(stamp.split(",")[1]) / 1000
            for run_id in re.findall(r"(\w+) \(of ", ids):
                first[run_id] = min(first.get(run_id, at), at)
    return first


def _victim(app: Any, workers: Workers, stop: threading.Event) -> tuple[int, str] | None:
    """A worker executing a run right now, and the run (looked for during 2 s at most)."""
    deadline = time.monotonic() + 2.0
    while not stop.is_set() and time.monotonic() < deadline:
        for run in app.ledger.runs(status="running", limit=20):
            slot = workers.slot_of(int((run.lease_owner or "::").split(":")[1] or 0))
            if slot is not None:
                return slot, run.run_id
        time.sleep(0.01)
    return None


def _takeovers(app: Any, kills: list[tuple[float, str]]) -> list[float]:
    """Seconds from each kill to another worker's claim of the run the victim was executing.

    The claim is when the taker closed the dead attempt (its end), or, for a run killed before
    its attempt began, when the taker's attempt began. A run that ended before the kill landed
    was not taken over: it is left out.
    """
    from seawall import FailureCause

    latencies = []
    for killed_at, run_id in kills:
        for attempt in app.ledger.attempts(run_id):
            crashed = attempt.failure_cause is FailureCause.CRASHED and attempt.end_time
            if crashed and attempt.start_time <= killed_at <= attempt.end_time:
                latencies.append(attempt.end_time - killed_at)
                break
            if attempt.start_time > killed_at:
                latencies.append(attempt.start_time - killed_at)
                break
    return sorted(latencies)


def _percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def _measure(app: Any, n: int, effects: Path, tag: str) -> dict[str, Any]:
    """Read the outcome back from the ledger and the side-effect files, and check them."""
    from seawall import RunStatus

    runs = app.ledger.runs(limit=n + 10)
    lost_or_extra = len(runs) - n
    not_ok = Counter(run.status.value for run in runs if run.status is not RunStatus.SUCCEEDED)
    keys = Counter(app.ledger.inputs(run.run_id)["key"] for run in runs)
    duplicate_rows = sum(1 for count in keys.values() if count != 1)
    files = {path.name: path for path in effects.iterdir() if path.name.startswith(tag)}
    applied = Counter({name: len(path.read_text().splitlines()) for name, path in files.items()})
    missing_effects = n - sum(1 for count in applied.values() if count > 0)
    repeated_effects = sum(1 for count in applied.values() if count > 1)
    latencies = sorted((run.end_time - run.start_time) for run in runs if run.end_time is not None)
    first = min(run.start_time for run in runs)
    last = max(run.end_time or 0.0 for run in runs)
    crashed = sum(1 for run in runs if run.attempts > 1)
    return {
        "runs": n,
        "runs_per_s": n / (last - first),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "lost_or_extra_rows": lost_or_extra,
        "duplicate_rows": duplicate_rows,
        "not_succeeded": dict(not_ok),
        "missing_effects": missing_effects,
        "repeated_effects": repeated_effects,
        "resumed_runs": crashed,
    }


def _celery(
    n: int, ledger_kind: str, kill_every: float | None, workers_n: int, base: Path
) -> dict[str, Any]:
    from benchmarks.celery_app import LEASE, build, celery_for
    from seawall.integrations.celery import CeleryExecutor

    tag = uuid.uuid4().hex[:10]
    queue = f"seawall-bench-{tag}"
    prefix = f"seawall-bench-{tag}:"
    effects = base / "effects"
    effects.mkdir()
    ready = base / "ready"
    ready.mkdir()
    with ledger_for(ledger_kind, base) as (ledger, label):
        celery_app = celery_for(REDIS, prefix)
        app = build(ledger, effects, CeleryExecutor(celery_app, queue=queue))
        env = dict(os.environ)
        env.update(
            SEAWALL_BENCH_LEDGER=ledger,
            SEAWALL_BENCH_BROKER=REDIS,
            SEAWALL_BENCH_PREFIX=prefix,
            SEAWALL_BENCH_QUEUE=queue,
            SEAWALL_BENCH_EFFECTS=str(effects),
            SEAWALL_BENCH_READY=str(ready),
            # The workers import the submitter's seawall (a PYTHONPATH given to it comes first).
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
        )
        workers = Workers(base, env, queue)
        stop = threading.Event()
        killer: threading.Thread | None = None
        kills: list[tuple[float, str]] = []
        try:
            for slot in range(workers_n):
                workers.start(slot)
            # Every worker must consume before the clock starts.
            deadline = time.monotonic() + 60
            while len(list(ready.iterdir())) < workers_n:
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not start; see their logs in " + str(base))
                time.sleep(0.1)
            if kill_every is not None:

                def kill_loop() -> None:
                    wait = FIRST_KILL
                    while not stop.wait(wait):
                        wait = kill_every
                        victim = _victim(app, workers, stop)
                        if victim is None:
                            continue
                        slot, run_id = victim
                        kills.append((time.time(), run_id))
                        workers.kill(slot)
                        workers.kills += 1
                        workers.start(slot)

                killer = threading.Thread(target=kill_loop, daemon=True)
                killer.start()
            submit_s = _submit_all(app, n, tag)
            _wait_all(app, n, timeout=max(600.0, n / 5))
        finally:
            stop.set()
            if killer is not None:
                killer.join(timeout=60)
            workers.close()
        result = _measure(app, n, effects, tag)
        logs = [log.read_text(errors="replace") for log in base.glob("worker-*.log")]
        first_resent = _first_resends(logs)
        result |= {
            "ledger": label,
            "submit_per_s": n / submit_s,
            "kills": workers.kills,
            "kill_scenario": kill_every is not None,
            "lease": LEASE,
            "takeovers": _takeovers(app, kills),
            "detections": sorted(
                first_resent[run_id] - killed_at
                for killed_at, run_id in kills
                if first_resent.get(run_id, 0.0) > killed_at
            ),
            "resent_lost": sum(int(c) for text in logs for c in LOST.findall(text)),
            "resent_lapsed": sum(int(c) for text in logs for c in LAPSED.findall(text)),
        }
        app.close()
        _purge(prefix)
        celery_app.close()
        return result


def _purge(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _local(n: int, ledger_kind: str, threads: int, base: Path) -> dict[str, Any]:
    from benchmarks.celery_app import build
    from seawall import LocalExecutor

    tag = uuid.uuid4().hex[:10]
    effects = base / "effects"
    effects.mkdir()
    with ledger_for(ledger_kind, base) as (ledger, label):
        app = build(ledger, effects, LocalExecutor())
        submit_s = _submit_all(app, n, tag)
        _wait_all(app, n, timeout=max(600.0, n / 5))
        result = _measure(app, n, effects, tag)
        result |= {"ledger": label, "submit_per_s": n / submit_s, "kills": 0}
        app.close()
        return result


def _intact(r: dict[str, Any]) -> bool:
    return (
        r["lost_or_extra_rows"] == 0
        and r["duplicate_rows"] == 0
        and not r["not_succeeded"]
        and r["missing_effects"] == 0
        and r["repeated_effects"] == 0
    )


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round of median runs/s (the lower of the two middle ones for an even count)."""
    return sorted(rounds, key=lambda r: float(r["runs_per_s"]))[(len(rounds) - 1) // 2]


def _line(name: str, rounds: list[dict[str, Any]]) -> str:
    """One scenario's line: its median round, checked in every round."""
    bad = [r for r in rounds if not _intact(r)]
    r = bad[0] if bad else _median_round(rounds)
    intact = not bad
    killed = not r.get("kill_scenario") or (r["kills"] > 0 and bool(r["takeovers"]))
    ok = intact and killed
    proof = (
        "nothing lost or duplicated: every run one final row (succeeded), every side effect once"
        if intact
        else (
            f"CHECK FAILED: rows lost/extra {r['lost_or_extra_rows']}, duplicate rows "
            f"{r['duplicate_rows']}, not succeeded {r['not_succeeded']}, effects missing "
            f"{r['missing_effects']}, repeated {r['repeated_effects']}"
        )
    )
    if not killed:
        proof += (
            f"; CHECK FAILED: the kill scenario killed {r['kills']} workers and took over "
            f"{len(r['takeovers'])} runs (it must kill a worker mid-run and take its run over)"
        )
    kills = ""
    if r.get("kill_scenario"):
        kills = (
            f", {r['kills']} workers SIGKILLed mid-run, {len(r['takeovers'])} of their runs "
            f"taken over ({r['resumed_runs']} resumed after a started attempt)"
        )
    if r.get("takeovers"):
        taken = r["takeovers"]
        kills += (
            f"; takeover latency from the kill (lease {r['lease']:g} s, visibility timeout left "
            f"at an hour): claimed by another worker p50 {1000 * statistics.median(taken):,.0f} "
            f"ms, p99 {1000 * _percentile(taken, 0.99):,.0f} ms ({len(taken)} runs)"
        )
        found = r["detections"]
        if found:
            kills += (
                f", re-sent by the sweep p50 {1000 * statistics.median(found):,.0f} ms, p99 "
                f"{1000 * _percentile(found, 0.99):,.0f} ms (the rest is the queue ahead of it)"
            )
    if r.get("resent_lapsed") or r.get("resent_lost"):
        kills += (
            f"; sweeps re-sent {r['resent_lapsed']} lapsed and {r['resent_lost']} lost-message "
            "run ids"
        )
    each = ""
    if len(rounds) > 1:
        each = (
            f" (median of {len(rounds)} rounds: "
            + "/".join(f"{x['runs_per_s']:,.0f}" for x in rounds)
            + ")"
        )
    return (
        f"  [{'ok' if ok else 'FAILED'}] {name:<13} {r['runs']:,} runs: {r['runs_per_s']:,.0f} runs/s"
        f"{each}, p50 {r['p50_ms']:,.0f} ms, p99 {r['p99_ms']:,.0f} ms submit-to-finish "
        f"(submit {r['submit_per_s']:,.0f}/s){kills}; {proof}"
    )


def main(argv: list[str] | None = None) -> bool:
    """Run the scenarios and print one line each; false when a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=int(os.environ.get("SEAWALL_BENCH_CELERY_RUNS", "10000"))
    )
    parser.add_argument(
        "--rounds", type=int, default=int(os.environ.get("SEAWALL_BENCH_CELERY_ROUNDS", "3"))
    )
    parser.add_argument("--ledger", choices=["auto", "sqlite", "postgresql"], default="auto")
    parser.add_argument("--kill-every", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args([] if argv is None else argv)
    print(f"\nCelery executor under load ({args.workers} worker processes, Redis broker):")
    if not _reachable(6379):
        print("  skipped: Redis is not running on 127.0.0.1:6379")
        return True
    ok = True
    base_dir = os.environ.get(TMPDIR_ENV) or None
    celery: Scenario = (
        "celery",
        lambda base: _celery(args.runs, args.ledger, None, args.workers, base),
    )
    local: Scenario = ("local", lambda base: _local(args.runs, args.ledger, args.workers, base))
    killing: Scenario = (
        "celery+kill",
        lambda base: _celery(args.runs, args.ledger, args.kill_every, args.workers, base),
    )
    # Celery and local take turns, so that both see the same drift of a shared machine (their
    # runs/s move by a quarter from one minute to the next here); the kill scenario runs once.
    results: dict[str, list[dict[str, Any]]] = {}
    for name, scenario in [celery, local] * max(1, args.rounds) + [killing]:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-", dir=base_dir) as tmp:
            try:
                results.setdefault(name, []).append(scenario(Path(tmp)))
            except Exception as exc:
                ok = False
                print(f"  [FAILED] {name}: {type(exc).__name__}: {exc}")
    for name in ("celery", "celery+kill", "local"):
        if results.get(name):
            line = _line(name, results[name])
            ok &= line.startswith("  [ok]")
            print(line)
    if results.get("celery"):
        print(f"  ledger: {results['celery'][0]['ledger']}")
    if results.get("celery") and results.get("local"):
        pairs = list(zip(results["celery"], results["local"], strict=False))
        ratio = (
            _median_round(results["celery"])["runs_per_s"]
            / _median_round(results["local"])["runs_per_s"]
        )
        each = "/".join(f"{c['runs_per_s'] / lo['runs_per_s']:.2f}" for c, lo in pairs)
        print(
            f"  celery / local throughput on this machine: {ratio:.2f}x (medians; round by "
            f"round {each})"
        )
        # The throughput goal (issue 18): Celery at least 60% of the local executor's runs/s,
        # same ledger, same run. Printed, not failed on: a shared machine's noise is +-10%.
        mark = "ok" if ratio >= CELERY_SHARE else "miss"
        print(f"  [{mark}] celery >= {CELERY_SHARE:.0%} of the local executor: {ratio:.0%}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:]) else 1)
