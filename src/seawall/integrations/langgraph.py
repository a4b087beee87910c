"""Run a compiled LangGraph graph as a Seawall agent.

``register(app, graph, name=...)`` registers a Seawall agent whose run invokes the graph on its
inputs. The graph is the agent's code: its nodes run again on a retried attempt or a replay,
and what must not run again is journaled:

- chat models wrapped with :func:`chat_model` make each call an LLM step (served from the
  journal on retry, resume and recorded replay; retried by policy; usage recorded, unknown when
  the message carries no ``usage_metadata``);
- LangChain tools wrapped with :func:`tool` (for a ``ToolNode`` or your own node) make each call
  a Seawall tool step (``mutating=True`` runs at most once per run, breakers, ``returns=``);
- the final state goes through the agent's verifiers (``register(verify=...)``).

Inside a run, the nodes of one super-step run one at a time (``max_concurrency=1``), so the
journal's order is the same on every attempt. Each attempt gets its own LangGraph thread
(``thread_id = f"{run_id}-{attempt}"``) unless you pass one in ``config``. After the verifiers
rejected an attempt, the next one finds their messages in
``config["configurable"]["seawall_feedback"]`` (a node may take ``config`` to read them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from seawall.integrations._versions import require

SUPPORTED: Final = ">=1.0,<2"
"""The ``langgraph`` versions this module supports."""
SUPPORTED_CORE: Final = ">=1.0,<2"
"""The ``langchain-core`` versions this module supports."""

require("langgraph", SUPPORTED, extra="langgraph", module="seawall.integrations.langgraph")
require(
    "langchain-core", SUPPORTED_CORE, extra="langgraph", module="seawall.integrations.langgraph"
)

from langchain_core.language_models import BaseChatModel  # noqa: E402 - after the version check
from langchain_core.messages import AIMessage, BaseMessage, messages_from_dict  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.tools import BaseTool, StructuredTool  # noqa: E402
from pydantic import ConfigDict, PrivateAttr  # noqa: E402
from pydantic_core import to_jsonable_python  # noqa: E402

from seawall import AsyncContext, Context, current_context  # noqa: E402
from seawall.errors import ConfigurationError, UsageError  # noqa: E402
from seawall.integrations._live import LiveCall  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.runnables import Runnable, RunnableConfig

    from seawall import Retry, Seawall

__all__ = [
    "SUPPORTED",
    "SUPPORTED_CORE",
    "JournaledChatModel",
    "chat_model",
    "register",
    "to_json",
    "tool",
]


def register(
    app: Seawall,
    graph: Any,
    *,
    name: str,
    config: RunnableConfig | None = None,
    asynchronous: bool = False,
    **agent_options: Any,
) -> Callable[..., Any]:
    """Register a compiled graph with ``app`` as a Seawall agent.

    Args:
        app: The Seawall app.
        graph: A compiled LangGraph graph (``builder.compile()``), with or without a
            checkpointer.
        name: The Seawall agent's name.
        config: The ``RunnableConfig`` of every invocation (``recursion_limit``, ``tags``...).
            ``max_concurrency`` is forced to 1 inside runs; a ``configurable.thread_id`` you set
            is kept (see the guide for what that means on a retry).
        asynchronous: Invoke with ``ainvoke`` from an async Seawall agent (for graphs whose
            nodes are coroutines); otherwise ``invoke`` runs in a worker thread.
        **agent_options: ``@app.agent`` options: ``verify=``, ``on_drift=``, ``retry=``,
            ``timeout=``, ``guards=``, ``breaker=``...

    Returns:
        The registered agent: ``app.run(it, **state)``, where the keyword inputs are the
        graph's input state (JSON values: messages as ``{"role": ..., "content": ...}``). Its
        output is the final state as JSON (messages as LangChain's message dicts, without
        their random ids).

    Raises:
        ConfigurationError: ``graph`` is not a compiled graph.
    """
    if not (hasattr(graph, "invoke") and hasattr(graph, "get_graph")):
        raise ConfigurationError(
            f"register() takes a compiled LangGraph graph (builder.compile()), got {graph!r}"
        )
    base: dict[str, Any] = dict(config or {})

    def config_for(ctx: Context | AsyncContext) -> RunnableConfig:
        configurable = dict(base.get("configurable") or {})
        configurable.setdefault("thread_id", f"{ctx.run_id}-{ctx.attempt}")
        configurable["seawall_feedback"] = list(ctx.feedback)
        return cast("RunnableConfig", {**base, "configurable": configurable, "max_concurrency": 1})

    if asynchronous:

        async def run_graph_async(ctx: AsyncContext, **state: Any) -> Any:
            final = await graph.ainvoke(state, config_for(ctx))
            return to_json(final, ids=False)

        run_graph_async.__qualname__ = name
        return app.agent(name=name, **agent_options)(run_graph_async)

    def run_graph(ctx: Context, **state: Any) -> Any:
        final = graph.invoke(state, config_for(ctx))
        return to_json(final, ids=False)

    run_graph.__qualname__ = name
    return app.agent(name=name, **agent_options)(run_graph)


def to_json(value: Any, *, ids: bool = True) -> Any:
    """A graph state as JSON: LangChain messages become their ``{"type", "data"}`` dicts.

    Args:
        value: A state, a message or any value of one.
        ids: Keep the messages' ``id``. LangGraph gives a message without one a fresh random
            id on every attempt, so the journal and the run's output leave them out: a replay
            would otherwise differ from its original by ids alone.
    """
    if isinstance(value, BaseMessage):
        data = value.model_dump(mode="json")
        if not ids:
            data.pop("id", None)
        return {"type": value.type, "data": data}
    if isinstance(value, dict):
        return {str(key): to_json(item, ids=ids) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item, ids=ids) for item in value]
    return to_jsonable_python(value)


# -- chat models ------------------------------------------------------------------------------

_live_call: LiveCall[tuple[Any, ...]] = LiveCall("seawall_langchain_call")
"""The live messages of the LLM step being journaled (objects the journal does not hold)."""


def chat_model(
    app: Seawall, model: BaseChatModel, *, name: str | None = None, retry: Retry | None = None
) -> BaseChatModel:
    """Wrap a LangChain chat model so its calls inside a Seawall run are LLM steps.

    Args:
        app: The Seawall app.
        model: Any LangChain chat model (``ChatOpenAI``, ``ChatAnthropic``, a fake one...).
            Turn its client's own retries off (``max_retries=0``) so Seawall's policy is the
            only retry layer.
        name: The LLM tool's name (default ``langchain.{model type}``); one per wrapped model.
        retry: Retry policy of the calls (default: the app's ``tool_retry``).

    Returns:
        A chat model to use in the graph's nodes instead of ``model``. Outside a run it calls
        ``model`` directly.

    Raises:
        ConfigurationError: ``model`` is not a chat model, or ``name`` is taken.
    """
    if not isinstance(model, BaseChatModel):
        raise ConfigurationError(f"chat_model() takes a LangChain chat model, got {model!r}")
    step = name or f"langchain.{model._llm_type}"  # noqa: SLF001 - LangChain's public-by-convention type tag
    if step in app.tools:
        raise ConfigurationError(
            f"this app already has a tool named {step!r}; give each wrapped model its own name="
        )
    wrapped = JournaledChatModel(inner=model, step=step)
    # One sync function serves both colours: a sync agent calls it inline, an async agent in a
    # worker thread (which sees the live call through the copied context).
    app.tool(name=step, llm=True, retry=retry)(_live_caller(step))
    return wrapped


class JournaledChatModel(BaseChatModel):
    """A chat model whose calls inside a Seawall run are journaled (see :func:`chat_model`).

    Attributes:
        inner: The wrapped model.
        step: The name of the LLM tool its calls are journaled under.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    step: str
    _bound: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return f"seawall-journaled-{self.inner._llm_type}"  # noqa: SLF001

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        """Bind tools the way the wrapped model formats them for its provider."""
        bound = self.inner.bind_tools(tools, **kwargs)
        return self.bind(**dict(getattr(bound, "kwargs", {}) or {}))

    # -- the agent side -----------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002 - the inner call reports
        **kwargs: Any,
    ) -> ChatResult:
        ctx = current_context()
        if ctx is None:
            return _result(self.inner.invoke(messages, stop=stop, **kwargs))
        if not isinstance(ctx, Context):
            raise UsageError(
                f"{self.step}: a sync LangChain call (invoke) inside the async agent "
                f"{ctx.agent!r}; call ainvoke there, or register the graph without asynchronous"
            )
        with _live_call.held((self.inner, messages, stop, kwargs)):
            data = ctx.call(self.step, **self._request(messages, stop, kwargs))
        return self._finish(ctx, data)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        ctx = current_context()
        if ctx is None:
            return _result(await self.inner.ainvoke(messages, stop=stop, **kwargs))
        if not isinstance(ctx, AsyncContext):
            raise UsageError(
                f"{self.step}: an async LangChain call (ainvoke) inside the sync agent "
                f"{ctx.agent!r}; register the graph with asynchronous=True"
            )
        with _live_call.held((self.inner, messages, stop, kwargs)):
            data = await ctx.call(self.step, **self._request(messages, stop, kwargs))
        return self._finish(ctx, data)

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "model": _model_name(self.inner),
            "messages": [to_json(message, ids=False) for message in messages],
            "stop": stop,
            "options": to_jsonable_python(dict(kwargs)),
        }

    def _finish(self, ctx: Context | AsyncContext, data: Any) -> ChatResult:
        [message] = messages_from_dict([data])
        usage = getattr(message, "usage_metadata", None)
        ctx.record_usage(
            model=_model_name(self.inner),
            input_tokens=None if not usage else usage.get("input_tokens"),
            output_tokens=None if not usage else usage.get("output_tokens"),
        )
        return _result(message)


def _live_caller(step: str) -> Callable[..., Any]:
    """The LLM tool of one wrapped model (a new function: one function cannot have two names)."""

    def call_model(**_journaled: Any) -> Any:
        live = _live_call.get(f"{step} can only run inside its wrapped model's call")
        model, messages, stop, kwargs = live
        return to_json(model.invoke(messages, stop=stop, **kwargs))

    call_model.__qualname__ = step
    return call_model


def _result(message: BaseMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


def _model_name(model: BaseChatModel) -> str:
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return model._llm_type  # noqa: SLF001


# -- tools ------------------------------------------------------------------------------------


def tool(app: Seawall, lc_tool: BaseTool, **options: Any) -> BaseTool:
    """Wrap a LangChain tool so its calls inside a Seawall run are journaled tool steps.

    Args:
        app: The Seawall app.
        lc_tool: A LangChain tool (``@tool`` function or ``StructuredTool``).
        **options: ``@app.tool`` options of its step: ``mutating``, ``idempotent``, ``retry``,
            ``returns``, ``breaker``, ``compensate``...

    Returns:
        A tool with the same name, description and argument schema, for a ``ToolNode`` or
        ``model.bind_tools``. Outside a run it calls ``lc_tool`` directly.
    """
    if not isinstance(lc_tool, BaseTool):
        raise ConfigurationError(f"tool() takes a LangChain tool, got {lc_tool!r}")
    step = f"langchain.tool.{lc_tool.name}"

    def call_tool(**arguments: Any) -> Any:
        return to_json(lc_tool.invoke(arguments))

    call_tool.__qualname__ = step
    app.tool(name=step, **options)(call_tool)

    def journaled(**arguments: Any) -> Any:
        ctx = current_context()
        if ctx is None:
            return lc_tool.invoke(arguments)
        if not isinstance(ctx, Context):
            raise UsageError(
                f"{step}: sync tool call inside the async agent {ctx.agent!r}; register the "
                "graph without asynchronous=True, or call the tool from your own async code"
            )
        return ctx.call(step, **to_jsonable_python(arguments))

    return StructuredTool.from_function(
        func=journaled,
        name=lc_tool.name,
        description=lc_tool.description,
        args_schema=lc_tool.args_schema,
        return_direct=lc_tool.return_direct,
    )
