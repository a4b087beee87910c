"""How the CLI prints: tables that fit the terminal, ids to copy, JSON, times, Seawall errors.

Everything read from the ledger (agent names, error messages, reasons, ids) reaches the terminal
as :class:`rich.text.Text` or escaped, never as Rich markup: a recorded ``[/]`` or
``seawall[metrics]`` prints as itself. Emoji codes (``:fire:``) are not replaced either.

A table that does not fit the terminal hides its least useful columns (and says which) rather
than cutting words in half; ids are shown as their shortest unique prefix of at least
:data:`SHORT_ID` characters, which every command accepts.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from seawall import ErrorClass, FailureCause, Seawall, SeawallError
    from seawall.ledger import IdKind

T = TypeVar("T")

console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)

WRAP_WIDTH: Final = 24
"""The narrowest a free-text column gets before other columns are hidden to make room."""
SHORT_ID: Final = 16
"""Shortest id prefix shown in tables (a run id's first 12 characters are its millisecond)."""

STATUS_STYLE: Final = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "pending": "yellow",
    "awaiting_human": "magenta",
    "cancelled": "dim",
    "skipped": "dim",
    "quarantined": "magenta",
    "open": "magenta",
    "decided": "dim",
    "redriven": "green",
    "purged": "dim",
}


def text(value: object, style: str = "") -> Text:
    """``value`` as plain text (``None`` as empty): never parsed as markup."""
    return Text("" if value is None else str(value), style=style)


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


@dataclass(frozen=True, slots=True)
class Column:
    """A table column.

    Attributes:
        header: Its heading.
        drop: ``0``: always shown; otherwise, when the table is too wide for the terminal,
            the column with the highest ``drop`` is hidden first.
        justify: ``left`` or ``right``.
        wrap: Free text (an error, a reason) that wraps between words onto more lines; it
            keeps room for :data:`WRAP_WIDTH` characters a line. Other cells stay on one line.
    """

    header: str
    drop: int = 0
    justify: Literal["left", "right"] = "left"
    wrap: bool = False


def print_table(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[Text | str]], note: str = ""
) -> None:
    """Print a table that fits the terminal without cutting a word.

    Columns are hidden, empty ones first and then the highest ``drop``, until the narrowest
    layout that keeps every word whole fits; the hidden ones holding anything are named under
    the table.

    Args:
        title: The table's title (plain text).
        columns: The columns.
        rows: One sequence of cells per row, in column order; ledger text as :func:`text`.
        note: A dim line under the table (plain text).
    """
    cells = [[cell if isinstance(cell, Text) else Text(cell) for cell in row] for row in rows]
    filled = {i for i in range(len(columns)) if any(row[i].plain for row in cells)}
    for room in (WRAP_WIDTH, 0):  # free text keeps room to wrap, unless nothing else fits
        needs = [
            _needs(column, [row[i] for row in cells], room) for i, column in enumerate(columns)
        ]
        shown = list(range(len(columns)))
        while True:
            narrowest = sum(needs[i] for i in shown) + _GAP * (len(shown) - 1)
            droppable = [i for i in shown if columns[i].drop > 0]
            if narrowest <= console.width or not droppable:
                break
            # An empty column goes first (nothing is lost), then the least useful.
            shown.remove(max(droppable, key=lambda i: (i not in filled, columns[i].drop, i)))
        if narrowest <= console.width:
            break
    if title:  # above the table, not in it: a title wraps at the terminal's width, not the table's
        console.print(Text(title, style="bold"))
    table = _table(
        [columns[i] for i in shown],
        [[row[i] for i in shown] for row in cells],
        [needs[i] for i in shown],
    )
    console.print(table)
    hidden = [column.header for i, column in enumerate(columns) if i not in shown and i in filled]
    if hidden:
        note = (
            f"hidden at {console.width} columns: {', '.join(hidden)} (widen the terminal, or "
            "use --json)" + (f"; {note}" if note else "")
        )
    if note:
        console.print(Text(note, style="dim"))


_GAP: Final = 3
"""Characters between two columns: a space of padding on each side of a blank rule."""


def _needs(column: Column, cells: Sequence[Text], room: int) -> int:
    """A column's width: its widest cell, or for free text its longest word and ``room``."""
    header = Text(column.header)
    widest = max([header.cell_len, *(cell.cell_len for cell in cells)])
    if not column.wrap:
        return widest
    longest_word = max(len(word) for cell in [header, *cells] for word in [*cell.plain.split(), ""])
    return max(longest_word, min(widest, room))


def _table(
    columns: Sequence[Column], rows: Sequence[Sequence[Text]], widths: Sequence[int]
) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            column.header,
            justify=column.justify,
            overflow="fold",
            no_wrap=not column.wrap,
            min_width=width if column.wrap else None,
        )
    for row in rows:
        table.add_row(*row)
    return table


def short_ids(app: Seawall, kind: IdKind, ids: Iterable[str]) -> dict[str, str]:
    """Each id's shortest prefix of at least :data:`SHORT_ID` characters unique in the ledger.

    One indexed lookup per id (more only for ids sharing their first characters).
    """
    found: dict[str, str] = {}
    for full in dict.fromkeys(ids):
        size = SHORT_ID
        while size < len(full) and len(app.store.ids_with_prefix(kind, full[:size], 2)) > 1:
            size += 4
        found[full] = full[:size]
    return found


def id_note(shortened: dict[str, str]) -> str:
    """The note under a table whose ids were shortened (empty when none was)."""
    if any(short != full for full, short in shortened.items()):
        return "ids are shown by a unique prefix, which every command accepts"
    return ""


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
