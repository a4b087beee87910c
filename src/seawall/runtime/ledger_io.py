"""Store calls from async code, without ever making the event loop wait for the ledger.

A store whose calls are local and fast (SQLite) is called on the loop under
:func:`~seawall.ledger._waiting.nowait`: when it would have to wait (another process holds the
write lock, a durable write waits for the disk), it says so at once and the call runs again on a
ledger thread, which may wait. When what holds the store is one of our own ledger threads, the
call waits (asynchronously) for those threads' calls to end and tries on the loop again: sending
it to a thread too would hold the store for the next call, and the next, so that once one call
had to wait every later one would pay a thread hop (with 64 runs in flight, a third of them did).

A store reached over the network (PostgreSQL) is always called on a ledger thread: its round
trips, and its retries while the server is away, never hold the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from seawall.ledger._waiting import LedgerWouldBlock, nowait

if TYPE_CHECKING:
    from collections.abc import Callable

    from seawall.ledger import Store

T = TypeVar("T")

LEDGER_THREADS = 8
"""Threads that make store calls for async code, unless the store says how many
(``ledger_threads``: PostgreSQL's, as many as the writes one group commit carries)."""


class LedgerIO:
    """Runs store calls for the coroutines of one app.

    Args:
        store: The ledger.
    """

    def __init__(self, store: Store) -> None:
        self.inline = bool(getattr(store, "local", False))
        self._size = int(getattr(store, "ledger_threads", LEDGER_THREADS))
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.hops = 0
        """Calls that ran on a ledger thread (for tests and benchmarks)."""
        self._inflight: set[asyncio.Future[Any]] = set()
        """This loop's calls running on a ledger thread now."""

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Return ``fn(*args, **kwargs)``, a store call, without blocking the running loop."""
        loop = asyncio.get_running_loop()
        if self.inline:
            while True:
                try:
                    with nowait():
                        return fn(*args, **kwargs)
                except LedgerWouldBlock:
                    mine = [f for f in self._inflight if f.get_loop() is loop]
                    if not mine:
                        break
                # Our own ledger thread holds the store: let it finish, then try here again.
                await asyncio.wait(mine, return_when=asyncio.FIRST_COMPLETED)
        self.hops += 1
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        future = loop.run_in_executor(self._threads(), call)
        self._inflight.add(future)
        try:
            return await future
        finally:
            self._inflight.discard(future)

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._size, thread_name_prefix="seawall-ledger")
            return self._pool

    def close(self) -> None:
        """Stop the ledger threads (calls in flight finish)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
