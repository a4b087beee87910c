"""The catalog of one app: the agents, tools and graphs registered with it, by name and function."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seawall.errors import ConfigurationError, RegistrationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from seawall._graph import Graph
    from seawall.runtime.registry import AgentSpec, ToolSpec


@dataclass(slots=True)
class Registry:
    """The agents, tools and graphs registered with one app, by name and by function."""

    agents: dict[str, AgentSpec] = field(default_factory=dict)
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    graphs: dict[str, Graph] = field(default_factory=dict)
    agent_fns: dict[Any, AgentSpec] = field(default_factory=dict)
    tool_fns: dict[Any, ToolSpec] = field(default_factory=dict)

    def add(self, spec: AgentSpec | ToolSpec, target: Any, kind: str) -> None:
        """Register ``spec`` for the function ``target``.

        Raises:
            ConfigurationError: Another function has its name, or this one another name.
        """
        specs: dict[str, Any] = self.agents if kind == "agent" else self.tools
        by_fn: dict[Any, Any] = self.agent_fns if kind == "agent" else self.tool_fns
        existing = specs.get(spec.name)
        if existing is not None and existing.fn is not target:
            raise ConfigurationError(
                f"a {kind} named {spec.name!r} is already registered with this app; pass "
                f"@app.{kind}(name=...) to register another under a different name"
            )
        registered = by_fn.get(target)
        if registered is not None and registered.name != spec.name:
            raise ConfigurationError(
                f"this function is already registered as the {kind} {registered.name!r}; "
                f"registering it again as {spec.name!r} would make calls by function ambiguous. "
                "Register a wrapper (a def or functools.partial) under the second name"
            )
        specs[spec.name] = spec
        by_fn[target] = spec

    def add_graph(self, graph: Graph) -> Graph:
        """Register a graph; return it.

        Raises:
            ConfigurationError: A node's agent is not registered, or another graph has its name.
        """
        graph.check(self.is_agent)
        existing = self.graphs.get(graph.name)
        if existing is not None and existing is not graph:
            raise ConfigurationError(f"a graph named {graph.name!r} is already registered")
        if graph.name in self.agents:
            raise ConfigurationError(
                f"graph {graph.name!r} has the name of an agent; graph runs and agent runs share "
                "names in the ledger, so give the graph another name"
            )
        self.graphs[graph.name] = graph
        return graph

    def replace(self, name: str, kind: str, wrap: Callable[[Callable[..., Any]], Any]) -> None:
        """Swap a registered agent's or tool's function for ``wrap(function)``.

        Raises:
            RegistrationError: No agent or tool has this name.
        """
        specs: dict[str, Any] = self.agents if kind == "agent" else self.tools
        by_fn: dict[Any, Any] = self.agent_fns if kind == "agent" else self.tool_fns
        spec = specs.get(name)
        if spec is None:
            raise RegistrationError(f"no {kind} named {name!r} is registered with this app")
        replaced = dataclasses.replace(spec, fn=wrap(spec.fn))
        specs[name] = replaced
        for key, value in list(by_fn.items()):
            if value is spec:
                by_fn[key] = replaced

    def tool(self, tool: Callable[..., Any] | str) -> ToolSpec:
        """The registration of a tool given as the function or its name.

        Raises:
            RegistrationError: It is not registered with this app.
        """
        try:
            spec = self.tool_fns.get(tool) if not isinstance(tool, str) else self.tools.get(tool)
        except TypeError:
            spec = None
        if spec is None:
            raise _unregistered("tool", tool, self.tools)
        return spec

    def agent(self, agent: Callable[..., Any] | str) -> AgentSpec:
        """The registration of an agent given as the function or its name.

        Raises:
            RegistrationError: It is not registered with this app.
        """
        try:
            spec = (
                self.agent_fns.get(agent) if not isinstance(agent, str) else self.agents.get(agent)
            )
        except TypeError:
            spec = None
        if spec is None:
            raise _unregistered("agent", agent, self.agents)
        return spec

    def is_agent(self, candidate: Any) -> bool:
        """Whether ``candidate`` (a function or a name) is a registered agent."""
        try:
            self.agent(candidate)
        except RegistrationError:
            return False
        return True


def _unregistered(kind: str, ref: Any, registered: Mapping[str, Any]) -> RegistrationError:
    """The error for an agent or tool ``ref`` (a function or a name) this app does not know."""
    label = ref if isinstance(ref, str) else getattr(ref, "__qualname__", repr(ref))
    return RegistrationError(
        f"{kind} {label!r} is not registered with this app; decorate it with @app.{kind} "
        f"(registered {kind}s: {sorted(registered) or 'none'})",
        **{kind: str(label)},
    )


__all__ = ["Registry"]
