"""The Seawall app: configuration, registration, run entry points, operator namespaces.

The facade holds no engine logic: ``Seawall()`` checks its configuration, builds the runtime's
services once (:func:`seawall.runtime.launch.start`), and hands calls to the engine and to the
operator namespaces (``app.ledger``, ``app.dlq``, ``app.handoffs``, ``app.breakers``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Self

from seawall._failures import RunStatus
from seawall._graph import Graph
from seawall._payload import DEFAULT_MAX_PAYLOAD, Encoder
from seawall._registration import Registrations
from seawall.artifacts import Destination, GcEntry, destination_for
from seawall.artifacts._gc import collect
from seawall.errors import ConfigurationError, SeawallError, UsageError
from seawall.observe.alerts import AlertRules
from seawall.operate.breakers import BreakerControls
from seawall.operate.dlq import DeadLetterQueue
from seawall.operate.handoffs import HandOffs
from seawall.operate.reads import LedgerReads
from seawall.operate.replay import Mode, ReplayResult, replay
from seawall.policies.retry import Retry
from seawall.runtime.catalog import Registry
from seawall.runtime.config import Config
from seawall.runtime.context import current_context
from seawall.runtime.executor import Executor, LocalExecutor, RunHandle, wait_for_run
from seawall.runtime.launch import start
from seawall.runtime.verification import decide

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from seawall._result import RunResult
    from seawall.ledger import AlertRecord, Durability, Store
    from seawall.observe.alerts import AlertSink
    from seawall.observe.cost import Price
    from seawall.runtime.services import Runtime

DEFAULT_TOOL_RETRY: Final = Retry(attempts=3, initial=0.1, max_delay=2.0)
DEFAULT_STAGING: Final = ".seawall/staging"
DEFAULT_MAX_ARTIFACT: Final = 1 << 30
logger = logging.getLogger("seawall")


class Seawall(Registrations):
    """One Seawall app: the ledger, the registry of agents and tools, and the executor.

    Operators reach the ledger through namespaces: ``app.ledger`` (reads), ``app.dlq``,
    ``app.handoffs``, ``app.breakers``. The one rule for sync and async: an operation that
    executes agents or waits for a run has an async twin named with an ``a`` in front
    (``run``/``arun``, ``wait``/``await_run``, ``resume``/``aresume``, ``take``/``atake``,
    ``replay``/``areplay``, ``cancel``/``acancel``, ``app.dlq.redrive``/``aredrive``,
    ``app.handoffs.approve``/``aapprove`` and ``reject``/``areject``), and the sync one refuses
    to run inside an event loop, naming its twin. Reads, ``submit`` and the breaker and DLQ
    bookkeeping are single short ledger statements: plain methods, the same for both.

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
        tool_threads: Threads for the sync tools (and hooks) of async agents: as many sync
            calls as run at once. ``None`` (default): a pool shared by the process,
            ``min(32, CPUs + 4)`` threads, as asyncio's default executor. Raise it when async
            agents call sync tools that wait on the network.
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

    def __init__(
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
        tool_threads: int | None = None,
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
        config = _configure(
            ledger,
            durability=durability,
            lease=lease,
            busy_timeout=busy_timeout,
            max_payload_bytes=max_payload_bytes,
            encoders=encoders,
            retry=retry,
            tool_retry=tool_retry,
            max_threads=max_threads,
            tool_threads=tool_threads,
            artifacts=artifacts,
            staging=staging,
            max_artifact_bytes=max_artifact_bytes,
            max_concurrent_runs=max_concurrent_runs,
            max_queued_runs=max_queued_runs,
            overload=overload,
            prices=prices,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            alerts=alerts,
            alert_rules=alert_rules,
        )
        self.retry = config.retry
        self.tool_retry = config.tool_retry
        self._registry = Registry()
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        self.runtime: Runtime
        """The runtime's services (store, leases, breakers, monitor...), for executors and
        integrations: the engine is given these, never the app."""
        self.runtime, self._engine = start(config, self._registry, self.executor)
        self.ledger = LedgerReads(self.runtime)
        """Reads: runs, attempts, steps, artifacts, verdicts, alerts, drift reports."""
        self.dlq = DeadLetterQueue(self.runtime)
        """The dead-letter queue: list, redrive, resolve, purge."""
        self.handoffs = HandOffs(self.runtime)
        """Hand-offs to a person: list, get, approve, reject."""
        self.breakers = BreakerControls(self.runtime)
        """Circuit breakers: list, events, open, reset."""
        if config.destination is not None and config.staging.is_dir():
            try:
                self.gc()
            except SeawallError:
                logger.warning("garbage collection of %s failed", config.staging, exc_info=True)
        try:
            self.executor.bind(self.runtime)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<Seawall ledger={self.store.url!r} agents={len(self._registry.agents)}>"

    @property
    def store(self) -> Store:
        """The ledger's store (this process's connection; a new one after a fork)."""
        return self.runtime.store

    def reopen_after_fork(self) -> None:
        """Give a forked child process its own services: ledger connection, leases, threads.

        A connection, a thread or an event loop inherited through ``fork()`` must not be
        used by the child: distributed executors call this in every worker process they fork
        (Celery's prefork pool). The services are rebuilt by the same code that built them at
        start; the inherited ones are left alone, not closed, so the parent is not disturbed.
        """
        self.runtime.reopen_after_fork()

    def close(self) -> None:
        """Stop the heartbeat and the worker threads, and close the ledger."""
        if self.runtime.closed:
            return
        self.executor.close()
        self.runtime.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def gc(self, *, dry_run: bool = False) -> list[GcEntry]:
        """Remove staging left by dead processes and finished runs; live runs are never touched.

        Args:
            dry_run: Only report what would be removed.

        Returns:
            One entry per staging folder examined.
        """
        return collect(self.store, self.runtime.staging_root, time.time(), dry_run=dry_run)

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
        return self.runtime.sync(self.arun(agent, **inputs), "app.run", "app.arun")

    async def arun(self, agent: Callable[..., Any] | str | Graph, /, **inputs: Any) -> RunResult:
        """Async twin of :meth:`run`.

        Async agents run on the calling event loop (``run`` uses the app's own loop).
        """
        _outside_runs("arun")
        rt = self.runtime
        rt.check_open()
        if isinstance(agent, Graph):
            self.graph(agent)
            async with rt.slots:
                return await self._engine.run_graph(agent, inputs)
        spec = rt.registry.agent(agent)
        async with rt.slots:
            return await self.executor.execute(
                rt, spec, inputs, parent_run_id=None, node=None, workflow=None
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
        self.runtime.check_open()
        return self.executor.submit(self.runtime, self.runtime.registry.agent(agent), inputs)

    def wait(self, run_id: str, *, timeout: float | None = None) -> RunResult:
        """Wait until a run ends (or awaits a person) and return its result from the ledger.

        Works for any run in the ledger, whichever process or worker executes it.

        Raises:
            RunNotFoundError: No run has this id.
            WaitTimeoutError: It had not ended after ``timeout`` seconds (it goes on).
        """
        return self.runtime.sync(
            self.await_run(run_id, timeout=timeout), "app.wait", "app.await_run"
        )

    async def await_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the twin of wait(), same keywords
    ) -> RunResult:
        """Async twin of :meth:`wait`."""
        return await wait_for_run(self.runtime, run_id, timeout)

    def resume(self, run_id: str | None = None) -> list[RunResult]:
        """Resume runs whose owner died (their lease lapsed), serving their journals.

        Runs recorded for a worker whose message was lost (``pending``, never claimed, and
        missing from the broker's queue) are taken and executed here too.

        Args:
            run_id: Resume only this run (it must be unfinished with a lapsed lease).

        Returns:
            The results of the runs resumed by this call.
        """
        return self.runtime.sync(self.aresume(run_id), "app.resume", "app.aresume")

    async def aresume(self, run_id: str | None = None) -> list[RunResult]:
        """Async twin of :meth:`resume`."""
        self.runtime.check_open()
        return await self._engine.resume(run_id)

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
        return self.runtime.sync(self.atake(run_id), "app.take", "app.atake")

    async def atake(self, run_id: str) -> RunResult | None:
        """Async twin of :meth:`take`."""
        return await self._engine.take(run_id)

    def cancel(self, run_id: str, *, reason: str = "") -> bool:
        """Cancel a run: it stops at its next ctx call and no mutating call starts afterwards.

        The run ends ``cancelled`` after the compensations of its completed side effects run.
        Works from any process sharing the ledger (the owner notices within a second).

        Returns:
            Whether the cancellation was recorded (false when the run had already ended).

        Raises:
            RunNotFoundError: No run has this id.
            UsageError: Called inside a running event loop (use ``await app.acancel``).
        """
        return self.runtime.sync(self.acancel(run_id, reason=reason), "app.cancel", "app.acancel")

    async def acancel(self, run_id: str, *, reason: str = "") -> bool:
        """Async twin of :meth:`cancel`."""
        rt = self.runtime
        rt.check_open()
        run = await rt.io.run(rt.get_run, run_id)
        recorded = await rt.io.run(rt.store.request_cancel, run_id, reason, time.time())
        if recorded:
            rt.live.cancel({run_id: reason})
            if run.status is RunStatus.AWAITING_HUMAN:
                waiting = await rt.io.run(rt.store.list_handoffs, run_id=run_id, status="open")
                for handoff in waiting:
                    with contextlib.suppress(SeawallError):
                        await decide(
                            rt,
                            handoff.handoff_id,
                            approve=False,
                            output=None,
                            edited=False,
                            by="cancel",
                            note=reason or "cancelled",
                        )
        return recorded

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
            UsageError: The run is still running, or this is called inside an event loop.
            RegistrationError: Its agent is not registered here (names its code version).
            SnapshotError: Its input snapshot is missing or does not match its hash.
        """
        return self.runtime.sync(
            self.areplay(run_id, mode=mode, from_node=from_node, allow_mutations=allow_mutations),
            "app.replay",
            "app.areplay",
        )

    async def areplay(
        self,
        run_id: str,
        *,
        mode: Mode = "recorded",
        from_node: str | None = None,
        allow_mutations: bool = False,
    ) -> ReplayResult:
        """Async twin of :meth:`replay`."""
        self.runtime.check_open()
        return await replay(
            self.runtime, run_id, mode, from_node=from_node, allow_mutations=allow_mutations
        )


def _configure(
    ledger: str | Store | None,
    *,
    durability: Durability,
    lease: float,
    busy_timeout: float,
    max_payload_bytes: int,
    encoders: Mapping[type, Encoder] | None,
    retry: Retry | None,
    tool_retry: Retry | None,
    max_threads: int,
    tool_threads: int | None,
    artifacts: str | os.PathLike[str] | Destination | None,
    staging: str | os.PathLike[str],
    max_artifact_bytes: int,
    max_concurrent_runs: int | None,
    max_queued_runs: int | None,
    overload: Literal["wait", "raise"],
    prices: Mapping[str, Price | Mapping[str, float]] | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    alerts: Sequence[AlertSink | Callable[[AlertRecord], Any]],
    alert_rules: AlertRules | None,
) -> Config:
    """Check the options of ``Seawall()`` and gather them (raises ConfigurationError)."""
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
        raise ConfigurationError(f"Seawall(max_threads={max_threads!r}) must be a positive integer")
    if tool_threads is not None and (
        not isinstance(tool_threads, int) or isinstance(tool_threads, bool) or tool_threads < 1
    ):
        raise ConfigurationError(
            f"Seawall(tool_threads={tool_threads!r}) must be a positive integer, or None for "
            "the process's shared pool"
        )
    for label, policy in (("retry", retry), ("tool_retry", tool_retry)):
        if policy is not None and not isinstance(policy, Retry):
            raise ConfigurationError(f"Seawall({label}={policy!r}) must be a seawall.Retry")
    if encoders is not None and not all(
        isinstance(t, type) and callable(fn) for t, fn in dict(encoders).items()
    ):
        raise ConfigurationError(
            "Seawall(encoders=...) must map types to functions, e.g. {datetime: datetime.isoformat}"
        )
    if overload not in ("wait", "raise"):
        raise ConfigurationError(f"Seawall(overload={overload!r}) must be 'wait' or 'raise'")
    return Config(
        ledger=ledger,
        durability=durability,
        lease=lease,
        busy_timeout=busy_timeout,
        max_payload_bytes=max_payload_bytes,
        encoders=encoders,
        retry=retry or Retry(),
        tool_retry=tool_retry or DEFAULT_TOOL_RETRY,
        max_threads=max_threads,
        tool_threads=tool_threads,
        destination=_destination_of(artifacts, sync=durability == "power"),
        staging=Path(staging),
        max_artifact_bytes=max_artifact_bytes,
        max_concurrent_runs=max_concurrent_runs,
        max_queued_runs=max_queued_runs,
        block=overload == "wait",
        prices=prices,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        alerts=alerts,
        alert_rules=alert_rules or AlertRules(),
    )


def _destination_of(
    artifacts: str | os.PathLike[str] | Destination | None, *, sync: bool
) -> Destination | None:
    if artifacts is None:
        return None
    if isinstance(artifacts, str | os.PathLike):
        return destination_for(os.fspath(artifacts), sync=sync)
    return artifacts


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


def _positive(label: str, value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"Seawall({label}={value!r}) must be a positive number of seconds")


__all__: Sequence[str] = ["Seawall"]
