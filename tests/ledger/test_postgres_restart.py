"""PostgreSQL restarted in the middle of a run: the run carries on and nothing is lost.

NOTE: the test in this file RESTARTS THE SHARED POSTGRESQL SERVER (``pg_ctlcluster ... main
restart``, a few seconds). It is marked ``pg_restart``; leave it out with ``-m "not pg_restart"``.
It needs root (or the postgres user) and Debian's ``pg_ctlcluster``, and skips without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from seawall import Context, Guards, RunResult, RunStatus, Seawall
from seawall.ledger import PostgresStore

LEDGERS = ("postgres",)
pytestmark = [pytest.mark.pg_restart, pytest.mark.slow]


def _restart_postgres() -> None:
    """Restart the local PostgreSQL cluster (fast shutdown, then start)."""
    config = Path("/etc/postgresql")
    clusters = sorted(p.name for p in config.iterdir()) if config.is_dir() else []
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None or not clusters:
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster (Debian's postgresql)")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_server_restart_mid_run_loses_nothing(ledger_url: str, tmp_path: Path) -> None:
    """A run whose server restarts mid-step finishes with each side effect done once."""
    effects = tmp_path / "effects.log"
    reached, proceed = threading.Event(), threading.Event()
    app = Seawall(ledger_url + "&retry_timeout=90", lease=5.0)
    try:

        @app.tool(mutating=True)
        def write(i: int) -> int:
            with effects.open("a") as log:
                log.write(f"{i}\n")
            if i == 5:
                reached.set()
                proceed.wait(120)
            return i

        @app.tool
        def read(i: int) -> int:
            return i

        @app.agent(name="writer", guards=Guards(max_mutations_without_gate=None))
        def writer(ctx: Context, n: int) -> int:
            return sum(ctx.call(read, i) + ctx.call(write, i) for i in range(n))

        outcome: dict[str, Any] = {}
        runner = threading.Thread(target=lambda: outcome.update(result=app.run(writer, n=10)))
        runner.start()
        assert reached.wait(60)
        try:
            _restart_postgres()
        finally:
            proceed.set()
            runner.join(180)
        result: RunResult = outcome["result"]
        assert (RunStatus.SUCCEEDED, 90) == (result.status, result.output)
        assert [str(i) for i in range(10)] == effects.read_text().split()
        steps = app.steps(result.run_id)
        assert (20, {"completed"}) == (len(steps), {s.record.status for s in steps})
        assert isinstance(app.store, PostgresStore)
        assert app.store.reconnects >= 1
    finally:
        proceed.set()
        app.close()
