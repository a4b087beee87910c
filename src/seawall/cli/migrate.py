"""``seawall migrate``: bring the ledger's schema up to this version of Seawall."""

from __future__ import annotations

from seawall.cli._inputs import JsonOption, LedgerOption, ledger_url
from seawall.cli._output import console, print_json, text
from seawall.ledger import migrate as migrate_ledger


def migrate(ledger: LedgerOption = None, as_json: JsonOption = False) -> None:
    """Apply the ledger's pending schema migrations (SQLite or PostgreSQL) and report versions.

    Every process also migrates on start; run this first when you upgrade Seawall for many
    workers. A ledger written by a newer Seawall is refused, untouched.
    """
    report = migrate_ledger(ledger_url(ledger))
    if as_json:
        print_json(
            {
                "ledger": report.ledger,
                "backend": report.backend,
                "from_version": report.from_version,
                "to_version": report.to_version,
                "applied": [{"version": v, "name": n} for v, n in report.applied],
            }
        )
        return
    if not report.applied:
        console.print(text(f"{report.ledger} is up to date (schema version {report.to_version})."))
        return
    console.print(
        text(f"{report.ledger}: schema version {report.from_version} -> {report.to_version}")
    )
    for version, name in report.applied:
        console.print(text(f"  applied {name} (version {version})"))
