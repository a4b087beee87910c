"""What a worker's take() does with a queued run, the way each kind of run goes.

A run of an agent with nothing to wait for is claimed, started and read in one transaction
(``Store.claim_and_start``); a bounded agent's, or one whose breaker is not closed, takes the
longer way. Either way the run behaves as it always did: cancelled before its claim it does not
run its side effect, refused by an open breaker it is recorded skipped, ended it is not run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall import Context, FailureCause, RunStatus, Seawall

if TYPE_CHECKING:
    from seawall.runtime.registry import AgentSpec

LEDGERS = ("sqlite", "postgres")


def queued(app: Seawall, spec: AgentSpec, **inputs: object) -> str:
    """Record a run of ``spec`` pending, as a submitter to workers does; return its id."""
    run_id, _ = app.runtime.record_run(spec, dict(inputs), queued=True)
    return run_id


def test_a_claimed_run_returns_what_the_ledger_holds(app: Seawall) -> None:
    """The result built from what take() recorded equals the one read back from the ledger."""

    @app.agent
    def double(ctx: Context, x: int) -> int:
        return 2 * x

    spec = app.runtime.registry.agent(double)
    for x in (1, 2, 3):  # the first finds the breaker unread; the next know it closed
        run_id = queued(app, spec, x=x)
        taken = app.take(run_id)
        assert taken is not None
        assert (RunStatus.SUCCEEDED, 2 * x) == (taken.status, taken.output)
        assert app.runtime.result_of(run_id) == taken
        [attempt] = taken.attempts
        assert (1, app.ledger.run(run_id).epoch, "succeeded") == (
            attempt.attempt,
            attempt.epoch,
            attempt.status,
        )


def test_a_run_cancelled_before_its_claim_does_not_run_its_side_effect(app: Seawall) -> None:
    """Cancelled while pending: the worker claims it, and the run ends cancelled, nothing done."""
    done: list[str] = []

    @app.tool(mutating=True)
    def charge(key: str) -> str:
        done.append(key)
        return key

    @app.agent
    def pay(ctx: Context, key: str) -> str:
        return str(ctx.call(charge, key))

    run_id = queued(app, app.runtime.registry.agent(pay), key="k")
    assert app.cancel(run_id, reason="operator")
    taken = app.take(run_id)
    assert taken is not None
    assert (RunStatus.CANCELLED, FailureCause.CANCELLED) == (taken.status, taken.failure_cause)
    assert [] == done
    assert app.take(run_id) == app.runtime.result_of(run_id)


def test_an_open_breaker_refuses_the_run(app: Seawall) -> None:
    """A run whose agent's breaker is open is recorded skipped and not executed."""

    @app.agent
    def guarded(ctx: Context) -> int:
        raise AssertionError("must not run")

    run_id = queued(app, app.runtime.registry.agent(guarded))
    app.runtime.breakers.open("agent:guarded", "agent", "by hand")
    taken = app.take(run_id)
    assert taken is not None
    assert (RunStatus.SKIPPED, FailureCause.BREAKER_OPEN) == (taken.status, taken.failure_cause)
    assert () == taken.attempts


def test_a_bounded_agent_waits_for_its_slot_before_the_claim(app: Seawall) -> None:
    """An agent with max_concurrency goes the longer way, and its run succeeds as before."""

    @app.agent(max_concurrency=1)
    def bounded(ctx: Context, x: int) -> int:
        return x + 1

    run_id = queued(app, app.runtime.registry.agent(bounded), x=1)
    taken = app.take(run_id)
    assert taken is not None
    assert (RunStatus.SUCCEEDED, 2, 1) == (taken.status, taken.output, len(taken.attempts))
