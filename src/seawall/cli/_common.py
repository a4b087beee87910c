"""Options, ledger opening, id lookup and error reporting shared by the CLI's commands."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Protocol, TypeVar

import typer
from rich.markup import escape

from seawall import (
    AmbiguousIdError,
    HandOffNotFoundError,
    RunNotFoundError,
    Seawall,
    SeawallError,
)
from seawall.cli._output import console, errors, print_table, text
from seawall.errors import LedgerUnavailableError
from seawall.ledger import DEFAULT_LEDGER_URL, LedgerLocation, locate

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.text import Text

    from seawall import ErrorClass, FailureCause
    from seawall.cli._output import Column
    from seawall.ledger import IdKind

__all__ = ["console", "errors", "text"]

T = TypeVar("T")

LEDGER_ENV: Final = "SEAWALL_LEDGER"
CANDIDATES: Final = 10
"""Candidates listed for an ambiguous id prefix."""

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        help=f"Ledger URL (default: ${LEDGER_ENV}, else {DEFAULT_LEDGER_URL}).",
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
    return value or os.environ.get(LEDGER_ENV) or DEFAULT_LEDGER_URL


def _origin(value: str | None) -> str:
    """Where the ledger URL came from, in words."""
    if value:
        return "from --ledger"
    if os.environ.get(LEDGER_ENV):
        return f"from ${LEDGER_ENV}"
    return "the default"


def existing_ledger(ledger: str | None) -> LedgerLocation:
    """Find the ledger a read-only command reads; never create one.

    Raises:
        LedgerUnavailableError: There is no ledger there (the message says where it looked and
            how to point at the right one), or its server is unreachable.
        LedgerURLError: The URL is wrong.
    """
    url = ledger_url(ledger)
    found = locate(url)
    if not found.exists:
        if found.backend == "sqlite":
            relative = "" if url.startswith("sqlite:////") else f", relative to {Path.cwd()}"
            detail = f"{url}, {_origin(ledger)}{relative}"
        else:
            detail = f"{_origin(ledger)}; the schema holds no Seawall tables"
        raise LedgerUnavailableError(
            f"no ledger at {found.where} ({detail}); nothing was created. Run this in your "
            f"project's folder, or pass --ledger URL (or set ${LEDGER_ENV}) to name your "
            "app's ledger",
            url=url,
        )
    return found


def open_app(ledger: str | None, *, create: bool = False) -> Seawall:
    """Open an app with no registered agents on the ledger, for reading it (or writing to it).

    Args:
        ledger: The ``--ledger`` option.
        create: Create the ledger when it does not exist (operator writes that may precede
            the app's first run, such as freezing an agent). Reads never create one.

    Raises:
        SeawallError: There is no ledger there (unless ``create``), or it cannot be opened.
    """
    url = ledger_url(ledger) if create else existing_ledger(ledger).url
    return Seawall(url)


def same_ledger(first: str, second: str) -> bool:
    """Whether two ledger URLs name the same ledger (SQLite paths compared resolved)."""
    if first.startswith("sqlite:///") and second.startswith("sqlite:///"):
        return Path(first[10:]).resolve() == Path(second[10:]).resolve()
    return first == second


def resolve_id(app: Seawall, kind: IdKind, given: str) -> str:
    """The full id of the run (or hand-off) ``given`` names: the id, or its unique beginning.

    Raises:
        RunNotFoundError: No run id starts with ``given`` (``kind`` ``run``).
        HandOffNotFoundError: No hand-off id starts with it (``kind`` ``handoff``).
        AmbiguousIdError: Several do; the message lists them.
    """
    found = app.store.ids_with_prefix(kind, given, CANDIDATES + 1)
    if given in found or len(found) == 1:
        return given if given in found else found[0]
    noun = "run" if kind == "run" else "hand-off"
    if not found:
        listing = "seawall runs" if kind == "run" else "seawall handoffs list --status ''"
        error = RunNotFoundError if kind == "run" else HandOffNotFoundError
        raise error(
            f"no {noun} id starts with {given!r} in {app.store.url}; list them with "
            f"`{listing}`, or pass --ledger if they are in another ledger",
            **{f"{kind}_id": given},
        )
    more = len(found) > CANDIDATES
    lines = [_candidate(app, kind, candidate) for candidate in found[:CANDIDATES]]
    raise AmbiguousIdError(
        f"{given!r} is the beginning of {'more than ' if more else ''}"
        f"{min(len(found), CANDIDATES)} {noun} ids; give more of the id. "
        f"The candidates{' (the first ' + str(CANDIDATES) + ')' if more else ''}:\n"
        + "\n".join(lines),
        prefix=given,
        kind=kind,
        candidates=found[:CANDIDATES],
    )


def _candidate(app: Seawall, kind: IdKind, full: str) -> str:
    """One line describing a candidate of an ambiguous prefix."""
    if kind == "run":
        run = app.store.get_run(full)
        if run is not None:
            return f"  {full}  {run.agent}  {run.status.value}  {when(run.start_time)}"
    else:
        handoff = app.store.get_handoff(full)
        if handoff is not None:
            return f"  {full}  run {handoff.run_id}  {handoff.kind}  {handoff.status}"
    return f"  {full}"


def load_app(spec: str, ledger: str | None = None) -> Seawall:
    """Import the user's app from ``module:attribute``.

    Args:
        spec: ``module:attribute``.
        ledger: The ``--ledger`` given with it, if any: exported as ``$SEAWALL_LEDGER``
            while the module is imported, for apps that read their ledger URL from there
            (``Seawall(os.environ.get("SEAWALL_LEDGER", ...))``, as the demo does).

    Raises:
        typer.BadParameter: The spec is malformed, the import fails, it is not an app, or
            ``ledger`` is not the app's ledger.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise typer.BadParameter(f"{spec!r} is not module:attribute (e.g. myproject.agents:app)")
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    previous = os.environ.get(LEDGER_ENV)
    if ledger is not None:
        os.environ[LEDGER_ENV] = ledger
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    finally:
        if previous is None:
            os.environ.pop(LEDGER_ENV, None)
        else:
            os.environ[LEDGER_ENV] = previous
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise typer.BadParameter(f"module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not isinstance(target, Seawall):
        raise typer.BadParameter(f"{spec} is a {type(target).__name__}, not a seawall.Seawall app")
    if ledger is not None and not same_ledger(ledger, target.store.url):
        raise typer.BadParameter(
            f"--ledger {ledger} is not the ledger of {spec} ({target.store.url}); drop "
            "--ledger, or create the app with the ledger you mean"
        )
    return target


def fail(error: SeawallError) -> typer.Exit:
    """Print a Seawall error on stderr and return the exit to raise."""
    # Not wrapped here: the terminal wraps it, and a copied command or path stays whole.
    errors.print(
        f"[bold red]error[/] [dim]({error.code})[/]: {escape(error.message)}",
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(code=1)


def print_json(value: Any) -> None:
    """Print ``value`` as indented, key-sorted JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


class Failed(Protocol):
    """A run, attempt or dead-letter entry: what ended it, if anything did."""

    @property
    def error_class(self) -> ErrorClass | None:
        """The failure's class."""

    @property
    def failure_cause(self) -> FailureCause | None:
        """The failure's cause."""


def failure_json(record: Failed) -> dict[str, str | None]:
    """The ``error_class`` and ``failure_cause`` of ``record`` in the stable JSON forms."""
    return {
        "error_class": None if record.error_class is None else record.error_class.value,
        "failure_cause": None if record.failure_cause is None else record.failure_cause.value,
    }


def print_listing(
    items: Sequence[T],
    *,
    as_json: bool,
    to_json: Callable[[T], Any],
    none: str,
    title: str,
    columns: Sequence[Column],
    row: Callable[[T], Sequence[Text | str]],
    note: str = "",
) -> None:
    """Print what a list command found: JSON for scripts, one line when nothing, else a table.

    Args:
        items: What was found.
        as_json: The ``--json`` option: print ``[to_json(item), ...]`` and nothing else.
        to_json: The stable JSON form of an item.
        none: The line printed when nothing was found.
        title: The table's title.
        columns: The table's columns.
        row: An item's cells, in column order.
        note: A dim line under the table.
    """
    if as_json:
        print_json([to_json(item) for item in items])
    elif not items:
        console.print(text(none))
    else:
        print_table(title, columns, [row(item) for item in items], note)


def when(timestamp: float | None) -> str:
    """Format a Unix time for people (local time, seconds)."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_when(timestamp: float | None) -> str:
    """A Unix time for a table column: ``MM-DD HH:MM:SS`` this year, else the date and minute."""
    if timestamp is None:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp).astimezone()
    if moment.year == dt.datetime.now().astimezone().year:
        return moment.strftime("%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


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
