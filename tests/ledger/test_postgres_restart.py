"""PostgreSQL restarted in the middle of a run: the run carries on and nothing is lost.

The server restarted is a throwaway one this test starts itself (``tests/servers.py``), never the
machine's shared server.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from seawall import Context, Guards, RunResult, RunStatus, Seawall
from seawall.ledger import PostgresStore
from tests.servers import StopMode, ThrowawayPostgres

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restart_mid_run_loses_nothing(
    mode: StopMode,
    throwaway_postgres: ThrowawayPostgres,
    throwaway_postgres_ledger: str,
    tmp_path: Path,
) -> None:
    """A run whose server restarts (cleanly or as a crash) mid-step does each effect once."""
    effects = tmp_path / "effects.log"
    reached, proceed = threading.Event(), threading.Event()
    app = Seawall(throwaway_postgres_ledger + "&retry_timeout=90", lease=5.0)
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
            before = throwaway_postgres.pid
            throwaway_postgres.restart(mode)
            assert before != throwaway_postgres.pid
        finally:
            proceed.set()
            runner.join(180)
        result: RunResult = outcome["result"]
        assert (RunStatus.SUCCEEDED, 90) == (result.status, result.output)
        assert [str(i) for i in range(10)] == effects.read_text().split()
        steps = app.ledger.steps(result.run_id)
        assert (20, {"completed"}) == (len(steps), {s.record.status for s in steps})
        assert isinstance(app.store, PostgresStore)
        assert app.store.reconnects >= 1
    finally:
        proceed.set()
        app.close()
