"""``seawall dashboard`` and ``seawall metrics``: the ledger in a browser and in Prometheus text."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from seawall import MissingExtraError, SeawallError
from seawall.cli._common import (
    LedgerOption,
    existing_ledger,
    fail,
    ledger_url,
    load_app,
    open_app,
    using,
)


def metrics(ledger: LedgerOption = None) -> None:
    """Print the ledger's metrics in the Prometheus text format (runs of every process)."""
    try:
        from seawall.observe.prometheus import exposition  # noqa: PLC0415 - optional extra
    except SeawallError as exc:
        raise fail(exc) from exc
    with using(open_app(ledger)) as app:
        sys.stdout.write(exposition(app.store))


def dashboard(
    host: Annotated[
        str, typer.Option(help="Address to bind; keep 127.0.0.1 unless behind a proxy.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    app_spec: Annotated[
        str | None,
        typer.Option(
            "--app",
            help="Your Seawall app as module:attribute: enables replay, redrive and hand-off "
            "decisions (they run your agents).",
        ),
    ] = None,
    ledger: LedgerOption = None,
) -> None:
    """Serve the dashboard: overview, runs, run detail, DLQ, breakers, hand-offs, drift, /metrics.

    Reading needs nothing. Actions need the operator token: $SEAWALL_DASHBOARD_TOKEN, else a
    new one printed at start.
    """
    try:
        import uvicorn  # noqa: PLC0415 - optional extra

        from seawall.dashboard import create_app  # noqa: PLC0415 - optional extra
        from seawall.dashboard._security import TOKEN_ENV, new_token  # noqa: PLC0415
    except ImportError as exc:
        missing = MissingExtraError(
            f"the dashboard needs its extra ({exc.name} is missing): "
            "pip install 'seawall[dashboard]'"
        )
        raise fail(missing) from exc
    except SeawallError as exc:
        raise fail(exc) from exc
    user_app = None
    if app_spec is not None:
        user_app = load_app(app_spec, ledger)
    else:
        existing_ledger(ledger)  # the dashboard reads a ledger; it never creates an empty one
    token = os.environ.get(TOKEN_ENV) or ""
    generated = not token
    if generated:
        token = new_token()
    try:
        web = create_app(ledger_url(ledger), app=user_app, token=token)
    except SeawallError as exc:
        raise fail(exc) from exc
    # Plain lines (never wrapped), so the token can be copied whole.
    typer.echo(f"Seawall dashboard on http://{host}:{port}/ (ledger {ledger_url(ledger)})")
    if generated:
        typer.echo(f"Operator token (set {TOKEN_ENV} to choose one): {token}")
    if user_app is None:
        typer.echo("Read-only for agents: pass --app module:attr to replay, redrive, decide.")
    uvicorn.run(web, host=host, port=port, log_level="warning")
