"""The Seawall app: configuration, the ledger, registered agents and tools, run entry points."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar, overload

from seawall import _payload
from seawall._backpressure import Slots
from seawall._breakers import Breakers
from seawall._budgets import RetryBudgets
from seawall._children import Children
from seawall._context import current_context
from seawall._coordinator import run_graph
from seawall._dlq import DeadLetterQueue
from seawall._drift import decide
from seawall._executor import Executor, LocalExecutor, RunHandle, wait_for_run
from seawall._failures import MISUSE, ErrorClass, FailureCause, RunStatus
from seawall._graph import Graph
from seawall._ids import new_run_id
from seawall._lease import Leases
from seawall._ledger_io import LedgerIO
from seawall._loop import AppLoop, refuse_inside_loop
from seawall._payload import DEFAULT_MAX_PAYLOAD, Blob, Encoder, PayloadCodec
from seawall._registry import AgentSpec, ToolSpec
from seawall._replay import Mode, ReplayResult, replay
from seawall._result import RunResult
from seawall._resume import resume_agent_run
from seawall._runner import execute_run
from seawall._takeover import Takeover, resumable
from seawall._version import VERSION
from seawall.artifacts import (
    Destination,
    GcEntry,
    StagingArea,
    destination_for,
)
from seawall.artifacts._gc import collect
from seawall.errors import (
    BreakerOpenError,
    ConfigurationError,
    ExecutorError,
    HandOffNotFoundError,
    LeaseLostError,
    LedgerError,
    RegistrationError,
    RunNotFoundError,
    SeawallError,
    UsageError,
)
from seawall.ledger import (
    AlertRecord,
    ArtifactRecord,
    AttemptRecord,
    BreakerEvent,
    CompensationRecord,
    Durability,
    HandOffRecord,
    NewRun,
    RunOutcome,
    RunQuery,
    RunRecord,
    StepRecord,
    Store,
    VerdictRecord,
    open_store,
)
from seawall.observe.alerts import AlertRules, Alerts
from seawall.observe.cost import Price, PriceTable
from seawall.observe.monitor import Monitor
from seawall.observe.tracing import Telemetry
from seawall.policies.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from concurrent.futures import Future

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from seawall._host import Host
    from seawall._journal import Journal
    from seawall.observe.alerts import AlertSink
    from seawall.observe.drift import DriftWatch
    from seawall.observe.evaluation import DriftReport
    from seawall.policies.breaker import Breaker, BreakerState
    from seawall.policies.budget import RetryBudget
    from seawall.policies.drift import OnDrift
    from seawall.policies.guards import Guards

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_TOOL_RETRY: Final = Retry(attempts=3, initial=0.1, max_delay=2.0)
DEFAULT_STAGING: Final = ".seawall/staging"
DEFAULT_MAX_ARTIFACT: Final = 1 << 30
logger = logging.getLogger("seawall")
_MISSING: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Step:
    """One journaled step with its payloads decoded (see :class:`~seawall.ledger.StepRecord`).

    Attributes:
        record: The step's ledger row.
        request: The decoded request: ``[tool, args, kwargs]`` for a tool step.
        response: The decoded result, when it has one.
    """

    record: StepRecord
    request: Any
    response: Any


@dataclass(slots=True)
class LiveRun:
    """A run executing in this process: its journal, and its task for an async agent."""

    journal: Journal
    task: asyncio.Future[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def cancel(self, reason: str) -> None:
        """Make the agent stop at its next ctx call (and cancel an async agent's task)."""
        self.journal.cancelled = reason
        if self.task is not None and self.loop is not None and not self.task.done():
            self.loop.call_soon_threadsafe(self.task.cancel)


class LiveRuns:
    """The runs executing in this process, for cancellation."""

    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}
        self._lock = threading.Lock()

    def enter(self, run_id: str, journal: Journal) -> LiveRun:
        """Register a starting attempt."""
        live = LiveRun(journal)
        with self._lock:
            self._runs[run_id] = live
        return live

    def leave(self, run_id: str) -> None:
        """Forget an ended attempt."""
        with self._lock:
            self._runs.pop(run_id, None)

    def journals(self) -> list[tuple[str, Journal]]:
        """The live runs' ids and journals."""
        with self._lock:
            return [(run_id, live.journal) for run_id, live in self._runs.items()]

    def cancel(self, reasons: Mapping[str, str]) -> None:
        """Cancel the live runs among ``reasons``."""
        with self._lock:
            found = [(self._runs.get(run_id), reason) for run_id, reason in reasons.items()]
        for live, reason in found:
            if live is not None and live.journal.cancelled is None:
                live.cancel(reason)

    def lose(self, run_ids: Sequence[str]) -> None:
        """Stop the live attempts of runs another process took over (their next ctx call)."""
        with self._lock:
            found = [self._runs.get(run_id) for run_id in run_ids]
        for live in found:
            if live is not None:
                journal = live.journal
                journal.interrupt(
                    LeaseLostError(
                        f"run {journal.run_id} was taken over by another process (its lease of "
                        f"epoch {journal.epoch} is gone); this attempt stops before any further "
                        "call",
                        run_id=journal.run_id,
                        epoch=journal.epoch,
                    )
                )


class Seawall:
    """One Seawall app: the ledger, the registry of agents and tools, and the executor.

    Args:
        ledger: A ledger URL (``sqlite:///path/ledger.db``; default
            ``sqlite:///.seawall/ledger.db``) or an open store.
        durability: ``"crash"`` (default): every journal write survives the death of the
            process. ``"power"``: writes guarding a side effect are fsynced, so they survive
            power loss too, at the cost of one fsync per mutating step.
        lease: Seconds a running run's lease lasts without a heartbeat; after that another
            process may resume it.
        busy_timeout: Seconds to wait for another process's write lock on the ledger.
        max_payload_bytes: Largest payload (inputs, output, tool arguments or result) stored.
        encoders: ``{type: fn}`` turning values of your types into JSON-serialisable ones.
        retry: Default retry policy of agents.
        tool_retry: Default retry policy of tools.
        max_threads: Worker threads for sync agents.
        artifacts: Where committed artifacts go: a folder (published by an atomic rename) or
            an fsspec URL (published manifest last). ``None``: agents cannot stage artifacts.
        staging: The folder where attempts stage artifacts (local, private to the app).
        max_artifact_bytes: Largest single artifact accepted.
        max_concurrent_runs: Runs submitted to this app (``run``/``arun``) that execute at
            once; the others wait in line. ``None``: no bound.
        max_queued_runs: Submissions allowed to wait in that line. ``None``: no bound.
        overload: When the line is full: ``"wait"`` for room, or ``"raise"``
            :class:`~seawall.Overloaded`.
        executor: Where runs execute: :class:`~seawall.LocalExecutor` (default: in this
            process) or a distributed one such as
            ``seawall.integrations.celery.CeleryExecutor(celery_app)``.
        prices: ``{model: seawall.Price(...)}``: your prices per million tokens, used before
            the ``genai-prices`` table (``seawall[prices]``) to price LLM calls recorded without
            a cost.
        tracer_provider: An OpenTelemetry tracer provider to use instead of the global one
            (runs are traced only when one from an SDK is configured, here or globally).
        meter_provider: An OpenTelemetry meter provider to use instead of the global one.
        alerts: Where alerts go (drift, breaker openings, DLQ growth, hand-offs, overdue
            runs): functions called with the :class:`~seawall.AlertRecord`,
            :class:`~seawall.WebhookSink`, :class:`~seawall.LogSink`. Every alert is also
            recorded in the ledger.
        alert_rules: Which operational conditions raise alerts (default ``AlertRules()``).

    Raises:
        ConfigurationError: An argument is invalid.
        LedgerError: The ledger cannot be opened (see its subclasses).
    """

    def __init__(  # noqa: C901, PLR0915 - one validation per documented option
        self,
        ledger: str | Store | None = None,
        *,
        durability: Durability = "crash",
        lease: float = 30.0,
        busy_timeout: float = 5.0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        encoders: Mapping[type, Encoder] | None = None,
        retry: Retry | None = None,
        tool_retry: Retry | None = None,
        max_threads: int = 64,
        artifacts: str | os.PathLike[str] | Destination | None = None,
        staging: str | os.PathLike[str] = DEFAULT_STAGING,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT,
        max_concurrent_runs: int | None = None,
        max_queued_runs: int | None = None,
        overload: Literal["wait", "raise"] = "wait",
        executor: Executor | None = None,
        prices: Mapping[str, Price | Mapping[str, float]] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        alerts: Sequence[AlertSink | Callable[[AlertRecord], Any]] = (),
        alert_rules: AlertRules | None = None,
    ) -> None:
        _positive("lease", lease)
        _positive("busy_timeout", busy_timeout)
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
            raise ConfigurationError(
                f"Seawall(max_payload_bytes={max_payload_bytes!r}) must be a positive integer"
            )
        if not isinstance(max_artifact_bytes, int) or max_artifact_bytes < 1:
            raise ConfigurationError(
                f"Seawall(max_artifact_bytes={max_artifact_bytes!r}) must be a positive integer"
            )
        if not isinstance(max_threads, int) or max_threads < 1:
            raise ConfigurationError(
                f"Seawall(max_threads={max_threads!r}) must be a positive integer"
            )
        for label, policy in (("retry", retry), ("tool_retry", tool_retry)):
            if policy is not None and not isinstance(policy, Retry):
                raise ConfigurationError(f"Seawall({label}={policy!r}) must be a seawall.Retry")
        if encoders is not None and not all(
            isinstance(t, type) and callable(fn) for t, fn in dict(encoders).items()
        ):
            raise ConfigurationError(
                "Seawall(encoders=...) must map types to functions, e.g. "
                "{datetime: datetime.isoformat}"
            )
        if isinstance(ledger, str | None):
            self.store: Store = open_store(ledger, durability=durability, busy_timeout=busy_timeout)
        else:
            self.store = ledger
        self._durability: Durability = durability
        self._busy_timeout = busy_timeout
        self.codec = PayloadCodec(encoders, max_payload_bytes)
        self.prices = PriceTable(prices)
        self.power = durability == "power"
        self.destination: Destination | None = _destination_of(artifacts, sync=self.power)
        self.staging_root = Path(staging)
        self.max_artifact_bytes = max_artifact_bytes
        if overload not in ("wait", "raise"):
            raise ConfigurationError(f"Seawall(overload={overload!r}) must be 'wait' or 'raise'")
        self.slots = Slots(
            max_concurrent_runs,
            queue=max_queued_runs,
            block=overload == "wait",
            label="Seawall(max_concurrent_runs, max_queued_runs)",
        )
        self._agent_slots: dict[str, Slots] = {}
        self.live = LiveRuns()
        self.io = LedgerIO(self.store)
        """Runs store calls for async code without making its event loop wait."""
        self._loop = AppLoop()
        self.telemetry = Telemetry(
            VERSION,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            store=self.store,
        )
        self.dlq = DeadLetterQueue(self)
        self.leases = Leases(self.store, lease, self.live.cancel, self.live.lose)
        self.monitor = Monitor(self.store, Alerts(alerts), alert_rules or AlertRules())
        self.breakers = Breakers(self.store, self.leases.owner)
        self.breakers.on_open = self.monitor.breaker_opened
        self.budgets = RetryBudgets(self.store)
        self.leases.on_beat = self._beat
        self.retry = retry or Retry()
        self.tool_retry = tool_retry or DEFAULT_TOOL_RETRY
        self.flush_every = 64
        self.flush_interval = 0.2
        self._max_threads = max_threads
        self._threads: ThreadPoolExecutor | None = None
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        self._agents: dict[str, AgentSpec] = {}
        self._graphs: dict[str, Graph] = {}
        self._agent_fns: dict[Any, AgentSpec] = {}
        self._tools: dict[str, ToolSpec] = {}
        self._tool_fns: dict[Any, ToolSpec] = {}
        self._lock = threading.Lock()
        self._closed = False
        # The sync API's loop is stopped with the app, or when it is garbage-collected without
        # close(), so no event loop outlives its app.
        self._finalizer = weakref.finalize(self, self._loop.close)
        self.takeover = Takeover(self)
        """Sweeps for runs whose owner died or whose message was lost (see ``_takeover``)."""
        if self.destination is not None and self.staging_root.is_dir():
            try:
                self.gc()
            except SeawallError:
                logger.warning("garbage collection of %s failed", self.staging_root, exc_info=True)
        try:
            self.executor.bind(self)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<Seawall ledger={self.store.url!r} agents={len(self._agents)}>"

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def agent_threads(self) -> ThreadPoolExecutor:
        """The worker threads sync agents run in."""
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    self._max_threads, thread_name_prefix="seawall-agent"
                )
            return self._threads

    def reopen_after_fork(self) -> None:
        """Give a forked child process its own ledger connection, lease owner and threads.

        A connection, a thread or an event loop inherited through ``fork()`` must not be
        used by the child: distributed executors call this in every worker process they fork
        (Celery's prefork pool). The inherited objects are left alone, not closed, so the
        parent's connection is not disturbed.
        """
        _INHERITED.append((self.store, self.leases, self._loop, self._threads, self.io))
        self.store = open_store(
            self.store.url, durability=self._durability, busy_timeout=self._busy_timeout
        )
        self._lock = threading.Lock()
        self._threads = None
        self._loop = AppLoop()
        self.io = LedgerIO(self.store)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, self._loop.close)
        self.live = LiveRuns()
        self.leases = Leases(self.store, self.leases.duration, self.live.cancel, self.live.lose)
        self.breakers = Breakers(self.store, self.leases.owner)
        self.budgets = RetryBudgets(self.store)
        self.leases.on_beat = self.budgets.flush

    def close(self) -> None:
        """Stop the heartbeat and the worker threads, and close the ledger."""
        if self._closed:
            return
        self._closed = True
        self.leases.close()
        self.monitor.close()
        self.executor.close()
        self._finalizer()
        self.io.close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    def _beat(self) -> None:
        """Heartbeat work: shared retry-budget counts, monitor upkeep, takeover sweeps."""
        self.budgets.flush()
        self.monitor.beat(self.live.journals())
        self.takeover.beat()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registration -----------------------------------------------------------------------

    @overload
    def agent(self, fn: F, /) -> F: ...
    @overload
    def agent(
        self,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        version: str | None = None,
        verify: Any = (),
        on_drift: OnDrift | str = "fail",
        min_confidence: float | None = None,
        guards: Guards | None = None,
        breaker: Breaker | bool = True,
        max_concurrency: int | None = None,
        retry_budget: RetryBudget | bool = True,
        drift: DriftWatch | None = None,
    ) -> Callable[[F], F]: ...
    def agent(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        version: str | None = None,
        verify: Any = (),
        on_drift: OnDrift | str = "fail",
        min_confidence: float | None = None,
        guards: Guards | None = None,
        breaker: Breaker | bool = True,
        max_concurrency: int | None = None,
        retry_budget: RetryBudget | bool = True,
        drift: DriftWatch | None = None,
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
            spec = AgentSpec.build(
                target,
                name=name,
                retry=retry or self.retry,
                timeout=timeout,
                version=version,
                verify=verify,
                on_drift=on_drift,
                min_confidence=min_confidence,
                guards=guards,
                breaker=breaker,
                max_concurrency=max_concurrency,
                retry_budget=retry_budget,
                drift=drift,
            )
            existing = self._agents.get(spec.name)
            if existing is not None and existing.fn is not target:
                raise ConfigurationError(
                    f"an agent named {spec.name!r} is already registered with this app; pass "
                    "@app.agent(name=...) to register another under a different name"
                )
            _refuse_second_name(self._agent_fns.get(target), spec.name, "agent")
            self._agents[spec.name] = spec
            self._agent_fns[target] = spec
            return target

        return register(fn) if fn is not None else register

    @overload
    def tool(self, fn: F, /) -> F: ...
    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        mutating: bool = False,
        idempotent: bool = False,
        retry: Retry | None = None,
        compensate: Callable[..., Any] | None = None,
        returns: Any = None,
        read_back: Callable[..., Any] | None = None,
        observes: Callable[..., Any] | None = None,
        breaker: Breaker | bool = True,
        rate_limit: str | None = None,
        retry_budget: RetryBudget | bool = True,
        contradicts: Callable[[Any, Any], bool] | None = None,
        consistency_key: Callable[..., Any] | None = None,
        llm: bool = False,
        destructive: bool = False,
    ) -> Callable[[F], F]: ...
    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        mutating: bool = False,
        idempotent: bool = False,
        retry: Retry | None = None,
        compensate: Callable[..., Any] | None = None,
        returns: Any = None,
        read_back: Callable[..., Any] | None = None,
        observes: Callable[..., Any] | None = None,
        breaker: Breaker | bool = True,
        rate_limit: str | None = None,
        retry_budget: RetryBudget | bool = True,
        contradicts: Callable[[Any, Any], bool] | None = None,
        consistency_key: Callable[..., Any] | None = None,
        llm: bool = False,
        destructive: bool = False,
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
            spec = ToolSpec.build(
                target,
                name=name,
                mutating=mutating,
                idempotent=idempotent,
                retry=retry or self.tool_retry,
                compensate=compensate,
                returns=returns,
                read_back=read_back,
                observes=observes,
                breaker=breaker,
                rate_limit=rate_limit,
                retry_budget=retry_budget,
                contradicts=contradicts,
                consistency_key=consistency_key,
                llm=llm,
                destructive=destructive,
            )
            existing = self._tools.get(spec.name)
            if existing is not None and existing.fn is not target:
                raise ConfigurationError(
                    f"a tool named {spec.name!r} is already registered with this app; pass "
                    "@app.tool(name=...) to register another under a different name"
                )
            _refuse_second_name(self._tool_fns.get(target), spec.name, "tool")
            self._tools[spec.name] = spec
            self._tool_fns[target] = spec
            return target

        return register(fn) if fn is not None else register

    def staging_for(self, run_id: str, attempt: int) -> StagingArea | None:
        """The staging area of one attempt (``None`` when the app has no destination)."""
        if self.destination is None:
            return None
        return StagingArea(self.staging_root, run_id, attempt, self.max_artifact_bytes)

    def gc(self, *, dry_run: bool = False) -> list[GcEntry]:
        """Remove staging left by dead processes and finished runs; live runs are never touched.

        Args:
            dry_run: Only report what would be removed.

        Returns:
            One entry per staging folder examined.
        """
        return collect(self.store, self.staging_root, time.time(), dry_run=dry_run)

    def replace_function(
        self, name: str, kind: str, wrap: Callable[[Callable[..., Any]], Any]
    ) -> None:
        """Swap a registered agent's or tool's function for ``wrap(function)``.

        Chaos testing and instrumentation use it; calls by the original function or by name
        reach the wrapper.

        Raises:
            RegistrationError: No agent or tool has this name.
        """
        specs: dict[str, Any] = self._agents if kind == "agent" else self._tools
        by_fn: dict[Any, Any] = self._agent_fns if kind == "agent" else self._tool_fns
        spec = specs.get(name)
        if spec is None:
            raise RegistrationError(f"no {kind} named {name!r} is registered with this app")
        replaced = dataclasses.replace(spec, fn=wrap(spec.fn))
        specs[name] = replaced
        for key, value in list(by_fn.items()):
            if value is spec:
                by_fn[key] = replaced

    def resolve_tool(self, tool: Callable[..., Any] | str) -> ToolSpec:
        """Return the registration of a tool given as the function or its name.

        Raises:
            RegistrationError: It is not registered with this app.
        """
        try:
            spec = self._tool_fns.get(tool) if not isinstance(tool, str) else self._tools.get(tool)
        except TypeError:
            spec = None
        if spec is None:
            label = tool if isinstance(tool, str) else getattr(tool, "__qualname__", repr(tool))
            raise RegistrationError(
                f"tool {label!r} is not registered with this app; decorate it with @app.tool "
                f"(registered tools: {sorted(self._tools) or 'none'})",
                tool=str(label),
            )
        return spec

    def resolve_agent(self, agent: Callable[..., Any] | str) -> AgentSpec:
        """Return the registration of an agent given as the function or its name.

        Raises:
            RegistrationError: It is not registered with this app.
        """
        try:
            spec = (
                self._agent_fns.get(agent)
                if not isinstance(agent, str)
                else self._agents.get(agent)
            )
        except TypeError:
            spec = None
        if spec is None:
            label = agent if isinstance(agent, str) else getattr(agent, "__qualname__", repr(agent))
            raise RegistrationError(
                f"agent {label!r} is not registered with this app; decorate it with @app.agent "
                f"(registered agents: {sorted(self._agents) or 'none'})",
                agent=str(label),
            )
        return spec

    @property
    def agents(self) -> Mapping[str, AgentSpec]:
        """Registered agents by name."""
        return dict(self._agents)

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        """Registered tools by name."""
        return dict(self._tools)

    # -- running ----------------------------------------------------------------------------

    def run(self, agent: Callable[..., Any] | str | Graph, /, **inputs: Any) -> RunResult:
        """Run an agent to completion (with its retries) and return the result.

        Args:
            agent: The registered agent (the decorated function) or its name, or a
                :class:`~seawall.Graph` (its result's ``nodes`` holds every node's result).
            **inputs: The agent's keyword inputs; they are snapshotted in the ledger.

        Returns:
            The recorded result. A failure is returned, not raised; call
            :meth:`RunResult.raise_for_status` to raise it.

        Raises:
            UsageError: Called from inside a running event loop (use ``await app.arun``), or
                from inside a run (use ``ctx.run``, which is journaled).
            RegistrationError: The agent is not registered.
            SerializationError: An input is not JSON-serialisable (nothing is recorded).
            LedgerError: The run could not be recorded (nothing ran).
        """
        _outside_runs("run")
        result: RunResult = self._sync(self.arun(agent, **inputs), "run", "arun")
        return result

    async def arun(self, agent: Callable[..., Any] | str | Graph, /, **inputs: Any) -> RunResult:
        """Async twin of :meth:`run`.

        Async agents run on the calling event loop (``run`` uses the app's own loop).
        """
        _outside_runs("arun")
        self._check_open()
        if isinstance(agent, Graph):
            self.graph(agent)
            async with self.slots:
                return await self._arun_graph(agent, inputs)
        spec = self.resolve_agent(agent)
        async with self.slots:
            return await self.executor.execute(
                self, spec, inputs, parent_run_id=None, node=None, workflow=None
            )

    def submit(self, agent: Callable[..., Any] | str, /, **inputs: Any) -> RunHandle:
        """Start a run of an agent without waiting for it; return its handle.

        With the local executor the run executes on a background thread of this process;
        with a distributed one it is recorded ``pending`` and a worker executes it.

        Args:
            agent: The registered agent (the decorated function) or its name.
            **inputs: The agent's keyword inputs; they are snapshotted in the ledger.

        Returns:
            A handle: ``handle.run_id``, ``handle.result(timeout=...)``.

        Raises:
            RegistrationError: The agent is not registered.
            SerializationError: An input is not JSON-serialisable (nothing is recorded).
            BrokerUnavailableError: A distributed executor could not hand the run over (the
                run is recorded failed, with that error, in the DLQ).
            UsageError: Called from inside a run (use ``ctx.run``, which is journaled).
        """
        _outside_runs("submit")
        self._check_open()
        return self.executor.submit(self, self.resolve_agent(agent), inputs)

    def wait(self, run_id: str, *, timeout: float | None = None) -> RunResult:
        """Wait until a run ends (or awaits a person) and return its result from the ledger.

        Works for any run in the ledger, whichever process or worker executes it.

        Raises:
            RunNotFoundError: No run has this id.
            WaitTimeoutError: It had not ended after ``timeout`` seconds (it goes on).
        """
        result: RunResult = self._sync(self.await_run(run_id, timeout=timeout), "wait", "await_run")
        return result

    async def await_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the twin of wait(), same keywords
    ) -> RunResult:
        """Async twin of :meth:`wait`."""
        return await wait_for_run(self, run_id, timeout)

    def open_run(
        self,
        agent: str,
        input_hash: str,
        input_column: bytes,
        code_version: str | None,
        blobs: Sequence[Blob] = (),
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        replay_of: str | None = None,
        replay_mode: str | None = None,
        node: str | None = None,
        queued: bool = False,
        run_id: str | None = None,
        now: float | None = None,
        route: str | None = None,
    ) -> tuple[str, float]:
        """Record a new run and return its id and start time.

        The run is leased to this process (at epoch 1), or, when ``queued``, recorded
        ``pending`` with no lease (epoch 0), for the first worker that claims it; ``route``
        names where it is sent (``celery:QUEUE``).
        """
        run_id = run_id or new_run_id()
        now = time.time() if now is None else now
        self.store.create_run(
            NewRun(
                run_id=run_id,
                agent=agent,
                start_time=now,
                input_hash=input_hash,
                input_column=input_column,
                code_version=code_version,
                owner=None if queued else self.leases.owner,
                lease_expires_at=None if queued else now + self.leases.duration,
                workflow=workflow,
                parent_run_id=parent_run_id,
                replay_of=replay_of,
                replay_mode=replay_mode,
                node=node,
                status=RunStatus.PENDING if queued else RunStatus.RUNNING,
                route=route,
            ),
            blobs,
        )
        return run_id, now

    def record_run(
        self,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None = None,
        node: str | None = None,
        workflow: str | None = None,
        queued: bool = False,
        route: str | None = None,
    ) -> tuple[str, float]:
        """Snapshot ``inputs`` and record a new run of ``spec``; return its id and start time.

        Raises:
            SerializationError: An input is not JSON-serialisable (nothing is recorded).
        """
        input_hash, column, blobs = self.codec.snapshot(inputs, f"inputs of agent {spec.name!r}")
        return self.open_run(
            spec.name,
            input_hash,
            column,
            spec.code_version,
            blobs,
            parent_run_id=parent_run_id,
            workflow=workflow,
            node=node,
            queued=queued,
            route=route,
        )

    async def start_child(
        self,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None = None,
        workflow: str | None = None,
        host: Host | None = None,
    ) -> RunResult:
        """Record and execute a run of ``spec`` (a child of ``parent_run_id`` when given).

        An agent whose breaker is open is not started: its run is recorded ``skipped``, class
        ``cascade``, cause ``breaker_open``.
        """
        run_id, now = await self.io.run(
            self.record_run,
            spec,
            inputs,
            parent_run_id=parent_run_id,
            node=node,
            workflow=workflow,
        )
        child = parent_run_id is not None and node is None
        return await self.execute_recorded(spec, run_id, inputs, now, host=host, child=child)

    async def execute_recorded(
        self,
        spec: AgentSpec,
        run_id: str,
        inputs: dict[str, Any],
        now: float,
        *,
        host: Host | None = None,
        child: bool = False,
    ) -> RunResult:
        """Execute a recorded run of ``spec`` leased to this process, unless its breaker is open.

        A child of a running agent (``child``) takes no concurrency slot: its parent holds one
        already, and waiting for a second could wait forever.
        """
        if spec.breaker is not None:
            try:
                await self.io.run(self.breakers.check, f"agent:{spec.name}", "agent", spec.breaker)
            except BreakerOpenError as exc:
                return await self.io.run(self._refused, spec, run_id, exc)
        if child:
            result = await execute_run(self, spec, run_id, inputs, epoch=1, started=now, host=host)
        else:
            async with self._slots_of(spec):
                result = await execute_run(self, spec, run_id, inputs, epoch=1, started=now)
        try:
            await self.io.run(self._count, spec, result)
        except LedgerError:
            # The run's end is recorded; a ledger gone since costs the breaker one count, never
            # the caller its result.
            logger.warning(
                "run %s: its outcome was not counted by the breaker of agent %r (the ledger "
                "became unreachable after the run ended)",
                run_id,
                spec.name,
                exc_info=True,
            )
        return result

    def children(self, parent: Journal, host: Host | None) -> Children:
        """What ``ctx.run`` of an attempt of ``parent``'s run needs of the app."""
        return Children(self, parent, host)

    def _slots_of(self, spec: AgentSpec) -> Slots:
        slots = self._agent_slots.get(spec.name)
        if slots is None:
            slots = Slots(spec.max_concurrency, label=f"agent {spec.name!r} max_concurrency")
            self._agent_slots[spec.name] = slots
        return slots

    def _refused(self, spec: AgentSpec, run_id: str, error: BreakerOpenError) -> RunResult:
        """Record a run its agent's breaker did not let start."""
        self.store.finish_run(
            run_id,
            RunOutcome.not_executed(
                RunStatus.SKIPPED,
                ErrorClass.CASCADE,
                FailureCause.BREAKER_OPEN,
                "BreakerOpenError",
                error.message,
                error.to_dict(),
            ),
            [],
            epoch=1,
        )
        return self.result_of(run_id, agent=spec.name)

    def _count(self, spec: AgentSpec, result: RunResult) -> None:
        """Feed a finished run's outcome to its agent's breaker (not a caller's mistake)."""
        if spec.breaker is None or result.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            return
        if (result.error or {}).get("type") in _MISUSE_NAMES:
            return
        self.breakers.outcome(
            f"agent:{spec.name}",
            "agent",
            spec.breaker,
            success=result.ok,
            reason=f"{result.failure_cause}: {(result.error or {}).get('message', '')}"[:300],
        )

    # -- graphs -------------------------------------------------------------------------------

    def graph(self, graph: Graph) -> Graph:
        """Register a graph (so ``seawall resume`` can continue its runs); return it.

        Raises:
            ConfigurationError: A node's agent is not registered, or another graph has its name.
        """
        graph.check(self._is_agent)
        existing = self._graphs.get(graph.name)
        if existing is not None and existing is not graph:
            raise ConfigurationError(f"a graph named {graph.name!r} is already registered")
        if graph.name in self._agents:
            raise ConfigurationError(
                f"graph {graph.name!r} has the name of an agent; graph runs and agent runs share "
                "names in the ledger, so give the graph another name"
            )
        self._graphs[graph.name] = graph
        return graph

    def _is_agent(self, candidate: Any) -> bool:
        try:
            self.resolve_agent(candidate)
        except RegistrationError:
            return False
        return True

    async def _arun_graph(self, graph: Graph, inputs: dict[str, Any]) -> RunResult:
        self.graph(graph)
        missing = sorted(graph.inputs - set(inputs))
        if missing:
            raise ConfigurationError(
                f"graph {graph.name!r} needs the inputs {missing}; pass them to app.run"
            )
        input_hash, column, blobs = self.codec.snapshot(inputs, f"inputs of graph {graph.name!r}")
        run_id, _ = await self.io.run(
            self.open_run, graph.name, input_hash, column, None, blobs, workflow=graph.name
        )
        return await run_graph(self, graph, run_id, inputs, epoch=1)

    def agent_runner(
        self, parent_run_id: str, host: Host | None = None
    ) -> Callable[[Any, dict[str, Any]], Any]:
        """A function verifiers use to run registered agents as children of a run.

        ``host`` is the parent's thread when the verifier runs while a sync agent waits for it.
        """

        async def run_agent(agent: Any, inputs: dict[str, Any]) -> Any:
            result = await self.start_child(
                self.resolve_agent(agent), inputs, parent_run_id=parent_run_id, host=host
            )
            return result.raise_for_status().output

        def is_agent(candidate: Any) -> bool:
            try:
                self.resolve_agent(candidate)
            except RegistrationError:
                return False
            return True

        run_agent.is_agent = is_agent  # type: ignore[attr-defined]
        return run_agent

    # -- operators: cancel, hand-offs --------------------------------------------------------

    def cancel(self, run_id: str, *, reason: str = "") -> bool:
        """Cancel a run: it stops at its next ctx call and no mutating call starts afterwards.

        The run ends ``cancelled`` after the compensations of its completed side effects run.
        Works from any process sharing the ledger (the owner notices within a second).

        Returns:
            Whether the cancellation was recorded (false when the run had already ended).

        Raises:
            RunNotFoundError: No run has this id.
        """
        run = self.get_run(run_id)
        recorded = self.store.request_cancel(run_id, reason, time.time())
        if recorded:
            self.live.cancel({run_id: reason})
            if run.status is RunStatus.AWAITING_HUMAN:
                for handoff in self.store.list_handoffs(run_id=run_id, status="open"):
                    with contextlib.suppress(SeawallError):
                        self._sync(
                            decide(
                                self,
                                handoff.handoff_id,
                                approve=False,
                                output=None,
                                edited=False,
                                by="cancel",
                                note=reason or "cancelled",
                            ),
                            "cancel",
                            "cancel",
                        )
        return recorded

    def handoff(self, handoff_id: str) -> HandOffRecord:
        """Return one hand-off.

        Raises:
            HandOffNotFoundError: No hand-off has this id.
        """
        found = self.store.get_handoff(handoff_id)
        if found is None:
            raise HandOffNotFoundError(
                f"no hand-off {handoff_id!r}; list them with `seawall handoffs list`",
                handoff_id=handoff_id,
            )
        return found

    def approve(
        self,
        handoff_id: str,
        *,
        output: Any = _MISSING,
        by: str | None = None,
        note: str | None = None,
    ) -> RunResult:
        """Approve a hand-off: the run's output (or ``output``, verified again) is committed.

        Raises:
            HandOffNotFoundError: No hand-off has this id.
            HandOffDecidedError: It was already decided.
            VerificationError: The edited output failed the agent's verifiers (still open).
        """
        edited = output is not _MISSING
        result: RunResult = self._sync(
            decide(
                self,
                handoff_id,
                approve=True,
                output=None if not edited else output,
                edited=edited,
                by=by,
                note=note,
            ),
            "approve",
            "approve",
        )
        return result

    def reject(self, handoff_id: str, *, reason: str, by: str | None = None) -> RunResult:
        """Reject a hand-off: the run fails ``silent_drift`` with the reason.

        Raises:
            HandOffNotFoundError: No hand-off has this id.
            HandOffDecidedError: It was already decided.
        """
        result: RunResult = self._sync(
            decide(self, handoff_id, approve=False, output=None, edited=False, by=by, note=reason),
            "reject",
            "reject",
        )
        return result

    # -- replay ---------------------------------------------------------------------------------

    @property
    def graphs(self) -> Mapping[str, Graph]:
        """Registered graphs by name."""
        return dict(self._graphs)

    def replay(
        self,
        run_id: str,
        *,
        mode: Mode = "recorded",
        from_node: str | None = None,
        allow_mutations: bool = False,
    ) -> ReplayResult:
        """Run the current code on a run's input snapshot, as a new run marked ``replay_of``.

        Args:
            run_id: The run to replay (it must have ended).
            mode: ``"recorded"``: journaled calls are served from the original's journal while
                the code asks for them; after a fix, read-only calls the recording lacks run
                live and a side effect it lacks stops the replay with a readable diff (see
                ``allow_mutations``). ``"live"``: every call runs live.
            from_node: For a graph run: nodes upstream of this one are served from the
                original run's outputs; it and its dependents run again.
            allow_mutations: For a recorded replay: a side effect the recording lacks runs
                live instead of stopping the replay.

        Returns:
            The new run, with the differences of its output and verdicts from the original's.

        Raises:
            RunNotFoundError: No such run.
            UsageError: The run is still running.
            RegistrationError: Its agent is not registered here (names its code version).
            SnapshotError: Its input snapshot is missing or does not match its hash.
        """
        result: ReplayResult = self._sync(
            self.areplay(run_id, mode=mode, from_node=from_node, allow_mutations=allow_mutations),
            "replay",
            "areplay",
        )
        return result

    async def areplay(
        self,
        run_id: str,
        *,
        mode: Mode = "recorded",
        from_node: str | None = None,
        allow_mutations: bool = False,
    ) -> ReplayResult:
        """Async twin of :meth:`replay`."""
        self._check_open()
        return await replay(
            self, run_id, mode, from_node=from_node, allow_mutations=allow_mutations
        )

    # -- breakers -------------------------------------------------------------------------------

    def breaker_states(self) -> list[BreakerState]:
        """Every breaker the ledger knows (``agent:NAME`` and ``tool:NAME``)."""
        return self.store.list_breakers()

    def breaker_events(self, name: str, limit: int = 100) -> list[BreakerEvent]:
        """A breaker's transitions, newest first."""
        return self.store.breaker_events(name, limit)

    def open_breaker(self, name: str, *, reason: str) -> BreakerState:
        """Open a breaker by hand: new runs (or calls) are refused with ``reason`` until reset.

        Raises:
            ConfigurationError: ``name`` is not ``agent:NAME`` or ``tool:NAME``.
        """
        return self.breakers.open(name, _breaker_kind(name), reason)

    def reset_breaker(self, name: str) -> BreakerState:
        """Close a breaker and forget its failures (and a manual opening).

        Raises:
            ConfigurationError: ``name`` is not ``agent:NAME`` or ``tool:NAME``.
        """
        return self.breakers.reset(name, _breaker_kind(name))

    # -- alerts and drift ---------------------------------------------------------------------

    def alerts(
        self,
        *,
        agent: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AlertRecord]:
        """Alerts recorded in the ledger (by every process), newest first.

        Args:
            agent: Only alerts about this agent.
            kind: Only this kind (``drift``, ``breaker_open``, ``dlq_growth``,
                ``handoff_waiting``, ``run_overdue``).
            since: Only alerts raised at or after this Unix time.
            limit: At most this many.
        """
        self.monitor.flush()
        return self.store.list_alerts(agent=agent, kind=kind, since=since, limit=limit)

    def drift_report(self, agent: Callable[..., Any] | str) -> DriftReport:
        """Evaluate a watched agent's drift now, from the ledger (alerting as usual).

        Raises:
            RegistrationError: The agent is not registered.
            ConfigurationError: It has no ``drift=`` watch.
        """
        spec = self.resolve_agent(agent)
        if spec.drift is None:
            raise ConfigurationError(
                f"agent {spec.name!r} is not watched for drift; register it with "
                "@app.agent(drift=seawall.DriftWatch(...))"
            )
        self.monitor.flush()
        return self.monitor.evaluate(spec.name, spec.drift)

    def verdicts(self, run_id: str) -> list[VerdictRecord]:
        """Return every verifier verdict of a run, in order (raises RunNotFoundError)."""
        self.get_run(run_id)
        return self.store.list_verdicts(run_id)

    def resume(self, run_id: str | None = None) -> list[RunResult]:
        """Resume runs whose owner died (their lease lapsed), serving their journals.

        Runs recorded for a worker whose message was lost (``pending``, never claimed, and
        missing from the broker's queue) are taken and executed here too.

        Args:
            run_id: Resume only this run (it must be unfinished with a lapsed lease).

        Returns:
            The results of the runs resumed by this call.
        """
        results: list[RunResult] = self._sync(self.aresume(run_id), "resume", "aresume")
        return results

    async def aresume(self, run_id: str | None = None) -> list[RunResult]:
        """Async twin of :meth:`resume`."""
        self._check_open()
        now = time.time()
        if run_id is not None:
            run = self.get_run(run_id)
            if run.status.final:
                raise UsageError(
                    f"run {run_id} already ended {run.status.value}; nothing to resume "
                    "(replay it instead)",
                    run_id=run_id,
                )
            if run.lease_expires_at is not None and run.lease_expires_at >= now:
                raise UsageError(
                    f"run {run_id} is still leased by {run.lease_owner} until "
                    f"{time.ctime(run.lease_expires_at)}; it is alive or its lease has not lapsed",
                    run_id=run_id,
                )
            if run.agent not in self._graphs:
                self.resolve_agent(run.agent)
            candidates = [run]
            lost = []
        else:
            expired = await self.io.run(self.store.expired_runs, now, 10_000)
            candidates = resumable(expired, self._agents, self._graphs)
            lost = await self.io.run(self.takeover.lost_runs, now)
        jobs = [self._resume_one(run, now) for run in candidates]
        jobs += [self.atake(run.run_id) for run in lost]
        results = await asyncio.gather(*jobs)
        return [result for result in results if result is not None]

    async def resume_run(self, run: RunRecord, *, host: Host | None = None) -> RunResult | None:
        """Resume one run whose lease lapsed; ``None`` when another process holds it."""
        return await self._resume_one(run, time.time(), host=host)

    def take(self, run_id: str) -> RunResult | None:
        """Claim a queued run (or one whose owner died) and execute it here to its end.

        This is what a distributed executor's worker does with each run id it receives. A run
        that already ended is not executed again: its recorded result is returned. A run
        whose agent is not registered here is recorded failed with an error saying so.

        Returns:
            The run's result, or ``None`` when another live process holds its lease.

        Raises:
            RunNotFoundError: No run has this id.
        """
        result: RunResult | None = self._sync(self.atake(run_id), "take", "atake")
        return result

    async def atake(self, run_id: str) -> RunResult | None:
        """Async twin of :meth:`take`."""
        self._check_open()
        run = await self.io.run(self.get_run, run_id)
        if run.status.final or run.status is RunStatus.AWAITING_HUMAN:
            return await self.io.run(self.result_of, run_id)
        now = time.time()
        spec = self._agents.get(run.agent)
        claim = self.store.claim_run
        if spec is None or (run.workflow is not None and run.node is None):
            epoch = await self.io.run(claim, run_id, self.leases.owner, self.leases.expiry(), now)
            if epoch is None:
                return None
            return await self.io.run(self._unrunnable, run, epoch)
        epoch = None
        if run.status is RunStatus.PENDING and spec.breaker is not None:
            epoch = await self.io.run(claim, run_id, self.leases.owner, self.leases.expiry(), now)
            if epoch is None:
                return None
            try:
                await self.io.run(self.breakers.check, f"agent:{spec.name}", "agent", spec.breaker)
            except BreakerOpenError as exc:
                return await self.io.run(self._refused_claimed, spec, run_id, exc, epoch)
        async with self._slots_of(spec):
            result = await resume_agent_run(self, run, now, epoch=epoch)
        if result is not None:
            await self.io.run(self._count, spec, result)
        return result

    def _refused_claimed(
        self, spec: AgentSpec, run_id: str, error: BreakerOpenError, epoch: int
    ) -> RunResult:
        """Record a queued run its agent's breaker did not let start (claimed at ``epoch``)."""
        self.store.finish_run(
            run_id,
            RunOutcome.not_executed(
                RunStatus.SKIPPED,
                ErrorClass.CASCADE,
                FailureCause.BREAKER_OPEN,
                "BreakerOpenError",
                error.message,
                error.to_dict(),
            ),
            [],
            epoch=epoch,
        )
        return self.result_of(run_id, agent=spec.name)

    def _unrunnable(self, run: RunRecord, epoch: int) -> RunResult:
        """Record that this process cannot execute ``run`` (its agent is not registered)."""
        kind = "graph" if run.workflow is not None and run.node is None else "agent"
        error = ExecutorError(
            f"the worker {self.leases.owner} has no {kind} named {run.agent!r} registered "
            f"(its agents: {sorted(self._agents) or 'none'}); start the workers with the app "
            "that registers it (the same module the submitter uses), then redrive the run: "
            f"seawall dlq redrive --agent {run.agent}",
            run_id=run.run_id,
            agent=run.agent,
            worker=self.leases.owner,
        )
        self.store.finish_run(
            run.run_id,
            RunOutcome.not_executed(
                RunStatus.FAILED,
                ErrorClass.CLEAN_ABORT,
                FailureCause.EXCEPTION,
                "ExecutorError",
                error.message,
                error.to_dict(),
                attempts=run.attempts,
            ),
            [],
            epoch=epoch,
        )
        return self.result_of(run.run_id)

    def fail_unsubmitted(self, run_id: str, error: SeawallError) -> None:
        """Record that a run could not be handed to its executor (it goes to the DLQ).

        The run is still ``pending`` at epoch 0: if a worker got it after all, it holds a later
        epoch and this write is refused (:class:`~seawall.LeaseLostError`).
        """
        self.store.finish_run(
            run_id,
            RunOutcome.not_executed(
                RunStatus.FAILED,
                ErrorClass.CLEAN_ABORT,
                FailureCause.EXCEPTION,
                type(error).__name__,
                error.message,
                error.to_dict(),
            ),
            [],
            epoch=0,
        )

    async def _resume_one(
        self, run: RunRecord, now: float, *, host: Host | None = None
    ) -> RunResult | None:
        if run.node is None and run.workflow is not None and run.agent in self._graphs:
            epoch = await self.io.run(
                self.store.claim_run, run.run_id, self.leases.owner, self.leases.expiry(), now
            )
            if epoch is None:
                return None
            inputs = await self.io.run(self.inputs_of, run.run_id)
            return await run_graph(
                self,
                self._graphs[run.agent],
                run.run_id,
                inputs,
                epoch=epoch,
                attempt=run.attempts + 1,
            )
        result = await resume_agent_run(self, run, now, host=host)
        if result is not None:
            await self.io.run(self._count, self._agents[run.agent], result)
        return result

    def _sync(self, coro: Any, name: str, twin: str) -> Any:
        """Run ``coro`` on the app's own event loop and wait for it in this thread."""
        try:
            refuse_inside_loop(f"app.{name}()", f"app.{twin}(...)")
        except UsageError:
            coro.close()
            raise
        if self._closed:
            coro.close()
            self._check_open()
        return self._loop.run(coro)

    def submit_coroutine(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coro`` on the app's own event loop; return a future of its result."""
        self._check_open()
        return self._loop.submit(coro)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this Seawall app was closed; create a new one")

    # -- reading the ledger -----------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        """Return a run's ledger row.

        Raises:
            RunNotFoundError: No run has this id.
        """
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in the ledger {self.store.url}; list runs with "
                "`seawall runs` (check --ledger)",
                run_id=run_id,
            )
        return run

    def runs(
        self,
        *,
        status: RunStatus | str | None = None,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """List runs, newest first.

        Args:
            status: Only runs with this status.
            agent: Only runs of this agent.
            error_class: Only runs of this error class.
            since: Only runs submitted at or after this Unix time.
            parent_run_id: Only children of this run.
            limit: At most this many.
            offset: Skip this many first.

        Returns:
            The matching runs.

        Raises:
            ConfigurationError: A filter value is not valid.
        """
        try:
            query = RunQuery(
                status=None if status is None else RunStatus(status),
                agent=agent,
                error_class=None if error_class is None else ErrorClass(error_class),
                since=since,
                parent_run_id=parent_run_id,
                limit=limit,
                offset=offset,
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"{exc}; statuses: {[s.value for s in RunStatus]}, error classes: "
                f"{[c.value for c in ErrorClass]}"
            ) from exc
        if limit < 0 or offset < 0:
            raise ConfigurationError("limit and offset must be >= 0")
        return self.store.list_runs(query)

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Return a run's attempts in order (raises RunNotFoundError for an unknown id)."""
        self.get_run(run_id)
        return self.store.list_attempts(run_id)

    def steps(self, run_id: str) -> list[Step]:
        """Return a run's journal with decoded payloads (raises RunNotFoundError)."""
        self.get_run(run_id)
        records = self.store.load_steps(run_id)
        refs = [
            ref
            for record in records
            for column in (record.request, record.response)
            if column is not None and (ref := _payload.column_ref(column)) is not None
        ]
        cache = dict(self.store.get_blobs(refs)) if refs else {}

        def fetch(hashes: list[str]) -> Mapping[str, _payload.Blob]:
            missing = [h for h in hashes if h not in cache]
            if missing:
                cache.update(self.store.get_blobs(missing))
            return cache

        return [
            Step(
                record=record,
                request=_payload.unpack(record.request, fetch),
                response=None
                if record.response is None
                else _payload.unpack(record.response, fetch),
            )
            for record in records
        ]

    def artifacts_of(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifacts as the ledger records them (raises RunNotFoundError)."""
        self.get_run(run_id)
        return self.store.list_artifacts(run_id)

    def compensations(self, run_id: str) -> list[CompensationRecord]:
        """Return the compensations a run ran, newest step first (raises RunNotFoundError)."""
        self.get_run(run_id)
        return self.store.list_compensations(run_id)

    def handoffs(
        self, *, run_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[HandOffRecord]:
        """Return hand-offs to a person, newest first."""
        return self.store.list_handoffs(run_id=run_id, status=status, limit=limit)

    def inputs_of(self, run_id: str) -> dict[str, Any]:
        """Return a run's input snapshot (raises RunNotFoundError)."""
        columns = self.store.get_run_io(run_id)
        if columns is None:
            self.get_run(run_id)
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        value: dict[str, Any] = _payload.unpack(columns[0], self.store.get_blobs)
        return value

    def output_of(self, run_id: str) -> Any:
        """Return a run's recorded output (``None`` when it has none)."""
        columns = self.store.get_run_io(run_id)
        if columns is None:
            self.get_run(run_id)
            return None
        return None if columns[1] is None else _payload.unpack(columns[1], self.store.get_blobs)

    def result_of(
        self, run_id: str, *, output: Any = _MISSING, agent: str | None = None
    ) -> RunResult:
        """Build the :class:`RunResult` of a run from the ledger."""
        run = self.get_run(run_id)
        if output is _MISSING:
            output = self.output_of(run_id) if run.status is RunStatus.SUCCEEDED else None
        return RunResult(
            run_id=run.run_id,
            agent=agent or run.agent,
            status=run.status,
            output=output if run.status is RunStatus.SUCCEEDED else None,
            error_class=run.error_class,
            failure_cause=run.failure_cause,
            error=run.error,
            attempts=tuple(self.store.list_attempts(run_id)),
            tokens_used=run.tokens_used,
            cost_usd=run.cost_usd,
            input_hash=run.input_hash,
            output_hash=run.output_hash,
        )


def _refuse_second_name(existing: AgentSpec | ToolSpec | None, name: str, kind: str) -> None:
    """One function object, one registration: ``ctx.call(fn)`` must not be ambiguous."""
    if existing is not None and existing.name != name:
        raise ConfigurationError(
            f"this function is already registered as the {kind} {existing.name!r}; registering "
            f"it again as {name!r} would make calls by function ambiguous. Register a wrapper "
            "(a def or functools.partial) under the second name"
        )


def _breaker_kind(name: str) -> str:
    kind, sep, rest = name.partition(":")
    if not sep or kind not in ("agent", "tool") or not rest:
        raise ConfigurationError(
            f"breaker name {name!r} must be agent:NAME or tool:NAME (see `seawall breakers list`)"
        )
    return kind


def _destination_of(
    artifacts: str | os.PathLike[str] | Destination | None, *, sync: bool
) -> Destination | None:
    if artifacts is None:
        return None
    if isinstance(artifacts, str | os.PathLike):
        return destination_for(os.fspath(artifacts), sync=sync)
    return artifacts


_INHERITED: list[Any] = []
"""Objects a forked child inherited: kept referenced so that collecting them does not close
the parent's connections from the child."""


def _outside_runs(name: str) -> None:
    """Refuse to start an unjournaled run from inside a run.

    Raises:
        UsageError: Code of a running agent (or of its tools) called ``app.{name}``.
    """
    ctx = current_context()
    if ctx is not None:
        raise UsageError(
            f"app.{name}() was called inside run {ctx.run_id} (agent {ctx.agent!r}); a run "
            "started this way is not journaled, so a retry or a resume of this run would start it "
            f"again. Use ctx.run(agent, **inputs) (await ctx.run(...) in an async agent): it is a "
            "journaled child run",
            run_id=ctx.run_id,
            agent=ctx.agent,
        )


_MISUSE_NAMES: Final = frozenset(error.__name__ for error in MISUSE)


def _positive(label: str, value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"Seawall({label}={value!r}) must be a positive number of seconds")


__all__: Sequence[str] = ["Seawall", "Step"]
