"""Retry budgets at run time: calls counted in memory, retries decided against the ledger.

Counting a call costs a dictionary increment. The counts reach the ledger when a retry is being
decided (a failure path) and on every heartbeat, so every process sharing the ledger decides
against (nearly) the same window.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seawall.ledger import Store
    from seawall.policies.budget import RetryBudget


class RetryBudgets:
    """The retry budgets of one app."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._calls: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._lock = threading.Lock()

    def count(self, name: str) -> None:
        """One call (or run attempt) of ``name`` happened."""
        self._calls[(name, int(time.time()))] += 1

    def flush(self) -> None:
        """Write the calls counted since the last flush."""
        with self._lock:
            counted, self._calls = self._calls, defaultdict(int)
        if counted:
            self.store.add_budget_calls(
                [(name, bucket, calls) for (name, bucket), calls in counted.items()]
            )

    def allow_retry(self, name: str, budget: RetryBudget) -> bool:
        """Spend one retry of ``name`` if its budget has one left (atomically, for everyone)."""
        self.flush()
        now = time.time()
        return self.store.spend_retry(
            name, since=int(now - budget.window) + 1, bucket=int(now), allows=budget.allows
        )
