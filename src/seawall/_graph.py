"""Graphs: DAGs of agents whose wiring is checked when the graph is built, not mid-run.

Every input of a node is mapped explicitly, to a graph input (:class:`Input`) or to an upstream
node's output or one of its fields (:class:`From`). A node may only depend on nodes added
before it, so a cycle cannot be written; a missing input, an unknown node, a field the upstream
output type does not have, or an annotated type that cannot match are refused by ``add``.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any

from seawall.errors import ConfigurationError
from seawall.runtime.registry import is_async_callable

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Input:
    """A graph input, by name: ``Input("topic")``."""

    name: str


@dataclass(frozen=True, slots=True)
class From:
    """An upstream node's output, or one field of it.

    ``From("research")`` is the whole output; ``From("research", "notes")`` its ``notes`` field.
    """

    node: str
    field: str | None = None


Source = Input | From


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a graph.

    Attributes:
        name: Its name in the graph (unique).
        agent: The agent function (registered with the app that runs the graph).
        after: Nodes that must succeed before it starts.
        inputs: How each of the agent's inputs is fed.
    """

    name: str
    agent: Callable[..., Any]
    after: tuple[str, ...]
    inputs: Mapping[str, Source]


@dataclass
class Graph:
    """A DAG of agents.

    Args:
        name: The graph's name (graph runs are recorded under it).
        max_concurrency: Nodes of one graph run that may run at once.

    Example:
        >>> graph = Graph("publish")
        >>> graph.add(research, inputs={"topic": Input("topic")})  # doctest: +SKIP
        >>> graph.add(draft, inputs={"notes": From("research")})  # doctest: +SKIP
    """

    name: str
    max_concurrency: int = 8
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError(f"Graph(name={self.name!r}) must be a non-empty string")
        if not isinstance(self.max_concurrency, int) or self.max_concurrency < 1:
            raise ConfigurationError(
                f"Graph(max_concurrency={self.max_concurrency!r}) must be an integer >= 1"
            )

    @property
    def inputs(self) -> set[str]:
        """The graph inputs its nodes read."""
        return {
            source.name
            for node in self.nodes.values()
            for source in node.inputs.values()
            if isinstance(source, Input)
        }

    def add(
        self,
        agent: Callable[..., Any],
        *,
        name: str | None = None,
        after: Sequence[str | Callable[..., Any]] = (),
        inputs: Mapping[str, Source] | None = None,
    ) -> str:
        """Add a node; return its name.

        Args:
            agent: The agent function.
            name: The node's name (default: the function's name).
            after: Nodes (names or agent functions) that must succeed first; nodes an input
                reads ``From`` are added implicitly.
            inputs: ``{parameter: Input(...) or From(...)}`` for every parameter of the agent
                without a default.

        Returns:
            The node's name.

        Raises:
            ConfigurationError: A duplicate name, an unknown upstream node (add nodes in
                dependency order: cycles cannot be expressed), a missing or unknown input, or
                a type mismatch between an upstream output and the input it feeds.
        """
        if not callable(agent):
            raise ConfigurationError(f"graph {self.name!r}: a node needs an agent, got {agent!r}")
        node_name = name or getattr(agent, "__name__", None) or repr(agent)
        if node_name in self.nodes:
            raise ConfigurationError(
                f"graph {self.name!r} already has a node {node_name!r}; pass add(..., name=...)"
            )
        mapping = dict(inputs or {})
        upstream = [self._node_name(a) for a in after]
        for parameter, source in mapping.items():
            if not isinstance(source, Input | From):
                raise ConfigurationError(
                    f"graph {self.name!r}, node {node_name!r}: input {parameter!r} must be "
                    f"Input('name') or From('node'[, 'field']), got {source!r}"
                )
            if isinstance(source, From) and source.node not in upstream:
                upstream.append(source.node)
        for dependency in upstream:
            if dependency not in self.nodes:
                raise ConfigurationError(
                    f"graph {self.name!r}, node {node_name!r} depends on {dependency!r}, which is "
                    "not in the graph yet; add nodes after the nodes they depend on (a graph "
                    "cannot have cycles)"
                )
        self._check_inputs(node_name, agent, mapping)
        self.nodes[node_name] = Node(node_name, agent, tuple(upstream), mapping)
        return node_name

    def _node_name(self, ref: str | Callable[..., Any]) -> str:
        if isinstance(ref, str):
            return ref
        for node in self.nodes.values():
            if node.agent is ref:
                return node.name
        return getattr(ref, "__name__", repr(ref))

    def _check_inputs(
        self, node_name: str, agent: Callable[..., Any], mapping: dict[str, Source]
    ) -> None:
        try:
            parameters = list(inspect.signature(agent).parameters.values())[1:]
        except (TypeError, ValueError):
            return
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        names = {p.name for p in parameters}
        for parameter in parameters:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if parameter.default is inspect.Parameter.empty and parameter.name not in mapping:
                raise ConfigurationError(
                    f"graph {self.name!r}, node {node_name!r}: input {parameter.name!r} is not "
                    f"mapped; pass inputs={{{parameter.name!r}: Input(...) or From(...)}}"
                )
        for key in mapping:
            if key not in names and not accepts_any:
                raise ConfigurationError(
                    f"graph {self.name!r}, node {node_name!r}: the agent takes no input {key!r} "
                    f"(it takes {sorted(names)})"
                )
        hints = _hints(agent)
        for key, source in mapping.items():
            if isinstance(source, From):
                produced = _produced_type(self.nodes[source.node].agent, source, self.name)
                wanted = hints.get(key)
                if _incompatible(produced, wanted):
                    raise ConfigurationError(
                        f"graph {self.name!r}, node {node_name!r}: input {key!r} wants "
                        f"{_label(wanted)} but {source.node!r} produces {_label(produced)}"
                        + (f" for field {source.field!r}" if source.field else "")
                    )

    def check(self, registered: Callable[[Callable[..., Any]], bool]) -> None:
        """Refuse a graph with agents the app does not know.

        Raises:
            ConfigurationError: A node's agent is not registered with the app.
        """
        if not self.nodes:
            raise ConfigurationError(f"graph {self.name!r} has no nodes")
        for node in self.nodes.values():
            if not registered(node.agent):
                raise ConfigurationError(
                    f"graph {self.name!r}, node {node.name!r}: its agent is not registered with "
                    "this app; decorate it with @app.agent"
                )

    def order(self) -> list[str]:
        """Node names in an order where every node comes after its dependencies."""
        return list(self.nodes)

    def downstream(self, node: str) -> set[str]:
        """Every node that depends, directly or not, on ``node``."""
        found: set[str] = set()
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for other in self.nodes.values():
                if current in other.after and other.name not in found:
                    found.add(other.name)
                    frontier.append(other.name)
        return found

    @property
    def is_async(self) -> bool:
        """Whether any node is an async agent (informational)."""
        return any(is_async_callable(n.agent) for n in self.nodes.values())


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # annotations that do not resolve are simply not checked
        return {}


def _produced_type(agent: Callable[..., Any], source: From, graph: str) -> Any:
    produced = _hints(agent).get("return")
    if source.field is None or produced is None:
        return produced
    fields = _fields_of(produced)
    if fields is None:
        return None
    if source.field not in fields:
        raise ConfigurationError(
            f"graph {graph!r}: {source.node!r} returns {_label(produced)}, which has no field "
            f"{source.field!r} (it has {sorted(fields)})"
        )
    return fields[source.field]


def _fields_of(kind: Any) -> dict[str, Any] | None:
    if isinstance(kind, type):
        model_fields = getattr(kind, "model_fields", None)
        if isinstance(model_fields, dict):
            return {k: getattr(v, "annotation", None) for k, v in model_fields.items()}
        try:
            hints = typing.get_type_hints(kind)
        except Exception:
            return None
        if hints and (hasattr(kind, "__dataclass_fields__") or typing.is_typeddict(kind)):
            return hints
    return None


def _incompatible(produced: Any, wanted: Any) -> bool:
    if produced is None or wanted is None or wanted is Any or produced is Any:
        return False
    if isinstance(produced, type) and isinstance(wanted, type):
        try:
            return not issubclass(produced, wanted)
        except TypeError:
            return False
    return False


def _label(kind: Any) -> str:
    return getattr(kind, "__name__", None) or repr(kind)
