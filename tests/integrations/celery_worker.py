"""The Seawall app of the Celery tests, imported by the test process and by every worker.

Workers are started with ``celery -A tests.integrations.celery_worker:celery_app worker``; the
``SEAWALL_CELERY_*`` environment variables (set by the tests) say which ledger, broker and
queue they use. The test process calls :func:`build` with the same values.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

from seawall import Context, From, Graph, Input, Retry, Seawall
from seawall.integrations.celery import CeleryExecutor

LEASE = 1.5
VISIBILITY = 4.0


def build(
    ledger: str,
    broker: str,
    queue: str,
    prefix: str,
    effects: Path,
    visibility: float | None = VISIBILITY,
) -> tuple[Celery, Seawall]:
    """Return the Celery app and the Seawall app, with the test agents registered.

    ``visibility``: the broker's visibility timeout (``None``: Seawall's default, an hour).
    """
    celery_app = Celery("seawall-tests", broker=broker, set_as_current=False)
    options: dict[str, Any] = {} if visibility is None else {"visibility_timeout": visibility}
    if broker.startswith("redis"):
        # Own keys on the shared Redis; restore a dead worker's messages within a second or so.
        options |= {
            "global_keyprefix": prefix,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
    celery_app.conf.broker_transport_options = options
    celery_app.conf.broker_connection_retry_on_startup = True
    app = Seawall(
        ledger,
        lease=LEASE,
        retry=Retry(attempts=3, initial=0.01, max_delay=0.05),
        executor=CeleryExecutor(celery_app, queue=queue),
    )
    register(app, effects)
    return celery_app, app


def register(app: Seawall, effects: Path) -> None:
    """Register the agents and tools every process of the tests shares."""

    def log_effect(kind: str, order: str, key: str) -> str:
        with effects.open("a") as out:
            out.write(f"{kind}:{order}:{os.getpid()}:{key}\n")
        return f"{kind}-{order}"

    @app.tool(mutating=True)
    def charge(order: str, idempotency_key: str) -> str:
        return log_effect("charge", order, idempotency_key)

    @app.tool(mutating=True)
    def ship(order: str, idempotency_key: str) -> str:
        return log_effect("ship", order, idempotency_key)

    @app.agent
    def checkout(ctx: Context, order: str, hold: str | None = None) -> dict[str, Any]:
        charged = ctx.call(charge, order)
        if hold is not None:
            Path(hold + ".reached").touch()
            while Path(hold).exists():
                time.sleep(0.02)
        shipped = ctx.call(ship, order)
        return {"charged": charged, "shipped": shipped, "worker_pid": os.getpid()}

    @app.agent
    def double(ctx: Context, x: int) -> int:
        return 2 * x

    @app.agent
    def add_one(ctx: Context, x: int) -> int:
        return x + 1

    graph = Graph("double_then_add")
    graph.add(double, inputs={"x": Input("x")})
    graph.add(add_one, inputs={"x": From("double")})
    app.graph(graph)


if "SEAWALL_CELERY_LEDGER" in os.environ:
    celery_app, app = build(
        os.environ["SEAWALL_CELERY_LEDGER"],
        os.environ["SEAWALL_CELERY_BROKER"],
        os.environ["SEAWALL_CELERY_QUEUE"],
        os.environ["SEAWALL_CELERY_PREFIX"],
        Path(os.environ["SEAWALL_CELERY_EFFECTS"]),
        float(os.environ["SEAWALL_CELERY_VISIBILITY"])
        if os.environ.get("SEAWALL_CELERY_VISIBILITY")
        else None,
    )
