"""``seawall gc``: remove staging left by dead processes and finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seawall import Seawall
from seawall.cli._inputs import JsonOption, LedgerOption, existing_ledger
from seawall.cli._output import Column, console, print_json, print_table, text


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
    found = existing_ledger(ledger)
    app = Seawall(found.url, staging=staging)
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
        console.print(text(f"Nothing staged under {staging.absolute()}."))
        return
    print_table(
        f"{len(removed)} of {len(entries)} staging folder(s) {verb}",
        (
            Column("run id"),
            Column("attempt", drop=1, justify="right"),
            Column("action"),
            Column("reason", wrap=True),
        ),
        [
            [text(e.run_id), text(e.attempt), text(verb if e.removed else "kept"), text(e.reason)]
            for e in entries
        ],
    )
