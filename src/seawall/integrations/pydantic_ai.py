"""Run a ``pydantic_ai.Agent`` as a Seawall agent.

``register(app, agent)`` registers a Seawall agent that runs the Pydantic AI agent on a prompt.
Inside that run:

- every model request is an LLM step: journaled (a retry, a resume and a recorded replay are
  served the recorded ``ModelResponse``), retried by the step's policy on HTTP 429/5xx and
  timeouts, its token usage recorded on the run;
- every tool call is a tool step: journaled, at most once for ``mutating=True`` tools, guarded by
  the tool's breaker, its response checked at the boundary against ``returns=``; a tool raising
  ``ModelRetry`` is recorded as such and the retry prompt goes back to the model, as Pydantic AI
  does;
- tool arguments that fail the tool's schema never reach the journal: Pydantic AI sends the
  validation errors back to the model as a retry prompt (its convention), and the run goes on;
- the structured output goes through the Seawall verifiers given to ``register(verify=...)``;
  a rejected output is retried with the verifiers' feedback appended to the prompt.

Tool calls run one at a time inside a Seawall run (Pydantic AI's ``sequential`` mode), so the
journal's order is the same on every attempt and replay.
"""

from __future__ import annotations

import dataclasses
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from seawall.integrations._versions import require

SUPPORTED: Final = ">=2.68,<3"
"""The ``pydantic-ai-slim`` versions this module supports."""

require(
    "pydantic-ai-slim", SUPPORTED, extra="pydantic-ai", module="seawall.integrations.pydantic_ai"
)

from pydantic_ai import Agent, ModelRetry  # noqa: E402 - once its version is known to be good
from pydantic_ai.capabilities import AbstractCapability  # noqa: E402
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred  # noqa: E402
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse  # noqa: E402
from pydantic_ai.models.wrapper import WrapperModel  # noqa: E402
from pydantic_ai.toolsets import FunctionToolset, WrapperToolset  # noqa: E402
from pydantic_core import to_jsonable_python  # noqa: E402

from seawall import AsyncContext, current_context  # noqa: E402
from seawall.errors import ConfigurationError, UsageError  # noqa: E402
from seawall.integrations._live import LiveCall  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from pydantic_ai import RunContext
    from pydantic_ai.messages import ModelMessage
    from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.toolsets import AbstractToolset, ToolsetTool

    from seawall import Retry, Seawall

__all__ = ["SUPPORTED", "SeawallCapability", "register"]

_VOLATILE: Final = frozenset({"timestamp", "run_id", "conversation_id"})
"""Message fields that differ on every attempt (clock and ids); left out of the journal."""
_MODEL_RETRY: Final = "__pydantic_ai_model_retry__"
_CONTROL_FLOW: Final = (CallDeferred, ApprovalRequired)

_live_call: LiveCall[tuple[Any, ...]] = LiveCall(
    "seawall_pydantic_ai_call",
    sync_agent="a Pydantic AI agent ran inside the sync Seawall agent {agent!r}; register it "
    "with seawall.integrations.pydantic_ai.register(), or run it from an async agent",
)
"""The live arguments of the step being journaled (objects the journal cannot hold)."""


def register(
    app: Seawall,
    agent: Agent[Any, Any],
    *,
    name: str | None = None,
    tools: Mapping[str, Mapping[str, Any]] | None = None,
    model_retry: Retry | None = None,
    deps: Any = None,
    **agent_options: Any,
) -> Callable[..., Any]:
    """Register ``agent`` with ``app`` as a Seawall agent taking a ``prompt``.

    Args:
        app: The Seawall app.
        agent: The Pydantic AI agent, with its model, tools and output type.
        name: The Seawall agent's name (default: the Pydantic AI agent's ``name``).
        tools: Per tool name, the ``@app.tool`` options of its journal step (``mutating``,
            ``idempotent``, ``retry``, ``returns``, ``breaker``, ``compensate``...). Tools not
            listed are read-only steps with the app's defaults.
        model_retry: Retry policy of the model requests (default: the app's ``tool_retry``).
        deps: The ``deps`` given to every run of the agent (not snapshotted: keep it free of
            per-run data, which belongs in the prompt).
        **agent_options: ``@app.agent`` options: ``verify=``, ``on_drift=``, ``retry=``,
            ``timeout=``, ``guards=``, ``breaker=``...

    Returns:
        The registered agent: ``app.run(it, prompt="...")``. Its output is the agent's output as
        JSON (a Pydantic model becomes a dict), which is what the verifiers see.

    Raises:
        ConfigurationError: No name can be found, or ``tools`` names a tool the agent does not
            have.
    """
    label = name or agent.name
    if not label:
        raise ConfigurationError(
            "register() needs a name: pass register(app, agent, name='...') or give the "
            "Agent a name=",
        )
    capability = SeawallCapability(app, prefix=label, tools=tools, model_retry=model_retry)
    capability.check_tools(agent)

    async def run_agent(ctx: AsyncContext, prompt: str) -> Any:
        if ctx.feedback:
            prompt = f"{prompt}\n\nA previous answer was rejected by its verifiers: " + "; ".join(
                ctx.feedback
            )
        with Agent.parallel_tool_call_execution_mode("sequential"):
            result = await agent.run(prompt, deps=deps, capabilities=[capability])
        return to_jsonable_python(result.output)

    run_agent.__qualname__ = label
    return app.agent(name=label, **agent_options)(run_agent)


@dataclasses.dataclass(init=False)
class SeawallCapability(AbstractCapability[Any]):
    """The Pydantic AI capability that routes model requests and tool calls through the journal.

    :func:`register` adds it to every run; pass it yourself as ``agent.run(...,
    capabilities=[SeawallCapability(app, prefix=...)])`` inside a Seawall agent of your own.
    Outside a Seawall run it changes nothing.

    Args:
        app: The Seawall app whose runs journal the steps.
        prefix: Tool names are ``{prefix}.model`` and ``{prefix}.tool.{name}``.
        tools: Per tool name, ``@app.tool`` options (see :func:`register`).
        model_retry: Retry policy of the model requests.
    """

    app: Seawall
    prefix: str
    tools: Mapping[str, Mapping[str, Any]]
    model_retry: Retry | None

    def __init__(
        self,
        app: Seawall,
        *,
        prefix: str,
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        model_retry: Retry | None = None,
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.tools = dict(tools or {})
        self.model_retry = model_retry
        self._lock = threading.Lock()
        self._registered: set[str] = set()

    def check_tools(self, agent: Agent[Any, Any]) -> None:
        """Refuse options for a tool the agent does not have (a typo would drop ``mutating``).

        Raises:
            ConfigurationError: A name in ``tools`` is not one of the agent's function tools
                (checked only when every toolset of the agent is a function toolset).
        """
        toolsets = [ts for ts in agent.toolsets if isinstance(ts, FunctionToolset)]
        if len(toolsets) != len(agent.toolsets):
            return
        known = {tool for toolset in toolsets for tool in toolset.tools}
        unknown = sorted(set(self.tools) - known)
        if unknown:
            raise ConfigurationError(
                f"tools= names {unknown}, which the agent does not have (its tools: "
                f"{sorted(known) or 'none'})"
            )

    def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any] | None:
        """Journal the agent's tool calls."""
        return _JournaledToolset(toolset, capability=self)

    def get_wrapper_model(self, model: Model) -> Model | None:
        """Journal the agent's model requests."""
        return _JournaledModel(model, self)

    # -- the Seawall tools ------------------------------------------------------------------

    def model_step(self) -> str:
        """The name of the LLM tool of the model requests, registered on first use."""
        name = f"{self.prefix}.model"
        self._register(name, _call_model, {"llm": True, "retry": self.model_retry})
        return name

    def tool_step(self, tool: str) -> str:
        """The name of the Seawall tool journaling ``tool``, registered on first use."""
        name = f"{self.prefix}.tool.{tool}"
        options = dict(self.tools.get(tool, {}))
        retry = options.get("retry") or self.app.tool_retry
        options["retry"] = dataclasses.replace(
            retry, give_up_on=(*retry.give_up_on, *_CONTROL_FLOW)
        )
        returns = options.pop("returns", None)
        if returns is not None:
            options["returns"] = _passing_retries(returns)
        self._register(name, _tool_caller(), options)
        return name

    def _register(self, name: str, fn: Callable[..., Any], options: Mapping[str, Any]) -> None:
        with self._lock:
            # A copy of this capability (Pydantic AI may replace() it per run) finds it there.
            if name in self._registered or name in self.app.tools:
                return
            fn.__qualname__ = name
            self.app.tool(name=name, **options)(fn)
            self._registered.add(name)


class _JournaledModel(WrapperModel):
    """A model whose requests are LLM steps of the current Seawall run."""

    def __init__(self, wrapped: Model, capability: SeawallCapability) -> None:
        super().__init__(wrapped)
        self._capability = capability

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        ctx = current_context()
        if ctx is None:
            return await super().request(messages, model_settings, model_request_parameters)
        step = self._capability.model_step()
        dumped = ModelMessagesTypeAdapter.dump_python(messages, mode="json")
        request = {
            "model": self.model_name,
            "messages": _stable(dumped),
            "tools": sorted(
                tool.name
                for tool in (
                    *model_request_parameters.function_tools,
                    *model_request_parameters.output_tools,
                )
            ),
            "settings": to_jsonable_python(model_settings or {}),
        }
        live = (self.wrapped, messages, model_settings, model_request_parameters)
        data = await _live_call.acall(ctx, step, request, live)
        [response] = ModelMessagesTypeAdapter.validate_python([data])
        if not isinstance(response, ModelResponse):  # pragma: no cover - the journal holds ours
            raise UsageError(f"step {step} holds a {type(response).__name__}, not a response")
        usage = response.usage
        # Pydantic AI counts a response that omitted its usage in `unmeasured_requests`; its
        # zeros are then "unknown", and recorded so.
        known = usage.has_values() and not getattr(usage, "unmeasured_requests", 0)
        ctx.record_usage(
            model=response.model_name or self.model_name,
            input_tokens=usage.input_tokens if known else None,
            output_tokens=usage.output_tokens if known else None,
            provider=response.provider_name,
        )
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        if current_context() is not None:
            raise UsageError(
                "a streamed model request (agent.run_stream / iter with streaming) inside a "
                "Seawall run is not journaled and could not be replayed; use agent.run()"
            )
        async with super().request_stream(
            messages, model_settings, model_request_parameters, run_context
        ) as stream:
            yield stream


@dataclasses.dataclass
class _JournaledToolset(WrapperToolset[Any]):
    """A toolset whose calls are tool steps of the current Seawall run."""

    capability: SeawallCapability

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        run = current_context()
        if run is None:
            return await super().call_tool(name, tool_args, ctx, tool)
        step = self.capability.tool_step(name)
        live = (self.wrapped, name, tool_args, ctx, tool)
        value = await _live_call.acall(run, step, to_jsonable_python(tool_args), live)
        if isinstance(value, dict) and _MODEL_RETRY in value:
            raise ModelRetry(str(value[_MODEL_RETRY]))
        return value


def _tool_caller() -> Callable[..., Any]:
    """A new function for each tool (the registry refuses one function under two names)."""

    async def call_tool(**_journaled: Any) -> Any:
        live = _live_call.get("a Pydantic AI tool step can only run inside its agent's run")
        toolset, name, tool_args, run_context, tool = live
        try:
            value = await toolset.call_tool(name, tool_args, run_context, tool)
        except ModelRetry as exc:
            return {_MODEL_RETRY: exc.message}
        return to_jsonable_python(value)

    return call_tool


async def _call_model(**_journaled: Any) -> Any:
    live = _live_call.get("a Pydantic AI model step can only run inside its agent's run")
    model, messages, settings, parameters = live
    response = await model.request(messages, settings, parameters)
    [data] = ModelMessagesTypeAdapter.dump_python([response], mode="json")
    return data


def _stable(value: Any) -> Any:
    """The JSON of messages without the fields that change on every attempt."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


def _passing_retries(returns: Any) -> Callable[[Any], Any]:
    """``returns=`` for a tool step: a recorded ModelRetry passes, any other value is checked."""

    def check(value: Any) -> Any:
        if isinstance(value, dict) and _MODEL_RETRY in value:
            return value
        if hasattr(returns, "model_validate"):
            returns.model_validate(value)
        elif isinstance(returns, dict):
            import jsonschema  # noqa: PLC0415 - optional, checked when the tool is registered

            jsonschema.validate(value, returns)
        elif isinstance(returns, type):
            if not isinstance(value, returns):
                raise TypeError(f"expected {returns.__name__}, got {type(value).__name__}")
        else:
            return returns(value)
        return value

    return check
