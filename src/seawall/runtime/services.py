"""The runtime's services, built from the configuration by one function, at start and after a fork.

:class:`Runtime` holds what the engine uses: the store, the leases (with fencing epochs), the
registry, the payload codec, the breakers, the retry budgets, telemetry, the monitor and its
alerts, the event loop and the worker threads. :meth:`Runtime.open` builds them and is the only
code that does: ``Seawall()`` calls it once, and ``reopen_after_fork()`` calls it again in a
forked child, so nothing a child uses (a connection, a thread, a lock) is its parent's, and no
wiring (an alert hook, a heartbeat duty) can be forgotten on one of the two paths.

The engine (executor, runner, context, journal, settle) is given this object, never the
``Seawall`` facade. What the services reach back into, starting and resuming runs, is the
:class:`Engine` (:class:`seawall.runtime.launch.Launcher`), given as a factory so that this
module imports none of the modules that use it.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from seawall import _payload
from seawall._failures import MISUSE, ErrorClass, FailureCause, RunStatus
from seawall._ids import new_run_id
from seawall._payload import PayloadCodec
from seawall._result import RunResult
from seawall._version import VERSION
from seawall.artifacts import StagingArea
from seawall.errors import BreakerOpenError, RunNotFoundError, UsageError
from seawall.ledger import NewRun, RunOutcome, open_store
from seawall.observe.alerts import Alerts
from seawall.observe.cost import PriceTable
from seawall.observe.monitor import Monitor
from seawall.observe.tracing import Telemetry
from seawall.runtime.backpressure import Slots
from seawall.runtime.breakers import Breakers
from seawall.runtime.budgets import RetryBudgets
from seawall.runtime.hop import tool_threads as shared_tool_threads
from seawall.runtime.leases import Leases
from seawall.runtime.ledger_io import LedgerIO
from seawall.runtime.live import LiveRuns
from seawall.runtime.loop import AppLoop, refuse_inside_loop
from seawall.runtime.threads import Threads

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence
    from concurrent.futures import Future

    from seawall._payload import Blob
    from seawall.errors import SeawallError
    from seawall.ledger import RunRecord, Store
    from seawall.runtime.catalog import Registry
    from seawall.runtime.config import Config
    from seawall.runtime.host import Host
    from seawall.runtime.registry import AgentSpec

T = TypeVar("T")
MISSING: Final[Any] = object()
"""``output=`` not given (``None`` is an output)."""
_MISUSE_NAMES: Final = frozenset(error.__name__ for error in MISUSE)


class Engine(Protocol):
    """What the services reach back into: starting, executing and resuming runs."""

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
        """Record and execute a run of ``spec`` here."""
        ...

    async def execute(
        self,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None,
        workflow: str | None,
    ) -> RunResult:
        """Execute a run of ``spec`` on the app's executor (a graph's node)."""
        ...

    async def execute_recorded(
        self,
        spec: AgentSpec,
        run_id: str,
        inputs: dict[str, Any],
        now: float,
        *,
        host: Host | None = None,
        child: bool = False,
        begun: str | None = None,
    ) -> RunResult:
        """Execute a recorded run leased to this process (``begun``: its first attempt too)."""
        ...

    async def resume_run(self, run: RunRecord, *, host: Host | None = None) -> RunResult | None:
        """Resume one run whose lease lapsed; ``None`` when another process holds it."""
        ...

    async def take(self, run_id: str) -> RunResult | None:
        """Claim a queued run (or one whose owner died) and execute it here to its end."""
        ...


class Sweeps(Protocol):
    """This process's part in the takeover sweeps (:class:`~seawall.runtime.takeover.Takeover`)."""

    serving: bool

    def beat(self) -> None:
        """Heartbeat work: sweep when one is due."""

    def serve(self) -> None:
        """Take part in the sweeps with no runs in flight."""

    def lost_runs(self, now: float) -> list[RunRecord]:
        """Queued runs whose message the broker lost."""
        ...


class Runtime:
    """The services of one app, and the ledger reads and writes the engine shares.

    Args:
        config: The app's configuration.
        registry: Its agents, tools and graphs.
        engine: Builds the engine the services reach back into (given this object).
        sweeps: Builds this process's part in the takeover sweeps (given this object).

    Raises:
        LedgerError: The ledger cannot be opened.
    """

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        engine: Callable[[Runtime], Engine],
        sweeps: Callable[[Runtime], Sweeps],
    ) -> None:
        self.config = config
        self.registry = registry
        self.retry = config.retry
        self.tool_retry = config.tool_retry
        self.codec = PayloadCodec(config.encoders, config.max_payload_bytes)
        self.prices = PriceTable(config.prices)
        self.power = config.durability == "power"
        self.destination = config.destination
        self.staging_root = config.staging
        self.max_artifact_bytes = config.max_artifact_bytes
        self.flush_every = 64
        self.flush_interval = 0.2
        self.closed = False
        self._sweeps = sweeps
        self.telemetry = Telemetry(
            VERSION,
            tracer_provider=config.tracer_provider,
            meter_provider=config.meter_provider,
        )
        ledger = config.ledger
        self.open(
            ledger
            if ledger is not None and not isinstance(ledger, str)
            else open_store(ledger, durability=config.durability, busy_timeout=config.busy_timeout)
        )
        self.engine = engine(self)

    def open(self, store: Store) -> None:
        """Build every service over ``store``: at start, and in a forked child.

        Everything holding a connection, a thread, a lock or a queue is made here, and every
        hook between services (breaker openings to alerts, the heartbeat's duties) is wired
        here, so the two paths cannot drift apart.
        """
        config = self.config
        self.store = store
        self.io = LedgerIO(store)
        """Runs store calls for async code without making its event loop wait."""
        self.loop = AppLoop()
        self.lock = threading.Lock()
        self.threads: Threads | None = None
        self.tools: Threads | None = None
        self.live = LiveRuns()
        self.slots = Slots(
            config.max_concurrent_runs,
            queue=config.max_queued_runs,
            block=config.block,
            label="Seawall(max_concurrent_runs, max_queued_runs)",
        )
        self.agent_slots: dict[str, Slots] = {}
        self.telemetry.store = store
        self.leases = Leases(store, config.lease, self.live.cancel, self.live.lose)
        self.monitor = Monitor(store, Alerts(config.alerts), config.alert_rules)
        self.breakers = Breakers(store, self.leases.owner)
        self.breakers.on_open = self.monitor.breaker_opened
        self.budgets = RetryBudgets(store)
        self.takeover = self._sweeps(self)
        """Sweeps for runs whose owner died or whose message was lost."""
        self.leases.on_beat = self.beat
        # The loop is stopped with the app, or when it is garbage-collected without close(),
        # so no event loop outlives its app.
        self.finalizer = weakref.finalize(self, self.loop.close)

    def reopen_after_fork(self) -> None:
        """Rebuild every service in a forked child (see :meth:`open`).

        The inherited objects are kept referenced, not closed, so that collecting them does
        not disturb the parent's connections from the child.
        """
        _INHERITED.append(
            (self.store, self.io, self.loop, self.threads, self.tools, self.leases, self.monitor)
        )
        self.finalizer.detach()
        config = self.config
        self.open(
            open_store(
                self.store.url, durability=config.durability, busy_timeout=config.busy_timeout
            )
        )

    def beat(self) -> None:
        """Heartbeat work: shared retry-budget counts, monitor upkeep, takeover sweeps."""
        self.budgets.flush()
        self.monitor.beat(self.live.journals())
        self.takeover.beat()

    def close(self) -> None:
        """Stop the heartbeat, the monitor and the worker threads, and close the ledger."""
        self.closed = True
        self.leases.close()
        self.monitor.close()
        self.finalizer()
        self.io.close()
        for threads in (self.threads, self.tools):
            if threads is not None:
                threads.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    # -- threads and the app's loop ----------------------------------------------------------

    @property
    def agent_threads(self) -> Threads:
        """The worker threads sync agents run in."""
        with self.lock:
            if self.threads is None:
                self.threads = Threads(self.config.max_threads, "seawall-agent")
            return self.threads

    @property
    def tool_threads(self) -> Threads:
        """The threads the sync tools and hooks of async agents run in.

        The app's own, ``Seawall(tool_threads=N)``; by default the process's shared pool.
        """
        size = self.config.tool_threads
        if size is None:
            return shared_tool_threads()
        with self.lock:
            if self.tools is None:
                self.tools = Threads(size, "seawall-tool")
            return self.tools

    def check_open(self) -> None:
        """Refuse to work for a closed app.

        Raises:
            UsageError: The app was closed.
        """
        if self.closed:
            raise UsageError("this Seawall app was closed; create a new one")

    def sync(self, coro: Coroutine[Any, Any, T], name: str, twin: str) -> T:
        """Run ``coro`` on the app's own loop and wait for it in this thread.

        ``name`` is the sync call and ``twin`` its async twin, as the caller writes them
        (``app.run`` / ``app.arun``, ``app.handoffs.approve`` / ``app.handoffs.aapprove``).

        Raises:
            UsageError: Called inside a running event loop (it would block it), or the app
                was closed.
        """
        try:
            refuse_inside_loop(f"{name}()", f"{twin}(...)")
        except UsageError:
            coro.close()
            raise
        if self.closed:
            coro.close()
            self.check_open()
        return self.loop.run(coro)

    def submit_coroutine(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coro`` on the app's own event loop; return a future of its result."""
        self.check_open()
        return self.loop.submit(coro)

    def slots_of(self, spec: AgentSpec) -> Slots:
        """The concurrency bound of one agent in this process."""
        slots = self.agent_slots.get(spec.name)
        if slots is None:
            slots = Slots(spec.max_concurrency, label=f"agent {spec.name!r} max_concurrency")
            self.agent_slots[spec.name] = slots
        return slots

    def staging_for(self, run_id: str, attempt: int) -> StagingArea | None:
        """The staging area of one attempt (``None`` when the app has no destination)."""
        if self.destination is None:
            return None
        return StagingArea(self.staging_root, run_id, attempt, self.max_artifact_bytes)

    # -- recording runs ----------------------------------------------------------------------

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
        start: bool = False,
    ) -> tuple[str, float]:
        """Record a new run and return its id and start time.

        The run is leased to this process (at epoch 1), or, when ``queued``, recorded
        ``pending`` with no lease (epoch 0), for the first worker that claims it; ``route``
        names where it is sent (``celery:QUEUE``). With ``start``, its first attempt is
        recorded started in the same transaction.
        """
        run_id = run_id or new_run_id()
        now = time.time() if now is None else now
        create = self.store.create_and_start if start else self.store.create_run
        create(
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

    def begin_run(
        self,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None = None,
        node: str | None = None,
        workflow: str | None = None,
        run_id: str | None = None,
        now: float | None = None,
    ) -> tuple[str, float, str | BreakerOpenError]:
        """Record a new run of ``spec``, its first attempt started in the same transaction.

        Its agent's breaker is asked first: a run it refuses is recorded without an attempt.
        ``run_id`` and ``now`` are the run's id and start time when the caller chose them.

        Returns:
            The run's id, its start time (its first attempt's too) and its input hash, or the
            breaker's refusal (the run is then recorded, not started).

        Raises:
            SerializationError: An input is not JSON-serialisable (nothing is recorded).
        """
        input_hash, column, blobs = self.codec.snapshot(inputs, f"inputs of agent {spec.name!r}")
        refusal: BreakerOpenError | None = None
        if spec.breaker is not None:
            try:
                self.breakers.check(f"agent:{spec.name}", "agent", spec.breaker)
            except BreakerOpenError as exc:
                refusal = exc
        run_id, now = self.open_run(
            spec.name,
            input_hash,
            column,
            spec.code_version,
            blobs,
            parent_run_id=parent_run_id,
            workflow=workflow,
            node=node,
            run_id=run_id,
            now=now,
            start=refusal is None,
        )
        return run_id, now, input_hash if refusal is None else refusal

    def not_executed(
        self,
        run_id: str,
        error: SeawallError,
        epoch: int,
        *,
        status: RunStatus = RunStatus.FAILED,
        attempts: int = 0,
    ) -> None:
        """Record the end of a run that did not execute: refused, unrunnable or unsubmitted.

        A breaker's refusal (:class:`~seawall.BreakerOpenError`) ends it ``skipped``, class
        ``cascade``, cause ``breaker_open``; any other error ends it failed, ``clean_abort``.
        """
        refused = status is RunStatus.SKIPPED
        self.store.finish_run(
            run_id,
            RunOutcome.not_executed(
                status,
                ErrorClass.CASCADE if refused else ErrorClass.CLEAN_ABORT,
                FailureCause.BREAKER_OPEN if refused else FailureCause.EXCEPTION,
                type(error).__name__,
                error.message,
                error.to_dict(),
                attempts=attempts,
            ),
            [],
            epoch=epoch,
        )

    def refused(
        self, spec: AgentSpec, run_id: str, error: BreakerOpenError, epoch: int
    ) -> RunResult:
        """Record a run its agent's breaker did not let start (leased at ``epoch``)."""
        self.not_executed(run_id, error, epoch, status=RunStatus.SKIPPED)
        return self.result_of(run_id, agent=spec.name)

    def fail_unsubmitted(self, run_id: str, error: SeawallError) -> None:
        """Record that a run could not be handed to its executor (it goes to the DLQ).

        The run is still ``pending`` at epoch 0: if a worker got it after all, it holds a later
        epoch and this write is refused (:class:`~seawall.LeaseLostError`).
        """
        self.not_executed(run_id, error, 0)

    def counted(self, spec: AgentSpec, result: RunResult) -> bool:
        """Whether :meth:`count` may have to record the outcome (and so reach the ledger).

        A success of an agent whose breaker is known closed with no failures records nothing;
        neither does a run that is not the agent's to count (no breaker, a caller's mistake).
        """
        if spec.breaker is None or result.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            return False
        if (result.error or {}).get("type") in _MISUSE_NAMES:
            return False
        return not (result.ok and self.breakers.quiet(f"agent:{spec.name}"))

    def count(self, spec: AgentSpec, result: RunResult) -> None:
        """Feed a finished run's outcome to its agent's breaker (not a caller's mistake)."""
        if spec.breaker is None or not self.counted(spec, result):
            return
        self.breakers.outcome(
            f"agent:{spec.name}",
            "agent",
            spec.breaker,
            success=result.ok,
            reason=f"{result.failure_cause}: {(result.error or {}).get('message', '')}"[:300],
        )

    # -- reading runs ------------------------------------------------------------------------

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
        self, run_id: str, *, output: Any = MISSING, agent: str | None = None
    ) -> RunResult:
        """Build the :class:`RunResult` of a run from the ledger."""
        run = self.get_run(run_id)
        if output is MISSING:
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


_INHERITED: list[Any] = []
"""Objects a forked child inherited: kept referenced so that collecting them does not close
the parent's connections from the child."""


__all__ = ["MISSING", "Engine", "Runtime", "Sweeps"]
