"""The one event loop of an app, on a thread of its own.

The sync API (``app.run``, ``app.wait``, ``app.take``...) runs its coroutines here whatever thread
calls it, so an app keeps one loop however many threads call it: no file descriptors or threads
per calling thread, and an async client created for one run (an ``AsyncOpenAI``) serves every
other run too. ``app.arun`` runs on the caller's own loop instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from seawall.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from concurrent.futures import Future

T = TypeVar("T")


class AppLoop:
    """An event loop running forever on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop (started now if it was not running)."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child inherits the loop object but not its thread: start anew.
                self._loop, self._thread, self._pid = None, None, os.getpid()
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve, args=(loop,), name="seawall-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def in_loop_thread(self) -> bool:
        """Whether the calling thread is this loop's."""
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result in the calling thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coro`` on the loop; return a future of its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it and wait for its thread.

        Runs cut short this way keep their journals; their leases lapse and they resume.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
        if loop is None or thread is None or self._pid != os.getpid():
            return
        if loop.is_running():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(_stop(loop), loop).result(timeout=5)
        thread.join(timeout=5)
        if not loop.is_running():
            loop.close()


def refuse_inside_loop(call: str, twin: str) -> None:
    """Refuse a sync call that would wait, on a thread that runs an event loop.

    Args:
        call: The sync call, as the user wrote it (``app.run()``).
        twin: Its async twin, to await instead (``app.arun(...)``).

    Raises:
        UsageError: An event loop runs in this thread; waiting here would block it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise UsageError(
        f"{call} was called inside a running event loop, where it would block it; use "
        f"`await {twin}` instead"
    )


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def _stop(loop: asyncio.AbstractEventLoop) -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_default_executor()
    loop.call_soon(loop.stop)
