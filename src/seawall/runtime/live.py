"""The runs executing in this process: their journals, for cancellation and takeover."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seawall.errors import LeaseLostError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Mapping, Sequence

    from seawall.runtime.journal import Journal


@dataclass(slots=True)
class LiveRun:
    """A run executing in this process: its journal, and its task for an async agent."""

    journal: Journal
    task: asyncio.Future[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def cancel(self, reason: str) -> None:
        """Make the agent stop at its next ctx call (and cancel an async agent's task)."""
        self.journal.cancelled = reason
        if self.task is not None and self.loop is not None and not self.task.done():
            self.loop.call_soon_threadsafe(self.task.cancel)


class LiveRuns:
    """The runs executing in this process, for cancellation."""

    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}
        self._lock = threading.Lock()

    def enter(self, run_id: str, journal: Journal) -> LiveRun:
        """Register a starting attempt."""
        live = LiveRun(journal)
        with self._lock:
            self._runs[run_id] = live
        return live

    def leave(self, run_id: str) -> None:
        """Forget an ended attempt."""
        with self._lock:
            self._runs.pop(run_id, None)

    def journals(self) -> list[tuple[str, Journal]]:
        """The live runs' ids and journals."""
        with self._lock:
            return [(run_id, live.journal) for run_id, live in self._runs.items()]

    def cancel(self, reasons: Mapping[str, str]) -> None:
        """Cancel the live runs among ``reasons``."""
        with self._lock:
            found = [(self._runs.get(run_id), reason) for run_id, reason in reasons.items()]
        for live, reason in found:
            if live is not None and live.journal.cancelled is None:
                live.cancel(reason)

    def lose(self, run_ids: Sequence[str]) -> None:
        """Stop the live attempts of runs another process took over (their next ctx call)."""
        with self._lock:
            found = [self._runs.get(run_id) for run_id in run_ids]
        for live in found:
            if live is not None:
                journal = live.journal
                journal.interrupt(
                    LeaseLostError(
                        f"run {journal.run_id} was taken over by another process (its lease of "
                        f"epoch {journal.epoch} is gone); this attempt stops before any further "
                        "call",
                        run_id=journal.run_id,
                        epoch=journal.epoch,
                    )
                )
