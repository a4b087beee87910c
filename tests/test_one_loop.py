"""One event loop per app: threads calling ``app.run`` leak nothing and share async clients, and
their programming errors open no breaker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seawall import AsyncContext, Context, FailureCause, RunStatus, Seawall
from seawall.testing import no_waits


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Seawall]:
    with no_waits(), Seawall(f"sqlite:///{tmp_path / 'ledger.db'}", lease=2.0) as app:
        yield app


def _in_threads(count: int, work: Any) -> list[Any]:
    """Call ``work()`` once in each of ``count`` new threads, one after the other; collect results."""
    results: list[Any] = []
    for _ in range(count):
        thread = threading.Thread(target=lambda: results.append(work()))
        thread.start()
        thread.join()
    return results


def _descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def test_threads_calling_run_leak_no_file_descriptors_nor_threads(fresh: Seawall) -> None:
    """300 threads, each calling app.run once: descriptors and threads do not grow with them."""

    @fresh.agent
    async def echo(ctx: AsyncContext, n: int) -> int:
        return n

    _in_threads(5, lambda: fresh.run(echo, n=0))  # warm up: the app's loop and pools start
    descriptors, threads = _descriptors(), threading.active_count()
    results = _in_threads(300, lambda: fresh.run(echo, n=1))
    assert all(r.status is RunStatus.SUCCEEDED for r in results)
    assert _descriptors() - descriptors <= 3
    assert threading.active_count() - threads <= 3


def test_an_async_client_serves_runs_from_many_threads(fresh: Seawall) -> None:
    """A client bound to the loop of its first run keeps working for runs from other threads."""
    httpx = pytest.importorskip("httpx")
    from tests.integrations.fake_openai import FakeOpenAI, Reply, chat_completion

    with FakeOpenAI() as server:
        server.script(Reply(body=chat_completion("pong")))
        client = httpx.AsyncClient(base_url=server.base_url, timeout=5.0)

        @fresh.tool
        async def ask(text: str) -> str:
            reply = await client.post("/chat/completions", json={"messages": [text]})
            return str(reply.json()["choices"][0]["message"]["content"])

        @fresh.agent
        async def chat(ctx: AsyncContext, text: str) -> str:
            return str(await ctx.call(ask, text))

        results = _in_threads(6, lambda: fresh.run(chat, text="ping"))
        assert ["pong"] * 6 == [r.output for r in results]
        fresh.run(chat, text="bye")  # close it on the loop it is bound to
        fresh.runtime.loop.run(client.aclose())


def test_bad_input_from_many_threads_opens_no_breaker(fresh: Seawall) -> None:
    """200 runs with inputs the agent does not take: each fails bad_input, none is skipped."""

    @fresh.agent(name="strict")
    def strict(ctx: Context, amount: int) -> int:
        return amount

    results: list[Any] = []
    lock = threading.Lock()

    def call_badly() -> None:
        for _ in range(25):
            result = fresh.run(strict, amonut=5)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=call_badly) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 200 == len(results)
    assert {(RunStatus.FAILED, FailureCause.BAD_INPUT)} == {
        (r.status, r.failure_cause) for r in results
    }
    assert all(len(r.attempts) == 1 for r in results)
    assert "closed" == fresh.store.breaker("agent:strict", "agent").state
    assert 5 == fresh.run(strict, amount=5).output


def test_a_sync_agent_error_in_serialisation_opens_no_breaker(fresh: Seawall) -> None:
    """Three runs whose output cannot be stored fail; the agent's breaker stays closed."""

    @fresh.agent(name="leaky")
    def leaky(ctx: Context) -> object:
        return object()

    for _ in range(3):
        assert "SerializationError" == (fresh.run(leaky).error or {}).get("type")
    assert "closed" == fresh.store.breaker("agent:leaky", "agent").state
