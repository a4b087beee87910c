"""Leases: a running run is owned by one process, which renews its claim on a heartbeat.

Each lease is held under an *epoch* that grows with every takeover (fencing). When the owner
dies the lease lapses, and any live process (``app.resume()``, ``seawall resume``, a worker) may
take the run over, raising the epoch. A renewal that finds the epoch moved on means the run was
taken over: the attempt is stopped at once (its next ``ctx`` call raises
:class:`~seawall.LeaseLostError`). A renewal that cannot reach the ledger for a whole lease
period stops the attempt too: by then the lease may have lapsed and another process may hold it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING

from seawall.errors import LedgerError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from seawall.ledger import Store

logger = logging.getLogger("seawall.lease")
POLL_INTERVAL = 1.0
"""Seconds between heartbeats at most: leases are renewed and cancellations noticed."""


class Leases:
    """The leases this process holds, renewed by one daemon thread.

    Args:
        store: The ledger.
        duration: Seconds a lease lasts without renewal; renewed every third of that.
        on_cancelled: Called with ``{run_id: reason}`` for held runs an operator cancelled.
        on_lost: Called with the held runs whose lease is gone (taken over, or not renewed
            for a whole lease period because the ledger could not be reached).
    """

    def __init__(
        self,
        store: Store,
        duration: float,
        on_cancelled: Callable[[dict[str, str]], None] | None = None,
        on_lost: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.on_cancelled = on_cancelled
        self.on_lost = on_lost
        self.on_beat: Callable[[], None] | None = None
        self.duration = duration
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def expiry(self) -> float:
        """Return when a lease taken or renewed now would lapse."""
        return time.time() + self.duration

    def hold(self, run_id: str, epoch: int) -> None:
        """Start renewing the lease on ``run_id``, held at ``epoch``."""
        with self._lock:
            self._held[run_id] = (epoch, time.monotonic())
            self._start()

    def start(self) -> None:
        """Start the heartbeat now, before any lease is held (its ``on_beat`` work runs)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._beat, name="seawall-heartbeat", daemon=True
            )
            self._thread.start()

    def release(self, run_id: str) -> None:
        """Stop renewing the lease on ``run_id``."""
        with self._lock:
            self._held.pop(run_id, None)

    def held(self) -> list[str]:
        """Return the runs whose leases this process renews."""
        with self._lock:
            return list(self._held)

    def _beat(self) -> None:
        while not self._stop.wait(min(self.duration / 3, POLL_INTERVAL)):
            if self.on_beat is not None:
                try:
                    self.on_beat()
                except LedgerError:
                    logger.warning(
                        "heartbeat work failed; retrying at the next beat", exc_info=True
                    )
            self.renew()

    def renew(self) -> None:
        """Renew every held lease now; report the ones found lost."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        started = time.monotonic()
        try:
            lost = self.store.renew_leases(
                {run_id: epoch for run_id, (epoch, _) in held.items()}, self.expiry()
            )
            if self.on_cancelled is not None:
                cancelled = self.store.cancellations(list(held))
                if cancelled:
                    self.on_cancelled(cancelled)
        except LedgerError:
            logger.warning(
                "could not renew %d lease(s); retrying at the next heartbeat",
                len(held),
                exc_info=True,
            )
            # Unrenewed for a whole lease period, a lease may have lapsed and been taken over.
            lost = [r for r, (_, since) in held.items() if started - since >= self.duration]
        else:
            self._renewed(held, lost, started)
        if lost:
            logger.warning("lost the lease of %d run(s): %s", len(lost), ", ".join(lost[:10]))
            with self._lock:
                for run_id in lost:
                    self._held.pop(run_id, None)
            if self.on_lost is not None:
                self.on_lost(lost)

    def _renewed(self, held: dict[str, tuple[int, float]], lost: list[str], at: float) -> None:
        with self._lock:
            for run_id in held:
                if run_id in self._held and run_id not in lost:
                    self._held[run_id] = (self._held[run_id][0], at)

    def close(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        with self._lock:
            # Another thread may be inside _start (it holds the lock until the heartbeat has
            # started): joining a thread not started yet raises, so wait for it to finish.
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
