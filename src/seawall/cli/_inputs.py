"""What the CLI's commands take: the ledger and app they work on, ids, times, shared options."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from seawall import (
    AmbiguousIdError,
    HandOffNotFoundError,
    RunNotFoundError,
    Seawall,
)
from seawall.cli._output import when
from seawall.errors import LedgerUnavailableError
from seawall.ledger import DEFAULT_LEDGER_URL, LedgerLocation, locate

if TYPE_CHECKING:
    from seawall.ledger import IdKind

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
