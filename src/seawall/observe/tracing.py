"""OpenTelemetry traces and metrics of runs, through the OpenTelemetry API only.

Seawall depends on ``opentelemetry-api``; the SDK and exporters are the user's choice
(``pip install 'seawall[otel]'`` plus an exporter). With no SDK configured the API hands out
non-recording tracers and meters; we check that once per run and then skip every per-step call,
so an untraced step costs one attribute test.

Spans (GenAI semantic-convention names, see :mod:`seawall.observe.semconv`):

- ``invoke_workflow {graph}`` per graph run, parent of its node runs;
- ``invoke_agent {agent}`` per agent run, with one ``seawall.attempt`` event per attempt
  (outcome, error class, backoff before the next) and a link to the original run's span
  when the run is a replay;
- ``execute_tool {tool}`` per live tool call and ``chat {model}`` per live LLM call, with one
  ``seawall.retry`` event per failed try (error type, backoff wait); an LLM span stays open
  until the call's usage is recorded so it carries ``gen_ai.usage.*``;
- ``seawall.verify`` per verification gate and output verification;
- ``seawall.handoff`` when a run is handed to a person.

Sync agents run in worker threads that do not inherit the caller's OpenTelemetry context, so
step spans name their parent explicitly (the run's span) instead of relying on the current
context.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import metrics, trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from seawall.observe import semconv as sc

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from opentelemetry.context import Context as OtelContext
    from opentelemetry.trace import Span

    from seawall.ledger import RunRecord, Store
    from seawall.runtime.registry import ToolSpec

_SCOPE: Final = "seawall"
_NS: Final = 1_000_000_000


def _configured(provider: object, proxy: type) -> bool:
    """Whether an SDK provider is installed (not the API's proxy or no-op one)."""
    return not isinstance(provider, proxy) and "NoOp" not in type(provider).__name__


@dataclass(eq=False)
class Telemetry:
    """An app's tracer and instruments; hands out a :class:`RunTrace` per traced run.

    Attributes:
        version: Seawall's version (the instrumentation scope's).
        tracer_provider: Use this provider instead of the global one.
        meter_provider: Use this provider instead of the global one.
        store: The ledger the gauges (open breakers, DLQ depth, hand-offs waiting) read.
        active: The traces of the runs in progress, by run id.
    """

    version: str
    tracer_provider: trace.TracerProvider | None = field(default=None, kw_only=True)
    meter_provider: metrics.MeterProvider | None = field(default=None, kw_only=True)
    store: Store | None = field(default=None, kw_only=True)
    """The ledger the gauges read; a forked child points it at its own connection."""
    active: dict[str, RunTrace] = field(default_factory=dict, init=False)
    _tracer: trace.Tracer | None = field(default=None, init=False)
    _tracer_of: object = field(default=None, init=False)
    """The provider ``_tracer`` came from (the global one may be replaced at any time)."""
    _instruments: Instruments | None = field(default=None, init=False)
    _instruments_of: object = field(default=None, init=False)
    """The provider ``_instruments`` came from."""

    def enabled(self) -> bool:
        """Whether an SDK is configured for traces or metrics (checked once per run)."""
        return self._tracer_now() is not None or self._instruments_now() is not None

    def _tracer_now(self) -> trace.Tracer | None:
        provider = self.tracer_provider or trace.get_tracer_provider()
        if provider is not self._tracer_of:
            self._tracer_of = provider
            self._tracer = (
                provider.get_tracer(_SCOPE, self.version)
                if _configured(provider, trace.ProxyTracerProvider)
                else None
            )
        return self._tracer

    def _instruments_now(self) -> Instruments | None:
        provider = self.meter_provider or metrics.get_meter_provider()
        if provider is not self._instruments_of:
            self._instruments_of = provider
            self._instruments = (
                Instruments(
                    provider.get_meter(_SCOPE, self.version),
                    None if self.store is None else self._current_store,
                )
                if _configured(provider, _proxy_meter_provider())
                else None
            )
        return self._instruments

    def _current_store(self) -> Store | None:
        return self.store

    @contextlib.contextmanager
    def run(self, store: Store, run_id: str, *, graph: bool) -> Iterator[RunTrace | None]:
        """Trace the run ``run_id`` for the block; ``None`` when neither traces nor metrics are on.

        The span ends with the fields the ledger recorded when the block ends, or with the
        exception that left it.
        """
        record = store.get_run(run_id) if self.enabled() else None
        traced = None if record is None else self._start(store, record, graph=graph)
        if traced is None:
            yield None
            return
        failed: BaseException | None = None
        try:
            yield traced
        except BaseException as exc:
            failed = exc
            raise
        finally:
            self.active.pop(run_id, None)
            traced.end(store.get_run(run_id), failed)

    def _start(self, store: Store, run: RunRecord, *, graph: bool) -> RunTrace | None:
        """Open the span of a run, or return ``None`` when neither traces nor metrics are on.

        The span's parent is the span of the run's parent run (a graph run, or the agent that
        spawned it) when that one is traced in this process; a replay links to the original
        run's span when the ledger recorded it.
        """
        tracer = self._tracer_now()
        instruments = self._instruments_now()
        if tracer is None and instruments is None:
            return None
        name = (run.workflow or run.agent) if graph else run.agent
        operation = sc.INVOKE_WORKFLOW if graph else sc.INVOKE_AGENT
        attributes: dict[str, Any] = {
            sc.OPERATION_NAME: operation,
            sc.RUN_ID: run.run_id,
            sc.WORKFLOW if graph else sc.AGENT_NAME: name,
        }
        if run.parent_run_id is not None:
            attributes[sc.PARENT_RUN_ID] = run.parent_run_id
        if run.node is not None:
            attributes[sc.NODE] = run.node
        links = []
        if run.replay_of is not None:
            attributes[sc.REPLAY_OF] = run.replay_of
            if run.replay_mode is not None:
                attributes[sc.REPLAY_MODE] = run.replay_mode
            original = store.get_run(run.replay_of)
            if original is not None and original.trace_id and original.span_id:
                links.append(
                    Link(
                        _remote(original.trace_id, original.span_id), {sc.REPLAY_OF: run.replay_of}
                    )
                )
        span: Span = trace.INVALID_SPAN
        if tracer is not None:
            parent = None if run.parent_run_id is None else self.active.get(run.parent_run_id)
            span = tracer.start_span(
                f"{operation} {name}",
                context=None if parent is None else parent.context,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=links,
            )
            found = span.get_span_context()
            if found.is_valid:
                store.set_trace(run.run_id, f"{found.trace_id:032x}", f"{found.span_id:016x}")
        traced = RunTrace(tracer, instruments, span, run.run_id, name)
        self.active[run.run_id] = traced
        return traced


class Instruments:
    """The OpenTelemetry metric instruments Seawall records to.

    The gauges (open breakers, DLQ depth, hand-offs waiting) are read from the ledger when the
    SDK collects them, so they count every process's state, not only this one's.
    """

    def __init__(
        self, meter: metrics.Meter, store: Callable[[], Store | None] | None = None
    ) -> None:
        self.llm_duration = meter.create_histogram(
            sc.CLIENT_OPERATION_DURATION, unit="s", description="Duration of LLM calls"
        )
        self.token_usage = meter.create_histogram(
            sc.CLIENT_TOKEN_USAGE, unit="{token}", description="Tokens used per LLM call"
        )
        self.tool_duration = meter.create_histogram(
            sc.TOOL_DURATION, unit="s", description="Duration of tool calls"
        )
        self.runs = meter.create_counter(
            sc.RUNS, unit="{run}", description="Runs that ended, by agent, status and class"
        )
        self.retries = meter.create_counter(
            sc.RETRIES, unit="{retry}", description="Retried tool calls and run attempts"
        )
        self.cost = meter.create_counter(
            sc.COST, unit="USD", description="Cost of LLM calls with a known price"
        )
        if store is not None:
            meter.create_observable_gauge(
                sc.BREAKERS_OPEN,
                callbacks=[lambda _options: _open_breakers(store())],
                unit="{breaker}",
                description="Circuit breakers open now",
            )
            meter.create_observable_gauge(
                sc.DLQ_DEPTH,
                callbacks=[lambda _options: _backlog(store(), "dlq")],
                unit="{run}",
                description="Dead-letter entries waiting for a redrive",
            )
            meter.create_observable_gauge(
                sc.HANDOFFS_WAITING,
                callbacks=[lambda _options: _backlog(store(), "handoff")],
                unit="{handoff}",
                description="Hand-offs waiting for a person",
            )


@dataclass(slots=True, eq=False)
class RunTrace:
    """The span of one run and the spans of its steps.

    Attributes:
        tracer: The tracer of step spans (``None``: metrics only).
        instruments: The metric instruments (``None``: traces only).
        span: The run's span.
        run_id: The run.
        name: The agent or graph.
        context: The OpenTelemetry context of the run's span (step spans' parent).
    """

    tracer: trace.Tracer | None
    instruments: Instruments | None
    span: Span
    run_id: str
    name: str
    context: OtelContext = field(init=False)
    _held: Span | None = field(default=None, init=False)
    _held_end: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.context = trace.set_span_in_context(self.span)

    # -- steps ------------------------------------------------------------------------------

    def start_step(self, spec: ToolSpec, seq: int, key: str, kwargs: dict[str, Any]) -> Span:
        """Open the span of a live tool or LLM call."""
        self.release()
        if self.tracer is None:
            return trace.INVALID_SPAN
        attributes: dict[str, Any] = {sc.RUN_ID: self.run_id, sc.STEP: seq}
        if spec.llm:
            model = str(kwargs.get("model", spec.name))
            attributes[sc.OPERATION_NAME] = sc.CHAT
            attributes[sc.REQUEST_MODEL] = model
            name = f"{sc.CHAT} {model}"
            kind = SpanKind.CLIENT
        else:
            attributes[sc.OPERATION_NAME] = sc.EXECUTE_TOOL
            attributes[sc.TOOL_NAME] = spec.name
            attributes[sc.TOOL_CALL_ID] = key
            attributes[sc.MUTATING] = spec.mutating
            name = f"{sc.EXECUTE_TOOL} {spec.name}"
            kind = SpanKind.INTERNAL
        if spec.mutating:
            attributes[sc.IDEMPOTENCY_KEY] = key
        return self.tracer.start_span(name, context=self.context, kind=kind, attributes=attributes)

    def retry(self, span: Span, tries: int, error: BaseException, delay: float) -> None:
        """Note a failed try that will be retried after ``delay`` seconds."""
        span.add_event(
            sc.RETRY_EVENT,
            {sc.TRIES: tries, sc.ERROR_TYPE: type(error).__name__, sc.BACKOFF_SECONDS: delay},
        )
        if self.instruments is not None:
            self.instruments.retries.add(1, {"seawall.kind": "step"})

    def end_step(
        self,
        span: Span,
        spec: ToolSpec,
        kwargs: dict[str, Any],
        duration: float,
        tries: int,
        error: BaseException | None,
    ) -> None:
        """Close a step's span (an LLM call's waits for its usage) and record its duration."""
        if self.instruments is not None:
            if spec.llm:
                attributes = {
                    sc.OPERATION_NAME: sc.CHAT,
                    sc.REQUEST_MODEL: str(kwargs.get("model", spec.name)),
                }
                if error is not None:
                    attributes[sc.ERROR_TYPE] = type(error).__name__
                self.instruments.llm_duration.record(duration, attributes)
            else:
                attributes = {sc.TOOL_NAME: spec.name}
                if error is not None:
                    attributes[sc.ERROR_TYPE] = type(error).__name__
                self.instruments.tool_duration.record(duration, attributes)
        if not span.is_recording():
            return
        span.set_attribute(sc.TRIES, tries)
        if error is not None:
            _fail(span, error)
        if spec.llm and error is None:
            self._held = span
            self._held_end = time.time_ns()
            return
        span.end()

    def usage(
        self, model: str, input_tokens: int | None, output_tokens: int | None, cost: float | None
    ) -> None:
        """Put an LLM call's usage on its span (then closed) and on the token metrics."""
        held = self._held
        if held is not None:
            if input_tokens is not None:
                held.set_attribute(sc.USAGE_INPUT_TOKENS, input_tokens)
            if output_tokens is not None:
                held.set_attribute(sc.USAGE_OUTPUT_TOKENS, output_tokens)
            if cost is not None:
                held.set_attribute(sc.COST_USD, cost)
            self.release()
        instruments = self.instruments
        if instruments is None:
            return
        for kind, count in (("input", input_tokens), ("output", output_tokens)):
            if count is not None:
                instruments.token_usage.record(
                    count,
                    {sc.OPERATION_NAME: sc.CHAT, sc.REQUEST_MODEL: model, sc.TOKEN_TYPE: kind},
                )
        if cost is not None:
            instruments.cost.add(cost, {sc.REQUEST_MODEL: model})

    def release(self) -> None:
        """Close an LLM call's span still waiting for usage, at the time the call ended."""
        held = self._held
        if held is not None:
            self._held = None
            held.end(end_time=self._held_end)

    # -- gates, attempts, hand-offs, the end --------------------------------------------------

    def verification(
        self, kind: str, verdicts: list[dict[str, Any]], start: float, end: float
    ) -> None:
        """Record a verification (a gate, the output check or a read-back) as a span."""
        self.release()
        if self.tracer is None:
            return
        passed = all(v.get("passed") for v in verdicts)
        span = self.tracer.start_span(
            sc.VERIFY_SPAN,
            context=self.context,
            start_time=int(start * _NS),
            attributes={
                sc.RUN_ID: self.run_id,
                "seawall.verification": kind,
                sc.VERIFIERS: [str(v.get("name")) for v in verdicts],
                sc.PASSED: passed,
            },
        )
        if not passed:
            failed = "; ".join(
                f"{v.get('name')}: {v.get('message')}" for v in verdicts if not v.get("passed")
            )
            span.set_status(Status(StatusCode.ERROR, failed[:500]))
            span.set_attribute(sc.ERROR_TYPE, "VerificationError")
        span.end(end_time=int(end * _NS))

    def attempt(
        self,
        attempt: int,
        outcome: str,
        error: BaseException | None,
        error_class: str | None,
        delay: float | None,
    ) -> None:
        """Note how an attempt ended (and the backoff before the next, if any)."""
        self.release()
        attributes: dict[str, Any] = {sc.ATTEMPT: attempt, "seawall.outcome": outcome}
        if error is not None:
            attributes[sc.ERROR_TYPE] = type(error).__name__
        if error_class is not None:
            attributes[sc.ERROR_CLASS] = error_class
        if delay is not None:
            attributes[sc.BACKOFF_SECONDS] = delay
            if self.instruments is not None:
                self.instruments.retries.add(1, {"seawall.kind": "attempt"})
        self.span.add_event(sc.ATTEMPT_EVENT, attributes)

    def handoff(self, handoff_id: str, kind: str, reason: str) -> None:
        """Record that the run was handed to a person."""
        self.release()
        if self.tracer is None:
            return
        span = self.tracer.start_span(
            sc.HANDOFF_SPAN,
            context=self.context,
            attributes={
                sc.RUN_ID: self.run_id,
                sc.HANDOFF_ID: handoff_id,
                sc.HANDOFF_KIND: kind,
                "seawall.reason": reason[:500],
            },
        )
        span.end()

    def end(self, run: RunRecord | None, error: BaseException | None = None) -> None:
        """Close the run's span with its final fields, and count the run."""
        self.release()
        span = self.span
        if error is not None:
            _fail(span, error)
        elif run is not None and run.end_time is not None:
            status = run.status.value
            error_class = None if run.error_class is None else run.error_class.value
            attributes: dict[str, Any] = {
                sc.STATUS: status,
                sc.ATTEMPTS: run.attempts,
                sc.USAGE_INPUT_TOKENS: run.input_tokens,
                sc.USAGE_OUTPUT_TOKENS: run.output_tokens,
            }
            if run.cost_usd is not None:
                attributes[sc.COST_USD] = run.cost_usd
            if error_class is not None:
                attributes[sc.ERROR_CLASS] = error_class
            if run.failure_cause is not None:
                attributes[sc.FAILURE_CAUSE] = run.failure_cause.value
            if run.error_type is not None:
                attributes[sc.ERROR_TYPE] = run.error_type
                span.set_status(Status(StatusCode.ERROR, (run.error_message or "")[:500]))
            span.set_attributes(attributes)
            if self.instruments is not None:
                counted = {sc.AGENT_NAME: self.name, sc.STATUS: status}
                if error_class is not None:
                    counted[sc.ERROR_CLASS] = error_class
                self.instruments.runs.add(1, counted)
        span.end()


def _open_breakers(store: Store | None) -> list[metrics.Observation]:
    if store is None:
        return []
    found: dict[str, int] = {}
    for breaker in store.list_breakers():
        found[breaker.kind] = found.get(breaker.kind, 0) + (breaker.state == "open")
    return [metrics.Observation(count, {"seawall.kind": kind}) for kind, count in found.items()]


def _backlog(store: Store | None, queue: str) -> list[metrics.Observation]:
    if store is None:
        return []
    label = sc.ERROR_CLASS if queue == "dlq" else sc.HANDOFF_KIND
    return [
        metrics.Observation(row.count, {sc.AGENT_NAME: row.agent, label: row.label})
        for row in store.backlog()
        if row.queue == queue
    ]


def _fail(span: Span, error: BaseException) -> None:
    span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
    span.set_status(Status(StatusCode.ERROR, str(error)[:500]))


def _remote(trace_id: str, span_id: str) -> SpanContext:
    return SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def _proxy_meter_provider() -> type:
    # The API's placeholder provider is private; find it through the public default.
    from opentelemetry.metrics import _internal  # noqa: PLC0415 - see above

    proxy: type = _internal._ProxyMeterProvider  # noqa: SLF001
    return proxy
