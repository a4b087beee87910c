"""Backpressure: bounded concurrency, a bounded submission queue, per-tool rate limits.

Bounds are shared by every thread and event loop of the process (the sync API runs one loop per
thread), so they are counters with a lock, and waiters are woken on their own loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Self

from seawall.errors import ConfigurationError, Overloaded

if TYPE_CHECKING:
    from types import TracebackType


class Slots:
    """A counting semaphore usable from any thread and any event loop.

    Args:
        limit: Holders at once (``None``: no limit).
        queue: Callers allowed to wait for a slot (``None``: no limit).
        block: When the queue is full, wait for room (``True``) or raise
            :class:`~seawall.Overloaded` (``False``).
        label: What is bounded, for messages.
    """

    def __init__(
        self, limit: int | None, *, queue: int | None = None, block: bool = True, label: str
    ) -> None:
        for name, value in (("limit", limit), ("queue", queue)):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ConfigurationError(
                    f"{label}: {name}={value!r} must be a non-negative integer or None"
                )
        if limit == 0:
            raise ConfigurationError(f"{label}: a limit of 0 would never run anything")
        self.limit = limit
        self.queue = queue
        self.block = block
        self.label = label
        self.held = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting in line if needed.

        Raises:
            Overloaded: The queue is full and the bound does not block.
        """
        if self.limit is None:
            return
        while True:
            loop = asyncio.get_running_loop()
            with self._lock:
                if self.held < self.limit and not self._waiters:
                    self.held += 1
                    return
                if self.queue is not None and len(self._waiters) >= self.queue:
                    if not self.block:
                        raise Overloaded(
                            f"{self.label}: {self.held} running and {len(self._waiters)} waiting, "
                            "the most it accepts; try again later or raise the bound",
                            bound=self.label,
                        )
                    full = True
                else:
                    full = False
                    future: asyncio.Future[None] = loop.create_future()
                    self._waiters.append((loop, future))
            if full:
                await asyncio.sleep(0.005)  # wait for room in the queue itself
                continue
            try:
                await future
            except BaseException:
                with self._lock:
                    if (loop, future) in self._waiters:
                        self._waiters.remove((loop, future))
                    elif future.done() and not future.cancelled():
                        self._release_locked()
                raise
            return

    def release(self) -> None:
        """Give a slot back (to the next waiter, if any)."""
        if self.limit is None:
            return
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        while self._waiters:
            loop, future = self._waiters.popleft()
            if not future.done():
                loop.call_soon_threadsafe(_grant, future)
                return
        self.held -= 1

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RateLimit:
    """A per-process moving-window rate limit on one tool (``"10/second"``, ``"100/minute"``).

    Uses the maintained ``limits`` package (``pip install 'seawall[ratelimit]'``).
    """

    def __init__(self, spec: str, name: str) -> None:
        try:
            import limits  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ConfigurationError(
                f"tool {name!r}: rate_limit= needs the limits package: pip install "
                "'seawall[ratelimit]'"
            ) from exc
        try:
            self.item = limits.parse(spec)
        except ValueError as exc:
            raise ConfigurationError(
                f"tool {name!r}: rate_limit={spec!r} is not a rate such as '10/second' or "
                f"'100/minute' ({exc})"
            ) from exc
        self.name = name
        self.spec = spec
        self._limiter: Any = limits.strategies.MovingWindowRateLimiter(
            limits.storage.MemoryStorage()
        )

    def _wait_for(self) -> float:
        if self._limiter.hit(self.item, self.name):
            return 0.0
        stats = self._limiter.get_window_stats(self.item, self.name)
        return max(0.001, float(stats.reset_time) - time.time())

    def wait(self) -> None:
        """Block until a call is allowed."""
        while (delay := self._wait_for()) > 0:
            time.sleep(delay)

    async def await_turn(self) -> None:
        """Wait (without blocking the loop) until a call is allowed."""
        while (delay := self._wait_for()) > 0:  # noqa: ASYNC110 - a timed window, not an event
            await asyncio.sleep(delay)
