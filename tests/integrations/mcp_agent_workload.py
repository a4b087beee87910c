"""An agent working through an MCP server, run as a child process that is killed mid-run.

Usage: python mcp_agent_workload.py LEDGER_URL EFFECTS_LOG MODE TARGET

TARGET is ``stdio`` (this process starts the server as its own child) or the URL of a
streamable HTTP server the test started. MODE:

  between    SIGKILL itself after the first order is settled, before the second starts
  none       run to completion

(To die while a call is in flight, the test asks the stdio server to kill this process right
after a side effect: ``KILL_CLIENT_AFTER=tool:arg`` in the environment.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from seawall import AsyncContext, Seawall
from seawall.integrations.mcp import JournaledSession, wrap

SERVER = Path(__file__).with_name("mcp_server.py")
LEASE = 0.5


@contextlib.asynccontextmanager
async def connect(log: Path, target: str) -> AsyncIterator[ClientSession]:
    """An initialised session with the test server (a new stdio child, or the HTTP one)."""
    async with contextlib.AsyncExitStack() as stack:
        if target == "stdio":
            params = StdioServerParameters(
                command=sys.executable, args=[str(SERVER), str(log), "stdio"], env=dict(os.environ)
            )
            streams: Any = await stack.enter_async_context(stdio_client(params))
        else:
            streams = await stack.enter_async_context(streamable_http_client(target))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        yield session


def build_app(ledger: str, mode: str = "none") -> tuple[Seawall, dict[str, JournaledSession]]:
    """The app and its agent; ``shops["shop"]`` is set to the wrapped session once connected."""
    app = Seawall(ledger, lease=LEASE)
    shops: dict[str, JournaledSession] = {}

    @app.agent(name="settle")
    async def settle(ctx: AsyncContext, orders: list[str]) -> list[str]:
        shop = shops["shop"]
        await shop.list_tools()
        done = []
        for index, order in enumerate(orders):
            if mode == "between" and index == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            found = await shop.call_tool("lookup", {"order": order})
            paid = found.structured_content["paid"]
            await shop.call_tool("refund", {"order": order, "amount": paid})
            await shop.call_tool("note", {"text": f"refunded {order}"})
            done.append(order)
        return done

    return app, shops


async def main(ledger: str, log: Path, mode: str, target: str) -> None:
    app, shops = build_app(ledger, mode)
    async with connect(log, target) as session:
        shops["shop"] = await wrap(session, app, name="shop")
        await app.arun("settle", orders=["A-1", "A-2"])
    app.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
