"""An MCP server built with the official SDK, run as a child process by the MCP tests.

Usage: python mcp_server.py EFFECTS_LOG stdio
       python mcp_server.py EFFECTS_LOG http PORT

Every tool call is appended to ``EFFECTS_LOG.calls`` (what the server was asked); every side
effect to ``EFFECTS_LOG`` as ``{"tool", "args", "key"}``, where ``key`` is the idempotency key
the client sent in the request's ``_meta``. ``refund`` dedupes on that key, as a payment API
would; ``note`` does not.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolResult,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel

KEY = "seawall/idempotency_key"
LOG = Path(sys.argv[1])
CALLS = LOG.with_suffix(".calls")
server = MCPServer("shop", log_level="WARNING")


class Order(BaseModel):
    """An order as lookup describes it."""

    order: str
    paid: int


def _key(ctx: Context) -> str | None:
    meta = ctx.request_context.meta or {}
    return meta.get(KEY)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _append(path: Path, entry: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _called(tool: str, args: dict[str, Any], ctx: Context) -> None:
    _append(CALLS, {"tool": tool, "args": args, "key": _key(ctx)})


def _effect(tool: str, args: dict[str, Any], ctx: Context, *, dedupe: bool) -> None:
    key = _key(ctx)
    if dedupe and any(e["key"] == key for e in _lines(LOG)):
        return
    _append(LOG, {"tool": tool, "args": args, "key": key})


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup(order: str, ctx: Context) -> Order:
    """Read an order (no side effect)."""
    _called("lookup", {"order": order}, ctx)
    return Order(order=order, paid=40)


def lookup_broken(order: str, ctx: Context) -> CallToolResult:
    """Declares lookup's output schema but answers content that does not match it."""
    _called("lookup_broken", {"order": order}, ctx)
    text = TextContent(type="text", text="?")
    return CallToolResult(content=[text], structured_content={"order": order, "paid": "lots"})


server.add_tool(lookup_broken, annotations=ToolAnnotations(read_only_hint=True))
# A server with a bug: it declares a schema its answers do not follow.
server._tool_manager._tools["lookup_broken"].fn_metadata.output_schema = Order.model_json_schema()


@server.tool(annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True))
def refund(order: str, amount: int, ctx: Context) -> str:
    """Refund an order (deduplicated on the idempotency key)."""
    _called("refund", {"order": order, "amount": amount}, ctx)
    _effect("refund", {"order": order, "amount": amount}, ctx, dedupe=True)
    if os.environ.get("KILL_CLIENT_AFTER") == f"refund:{order}":
        os.kill(os.getppid(), signal.SIGKILL)  # the agent dies before it hears the answer
    return f"refunded {amount} on {order}"


@server.tool(annotations=ToolAnnotations(destructive_hint=False))
def note(text: str, ctx: Context) -> str:
    """Send a note to the customer (a side effect that is not deduplicated)."""
    _called("note", {"text": text}, ctx)
    _effect("note", {"text": text}, ctx, dedupe=False)
    if os.environ.get("KILL_CLIENT_AFTER") == f"note:{text}":
        os.kill(os.getppid(), signal.SIGKILL)
    return "sent"


@server.tool()
def delete_order(order: str, ctx: Context) -> str:
    """Delete an order (no annotations: MCP's defaults make it destructive)."""
    _called("delete_order", {"order": order}, ctx)
    _effect("delete_order", {"order": order}, ctx, dedupe=False)
    return f"deleted {order}"


@server.tool(annotations=ToolAnnotations(destructive_hint=False))
def charge(order: str, ctx: Context) -> str:
    """Charge an order, then die before answering (the server's process ends mid-call)."""
    _called("charge", {"order": order}, ctx)
    _effect("charge", {"order": order}, ctx, dedupe=False)
    os._exit(3)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def stock(item: str, ctx: Context) -> str:
    """Refuses an unknown item with an error result (isError)."""
    _called("stock", {"item": item}, ctx)
    raise ToolError(f"no such item: {item}")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def busy(order: str, ctx: Context) -> str:
    """A JSON-RPC internal error on the first call for an order, then an answer."""
    _called("busy", {"order": order}, ctx)
    if sum(1 for c in _lines(CALLS) if c["tool"] == "busy" and c["args"] == {"order": order}) == 1:
        raise MCPError(INTERNAL_ERROR, "busy, try again")
    return f"{order} is ready"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def strict(order: str, ctx: Context) -> str:
    """Refuses every request as invalid (a JSON-RPC error: sending it again cannot help)."""
    _called("strict", {"order": order}, ctx)
    raise MCPError(INVALID_PARAMS, f"order {order} is not in this shop")


if __name__ == "__main__":
    if sys.argv[2] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[3]))
