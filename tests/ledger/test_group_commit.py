"""At the power level, intents queued by concurrent threads share one fsynced commit."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from seawall import Context, Guards, RunStatus, Seawall
from seawall.ledger import NewRun, SQLiteStore


def _intent(run_id: str, seq: int) -> tuple:
    return (
        run_id,
        seq,
        1,
        "tool",
        "write",
        1,
        f"{run_id}:{seq}",
        "h",
        b"J[]",
        None,
        "started",
        time.time(),
        None,
        None,
        None,
        1,
    )


def test_intents_waiting_for_the_lock_are_committed_together(tmp_path: Path) -> None:
    """Three threads blocked behind an fsync are written by one transaction."""
    store = SQLiteStore(str(tmp_path / "ledger.db"), durability="power")
    try:
        store.create_run(
            NewRun("r", "a", time.time(), "h", b"J{}", None, "me", time.time() + 60), []
        )
        before = store.group_commits
        with store._queue_ready:
            store._leading = True  # as if another thread's fsync were in progress
        threads = [
            threading.Thread(
                target=store.write_intent, args=(_intent("r", i), [], []), kwargs={"epoch": 1}
            )
            for i in (1, 2, 3)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while len(store._queue) < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert 3 == len(store._queue)
        with store._queue_ready:
            store._leading = False
            store._queue_ready.notify_all()
        for thread in threads:
            thread.join(5)
        assert 1 == store.group_commits - before
        assert [1, 2, 3] == [s.seq for s in store.load_steps("r")]
    finally:
        store.close()


def test_concurrent_runs_at_power_level_record_every_step_once(ledger_url: str) -> None:
    """Eight sync runs writing mutating steps at once all succeed with complete journals."""
    app = Seawall(ledger_url, durability="power")
    effects: list[tuple[str, int]] = []
    lock = threading.Lock()

    @app.tool(mutating=True)
    def write(i: int, idempotency_key: str) -> int:
        with lock:
            effects.append((idempotency_key, i))
        return i

    @app.agent(guards=Guards(max_mutations_without_gate=None))
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call(write, i) for i in range(n))

    async def main() -> list:
        return await asyncio.gather(*(app.arun(agent, n=30) for _ in range(8)))

    try:
        results = asyncio.run(main())
        assert {RunStatus.SUCCEEDED} == {r.status for r in results}
        assert 240 == len(effects) == len(set(effects))
        for result in results:
            assert list(range(1, 31)) == [s.record.seq for s in app.ledger.steps(result.run_id)]
        assert app.store.group_commits <= 240
    finally:
        app.close()
