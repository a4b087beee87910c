"""Backpressure: bounded concurrency, a bounded queue (wait or Overloaded), tool rate limits."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from seawall import AsyncContext, ConfigurationError, Context, Overloaded, RunStatus, Seawall


def _tracker() -> tuple[dict[str, int], Any]:
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def enter() -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])

    def leave() -> None:
        with lock:
            state["now"] -= 1

    return state, (enter, leave)


def test_app_bound_holds_across_many_async_submissions(ledger_url: str) -> None:
    """At most max_concurrent_runs run at once; the rest wait and all finish."""
    app = Seawall(ledger_url, max_concurrent_runs=3)
    state, (enter, leave) = _tracker()

    @app.agent
    async def work(ctx: AsyncContext, i: int) -> int:
        enter()
        await asyncio.sleep(0.02)
        leave()
        return i

    async def main() -> list[Any]:
        return await asyncio.gather(*(app.arun(work, i=i) for i in range(12)))

    try:
        results = asyncio.run(main())
        assert [RunStatus.SUCCEEDED] * 12 == [r.status for r in results]
        assert 3 == state["peak"]
    finally:
        app.close()


def test_app_bound_holds_across_threads_using_the_sync_api(ledger_url: str) -> None:
    """The bound is shared by threads, each with its own event loop."""
    app = Seawall(ledger_url, max_concurrent_runs=2)
    state, (enter, leave) = _tracker()

    @app.agent
    def work(ctx: Context) -> None:
        enter()
        time.sleep(0.05)
        leave()

    try:
        threads = [threading.Thread(target=app.run, args=(work,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert 2 == state["peak"]
        assert 6 == len(app.ledger.runs())
    finally:
        app.close()


def test_full_queue_raises_overloaded_and_records_nothing(ledger_url: str) -> None:
    """With overload='raise', a submission beyond the queue fails fast with Overloaded."""
    app = Seawall(ledger_url, max_concurrent_runs=1, max_queued_runs=1, overload="raise")
    release = asyncio.Event()

    @app.agent
    async def slow(ctx: AsyncContext, i: int) -> int:
        await release.wait()
        return i

    async def main() -> tuple[list[Any], Exception | None]:
        first = asyncio.ensure_future(app.arun(slow, i=1))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(app.arun(slow, i=2))
        await asyncio.sleep(0.05)
        error = None
        try:
            await app.arun(slow, i=3)
        except Overloaded as exc:
            error = exc
        release.set()
        return list(await asyncio.gather(first, second)), error

    try:
        done, error = asyncio.run(main())
        assert isinstance(error, Overloaded)
        assert [1, 2] == [r.output for r in done]
        assert 2 == len(app.ledger.runs())
    finally:
        app.close()


def test_agent_max_concurrency(app: Seawall) -> None:
    """@app.agent(max_concurrency=N) bounds that agent's runs only."""
    state, (enter, leave) = _tracker()

    @app.agent(max_concurrency=2)
    async def bounded(ctx: AsyncContext) -> None:
        enter()
        await asyncio.sleep(0.02)
        leave()

    async def main() -> None:
        await asyncio.gather(*(app.arun(bounded) for _ in range(8)))

    asyncio.run(main())
    assert 2 == state["peak"]


def test_tool_rate_limit_spaces_calls(app: Seawall) -> None:
    """@app.tool(rate_limit='5/second'): the 6th call waits for the window to move."""
    stamps: list[float] = []

    @app.tool(rate_limit="5/second")
    def ping() -> None:
        stamps.append(time.monotonic())

    @app.agent
    def caller(ctx: Context) -> None:
        for _ in range(6):
            ctx.call(ping)

    assert RunStatus.SUCCEEDED == app.run(caller).status
    assert stamps[5] - stamps[0] >= 0.9


def test_bad_bounds_are_configuration_errors(ledger_url: str, app: Seawall) -> None:
    """Invalid bounds and rates are refused with a clear message."""
    with pytest.raises(ConfigurationError, match="overload"):
        Seawall(ledger_url, overload="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="limit of 0"):
        Seawall(ledger_url, max_concurrent_runs=0)
    with pytest.raises(ConfigurationError, match="not a rate"):

        @app.tool(rate_limit="often")
        def tool() -> None:
            return None
