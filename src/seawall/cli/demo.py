"""``seawall demo``: the embedded demo on the SQLite ledger, no network needed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seawall import _demo
from seawall.cli._common import LedgerOption, console, ledger_url


def demo(
    ledger: LedgerOption = None,
    workdir: Annotated[
        Path, typer.Option(help="Where the demo's tools write their side effects.")
    ] = Path(".seawall/demo"),
) -> None:
    """Run an offline agent through a flaky tool, a partial write, bad input and a SIGKILL."""
    url = ledger_url(ledger)
    console.print(f"[bold]Seawall demo[/] on the ledger [cyan]{url}[/]")
    console.print(f"[dim]model: {_demo.MODEL}[/]")
    with console.status("starting") as status:
        scenarios, state = _demo.run_scenarios(url, workdir, status.update)
    state.app.close()
    table = Table(title="What happened", title_justify="left")
    for column in (
        "scenario",
        "status",
        "class",
        "cause",
        "attempts",
        "recovery",
        "tokens",
        "run id",
    ):
        table.add_column(column)
    for scenario in scenarios:
        result = scenario.result
        colour = "green" if result.ok else "red"
        table.add_row(
            scenario.title,
            f"[{colour}]{result.status.value}[/]",
            result.error_class.value if result.error_class else "",
            result.failure_cause.value if result.failure_cause else "",
            str(len(result.attempts)),
            scenario.recovery,
            str(result.tokens_used),
            result.run_id,
        )
    console.print(table)
    keys = state.published_keys()
    console.print(
        f"Articles published: {len(keys)}, duplicates: {len(keys) - len(set(keys))} "
        "(every publish is journaled with an idempotency key)."
    )
    example = next((s.result.run_id for s in scenarios if len(s.result.attempts) > 1), None)
    console.print("\nNext, try:")
    console.print("  seawall runs")
    if example:
        console.print(f"  seawall show {example}")
    console.print("  seawall runs --status failed --json")
