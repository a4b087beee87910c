"""Concurrent async runs whose endings share one group commit, in a child that kills itself there.

Usage: python group_workload.py LEDGER_URL WORKDIR RUNS [artifacts]

RUNS async runs each make one idempotent mutating call (appending ``{"i": i, "key": key}`` to
WORKDIR/effects.log unless the key is logged: it dedupes, as a payment API would), and with
``artifacts`` stage one artifact (``run-I.txt``, committed to WORKDIR/out when the run ends).
Each then waits until every run made its call, so that they end together: their endings are
written in groups (SQLite's ``together``, PostgreSQL's ``batch``); without artifacts, all of
them in one. When the first group after every call has sent its writes and not committed them
(fault point ``ledger.group.commit``), the child writes WORKDIR/effects.killed and SIGKILLs
itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from seawall import AsyncContext, Seawall, _faults

LEASE = 0.5


def effects(workdir: Path) -> Path:
    """The side-effect log of the workload run in ``workdir``."""
    return workdir / "effects.log"


def logged(log: Path) -> list[dict[str, Any]]:
    """The side effects applied so far, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def build_app(ledger: str, workdir: Path, runs: int = 0, *, artifacts: bool = False) -> Seawall:
    """The app; with ``runs``, each run waits for all ``runs`` calls before it ends."""
    app = Seawall(
        ledger,
        lease=LEASE,
        artifacts=workdir / "out" if artifacts else None,
        staging=workdir / "staging",
    )
    log = effects(workdir)
    called = 0
    all_called = asyncio.Event() if runs else None

    @app.tool(mutating=True, idempotent=True)
    def charge(i: int, idempotency_key: str) -> int:
        if idempotency_key not in {entry["key"] for entry in logged(log)}:
            with log.open("a") as handle:
                handle.write(json.dumps({"i": i, "key": idempotency_key}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return i

    @app.agent(name="charged")
    async def charged(ctx: AsyncContext, i: int) -> int:
        nonlocal called
        value = int(await ctx.call(charge, i))
        if artifacts:
            ctx.artifacts.write_text(f"run-{i}.txt", f"charged {i}\n")
        if all_called is not None:
            called += 1
            if called == runs:
                all_called.set()
            await all_called.wait()  # every run ends in the same turn: one group
        return value

    return app


def main(ledger: str, workdir: Path, runs: int, *, artifacts: bool) -> None:
    app = build_app(ledger, workdir, runs, artifacts=artifacts)
    log = effects(workdir)

    def kill_in_the_endings_group(_name: str) -> None:
        if len(logged(log)) < runs:  # the openings' group: not this one
            return
        marker = log.with_suffix(".killed")
        marker.write_text(json.dumps({"pid": os.getpid()}))
        os.kill(os.getpid(), signal.SIGKILL)

    _faults.install("ledger.group.commit", kill_in_the_endings_group)

    async def every_run() -> None:
        await asyncio.gather(*(app.arun("charged", i=i) for i in range(runs)))

    asyncio.run(every_run())


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), artifacts="artifacts" in sys.argv[4:])
