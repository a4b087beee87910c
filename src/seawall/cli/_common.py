"""Options and output helpers shared by the CLI's commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from seawall import Seawall, SeawallError
from seawall.ledger import DEFAULT_LEDGER_URL

if TYPE_CHECKING:
    from collections.abc import Iterator

console = Console()
errors = Console(stderr=True)

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        help=f"Ledger URL (default: $SEAWALL_LEDGER, else {DEFAULT_LEDGER_URL}).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]
AppOption = Annotated[
    str,
    typer.Option("--app", help="Your Seawall app as module:attribute (e.g. myproject.agents:app)."),
]


def ledger_url(value: str | None) -> str:
    """Resolve the ledger URL from the option, then ``$SEAWALL_LEDGER``, then the default."""
    return value or os.environ.get("SEAWALL_LEDGER") or DEFAULT_LEDGER_URL


def open_app(ledger: str | None) -> Seawall:
    """Open an app with no registered agents, for reading the ledger.

    Raises:
        typer.Exit: The ledger cannot be opened (the reason is printed on stderr).
    """
    try:
        return Seawall(ledger_url(ledger))
    except SeawallError as exc:
        raise fail(exc) from exc


@contextlib.contextmanager
def using(app: Seawall) -> Iterator[Seawall]:
    """Run the block with ``app``: a Seawall error becomes a clean exit 1; the app is closed.

    Raises:
        typer.Exit: A Seawall error left the block (its message is printed on stderr).
    """
    try:
        yield app
    except SeawallError as exc:
        raise fail(exc) from exc
    finally:
        app.close()


def load_app(spec: str) -> Seawall:
    """Import the user's app from ``module:attribute``.

    Raises:
        typer.BadParameter: The spec is malformed, the import fails, or it is not an app.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise typer.BadParameter(f"{spec!r} is not module:attribute (e.g. myproject.agents:app)")
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise typer.BadParameter(f"module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not isinstance(target, Seawall):
        raise typer.BadParameter(f"{spec} is a {type(target).__name__}, not a seawall.Seawall app")
    return target


def fail(error: SeawallError) -> typer.Exit:
    """Print a Seawall error on stderr and return the exit to raise."""
    errors.print(f"[bold red]error[/] [dim]({error.code})[/]: {error.message}", highlight=False)
    return typer.Exit(code=1)


def print_json(value: Any) -> None:
    """Print ``value`` as indented, key-sorted JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def when(timestamp: float | None) -> str:
    """Format a Unix time for people (local time, seconds)."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso(timestamp: float | None) -> str | None:
    """Format a Unix time as ISO 8601 UTC for JSON output."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="microseconds")


def seconds(value: float | None) -> str:
    """Format a duration for people."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def parse_since(value: str | None) -> float | None:
    """Parse ``--since``: an ISO date/time, or a relative age like ``30m``, ``2h``, ``7d``.

    Raises:
        typer.BadParameter: The value is neither.
    """
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip()
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return dt.datetime.now(tz=dt.UTC).timestamp() - float(text[:-1]) * units[text[-1]]
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"--since {value!r}: use an ISO date/time (2026-11-22T10:00) or an age (30m, 2h, 7d)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.timestamp()
