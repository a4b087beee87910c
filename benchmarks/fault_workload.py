"""The workload of the fault matrix: a multi-step agent whose side effects go to an external log.

Each of the agent's ``steps`` reads an invoice (``lookup``: read-only), charges it (``charge``:
mutating, not idempotent) and sends a notice (``notify``: mutating, idempotent: it dedupes on its
idempotency key). Both mutating tools append ``{"tool", "run", "step", "key", "pid", "began",
"t"}`` (``began``: when the call started; ``t``: when it took effect) to the effect log, the external system of record the matrix checks the ledger against: one
``write`` of one line on a file opened for appending, fsynced before the tool returns. Each tool
spends a few milliseconds (``notify`` half of them after its effect), so a fault drawn at a
random moment often lands between a side effect and its record: in doubt.

Roles of a workload process (``python -m benchmarks.fault_workload ROLE LEDGER LOG [RUN_ID]``):

- ``run``: start a new run and see it through;
- ``resume``: wait until RUN_ID's lease lapses, take it over and see it through (or find it
  ended and say so).

The agent prints ``started RUN_ID`` when it starts executing (in whichever process: the
matrix times its faults from that line); the process's last line is its result as JSON
(``run_id``, ``status``, ``failure_cause``). A ``resume`` that never got to take the run over
prints ``{"gave_up": ...}`` and exits 3.

With ``SEAWALL_FAULTS_LEDGER`` set (Celery workers, ``celery -A
benchmarks.fault_workload:celery_app worker``) the module also defines ``celery_app`` and ``app``
on that ledger and the broker ``SEAWALL_FAULTS_BROKER``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from seawall import Context, LedgerError, Seawall, UsageError

STEPS = 3
"""Steps of the agent (each a read, a charge and a notice)."""
CALLS = 3 * STEPS
"""Tool calls of a whole run."""
LEASE = 0.5
"""Seconds of a lease: short, so a stalled or dead owner's run is taken over fast."""
BUSY_TIMEOUT = 0.25
"""Seconds a SQLite writer waits for another process's lock before the ledger counts as away."""
RETRY_TIMEOUT = 0.5
"""Seconds the PostgreSQL ledger retries a lost server before the ledger counts as away."""
WORK = 0.008
"""Seconds each tool spends before (and each mutating tool after) its effect."""
GIVE_UP = 90.0
"""Seconds a ``resume`` process waits to take a run over before it gives up."""
_printing = threading.Lock()
_sink: Any = None
"""Where :func:`say` sends lines: a ``multiprocessing`` connection, or ``None`` for stdout."""


def postgres_url(server: str, schema: str, role: str | None = None) -> str:
    """The workload's ledger URL on ``server`` (a ``postgresql://user@host:port/db`` URL).

    Args:
        server: The server's URL.
        schema: The ledger's schema.
        role: Connect as this role instead of the URL's user.
    """
    if role is not None:
        scheme, _, rest = server.partition("://")
        server = f"{scheme}://{role}@{rest.partition('@')[2]}"
    options = f"retry_timeout={RETRY_TIMEOUT}&pool_timeout={RETRY_TIMEOUT}&pool_max_size=2"
    return f"{server}?schema={schema}&{options}"


def effects(log: Path) -> list[dict[str, Any]]:
    """The effect log's entries, in the order they were appended."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def _append(log: Path, entry: dict[str, Any]) -> None:
    """Append one entry as one ``write`` (atomic among appenders) and fsync it."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def say(line: str) -> None:
    """Tell the matrix one line (any thread): on its connection, or printed and flushed."""
    with _printing:
        if _sink is not None:
            _sink.send(line)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def register(app: Seawall, log: Path, *, announce: bool = True, breaker: bool = True) -> None:
    """Register the workload's tools and agent (``settle``) on ``app``.

    Args:
        app: The app.
        log: The effect log.
        announce: Print ``started RUN_ID`` when the agent starts (off in Celery workers).
        breaker: Give the agent its default breaker (off where the runs of many schedules share
            one ledger: the failures that faults cause would open it and skip later runs).
    """

    def effect(tool: str, run: str, step: int, key: str, after: float) -> None:
        began = time.time()
        time.sleep(WORK - after)
        entry = {"tool": tool, "run": run, "step": step, "key": key, "pid": os.getpid()}
        _append(log, {**entry, "began": began, "t": time.time()})
        time.sleep(after)

    @app.tool
    def lookup(step: int) -> dict[str, Any]:
        time.sleep(WORK)
        return {"step": step, "amount": step * 10, "currency": "EUR"}

    @app.tool(mutating=True)
    def charge(run: str, step: int, amount: int, idempotency_key: str) -> dict[str, Any]:
        effect("charge", run, step, idempotency_key, after=0.0)
        return {"receipt": f"r-{step}", "amount": amount}

    @app.tool(mutating=True, idempotent=True)
    def notify(run: str, step: int, idempotency_key: str) -> str:
        effect("notify", run, step, idempotency_key, after=WORK / 2)
        return f"sent-{step}"

    @app.agent(name="settle", breaker=breaker)
    def settle(ctx: Context, steps: int) -> dict[str, Any]:
        if announce:
            say(f"started {ctx.run_id}")
        total = 0
        for step in range(1, steps + 1):
            invoice = ctx.call(lookup, step)
            receipt = ctx.call(charge, ctx.run_id, step, invoice["amount"])
            ctx.call(notify, ctx.run_id, step)
            total += receipt["amount"]
        return {"total": total, "steps": steps}


def build(ledger: str, log: Path, **options: Any) -> Seawall:
    """The workload's app on ``ledger`` (short lease and busy timeout), its effects to ``log``."""
    app = Seawall(ledger, lease=LEASE, busy_timeout=BUSY_TIMEOUT, **options)
    register(app, log)
    return app


def _printable(result: Any) -> dict[str, Any]:
    cause = None if result.failure_cause is None else result.failure_cause.value
    return {"run_id": result.run_id, "status": result.status.value, "failure_cause": cause}


def _open(ledger: str, log: Path) -> Seawall | None:
    """The app, once its ledger can be opened (it may be away); ``None`` after ``GIVE_UP``."""
    deadline = time.monotonic() + GIVE_UP
    while True:
        try:
            return build(ledger, log)
        except LedgerError:
            if time.monotonic() > deadline:
                return None
            time.sleep(LEASE / 10)


def _resume(app: Seawall, run_id: str) -> dict[str, Any] | None:
    """Take ``run_id`` over once its lease lapses; its result, or ``None`` after ``GIVE_UP``."""
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:
        try:
            run = app.ledger.run(run_id)
            if run.status.final or run.status.value == "awaiting_human":
                return {**_printable(app.ledger.result(run_id)), "ended_before": True}
            if run.lease_expires_at is None or run.lease_expires_at < time.time():
                results = app.resume(run_id)
                if results:
                    return _printable(results[0])
        except UsageError:
            pass  # its owner renewed the lease in between, or it just ended: look again
        except LedgerError:
            pass  # the ledger is away: look again
        time.sleep(LEASE / 10)
    return None


def main(argv: list[str]) -> int:
    """Run one workload process (see the module docstring); return its exit code."""
    role, ledger, log = argv[0], argv[1], Path(argv[2])
    app = _open(ledger, log)
    if app is None:
        say(json.dumps({"gave_up": GIVE_UP}))
        return 3
    try:
        if role == "run":
            printed: dict[str, Any] | None = _printable(app.run("settle", steps=STEPS))
        else:
            printed = _resume(app, argv[3])
        if printed is None:
            say(json.dumps({"gave_up": GIVE_UP}))
            return 3
        say(json.dumps(printed))
        return 0
    finally:
        app.close()


def process_main(argv: list[str], lines: Any, errors: str) -> None:
    """Entry of a workload process started by ``multiprocessing``: :func:`main`, its lines to
    ``lines`` (a connection; a traceback as an ``error`` line), its exit code as the process's,
    its standard error (Seawall's warnings) to the file ``errors``."""
    global _sink  # noqa: PLW0603 - one process, one sink, set before anything is said
    _sink = lines
    fd = os.open(errors, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        code = main(argv)
    except BaseException:
        say("error " + traceback.format_exc())
        raise
    lines.close()
    sys.exit(code)


QUEUE = "seawall-faults"
VISIBILITY = 2.0
"""Seconds before Redis hands an unacknowledged message (a paused worker's) to another worker."""


def celery_pair(ledger: str, broker: str, log: Path) -> tuple[Any, Seawall]:
    """The Celery app and the Seawall app of the Celery batch (workers and submitter alike)."""
    from celery import Celery

    from seawall.integrations.celery import CeleryExecutor

    celery_app = Celery("seawall-faults", broker=broker, set_as_current=False)
    celery_app.conf.broker_transport_options = {
        "visibility_timeout": VISIBILITY,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    celery_app.conf.broker_connection_retry_on_startup = True
    app = Seawall(
        ledger,
        lease=LEASE,
        busy_timeout=BUSY_TIMEOUT,
        executor=CeleryExecutor(celery_app, queue=QUEUE),
    )
    register(app, log, announce=False, breaker=False)
    return celery_app, app


if "SEAWALL_FAULTS_LEDGER" in os.environ:
    celery_app, app = celery_pair(
        os.environ["SEAWALL_FAULTS_LEDGER"],
        os.environ["SEAWALL_FAULTS_BROKER"],
        Path(os.environ["SEAWALL_FAULTS_EFFECTS"]),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
