"""Prometheus metrics computed from the ledger, so every process's runs count.

A scrape asks the ledger (one query per family, over the counts the ledger keeps as runs are
written, see :class:`~seawall.ledger.Store`) and yields counters, gauges and histograms through
``prometheus-client``'s custom-collector API; no process keeps counters in memory, so a crashed
worker's runs are still counted and a restart loses nothing. Names are the OpenTelemetry
instrument names of :mod:`seawall.observe.semconv` (GenAI ones where they exist) as a Prometheus
exporter writes them (``.`` to ``_``, ``_seconds``, ``_total``):
``gen_ai.client.operation.duration`` is ``gen_ai_client_operation_duration_seconds``,
``seawall.tool.duration`` is ``seawall_tool_duration_seconds``. Scrape either this exposition or
an OpenTelemetry Prometheus exporter for the same runs, not both: this one counts every process.

Requires the ``metrics`` extra (``pip install 'seawall[metrics]'``); the ``dashboard`` extra
includes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall.errors import ConfigurationError
from seawall.ledger import LATENCY_BOUNDS
from seawall.observe import semconv as sc

if TYPE_CHECKING:
    from collections.abc import Iterator

    from seawall.ledger import QueueCount, RunStats, StepLatency, Store
    from seawall.policies.breaker import BreakerState

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigurationError(
        "Prometheus metrics need the prometheus-client package: pip install 'seawall[metrics]'"
    ) from exc

__all__ = ["CONTENT_TYPE", "LedgerCollector", "exposition"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The HTTP ``Content-Type`` of :func:`exposition`'s text."""

_BREAKER_STATES = ("closed", "half_open", "open")


def _name(instrument: str) -> str:
    """A metric's Prometheus name from its OpenTelemetry instrument name (``a.b`` -> ``a_b``)."""
    return instrument.replace(".", "_")


class LedgerCollector:
    """A ``prometheus_client`` collector reading the ledger at each scrape.

    Args:
        store: The ledger to read.

    Example:
        >>> from prometheus_client import REGISTRY  # doctest: +SKIP
        >>> REGISTRY.register(LedgerCollector(app.store))  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        """Return no descriptions: the families depend on the ledger, read at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family, computed from the ledger now."""
        stats = self._store.run_stats()
        yield from _runs(stats)
        yield from _calls(self._store.step_latency(bounds=LATENCY_BOUNDS), stats)
        yield from _breakers(self._store.list_breakers())
        yield from _queues(self._store.backlog())


def _runs(stats: list[RunStats]) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        _name(sc.RUNS),
        "Runs recorded in the ledger, by agent, status and error class.",
        labels=["gen_ai_agent_name", "seawall_status", "seawall_error_class"],
    )
    tokens = CounterMetricFamily(
        "seawall_tokens",
        "Tokens recorded by runs, by agent and token type (gen_ai.token.type).",
        labels=["gen_ai_agent_name", "gen_ai_token_type"],
    )
    cost = CounterMetricFamily(
        "seawall_cost_usd",
        "Cost recorded by runs, in US dollars, by agent.",
        labels=["gen_ai_agent_name"],
    )
    per_agent: dict[str, tuple[int, int, float]] = {}
    for row in stats:
        runs.add_metric([row.agent, row.status, row.error_class or ""], row.runs)
        tokens_in, tokens_out, dollars = per_agent.get(row.agent, (0, 0, 0.0))
        per_agent[row.agent] = (
            tokens_in + row.input_tokens,
            tokens_out + row.output_tokens,
            dollars + row.cost_usd,
        )
    for agent, (tokens_in, tokens_out, dollars) in sorted(per_agent.items()):
        tokens.add_metric([agent, "input"], tokens_in)
        tokens.add_metric([agent, "output"], tokens_out)
        cost.add_metric([agent], dollars)
    yield from (runs, tokens, cost)


def _calls(latency: list[StepLatency], stats: list[RunStats]) -> Iterator[Metric]:
    tools = HistogramMetricFamily(
        _name(sc.TOOL_DURATION) + "_seconds",
        "Duration of finished tool calls (execute_tool), by tool.",
        labels=["gen_ai_tool_name"],
    )
    models = HistogramMetricFamily(
        _name(sc.CLIENT_OPERATION_DURATION) + "_seconds",
        "Duration of finished model calls (tools declared llm=True), by the tool that made them.",
        labels=["gen_ai_operation_name", "gen_ai_tool_name"],
    )
    errors = CounterMetricFamily(
        "seawall_tool_errors",
        "Tool and model calls that ended failed, by tool.",
        labels=["gen_ai_tool_name"],
    )
    retries = CounterMetricFamily(
        _name(sc.RETRIES),
        "Retries: run attempts beyond the first (attempt, by agent) and tries beyond the "
        "first of tool and model calls (step, by tool).",
        labels=["seawall_kind", "name"],
    )
    retried: dict[str, int] = {}
    for group in stats:
        retried[group.agent] = retried.get(group.agent, 0) + group.retries
    for agent, count in sorted(retried.items()):
        retries.add_metric(["attempt", agent], count)
    for row in latency:
        buckets = [
            (_le(bound), count) for bound, count in zip(row.bounds, row.cumulative, strict=True)
        ]
        buckets.append(("+Inf", row.calls))
        if row.kind == "llm":
            models.add_metric([sc.CHAT, row.name], buckets, row.total_seconds)
        else:
            tools.add_metric([row.name], buckets, row.total_seconds)
        errors.add_metric([row.name], row.errors)
        retries.add_metric(["step", row.name], row.retries)
    yield from (tools, models, errors, retries)


def _breakers(breakers: list[BreakerState]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "seawall_breaker_state",
        "Circuit breakers: 1 for the state each is in, 0 for the others.",
        labels=["seawall_breaker", "seawall_kind", "seawall_state"],
    )
    open_now = GaugeMetricFamily("seawall_breakers_open", "Circuit breakers open now.")
    opened = 0
    for breaker in breakers:
        for name in _BREAKER_STATES:
            state.add_metric([breaker.name, breaker.kind, name], int(breaker.state == name))
        opened += breaker.state == "open"
    open_now.add_metric([], opened)
    yield from (state, open_now)


def _queues(backlog: list[QueueCount]) -> Iterator[Metric]:
    dlq = GaugeMetricFamily(
        "seawall_dlq_depth",
        "Dead-letter entries waiting for a redrive, by agent and error class.",
        labels=["gen_ai_agent_name", "seawall_error_class"],
    )
    handoffs = GaugeMetricFamily(
        "seawall_handoffs_waiting",
        "Hand-offs waiting for a person's decision, by agent and kind.",
        labels=["gen_ai_agent_name", "seawall_handoff_kind"],
    )
    for row in backlog:
        target = dlq if row.queue == "dlq" else handoffs
        target.add_metric([row.agent, row.label], row.count)
    yield from (dlq, handoffs)


def exposition(store: Store) -> str:
    """Return the ledger's metrics in the Prometheus text exposition format.

    Args:
        store: The ledger to read.

    Returns:
        The text a Prometheus server scrapes (``Content-Type``: :data:`CONTENT_TYPE`).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(store))
    return generate_latest(registry).decode("utf-8")


def _le(bound: float) -> str:
    """Format a bucket bound the way Prometheus clients do (``0.005``, ``1.0``)."""
    return repr(float(bound))
