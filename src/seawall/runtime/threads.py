"""A pool of threads for calls that hand their outcomes back themselves: no futures.

Every hop from the event loop to a thread (a sync tool of an async agent, a store call on a
ledger thread) already makes an asyncio future, and :func:`seawall.runtime.hop.in_thread` settles
it. ``ThreadPoolExecutor.submit`` would make a second, ``concurrent.futures``, future for the
same call, with its ``Condition`` and lock, and keep the count of idle threads in a
``threading.Semaphore``, written in Python: a lock taken and released three more times a call.
With 64 in flight a hop cost 34-36 us here, against 12 us on these threads, which take plain
calls from one ``queue.SimpleQueue`` (C; ``tool_hop64`` in ``benchmarks/bench_throughput.py``).
So this is the executor's loop without its futures: what a call returns, or raises, is its
own business (``in_thread``'s calls never raise), and nothing waits on a call from here.

What stays the executor's: at most ``size`` threads, started only when no thread is idle; a
call after :meth:`Threads.shutdown` raises ``RuntimeError``; the calls queued before it run
unless it is told to drop them; at the interpreter's exit the threads finish what they hold and
what is queued (as ``concurrent.futures`` makes its threads do); a forked child starts its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_LOG = logging.getLogger(__name__)

_STOP = None
"""Put once per thread: the thread takes it and ends."""

_Call = tuple["Callable[..., object]", tuple[Any, ...]]


class Threads:
    """Up to ``size`` threads running the calls given to :meth:`submit`, in order of arrival.

    Args:
        size: The most threads at once.
        name: Their names' prefix (``seawall-tool_0``, ``seawall-tool_1``...).
    """

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            msg = f"Threads(size={size!r}) must be at least 1"
            raise ValueError(msg)
        self.size = size
        self.name = name
        self._lock = threading.Lock()
        self._closed = False
        self._start_fresh()
        _POOLS.add(self)

    def _start_fresh(self) -> None:
        self._pid = os.getpid()
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle: list[None] = []
        """One entry per thread free for a call no submitter counted on yet: a thread adds one
        when it ends a call, a submitter takes one for its call (``list`` appends and pops are
        atomic). As the executor's idle semaphore: a burst of calls does not all wait for one
        idle thread."""

    def submit(self, fn: Callable[..., object], /, *args: Any) -> None:
        """Run ``fn(*args)`` on one of the threads.

        Raises:
            RuntimeError: The pool was shut down.
        """
        with self._lock:
            if self._closed:
                msg = "cannot schedule new calls after shutdown"
                raise RuntimeError(msg)
            if self._pid != os.getpid():  # a forked child: its parent's threads are not here
                self._start_fresh()
            self._calls.put((fn, args))
            if self._idle:  # only submitters take entries, under the lock
                self._idle.pop()  # a waiting thread will take it (or one ending a call)
            elif len(self._threads) < self.size:
                # A thread ending a call may be about to wait again, unseen here: then one
                # thread is started too many, never more than ``size``.
                thread = threading.Thread(
                    target=_serve,
                    args=(self._calls, self._idle),
                    name=f"{self.name}_{len(self._threads)}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more calls; the threads end once they ran what was queued.

        Args:
            wait: Return only when every thread has ended.
            cancel_futures: Drop the calls not started yet instead of running them.
        """
        with self._lock:
            if self._pid != os.getpid():
                self._start_fresh()
            first = not self._closed
            self._closed = True
            if cancel_futures:
                try:
                    while True:
                        self._calls.get_nowait()
                except queue.Empty:
                    pass
            if first:
                for _ in self._threads:
                    self._calls.put(_STOP)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


def _serve(calls: queue.SimpleQueue[_Call | None], idle: list[None]) -> None:
    """A thread of a pool: run calls until told to stop."""
    get = calls.get
    while True:
        call = get()
        if call is None:
            return
        fn, args = call
        try:
            fn(*args)
        except Exception:  # a call's own error must not end the thread that others wait on
            _LOG.exception("a call on a seawall thread raised")
        del call, fn, args  # hold nothing of the call while waiting for the next
        idle.append(None)  # a new thread is started for a call: it counts once it ended one


_POOLS: weakref.WeakSet[Threads] = weakref.WeakSet()


def _finish_at_exit() -> None:
    """Let every pool's threads finish their calls before the interpreter stops them."""
    for pool in list(_POOLS):
        pool.shutdown(wait=True)


# Run when the main thread ends, before the interpreter joins threads and runs ``atexit``'s
# handlers: the hook ``concurrent.futures`` uses for its threads. A call in flight then ends
# while the app's loop (a daemon thread) still runs to record it; under ``atexit`` it could end
# after ``weakref.finalize``'s handler had stopped that loop.
getattr(threading, "_register_atexit", atexit.register)(_finish_at_exit)

__all__ = ["Threads"]
