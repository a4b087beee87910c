"""``seawall gc``: remove staging left by dead processes and finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seawall import Seawall, SeawallError
from seawall.cli._common import JsonOption, LedgerOption, console, fail, ledger_url, print_json


def gc(
    ledger: LedgerOption = None,
    staging: Annotated[
        Path, typer.Option(help="The staging folder of your app (Seawall(staging=...)).")
    ] = Path(".seawall/staging"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove staging folders of dead processes and finished runs; live runs are never touched."""
    try:
        app = Seawall(ledger_url(ledger), staging=staging)
    except SeawallError as exc:
        raise fail(exc) from exc
    try:
        entries = app.gc(dry_run=dry_run)
    finally:
        app.close()
    if as_json:
        print_json(
            [
                {
                    "run_id": e.run_id,
                    "attempt": e.attempt,
                    "path": e.path,
                    "removed": e.removed,
                    "reason": e.reason,
                }
                for e in entries
            ]
        )
        return
    removed = [e for e in entries if e.removed]
    verb = "would remove" if dry_run else "removed"
    if not entries:
        console.print(f"Nothing staged under {staging}.")
        return
    table = Table(
        title=f"{len(removed)} of {len(entries)} staging folder(s) {verb}", title_justify="left"
    )
    for column in ("run id", "attempt", "action", "reason"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.run_id, str(e.attempt), verb if e.removed else "kept", e.reason)
    console.print(table)
