"""An agent calling the tools of an MCP server through Seawall (seawall.integrations.mcp).

Runs offline: this file is also the MCP server (built with the official SDK's ``MCPServer``),
which the example starts as a child process over stdio. The server's annotations decide each
tool's policy: ``lookup`` is read-only, ``refund`` mutating and idempotent (it dedupes on the
idempotency key Seawall sends in ``_meta``). The example runs the agent, shows its journal and
the key the server received, then replays the run from the journal without the server.

    pip install 'seawall[mcp]'
    python examples/mcp_tools.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

import seawall
from seawall.integrations.mcp import IDEMPOTENCY_KEY, wrap

server = MCPServer("shop", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup(order: str) -> dict[str, Any]:
    """What was paid for an order."""
    return {"order": order, "paid": 40}


@server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
def refund(order: str, amount: int, ctx: Context) -> str:
    """Refund an order once per idempotency key (the ledger file stands for a payment API)."""
    key = (ctx.request_context.meta or {}).get(IDEMPOTENCY_KEY)
    ledger = Path(sys.argv[2])
    seen = [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    if key not in [entry["key"] for entry in seen]:
        with ledger.open("a") as handle:
            handle.write(json.dumps({"order": order, "amount": amount, "key": key}) + "\n")
    return f"refunded {amount} on {order}"


async def main(folder: Path) -> None:
    """Run the agent against the server, show the journal, then replay it without the server."""
    payments = folder / "payments.jsonl"
    app = seawall.Seawall(f"sqlite:///{folder / 'ledger.db'}")
    params = StdioServerParameters(
        command=sys.executable, args=[__file__, "--serve", str(payments)]
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        shop = await wrap(session, app, name="shop")
        for name in ("shop.tool.lookup", "shop.tool.refund"):
            spec = app.tools[name]
            print(f"{name}: mutating={spec.mutating} idempotent={spec.idempotent}")

        @app.agent(name="support")
        async def support(ctx: seawall.AsyncContext, order: str) -> str:
            await shop.list_tools()  # journaled: a resumed run sees the list it planned with
            found = await shop.call_tool("lookup", {"order": order})
            paid = found.structured_content["paid"]
            done = await shop.call_tool("refund", {"order": order, "amount": paid})
            return str(done.structured_content["result"])

        result = await app.arun(support, order="A-17")
        print(result.status, repr(result.output))
        for step in app.ledger.steps(result.run_id):
            print(f"  step {step.record.seq}: {step.record.kind} {step.record.name}")
        [payment] = [json.loads(line) for line in payments.read_text().splitlines()]
        refund_step = app.ledger.steps(result.run_id)[2].record
        print("the server received the step's key:", payment["key"] == refund_step.idempotency_key)
    replayed = await app.areplay(result.run_id, mode="recorded")  # the server is gone
    print("recorded replay without the server:", replayed.run.status, repr(replayed.run.output))
    app.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        server.run("stdio")
    else:
        with tempfile.TemporaryDirectory() as temporary:
            asyncio.run(main(Path(temporary)))
