"""The storage contract of ``claim_and_start``, on SQLite and PostgreSQL.

A worker claims a queued run, starts its first attempt and reads what executing it needs, in
one transaction. The claim is fenced as ``claim_run``'s: one claimer wins, a live lease is not
taken, a lapsed one is taken over under a higher epoch, and the owner it replaces writes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from seawall._failures import RunStatus
from seawall._payload import unpack
from seawall.errors import LeaseLostError
from seawall.ledger import AttemptOutcome, ClaimedRun, Store, open_store
from seawall.ledger._sqlstore import SQLStore
from tests.ledger.rows import create, finish, new_run, step
from tests.ledger.test_contract import race

if TYPE_CHECKING:
    from seawall._payload import Blob

LEDGERS = ("sqlite", "postgres")


def queue(store: Store, run_id: str, *, agent: str = "agent", value: object = None) -> None:
    """Record ``run_id`` pending, unleased at epoch 0, as a submitter to workers does."""
    run, blobs = new_run(run_id, agent=agent, value=value)
    store.create_run(
        dataclasses.replace(run, owner=None, lease_expires_at=None, status=RunStatus.PENDING),
        blobs,
    )


def claimed(found: ClaimedRun | None) -> ClaimedRun:
    """``found``, which the test expects to be a claim."""
    assert found is not None, "the claim was refused"
    return found


def test_a_queued_run_is_claimed_started_and_read_at_once(store: Store) -> None:
    """The claim leases the run at epoch 1, starts attempt 1 at its time, returns the input."""
    queue(store, "q1")
    claim = claimed(store.claim_and_start("q1", "worker", 2000.0, 1500.0, ["agent"]))
    assert (True, 1, 1, "worker", 2000.0, RunStatus.RUNNING) == (
        claim.started,
        claim.run.epoch,
        claim.run.attempts,
        claim.run.lease_owner,
        claim.run.lease_expires_at,
        claim.run.status,
    )
    assert {"run": "q1"} == unpack(claim.input, store.get_blobs)
    assert claim.run == store.get_run("q1")
    [attempt] = store.list_attempts("q1")
    assert (1, 1500.0, "running", "worker", 1, 0, 0) == (
        attempt.attempt,
        attempt.start_time,
        attempt.status,
        attempt.owner,
        attempt.epoch,
        attempt.base_seq,
        attempt.completed_at_start,
    )


def test_an_input_stored_as_a_blob_comes_with_it(store: Store) -> None:
    """An input stored as one blob is returned with it: decoding it reads nothing more."""
    value = {"text": "hello " * 200}
    queue(store, "q1", value=value)
    claim = claimed(store.claim_and_start("q1", "worker", 2000.0, 1500.0, ["agent"]))
    assert claim.blobs

    def nothing_more(hashes: list[str]) -> dict[str, Blob]:
        missing = [h for h in hashes if h not in claim.blobs]
        assert not missing, "a blob was left out of the claim"
        return {h: claim.blobs[h] for h in hashes}

    assert value == unpack(claim.input, nothing_more)


def test_a_chunked_input_comes_with_its_top_blob(store: Store) -> None:
    """A large input cut in chunks comes with its top blob; the chunks are read when decoded."""
    value = {"messages": [{"n": i, "text": "hello " * 40} for i in range(100)]}
    queue(store, "q1", value=value)
    claim = claimed(store.claim_and_start("q1", "worker", 2000.0, 1500.0, ["agent"]))
    assert claim.blobs

    def then_the_store(hashes: list[str]) -> dict[str, Blob]:
        return {
            **store.get_blobs(hashes),
            **{h: claim.blobs[h] for h in hashes if h in claim.blobs},
        }

    assert value == unpack(claim.input, then_the_store)


def test_the_second_claimer_gets_nothing(store: Store) -> None:
    """Two claims of one queued run: the first wins; the second changes nothing."""
    queue(store, "q1")
    first = claimed(store.claim_and_start("q1", "one", 2000.0, 1500.0, ["agent"]))
    assert store.claim_and_start("q1", "two", 2000.0, 1500.0, ["agent"]) is None
    run = store.get_run("q1")
    assert run is not None
    assert ("one", 1, 1) == (run.lease_owner, run.epoch, run.attempts)
    assert [1] == [a.epoch for a in store.list_attempts("q1")]
    assert 1 == first.run.epoch


def test_concurrent_claimers_from_two_stores_have_one_winner(ledger_url: str) -> None:
    """Two stores (two connections) claiming at once: one starts the run, the other nothing."""
    results = race(
        ledger_url,
        lambda store: queue(store, "q1"),
        lambda name, store: store.claim_and_start("q1", name, 2000.0, 1500.0, ["agent"]),
    )
    winners = [name for name, claim in results.items() if claim is not None]
    assert 1 == len(winners)
    store = open_store(ledger_url)
    try:
        run = store.get_run("q1")
        assert run is not None
        assert (winners[0], 1, 1) == (run.lease_owner, run.epoch, run.attempts)
        assert [winners[0]] == [a.owner for a in store.list_attempts("q1")]
    finally:
        store.close()


def test_a_live_lease_is_not_taken_and_a_lapsed_one_is_taken_over(store: Store) -> None:
    """A run leased until 2000 is refused at 1500; at 2500 it is claimed at a higher epoch.

    It had started an attempt already: the claim starts none (the run is to be resumed).
    """
    create(store, "r1", lease_expires_at=2000.0)
    store.start_attempt("r1", 1, 1001.0, "dead", epoch=1)
    assert store.claim_and_start("r1", "heir", 3000.0, 1500.0, ["agent"]) is None
    claim = claimed(store.claim_and_start("r1", "heir", 3000.0, 2500.0, ["agent"]))
    assert (False, 2, 1, "heir") == (
        claim.started,
        claim.run.epoch,
        claim.run.attempts,
        claim.run.lease_owner,
    )
    assert [("running", 1)] == [(a.status, a.epoch) for a in store.list_attempts("r1")]


def test_the_replaced_owner_writes_nothing(store: Store) -> None:
    """After a takeover by claim_and_start, the stale epoch's writes are refused."""
    create(store, "r1", lease_expires_at=1000.0)
    store.start_attempt("r1", 1, 1001.0, "dead", epoch=1)
    claimed(store.claim_and_start("r1", "heir", 3000.0, 1500.0, ["agent"]))
    row, blobs = step("r1", 1)
    with pytest.raises(LeaseLostError):
        store.write_steps([row], blobs, epoch=1)
    with pytest.raises(LeaseLostError):
        store.finish_attempt(
            "r1", 1, AttemptOutcome("succeeded", 1600.0, None, None, None, None, None), epoch=1
        )
    assert [] == store.load_steps("r1")
    assert [None] == [a.end_time for a in store.list_attempts("r1")]


def test_a_stale_claim_time_takes_nothing(store: Store) -> None:
    """A claimer whose clock is behind the lease (a stale ``now``) does not take the run."""
    queue(store, "q1")
    claimed(store.claim_and_start("q1", "one", 2000.0, 1500.0, ["agent"]))
    assert store.claim_and_start("q1", "two", 1800.0, 1400.0, ["agent"]) is None
    assert 1 == (store.get_run("q1") or pytest.fail("run lost")).epoch


def test_only_runs_of_the_given_agents_are_claimed(store: Store) -> None:
    """A run of another agent, a graph's own run, an ended or unknown run: nothing claimed."""
    queue(store, "other", agent="elsewhere")
    graph, blobs = new_run("graph", agent="flow")
    store.create_run(
        dataclasses.replace(
            graph, owner=None, lease_expires_at=None, status=RunStatus.PENDING, workflow="flow"
        ),
        blobs,
    )
    create(store, "ended", lease_expires_at=1000.0)
    finish(store, "ended")
    for run_id in ("other", "graph", "ended", "unknown"):
        assert store.claim_and_start(run_id, "w", 3000.0, 2500.0, ["agent", "flow"]) is None
    assert store.claim_and_start("other", "w", 3000.0, 2500.0, []) is None
    assert (0, RunStatus.PENDING) == (
        (store.get_run("other") or pytest.fail("run lost")).epoch,
        (store.get_run("other") or pytest.fail("run lost")).status,
    )


def test_a_recorded_replay_is_claimed_not_started(store: Store) -> None:
    """A recorded replay is claimed for its resume (which closes it), never started afresh."""
    create(store, "r1", lease_expires_at=1000.0, replay_mode="recorded")
    claim = claimed(store.claim_and_start("r1", "heir", 3000.0, 1500.0, ["agent"]))
    assert (False, 0, []) == (claim.started, claim.run.attempts, store.list_attempts("r1"))


def test_a_claim_redone_in_doubt_recognises_its_own_commit(store: Store) -> None:
    """Redone after a commit whose outcome is unknown, the claim finds what it committed."""
    queue(store, "q1")
    first = claimed(store.claim_and_start("q1", "worker", 2000.0, 1500.0, ["agent"]))
    assert isinstance(store, SQLStore)

    def redo(doubt: bool, owner: str = "worker") -> ClaimedRun | None:
        # The branch a PostgreSQL store's redo takes once the claim's update finds nothing.
        return store._run(
            lambda conn, _: store._claimed_before(conn, doubt, "q1", owner, 2000.0, 1500.0),
            "redo",
        )

    assert first == redo(doubt=True)
    assert redo(doubt=False) is None
    assert redo(doubt=True, owner="another") is None
