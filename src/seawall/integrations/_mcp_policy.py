"""What an MCP tool's annotations mean for its Seawall step (the MCP and Agents SDK adapters).

Pure: it reads the hints by name, so it takes the SDK's ``ToolAnnotations`` of any version.
"""

from __future__ import annotations

from typing import Any, Final

IDEMPOTENCY_KEY: Final = "seawall/idempotency_key"
"""The ``_meta`` key of a tool call's idempotency key (a server reads it to dedupe)."""


def policy_of(annotations: Any) -> dict[str, bool]:
    """The ``@app.tool`` flags an MCP tool's annotations ask for (MCP's defaults when absent).

    A tool is read-only only when it says so; a tool that is not read-only is destructive unless
    it says otherwise, and idempotent only when it says so.
    """
    if _hint(annotations, "read_only_hint", "readOnlyHint"):
        return {"mutating": False, "destructive": False, "idempotent": False}
    return {
        "mutating": True,
        "destructive": _hint(annotations, "destructive_hint", "destructiveHint") is not False,
        "idempotent": bool(_hint(annotations, "idempotent_hint", "idempotentHint")),
    }


def _hint(annotations: Any, *names: str) -> bool | None:
    for name in names:
        value = getattr(annotations, name, None)
        if value is not None:
            return bool(value)
    return None
