"""Child process for artifact and compensation crash tests.

Usage: python artifact_workload.py LEDGER_URL WORKDIR DESTINATION MODE [POINT]

MODE:
  stage-half   write 10 artifacts, SIGKILL after the 5th
  commit       write 10 artifacts and succeed; SIGKILL at fault point POINT of the commit
  saga         three compensable bookings, then a permanent failure; SIGKILL at POINT
  saga-plain   the same with compensations that cannot dedupe
  none         build the app only (the resuming side imports build_app)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from seawall import Context, Retry, Seawall, _faults

FILES = 10
LEASE = 0.5


def _kill(_: str) -> None:
    signal.pthread_kill(threading.get_ident(), signal.SIGKILL)  # this thread, at once


def _log(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def build_app(ledger: str, workdir: Path, destination: str, mode: str = "none") -> Seawall:
    app = Seawall(
        ledger,
        lease=LEASE,
        artifacts=destination,
        staging=workdir / "staging",
        retry=Retry(attempts=3, initial=0.01),
    )
    undo_log = workdir / "undo.log"

    def undo_deduping(result: dict[str, Any], item: str, idempotency_key: str) -> None:
        done = set()
        if undo_log.exists():
            done = {json.loads(line)["key"] for line in undo_log.read_text().splitlines()}
        if idempotency_key not in done:
            _log(undo_log, {"key": idempotency_key, "item": item})

    def undo_plain(result: dict[str, Any], item: str) -> None:
        _log(undo_log, {"key": None, "item": item})

    @app.tool(mutating=True, compensate=undo_deduping)
    def book(item: str) -> dict[str, Any]:
        _log(workdir / "book.log", {"item": item})
        return {"item": item}

    @app.tool(mutating=True, compensate=undo_plain)
    def book_plain(item: str) -> dict[str, Any]:
        _log(workdir / "book.log", {"item": item})
        return {"item": item}

    @app.agent(name="writer")
    def writer(ctx: Context, files: int) -> int:
        for i in range(files):
            ctx.artifacts.write_text(f"part-{i:02d}.txt", f"content {i}\n" * 50)
            if mode == "stage-half" and i == files // 2 - 1:
                _kill("stage")
        return files

    tool = book_plain if mode == "saga-plain" else book

    @app.agent(name="trip")
    def trip(ctx: Context) -> None:
        for item in ("flight", "hotel", "car"):
            ctx.call(tool, item)
        raise ValueError("the payment was declined")

    return app


if __name__ == "__main__":
    ledger_url, work, dest, run_mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    if len(sys.argv) > 5:
        _faults.install(sys.argv[5], _kill)
    child = build_app(ledger_url, work, dest, run_mode)
    if run_mode in ("saga", "saga-plain"):
        child.run("trip")
    else:
        child.run("writer", files=FILES)
