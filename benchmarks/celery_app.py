"""The app of the Celery load benchmark, imported by the submitting process and every worker.

Workers run ``celery -A benchmarks.celery_app:celery_app worker``; the ``SEAWALL_BENCH_*``
environment variables name the ledger, broker, queue and side-effect folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery, signals

from seawall import Context, Executor, Seawall
from seawall.integrations.celery import CeleryExecutor

LEASE = 2.0


def celery_for(broker: str, prefix: str) -> Celery:
    """A Celery app on ``broker`` whose Redis keys start with ``prefix``.

    The broker's visibility timeout is left at its default (an hour): a killed worker's runs
    are taken over by the takeover sweeps, not redelivered by Redis.
    """
    celery_app = Celery("seawall-bench", broker=broker, set_as_current=False)
    options: dict[str, Any] = {}
    if broker.startswith("redis"):
        options |= {"global_keyprefix": prefix}
    celery_app.conf.broker_transport_options = options
    celery_app.conf.broker_connection_retry_on_startup = True
    return celery_app


def build(ledger: str, effects: Path, executor: Executor | None) -> Seawall:
    """The Seawall app with the benchmark's one agent: one journaled side effect per run."""
    app = Seawall(ledger, lease=LEASE, executor=executor)

    def applied(result: Any, key: str) -> bool:
        # A process killed between creating the file and writing its line applied nothing.
        path = effects / key
        return path.exists() and path.stat().st_size > 0

    @app.tool(mutating=True, read_back=applied)
    def effect(key: str) -> str:
        # One file per key, appended to (one write of one line: all or nothing): a second
        # application would show as a second line.
        fd = os.open(effects / key, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        return key

    @app.agent
    def single_step(ctx: Context, key: str) -> str:
        result: str = ctx.call(effect, key)
        return result

    return app


def _announce_ready(**_: Any) -> None:
    """Tell the benchmark this worker consumes (its log level hides Celery's own line)."""
    (Path(os.environ["SEAWALL_BENCH_READY"]) / str(os.getpid())).touch()


if "SEAWALL_BENCH_LEDGER" in os.environ:
    signals.worker_ready.connect(_announce_ready, weak=False)
    celery_app = celery_for(os.environ["SEAWALL_BENCH_BROKER"], os.environ["SEAWALL_BENCH_PREFIX"])
    app = build(
        os.environ["SEAWALL_BENCH_LEDGER"],
        Path(os.environ["SEAWALL_BENCH_EFFECTS"]),
        CeleryExecutor(celery_app, queue=os.environ["SEAWALL_BENCH_QUEUE"]),
    )
