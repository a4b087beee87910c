"""Takeover sweeps of a local app: one sweeper at a time, dead owners' runs resumed here."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from seawall import Context, RunStatus, Seawall
from seawall.runtime.resume import resume_agent_run
from seawall.runtime.takeover import lost_messages, resumable
from seawall.runtime.upkeep import FOLD_EVERY

if TYPE_CHECKING:
    from collections.abc import Iterator

LEDGERS = ("sqlite", "postgres")
LEASE = 2.0


def register(app: Seawall) -> None:
    """The agent every app of these tests serves."""

    @app.agent(name="double")
    def double(ctx: Context, x: int) -> int:
        return 2 * x


@pytest.fixture
def pair(ledger_url: str) -> Iterator[tuple[Seawall, Seawall]]:
    """Two apps (two processes, as far as the ledger knows) serving the same agent."""
    first, second = Seawall(ledger_url, lease=LEASE), Seawall(ledger_url, lease=LEASE)
    try:
        register(first)
        register(second)
        yield first, second
    finally:
        first.close()
        second.close()


def abandoned_run(app: Seawall, x: int, *, ago: float = 10.0) -> str:
    """Record a run of ``double`` leased to ``app`` ``ago`` seconds ago, as if it then died."""
    spec = app.runtime.registry.agent("double")
    input_hash, column, blobs = app.runtime.codec.snapshot({"x": x}, "inputs")
    run_id, _ = app.runtime.open_run(
        spec.name, input_hash, column, None, blobs, now=time.time() - ago, queued=False
    )
    return run_id


def test_a_sweep_resumes_here_a_run_whose_owner_died(pair: tuple[Seawall, Seawall]) -> None:
    """The sweeper takes over a lapsed run of an agent it serves and sees it through."""
    survivor, dead = pair
    run_id = abandoned_run(dead, 21)
    sweep = survivor.runtime.takeover.sweep()
    assert (True, (run_id,)) == (sweep.swept, sweep.resumed)
    result = survivor.wait(run_id, timeout=30)
    assert (RunStatus.SUCCEEDED, 42) == (result.status, result.output)
    assert [survivor.runtime.leases.owner] == [a.owner for a in result.attempts]


def test_a_sweep_leaves_the_runs_of_this_process(pair: tuple[Seawall, Seawall]) -> None:
    """A process does not take over its own run (its heartbeat renews it or reports it lost)."""
    app, _ = pair
    run_id = abandoned_run(app, 1)
    assert () == app.runtime.takeover.sweep().resumed
    assert RunStatus.RUNNING == app.ledger.run(run_id).status


def test_one_process_sweeps_at_a_time(pair: tuple[Seawall, Seawall]) -> None:
    """The sweeper lease is held by one process; another sweeps once it lapsed."""
    first, second = pair
    now = time.time()
    assert first.runtime.takeover.sweep(now).swept
    assert not second.runtime.takeover.sweep(now + 0.1).swept
    assert first.runtime.takeover.sweep(now + first.runtime.takeover.every).swept
    lapsed = now + first.runtime.takeover.every + 2 * first.runtime.takeover.every + 0.1
    assert second.runtime.takeover.sweep(lapsed).swept
    assert not first.runtime.takeover.sweep(lapsed + 0.1).swept


def test_an_idle_process_does_not_sweep(pair: tuple[Seawall, Seawall]) -> None:
    """With no run in flight and not serving, a heartbeat leaves the sweeps to others."""
    idle, other = pair
    idle.runtime.takeover.beat()
    assert other.runtime.takeover.sweep().swept


def test_a_serving_process_sweeps_from_its_heartbeat(pair: tuple[Seawall, Seawall]) -> None:
    """A worker's main process serves: with no run in flight its heartbeat takes a run over."""
    serving, dead = pair
    run_id = abandoned_run(dead, 3)
    dead.close()
    serving.runtime.takeover.serve()
    result = serving.wait(run_id, timeout=30)
    assert (RunStatus.SUCCEEDED, 6) == (result.status, result.output)
    assert [serving.runtime.leases.owner] == [a.owner for a in result.attempts]


def test_the_heartbeat_of_a_busy_process_takes_over_a_dead_owner_run(
    pair: tuple[Seawall, Seawall],
) -> None:
    """A process with a run in flight takes over a lapsed run within about two leases."""
    survivor, dead = pair
    gate = threading.Event()

    @survivor.agent(name="busy")
    def busy(ctx: Context) -> str:
        gate.wait(30)
        return "done"

    handle = survivor.submit(busy)
    opened = time.time()
    run_id = abandoned_run(dead, 5, ago=0.0)
    dead.close()
    try:
        result = survivor.wait(run_id, timeout=30)
    finally:
        gate.set()
    assert (RunStatus.SUCCEEDED, 10) == (result.status, result.output)
    [attempt] = result.attempts
    assert survivor.runtime.leases.owner == attempt.owner
    assert attempt.start_time - (opened + LEASE) < 2 * LEASE
    assert RunStatus.SUCCEEDED == handle.result(timeout=30).status


def test_resume_takes_a_pending_run_no_worker_claimed(pair: tuple[Seawall, Seawall]) -> None:
    """seawall resume takes a run recorded for a worker long ago that nobody claimed."""
    app, _ = pair
    spec = app.runtime.registry.agent("double")
    input_hash, column, blobs = app.runtime.codec.snapshot({"x": 4}, "inputs")
    old, _ = app.runtime.open_run(
        spec.name, input_hash, column, None, blobs, now=time.time() - 60, queued=True
    )
    fresh, _ = app.runtime.open_run(spec.name, input_hash, column, None, blobs, queued=True)
    [result] = app.resume()
    assert (old, RunStatus.SUCCEEDED, 8) == (result.run_id, result.status, result.output)
    assert RunStatus.PENDING == app.ledger.run(fresh).status


def test_lost_messages_are_the_unclaimed_runs_beyond_the_queue() -> None:
    """A queue holding fewer messages than there are unclaimed runs lacks the difference."""
    assert (3, 0, 0) == (lost_messages(5, 2), lost_messages(2, 5), lost_messages(0, 0))


def test_resumable_leaves_the_nodes_of_a_resumed_graph_to_it(app: Seawall) -> None:
    """A graph run and its node lapsed together: the graph's coordinator resumes the node."""
    register(app)
    input_hash, column, blobs = app.runtime.codec.snapshot({"x": 1}, "inputs")
    graph, _ = app.runtime.open_run("flow", input_hash, column, None, blobs, workflow="flow")
    node, _ = app.runtime.open_run(
        "double",
        input_hash,
        column,
        None,
        blobs,
        workflow="flow",
        node="double",
        parent_run_id=graph,
    )
    lone, _ = app.runtime.open_run("double", input_hash, column, None, blobs)
    runs = [app.ledger.run(run_id) for run_id in (graph, node, lone)]
    assert [graph, lone] == [r.run_id for r in resumable(runs, app.agents, {"flow"})]
    assert [node, lone] == [r.run_id for r in resumable(runs, app.agents, set())]


def test_a_resumer_claimed_over_before_its_first_write_gives_the_run_up(
    pair: tuple[Seawall, Seawall],
) -> None:
    """Stalled past its lease between its claim and its first write, a resumer writes nothing.

    Its first write (closing the dead owner's attempt) is refused under the stale epoch; the
    resume then returns ``None`` (another process holds the run) instead of raising.
    """
    survivor, dead = pair
    run_id = abandoned_run(dead, 21, ago=30.0)
    store = survivor.runtime.store
    store.start_attempt(run_id, 1, time.time() - 30.0, dead.runtime.leases.owner, epoch=1)
    now = time.time()
    stale = store.claim_run(run_id, survivor.runtime.leases.owner, now - 5.0, now - 10.0)
    fresh = store.claim_run(run_id, dead.runtime.leases.owner, now + 60.0, now)
    assert stale is not None
    assert fresh is not None
    assert fresh > stale
    run = survivor.ledger.run(run_id)
    refused_before = store.get_run(run_id)

    result = survivor.runtime.sync(
        resume_agent_run(survivor.runtime, run, now, epoch=stale), "resume", "aresume"
    )

    assert result is None
    after = store.get_run(run_id)
    assert (fresh, refused_before.status) == (after.epoch, after.status)
    attempts = survivor.ledger.attempts(run_id)
    assert [("running", dead.runtime.leases.owner)] == [(a.status, a.owner) for a in attempts]


def test_the_sweeper_folds_the_counters_of_ended_hours(pair: tuple[Seawall, Seawall]) -> None:
    """After its takeover work the sweeper folds the ended hours' counters, once per FOLD_EVERY.

    Rows of keys every run passes through (pending, running) net to zero, and on PostgreSQL each
    writing connection has its slot: the fold leaves a row per key, and the same figures.
    """
    app, _ = pair
    for x in range(5):
        assert app.run("double", x=x).ok
    counted = [(r.agent, r.status, r.runs) for r in app.store.run_stats()]
    takeover = app.runtime.takeover
    later = time.time() + 3600  # the runs' hour has ended
    first = takeover.sweep(later)
    again = takeover.sweep(later + takeover.every)
    due = takeover.sweep(later + FOLD_EVERY)
    assert (True, True, True) == (first.swept, again.swept, due.swept)
    assert first.folded > 0
    assert (0, 0) == (again.folded, due.folded)  # not due yet; then nothing left to fold
    assert [("double", "succeeded", 5)] == counted
    assert counted == [(r.agent, r.status, r.runs) for r in app.store.run_stats()]
