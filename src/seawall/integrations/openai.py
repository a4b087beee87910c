"""OpenAI SDK clients whose calls inside a run are journaled LLM steps.

``wrap(client, app)`` returns a copy of an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client.
Outside a run the copy is the plain client. Inside a run (an agent executing under ``app``),
every ``chat.completions.create`` and ``responses.create`` becomes one LLM step:

- journaled: a retried attempt, a resumed run and a recorded replay are served the recorded
  response (as the same typed object) instead of calling the model again;
- retried by the step's Seawall retry policy on HTTP 429, 5xx, timeouts and connection errors,
  honouring ``Retry-After``; HTTP 4xx (bad request, auth) is permanent. The SDK's own retries
  are turned off for these calls (``max_retries=0``) so the two layers do not multiply;
- a body that is not JSON or not the API's shape is a :class:`~seawall.ToolResponseError`
  (retried like a transient failure, then reported);
- its usage is recorded on the run (``ctx.record_usage``); a response without usage records
  the tokens as unknown, never as zero.

Example:
    >>> import openai, seawall
    >>> from seawall.integrations.openai import wrap
    >>> app = seawall.Seawall("sqlite:///.seawall/ledger.db")  # doctest: +SKIP
    >>> client = wrap(openai.OpenAI(), app)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from seawall.integrations._versions import require

SUPPORTED: Final = ">=1.66,<4"
"""The ``openai`` versions this module supports (1.66 introduced ``responses.create``)."""

require("openai", SUPPORTED, extra="openai", module="seawall.integrations.openai")

import openai  # noqa: E402 - imported only once its version is known to be supported
from openai.types.chat import ChatCompletion  # noqa: E402
from openai.types.responses import Response  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from seawall import AsyncContext, Context, current_context  # noqa: E402
from seawall.errors import ConfigurationError, ToolResponseError, UsageError  # noqa: E402

if TYPE_CHECKING:
    from seawall import Retry, Seawall
    from seawall.runtime.context import BaseContext

__all__ = ["SUPPORTED", "wrap"]

ClientT = TypeVar("ClientT", openai.OpenAI, openai.AsyncOpenAI)

_ENDPOINTS: Final[dict[str, tuple[type[BaseModel], str]]] = {
    "chat.completions": (ChatCompletion, "choices"),
    "responses": (Response, "output"),
}
"""Each journaled resource, its response type and the list every such response holds."""
_NOT_JOURNALED: Final = ("parse", "stream")
_RAW_RESPONSE: Final = "x-stainless-raw-response"
"""The header the SDK's with_raw_response / with_streaming_response wrappers add."""
_UNSET: Final = tuple(
    kind for kind in (getattr(openai, "NotGiven", None), getattr(openai, "Omit", None)) if kind
)
"""The SDK's "argument not given" sentinels (``Omit`` appeared in later 1.x releases)."""


def wrap(
    client: ClientT,
    app: Seawall,
    *,
    name: str = "openai",
    retry: Retry | None = None,
    provider: str | None = None,
) -> ClientT:
    """Return a copy of ``client`` whose chat and responses calls are journaled inside runs.

    Call it once, at start-up, next to the app: it registers two LLM tools with ``app``,
    ``{name}.chat.completions.create`` and ``{name}.responses.create``.

    Args:
        client: An ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client (any OpenAI-compatible
            ``base_url``). It is not modified. Use the async client in async agents and the
            sync client in sync agents.
        app: The app whose runs journal the calls.
        name: Prefix of the tool names; give each wrapped client of one app its own.
        retry: Retry policy of the calls (default: the app's ``tool_retry``).
        provider: The provider for pricing (default: ``"openai"`` when the client talks to
            api.openai.com, else left to the price table to infer from the model name).

    Returns:
        A client of the same type. Outside a run it behaves exactly as ``client``.

    Raises:
        ConfigurationError: ``client`` is not an OpenAI client, or ``name`` is already used.
    """
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise ConfigurationError(
            f"wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, got {client!r}"
        )
    taken = [tool for tool in app.tools if tool.startswith(f"{name}.")]
    if taken:
        raise ConfigurationError(
            f"this app already has tools named {taken}; wrap each client once, at start-up, and "
            "give a second client its own prefix: wrap(client, app, name='other')"
        )
    if provider is None and str(client.base_url.host).endswith("api.openai.com"):
        provider = "openai"
    wrapped = client.with_options()
    raw = client.with_options(max_retries=0)
    is_async = isinstance(client, openai.AsyncOpenAI)
    for path, (model, items) in _ENDPOINTS.items():
        resource: Any = wrapped
        live: Any = raw
        for part in path.split("."):
            resource = getattr(resource, part)
            live = getattr(live, part)
        tool_name = f"{name}.{path}.create"
        endpoint = _Endpoint(tool_name, model, items, provider)
        register = app.tool(name=tool_name, llm=True, retry=retry)
        if is_async:
            register(endpoint.async_tool(live.create))
            resource.create = endpoint.async_create(resource.create)
        else:
            register(endpoint.sync_tool(live.create))
            resource.create = endpoint.sync_create(resource.create)
        for method in _NOT_JOURNALED:
            if hasattr(resource, method):
                setattr(resource, method, _refused_in_runs(getattr(resource, method), path, method))
    return wrapped


class _Endpoint:
    """One journaled endpoint: the tool that calls the API, and the method that calls the tool."""

    def __init__(self, tool: str, model: type[BaseModel], items: str, provider: str | None) -> None:
        self.tool = tool
        self.model = model
        self.items = items
        self.provider = provider

    # -- the tool: runs live, once per try ---------------------------------------------------

    def sync_tool(self, create: Callable[..., Any]) -> Callable[..., Any]:
        def call_api(**request: Any) -> dict[str, Any]:
            try:
                answer = create(**request)
            except json.JSONDecodeError as exc:
                raise self._malformed(f"a body that is not JSON ({exc})") from exc
            return self._checked(answer)

        call_api.__qualname__ = self.tool
        return call_api

    def async_tool(self, create: Callable[..., Any]) -> Callable[..., Any]:
        async def call_api(**request: Any) -> dict[str, Any]:
            try:
                answer = await create(**request)
            except json.JSONDecodeError as exc:
                raise self._malformed(f"a body that is not JSON ({exc})") from exc
            return self._checked(answer)

        call_api.__qualname__ = self.tool
        return call_api

    def _checked(self, answer: Any) -> dict[str, Any]:
        if not isinstance(answer, BaseModel):
            raise self._malformed(f"{type(answer).__name__} instead of a JSON object")
        data = answer.model_dump(mode="json", exclude_unset=True)
        # As lenient as the SDK (OpenAI-compatible servers omit optional fields), but a body
        # without the response's list of choices or output items is not a response at all.
        if not isinstance(data.get(self.items), list):
            raise self._malformed(
                f"a body that is not a {self.model.__name__} (it has no {self.items!r} list)"
            )
        return data

    def _malformed(self, what: str) -> ToolResponseError:
        return ToolResponseError(
            f"{self.tool} received {what}; the endpoint or a proxy in front of it answered "
            "something that is not the OpenAI API's response",
            tool=self.tool,
        )

    # -- the method the agent calls -----------------------------------------------------------

    def sync_create(self, plain: Callable[..., Any]) -> Callable[..., Any]:
        def create(*args: Any, **kwargs: Any) -> Any:
            ctx = current_context()
            if ctx is None:
                return plain(*args, **kwargs)
            if not isinstance(ctx, Context):
                raise UsageError(
                    f"{self.tool}: a sync OpenAI client was called inside the async agent "
                    f"{ctx.agent!r}; wrap an openai.AsyncOpenAI client for async agents"
                )
            data = ctx.call(self.tool, **self._request(args, kwargs))
            return self._finish(ctx, data)

        return create

    def async_create(self, plain: Callable[..., Any]) -> Callable[..., Any]:
        async def create(*args: Any, **kwargs: Any) -> Any:
            ctx = current_context()
            if ctx is None:
                return await plain(*args, **kwargs)
            if not isinstance(ctx, AsyncContext):
                raise UsageError(
                    f"{self.tool}: an async OpenAI client was called inside the sync agent "
                    f"{ctx.agent!r}; wrap an openai.OpenAI client for sync agents"
                )
            data = await ctx.call(self.tool, **self._request(args, kwargs))
            return self._finish(ctx, data)

        return create

    def _request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if args:
            raise TypeError(f"{self.tool}() takes keyword arguments only")
        if kwargs.get("stream") is True:
            raise UsageError(
                f"{self.tool}(stream=True) inside a run is not journaled: a stream cannot be "
                "replayed; call it without stream=True inside runs"
            )
        headers = kwargs.get("extra_headers") or {}
        if any(str(header).lower() == _RAW_RESPONSE for header in headers):
            raise UsageError(
                f"{self.tool} through with_raw_response / with_streaming_response inside a run is "
                "not journaled (an HTTP response cannot be replayed); call create() itself"
            )
        return {key: _jsonable(value) for key, value in kwargs.items() if not _omitted(value)}

    def _finish(self, ctx: BaseContext, data: Any) -> Any:
        # The SDK builds live responses the same way, so a replayed one equals the live one.
        response = self.model.model_construct(**data)
        usage = getattr(response, "usage", None)
        if isinstance(response, ChatCompletion):
            tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None
        else:
            tokens = (usage.input_tokens, usage.output_tokens) if usage is not None else None
        ctx.record_usage(
            model=str(getattr(response, "model", None) or "unknown"),
            input_tokens=None if tokens is None else tokens[0],
            output_tokens=None if tokens is None else tokens[1],
            provider=self.provider,
        )
        return response


def _refused_in_runs(plain: Callable[..., Any], path: str, method: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        if current_context() is not None:
            raise UsageError(
                f"{path}.{method}() is not journaled by seawall.integrations.openai, so a retry "
                f"or a replay would call the model again; inside runs call {path}.create() "
                "(with a JSON-schema response_format for structured output)"
            )
        return plain(*args, **kwargs)

    return refuse


def _omitted(value: Any) -> bool:
    return isinstance(value, _UNSET)


def _jsonable(value: Any) -> Any:
    """Turn SDK parameter objects (Pydantic models) into the JSON the API receives."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items() if not _omitted(item)}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
