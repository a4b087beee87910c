"""What each racing process does in ``test_postgres_races.py`` (importable by spawned children).

Every racer opens its own store on the shared ledger, waits at the barrier so all start at
once, does its part and puts ``(name, results)`` on the queue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from seawall.ledger import DeadLetterQuery, open_store
from seawall.policies.breaker import BreakerState

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

BREAKER = "agent:flaky"
OPENS_AT = 60


def count_failure(state: BreakerState) -> tuple[BreakerState, int]:
    """One more failure; the breaker opens when the count reaches ``OPENS_AT``."""
    failures = state.failures + 1
    opened = failures >= OPENS_AT
    after = BreakerState(
        name=state.name,
        kind=state.kind,
        state="open" if opened else "closed",
        failures=failures,
        opened_at=state.opened_at if state.opened_at is not None or not opened else time.time(),
        reason="too many failures" if opened else None,
    )
    return after, failures


def _race(url: str, name: str, barrier: Barrier, results: Queue[Any], work: Any) -> None:
    store = open_store(url)
    try:
        barrier.wait(timeout=60)
        results.put((name, work(store)))
    finally:
        store.close()


def breaker_racer(url: str, name: str, barrier: Barrier, results: Queue[Any], n: int) -> None:
    """Record ``n`` failures of one breaker; report the failure count each one saw."""
    _race(
        url,
        name,
        barrier,
        results,
        lambda store: [store.update_breaker(BREAKER, "agent", count_failure) for _ in range(n)],
    )


def redrive_racer(url: str, name: str, barrier: Barrier, results: Queue[Any]) -> None:
    """Claim DLQ entries until none is left; report the run ids claimed."""

    def work(store: Any) -> list[str]:
        claimed = []
        while (entry := store.claim_dead_letter(DeadLetterQuery(), name, time.time())) is not None:
            claimed.append(entry.run_id)
        return claimed

    _race(url, name, barrier, results, work)


def lease_racer(
    url: str, name: str, barrier: Barrier, results: Queue[Any], run_ids: list[str]
) -> None:
    """Try to take over every lapsed run; report the ones won."""
    _race(
        url,
        name,
        barrier,
        results,
        lambda store: [
            r for r in run_ids if store.claim_run(r, name, time.time() + 3600, now=time.time())
        ],
    )


def handoff_racer(
    url: str, name: str, barrier: Barrier, results: Queue[Any], handoff_ids: list[str]
) -> None:
    """Try to approve every hand-off; report the ones this process decided."""
    _race(
        url,
        name,
        barrier,
        results,
        lambda store: [
            h
            for h in handoff_ids
            if store.decide_handoff(
                h, decision="approved", decided_by=name, note=None, at=time.time()
            )
        ],
    )


def verdict_racer(url: str, name: str, barrier: Barrier, results: Queue[Any], n: int) -> None:
    """Record ``n`` pairs of verdicts on run r1's attempt 1; report their names."""

    def record(store: Any) -> list[str]:
        names = []
        for i in range(n):
            pair = [f"{name}-{i}a", f"{name}-{i}b"]
            store.record_verdicts(
                "r1", 1, "gate", [{"name": v, "passed": True} for v in pair], epoch=1
            )
            names += pair
        return names

    _race(url, name, barrier, results, record)
