"""Work sent from the event loop to a thread, its results handed back to the loop in batches.

``loop.run_in_executor`` (and ``asyncio.to_thread``, built on it) wakes the loop once per call
(``call_soon_threadsafe``: a write to the loop's self-pipe, and the loop's return from
``epoll``) and chains two futures per call for it. With 64 runs in flight calling sync tools
or a pooled database, that was about 80 us a call here, most of it waking a loop that was awake
anyway. Here a thread that finishes a call puts its outcome in its loop's queue and wakes the
loop only when the queue was empty; the loop then settles every outcome waiting at once (about
40 us a call on an executor's threads). The threads are
:class:`~seawall.runtime.threads.Threads`: a ``ThreadPoolExecutor`` would make a second future
per call, which nobody reads (with them, 12 us a call: ``tool_hop64`` in bench_throughput).

What a caller sees is what ``run_in_executor`` gives: the call runs in a copy of the caller's
context variables; its value or exception is the future's; a future cancelled before its
call starts skips the call (one cancelled later lets it finish, unheard); a loop closed
before the call ends is not woken.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from seawall.runtime.threads import Threads

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Submits(Protocol):
    """Where :func:`in_thread` sends a call: :class:`Threads` (or any ``Executor``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> object:
        """Run ``fn(*args)`` on another thread."""


class _Returns:
    """The outcomes of one loop's calls that ended in threads, waiting for the loop."""

    __slots__ = ("__weakref__", "_loop", "_ready", "_woken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready: collections.deque[_Outcome] = collections.deque()
        self._woken = False

    def deliver(self, future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
        """In the thread: queue an outcome, and wake the loop unless a wake-up is on its way."""
        self._ready.append((future, value, error))
        if self._woken:
            return
        # Set before settling starts, cleared by it before it takes the first outcome: an
        # outcome queued after that clearing wakes the loop again, one queued before is taken.
        self._woken = True
        try:
            self._loop.call_soon_threadsafe(self._settle)
        except RuntimeError:  # the loop is closed: nobody waits any more
            self._woken = False

    def _settle(self) -> None:
        """On the loop: hand every queued outcome to its future."""
        self._woken = False
        ready = self._ready
        while ready:
            settle(*ready.popleft())


def settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    """Hand a waiting caller its call's value or error (nothing when it left: cancelled)."""
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


_RETURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Returns] = (
    weakref.WeakKeyDictionary()
)
_RETURNS_LOCK = threading.Lock()


def _returns(loop: asyncio.AbstractEventLoop) -> _Returns:
    returns = _RETURNS.get(loop)
    if returns is None:
        with _RETURNS_LOCK:
            returns = _RETURNS.get(loop)
            if returns is None:
                returns = _RETURNS[loop] = _Returns(loop)
    return returns


def in_thread(
    threads: Submits, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> asyncio.Future[T]:
    """Run ``fn(*args, **kwargs)`` in one of ``threads``; its future on this loop.

    Raises:
        RuntimeError: The threads were shut down (as ``run_in_executor`` raises).
    """
    return in_context(threads, contextvars.copy_context(), fn, *args, **kwargs)


def in_context(
    threads: Submits,
    context: contextvars.Context,
    fn: Callable[..., T],
    /,
    *args: Any,
    **kwargs: Any,
) -> asyncio.Future[T]:
    """As :func:`in_thread`, in ``context`` instead of a copy of the caller's."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    threads.submit(_call, _returns(loop), future, context, fn, args, kwargs)
    return future


def _call(
    returns: _Returns,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    if future.cancelled():  # its caller left before it started: as run_in_executor, skip it
        return
    try:
        value = context.run(fn, *args, **kwargs)
    except BaseException as exc:  # the caller's, as run_in_executor hands it
        returns.deliver(future, None, exc)
    else:
        returns.deliver(future, value, None)


_TOOLS_LOCK = threading.Lock()
_tools: tuple[int, Threads] | None = None


def tool_threads() -> Threads:
    """The threads the sync tools (and hooks) of async agents run in, one pool per process.

    As many as asyncio's default executor would have (``min(32, CPUs + 4)``); a forked child
    makes its own (the parent's threads are not in it).
    """
    global _tools  # noqa: PLW0603 - one pool per process, made on first use
    with _TOOLS_LOCK:
        if _tools is None or _tools[0] != os.getpid():
            size = min(32, (os.cpu_count() or 1) + 4)
            _tools = (os.getpid(), Threads(size, "seawall-tool"))
        return _tools[1]
