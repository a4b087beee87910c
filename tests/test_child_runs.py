"""Child runs (``ctx.run``): journaled steps of their parent, served on retry, never a deadlock."""

from __future__ import annotations

from typing import Any

import pytest

from seawall import AsyncContext, Context, Retry, RunStatus, Seawall, UsageError
from seawall.testing import no_waits

LEDGERS = ("sqlite", "postgres")


def test_a_parent_retry_serves_its_child_instead_of_sending_the_invoice_again(
    app: Seawall,
) -> None:
    """The parent fails after its child sent an invoice; the retry is served the child's result."""
    sent: list[str] = []
    failures = {"left": 1}

    @app.tool(mutating=True)
    def send_invoice(customer: str, idempotency_key: str) -> str:
        sent.append(idempotency_key)
        return f"invoice for {customer}"

    @app.agent(name="billing")
    def billing(ctx: Context, customer: str) -> str:
        return str(ctx.call(send_invoice, customer))

    @app.agent(name="month_end", retry=Retry(attempts=2, initial=0))
    def month_end(ctx: Context) -> str:
        child = ctx.run(billing, customer="acme")
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the ledger of accounts is away")
        return str(child.output)

    result = app.run(month_end)
    assert RunStatus.SUCCEEDED == result.status
    assert "invoice for acme" == result.output
    assert 1 == len(sent)
    children = app.ledger.runs(parent_run_id=result.run_id)
    assert [("billing", RunStatus.SUCCEEDED)] == [(c.agent, c.status) for c in children]
    [step] = [s for s in app.ledger.steps(result.run_id) if s.record.kind == "run"]
    assert (children[0].run_id, True) == (step.record.idempotency_key, step.record.mutating)


def test_a_failed_child_runs_again_on_the_parent_error_retry(app: Seawall) -> None:
    """A child that failed is not a side effect to keep: the parent's retry starts a new one."""
    tries = {"n": 0}

    @app.agent(name="flaky_child", retry=Retry(attempts=1))
    def flaky_child(ctx: Context) -> int:
        tries["n"] += 1
        if tries["n"] == 1:
            raise ValueError("bad")
        return 7

    @app.agent(name="parent", retry=Retry(attempts=2, initial=0))
    def parent(ctx: Context) -> int:
        child = ctx.run(flaky_child)
        if not child.ok:
            raise ConnectionError("the child failed; try again")
        return int(child.output)

    result = app.run(parent)
    assert (RunStatus.SUCCEEDED, 7) == (result.status, result.output)
    statuses = sorted(c.status.value for c in app.ledger.runs(parent_run_id=result.run_id))
    assert ["failed", "succeeded"] == statuses


@pytest.mark.timeout(60)
def test_nesting_twenty_deep_with_four_threads_never_deadlocks(tmp_path: Any) -> None:
    """Sync agents nested 20 deep through ctx.run finish with max_threads=4 (one thread held)."""
    with no_waits(), Seawall(f"sqlite:///{tmp_path / 'l.db'}", max_threads=4) as app:

        @app.agent(name="nest")
        def nest(ctx: Context, depth: int) -> int:
            if depth == 0:
                return 0
            return 1 + int(ctx.run(nest, depth=depth - 1).output)

        result = app.run(nest, depth=20)
        assert (RunStatus.SUCCEEDED, 20) == (result.status, result.output)
        assert 21 == len(app.ledger.runs(agent="nest", limit=100))


@pytest.mark.timeout(60)
def test_async_and_sync_agents_nest_in_turns(tmp_path: Any) -> None:
    """An async parent, a sync child, an async grandchild and a sync great-grandchild."""
    with no_waits(), Seawall(f"sqlite:///{tmp_path / 'l.db'}", max_threads=1) as app:

        @app.agent(name="sync_level")
        def sync_level(ctx: Context, depth: int) -> int:
            return 0 if depth == 0 else 1 + int(ctx.run("async_level", depth=depth - 1).output)

        @app.agent(name="async_level")
        async def async_level(ctx: AsyncContext, depth: int) -> int:
            if depth == 0:
                return 0
            child = await ctx.run(sync_level, depth=depth - 1)
            return 1 + int(child.output)

        assert 6 == app.run(async_level, depth=6).output


def test_a_bare_app_run_inside_a_run_is_refused(app: Seawall) -> None:
    """app.run inside an agent would not be journaled: it raises a UsageError naming ctx.run."""

    @app.agent(name="inner")
    def inner(ctx: Context) -> int:
        return 1

    @app.agent(name="outer")
    def outer(ctx: Context) -> int:
        return app.run(inner).output  # type: ignore[no-any-return]

    result = app.run(outer)
    assert RunStatus.FAILED == result.status
    assert "UsageError" == (result.error or {}).get("type")
    assert "ctx.run" in (result.error or {}).get("message", "")
    assert 1 == len(result.attempts)  # a programming error is not retried
    assert [] == app.ledger.runs(agent="inner")


def test_app_run_from_a_tool_inside_a_run_is_refused_too(app: Seawall) -> None:
    """A tool cannot start a run either: the UsageError reaches the agent at its call."""
    seen: list[str] = []

    @app.agent(name="inner")
    def inner(ctx: Context) -> int:
        return 1

    @app.tool(name="starter")
    def starter() -> int:
        return app.run(inner).output  # type: ignore[no-any-return]

    @app.agent(name="outer")
    def outer(ctx: Context) -> str:
        try:
            ctx.call(starter)
        except UsageError as exc:
            seen.append(exc.message)
        return "done"

    assert "done" == app.run(outer).output
    assert ["ctx.run"] == [m[m.index("ctx.run") : m.index("ctx.run") + 7] for m in seen]


def test_a_recorded_replay_serves_the_child_without_running_it(app: Seawall) -> None:
    """Replaying the parent serves its child's recorded result: nothing runs again."""
    calls: list[int] = []

    @app.agent(name="leaf")
    def leaf(ctx: Context, x: int) -> int:
        calls.append(x)
        return x * 2

    @app.agent(name="root")
    def root(ctx: Context) -> int:
        return int(ctx.run(leaf, x=21).output)

    original = app.run(root)
    replayed = app.replay(original.run_id, mode="recorded")
    assert replayed.ok, replayed.divergence
    assert (42, [21]) == (replayed.run.output, calls)
