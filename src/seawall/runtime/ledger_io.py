"""Store calls from async code, without ever making the event loop wait for the ledger.

A store whose calls are local and fast (SQLite) is called on the loop under
:func:`~seawall.ledger._waiting.nowait`: when it would have to wait (another process holds the
write lock, a durable write waits for the disk), it says so at once and the call runs again on a
ledger thread, which may wait. When what holds the store is one of our own ledger threads, the
call waits (asynchronously) for those threads' calls to end and tries on the loop again: sending
it to a thread too would hold the store for the next call, and the next, so that once one call
had to wait every later one would pay a thread hop (with 64 runs in flight, a third of them did).

A store reached over the network (PostgreSQL) is always called on a ledger thread: its round
trips, and its retries while the server is away, never hold the loop. A ledger thread hands
its result back the way :mod:`seawall.runtime.hop` does: with many calls ending together, the
loop is woken once for them, not once each.

:meth:`LedgerIO.together` groups the writes of concurrent runs (a run's start, its end) on
SQLite: the calls made while a group is being written, or in the same turn of the loop, are
written in the next one, in one transaction (:meth:`~seawall.ledger._sqlbase.SQLBase.together`).
With 64 runs in flight that is a commit per dozens of runs instead of one per run.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from seawall.ledger._waiting import LedgerWouldBlock, nowait
from seawall.runtime.hop import in_thread, settle

if TYPE_CHECKING:
    from collections.abc import Callable

    from seawall.ledger import Store
    from seawall.ledger._sqlbase import Outcome

T = TypeVar("T")

LEDGER_THREADS = 8
"""Threads that make store calls for async code, unless the store says how many
(``ledger_threads``: PostgreSQL's, as many as the writes one group commit carries)."""


@dataclass(slots=True, eq=False)
class _Queue:
    """The calls of one loop waiting to be written together, and the task writing them."""

    calls: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


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
        # Only a store called on the loop groups this way: PostgreSQL's calls would wait for
        # each group in turn on one connection, its round trips one after the other (three
        # times slower at 64 runs in flight than each call on its own pooled connection).
        self._together: Callable[[list[Callable[[], Any]]], list[Outcome]] | None = (
            getattr(store, "together", None) if self.inline else None
        )
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )
        self.groups = 0
        """Transactions that wrote several calls of :meth:`together` (for benchmarks)."""

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
        future = in_thread(self._threads(), fn, *args, **kwargs)
        self._inflight.add(future)
        try:
            return await future
        finally:
            self._inflight.discard(future)

    async def together(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Return ``fn(*args, **kwargs)``, writes of a run, made in one transaction with others'.

        ``fn`` is a store write or code that makes some (its writes join the group's
        transaction); it runs when the group is written, in the caller's context. Its errors
        are its own: a call that fails leaves the others' writes in place. ``fn`` may run twice
        (once more when another call of its group fails): its effects outside the ledger must
        bear repeating (see :meth:`~seawall.ledger._sqlbase.SQLBase.together`).
        """
        together = self._together
        if together is None:
            return await self.run(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future: asyncio.Future[T] = loop.create_future()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        queue.calls.append((call, future))
        if queue.writer is None:
            queue.writer = loop.create_task(self._write_queue(queue, together))
        return await future

    async def _write_queue(
        self, queue: _Queue, together: Callable[[list[Callable[[], Any]]], list[Outcome]]
    ) -> None:
        """Write the queue's calls, a group at a time, until none is left."""
        batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        try:
            while queue.calls:
                batch = [(call, f) for call, f in queue.calls if not f.cancelled()]
                queue.calls = []
                if len(batch) == 1:
                    call, future = batch[0]
                    try:
                        value = await self.run(call)
                    except Exception as exc:  # the caller's to raise
                        settle(future, None, exc)
                    else:
                        settle(future, value, None)
                    continue
                if not batch:
                    continue
                try:
                    outcomes = await self.run(together, [call for call, _ in batch])
                except Exception as exc:  # the transaction failed: every caller's error
                    for _, future in batch:
                        settle(future, None, exc)
                    continue
                self.groups += 1
                for (_, future), (value, error) in zip(batch, outcomes, strict=True):
                    settle(future, value, error)
        finally:
            queue.writer = None
            for _, future in [*batch, *queue.calls]:
                future.cancel()  # only those still waiting: the writer itself was cancelled
            queue.calls = []

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
