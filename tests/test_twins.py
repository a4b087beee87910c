"""Sync and async twins: a sync call inside an event loop names an async twin that exists."""

from __future__ import annotations

import asyncio
import inspect
import operator
import re
from collections.abc import Callable
from typing import Any

import pytest

from seawall import Seawall, UsageError

SYNC_CALLS: list[tuple[str, Callable[[Seawall], Any]]] = [
    ("run", lambda app: app.run("echo")),
    ("wait", lambda app: app.wait("r")),
    ("resume", lambda app: app.resume()),
    ("take", lambda app: app.take("r")),
    ("replay", lambda app: app.replay("r")),
    ("cancel", lambda app: app.cancel("r")),
    ("dlq.redrive", lambda app: app.dlq.redrive()),
    ("handoffs.approve", lambda app: app.handoffs.approve("h")),
    ("handoffs.reject", lambda app: app.handoffs.reject("h", reason="no")),
]


@pytest.mark.parametrize(("name", "call"), SYNC_CALLS, ids=[name for name, _ in SYNC_CALLS])
def test_sync_call_in_a_loop_names_its_async_twin(
    app: Seawall, name: str, call: Callable[[Seawall], Any]
) -> None:
    """The UsageError says `await app.X(...)`, and app.X is a coroutine function."""

    @app.agent(name="echo")
    def echo(ctx: Any) -> str:
        return "echo"

    async def inside_a_loop() -> str:
        with pytest.raises(UsageError) as caught:
            call(app)
        return caught.value.message

    message = asyncio.run(inside_a_loop())
    found = re.search(r"await app\.([\w.]+)\(", message)
    assert found is not None, message
    twin = operator.attrgetter(found.group(1))(app)
    assert inspect.iscoroutinefunction(twin)
    assert f"app.{name}()" in message
