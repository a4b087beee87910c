"""A 50-step workload for crash tests, run as a child process that kills itself.

Usage: python workload.py LEDGER_URL LOG_PATH MODE [KILL_AT] [DURABILITY]

MODE:
  before-step        SIGKILL inside the agent just before step KILL_AT is called
  after-effect       SIGKILL inside the idempotent tool at step KILL_AT, after its side effect
                     and before the journal records the result
  after-effect-plain the same with a tool that is not declared idempotent
  none               run to completion (used by the resuming side through build_app)

Each mutating step appends ``{"step": n, "key": idempotency_key}`` to LOG_PATH; the idempotent
tool skips keys it has already logged (it dedupes, as a payment API would).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from seawall import Context, Guards, Seawall

STEPS = 50
LEASE = 0.5


def _logged_keys(log: Path) -> set[str]:
    if not log.exists():
        return set()
    return {json.loads(line)["key"] for line in log.read_text().splitlines() if line}


def _append(log: Path, step: int, key: str) -> None:
    with log.open("a") as handle:
        handle.write(json.dumps({"step": step, "key": key}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def build_app(
    ledger: str, log: Path, mode: str = "none", kill_at: int = 0, durability: str = "crash"
) -> Seawall:
    """The workload's app: tools append to ``log``; the child kills itself per ``mode``."""
    app = Seawall(ledger, lease=LEASE, durability=durability)  # type: ignore[arg-type]
    reads = log.with_suffix(".reads")

    @app.tool(mutating=True, idempotent=True)
    def append_idempotent(step: int, idempotency_key: str) -> dict[str, Any]:
        if idempotency_key not in _logged_keys(log):
            _append(log, step, idempotency_key)
        if mode == "after-effect" and step == kill_at:
            signal.pthread_kill(threading.get_ident(), signal.SIGKILL)  # this thread, at once
        return {"step": step}

    @app.tool(mutating=True)
    def append_plain(step: int, idempotency_key: str) -> dict[str, Any]:
        _append(log, step, idempotency_key)
        if mode == "after-effect-plain" and step == kill_at:
            signal.pthread_kill(threading.get_ident(), signal.SIGKILL)  # this thread, at once
        return {"step": step}

    @app.tool
    def lookup(step: int) -> int:
        with reads.open("a") as handle:
            handle.write(f"{step}\n")
        return step * 2

    tool = append_plain if mode == "after-effect-plain" else append_idempotent

    # Fifty writes in a row without a verification gate: the default guard would stop the 4th.
    @app.agent(name="fifty", guards=Guards(max_mutations_without_gate=None))
    def fifty(ctx: Context, steps: int) -> dict[str, Any]:
        total = 0
        for step in range(1, steps + 1):
            if mode == "before-step" and step == kill_at:
                signal.pthread_kill(threading.get_ident(), signal.SIGKILL)  # this thread, at once
            total += ctx.call(lookup, step)
            ctx.call(tool, step)
        return {"total": total, "finished_at": ctx.now()}

    return app


if __name__ == "__main__":
    ledger_url, log_path, run_mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    kill = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    level = sys.argv[5] if len(sys.argv) > 5 else "crash"
    child_app = build_app(ledger_url, log_path, run_mode, kill, level)
    child_app.run("fifty", steps=STEPS)
