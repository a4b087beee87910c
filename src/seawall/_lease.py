"""Leases: a running run is owned by one process, which renews its claim on a heartbeat.

When the owner dies the lease lapses, and ``seawall resume`` (``app.resume()``) in any process
may take the run over.
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
    from collections.abc import Callable

    from seawall.ledger import Store

logger = logging.getLogger("seawall.lease")
POLL_INTERVAL = 1.0
"""Seconds between heartbeats at most: leases are renewed and cancellations noticed."""


class Leases:
    """The leases this process holds, renewed by one daemon thread.

    Args:
        store: The ledger.
        duration: Seconds a lease lasts without renewal; renewed every third of that.
    """

    def __init__(
        self,
        store: Store,
        duration: float,
        on_cancelled: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.store = store
        self.on_cancelled = on_cancelled
        self.on_beat: Callable[[], None] | None = None
        self.duration = duration
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def expiry(self) -> float:
        """Return when a lease taken or renewed now would lapse."""
        return time.time() + self.duration

    def hold(self, run_id: str) -> None:
        """Start renewing the lease on ``run_id``."""
        with self._lock:
            self._held.add(run_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._beat, name="seawall-heartbeat", daemon=True
                )
                self._thread.start()

    def release(self, run_id: str) -> None:
        """Stop renewing the lease on ``run_id``."""
        with self._lock:
            self._held.discard(run_id)

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
            run_ids = self.held()
            if not run_ids:
                continue
            try:
                self.store.renew_leases(self.owner, run_ids, self.expiry())
                if self.on_cancelled is not None:
                    cancelled = self.store.cancellations(run_ids)
                    if cancelled:
                        self.on_cancelled(cancelled)
            except LedgerError:
                logger.warning(
                    "could not renew %d lease(s); retrying at the next heartbeat",
                    len(run_ids),
                    exc_info=True,
                )

    def close(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
