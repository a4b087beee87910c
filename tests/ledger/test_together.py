"""Writes of several runs in one transaction (``store.together``), on SQLite and PostgreSQL.

The calls run in one transaction; when one fails, the group runs again with each call under a
savepoint: its failure (a fenced end, a duplicate id) is its own and writes nothing, the other
calls commit. The runtime groups concurrent runs' starts and ends this
way (:meth:`~seawall.runtime.ledger_io.LedgerIO.together`).
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

import pytest

import seawall
from seawall._failures import RunStatus
from seawall.ledger import AttemptOutcome, Store
from tests.ledger.rows import new_run, outcome_of, step

if TYPE_CHECKING:
    from seawall import Seawall

LEDGERS = ("sqlite", "postgres")


def _end(store: Store, run_id: str, epoch: int) -> Any:
    row, step_blobs = step(run_id, 1)
    outcome, output_blobs = outcome_of(output={"run": run_id})
    ended = AttemptOutcome("succeeded", 1999.0, None, None, None, None, None)
    return functools.partial(
        store.end_run, run_id, 1, ended, outcome, [row], [*step_blobs, *output_blobs], epoch=epoch
    )


def test_a_fenced_call_writes_nothing_and_the_others_commit(store: Store) -> None:
    for run_id in ("r1", "r2", "r3"):
        run, blobs = new_run(run_id, lease_expires_at=1000.0)
        store.create_and_start(run, blobs)
    store.claim_run("r2", "heir", 3000.0, now=1500.0)  # r2 now belongs to another owner

    outcomes = store.together([_end(store, "r1", 1), _end(store, "r2", 1), _end(store, "r3", 1)])

    errors = [type(error) for _, error in outcomes]
    assert errors == [type(None), seawall.LeaseLostError, type(None)]
    statuses = {r: (store.get_run(r) or pytest.fail("run lost")).status for r in ("r1", "r2", "r3")}
    assert statuses == {
        "r1": RunStatus.SUCCEEDED,
        "r2": RunStatus.RUNNING,
        "r3": RunStatus.SUCCEEDED,
    }
    assert store.load_steps("r2") == []  # the refused end left not even its step
    assert [1] == [s.seq for s in store.load_steps("r3")]


def test_a_duplicate_run_is_refused_alone(store: Store) -> None:
    first, blobs = new_run("r1")
    store.create_and_start(first, blobs)
    again, again_blobs = new_run("r1", start=1234.0)
    other, other_blobs = new_run("r2")

    outcomes = store.together(
        [
            functools.partial(store.create_and_start, again, again_blobs),
            functools.partial(store.create_and_start, other, other_blobs),
        ]
    )

    assert isinstance(outcomes[0][1], seawall.LedgerError)
    assert outcomes[1] == (None, None)
    assert (store.get_run("r2") or pytest.fail("r2 not recorded")).status == RunStatus.RUNNING
    assert (store.get_run("r1") or pytest.fail("r1 lost")).start_time != 1234.0


def test_concurrent_runs_share_commits_and_each_keeps_its_own_error(app: Seawall) -> None:
    effects: list[int] = []

    @app.tool(name="record", mutating=False)
    async def record(i: int) -> int:
        effects.append(i)
        return i

    @app.agent(name="one")
    async def one(ctx: Any, i: int) -> int:
        return int(await ctx.call(record, i))

    async def main() -> list[Any]:
        runs = [app.arun("one", i=i) for i in range(40)]
        runs.append(app.arun("one", i=object()))  # does not serialise: this run's error only
        return await asyncio.gather(*runs, return_exceptions=True)

    results = asyncio.run(main())

    assert isinstance(results[-1], seawall.SerializationError)
    assert [r.output for r in results[:-1]] == list(range(40))
    assert app.runtime.io.groups >= 1  # some starts or ends were written together
    if not app.runtime.io.inline:  # PostgreSQL: in a group commit of writes put off
        assert app.store._group.groups >= 1  # type: ignore[attr-defined]
    recorded = app.ledger.runs(limit=100)
    assert len(recorded) == 40
    assert {r.status for r in recorded} == {RunStatus.SUCCEEDED}
    assert sorted(effects) == list(range(40))


def test_a_failing_call_has_its_own_writes_rolled_back(store: Store) -> None:
    def writes_then_fails() -> None:
        run, blobs = new_run("half")
        store.create_and_start(run, blobs)
        raise seawall.LedgerError("failed after its first write")

    run, blobs = new_run("whole")
    outcomes = store.together(
        [writes_then_fails, functools.partial(store.create_and_start, run, blobs)]
    )

    assert isinstance(outcomes[0][1], seawall.LedgerError)
    assert outcomes[1] == (None, None)
    assert store.get_run("half") is None
    assert store.get_run("whole") is not None


def test_calls_run_once_unless_one_fails_then_the_group_runs_again(store: Store) -> None:
    """No failure: each call once, one transaction. A failure: the group again, with savepoints."""
    ran: list[str] = []

    def create(run_id: str, *, fail: bool = False) -> None:
        ran.append(run_id)
        run, blobs = new_run(run_id)
        store.create_and_start(run, blobs)
        if fail:
            raise seawall.LedgerError(f"{run_id} failed after its write")

    outcomes = store.together([functools.partial(create, "a"), functools.partial(create, "b")])
    assert (ran, outcomes) == (["a", "b"], [(None, None), (None, None)])

    ran.clear()
    outcomes = store.together(
        [
            functools.partial(create, "c"),
            functools.partial(create, "d", fail=True),
            functools.partial(create, "e"),
        ]
    )
    # The first pass stopped at d's failure (rolled back, c's write with it); the second ran
    # all three, each under its savepoint.
    assert ran == ["c", "d", "c", "d", "e"]
    assert [type(error) for _, error in outcomes] == [type(None), seawall.LedgerError, type(None)]
    recorded = {r: store.get_run(r) is not None for r in "cde"}
    assert recorded == {"c": True, "d": False, "e": True}
