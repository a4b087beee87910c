"""Generic helpers for per-step cost benchmarks (workload defined in ANCHORS.md).

A benchmark module registers *workers*: functions that run one workflow of ``n`` sequential
steps in the current process and report microseconds per step. The parent process never runs a
worker itself; it launches each ``(system, n)`` pair in a fresh interpreter::

    python -m <module> --worker <system> --n <n> --dir <fresh temp dir>

and reads one JSON object from the last JSON line of the child's stdout. Repetitions are
interleaved: every round runs each configuration once, in an order shuffled by a seeded RNG, so
slow drifts of the machine (page cache, thermal state, noisy neighbours) spread over all rows.

Only the standard library is used, so the harness works in any virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
"""Repository root: the working directory of every worker and the head of its PYTHONPATH."""

TMPDIR_ENV = "SEAWALL_BENCH_TMPDIR"
"""Environment variable naming the parent folder for workers' temp dirs (default: system temp)."""

WorkerFn = Callable[[int, Path], dict[str, Any]]
"""A worker: ``fn(n, workdir)`` runs warm-up plus one timed ``n``-step workflow and returns at
least ``{"us_per_step": float, "setup_s": float}``."""

Result = dict[str, Any]
Key = tuple[str, int]


class WorkerUnavailableError(Exception):
    """Raised by a worker that cannot run here (e.g. an optional package is missing)."""


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MiB (``ru_maxrss``).

    Returns:
        Peak RSS in MiB. Linux reports KiB and macOS bytes; both are converted.
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def worker_main(registry: Mapping[str, WorkerFn], argv: Sequence[str] | None = None) -> int:
    """Run one registered worker and print its result as a single JSON line on stdout.

    A missing optional package (``ImportError``) or :class:`WorkerUnavailableError` prints
    ``{"skipped": "<reason>"}`` and still exits 0. Any other exception prints the traceback to
    stderr and exits 1.

    Args:
        registry: Worker functions by system name.
        argv: Arguments such as ``["--worker", "baseline", "--n", "200", "--dir", "/tmp/x"]``.

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description="Run one benchmark worker.")
    parser.add_argument("--worker", required=True, choices=sorted(registry))
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    out: Result
    try:
        out = dict(registry[args.worker](args.n, args.dir))
    except ImportError as exc:
        out = {"skipped": f"{exc.name or exc} is not installed"}
    except WorkerUnavailableError as exc:
        out = {"skipped": str(exc).splitlines()[0] if str(exc) else "skipped"}
    except Exception:  # any failure of a peer becomes a failed row
        traceback.print_exc()
        return 1
    out.setdefault("system", args.worker)
    out.setdefault("n", args.n)
    out["rss_mb"] = round(peak_rss_mb(), 1)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


def _last_json_line(text: str) -> Result | None:
    """Return the last line of ``text`` that parses as a JSON object, if any."""
    for raw in reversed(text.splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def run_in_subprocess(system: str, n: int, module: str, timeout_s: float = 600.0) -> Result:
    """Run one worker in a fresh interpreter with a fresh temp dir and return its result.

    Args:
        system: Registered worker name.
        n: Number of steps of the timed workflow.
        module: Module to run with ``python -m``; it must call :func:`worker_main` on
            ``--worker``.
        timeout_s: Kill the worker after this many seconds.

    Returns:
        The worker's JSON object (``us_per_step``, ``rss_mb``, ``setup_s``, ...), or
        ``{"skipped": reason}``, or ``{"error": message}`` if the worker failed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONHASHSEED", "0")
    base = os.environ.get(TMPDIR_ENV) or None
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-", dir=base) as tmp:
        cmd = [sys.executable, "-m", module, "--worker", system, "--n", str(n), "--dir", tmp]
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                check=False,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout_s:.0f} s"}
        wall_s = time.perf_counter() - started
    result = _last_json_line(proc.stdout) if proc.returncode == 0 else None
    if result is None:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        tail = lines[-1].strip() if lines else "no output"
        return {"error": f"exit {proc.returncode}: {tail}"[:200]}
    result["wall_s"] = round(wall_s, 3)
    return result


def interleaved(
    systems: Sequence[str],
    ns: Sequence[int],
    rounds: int,
    module: str,
    *,
    seed: int = 0,
    log: TextIO | None = sys.stderr,
) -> dict[Key, list[Result]]:
    """Run every ``(system, n)`` once per round, in a shuffled order each round.

    Args:
        systems: Worker names.
        ns: Step counts.
        rounds: Number of rounds (repetitions per configuration).
        module: Module holding the workers (see :func:`run_in_subprocess`).
        seed: Seed of the RNG that shuffles each round, so runs are reproducible.
        log: Where to write one progress line per run; ``None`` for silence.

    Returns:
        Results by ``(system, n)``, in the order of ``systems`` then ``ns``.
    """
    rng = random.Random(seed)
    configs: list[Key] = [(s, n) for s in systems for n in ns]
    results: dict[Key, list[Result]] = {c: [] for c in configs}
    skipped: dict[str, Result] = {}  # a package missing in round 1 stays missing: no relaunch
    for r in range(rounds):
        order = list(configs)
        rng.shuffle(order)
        for system, n in order:
            res = skipped.get(system) or run_in_subprocess(system, n, module)
            results[(system, n)].append(res)
            if "skipped" in res:
                skipped[system] = res
            if log is not None:
                status = (
                    f"{res['us_per_step']:.2f} us/step"
                    if "us_per_step" in res
                    else res.get("skipped") or res.get("error")
                )
                print(f"[round {r + 1}/{rounds}] {system} N={n}: {status}", file=log, flush=True)
    return results


def summarize(results: Mapping[Key, Sequence[Result]]) -> list[Result]:
    """Reduce raw results to one row per configuration.

    Args:
        results: Output of :func:`interleaved`.

    Returns:
        Rows with ``system``, ``n``, ``reps``, ``median_us``, ``min_us``, ``max_us``,
        ``steps_per_s`` (1e6 / median), ``rss_mb`` and ``setup_s`` (medians), ``journal_rows``
        (of the last run, if reported) and ``status`` (``ok``, ``skipped: ...`` or
        ``error: ...``; errors are noted even when other reps succeeded).
    """
    rows: list[Result] = []
    for (system, n), runs in results.items():
        ok = [r for r in runs if "us_per_step" in r]
        errors = [str(r["error"]) for r in runs if "error" in r]
        row: Result = {"system": system, "n": n, "reps": len(ok)}
        if ok:
            us = [float(r["us_per_step"]) for r in ok]
            med = statistics.median(us)
            row.update(
                median_us=med,
                min_us=min(us),
                max_us=max(us),
                steps_per_s=1e6 / med if med > 0 else float("inf"),
                rss_mb=statistics.median(float(r["rss_mb"]) for r in ok),
                setup_s=statistics.median(float(r.get("setup_s", 0.0)) for r in ok),
                journal_rows=ok[-1].get("journal_rows"),
                version=ok[-1].get("version"),
            )
        for extra in ("cpu_us", "server_cpu_us"):  # CPU per step, where a worker measured it
            measured = [float(r[extra]) for r in ok if r.get(extra) is not None]
            if measured:
                row[extra] = statistics.median(measured)
        if errors:
            row["status"] = f"error: {errors[-1]}"
        elif ok:
            row["status"] = "ok"
        else:
            reason = next((r["skipped"] for r in runs if "skipped" in r), "no runs")
            row["status"] = f"skipped: {reason}"
        rows.append(row)
    return rows


TABLE_COLUMNS: list[tuple[str, str]] = [
    ("system", "system"),
    ("n", "N"),
    ("reps", "reps"),
    ("median_us", "median us/step"),
    ("min_us", "min us/step"),
    ("max_us", "max us/step"),
    ("steps_per_s", "steps/s"),
    ("rss_mb", "peak RSS MB"),
    ("setup_s", "setup s"),
    ("journal_rows", "journal rows"),
    ("status", "status"),
]


CELL_FORMATS: dict[str, str] = {"steps_per_s": "{:,.0f}", "rss_mb": "{:.1f}"}
"""Format strings for float cells by column key; other floats get two decimals."""


def _fmt(key: str, value: Any) -> str:
    """Format one table cell; ``None`` shows as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return CELL_FORMATS.get(key, "{:.2f}").format(value)
    return str(value)


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]] = TABLE_COLUMNS,
    file: TextIO | None = None,
) -> None:
    """Print rows as a plain text table with aligned columns.

    Numbers are right-aligned, text left-aligned, missing values shown as ``-``.

    Args:
        rows: Mappings from column key to value (e.g. from :func:`summarize`).
        columns: ``(key, header)`` pairs, in display order.
        file: Output stream; standard output by default.
    """
    rows = list(rows)
    cells = [[_fmt(k, r.get(k)) for k, _ in columns] for r in rows]
    numeric = [
        all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in rows)
        for k, _ in columns
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = file or sys.stdout
    print(line([h for _, h in columns]), file=out)
    print(line(["-" * w for w in widths]), file=out)
    for c in cells:
        print(line(c), file=out)


def fsync_probe(calls: int = 200, size: int = 100, directory: str | None = None) -> float:
    """Measure the median latency of appending ``size`` bytes and calling ``os.fsync``.

    Args:
        calls: Number of timed append+fsync calls.
        size: Bytes written per call.
        directory: Parent of the temp dir; defaults to ``$SEAWALL_BENCH_TMPDIR`` or the
            system temp dir, i.e. the same disk the workers use.

    Returns:
        Median microseconds per append+fsync.
    """
    base = directory or os.environ.get(TMPDIR_ENV) or None
    data = b"x" * (size - 1) + b"\n"
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-fsync-", dir=base) as tmp:
        fd = os.open(Path(tmp) / "probe.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for _ in range(calls):
                t0 = time.perf_counter()
                os.write(fd, data)
                os.fsync(fd)
                samples.append((time.perf_counter() - t0) * 1e6)
        finally:
            os.close(fd)
    return statistics.median(samples)


def fs_type(path: str | None = None) -> str:
    """Return the file system type holding ``path`` (Linux only; ``"unknown"`` elsewhere).

    Args:
        path: A path; defaults to the folder workers put their databases in.

    Returns:
        The type from ``/proc/mounts`` of the longest mount point containing ``path``.
    """
    target = os.path.realpath(path or os.environ.get(TMPDIR_ENV) or tempfile.gettempdir())
    best, kind = "", "unknown"
    try:
        with Path("/proc/mounts").open(encoding="utf-8") as mounts:
            for entry in mounts:
                fields = entry.split()
                if len(fields) < 3:
                    continue
                mnt = fields[1].replace("\\040", " ")
                inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, kind = mnt, fields[2]
    except OSError:
        pass
    return kind
