"""Run an OpenAI Agents SDK ``Agent`` as a Seawall agent.

``register(app, agent)`` registers a Seawall agent that runs the SDK's ``Runner`` on a prompt.
Inside that run:

- every model call is an LLM step: journaled (a retry, a resume and a recorded replay are
  served the recorded ``ModelResponse``), retried by the step's policy on HTTP 429/5xx and
  timeouts, its token usage and cost recorded on the run (unknown when the model reported none);
- every function tool call is a tool step: journaled, at most once for ``mutating=True`` tools,
  guarded by the tool's breaker and by the run's guards, its result checked at the boundary
  against ``returns=``. Tool calls the model asks for in one turn run one at a time, in order, so
  the journal's order is the same on every attempt;
- a guardrail tripwire (input, output, or a tool's) is a verification failure: the run fails
  ``silent_drift`` / ``verification_failed`` with the guardrail's name and output info, and the
  agent's ``on_drift`` policy applies (``on_drift="retry"`` runs it again with the guardrail's
  message appended to the prompt);
- agents it hands off to are journaled the same way.

The SDK turns an exception raised by a function tool into a message for the model (its
``failure_error_function``); that message is then the step's recorded result. Give a tool
``failure_error_function=None`` to let the exception reach Seawall, which retries it by the
tool's policy and classifies the run.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from seawall.integrations._versions import require

SUPPORTED: Final = ">=0.24,<1"
"""The ``openai-agents`` versions this module supports."""

require(
    "openai-agents", SUPPORTED, extra="openai-agents", module="seawall.integrations.openai_agents"
)

import asyncio  # noqa: E402 - after the version check, with the SDK

from agents import (  # noqa: E402
    Agent,
    FunctionTool,
    Handoff,
    Model,
    ModelProvider,
    ModelResponse,
    RunConfig,
    Runner,
    Usage,
)
from agents.exceptions import (  # noqa: E402
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailTripwireTriggered,
)
from agents.items import TResponseOutputItem  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from pydantic_core import to_jsonable_python  # noqa: E402

from seawall import AsyncContext, current_context  # noqa: E402
from seawall.errors import ConfigurationError, UsageError, VerificationError  # noqa: E402
from seawall.integrations._live import LiveCall  # noqa: E402
from seawall.integrations._mcp_policy import IDEMPOTENCY_KEY, policy_of  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from seawall import Retry, Seawall

__all__ = ["SUPPORTED", "idempotency_key", "mcp_meta", "register", "tripped"]

_TRIPWIRES: Final = (
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    ToolInputGuardrailTripwireTriggered,
    ToolOutputGuardrailTripwireTriggered,
)
_OUTPUT_ITEMS: Final[TypeAdapter[list[TResponseOutputItem]]] = TypeAdapter(
    list[TResponseOutputItem]
)
_USAGE: Final[TypeAdapter[Usage]] = TypeAdapter(Usage)

_live_call: LiveCall[tuple[Any, ...]] = LiveCall(
    "seawall_openai_agents_call",
    sync_agent="an Agents SDK agent ran inside the sync Seawall agent {agent!r}; register it "
    "with seawall.integrations.openai_agents.register(), or run it from an async agent",
)
"""The live objects of the step being journaled (the journal holds only their JSON)."""
_step_key: ContextVar[str | None] = ContextVar("seawall_openai_agents_key", default=None)
_one_at_a_time: ContextVar[asyncio.Lock | None] = ContextVar(
    "seawall_openai_agents_tools", default=None
)
"""Makes the tool calls of one run take turns, in the order the SDK started them."""


def register(
    app: Seawall,
    agent: Agent[Any],
    *,
    name: str | None = None,
    tools: Mapping[str, Mapping[str, Any]] | None = None,
    model_retry: Retry | None = None,
    run_config: RunConfig | None = None,
    max_turns: int = 10,
    context: Any = None,
    **agent_options: Any,
) -> Callable[..., Any]:
    """Register ``agent`` with ``app`` as a Seawall agent taking a ``prompt``.

    Args:
        app: The Seawall app.
        agent: The SDK agent, with its model, tools, handoffs, guardrails and output type.
        name: The Seawall agent's name (default: the SDK agent's ``name``).
        tools: Per function tool name, the ``@app.tool`` options of its journal step
            (``mutating``, ``idempotent``, ``retry``, ``returns``, ``breaker``,
            ``compensate``...). Tools not listed are read-only steps with the app's defaults.
        model_retry: Retry policy of the model calls (default: the app's ``tool_retry``). Turn
            the OpenAI client's own retries off (``max_retries=0``) so it is the only one.
        run_config: The SDK ``RunConfig`` of every run (its model provider is journaled too).
        max_turns: The SDK's turn limit.
        context: The SDK run context given to every run (not snapshotted: keep per-run data in
            the prompt).
        **agent_options: ``@app.agent`` options: ``verify=``, ``on_drift=``, ``retry=``,
            ``timeout=``, ``guards=``, ``breaker=``, ``drift=``...

    Returns:
        The registered agent: ``app.run(it, prompt="...")``. Its output is the SDK's final
        output as JSON (a Pydantic model becomes a dict), which is what verifiers see.

    Raises:
        ConfigurationError: ``agent`` is not an SDK agent, or ``tools`` names a tool that none of
            the agents (the one given, or one it hands off to) has.
    """
    if not isinstance(agent, Agent):
        raise ConfigurationError(f"register() takes an agents.Agent, got {agent!r}")
    label = name or agent.name
    journal = _Journaled(app, label, dict(tools or {}), model_retry)
    journaled = journal.agent(agent)
    journal.check_tools()
    config = journal.run_config(run_config or RunConfig())

    async def run_agent(ctx: AsyncContext, prompt: str) -> Any:
        if ctx.feedback:
            prompt = f"{prompt}\n\nA previous answer was rejected: " + "; ".join(ctx.feedback)
        token = _one_at_a_time.set(asyncio.Lock())
        try:
            result = await Runner.run(
                journaled, prompt, context=context, max_turns=max_turns, run_config=config
            )
        except _TRIPWIRES as exc:
            raise tripped(exc, ctx.run_id) from exc
        finally:
            _one_at_a_time.reset(token)
        return to_jsonable_python(result.final_output)

    run_agent.__qualname__ = label
    return app.agent(name=label, **agent_options)(run_agent)


def tripped(exc: Exception, run_id: str | None = None) -> VerificationError:
    """The verification failure of a guardrail whose tripwire was triggered."""
    if isinstance(exc, InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered):
        kind = "input" if isinstance(exc, InputGuardrailTripwireTriggered) else "output"
        guardrail = exc.guardrail_result.guardrail.get_name()
        info = exc.guardrail_result.output.output_info
    else:
        kind = "tool " + (
            "input" if isinstance(exc, ToolInputGuardrailTripwireTriggered) else "output"
        )
        guardrail = exc.guardrail.get_name()  # type: ignore[attr-defined]
        info = exc.output.output_info  # type: ignore[attr-defined]
    detail = "" if info is None else f": {json.dumps(to_jsonable_python(info), default=str)}"
    message = f"{kind} guardrail {guardrail!r} tripped{detail}"
    return VerificationError(
        f"the agent's {message}",
        run_id=run_id,
        verdicts=[{"name": f"guardrail:{guardrail}", "passed": False, "message": message}],
        feedback=[message],
    )


@dataclasses.dataclass(eq=False)
class _Journaled:
    """Journaled copies of one SDK agent's graph: its models, function tools and handoffs.

    Attributes:
        app: The app whose runs journal the calls.
        prefix: The prefix of the Seawall tools.
        tools: Registration options by function tool name.
        model_retry: The retry policy of model calls (``None``: the app's).
        seen_tools: The function tools found so far.
        has_mcp: Whether an agent of the graph has MCP servers.
    """

    app: Seawall
    prefix: str
    tools: dict[str, Mapping[str, Any]]
    model_retry: Retry | None
    seen_tools: set[str] = dataclasses.field(default_factory=set, init=False)
    has_mcp: bool = dataclasses.field(default=False, init=False)
    _copies: dict[int, Agent[Any]] = dataclasses.field(default_factory=dict, init=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False)

    def check_tools(self) -> None:
        """Refuse options for a tool no agent has (a typo would drop ``mutating``).

        With MCP servers the tools are known only once listed, in a run: not checked then.
        """
        unknown = sorted(set(self.tools) - self.seen_tools)
        if unknown and not self.has_mcp:
            raise ConfigurationError(
                f"tools= names {unknown}, which no agent has (function tools: "
                f"{sorted(self.seen_tools) or 'none'})"
            )

    def agent(self, agent: Agent[Any]) -> Agent[Any]:
        """A copy of ``agent`` whose model, function tools and handoffs are journaled."""
        if id(agent) in self._copies:
            return self._copies[id(agent)]
        copy = agent.clone()
        self._copies[id(agent)] = copy  # before the handoffs: they may lead back here
        if isinstance(agent.model, Model):
            copy.model = _JournaledModel(agent.model, self)
        copy.tools = [self._tool(tool) for tool in agent.tools]
        copy.handoffs = [self._handoff(target) for target in agent.handoffs]
        if agent.mcp_servers:
            self.has_mcp = True
            listed = copy.get_mcp_tools

            async def get_mcp_tools(run_context: Any) -> list[Any]:
                return [self._tool(tool, mcp=True) for tool in await listed(run_context)]

            copy.get_mcp_tools = get_mcp_tools  # type: ignore[method-assign]
        return copy

    def run_config(self, config: RunConfig) -> RunConfig:
        """``config`` with its model provider (and its model override) journaled."""
        model = config.model
        if isinstance(model, Model):
            model = _JournaledModel(model, self)
        return dataclasses.replace(
            config, model=model, model_provider=_JournaledProvider(config.model_provider, self)
        )

    def _tool(self, tool: Any, *, mcp: bool = False) -> Any:
        if not isinstance(tool, FunctionTool):
            return tool  # hosted tools run on the provider's side, inside the model call
        self.seen_tools.add(tool.name)
        step = self.tool_step(tool.name, policy_of(tool.mcp_annotations) if mcp else {})
        invoke = tool.on_invoke_tool

        async def journaled(tool_context: Any, arguments: str) -> Any:
            ctx = current_context()
            if ctx is None:
                return await invoke(tool_context, arguments)
            lock = _one_at_a_time.get()
            if lock is None:
                return await _journal_tool(ctx, step, invoke, tool_context, arguments)
            async with lock:
                return await _journal_tool(ctx, step, invoke, tool_context, arguments)

        return dataclasses.replace(tool, on_invoke_tool=journaled)

    def _handoff(self, target: Any) -> Any:
        if isinstance(target, Agent):
            return self.agent(target)
        if isinstance(target, Handoff):
            invoke = target.on_invoke_handoff

            async def journaled(run_context: Any, arguments: str) -> Any:
                return self.agent(await invoke(run_context, arguments))

            return dataclasses.replace(target, on_invoke_handoff=journaled)
        return target

    # -- the Seawall tools ------------------------------------------------------------------

    def model_step(self) -> str:
        """The name of the LLM tool of the model calls, registered on first use."""
        name = f"{self.prefix}.model"
        self._register(name, _call_model, {"llm": True, "retry": self.model_retry})
        return name

    def tool_step(self, tool: str, defaults: Mapping[str, Any]) -> str:
        """The name of the Seawall tool journaling the function tool ``tool``.

        ``defaults``: options of an MCP tool from its annotations (``tools=`` overrides them).
        """
        name = f"{self.prefix}.tool.{tool}"
        self._register(name, _tool_caller(), {**defaults, **self.tools.get(tool, {})})
        return name

    def _register(self, name: str, fn: Callable[..., Any], options: Mapping[str, Any]) -> None:
        with self._lock:
            if name in self.app.tools:
                return
            fn.__qualname__ = name
            self.app.tool(name=name, **options)(fn)


async def _journal_tool(ctx: Any, step: str, invoke: Any, tool_context: Any, arguments: str) -> Any:
    parsed = json.loads(arguments) if arguments.strip() else {}
    return await _live_call.acall(
        ctx, step, {"arguments": parsed}, (invoke, tool_context, arguments)
    )


def _tool_caller() -> Callable[..., Any]:
    """A new function for each tool (the registry refuses one function under two names)."""

    async def call_tool(*, idempotency_key: str, arguments: Any) -> Any:
        live = _live_call.get("an Agents SDK tool step can only run inside its agent's run")
        invoke, tool_context, arguments = live
        token = _step_key.set(idempotency_key)
        try:
            return to_jsonable_python(await invoke(tool_context, arguments))
        finally:
            _step_key.reset(token)

    return call_tool


def mcp_meta(_context: Any = None) -> dict[str, str] | None:
    """A ``tool_meta_resolver`` for the SDK's MCP servers: the step's key in the call's ``_meta``.

    ``MCPServerStdio(..., tool_meta_resolver=mcp_meta)`` (or any SDK MCP server) sends each
    journaled call's idempotency key under ``seawall/idempotency_key``, so the server can drop
    a repeat (see docs/integrations-mcp.md).
    """
    key = _step_key.get()
    return None if key is None else {IDEMPOTENCY_KEY: key}


def idempotency_key() -> str | None:
    """The idempotency key of the tool step running now (``None`` outside one).

    Inside a function tool of an agent registered with :func:`register`, pass it to the API the
    tool calls (a payment's ``Idempotency-Key`` header...): it is the same on every attempt,
    resume and in-doubt re-issue of this call, so the API can drop a repeat.
    """
    return _step_key.get()


class _JournaledProvider(ModelProvider):
    """Looks models up with the user's provider and journals their calls."""

    def __init__(self, inner: ModelProvider, journal: _Journaled) -> None:
        self.inner = inner
        self.journal = journal

    def get_model(self, model_name: str | None) -> Model:
        found = self.inner.get_model(model_name)
        return found if isinstance(found, _JournaledModel) else _JournaledModel(found, self.journal)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _JournaledModel(Model):
    """A model whose calls inside a Seawall run are LLM steps."""

    def __init__(self, inner: Model, journal: _Journaled) -> None:
        self.inner = inner
        self.journal = journal
        self.name = str(getattr(inner, "model", None) or type(inner).__name__)

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,  # noqa: A002 - the SDK's parameter name
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        args = (system_instructions, input, model_settings, tools, output_schema, handoffs, tracing)
        options = {
            "previous_response_id": previous_response_id,
            "conversation_id": conversation_id,
            "prompt": prompt,
        }
        ctx = current_context()
        if ctx is None:
            return await self.inner.get_response(*args, **options)
        request = {
            "model": self.name,
            "instructions": system_instructions,
            "input": to_jsonable_python(input, fallback=str),
            "settings": model_settings.to_json_dict(),
            "tools": sorted(getattr(tool, "name", type(tool).__name__) for tool in tools),
            "handoffs": sorted(h.tool_name for h in handoffs),
            "output": None if output_schema is None else output_schema.name(),
            "previous_response_id": previous_response_id,
            "conversation_id": conversation_id,
        }
        live = (self.inner, args, options)
        data = await _live_call.acall(ctx, self.journal.model_step(), request, live)
        response = ModelResponse(
            output=_OUTPUT_ITEMS.validate_python(data["output"]),
            usage=_USAGE.validate_python(data["usage"]),
            response_id=data.get("response_id"),
            request_id=data.get("request_id"),
        )
        usage = response.usage
        known = usage.requests > 0 and (usage.input_tokens > 0 or usage.output_tokens > 0)
        ctx.record_usage(
            model=self.name,
            input_tokens=usage.input_tokens if known else None,
            output_tokens=usage.output_tokens if known else None,
        )
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """The wrapped model's stream outside a run; refused inside one (it is not journaled)."""
        if current_context() is not None:
            raise UsageError(
                "a streamed model call (Runner.run_streamed) inside a Seawall run is not "
                "journaled and could not be replayed; use Runner.run (register() does)"
            )
        return self.inner.stream_response(*args, **kwargs)

    async def close(self) -> None:
        await self.inner.close()


async def _call_model(**_journaled: Any) -> dict[str, Any]:
    live = _live_call.get("an Agents SDK model step can only run inside its agent's run")
    model, args, options = live
    response = await model.get_response(*args, **options)
    return {
        "output": _OUTPUT_ITEMS.dump_python(response.output, mode="json", exclude_unset=True),
        "usage": _USAGE.dump_python(response.usage, mode="json"),
        "response_id": response.response_id,
        "request_id": response.request_id,
    }
