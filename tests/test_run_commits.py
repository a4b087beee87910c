"""A single-step run makes two write transactions and builds its result without reading it back."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from seawall import Context, Retry, RunStatus, Seawall

LEDGERS = ("sqlite", "postgres")


class Statements:
    """What a SQLite connection executes: transactions committed and rows read."""

    def __init__(self) -> None:
        self.commits = 0
        self.selects = 0

    def __call__(self, sql: str) -> None:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        self.commits += head in ("COMMIT", "END")
        self.selects += head == "SELECT"


def one_step(app: Seawall) -> Any:
    read = app.tool(name="lookup")(lambda i: {"i": i})

    @app.agent(name="one_step")
    def agent(ctx: Context, i: int) -> object:
        return ctx.call(read, i)

    return agent


def test_a_single_step_run_commits_twice_and_reads_nothing(tmp_path: Path) -> None:
    """Create and start in one transaction, the steps and both ends in the other, no SELECT."""
    app = Seawall(f"sqlite:///{tmp_path / 'ledger.db'}")
    agent = one_step(app)
    try:
        app.run(agent, i=0).raise_for_status()
        seen = Statements()
        db = app.store._db  # type: ignore[attr-defined]
        assert isinstance(db, sqlite3.Connection)
        db.set_trace_callback(seen)
        try:
            app.run(agent, i=1).raise_for_status()
        finally:
            db.set_trace_callback(None)
        assert (2, 0) == (seen.commits, seen.selects)
    finally:
        app.close()


def test_the_result_built_in_memory_is_the_recorded_one(app: Seawall) -> None:
    """The result app.run returns equals the one read back from the ledger, retries included."""
    agent = one_step(app)
    tries: list[int] = []

    @app.agent(retry=Retry(attempts=2, initial=0))
    def flaky(ctx: Context) -> int:
        tries.append(1)
        ctx.call("lookup", 7)
        if len(tries) == 1:
            raise ValueError("first try fails")
        return 7

    simple, retried = app.run(agent, i=3), app.run(flaky)
    assert [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED] == [simple.status, retried.status]
    assert [1, 2] == [len(simple.attempts), len(retried.attempts)]
    assert [app.ledger.result(simple.run_id), app.ledger.result(retried.run_id)] == [
        simple,
        retried,
    ]
