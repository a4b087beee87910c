"""Registering agents, tools and graphs: ``@app.agent``, ``@app.tool``, ``app.graph``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from seawall.runtime.registry import AgentSpec, ToolSpec

if TYPE_CHECKING:
    from seawall._graph import Graph
    from seawall.policies.retry import Retry
    from seawall.runtime.catalog import Registry
    from seawall.runtime.registry import AgentOptions, ToolOptions

F = TypeVar("F", bound=Callable[..., Any])


class Registrations:
    """The registration half of :class:`~seawall.Seawall`: its agents, tools and graphs."""

    _registry: Registry
    retry: Retry
    """Default retry policy of agents."""
    tool_retry: Retry
    """Default retry policy of tools."""

    @overload
    def agent(self, fn: F, /) -> F: ...
    @overload
    def agent(
        self, /, *, retry: Retry | None = None, **options: Unpack[AgentOptions]
    ) -> Callable[[F], F]: ...
    def agent(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        retry: Retry | None = None,
        **options: Unpack[AgentOptions],
    ) -> Any:
        """Register an agent: a sync or async callable ``fn(ctx, **inputs)``.

        The function is returned unchanged, so calling it outside a run behaves like the
        plain function.

        Args:
            fn: The agent (when used as a bare ``@app.agent``).
            name: Name in the ledger (default: the function's qualified name).
            retry: Retry policy for failed attempts (default: the app's).
            timeout: Seconds one attempt may take.
            version: Your label for the agent's code version, recorded on every run.
            verify: Verifiers (``seawall.verify``) the output must pass before it is trusted.
            on_drift: When it is not: ``"fail"`` (default), ``"retry"``, ``"quarantine"``,
                ``"handoff"`` or ``seawall.OnDrift(retries=..., fallback=..., then=...)``.
            min_confidence: Lowest reported confidence that is trusted (``ctx.confidence(x)``
                or a ``confidence`` field of the output).
            guards: Budgets and guards of each run (default ``Guards()``: at most 3
                destructive calls in a row without a verification gate).
            breaker: The agent's circuit breaker (default: opens after 3 consecutive failed
                runs, half-opens after 30 s); ``False`` for none.
            max_concurrency: Runs of this agent that execute at once in this process.
            retry_budget: Caps its retries to a share of its recent attempts, for every
                process (default ``RetryBudget()``: 10% over 10 s, at least 10); ``False``
                for none.
            drift: What to watch of its runs for drift across runs
                (``seawall.DriftWatch(decision="action")``): alerts when the distribution of
                its decisions or of its runs' size, tokens, cost, latency, confidence or
                verification moves away from its reference window.

        Returns:
            The function itself, or a decorator.
        """

        def register(target: F) -> F:
            spec = AgentSpec.build(target, retry=retry or self.retry, **options)
            self._registry.add(spec, target, "agent")
            return target

        return register(fn) if fn is not None else register

    @overload
    def tool(self, fn: F, /) -> F: ...
    @overload
    def tool(
        self, /, *, retry: Retry | None = None, **options: Unpack[ToolOptions]
    ) -> Callable[[F], F]: ...
    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        retry: Retry | None = None,
        **options: Unpack[ToolOptions],
    ) -> Any:
        """Register a tool agents call through ``ctx.call``.

        Args:
            fn: The tool (when used as a bare ``@app.tool``).
            name: Name in the journal (default: the function's qualified name).
            mutating: It has side effects: its intent is made durable before it runs and it
                is never executed twice for the same step of a run.
            idempotent: Re-issuing it with the same ``idempotency_key`` is safe; an in-doubt
                call (in flight during a crash) is then re-issued instead of handed to a person.
            retry: Its retry policy for failed calls (default: the app's ``tool_retry``).
            compensate: Undoes a completed call, ``compensate(result, *args, **kwargs)``
                (plus ``idempotency_key=`` if it takes one). When a run ends ``partial_write``
                for good, the compensations of its completed calls run newest first.
            returns: What every response must be (a Pydantic model, a JSON Schema dict, a
                type or a validating function), checked before the agent sees it.
            read_back: ``read_back(result, *args, **kwargs)`` reads the state back after a
                mutating call; a falsy answer fails the step (read-your-writes). After a crash
                it also tells whether an in-doubt call took effect.
            observes: ``observes(result, *args, **kwargs)`` returns the facts the response
                asserts (``{key: value}``); two sources disagreeing on a key stop the run.
            breaker: The tool's circuit breaker (default: opens after 2 consecutive failed
                calls, half-opens after 10 s; an open breaker fails calls fast without
                calling the tool); ``False`` for none.
            rate_limit: At most this many calls per period in this process (``"10/second"``,
                ``"100/minute"``); calls wait their turn. Needs ``seawall[ratelimit]``.
            retry_budget: Caps its retries to a share of its recent calls, for every process
                (default ``RetryBudget()``: 10% over 10 s, at least 10); when spent, a failing
                call fails fast and its breaker takes over. ``False`` for none.
            contradicts: ``contradicts(previous, current)`` says whether two results of this
                tool (for the same ``consistency_key``) contradict each other; a contradiction
                opens its breaker and stops the step (``ConsistencyError``).
            consistency_key: ``consistency_key(*args, **kwargs)`` groups calls whose results
                must agree (with no ``contradicts``, results of one key must be equal).
            llm: It calls a language model: journaled like a read-only tool under the kind
                ``llm``, traced as a GenAI call (the model from its ``model=`` argument) and
                measured per model. Record the response's usage with ``ctx.record_usage``.
            destructive: Its side effect destroys or overwrites something (a delete, a payment,
                a deploy); implies ``mutating``. The default guards refuse a 4th destructive call
                in a row without a passing ``ctx.verify`` gate; ordinary mutating calls (a
                notification) are not limited by default.

        Returns:
            The function itself, or a decorator.
        """

        def register(target: F) -> F:
            spec = ToolSpec.build(target, retry=retry or self.tool_retry, **options)
            self._registry.add(spec, target, "tool")
            return target

        return register(fn) if fn is not None else register

    def graph(self, graph: Graph) -> Graph:
        """Register a graph (so ``seawall resume`` can continue its runs); return it.

        Raises:
            ConfigurationError: A node's agent is not registered, or another graph has its name.
        """
        return self._registry.add_graph(graph)

    @property
    def agents(self) -> Mapping[str, AgentSpec]:
        """Registered agents by name."""
        return dict(self._registry.agents)

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        """Registered tools by name."""
        return dict(self._registry.tools)

    @property
    def graphs(self) -> Mapping[str, Graph]:
        """Registered graphs by name."""
        return dict(self._registry.graphs)


__all__ = ["Registrations"]
