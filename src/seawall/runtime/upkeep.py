"""Ledger upkeep done by the process that holds the sweeper lease: folding the counters.

The dashboard's counters (``run_counts``, ``step_counts``) gain rows with every hour of runs
and, on PostgreSQL, with every connection that writes (see
:mod:`seawall.ledger._counts_upkeep`). The sweeper folds the hours that have ended at most once
per :data:`FOLD_EVERY`, after its takeover work, so ``/metrics`` and the overview read a few
rows per hour and key whatever the ledger's age. A fold that fails is logged and tried again
at the next one due: the counts stay right unfolded, only larger.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from seawall.errors import LedgerError

if TYPE_CHECKING:
    from seawall.ledger import Store

logger = logging.getLogger("seawall.upkeep")

FOLD_EVERY: Final = 600.0
"""Seconds between two folds of the counters by one sweeper."""
OVERLAP: Final = 7200.0
"""Seconds before a fold from which the next fold of recent hours starts: the hour that ended
at the fold too, for the runs that changed late in it."""
WHOLE_EVERY: Final = 86_400.0
"""Seconds between two folds of every hour. The others fold the hours ended since the last
fold: an older hour gains rows only when a run started then changes (a resume, a redrive)."""


class Upkeep:
    """When the sweeper next folds the counters, and which hours."""

    def __init__(self) -> None:
        self._next = 0.0
        self._whole_next = 0.0
        self._since = 0.0

    def fold(self, store: Store, now: float) -> int:
        """Fold the counters of the hours ended by ``now`` when a fold is due.

        The first fold of a process, and one a day, takes every hour; the others the hours
        ended since the last (and the hour before, for the runs that ended late in it).

        Returns:
            The rows folded (0 when none was due, or the fold failed).
        """
        if now < self._next:
            return 0
        self._next = now + FOLD_EVERY
        whole = now >= self._whole_next
        try:
            folded = store.compact_counts(now, since=0.0 if whole else self._since)
        except LedgerError:
            logger.warning(
                "folding the ledger's counters failed; trying again in %.0f s",
                FOLD_EVERY,
                exc_info=True,
            )
            return 0
        if whole:
            self._whole_next = now + WHOLE_EVERY
        self._since = now - OVERLAP
        logger.debug("folded %d counter rows of ended hours", folded)
        return folded
