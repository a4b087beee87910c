"""Committing staged artifacts against writing the same files straight to the destination.

Target (issue: partial writes): committing a run of 100 small artifacts costs at most 2x the
time of writing them directly to the destination without staging. Printed three ways:

- direct: open/write/close 100 files of 1 KiB into a fresh ``<destination>/<run_id>/``;
- staged run: a whole run whose agent writes the same files through ``ctx.artifacts`` and
  commits them (seal with sha256 + manifest, ledger intent, atomic rename, ledger finish);
- commit overhead: the staged run minus an identical run that writes nothing (the run's own
  bookkeeping is the durable core's, measured elsewhere).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

FILES = 100
SIZE = 1024
REPEATS = 30


def _direct(root: Path, index: int, payload: bytes) -> float:
    start = time.perf_counter()
    folder = root / f"direct-{index}"
    folder.mkdir(parents=True)
    for i in range(FILES):
        with (folder / f"file-{i:03d}.txt").open("wb") as handle:
            handle.write(payload)
    return time.perf_counter() - start


def measure() -> dict[str, float]:
    """Return medians in milliseconds and the ratios."""
    from seawall import Seawall

    payload = b"x" * SIZE
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        root = Path(tmp)
        app = Seawall(
            f"sqlite:///{root / 'ledger.db'}", artifacts=root / "out", staging=root / "staging"
        )

        @app.agent(name="writer")
        def writer(ctx: Any, files: int) -> int:
            for i in range(files):
                ctx.artifacts.write_bytes(f"file-{i:03d}.txt", payload)
            return files

        @app.agent(name="empty")
        def empty(ctx: Any, files: int) -> int:
            return files

        for _ in range(3):
            app.run(writer, files=FILES).raise_for_status()
            app.run(empty, files=FILES)
            _direct(root, -1 - _, payload)
        direct, staged, bare = [], [], []
        for i in range(REPEATS):
            direct.append(_direct(root, i, payload))
            start = time.perf_counter()
            app.run(writer, files=FILES).raise_for_status()
            staged.append(time.perf_counter() - start)
            start = time.perf_counter()
            app.run(empty, files=FILES)
            bare.append(time.perf_counter() - start)
        app.close()
    d, s, b = (statistics.median(x) * 1e3 for x in (direct, staged, bare))
    return {
        "direct_ms": d,
        "staged_run_ms": s,
        "bare_run_ms": b,
        "run_ratio": s / d,
        "commit_ratio": (s - b) / d,
    }


def main() -> bool:
    """Print the figures; return whether the target is met."""
    m = measure()
    print(f"\nArtifacts: {FILES} files of {SIZE} bytes, median of {REPEATS}:")
    print(f"  direct writes to the destination: {m['direct_ms']:.2f} ms")
    print(
        f"  a run that stages and commits them: {m['staged_run_ms']:.2f} ms (a run writing nothing: {m['bare_run_ms']:.2f} ms)"
    )
    ok = m["commit_ratio"] <= 2.0
    print(
        f"  [{'ok' if ok else 'MISSED'}] staging + commit <= 2x direct writes: {m['commit_ratio']:.2f}x (whole run: {m['run_ratio']:.2f}x)"
    )
    return ok


if __name__ == "__main__":
    main()
