"""Prometheus metrics computed from the ledger, so every process's runs count.

A scrape asks the ledger (one ``GROUP BY`` per family, see :class:`~seawall.ledger.Store`) and
yields counters, gauges and histograms through ``prometheus-client``'s custom-collector API; no
process keeps counters in memory, so a crashed worker's runs are still counted and a restart
loses nothing. Names follow Prometheus conventions (``_total``, ``_seconds``) and OpenTelemetry's
GenAI metric names where one exists (``gen_ai.client.operation.duration`` becomes
``gen_ai_client_operation_duration_seconds``, ``gen_ai.client.token.usage`` gives the
``gen_ai_token_type`` label).

Requires the ``metrics`` extra (``pip install 'seawall[metrics]'``); the ``dashboard`` extra
includes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seawall.errors import ConfigurationError
from seawall.ledger import LATENCY_BOUNDS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from seawall.ledger import Store

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
        yield from self._runs()
        yield from self._calls()
        yield from self._breakers()
        yield from self._queues()

    def _runs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "seawall_runs",
            "Runs recorded in the ledger, by agent, status and error class.",
            labels=["agent", "status", "error_class"],
        )
        retries = CounterMetricFamily(
            "seawall_run_retries", "Attempts beyond the first, by agent.", labels=["agent"]
        )
        tokens = CounterMetricFamily(
            "seawall_tokens",
            "Tokens recorded by runs, by agent and token type (gen_ai.token.type).",
            labels=["agent", "gen_ai_token_type"],
        )
        cost = CounterMetricFamily(
            "seawall_cost_usd", "Cost recorded by runs, in US dollars, by agent.", labels=["agent"]
        )
        per_agent: dict[str, list[Any]] = {}
        for row in self._store.run_stats():
            runs.add_metric([row.agent, row.status, row.error_class or ""], row.runs)
            totals = per_agent.setdefault(row.agent, [0, 0, 0, 0.0])
            totals[0] += row.retries
            totals[1] += row.input_tokens
            totals[2] += row.output_tokens
            totals[3] += row.cost_usd
        for agent, (retried, tokens_in, tokens_out, dollars) in sorted(per_agent.items()):
            retries.add_metric([agent], retried)
            tokens.add_metric([agent, "input"], tokens_in)
            tokens.add_metric([agent, "output"], tokens_out)
            cost.add_metric([agent], dollars)
        yield from (runs, retries, tokens, cost)

    def _calls(self) -> Iterator[Metric]:
        tools = HistogramMetricFamily(
            "seawall_tool_call_duration_seconds",
            "Duration of finished tool calls (execute_tool), by tool.",
            labels=["gen_ai_tool_name"],
        )
        models = HistogramMetricFamily(
            "gen_ai_client_operation_duration_seconds",
            "Duration of finished model calls journaled as llm steps, by model.",
            labels=["gen_ai_request_model"],
        )
        errors = CounterMetricFamily(
            "seawall_tool_call_errors",
            "Tool and model calls that ended failed, by kind and name.",
            labels=["kind", "name"],
        )
        retries = CounterMetricFamily(
            "seawall_tool_call_retries",
            "Tries beyond the first made by a tool's own retry policy, by kind and name.",
            labels=["kind", "name"],
        )
        for row in self._store.step_latency(bounds=LATENCY_BOUNDS):
            buckets = [
                (_le(bound), count) for bound, count in zip(row.bounds, row.cumulative, strict=True)
            ]
            buckets.append(("+Inf", row.calls))
            family = models if row.kind == "llm" else tools
            family.add_metric([row.name], buckets, row.total_seconds)
            errors.add_metric([row.kind, row.name], row.errors)
            retries.add_metric([row.kind, row.name], row.retries)
        yield from (tools, models, errors, retries)

    def _breakers(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "seawall_breaker_state",
            "Circuit breakers: 1 for the state each is in, 0 for the others.",
            labels=["breaker", "kind", "state"],
        )
        open_now = GaugeMetricFamily("seawall_breakers_open", "Circuit breakers open now.")
        opened = 0
        for breaker in self._store.list_breakers():
            for name in _BREAKER_STATES:
                state.add_metric([breaker.name, breaker.kind, name], int(breaker.state == name))
            opened += breaker.state == "open"
        open_now.add_metric([], opened)
        yield from (state, open_now)

    def _queues(self) -> Iterator[Metric]:
        dlq = GaugeMetricFamily(
            "seawall_dlq_depth",
            "Dead-letter entries waiting for a redrive, by agent and error class.",
            labels=["agent", "error_class"],
        )
        handoffs = GaugeMetricFamily(
            "seawall_handoffs_waiting",
            "Hand-offs waiting for a person's decision, by agent and kind.",
            labels=["agent", "kind"],
        )
        for row in self._store.backlog():
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
