"""LedgerIO: store calls from async code never block the loop, and hop to a thread only when needed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from seawall.ledger._waiting import LedgerWouldBlock, waiting_forbidden
from seawall.runtime.ledger_io import LedgerIO


class _Local:
    local = True


class _Busy:
    """A store lock: under ``nowait`` a held lock raises LedgerWouldBlock, as SQLite's does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holding = threading.Event()

    def call(self, release: threading.Event | None = None) -> str:
        if not self.lock.acquire(blocking=not waiting_forbidden()):
            raise LedgerWouldBlock("busy in another thread")
        try:
            if release is not None:
                self.holding.set()
                release.wait(5)
            return threading.current_thread().name
        finally:
            self.lock.release()


def test_a_call_behind_our_own_ledger_thread_waits_for_it_and_runs_on_the_loop() -> None:
    io = LedgerIO(_Local())  # type: ignore[arg-type]
    busy = _Busy()
    release = threading.Event()

    async def main() -> tuple[str, str]:
        with busy.lock:  # the first call finds the store held, so it goes to a ledger thread
            slow = asyncio.ensure_future(io.run(busy.call, release))
            await asyncio.sleep(0)
        # The ledger thread now holds the store.
        assert await asyncio.to_thread(busy.holding.wait, 5)
        fast = asyncio.ensure_future(io.run(busy.call))
        await asyncio.sleep(0.05)
        assert not fast.done()  # it waits, asynchronously: the loop goes on
        release.set()
        return await slow, await fast

    try:
        slow_thread, fast_thread = asyncio.run(main())
    finally:
        io.close()
    assert slow_thread.startswith("seawall-ledger")
    assert fast_thread == "MainThread"  # ran on the loop once the ledger thread was done
    assert io.hops == 1


def test_a_call_behind_a_foreign_thread_goes_to_a_ledger_thread() -> None:
    io = LedgerIO(_Local())  # type: ignore[arg-type]
    busy = _Busy()
    held, release = threading.Event(), threading.Event()

    def foreign() -> None:
        with busy.lock:
            held.set()
            release.wait(5)

    holder = threading.Thread(target=foreign)
    holder.start()
    held.wait(5)

    async def main() -> Any:
        call = asyncio.ensure_future(io.run(busy.call))
        await asyncio.sleep(0.05)
        release.set()
        return await call

    try:
        thread = asyncio.run(main())
    finally:
        holder.join()
        io.close()
    assert thread.startswith("seawall-ledger")
    assert io.hops == 1
