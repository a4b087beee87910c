"""MCP client sessions whose tool calls inside a run are journaled steps.

``await wrap(session, app, name="shop")`` takes an initialised ``mcp.ClientSession`` (stdio,
streamable HTTP or any transport of the official SDK), lists the server's tools once, and
registers one Seawall tool per MCP tool, its policy read from the tool's annotations:

- ``readOnlyHint`` → a read-only step; otherwise a mutating step (its intent is written before
  the call, and a completed call is never made again for the run), ``destructiveHint`` (true by
  MCP's default) → destructive (counted by the streak guard), ``idempotentHint`` → idempotent
  (an in-doubt call is re-issued). ``tools={name: {...}}`` overrides any of it per tool, with any
  ``@app.tool`` option (``retry``, ``breaker``, ``compensate``...).
- The step's idempotency key travels in the request's ``_meta`` under
  :data:`IDEMPOTENCY_KEY` (``"seawall/idempotency_key"``), the same on every attempt, resume and
  in-doubt re-issue of the call, so a server can drop a repeat.
- ``list_tools`` inside a run is journaled too: a resumed run sees the tool list it planned with.
- Errors: a result with ``isError`` is the tool's own answer, permanent (a
  :class:`~seawall.PermanentError` carrying the result; the step is not retried); a JSON-RPC error
  the server sent is permanent for a bad request (invalid params, unknown method) and transient
  otherwise; a lost connection or a timeout is transient for a read-only or idempotent tool, and
  leaves any other mutating call *in doubt* (:class:`~seawall.InDoubtError`: the server may have
  acted before it went away), exactly as a crash of this process would.
- A tool that declares an ``outputSchema`` has its ``structuredContent`` checked against it at
  the boundary, before the agent sees it (a :class:`~seawall.ToolResponseError`).

Outside a run the wrapper is the plain session. The SDK is async: use it from async agents.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any, Final, cast

from seawall.integrations._versions import require

SUPPORTED: Final = ">=2.0,<3"
"""The ``mcp`` versions this module supports."""

require("mcp", SUPPORTED, extra="mcp", module="seawall.integrations.mcp")

import anyio  # noqa: E402 - after the version check, with the SDK
import jsonschema  # noqa: E402
from mcp import Client, ClientSession, types  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from seawall import current_context  # noqa: E402
from seawall.errors import (  # noqa: E402
    ConfigurationError,
    InDoubtError,
    PermanentError,
    RetryableError,
    UsageError,
)
from seawall.integrations._live import LiveCall  # noqa: E402
from seawall.integrations._mcp_policy import IDEMPOTENCY_KEY, policy_of  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from seawall import Retry, Seawall

__all__ = ["IDEMPOTENCY_KEY", "SUPPORTED", "JournaledSession", "policy_of", "wrap"]

_BAD_REQUEST: Final = frozenset(
    {types.PARSE_ERROR, types.INVALID_REQUEST, types.METHOD_NOT_FOUND, types.INVALID_PARAMS}
)
"""JSON-RPC errors that say the request itself is wrong: sending it again cannot help."""
_LOST: Final = frozenset({types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT})
"""The SDK's codes for a connection that went away or a request that got no answer."""
_TRANSPORT: Final = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    ConnectionError,
    TimeoutError,
    EOFError,
)

_live_call: LiveCall[_Live] = LiveCall(
    "seawall_mcp_call",
    sync_agent="an MCP session was called inside the sync agent {agent!r}; the MCP SDK is "
    "async: call it from an async agent",
)
"""The live side of the call being journaled (the journal holds only its JSON)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Live:
    """What a journaled call needs that the journal does not hold."""

    session: ClientSession
    tool: str = ""
    timeout: float | None = None
    meta: Mapping[str, Any] | None = None


async def wrap(
    session: ClientSession | Client,
    app: Seawall,
    *,
    name: str = "mcp",
    tools: Mapping[str, Mapping[str, Any]] | None = None,
    retry: Retry | None = None,
    read_timeout_seconds: float | None = None,
) -> JournaledSession:
    """List the server's tools and return a session whose calls inside runs are journaled.

    Call it once per connection, next to the app, after ``await session.initialize()``. The first
    ``wrap`` of a ``name`` in a process registers its tools (``{name}.tool.{tool}`` and
    ``{name}.list_tools``); a later one (a reconnection) reuses them.

    Args:
        session: An initialised ``mcp.ClientSession``, or an entered ``mcp.Client``.
        app: The app whose runs journal the calls.
        name: Prefix of the tool names; give each server of one app its own.
        tools: Per MCP tool name, ``@app.tool`` options that override what its annotations say
            (``mutating``, ``destructive``, ``idempotent``, ``retry``, ``breaker``,
            ``compensate``, ``returns``...).
        retry: Retry policy of the calls (default: the app's ``tool_retry``).
        read_timeout_seconds: Seconds a call may wait for its answer (default: the
            session's).

    Returns:
        A :class:`JournaledSession`.

    Raises:
        ConfigurationError: ``session`` is not a ``ClientSession``, or ``tools`` names a tool the
            server does not list.
    """
    if isinstance(session, Client):
        session = session.session
    if not isinstance(session, ClientSession):
        raise ConfigurationError(
            f"wrap() takes an mcp.ClientSession (or an entered mcp.Client), got {session!r}"
        )
    wrapped = JournaledSession(session, app, name, dict(tools or {}), retry, read_timeout_seconds)
    listed = await _all_tools(session)
    unknown = sorted(set(wrapped.overrides) - {tool.name for tool in listed})
    if unknown:
        raise ConfigurationError(
            f"tools= names {unknown}, which the server {name!r} does not list (its tools: "
            f"{sorted(tool.name for tool in listed) or 'none'})"
        )
    for tool in listed:
        wrapped.register(tool)
    return wrapped


async def _all_tools(session: ClientSession) -> list[types.Tool]:
    """Every tool the server lists, page after page."""
    found: list[types.Tool] = []
    cursor: str | None = None
    while True:
        params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
        page = await session.list_tools(params=params)
        found.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return found


@dataclasses.dataclass(eq=False)
class JournaledSession:
    """An MCP client session whose ``call_tool`` and ``list_tools`` inside runs are steps.

    Made by :func:`wrap`. Anything else is the session's own (``session.read_resource`` ...).

    Attributes:
        session: The wrapped ``ClientSession``.
        app: The app whose runs journal the calls.
        name: The prefix of its Seawall tools.
        overrides: Registration options by MCP tool name.
        retry: The retry policy of its calls (``None``: the app's ``tool_retry``).
        timeout: Seconds a call may wait for its answer (``None``: the session's).
    """

    session: ClientSession
    app: Seawall
    name: str
    overrides: dict[str, Mapping[str, Any]]
    retry: Retry | None
    timeout: float | None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.session, attribute)

    def step_of(self, tool: str) -> str:
        """The Seawall tool journaling the MCP tool ``tool``."""
        return f"{self.name}.tool.{tool}"

    def register(self, tool: types.Tool) -> None:
        """Register the Seawall tool of an MCP tool, unless it is registered already."""
        step = self.step_of(tool.name)
        options: dict[str, Any] = policy_of(tool.annotations)
        if self.retry is not None:
            options["retry"] = self.retry
        if tool.output_schema is not None:
            options["returns"] = _boundary(tool.name, tool.output_schema)
        options.update(self.overrides.get(tool.name, {}))
        retry = options.get("retry") or self.app.tool_retry
        options["retry"] = dataclasses.replace(retry, give_up_on=(*retry.give_up_on, InDoubtError))
        if options.get("destructive"):
            options["mutating"] = True
        with self._lock:
            if step not in self.app.tools:
                doubtful = bool(options.get("mutating")) and not options.get("idempotent")
                self.app.tool(name=step, **options)(_caller(step, self.name, doubtful=doubtful))

    async def list_tools(self, *, params: types.PaginatedRequestParams | None = None) -> Any:
        """``session.list_tools``; inside a run a journaled read-only step."""
        ctx = current_context()
        if ctx is None:
            return await self.session.list_tools(params=params)
        step = f"{self.name}.list_tools"
        with self._lock:
            if step not in self.app.tools:
                self.app.tool(name=step)(_lister(step))
        cursor = None if params is None else params.cursor
        live = _Live(self.session, timeout=self.timeout)
        data = await _live_call.acall(ctx, step, {"cursor": cursor}, live)
        listed = types.ListToolsResult.model_validate(data)
        for tool in listed.tools:
            if self.step_of(tool.name) not in self.app.tools:
                self.register(tool)
        return listed

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        read_timeout_seconds: float | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> types.CallToolResult:
        """``session.call_tool``; inside a run a journaled step with the tool's policy.

        Raises:
            PermanentError: The tool answered with ``isError`` (the result is its ``result``
                field) or the server refused the request.
            InDoubtError: The connection was lost during a mutating call of a tool that is not
                idempotent.
            RetryableError: The call failed in a way another try may fix, and the tool's retry
                policy gave up.
            ToolResponseError: Its structured content does not match its ``outputSchema``.
        """
        ctx = current_context()
        timeout = read_timeout_seconds if read_timeout_seconds is not None else self.timeout
        if ctx is None:
            return await self.session.call_tool(name, arguments, timeout, meta=cast("Any", meta))
        step = self.step_of(name)
        if step not in self.app.tools:
            for tool in await _all_tools(self.session):  # listed since wrap(): register it
                if tool.name == name:
                    self.register(tool)
        if step not in self.app.tools:
            raise UsageError(
                f"the MCP server {self.name!r} lists no tool {name!r}; "
                f"`await session.list_tools()` shows what it has",
                tool=name,
            )
        live = _Live(self.session, name, timeout, meta)
        data = await _live_call.acall(ctx, step, {"arguments": arguments or {}}, live)
        return types.CallToolResult.model_validate(data)


def _caller(step: str, server: str, *, doubtful: bool) -> Callable[..., Any]:
    """The Seawall tool of one MCP tool: one call over the live session, errors classified.

    ``doubtful``: a lost answer leaves the call in doubt (a mutating, non-idempotent tool).
    """

    async def call_tool(*, idempotency_key: str, arguments: dict[str, Any]) -> dict[str, Any]:
        live = _live_call.get(f"{step} can only run through its JournaledSession")
        meta = {**(live.meta or {}), IDEMPOTENCY_KEY: idempotency_key}
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(
                name=live.tool, arguments=arguments, _meta=cast("Any", meta)
            )
        )
        try:
            result = await live.session.send_request(
                request, types.CallToolResult, request_read_timeout_seconds=live.timeout
            )
        except MCPError as exc:
            if exc.code not in _LOST:
                raise _refused(step, server, exc) from exc
            raise _lost(step, server, doubtful, idempotency_key, exc) from exc
        except _TRANSPORT as exc:
            raise _lost(step, server, doubtful, idempotency_key, exc) from exc
        data: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if result.is_error:
            text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
            raise PermanentError(
                f"{step} answered an error: {text[:500] or 'no message'}",
                tool=step,
                server=server,
                result=data,
            )
        return data

    return call_tool


def _lister(step: str) -> Callable[..., Any]:
    async def list_tools(*, cursor: str | None) -> dict[str, Any]:
        live = _live_call.get(f"{step} can only run through its JournaledSession")
        params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
        try:
            listed = await live.session.send_request(
                types.ListToolsRequest(params=params),
                types.ListToolsResult,
                request_read_timeout_seconds=live.timeout,
            )
        except MCPError as exc:
            if exc.code not in _LOST:
                raise _refused(step, "", exc) from exc
            raise RetryableError(f"{step}: the MCP server went away ({exc})", tool=step) from exc
        dumped: dict[str, Any] = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
        return dumped

    return list_tools


def _refused(step: str, server: str, exc: MCPError) -> Exception:
    """A JSON-RPC error the server answered: permanent for a bad request, else transient."""
    message = f"{step}: the MCP server answered error {exc.code} ({exc.message})"
    if exc.code in _BAD_REQUEST:
        return PermanentError(message, tool=step, server=server, code=exc.code)
    return RetryableError(message, tool=step, server=server, code=exc.code)


def _lost(step: str, server: str, doubtful: bool, key: str, exc: BaseException) -> Exception:
    """A call whose answer never came: transient, unless it may have changed something."""
    if doubtful:
        return InDoubtError(
            f"{step}: the connection to the MCP server was lost during the call ({exc}); it "
            "may or may not have acted, and the tool is not idempotent, so Seawall will not "
            "call it again. Check the server's side, then redrive or close the run; declare it "
            f"idempotent (tools={{...: {{'idempotent': True}}}}) if it dedupes on "
            f"_meta[{IDEMPOTENCY_KEY!r}]",
            tool=step,
            server=server,
            idempotency_key=key,
        )
    return RetryableError(
        f"{step}: the connection to the MCP server was lost during the call ({exc})",
        tool=step,
        server=server,
    )


def _boundary(tool: str, schema: dict[str, Any]) -> Callable[[Any], Any]:
    """``returns=`` of a tool with an ``outputSchema``: its structured content must match."""
    validator = jsonschema.validators.validator_for(schema)(schema)

    def check(value: Any) -> Any:
        if not isinstance(value, dict) or value.get("isError"):
            return value
        if "structuredContent" not in value:
            raise ValueError(f"{tool} declares an outputSchema but answered no structuredContent")
        error = jsonschema.exceptions.best_match(validator.iter_errors(value["structuredContent"]))
        if error is not None:
            raise ValueError(f"{tool}'s structuredContent does not match its outputSchema: {error}")
        return value

    return check
