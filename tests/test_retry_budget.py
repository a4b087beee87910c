"""Retry budgets: an outage is not multiplied by every caller retrying at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from seawall import (
    AsyncContext,
    Breaker,
    ConfigurationError,
    Retry,
    RetryBudget,
    RunStatus,
    Seawall,
)
from seawall.policies.budget import RetryBudget as Budget


def test_budget_rule() -> None:
    """Retries stay under max(floor, ratio x calls)."""
    budget = Budget(ratio=0.1, floor=3, window=10)
    assert budget.allows(calls=0, retries=2)
    assert not budget.allows(calls=0, retries=3)
    assert budget.allows(calls=100, retries=9)
    assert not budget.allows(calls=100, retries=10)
    with pytest.raises(ConfigurationError):
        Budget(window=0.5)


def test_outage_with_200_concurrent_runs_stays_within_the_budget(ledger_url: str) -> None:
    """200 runs hit a tool that fails 100% for a while: invocations stay within the budget's
    bound, and every run succeeds once the tool recovers and its breaker closes."""
    app = Seawall(ledger_url, lease=5.0)
    budget = RetryBudget(ratio=0.1, floor=5, window=10)
    state = {"failing": True, "invocations": 0, "failed": 0}

    @app.tool(
        retry=Retry(attempts=5, initial=0.001, max_delay=0.005),
        breaker=Breaker(failures=2, cooldown=0.3),
        retry_budget=budget,
    )
    async def provider(i: int) -> int:
        state["invocations"] += 1
        await asyncio.sleep(0)
        if state["failing"]:
            state["failed"] += 1
            raise ConnectionError("provider outage")
        return i

    @app.agent(
        retry=Retry(attempts=200, initial=0.02, max_delay=0.1), retry_budget=False, breaker=False
    )
    async def caller(ctx: AsyncContext, i: int) -> int:
        return await ctx.call(provider, i)

    async def main() -> list[Any]:
        runs = [asyncio.ensure_future(app.arun(caller, i=i)) for i in range(200)]
        await asyncio.sleep(0.5)
        state["failing"] = False
        return await asyncio.gather(*runs)

    try:
        start = time.monotonic()
        results = asyncio.run(main())
        assert [RunStatus.SUCCEEDED] * 200 == [r.status for r in results]
        # Without the budget each of the ~200 first calls would be tried 5 times (1,000 tries).
        probes = int(0.5 / 0.3) + 3
        bound = 200 + max(budget.floor, int(budget.ratio * 200)) + probes
        assert state["failed"] <= bound, state
        assert time.monotonic() - start < 30
        [breaker] = [b for b in app.breakers.list() if b.name == "tool:provider"]
        assert "closed" == breaker.state
    finally:
        app.close()
