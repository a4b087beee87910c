"""``seawall replay`` and ``seawall dlq``: re-run failed runs, from the ledger alone."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from seawall import SeawallError
from seawall.cli._common import (
    AppOption,
    JsonOption,
    LedgerOption,
    console,
    fail,
    iso,
    load_app,
    open_app,
    parse_since,
    print_json,
    using,
    when,
)

dlq = typer.Typer(
    name="dlq",
    help="The dead-letter queue: every run that ended failed. list, redrive, purge.",
    no_args_is_help=True,
)

AgentFilter = Annotated[str | None, typer.Option(help="Only entries of this agent.")]
ClassFilter = Annotated[
    str | None, typer.Option(help="Only entries of this error class (clean_abort, ...).")
]
SinceFilter = Annotated[
    str | None, typer.Option(help="Only entries since an ISO time or an age (30m, 2h, 7d).")
]


def replay(
    run_id: Annotated[str, typer.Argument(help="The run to replay.")],
    app_spec: AppOption,
    recorded: Annotated[
        bool,
        typer.Option(
            "--recorded/--live",
            help="--recorded serves every call from the journal (nothing runs); --live calls "
            "tools and models again.",
        ),
    ] = True,
    from_node: Annotated[
        str | None,
        typer.Option(
            "--from", help="For a graph run: re-run this node and its dependents, serve the rest."
        ),
    ] = None,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run a run's input snapshot with the current code; exit 1 if it fails or diverges."""
    app = load_app(app_spec)
    if ledger is not None and ledger != app.store.url:
        raise typer.BadParameter(f"--ledger {ledger} differs from the ledger of {app_spec}")
    try:
        result = app.replay(run_id, mode="recorded" if recorded else "live", from_node=from_node)
    except SeawallError as exc:
        raise fail(exc) from exc
    body: dict[str, Any] = {
        "mode": result.mode,
        "original_run_id": result.original.run_id,
        "original_status": result.original.status.value,
        "run_id": result.run.run_id,
        "status": result.run.status.value,
        "error_class": None if result.run.error_class is None else result.run.error_class.value,
        "failure_cause": None
        if result.run.failure_cause is None
        else result.run.failure_cause.value,
        "error": result.run.error,
        "output": result.run.output,
        "output_changes": result.output_changes,
        "verdict_changes": result.verdict_changes,
        "divergence": result.divergence,
    }
    if as_json:
        print_json(body)
    else:
        colour = "green" if result.ok else "red"
        console.print(
            f"{result.mode} replay of {result.original.run_id} ({result.original.status.value}) "
            f"→ run {result.run.run_id}: [{colour}]{result.run.status.value}[/]"
        )
        if result.divergence:
            console.print(
                f"[red]diverged[/] at step {result.divergence['step']}: journal holds "
                f"{result.divergence['expected']}, the code asked for "
                f"{result.divergence['got']}"
            )
        elif result.run.error:
            console.print(f"error: {result.run.error.get('message')}")
        _print_changes(result.output_changes, result.verdict_changes)
    if not result.ok:
        raise typer.Exit(code=1)


def _print_changes(outputs: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> None:
    if not outputs and not verdicts:
        console.print("The output and the verdicts are the same as the original's.")
        return
    if outputs:
        table = Table(title="Output changes", title_justify="left")
        for column in ("path", "original", "replay"):
            table.add_column(column)
        for change in outputs:
            table.add_row(change["path"], repr(change["before"])[:80], repr(change["after"])[:80])
        console.print(table)
    for change in verdicts:
        console.print(f"verdict {change['name']}: {change['before']} → {change['after']}")


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "run_id": entry.run_id,
        "agent": entry.agent,
        "error_class": None if entry.error_class is None else entry.error_class.value,
        "failure_cause": None if entry.failure_cause is None else entry.failure_cause.value,
        "error_message": entry.error_message,
        "failed_at": iso(entry.failed_at),
        "attempts": entry.attempts,
        "status": entry.status,
        "redriven_at": iso(entry.redriven_at),
        "redrive_run_id": entry.redrive_run_id,
        "result": entry.result,
        "previous_entry_id": entry.previous_entry_id,
    }


@dlq.command("list")
def dlq_list(
    ledger: LedgerOption = None,
    agent: AgentFilter = None,
    error_class: ClassFilter = None,
    since: SinceFilter = None,
    status: Annotated[
        str, typer.Option(help="pending (default), redriving, redriven, purged, or all.")
    ] = "pending",
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: JsonOption = False,
) -> None:
    """List dead-letter entries, oldest first."""
    with using(open_app(ledger)) as app:
        entries = app.dlq.list(
            agent=agent,
            error_class=error_class,
            since=parse_since(since),
            status=None if status == "all" else status,
            limit=limit,
        )
    if as_json:
        print_json([_entry_json(e) for e in entries])
        return
    if not entries:
        console.print("The dead-letter queue has no matching entry.")
        return
    table = Table(
        title=f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", title_justify="left"
    )
    for column in ("run id", "agent", "class", "cause", "tries", "failed", "status", "error"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.run_id,
            e.agent,
            e.error_class.value if e.error_class else "",
            e.failure_cause.value if e.failure_cause else "",
            str(e.attempts),
            when(e.failed_at),
            e.status if e.result is None else f"{e.status} ({e.result})",
            (e.error_message or "")[:60],
        )
    console.print(table)


@dlq.command("redrive")
def dlq_redrive(
    app_spec: AppOption,
    agent: AgentFilter = None,
    error_class: ClassFilter = None,
    since: SinceFilter = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 1000,
    rate: Annotated[float | None, typer.Option(help="At most N redrives per second.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would run.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-run matching entries live with the current code, each at most once."""
    app = load_app(app_spec)
    try:
        outcomes = app.dlq.redrive(
            agent=agent,
            error_class=error_class,
            since=parse_since(since),
            limit=limit,
            rate=rate,
            dry_run=dry_run,
        )
    except SeawallError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(
            [
                {
                    "entry": _entry_json(o.entry),
                    "run_id": o.run_id,
                    "status": o.status,
                    "error": o.error,
                }
                for o in outcomes
            ]
        )
    else:
        verb = "would redrive" if dry_run else "redrove"
        console.print(f"{verb} {len(outcomes)} entr{'y' if len(outcomes) == 1 else 'ies'}")
        for o in outcomes:
            console.print(f"  {o.entry.run_id} → {o.run_id or '-'}: {o.status}")
    if any(o.status not in ("succeeded", "would redrive") for o in outcomes):
        raise typer.Exit(code=1)


@dlq.command("purge")
def dlq_purge(
    ledger: LedgerOption = None,
    agent: AgentFilter = None,
    error_class: ClassFilter = None,
    since: SinceFilter = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Mark matching pending entries purged (the runs stay in the ledger)."""
    with using(open_app(ledger)) as app:
        matching = app.dlq.list(agent=agent, error_class=error_class, since=parse_since(since))
        if not matching:
            console.print("0 entries match; nothing to purge.")
            return
        if not yes and not typer.confirm(f"Purge {len(matching)} entries?", default=False):
            raise typer.Exit(code=1)
        count = app.dlq.purge(agent=agent, error_class=error_class, since=parse_since(since))
    console.print(f"Purged {count} entr{'y' if count == 1 else 'ies'}.")
