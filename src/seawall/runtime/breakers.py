"""Breakers at run time: admission and outcomes, shared through the ledger by every process.

The ledger is the source of truth; each process caches what it read for ``ttl`` seconds so a
closed breaker costs no database round trip per call. Every transition goes through one ledger
transaction (the pure rules are in :mod:`seawall.policies.breaker`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, TypeVar

from seawall.errors import BreakerOpenError
from seawall.policies.breaker import (
    Admission,
    Breaker,
    BreakerState,
    admit,
    force_open,
    record,
    reset,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from seawall.ledger import Store

T = TypeVar("T")


class Breakers:
    """The breakers of one app.

    Args:
        store: The ledger.
        owner: This process's lease owner id (probes are claimed under it).
        ttl: Seconds a closed breaker read from the ledger is trusted without reading again.
    """

    def __init__(self, store: Store, owner: str, ttl: float = 0.1) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self._cache: dict[str, tuple[BreakerState, float]] = {}
        self._lock = threading.Lock()
        self.last_results: OrderedDict[tuple[str, Any], Any] = OrderedDict()
        """The latest result per (tool, consistency key), for contradiction checks."""
        self.on_open: Callable[[BreakerState, BreakerState, int], None] | None = None
        """Called with (before, after, failures threshold) when a breaker opens from closed."""

    def _update(
        self,
        name: str,
        kind: str,
        threshold: int,
        change: Callable[[BreakerState], tuple[BreakerState, T]],
    ) -> T:
        """``store.update_breaker``, telling ``on_open`` about an opening once it is recorded."""
        seen: list[tuple[BreakerState, BreakerState]] = []

        def watched(state: BreakerState) -> tuple[BreakerState, T]:
            after, value = change(state)
            seen[:] = [(state, after)]
            return after, value

        value = self.store.update_breaker(name, kind, watched)
        if seen and self.on_open is not None:
            before, after = seen[0]
            if before.state == "closed" and after.state == "open":
                self.on_open(before, after, threshold)
        return value

    def _fresh(self, name: str) -> BreakerState | None:
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[1] < self.ttl:
            return cached[0]
        return None

    def _remember(self, state: BreakerState) -> None:
        with self._lock:
            self._cache[state.name] = (state, time.monotonic())

    def admits(self, name: str) -> bool:
        """Whether ``name`` is known closed right now, so admitting needs no ledger call."""
        cached = self._fresh(name)
        return cached is not None and cached.state == "closed"

    def closed(self, name: str, kind: str) -> bool:
        """Whether ``name`` is closed, read from the ledger unless known closed right now.

        A plain read, not the locked update of a transition: a closed breaker admits without
        one. So this answers as :meth:`admit` would, and an admission soon after is free.
        """
        if self.admits(name):
            return True
        state = self.store.breaker(name, kind)
        self._remember(state)
        return state.state == "closed"

    def _quiet_now(self, name: str, kind: str) -> bool:
        """:meth:`quiet`, read from the ledger (a plain read) when not known right now."""
        if self._fresh(name) is None:
            self._remember(self.store.breaker(name, kind))
        return self.quiet(name)

    def quiet(self, name: str) -> bool:
        """Whether a success of ``name`` has nothing to record (known closed, no failures)."""
        cached = self._fresh(name)
        return cached is not None and cached.state == "closed" and cached.failures == 0

    def admit(self, name: str, kind: str, policy: Breaker) -> Admission:
        """Whether one run or call may go through now (claims the probe when half-open)."""
        if self.closed(name, kind):
            return Admission(allowed=True, probe=False, state=self._cache[name][0])

        def change(state: BreakerState) -> tuple[BreakerState, Admission]:
            decision = admit(policy, state, time.time(), self.owner)
            return decision.state, decision

        decision = self._update(name, kind, policy.failures, change)
        self._remember(decision.state)
        return decision

    def check(self, name: str, kind: str, policy: Breaker) -> None:
        """Admit or raise.

        Raises:
            BreakerOpenError: The breaker refuses it.
        """
        decision = self.admit(name, kind, policy)
        if not decision.allowed:
            state = decision.state
            wait = policy.cooldown
            if state.state == "open" and state.opened_at is not None and not state.manual:
                wait = max(0.0, policy.cooldown - (time.time() - state.opened_at))
            raise BreakerOpenError(
                f"breaker {name} is {decision.state.state}: {decision.reason}. It was not "
                f"started; `seawall breakers list` shows it, `seawall breakers reset {name}` "
                "closes it",
                retry_after=wait,
                breaker=name,
                state=decision.state.state,
                reason=decision.state.reason,
            )

    def outcome(
        self, name: str, kind: str, policy: Breaker, *, success: bool, reason: str = ""
    ) -> None:
        """Record how an admitted run or call ended."""
        if success and self._quiet_now(name, kind):
            return

        def change(state: BreakerState) -> tuple[BreakerState, BreakerState]:
            after = record(policy, state, success=success, now=time.time(), reason=reason)
            return after, after

        self._remember(self._update(name, kind, policy.failures, change))

    def contradiction(self, name: str, kind: str, policy: Breaker, reason: str) -> None:
        """Results that contradict each other open the breaker at once (it half-opens later)."""

        def change(state: BreakerState) -> tuple[BreakerState, BreakerState]:
            after = state
            for _ in range(policy.failures):
                after = record(policy, after, success=False, now=time.time(), reason=reason)
            return after, after

        self._remember(self._update(name, kind, policy.failures, change))

    def open(self, name: str, kind: str, reason: str) -> BreakerState:
        """Open a breaker by hand (it stays open until reset)."""

        def change(state: BreakerState) -> tuple[BreakerState, BreakerState]:
            after = force_open(state, reason, time.time())
            return after, after

        state = self._update(name, kind, 0, change)
        self._remember(state)
        return state

    def reset(self, name: str, kind: str) -> BreakerState:
        """Close a breaker and forget its failures."""

        def change(state: BreakerState) -> tuple[BreakerState, BreakerState]:
            after = reset(state)
            return after, after

        state = self.store.update_breaker(name, kind, change)
        self._remember(state)
        return state
