"""Work sent to threads from the loop, its outcomes handed back in batches (``runtime.hop``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from seawall.runtime import hop

REQUEST = contextvars.ContextVar("REQUEST", default="none")


class _Recording(ThreadPoolExecutor):
    """A pool that keeps the futures of what it was given (to see that nothing raised)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.submitted: list[Future[Any]] = []

    def submit(self, *args: Any, **kwargs: Any) -> Future[Any]:  # type: ignore[override]
        future = super().submit(*args, **kwargs)
        self.submitted.append(future)
        return future


def test_a_call_returns_its_value_raises_its_error_and_sees_the_callers_context() -> None:
    def where(suffix: str) -> str:
        return f"{REQUEST.get()}:{threading.current_thread().name}{suffix}"

    def fails() -> None:
        raise KeyError("gone")

    async def main() -> tuple[str, BaseException | None]:
        REQUEST.set("r1")
        with ThreadPoolExecutor(2, thread_name_prefix="hop-test") as pool:
            value = await hop.in_thread(pool, where, suffix="!")
            try:
                await hop.in_thread(pool, fails)
            except KeyError as exc:
                return value, exc
        return value, None

    value, error = asyncio.run(main())
    assert value.startswith("r1:hop-test")
    assert value.endswith("!")
    assert isinstance(error, KeyError)


def test_outcomes_ending_together_wake_the_loop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight calls end while the loop is busy: one wake-up settles all eight."""
    settles = []
    settle = hop._Returns._settle

    def counted(self: Any) -> None:
        settles.append(1)
        settle(self)

    monkeypatch.setattr(hop._Returns, "_settle", counted)
    ended = threading.Barrier(9)

    def work(i: int) -> int:
        ended.wait(timeout=10)
        return i * i

    async def main() -> list[int]:
        with ThreadPoolExecutor(8) as pool:
            futures = [hop.in_thread(pool, work, i) for i in range(8)]
            await asyncio.sleep(0)
            ended.wait(timeout=10)  # the calls end now, while the loop is held here
            time.sleep(0.2)  # noqa: ASYNC251 - holding the loop is the point
            return list(await asyncio.gather(*futures))

    assert [i * i for i in range(8)] == asyncio.run(main())
    assert len(settles) == 1


def test_a_call_cancelled_before_it_starts_does_not_run() -> None:
    release = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        release.wait(timeout=10)
        ran.append("blocker")

    def second() -> None:
        ran.append("second")

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            first = hop.in_thread(pool, blocker)
            waiting = hop.in_thread(pool, second)
            waiting.cancel()
            release.set()
            await first
            await asyncio.to_thread(pool.shutdown, wait=True)

    asyncio.run(main())
    assert ran == ["blocker"]


def test_a_call_ending_after_its_loop_closed_raises_nothing_in_its_thread() -> None:
    release = threading.Event()
    pool = _Recording(1)
    loop = asyncio.new_event_loop()

    async def start() -> asyncio.Future[int]:
        return hop.in_thread(pool, lambda: release.wait(timeout=10) and 7)

    loop.run_until_complete(start())
    loop.close()
    release.set()
    pool.shutdown(wait=True)
    assert len(pool.submitted) == 1
    assert pool.submitted[0].exception() is None


def test_a_forked_child_gets_its_own_tool_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    first = hop.tool_threads()
    assert hop.tool_threads() is first
    monkeypatch.setattr(hop.os, "getpid", lambda: -1)
    assert hop.tool_threads() is not first


def test_an_app_with_tool_threads_runs_that_many_sync_tools_at_once(tmp_path: Any) -> None:
    """Seawall(tool_threads=N): N sync tools of async agents wait on one barrier together."""
    import os

    from seawall import Seawall

    parties = min(32, (os.cpu_count() or 1) + 4) + 2  # more than the shared pool has
    barrier = threading.Barrier(parties, timeout=10)
    names: set[str] = set()
    with Seawall(f"sqlite:///{tmp_path / 'l.db'}", tool_threads=parties) as app:

        @app.tool(name="meet")
        def meet(i: int) -> int:
            names.add(threading.current_thread().name)
            barrier.wait()  # broken (raises) unless all of them run at the same time
            return i

        @app.agent(name="caller")
        async def caller(ctx: Any, i: int) -> int:
            return int(await ctx.call(meet, i))

        async def main() -> list[Any]:
            return await asyncio.gather(*(app.arun("caller", i=i) for i in range(parties)))

        results = asyncio.run(main())
        assert list(range(parties)) == [r.output for r in results]
        assert app.runtime.tools is not None  # the app's own pool, not the shared one
        assert parties == len(names)
        assert all(name.startswith("seawall-tool") for name in names)
        assert app.runtime.tools is not hop.tool_threads()


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "4"])
def test_tool_threads_must_be_a_positive_integer(tmp_path: Any, size: Any) -> None:
    from seawall import ConfigurationError, Seawall

    with pytest.raises(ConfigurationError, match=r"tool_threads=.*positive integer"):
        Seawall(f"sqlite:///{tmp_path / 'l.db'}", tool_threads=size)
