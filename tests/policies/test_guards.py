"""Guards: the pure checks, and every limit enforced through runs at its exact boundary."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from seawall import (
    BudgetExceededError,
    ConfigurationError,
    Context,
    ErrorClass,
    FailureCause,
    Guards,
    GuardTrippedError,
    Retry,
    RunResult,
    RunStatus,
    Seawall,
    verify,
)

# -- pure checks ----------------------------------------------------------------------------------


def test_default_guards_limit_only_destructive_calls_without_a_gate() -> None:
    """Guards() limits 3 destructive calls in a row and nothing else."""
    assert Guards(None, None, None, None, 3, None, None) == Guards()


def test_check_call_allows_the_third_destructive_call_without_gate() -> None:
    """The 3rd destructive call in a row (2 before it) is allowed by default."""
    Guards().check_call(
        calls=10,
        mutating=True,
        mutations_since_gate=10,
        calls_since_gate=10,
        destructive=True,
        destructive_since_gate=2,
    )


def test_check_call_refuses_the_fourth_destructive_call_without_gate() -> None:
    """The 4th destructive call in a row is refused, naming the limit."""
    with pytest.raises(GuardTrippedError) as caught:
        Guards().check_call(
            calls=3,
            mutating=True,
            mutations_since_gate=3,
            calls_since_gate=3,
            destructive=True,
            destructive_since_gate=3,
        )
    assert ("max_destructive_without_gate", 3) == (caught.value.limit, caught.value.value)


def test_check_call_ordinary_mutations_are_not_limited_by_default() -> None:
    """A mutating call that is not destructive (a notification) is never refused by default."""
    Guards().check_call(calls=99, mutating=True, mutations_since_gate=99, calls_since_gate=99)


def test_check_call_read_only_calls_ignore_the_mutation_guard() -> None:
    """A read-only call is never refused by the mutation guards."""
    Guards(max_mutations_without_gate=1).check_call(
        calls=9, mutating=False, mutations_since_gate=9, calls_since_gate=9
    )


def test_check_call_zero_mutations_without_gate_refuses_every_write() -> None:
    """max_mutations_without_gate=0 (opt-in) refuses even the first mutating call."""
    with pytest.raises(GuardTrippedError) as caught:
        Guards(max_mutations_without_gate=0).check_call(
            calls=0, mutating=True, mutations_since_gate=0, calls_since_gate=0
        )
    assert "max_mutations_without_gate" == caught.value.limit


def test_check_call_max_tool_calls_boundary() -> None:
    """max_tool_calls=2: call 2 (1 before) is allowed, call 3 is over budget."""
    guards = Guards(max_tool_calls=2)
    guards.check_call(calls=1, mutating=False, mutations_since_gate=0, calls_since_gate=1)
    with pytest.raises(BudgetExceededError) as caught:
        guards.check_call(calls=2, mutating=False, mutations_since_gate=0, calls_since_gate=2)
    assert ("max_tool_calls", 2) == (caught.value.limit, caught.value.value)


def test_check_call_max_calls_without_gate_boundary() -> None:
    """max_calls_without_gate=2: the 2nd call in a row is allowed, the 3rd refused."""
    guards = Guards(max_calls_without_gate=2)
    guards.check_call(calls=1, mutating=False, mutations_since_gate=0, calls_since_gate=1)
    with pytest.raises(GuardTrippedError) as caught:
        guards.check_call(calls=2, mutating=False, mutations_since_gate=0, calls_since_gate=2)
    assert "max_calls_without_gate" == caught.value.limit


def test_check_call_budget_is_checked_before_the_gate_guards() -> None:
    """When both a budget and a guard would trip, the budget is reported."""
    with pytest.raises(BudgetExceededError):
        Guards(max_tool_calls=1).check_call(
            calls=5, mutating=True, mutations_since_gate=5, calls_since_gate=5
        )


def test_check_usage_boundaries() -> None:
    """Usage equal to a budget is allowed; one token or cent more is not."""
    guards = Guards(max_tokens=100, max_cost=0.5)
    guards.check_usage(100, 0.5)
    with pytest.raises(BudgetExceededError, match="max_tokens"):
        guards.check_usage(101, 0.5)
    with pytest.raises(BudgetExceededError, match="max_cost"):
        guards.check_usage(100, 0.51)


def test_check_deadline_boundary() -> None:
    """Exactly at the deadline is allowed; past it is over budget."""
    guards = Guards(deadline=2.0)
    guards.check_deadline(started=10.0, now=12.0)
    with pytest.raises(BudgetExceededError) as caught:
        guards.check_deadline(started=10.0, now=12.5)
    assert "deadline" == caught.value.limit


def test_no_limits_set_nothing_is_checked() -> None:
    """With every limit None, nothing is refused."""
    guards = Guards(max_destructive_without_gate=None)
    guards.check_call(
        calls=10**6,
        mutating=True,
        mutations_since_gate=10**6,
        calls_since_gate=10**6,
        destructive=True,
        destructive_since_gate=10**6,
    )
    guards.check_usage(10**9, 10.0**6)
    guards.check_deadline(started=0.0, now=10.0**9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tool_calls": -1},
        {"max_tool_calls": 1.5},
        {"max_tool_calls": True},
        {"max_tokens": "100"},
        {"max_mutations_without_gate": -1},
        {"max_destructive_without_gate": 1.5},
        {"max_calls_without_gate": 2.0},
        {"deadline": -1},
        {"deadline": math.nan},
        {"deadline": math.inf},
        {"deadline": "10"},
        {"max_cost": -0.01},
        {"max_cost": math.inf},
    ],
)
def test_invalid_guards_are_a_configuration_error(kwargs: dict[str, Any]) -> None:
    """Negative, non-integer counts and non-finite amounts are refused."""
    with pytest.raises(ConfigurationError):
        Guards(**kwargs)


def test_agent_guards_must_be_a_guards_object(app: Seawall) -> None:
    """@app.agent(guards=...) takes a seawall.Guards."""
    with pytest.raises(ConfigurationError):

        @app.agent(guards={"max_tool_calls": 3})  # type: ignore[arg-type]
        def agent(ctx: Context) -> None:
            return None


# -- through runs ---------------------------------------------------------------------------------


class Counter:
    """Counts the calls of a tool."""

    def __init__(self) -> None:
        self.calls = 0

    def hit(self) -> int:
        """Count one call."""
        self.calls += 1
        return self.calls


def _tools(app: Seawall) -> tuple[Counter, Counter]:
    reads, writes = Counter(), Counter()

    @app.tool(name="read")
    def read(n: int) -> int:
        return reads.hit() + n

    @app.tool(name="write", destructive=True)
    def write(n: int) -> int:
        return writes.hit() + n

    return reads, writes


def _assert_refused(result: RunResult, cause: FailureCause, limit: str) -> None:
    assert RunStatus.FAILED == result.status
    assert cause == result.failure_cause
    assert limit == (result.error or {}).get("limit")


def test_max_tool_calls_allows_exactly_n(app: Seawall) -> None:
    """max_tool_calls=3: three calls succeed."""
    reads, _ = _tools(app)

    @app.agent(guards=Guards(max_tool_calls=3))
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call("read", i) for i in range(n))

    result = app.run(agent, n=3)
    assert RunStatus.SUCCEEDED == result.status
    assert 3 == reads.calls
    assert 3 == len(app.ledger.steps(result.run_id))


def test_max_tool_calls_refuses_call_n_plus_one_before_it_runs(app: Seawall) -> None:
    """max_tool_calls=3: the 4th call is refused before it runs; budget_exceeded."""
    reads, _ = _tools(app)

    @app.agent(guards=Guards(max_tool_calls=3))
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call("read", i) for i in range(n))

    result = app.run(agent, n=4)
    _assert_refused(result, FailureCause.BUDGET_EXCEEDED, "max_tool_calls")
    assert ErrorClass.CLEAN_ABORT == result.error_class
    assert "BudgetExceededError" == (result.error or {}).get("type")
    assert 3 == reads.calls
    assert 3 == len(app.ledger.steps(result.run_id))


def test_max_tool_calls_counts_reads_and_writes(app: Seawall) -> None:
    """Mutating and read-only calls both count against max_tool_calls."""
    reads, writes = _tools(app)

    @app.agent(guards=Guards(max_tool_calls=2))
    def agent(ctx: Context) -> None:
        ctx.call("read", 1)
        ctx.call("write", 2)
        ctx.call("read", 3)

    result = app.run(agent)
    _assert_refused(result, FailureCause.BUDGET_EXCEEDED, "max_tool_calls")
    assert (1, 1) == (reads.calls, writes.calls)


def test_default_guard_allows_three_writes_without_gate(app: Seawall) -> None:
    """Default Guards(): three destructive calls in a row succeed."""
    _, writes = _tools(app)

    @app.agent
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call("write", i) for i in range(n))

    result = app.run(agent, n=3)
    assert RunStatus.SUCCEEDED == result.status
    assert 3 == writes.calls


def test_default_guard_refuses_the_fourth_write_without_gate(app: Seawall) -> None:
    """Default Guards(): the 4th destructive call is refused before it runs; guard_tripped."""
    _, writes = _tools(app)

    @app.agent
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call("write", i) for i in range(n))

    result = app.run(agent, n=4)
    _assert_refused(result, FailureCause.GUARD_TRIPPED, "max_destructive_without_gate")
    assert "GuardTrippedError" == (result.error or {}).get("type")
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert 3 == writes.calls
    assert 3 == len(app.ledger.steps(result.run_id))


def test_reads_between_writes_do_not_reset_the_mutation_guard(app: Seawall) -> None:
    """Only a passing gate resets the count: reads between writes do not."""
    reads, writes = _tools(app)

    @app.agent
    def agent(ctx: Context) -> None:
        for i in range(4):
            ctx.call("write", i)
            ctx.call("read", i)

    result = app.run(agent)
    _assert_refused(result, FailureCause.GUARD_TRIPPED, "max_destructive_without_gate")
    assert (3, 3) == (writes.calls, reads.calls)


def test_failing_gate_does_not_reset_the_mutation_guard(app: Seawall) -> None:
    """A failing gate stops the run (drift) and never resets the guard."""
    _, writes = _tools(app)

    @app.agent
    def agent(ctx: Context) -> None:
        for i in range(3):
            ctx.call("write", i)
        ctx.verify(-1, verify.rule(lambda v: v > 0, "positive"))
        ctx.call("write", 3)

    result = app.run(agent)
    assert ErrorClass.SILENT_DRIFT == result.error_class
    assert 3 == writes.calls


def test_max_calls_without_gate_allows_exactly_n(app: Seawall) -> None:
    """max_calls_without_gate=2: two calls in a row succeed."""
    reads, _ = _tools(app)

    @app.agent(guards=Guards(max_calls_without_gate=2))
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call("read", i) for i in range(n))

    assert RunStatus.SUCCEEDED == app.run(agent, n=2).status
    assert 2 == reads.calls


def test_max_calls_without_gate_refuses_call_n_plus_one(app: Seawall) -> None:
    """max_calls_without_gate=2: the 3rd call in a row is refused before it runs."""
    reads, _ = _tools(app)

    @app.agent(guards=Guards(max_calls_without_gate=2))
    def agent(ctx: Context, n: int) -> int:
        return sum(ctx.call("read", i) for i in range(n))

    result = app.run(agent, n=3)
    _assert_refused(result, FailureCause.GUARD_TRIPPED, "max_calls_without_gate")
    assert 2 == reads.calls
    assert 2 == len(app.ledger.steps(result.run_id))


def test_max_calls_without_gate_is_reset_by_a_passing_gate(app: Seawall) -> None:
    """A passing gate between calls lets the chain go on."""
    reads, _ = _tools(app)

    @app.agent(guards=Guards(max_calls_without_gate=2))
    def agent(ctx: Context) -> None:
        ctx.call("read", 1)
        ctx.call("read", 2)
        ctx.verify(1, verify.rule(bool, "truthy"))
        ctx.call("read", 3)
        ctx.call("read", 4)

    assert RunStatus.SUCCEEDED == app.run(agent).status
    assert 4 == reads.calls


def _usage_agent(app: Seawall, guards: Guards) -> Any:
    @app.agent(guards=guards)
    def agent(ctx: Context, usages: list[list[Any]]) -> str:
        for tokens_in, tokens_out, cost in usages:
            ctx.record_usage(
                model="m", input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost
            )
        return "done"

    return agent


def test_max_tokens_usage_totalling_exactly_n_is_allowed(app: Seawall) -> None:
    """max_tokens=100: usage records summing to exactly 100 tokens are fine."""
    agent = _usage_agent(app, Guards(max_tokens=100))
    result = app.run(agent, usages=[[40, 20, None], [30, 10, None]])
    assert RunStatus.SUCCEEDED == result.status
    assert 100 == result.tokens_used


def test_max_tokens_n_plus_one_is_budget_exceeded(app: Seawall) -> None:
    """max_tokens=100: one more token fails the run budget_exceeded, limit max_tokens."""
    agent = _usage_agent(app, Guards(max_tokens=100))
    result = app.run(agent, usages=[[40, 20, None], [30, 11, None], [1, 1, None]])
    _assert_refused(result, FailureCause.BUDGET_EXCEEDED, "max_tokens")
    assert 101 == result.tokens_used
    assert 2 == len(app.ledger.steps(result.run_id))


def test_max_cost_exactly_n_is_allowed(app: Seawall) -> None:
    """max_cost=0.5: a total cost of exactly 0.5 is fine."""
    agent = _usage_agent(app, Guards(max_cost=0.5))
    result = app.run(agent, usages=[[1, 1, 0.25], [1, 1, 0.25]])
    assert RunStatus.SUCCEEDED == result.status
    assert 0.5 == result.cost_usd


def test_max_cost_exceeded_is_budget_exceeded(app: Seawall) -> None:
    """max_cost=0.5: going over fails the run budget_exceeded, limit max_cost."""
    agent = _usage_agent(app, Guards(max_cost=0.5))
    result = app.run(agent, usages=[[1, 1, 0.25], [1, 1, 0.375], [1, 1, 0.0]])
    _assert_refused(result, FailureCause.BUDGET_EXCEEDED, "max_cost")
    assert 2 == len(app.ledger.steps(result.run_id))


def test_deadline_refuses_the_next_call_once_passed(app: Seawall) -> None:
    """Once the deadline passed, the next tool call is refused before it runs."""
    calls: list[int] = []

    @app.tool
    def slow(n: int) -> int:
        calls.append(n)
        time.sleep(0.3)
        return n

    @app.agent(guards=Guards(deadline=0.2))
    def agent(ctx: Context) -> None:
        ctx.call(slow, 1)
        ctx.call(slow, 2)

    result = app.run(agent)
    _assert_refused(result, FailureCause.BUDGET_EXCEEDED, "deadline")
    assert [1] == calls
    assert 1 == len(app.ledger.steps(result.run_id))


def test_breach_leaves_the_ledger_consistent(app: Seawall) -> None:
    """After a breach the run is ended, its lease released and every attempt finished."""
    _tools(app)

    @app.agent
    def agent(ctx: Context) -> None:
        for i in range(4):
            ctx.call("write", i)

    result = app.run(agent)
    run = app.ledger.run(result.run_id)
    assert RunStatus.FAILED == run.status
    assert run.end_time is not None
    assert (None, None, None) == (run.lease_owner, run.lease_expires_at, run.phase)
    assert [("failed", FailureCause.GUARD_TRIPPED)] == [
        (a.status, a.failure_cause) for a in app.ledger.attempts(result.run_id)
    ]
    assert all(a.end_time is not None for a in app.ledger.attempts(result.run_id))
    assert ["completed"] * 3 == [s.record.status for s in app.ledger.steps(result.run_id)]
    assert [] == app.handoffs.list(run_id=result.run_id)


@pytest.mark.parametrize(
    ("guards", "cause"),
    [
        (Guards(max_tool_calls=1), FailureCause.BUDGET_EXCEEDED),
        (Guards(max_calls_without_gate=1), FailureCause.GUARD_TRIPPED),
    ],
)
def test_guards_are_permanent_errors(app: Seawall, guards: Guards, cause: FailureCause) -> None:
    """A breach is not retried: one attempt only, even with Retry(attempts=3)."""
    reads, _ = _tools(app)

    @app.agent(guards=guards, retry=Retry(attempts=3))
    def agent(ctx: Context) -> None:
        ctx.call("read", 1)
        ctx.call("read", 2)

    result = app.run(agent)
    assert cause == result.failure_cause
    assert 1 == len(result.attempts)
    assert 1 == reads.calls


def test_agent_catching_the_refusal_is_refused_again(app: Seawall) -> None:
    """An agent that swallows a refusal is refused again at each further write."""
    _, writes = _tools(app)
    refusals: list[str] = []

    @app.agent
    def agent(ctx: Context) -> None:
        for i in range(6):
            try:
                ctx.call("write", i)
            except GuardTrippedError as exc:
                refusals.append(exc.limit)

    app.run(agent)
    assert 3 == writes.calls
    assert ["max_destructive_without_gate"] * 3 == refusals


def test_four_idempotent_notifications_succeed_under_default_guards(app: Seawall) -> None:
    """Ordinary mutating calls (notifications) are not limited by the default streak guard."""
    sent: list[str] = []

    @app.tool(name="notify", mutating=True, idempotent=True)
    def notify(text: str, idempotency_key: str) -> str:
        sent.append(idempotency_key)
        return text

    @app.agent
    def agent(ctx: Context) -> int:
        for i in range(4):
            ctx.call("notify", f"message {i}")
        return len(sent)

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert 4 == len(set(sent))


def test_mutation_streak_limit_is_opt_in(app: Seawall) -> None:
    """Guards(max_mutations_without_gate=2) refuses the 3rd mutating call of any kind."""
    sent: list[int] = []

    @app.tool(name="notify", mutating=True)
    def notify(n: int) -> int:
        sent.append(n)
        return n

    @app.agent(guards=Guards(max_mutations_without_gate=2))
    def agent(ctx: Context) -> None:
        for i in range(3):
            ctx.call("notify", i)

    result = app.run(agent)
    _assert_refused(result, FailureCause.GUARD_TRIPPED, "max_mutations_without_gate")
    assert [0, 1] == sent


def test_destructive_tool_is_journaled_as_mutating(app: Seawall) -> None:
    """@app.tool(destructive=True) implies mutating: its intent is written before it runs."""

    @app.tool(destructive=True)
    def drop(table: str) -> str:
        return table

    spec = app.runtime.registry.tool(drop)
    assert (True, True) == (spec.destructive, spec.mutating)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"destructive": "yes"}, "must be True or False"),
        ({"destructive": True, "llm": True}, "llm"),
    ],
)
def test_bad_destructive_flags_are_refused(
    app: Seawall, kwargs: dict[str, Any], message: str
) -> None:
    """A non-boolean destructive flag, or a destructive LLM call, is a configuration error."""
    with pytest.raises(ConfigurationError, match=message):
        app.tool(**kwargs)(lambda: None)
