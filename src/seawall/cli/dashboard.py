"""``seawall dashboard`` and ``seawall metrics``: the ledger in a browser and in Prometheus text."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time
from typing import Annotated

import typer

from seawall import ConfigurationError, MissingExtraError
from seawall.cli._inputs import LedgerOption, existing_ledger, ledger_url, load_app, open_app
from seawall.cli._output import fail


def metrics(ledger: LedgerOption = None) -> None:
    """Print the ledger's metrics in the Prometheus text format (runs of every process)."""
    from seawall.observe.prometheus import exposition  # noqa: PLC0415 - optional extra

    with open_app(ledger) as app:
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
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A host name to answer to besides the loopback names ('*.example.com' for "
            "subdomains); repeatable. Needed behind a proxy or with --host 0.0.0.0.",
        ),
    ] = None,
    public_read: Annotated[
        bool,
        typer.Option(
            "--public-read", help="Let anyone who reaches it read (acting still needs a token)."
        ),
    ] = False,
    operators: Annotated[
        Path | None,
        typer.Option(
            help="A JSON file of named operators, {name: token}: each may act, and every "
            "decision records the name (tokens of 16 characters or more)."
        ),
    ] = None,
    viewers: Annotated[
        Path | None,
        typer.Option(help="A JSON file of named readers, {name: token}: they read, never act."),
    ] = None,
    trace_url: Annotated[
        str | None,
        typer.Option(help="Link to your tracing UI: a URL with {trace_id}, {span_id}, {run_id}."),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Show times in this IANA zone (default: the server's).")
    ] = None,
) -> None:
    """Serve the dashboard: overview, runs, run detail, DLQ, breakers, hand-offs, drift, /metrics.

    Every page needs a login. Without --operators, the operator token is $SEAWALL_DASHBOARD_TOKEN,
    else a new one printed at start. Only the loopback host names are served unless
    --allowed-host adds others.
    """
    try:
        import uvicorn  # noqa: PLC0415 - optional extra

        from seawall.dashboard import (  # noqa: PLC0415 - optional extra
            LOOPBACK,
            TOKEN_ENV,
            create_app,
            new_token,
        )
    except ImportError as exc:
        missing = MissingExtraError(
            f"the dashboard needs its extra ({exc.name} is missing): "
            "pip install 'seawall[dashboard]'"
        )
        raise fail(missing) from exc
    user_app = None
    if app_spec is not None:
        user_app = load_app(app_spec, ledger)
    else:
        existing_ledger(ledger)  # the dashboard reads a ledger; it never creates an empty one
    named = _tokens(operators, "--operators")
    readers = _tokens(viewers, "--viewers")
    token = os.environ.get(TOKEN_ENV) or ""
    generated = not token and named is None
    if generated:
        token = new_token()
    web = create_app(
        ledger_url(ledger),
        app=user_app,
        token=token or None,
        operators=named,
        viewers=readers,
        public_read=public_read,
        allowed_hosts=(*LOOPBACK, *(allowed_host or ())),
        trace_url=trace_url,
        timezone=timezone,
    )
    # Plain lines (never wrapped), so the token can be copied whole.
    typer.echo(f"Seawall dashboard on http://{host}:{port}/ (ledger {ledger_url(ledger)})")
    if generated:
        typer.echo(f"Operator token (set {TOKEN_ENV} to choose one): {token}")
    if user_app is None:
        typer.echo("Read-only for agents: pass --app module:attr to replay, redrive, decide.")
    uvicorn.run(web, host=host, port=port, log_level="warning")


def _tokens(path: Path | None, option: str) -> dict[str, str] | None:
    """Read a ``{name: token}`` JSON file given to ``option`` (``None`` when not given).

    Raises:
        ConfigurationError: The file cannot be read or is not an object of strings.
    """
    if path is None:
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{option} {path}: cannot read it ({exc.strerror})") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{option} {path}: not JSON ({exc})") from exc
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
    ):
        raise ConfigurationError(
            f'{option} {path}: expected a JSON object of names to tokens, {{"ada": "<token>"}}'
        )
    return loaded
