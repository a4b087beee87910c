"""Several processes race on one PostgreSQL ledger: each contested decision is taken once.

SQLite gets these guarantees from its single writer; PostgreSQL from row locks, ``SKIP LOCKED``
and unique keys. Each test starts four real processes (``spawn``) that open their own store and
wait at a barrier, so their writes overlap.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from seawall._failures import ErrorClass, RunStatus
from seawall.ledger import DeadLetterQuery, HandOffRecord, RunQuery, Store
from tests.ledger import pg_racers
from tests.ledger.rows import create, finish

if TYPE_CHECKING:
    from collections.abc import Callable

LEDGERS = ("postgres",)
PROCESSES = 4
pytestmark = pytest.mark.slow


def _race(target: Callable[..., None], url: str, *extra: Any) -> dict[str, Any]:
    """Run ``target`` in PROCESSES spawned processes at once; return their results by name."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    children = [
        context.Process(target=target, args=(url, f"p{i}", barrier, results, *extra))
        for i in range(PROCESSES)
    ]
    for child in children:
        child.start()
    try:
        found = dict(results.get(timeout=90) for _ in children)
    finally:
        for child in children:
            child.join(timeout=30)
    assert [0] * PROCESSES == [child.exitcode for child in children]
    return found


def test_breaker_transitions_are_serialised(ledger_url: str, store: Store) -> None:
    """4 processes x 30 failures: no update is lost and the breaker opens exactly once."""
    seen = _race(pg_racers.breaker_racer, ledger_url, 30)
    counts = sorted(c for values in seen.values() for c in values)
    assert list(range(1, 121)) == counts
    state = store.breaker(pg_racers.BREAKER, "agent")
    assert ("open", 120) == (state.state, state.failures)
    assert [("closed", "open")] == [
        (e.from_state, e.to_state) for e in store.breaker_events(pg_racers.BREAKER)
    ]


def test_each_dead_letter_is_claimed_once(ledger_url: str, store: Store) -> None:
    """4 redrivers drain 40 DLQ entries: every entry is claimed, none twice."""
    for i in range(40):
        create(store, f"r{i:02d}")
        finish(store, f"r{i:02d}", RunStatus.FAILED, error_class=ErrorClass.CLEAN_ABORT, end=i)
    claimed = _race(pg_racers.redrive_racer, ledger_url)
    every = [run_id for runs in claimed.values() for run_id in runs]
    assert sorted(f"r{i:02d}" for i in range(40)) == sorted(every)
    assert [] == store.list_dead_letters(DeadLetterQuery())
    owners = {e.run_id: e.claimed_by for e in store.list_dead_letters(DeadLetterQuery(status=None))}
    assert {r: name for name, runs in claimed.items() for r in runs} == owners


def test_lapsed_lease_has_one_heir(ledger_url: str, store: Store) -> None:
    """4 processes take over 20 lapsed runs: each run has exactly one new owner."""
    run_ids = [f"run{i:02d}" for i in range(20)]
    for run_id in run_ids:
        create(store, run_id, lease_expires_at=time.time() - 60)
    won = _race(pg_racers.lease_racer, ledger_url, run_ids)
    winners = Counter(r for runs in won.values() for r in runs)
    assert dict.fromkeys(run_ids, 1) == dict(winners)
    owners = {r.run_id: r.lease_owner for r in store.list_runs(RunQuery())}
    assert {r: name for name, runs in won.items() for r in runs} == owners


def test_handoff_is_decided_once(ledger_url: str, store: Store) -> None:
    """4 processes approve the same 20 hand-offs: each is decided by exactly one of them."""
    create(store, "r1")
    handoff_ids = [f"h{i:02d}" for i in range(20)]
    for handoff_id in handoff_ids:
        store.open_handoff(
            HandOffRecord(handoff_id, "r1", "review", "check", None, "open", time.time()), epoch=1
        )
    decided = _race(pg_racers.handoff_racer, ledger_url, handoff_ids)
    deciders = Counter(h for ids in decided.values() for h in ids)
    assert dict.fromkeys(handoff_ids, 1) == dict(deciders)
    recorded = {h.handoff_id: h.decided_by for h in store.list_handoffs(run_id="r1")}
    assert {h: name for name, ids in decided.items() for h in ids} == recorded


def test_verdicts_of_one_attempt_are_numbered_once(ledger_url: str, store: Store) -> None:
    """4 processes x 25 pairs of verdicts on one attempt: ordinals 1..200, pairs consecutive."""
    create(store, "r1")
    recorded = _race(pg_racers.verdict_racer, ledger_url, 25)
    verdicts = store.list_verdicts("r1")
    assert list(range(1, 201)) == [v.ordinal for v in verdicts]
    names = [v.name for v in verdicts]
    assert sorted(n for ns in recorded.values() for n in ns) == sorted(names)
    for racer, mine in recorded.items():
        assert mine == [n for n in names if n.startswith(f"{racer}-")]  # each one's, in order
        for first in mine[::2]:  # a write's rows are consecutive
            assert names[names.index(first) + 1] == first[:-1] + "b"
