"""The app of the guarantee tests: a run of reads and charges with an external effect log.

Each step reads an invoice (``lookup``, read-only, a dict whose keys are not in sorted order)
then charges it (``charge``, mutating, not idempotent). Every charge appends
``{"step", "key", "pid"}`` to the effect log, the system of record the tests check the ledger
against. Faults are the child process's own, at the dangerous moments:

- ``stop-in-lookup K``: SIGSTOP itself inside the read of step K (before charge K's intent);
- ``stop-after-charge K``: SIGSTOP itself after charge K's side effect, before its result is
  recorded;
- ``stop-before-finish``: SIGSTOP itself after the agent returned, before the run's end is
  recorded;
- ``kill-in-lookup K``: SIGKILL itself inside the read of step K;
- ``wait-in-lookup K`` / ``wait-after-charge K``: write ``LOG.at`` and wait for ``LOG.go``
  (the test breaks the ledger meanwhile).

Usage: python -m tests.crash.guarantees_app LEDGER_URL LOG MODE [K] [RESUME_RUN_ID]
It prints the run's result as JSON (``run_id``, ``status``, ``failure_cause``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from seawall import Context, Seawall, _faults

STEPS = 5
LEASE = 0.6


def effects(log: Path) -> list[dict[str, Any]]:
    """The effect log's entries, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def _append(log: Path, entry: dict[str, Any]) -> None:
    with log.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _signal_myself(signum: signal.Signals) -> None:
    """Stop or kill this process from this very thread, before it runs one more line.

    ``os.kill(os.getpid(), ...)`` lets the kernel deliver the signal through another thread,
    and the calling thread may go on for a moment; a signal sent to the thread itself stops (or
    kills) the process before ``pthread_kill`` returns to it.
    """
    signal.pthread_kill(threading.get_ident(), signum)


def _wait_for_go(log: Path, step: int) -> None:
    log.with_suffix(".at").write_text(str(step))
    go = log.with_suffix(".go")
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def build(ledger: str, log: Path, mode: str = "none", at: int = 0, **options: Any) -> Seawall:
    """The app; ``mode`` and ``at`` choose the child's own fault (see the module docstring)."""
    app = Seawall(ledger, lease=LEASE, **options)
    me = os.getpid()

    @app.tool
    def lookup(step: int) -> dict[str, Any]:
        if step == at and os.getpid() == me:
            if mode == "stop-in-lookup":
                _signal_myself(signal.SIGSTOP)
            elif mode == "kill-in-lookup":
                _signal_myself(signal.SIGKILL)
            elif mode == "wait-in-lookup":
                _wait_for_go(log, step)
        # Keys deliberately out of sorted order: the journal must serve them as returned.
        return {"step": step, "amount": step * 10, "currency": "EUR"}

    @app.tool(mutating=True)
    def charge(step: int, amount: int, idempotency_key: str) -> dict[str, Any]:
        _append(log, {"step": step, "amount": amount, "key": idempotency_key, "pid": os.getpid()})
        if step == at and os.getpid() == me:
            if mode == "stop-after-charge":
                _signal_myself(signal.SIGSTOP)
            elif mode == "wait-after-charge":
                _wait_for_go(log, step)
        return {"receipt": f"r-{step}", "amount": amount}

    @app.agent(name="invoices")
    def invoices(ctx: Context, n: int) -> dict[str, Any]:
        total = 0
        for step in range(1, n + 1):
            invoice = ctx.call(lookup, step)
            receipt = ctx.call(charge, step, invoice["amount"])
            total += receipt["amount"]
        return {"total": total, "steps": n}

    if mode == "stop-before-finish":

        def stop(_point: str) -> None:
            if os.getpid() == me:
                _signal_myself(signal.SIGSTOP)

        _faults.install("run.finishing", stop)
    return app


def main(argv: list[str]) -> None:
    """Run (or resume, given a run id) the invoices run; print its result as JSON."""
    ledger, log, mode = argv[0], Path(argv[1]), argv[2]
    at = int(argv[3]) if len(argv) > 3 else 0
    app = build(ledger, log, mode, at)
    try:
        if len(argv) > 4:
            results = app.resume(argv[4])
            result = results[0] if results else None
        else:
            result = app.run("invoices", n=STEPS)
        if result is None:
            print(json.dumps(None))
        else:
            cause = None if result.failure_cause is None else result.failure_cause.value
            print(
                json.dumps(
                    {"run_id": result.run_id, "status": result.status.value, "failure_cause": cause}
                )
            )
    finally:
        app.close()


if __name__ == "__main__":
    main(sys.argv[1:])
