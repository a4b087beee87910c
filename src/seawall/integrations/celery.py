"""Distributed execution on Celery: agent runs (and graph nodes) execute in worker processes.

::

    celery_app = Celery("yourapp", broker="redis://127.0.0.1:6379/0")
    app = Seawall("postgresql://...", executor=CeleryExecutor(celery_app))

The submitter records each run ``pending`` in the shared ledger and sends its id (nothing
else) to Celery. A worker (``celery -A yourapp:celery_app worker``, importing the same module,
so the same agents are registered) claims the run's lease in the ledger and executes it under
the same coordinator as a local run: journal, idempotency keys, staging and commit,
verification, breakers, DLQ. The submitter reads the outcome back from the ledger.

The ledger's lease, not the broker, decides who executes a run: a delivery whose run is
leased by a live worker does not execute it, and looks again when that lease would lapse; a
delivery whose run's owner died (its lease lapsed) takes the run over and resumes it from its
journal, so completed side effects are not repeated.

The broker is not relied on to notice a dead worker: every worker's main process takes part in
the takeover sweeps (:mod:`seawall.runtime.takeover`), which send again the id of a run whose owner
stopped renewing its lease, and of a ``pending`` run whose message the broker lost, once each
per bound, within about two lease periods. See ``docs/celery.md`` for the Celery settings this
relies on (late acknowledgement, reject on worker loss, prefetch of one).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from seawall.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    LedgerError,
    RunNotFoundError,
)
from seawall.runtime.executor import RunHandle, wait_for_run

try:
    from celery import signals
    from kombu.exceptions import OperationalError
    from kombu.transport import virtual
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "seawall.integrations.celery needs Celery: pip install 'seawall[celery]'"
    ) from exc

if TYPE_CHECKING:
    from celery import Celery, Task

    from seawall._result import RunResult
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime

logger = logging.getLogger("seawall.celery")

DEFAULT_TASK_NAME: Final = "seawall.take"
DEFAULT_VISIBILITY_TIMEOUT: Final = 3600.0
"""Seconds Redis (and SQS) wait before handing an unacknowledged message to another worker."""
RECHECK_MARGIN: Final = 0.25
"""Share of the lease added to a deferred delivery's delay, so it looks after the lapse."""
TAKEOVER_SUFFIX: Final = ".takeover"
"""Appended to the queue's name: the queue of ids the takeover sweeps send again."""


class CeleryExecutor:
    """Execute runs in Celery workers; the ledger (shared by every process) holds the outcome.

    Construct it with your Celery app and pass it to ``Seawall(..., executor=...)``. Binding
    registers one task (``task_name``) on the Celery app and sets the Celery options leases
    rely on: ``task_acks_late``, ``task_reject_on_worker_lost``,
    ``worker_prefetch_multiplier=1`` and (when you did not) the broker's
    ``visibility_timeout``.

    Args:
        celery_app: The Celery app (its broker URL picks Redis, RabbitMQ, ...).
        queue: The Celery queue runs are sent to (default: Celery's default queue). Start the
            workers with ``-Q`` naming it.
        task_name: The name of Seawall's task; change it only when two Seawall apps share one
            Celery app.
        publish_retries: Times a failed publish is retried (over about a second) before the
            broker is reported unavailable.
        configure: Set the Celery options above (``False``: you set them yourself).

    Raises:
        ConfigurationError: ``celery_app`` is not a Celery app, or the broker's visibility
            timeout is not longer than the app's lease.
    """

    def __init__(
        self,
        celery_app: Celery,
        *,
        queue: str | None = None,
        task_name: str = DEFAULT_TASK_NAME,
        publish_retries: int = 2,
        configure: bool = True,
    ) -> None:
        if not hasattr(celery_app, "task") or not hasattr(celery_app, "conf"):
            raise ConfigurationError(
                f"CeleryExecutor({celery_app!r}) needs a celery.Celery app, e.g. "
                "CeleryExecutor(Celery('yourapp', broker='redis://127.0.0.1:6379/0'))"
            )
        if not isinstance(publish_retries, int) or publish_retries < 0:
            raise ConfigurationError(
                f"CeleryExecutor(publish_retries={publish_retries!r}) must be an integer >= 0"
            )
        self.celery_app = celery_app
        self.queue = queue
        self.task_name = task_name
        self.configure = configure
        self.retry_policy = {
            "max_retries": publish_retries,
            "interval_start": 0.0,
            "interval_step": 0.25,
            "interval_max": 0.5,
        }
        self._rt: Runtime | None = None
        self._task: Task[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"<CeleryExecutor task={self.task_name!r} queue={self.queue!r}>"

    @property
    def runtime(self) -> Runtime:
        """The services of the Seawall app this executor is bound to."""
        if self._rt is None:
            raise ConfigurationError(
                "this CeleryExecutor is not bound to a Seawall app; pass it to "
                "Seawall(..., executor=CeleryExecutor(celery_app))"
            )
        return self._rt

    # -- binding ---------------------------------------------------------------------------

    def bind(self, rt: Runtime) -> None:
        """Register Seawall's task on the Celery app and set the options leases rely on."""
        if self._rt is not None and self._rt is not rt:
            raise ConfigurationError(
                "this CeleryExecutor already serves another Seawall app; create one executor "
                "per app (and give them different task_name values)"
            )
        self._rt = rt
        if self.configure:
            self._configure(rt.leases.duration)
        executor = self

        def take(task: Task[Any, Any], run_id: str) -> dict[str, Any]:
            return executor.take(task, run_id)

        self._task = self.celery_app.task(
            name=self.task_name,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            typing=False,
        )(take)
        signals.celeryd_after_setup.connect(self._consume_takeovers, weak=False)
        signals.worker_process_init.connect(self._after_fork, weak=False)
        signals.worker_ready.connect(self._serve, weak=False)
        signals.worker_shutdown.connect(self._stop_serving, weak=False)

    def _configure(self, lease: float) -> None:
        conf = self.celery_app.conf
        conf.task_acks_late = True
        conf.task_reject_on_worker_lost = True
        conf.worker_prefetch_multiplier = 1
        options = dict(conf.broker_transport_options or {})
        visibility = float(options.setdefault("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))
        if visibility <= lease:
            raise ConfigurationError(
                f"the broker's visibility_timeout ({visibility:g} s) must be longer than the "
                f"Seawall lease ({lease:g} s), or a message could be handed to another worker "
                "while its run's owner is still alive and renewing; raise "
                "broker_transport_options['visibility_timeout'] above your longest run"
            )
        conf.broker_transport_options = options

    def _after_fork(self, **_: Any) -> None:
        if self._rt is not None:
            self._rt.reopen_after_fork()

    def _consume_takeovers(self, instance: Any = None, **_: Any) -> None:
        """A worker consuming the runs' queue consumes its takeover queue too.

        Ids sent again by the takeover sweeps go there, so they do not wait behind the
        backlog of the runs' queue (a worker takes from both queues in turn).
        """
        app = getattr(instance, "app", None)
        if app is not self.celery_app:
            return
        queues = app.amqp.queues
        if self._queue_name() in queues.consume_from:
            queues.select_add(self.takeover_queue)

    def _serve(self, **_: Any) -> None:
        """In a worker's main process: take part in the takeover sweeps until it stops."""
        if self._rt is not None:
            self._rt.takeover.serve()

    def _stop_serving(self, **_: Any) -> None:
        if self._rt is not None:
            self._rt.takeover.serving = False

    # -- the takeover sweeps' relay (seawall.runtime.takeover.Relay) ------------------------------

    @property
    def route(self) -> str:
        """``celery:QUEUE``: the worker processes consuming it share one sweeper."""
        return f"celery:{self._queue_name()}"

    @property
    def takeover_queue(self) -> str:
        """The queue of the ids the takeover sweeps send again (``QUEUE.takeover``)."""
        return self._queue_name() + TAKEOVER_SUFFIX

    def resend(self, run_id: str) -> None:
        """Send a recorded run's id to the workers again (a takeover sweep's hand-over).

        It goes to :attr:`takeover_queue`, which the workers of the runs' queue take from in
        turn with it: a dead worker's run does not wait behind the queue's backlog.

        Raises:
            BrokerUnavailableError: The broker could not be reached.
        """
        self.send(run_id, fail_run=False, queue=self.takeover_queue)

    def queued(self) -> int:
        """Return how many messages wait in the runs' queue and the takeover queue.

        Messages a worker has reserved are not counted.

        Raises:
            BrokerUnavailableError: The broker could not be reached.
        """
        names = [self._queue_name(), self.takeover_queue]
        with self.celery_app.connection_for_read() as conn:
            unreachable = (*conn.connection_errors, OperationalError, OSError)
            try:
                conn.ensure_connection(max_retries=1)
                return sum(_queue_length(conn, name) for name in names)
            except unreachable as exc:
                raise self._unavailable(
                    f"could not count the messages of the queues {names}", exc
                ) from exc

    def _queue_name(self) -> str:
        return str(self.queue or self.celery_app.conf.task_default_queue)

    def _unavailable(
        self, what: str, exc: BaseException, then: str = "", **fields: Any
    ) -> BrokerUnavailableError:
        broker = self.celery_app.connection_for_write().as_uri()
        return BrokerUnavailableError(
            f"{what}: the broker {broker} is unreachable ({exc}). Check that it runs and that "
            f"broker_url is right{then}",
            broker=broker,
            **fields,
        )

    # -- submitting ------------------------------------------------------------------------

    def submit(self, rt: Runtime, spec: AgentSpec, inputs: dict[str, Any]) -> RunHandle:
        """Record the run ``pending`` and send its id to a worker.

        Raises:
            BrokerUnavailableError: The broker could not be reached; the run is recorded
                failed with this error (and is in the DLQ).
        """
        run_id, _ = rt.record_run(spec, inputs, queued=True, route=self.route)
        self.send(run_id)
        return RunHandle(rt, run_id)

    async def execute(
        self,
        rt: Runtime,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None,
        workflow: str | None,
    ) -> RunResult:
        """Record the run ``pending``, send it to a worker, and wait for it in the ledger."""
        run_id, _ = rt.record_run(
            spec,
            inputs,
            parent_run_id=parent_run_id,
            node=node,
            workflow=workflow,
            queued=True,
            route=self.route,
        )
        self.send(run_id)
        return await wait_for_run(rt, run_id, None)

    def send(
        self,
        run_id: str,
        *,
        countdown: float | None = None,
        fail_run: bool = True,
        queue: str | None = None,
    ) -> None:
        """Send a recorded run's id to the workers.

        Args:
            run_id: The run.
            countdown: Deliver it after this many seconds.
            fail_run: When the broker cannot be reached, record the run failed with the
                error (for a first submission; not for a look again at a run).
            queue: The queue (default: the executor's).

        Raises:
            BrokerUnavailableError: The broker could not be reached.
        """
        task = self._task
        if task is None:
            raise ConfigurationError(f"{self!r} is not bound to a Seawall app")
        try:
            task.apply_async(
                (run_id,),
                queue=queue or self.queue,
                countdown=countdown,
                retry=True,
                retry_policy=self.retry_policy,
            )
        except (OperationalError, OSError) as exc:
            error = self._unavailable(
                f"could not send run {run_id} to Celery",
                exc,
                "; the run is recorded failed (clean_abort) and waits in the DLQ: `seawall dlq "
                "redrive` runs it again once the broker is back"
                if fail_run
                else "",
                run_id=run_id,
            )
            if fail_run:
                self.runtime.fail_unsubmitted(run_id, error)
            raise error from exc

    def close(self) -> None:
        """Nothing to release: Celery owns its connections, the app its heartbeat."""

    # -- the worker side -------------------------------------------------------------------

    def take(self, task: Task[Any, Any], run_id: str) -> dict[str, Any]:
        """Execute one delivery of ``run_id`` in a worker (the body of Seawall's task).

        Returns:
            ``{"run_id", "status"}``; ``status`` is ``"deferred"`` when another live worker
            held the run (this delivery then looks again when that lease would lapse).

        Raises:
            RunNotFoundError: The run is not in this worker's ledger (wrong ledger URL?).
        """
        rt = self.runtime
        try:
            result = rt.sync(rt.engine.take(run_id), "app.take", "app.atake")
        except RunNotFoundError:
            logger.error(  # noqa: TRY400 - Celery logs the traceback of the failed task
                "run %s is not in the ledger %s; is this worker configured with the "
                "submitter's ledger URL?",
                run_id,
                rt.store.url,
            )
            raise
        except LedgerError as exc:
            logger.warning("ledger error while taking run %s; trying again", run_id, exc_info=True)
            raise task.retry(exc=exc, countdown=rt.leases.duration, max_retries=None) from exc
        if result is not None:
            return {"run_id": run_id, "status": result.status.value}
        run = rt.get_run(run_id)
        lapse = run.lease_expires_at if run.lease_expires_at is not None else time.time()
        delay = max(0.0, lapse - time.time()) + RECHECK_MARGIN * rt.leases.duration
        logger.info(
            "run %s is leased by %s; looking again in %.1f s", run_id, run.lease_owner, delay
        )
        self.send(run_id, countdown=delay, fail_run=False)
        return {"run_id": run_id, "status": "deferred"}


def _queue_length(conn: Any, name: str) -> int:
    """The messages waiting in queue ``name`` (0 when the broker does not know it)."""
    channel = conn.channel()
    try:
        # A broker emulated by Kombu (Redis, SQS) counts a queue it has not seen as empty;
        # RabbitMQ's passive declare fails on it (and closes the channel), creating nothing.
        passive = not isinstance(channel, virtual.Channel)
        try:
            return int(channel.queue_declare(queue=name, passive=passive).message_count)
        except conn.channel_errors:
            return 0
    finally:
        with contextlib.suppress(*conn.channel_errors, *conn.connection_errors):
            channel.close()


__all__ = ["DEFAULT_TASK_NAME", "TAKEOVER_SUFFIX", "CeleryExecutor"]
