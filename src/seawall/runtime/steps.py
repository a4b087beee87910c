"""The step machine's I/O requests, and the two thin drivers that carry them out.

What a ``ctx`` call does (serve from the journal, check guards and breakers, write the intent,
invoke the tool, retry after a wait, record the result, read the write back...) is written once,
as a generator that *yields* the I/O it needs and receives the answers; it does no I/O itself.
:func:`drive` carries the requests out in the calling thread (a sync agent's worker thread);
:func:`adrive` awaits them on the event loop (an async agent), where a store call never makes the
loop wait (:class:`~seawall.runtime.ledger_io.LedgerIO`) and a sync tool runs on a thread.

An exception raised by a request is thrown back into the generator at the ``yield`` that made
it, so retries and error handling are part of the written-once logic too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from seawall import _timing
from seawall.errors import LeaseLostError, LedgerError
from seawall.ledger._waiting import LedgerWouldBlock
from seawall.runtime.hop import Submits, in_thread, tool_threads
from seawall.runtime.registry import is_async_callable

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from concurrent.futures import Future

    from seawall.runtime.backpressure import RateLimit
    from seawall.runtime.host import Host
    from seawall.runtime.journal import Journal
    from seawall.runtime.ledger_io import LedgerIO

T = TypeVar("T")


class _Call:
    """A request to call ``fn(*args, **kwargs)``; its kind says whose code ``fn`` is."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs


class Ledger(_Call):
    """Call the store (or a journal or breaker method that writes to it)."""

    __slots__ = ()


class Invoke(_Call):
    """Call user code: a tool, or one of its hooks (``read_back``...)."""

    __slots__ = ()


class Wait:
    """Sleep for a backoff (no sleep under ``seawall.testing.no_waits``)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Turn:
    """Wait for a rate limit's next free slot."""

    __slots__ = ("limit",)

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit


class Gather:
    """Await one of Seawall's own coroutines (the verifiers, a child run)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Awaitable[Any]]) -> None:
        self.make = make


Request = Ledger | Invoke | Wait | Turn | Gather
Steps = Generator[Request, Any, T]
"""A step machine: yields requests, receives their answers, returns the step's value."""


def drive(
    steps: Steps[T],
    journal: Journal,
    loop: asyncio.AbstractEventLoop,
    host: Host | None = None,
) -> T:
    """Carry out a step machine in this thread (a sync agent's); return its value.

    Args:
        steps: The step machine.
        journal: The attempt's journal (a lost lease or ledger interrupts it).
        loop: The app's event loop, for async hooks and Seawall's own coroutines.
        host: This thread, as lent to child runs while it waits for a coroutine on the loop.
    """
    send, throw = steps.send, steps.throw
    resume: Callable[[Any], Request] = send  # throw, to raise an error back at the yield
    answer: Any = None
    while True:
        try:
            request = resume(answer)
        except StopIteration as done:
            result: T = done.value
            return result
        resume = send
        try:
            if isinstance(request, Ledger):  # the most frequent request, carried out inline
                try:
                    answer = request.fn(*request.args, **request.kwargs)
                except (LeaseLostError, LedgerError) as exc:
                    journal.interrupt(exc)
                    raise
            else:
                answer = _carry_out(request, loop, host)
        except Exception as exc:  # every error goes back into the machine, at its yield
            resume, answer = throw, exc


def _carry_out(
    request: Invoke | Wait | Turn | Gather, loop: asyncio.AbstractEventLoop, host: Host | None
) -> Any:
    """Carry out any request but a store call (which :func:`drive` makes inline)."""
    if isinstance(request, Invoke):
        value = request.fn(*request.args, **request.kwargs)
        if asyncio.iscoroutine(value):
            return _wait(asyncio.run_coroutine_threadsafe(value, loop), host)
        return value
    if isinstance(request, Wait):
        _timing.sleep(request.seconds)
        return None
    if isinstance(request, Turn):
        request.limit.wait()
        return None
    return _wait(asyncio.run_coroutine_threadsafe(_awaited(request.make), loop), host)


def _wait(future: Future[T], host: Host | None) -> T:
    return future.result() if host is None else host.wait(future)


async def adrive(
    steps: Steps[T], journal: Journal, ledger: LedgerIO, tools: Submits | None = None
) -> T:
    """Carry out a step machine on the running event loop; return its value.

    Args:
        steps: The step machine.
        journal: The attempt's journal (a lost lease or ledger interrupts it).
        ledger: Runs store calls without making the loop wait.
        tools: Where sync tools run (default: the process's tool threads).
    """
    answer: Any = None
    error: Exception | None = None
    while True:
        try:
            request = steps.send(answer) if error is None else steps.throw(error)
        except StopIteration as done:
            result: T = done.value
            return result
        answer, error = None, None
        try:
            answer = await _acarry_out(request, journal, ledger, tools)
        except Exception as exc:
            error = exc


async def _acarry_out(
    request: Request, journal: Journal, ledger: LedgerIO, tools: Submits | None
) -> Any:
    if isinstance(request, Ledger):
        try:
            return await ledger.run(request.fn, *request.args, **request.kwargs)
        except LedgerWouldBlock:
            raise
        except (LeaseLostError, LedgerError) as exc:
            journal.interrupt(exc)
            raise
    if isinstance(request, Invoke):
        if _is_async(request.fn):
            return await request.fn(*request.args, **request.kwargs)
        # A sync tool or hook of an async agent runs on a thread: the loop goes on meanwhile.
        threads = tool_threads() if tools is None else tools
        value = await in_thread(threads, request.fn, *request.args, **request.kwargs)
        return await value if asyncio.iscoroutine(value) else value
    if isinstance(request, Wait):
        await _timing.asleep(request.seconds)
        return None
    if isinstance(request, Turn):
        await request.limit.await_turn()
        return None
    return await request.make()


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


@functools.lru_cache(maxsize=4096)
def _async_by_identity(fn: Callable[..., Any]) -> bool:
    return is_async_callable(fn)


def _is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine (cached: asked once per call of a tool)."""
    try:
        return _async_by_identity(fn)
    except TypeError:  # not hashable
        return is_async_callable(fn)
