"""Retry budgets: retries may be at most a fraction of recent calls.

An outage is then not multiplied by every caller retrying at once (pure rule; the counts live
in the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass

from seawall.errors import ConfigurationError
from seawall.policies._arguments import is_amount, is_count


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """How many retries a tool (or agent) may spend.

    Args:
        ratio: Retries allowed per call over the window (0.1: one retry per ten calls).
        floor: Retries always allowed in a window, however few calls it saw.
        window: Seconds the counts cover (a sliding window of one-second buckets).
    """

    ratio: float = 0.1
    floor: int = 10
    window: float = 10.0

    def __post_init__(self) -> None:
        if not is_amount(self.ratio):
            raise ConfigurationError(f"RetryBudget(ratio={self.ratio!r}) must be a number >= 0")
        if not is_count(self.floor, 0):
            raise ConfigurationError(f"RetryBudget(floor={self.floor!r}) must be an integer >= 0")
        if not is_amount(self.window, 1):
            raise ConfigurationError(f"RetryBudget(window={self.window!r}) must be >= 1 second")

    def allows(self, calls: int, retries: int) -> bool:
        """Whether one more retry fits, given the window's calls and retries so far."""
        return retries < max(self.floor, int(self.ratio * calls))
