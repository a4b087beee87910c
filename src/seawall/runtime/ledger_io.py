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

:meth:`LedgerIO.together` groups the writes of concurrent runs (a run's start, its end): the
calls made while a group is being written, or in the same turn of the loop, are written in the
next one, with one commit. On SQLite the group is one transaction
(:meth:`~seawall.ledger._sqlbase.SQLBase.together`), written one group at a time; on PostgreSQL
it is one group commit made by one ledger thread (``batch``: see
:meth:`~seawall.ledger._postgres_group.GroupCommitter.batch`), two groups at a time, so that one
is sent while the next forms. With 64 runs in flight that is a commit per dozens of runs instead
of one per run, and on PostgreSQL one thread hand-off per group instead of a thread per write
waiting for its group (1.6 times the runs per second).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from seawall.ledger._waiting import LedgerWouldBlock, nowait
from seawall.runtime.hop import in_thread, settle
from seawall.runtime.threads import Threads

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
    writers: int = 0
    """Tasks writing groups of the queue now."""
    starting: bool = False
    """One of them has not taken its first group yet (it takes the calls queued until then)."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class LedgerIO:
    """Runs store calls for the coroutines of one app.

    Args:
        store: The ledger.
    """

    def __init__(self, store: Store) -> None:
        self.inline = bool(getattr(store, "local", False))
        self._size = int(getattr(store, "ledger_threads", LEDGER_THREADS))
        self._pool: Threads | None = None
        self._lock = threading.Lock()
        self.hops = 0
        """Calls that ran on a ledger thread (for tests and benchmarks)."""
        self._inflight: set[asyncio.Future[Any]] = set()
        """This loop's calls running on a ledger thread now."""
        # A store called on the loop writes a group as one transaction (``together``); one
        # over the network, as one group commit of writes put off (``batch``): in one
        # transaction, its calls' reads and other writes would wait for each other's round
        # trips on one connection (three times slower at 64 runs in flight).
        self._together: Callable[[list[Callable[[], Any]]], list[Outcome]] | None = (
            getattr(store, "together", None) if self.inline else getattr(store, "batch", None)
        )
        self._writers = int(getattr(store, "batch_writers", 1))
        """Groups written at once (a SQLite ledger has one writer: one)."""
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
        """Return ``fn(*args, **kwargs)``, writes of a run, committed with other runs'.

        ``fn`` is a store write or code that makes some; it runs when the group is written, in
        the caller's context. Its errors are its own: a call that fails leaves the others'
        writes in place. ``fn`` may run twice (on SQLite, once more when another call of its
        group fails), and its code after its last write may run before that write commits (on
        PostgreSQL): its effects outside the ledger must bear repeating, and come before its
        writes (see :meth:`~seawall.ledger._sqlbase.SQLBase.together` and
        :meth:`~seawall.ledger._postgres_group.GroupCommitter.batch`).
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
        if not queue.starting and queue.writers < self._writers:
            queue.writers += 1
            queue.starting = True
            task = loop.create_task(self._write_queue(queue, together))
            queue.tasks.add(task)
            task.add_done_callback(queue.tasks.discard)
        return await future

    async def _write_queue(
        self, queue: _Queue, together: Callable[[list[Callable[[], Any]]], list[Outcome]]
    ) -> None:
        """Write the queue's calls, a group at a time, until none is left."""
        batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        queue.starting = False
        try:
            while queue.calls:
                batch = [(call, f) for call, f in queue.calls if not f.cancelled()]
                queue.calls = []
                if batch:
                    await self._write_group(batch, together)
        finally:
            queue.writers -= 1
            left = batch if queue.writers else [*batch, *queue.calls]
            for _, future in left:
                future.cancel()  # only those still waiting: the writer itself was cancelled
            if not queue.writers:
                queue.calls = []

    async def _write_group(
        self,
        batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]],
        together: Callable[[list[Callable[[], Any]]], list[Outcome]],
    ) -> None:
        """Write one group's calls (one call alone, as it would be without a group)."""
        if len(batch) == 1:
            call, future = batch[0]
            try:
                value = await self.run(call)
            except Exception as exc:  # the caller's to raise
                settle(future, None, exc)
            else:
                settle(future, value, None)
            return
        try:
            outcomes = await self.run(together, [call for call, _ in batch])
        except Exception as exc:  # the transaction failed: every caller's error
            for _, future in batch:
                settle(future, None, exc)
            return
        self.groups += 1
        for (_, future), (value, error) in zip(batch, outcomes, strict=True):
            settle(future, value, error)

    def _threads(self) -> Threads:
        with self._lock:
            if self._pool is None:
                self._pool = Threads(self._size, "seawall-ledger")
            return self._pool

    def close(self) -> None:
        """Stop the ledger threads (calls in flight finish)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
