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
- ``kill-before-charge K``: SIGKILL itself inside charge K, after its intent and before its
  side effect (the charge is in doubt, and did not happen);
- ``kill-after-charge K``: SIGKILL itself after charge K's side effect (in doubt, happened);
- ``bug-at K``: the read of step K raises ``ValueError`` (a bug; the run fails partial_write);
- ``wait-in-lookup K`` / ``wait-after-charge K``: write ``LOG.at`` and wait for ``LOG.go``
  (the test breaks the ledger meanwhile).
- ``stop-in-publish``: runs the ``report`` agent instead, whose idempotent ``publish`` tool
  writes to a store that keeps the highest fencing token it accepted (``LOG.store``); the child
  SIGSTOPs itself inside ``publish``, after it was handed its token and before it writes.

Usage: python -m tests.crash.guarantees_app LEDGER_URL LOG MODE [K] [RESUME_RUN_ID | redrive]
It prints the run's result as JSON (``run_id``, ``status``, ``failure_cause``); ``redrive``
redrives the DLQ instead and prints the outcomes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from seawall import Context, Seawall, _faults
from seawall.ledger import RunQuery

STEPS = 5
LEASE = 0.6


ROOT = Path(__file__).resolve().parents[2]


def child(ledger: str, log: Path, mode: str, at: int, action: str | None = None) -> int:
    """Run this app in a child process (``action``: a run id to resume, or ``redrive``).

    Returns:
        The child's exit code (negative: the signal that killed it).
    """
    argv = [sys.executable, "-m", "tests.crash.guarantees_app", ledger, str(log), mode, str(at)]
    if action is not None:
        argv.append(action)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode


def lapse() -> None:
    """Wait until a dead owner's lease has certainly lapsed."""
    time.sleep(LEASE * 1.5)


def the_run(app: Seawall) -> str:
    """The id of the one run this app recorded (redrives and replays aside)."""
    [run] = [r for r in app.store.list_runs(RunQuery()) if r.replay_of is None]
    return run.run_id


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


def store_state(path: Path) -> dict[str, Any]:
    """The fenced store's state: the highest token accepted, the writes and the refusals."""
    if not path.exists():
        return {"token": 0, "writes": [], "refused": []}
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _fenced_write(path: Path, text: str, token: int) -> bool:
    """A store that refuses a writer whose fencing token is below one it has accepted."""
    state = store_state(path)
    accepted = token >= state["token"]
    if accepted:
        state["token"] = token
        state["writes"].append({"text": text, "token": token, "pid": os.getpid()})
    else:
        state["refused"].append({"text": text, "token": token, "pid": os.getpid()})
    path.write_text(json.dumps(state))
    return accepted


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
            elif mode == "bug-at":
                raise ValueError(f"a bug reading invoice {step}")
        # Keys deliberately out of sorted order: the journal must serve them as returned.
        return {"step": step, "amount": step * 10, "currency": "EUR"}

    @app.tool(mutating=True)
    def charge(step: int, amount: int, idempotency_key: str) -> dict[str, Any]:
        if step == at and os.getpid() == me and mode == "kill-before-charge":
            _signal_myself(signal.SIGKILL)
        _append(log, {"step": step, "amount": amount, "key": idempotency_key, "pid": os.getpid()})
        if step == at and os.getpid() == me and mode == "kill-after-charge":
            _signal_myself(signal.SIGKILL)
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

    @app.tool(mutating=True, idempotent=True)
    def publish(text: str, fencing_token: int) -> bool:
        if os.getpid() == me and mode == "stop-in-publish":
            _signal_myself(signal.SIGSTOP)
        return _fenced_write(log.with_suffix(".store"), text, fencing_token)

    @app.agent(name="report")
    def report(ctx: Context, text: str) -> bool:
        return bool(ctx.call(publish, text))

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
        if len(argv) > 4 and argv[4] == "redrive":
            outcomes = app.dlq.redrive()
            print(json.dumps([[o.entry.run_id, o.run_id, o.status] for o in outcomes]))
            return
        if len(argv) > 4:
            results = app.resume(argv[4])
            result = results[0] if results else None
        elif mode == "stop-in-publish":
            result = app.run("report", text="quarterly")
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
