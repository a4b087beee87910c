"""Aggregates of the ledger for dashboards and metrics, as frozen value objects.

Stores compute them with a few plain ``GROUP BY`` queries (see
:meth:`~seawall.ledger.Store.run_stats`, :meth:`~seawall.ledger.Store.step_latency` and
:meth:`~seawall.ledger.Store.backlog`); everything finer (percentiles, chart series) is derived
here, in Python, from their rows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

LATENCY_BOUNDS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""Upper bounds (seconds) of the latency histogram buckets: OpenTelemetry's GenAI
``gen_ai.client.operation.duration`` boundaries, preceded by sub-10 ms ones for local tools."""


@dataclass(frozen=True, slots=True)
class RunStats:
    """Runs of one agent with one outcome, submitted within one time bucket.

    Attributes:
        bucket: Index of the time bucket (``0`` for the bucket starting at the query's
            ``since``; always ``0`` when the query has no bucket width).
        agent: The agent (or graph) name.
        status: The runs' status.
        error_class: Their error class (``None`` for runs without one).
        runs: How many runs.
        retries: Attempts beyond the first, summed over those runs.
        input_tokens: Input tokens they recorded.
        output_tokens: Output tokens they recorded.
        cost_usd: Cost they recorded (runs with an unknown cost count as zero).
    """

    bucket: int
    agent: str
    status: str
    error_class: str | None
    runs: int
    retries: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class StepLatency:
    """Latency of the finished calls of one tool (or model), as a histogram.

    Attributes:
        kind: The step kind (``tool``, or ``llm`` for model calls journaled as such).
        name: The tool (or model).
        calls: Finished calls.
        errors: Calls that failed.
        retries: Tries beyond the first, summed (a tool's own retry policy).
        total_seconds: Sum of their durations.
        bounds: Upper bounds of the histogram buckets, in seconds.
        cumulative: Calls that took at most each bound (same length as ``bounds``).
    """

    kind: str
    name: str
    calls: int
    errors: int
    retries: int
    total_seconds: float
    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]

    def quantile(self, q: float) -> float | None:
        """Estimate the ``q`` quantile (0 < q < 1) from the histogram, or ``None`` with no calls.

        The estimate interpolates linearly inside the bucket holding the rank, as Prometheus's
        ``histogram_quantile`` does; above the last bound it returns that bound.
        """
        if self.calls == 0:
            return None
        rank = q * self.calls
        lower, below = 0.0, 0
        for bound, count in zip(self.bounds, self.cumulative, strict=True):
            if count >= rank:
                inside = count - below
                if inside == 0:
                    return bound
                return lower + (bound - lower) * (rank - below) / inside
            lower, below = bound, count
        return self.bounds[-1] if self.bounds else None

    @property
    def counts(self) -> tuple[int, ...]:
        """Calls per bucket (not cumulative), the last one counting calls above every bound."""
        edges = (0, *self.cumulative)
        return (*(b - a for a, b in itertools.pairwise(edges)), self.calls - edges[-1])


@dataclass(frozen=True, slots=True)
class QueueCount:
    """Items waiting in one of the ledger's queues.

    Attributes:
        queue: ``dlq`` (pending dead letters) or ``handoff`` (open hand-offs).
        agent: The agent of the runs concerned.
        label: The error class (DLQ; empty when unknown) or the hand-off kind.
        count: How many.
    """

    queue: str
    agent: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """The model calls recorded (``ctx.record_usage``) by the runs of a range, for one model.

    Attributes:
        model: The model's name.
        calls: Calls recorded.
        input_tokens: Their input tokens (calls of unknown usage count as zero).
        output_tokens: Their output tokens.
        cost_usd: Their known cost: a lower bound when ``unpriced_calls`` is not zero.
        unpriced_calls: Calls whose cost is unknown (no price for the model).
    """

    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_calls: int


@dataclass(frozen=True, slots=True)
class ErrorCount:
    """Runs of one time bucket that ended with one error message.

    Attributes:
        bucket: Index of the time bucket (as in :class:`RunStats`).
        agent: The agent.
        error_class: Their error class.
        error_type: The type name of their final error.
        error_message: The message of their final error.
        runs: How many runs.
    """

    bucket: int
    agent: str
    error_class: str | None
    error_type: str | None
    error_message: str
    runs: int


@dataclass(frozen=True, slots=True)
class UnpricedCount:
    """Runs of one agent with model calls of unknown price: their cost is a lower bound.

    Attributes:
        agent: The agent.
        runs: Runs with at least one unpriced call.
        calls: Unpriced calls of those runs.
    """

    agent: str
    runs: int
    calls: int
