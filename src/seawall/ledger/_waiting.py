"""Waiting for the ledger, and not waiting for it on an event loop.

A store call may have to wait: for another process's write lock (SQLite), for a server that is
restarting (PostgreSQL). Threads may wait; an event loop must not, or every run on it stalls. The
async drivers run a store call on the loop inside :func:`nowait`: a store that would have to
wait raises :class:`LedgerWouldBlock` at once instead, having written nothing, and the driver
runs the same call again on a ledger thread, where it may wait as long as the store allows.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from seawall.errors import LedgerError

if TYPE_CHECKING:
    from collections.abc import Iterator


class _State(threading.local):
    """This thread's waiting rule (a class default, so reading it needs no ``getattr``)."""

    nowait = False


_state = _State()


class LedgerWouldBlock(LedgerError):  # noqa: N818 - a signal between the store and a driver
    """A store call made inside :func:`nowait` would have had to wait; nothing was written.

    It never reaches user code: the async driver catches it and runs the call on a thread.
    """

    code = "ledger_would_block"


@contextlib.contextmanager
def nowait() -> Iterator[None]:
    """Make store calls of this thread raise :class:`LedgerWouldBlock` instead of waiting."""
    previous = _state.nowait
    _state.nowait = True
    try:
        yield
    finally:
        _state.nowait = previous


def waiting_forbidden() -> bool:
    """Whether a store call on this thread must not wait (see :func:`nowait`)."""
    return _state.nowait
