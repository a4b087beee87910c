"""A sync agent's thread, lent to the sync agents of its child runs while it waits for them.

A sync agent that starts a child run (``ctx.run``, a judge agent in a verification gate) blocks
its worker thread until the child ends. If the child's own sync agent needed another worker
thread, a chain of nested runs as deep as the pool would take every thread and wait forever.
Instead, the waiting thread runs the child's agent itself: nesting at any depth holds one thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

T = TypeVar("T")


class Host:
    """The worker thread of one sync attempt, and the work its child runs lend it."""

    __slots__ = ("_thread", "_work")

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def hosting(self) -> Iterator[None]:
        """Mark the calling thread as this attempt's for the block."""
        previous, self._thread = self._thread, threading.current_thread()
        try:
            yield
        finally:
            self._thread = previous

    def lend(self, work: Callable[[], T]) -> Future[T]:
        """Have the host thread run ``work`` (it does so while it waits for a child)."""
        future: Future[T] = Future()
        self._work.put((work, future))
        return future

    def wait(self, future: Future[T]) -> T:
        """Wait for ``future`` in the host thread, running the work lent to it meanwhile."""
        if self._thread is not threading.current_thread():
            return future.result()
        future.add_done_callback(lambda _: self._work.put(None))
        while not future.done():
            item = self._work.get()
            if item is None:
                continue
            work, lent = item
            if not lent.set_running_or_notify_cancel():
                continue
            try:
                lent.set_result(work())
            except BaseException as exc:
                lent.set_exception(exc)
        return future.result()
