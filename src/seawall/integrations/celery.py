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
journal, so completed side effects are not repeated. See ``docs/celery.md`` for the Celery
settings this relies on (late acknowledgement, reject on worker loss, prefetch of one, the
broker's visibility timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from seawall._executor import RunHandle, wait_for_run
from seawall._failures import RunStatus
from seawall.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    LedgerError,
    RunNotFoundError,
    SeawallError,
)
from seawall.ledger import RunQuery

try:
    from celery import signals
    from kombu.exceptions import OperationalError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "seawall.integrations.celery needs Celery: pip install 'seawall[celery]'"
    ) from exc

if TYPE_CHECKING:
    from celery import Celery, Task

    from seawall._app import Seawall
    from seawall._registry import AgentSpec
    from seawall._result import RunResult

logger = logging.getLogger("seawall.celery")

DEFAULT_TASK_NAME: Final = "seawall.take"
DEFAULT_VISIBILITY_TIMEOUT: Final = 3600.0
"""Seconds Redis (and SQS) wait before handing an unacknowledged message to another worker."""
RECHECK_MARGIN: Final = 0.25
"""Share of the lease added to a deferred delivery's delay, so it looks after the lapse."""
SWEEP_BATCH: Final = 1000
"""Pending runs a sweep sends again at most."""


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
        resend_after: Seconds a run may stay ``pending`` before a worker sends its id again
            (a broker can lose a message, e.g. Redis when a worker is killed just after
            popping it); the ledger's lease keeps the extra delivery harmless. ``None``: never.
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
        resend_after: float | None = 300.0,
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
        if resend_after is not None and (
            not isinstance(resend_after, int | float) or resend_after <= 0
        ):
            raise ConfigurationError(
                f"CeleryExecutor(resend_after={resend_after!r}) must be a positive number of "
                "seconds or None"
            )
        self.celery_app = celery_app
        self.resend_after = resend_after
        self._resent: dict[str, float] = {}
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.queue = queue
        self.task_name = task_name
        self.configure = configure
        self.retry_policy = {
            "max_retries": publish_retries,
            "interval_start": 0.0,
            "interval_step": 0.25,
            "interval_max": 0.5,
        }
        self._app: Seawall | None = None
        self._task: Task[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"<CeleryExecutor task={self.task_name!r} queue={self.queue!r}>"

    @property
    def app(self) -> Seawall:
        """The Seawall app this executor is bound to."""
        if self._app is None:
            raise ConfigurationError(
                "this CeleryExecutor is not bound to a Seawall app; pass it to "
                "Seawall(..., executor=CeleryExecutor(celery_app))"
            )
        return self._app

    # -- binding ---------------------------------------------------------------------------

    def bind(self, app: Seawall) -> None:
        """Register Seawall's task on the Celery app and set the options leases rely on."""
        if self._app is not None and self._app is not app:
            raise ConfigurationError(
                "this CeleryExecutor already serves another Seawall app; create one executor "
                "per app (and give them different task_name values)"
            )
        self._app = app
        if self.configure:
            self._configure(app.leases.duration)
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
        signals.worker_process_init.connect(self._after_fork, weak=False)
        signals.worker_ready.connect(self._start_sweeper, weak=False)
        signals.worker_shutdown.connect(self._stop_sweeper, weak=False)

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
        if self._app is not None:
            self._app.reopen_after_fork()

    def _start_sweeper(self, **_: Any) -> None:
        """In a worker's main process: sweep for lost messages until the worker stops."""
        if self.resend_after is None or self._sweeper is not None:
            return
        interval = min(self.resend_after / 2, 60.0)

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except SeawallError:
                    logger.warning("sweep for lost messages failed; trying again", exc_info=True)

        self._sweeper = threading.Thread(target=loop, name="seawall-celery-sweep", daemon=True)
        self._sweeper.start()

    def _stop_sweeper(self, **_: Any) -> None:
        self._stop.set()

    def sweep(self, now: float | None = None) -> list[str]:
        """Send again the ids of runs ``pending`` for longer than ``resend_after``.

        Workers call it periodically; each run is sent again at most once per
        ``resend_after``. A run whose message was only slow is not harmed: the first delivery
        claims it, the others find it claimed or ended.

        Returns:
            The run ids sent again.

        Raises:
            BrokerUnavailableError: The broker could not be reached.
        """
        if self.resend_after is None:
            return []
        now = time.time() if now is None else now
        cutoff = now - self.resend_after
        stale = self.app.store.list_runs(
            RunQuery(status=RunStatus.PENDING, until=cutoff, limit=SWEEP_BATCH)
        )
        self._resent = {k: at for k, at in self._resent.items() if at >= cutoff}
        sent = []
        for run in stale:
            if run.run_id in self._resent:
                continue
            self.send(run.run_id, fail_run=False)
            self._resent[run.run_id] = now
            sent.append(run.run_id)
        if sent:
            logger.warning(
                "%d run(s) pending for over %g s (a lost message?); sent again: %s",
                len(sent),
                self.resend_after,
                ", ".join(sent[:10]),
            )
        return sent

    # -- submitting ------------------------------------------------------------------------

    def submit(self, app: Seawall, spec: AgentSpec, inputs: dict[str, Any]) -> RunHandle:
        """Record the run ``pending`` and send its id to a worker.

        Raises:
            BrokerUnavailableError: The broker could not be reached; the run is recorded
                failed with this error (and is in the DLQ).
        """
        run_id, _ = app.record_run(spec, inputs, queued=True)
        self.send(run_id)
        return RunHandle(app, run_id)

    async def execute(
        self,
        app: Seawall,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None,
        workflow: str | None,
    ) -> RunResult:
        """Record the run ``pending``, send it to a worker, and wait for it in the ledger."""
        run_id, _ = app.record_run(
            spec, inputs, parent_run_id=parent_run_id, node=node, workflow=workflow, queued=True
        )
        self.send(run_id)
        return await wait_for_run(app, run_id, None)

    def send(self, run_id: str, *, countdown: float | None = None, fail_run: bool = True) -> None:
        """Send a recorded run's id to the workers.

        Args:
            run_id: The run.
            countdown: Deliver it after this many seconds.
            fail_run: When the broker cannot be reached, record the run failed with the
                error (for a first submission; not for a look again at a run).

        Raises:
            BrokerUnavailableError: The broker could not be reached.
        """
        task = self._task
        if task is None:
            raise ConfigurationError(f"{self!r} is not bound to a Seawall app")
        try:
            task.apply_async(
                (run_id,),
                queue=self.queue,
                countdown=countdown,
                retry=True,
                retry_policy=self.retry_policy,
            )
        except (OperationalError, OSError) as exc:
            broker = self.celery_app.connection_for_write().as_uri()
            error = BrokerUnavailableError(
                f"could not send run {run_id} to Celery: the broker {broker} is unreachable "
                f"({exc}). Check that it runs and that broker_url is right; the run is "
                "recorded failed (clean_abort) and waits in the DLQ: `seawall dlq redrive` "
                "runs it again once the broker is back",
                run_id=run_id,
                broker=broker,
            )
            if fail_run:
                self.app.fail_unsubmitted(run_id, error)
            raise error from exc

    def close(self) -> None:
        """Stop the sweeper thread, if this process runs one (Celery owns its connections)."""
        self._stop.set()

    # -- the worker side -------------------------------------------------------------------

    def take(self, task: Task[Any, Any], run_id: str) -> dict[str, Any]:
        """Execute one delivery of ``run_id`` in a worker (the body of Seawall's task).

        Returns:
            ``{"run_id", "status"}``; ``status`` is ``"deferred"`` when another live worker
            held the run (this delivery then looks again when that lease would lapse).

        Raises:
            RunNotFoundError: The run is not in this worker's ledger (wrong ledger URL?).
        """
        app = self.app
        try:
            result = app.take(run_id)
        except RunNotFoundError:
            logger.error(  # noqa: TRY400 - Celery logs the traceback of the failed task
                "run %s is not in the ledger %s; is this worker configured with the "
                "submitter's ledger URL?",
                run_id,
                app.store.url,
            )
            raise
        except LedgerError as exc:
            logger.warning("ledger error while taking run %s; trying again", run_id, exc_info=True)
            raise task.retry(exc=exc, countdown=app.leases.duration, max_retries=None) from exc
        if result is not None:
            return {"run_id": run_id, "status": result.status.value}
        run = app.get_run(run_id)
        lapse = run.lease_expires_at if run.lease_expires_at is not None else time.time()
        delay = max(0.0, lapse - time.time()) + RECHECK_MARGIN * app.leases.duration
        logger.info(
            "run %s is leased by %s; looking again in %.1f s", run_id, run.lease_owner, delay
        )
        self.send(run_id, countdown=delay, fail_run=False)
        return {"run_id": run_id, "status": "deferred"}


__all__ = ["DEFAULT_TASK_NAME", "CeleryExecutor"]
