"""``seawall cancel`` and ``seawall handoffs``: an operator stops runs and decides hand-offs."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time
from typing import Annotated, Any

import typer
from rich.table import Table

from seawall import HandOffRecord, SeawallError
from seawall.cli._common import (
    JsonOption,
    LedgerOption,
    console,
    errors,
    fail,
    iso,
    load_app,
    open_app,
    print_json,
    using,
    when,
)

handoffs = typer.Typer(
    name="handoffs",
    help="Decisions handed to a person: list, show, approve (optionally edited), reject.",
    no_args_is_help=True,
)

AppForDecision = Annotated[
    str,
    typer.Option(
        "--app",
        help="Your Seawall app as module:attribute (the agent's verifiers, tools and artifact "
        "destination are needed to decide).",
    ),
]


def cancel(
    run_id: Annotated[str, typer.Argument(help="The run to cancel.")],
    reason: Annotated[str, typer.Option(help="Why, recorded on the run.")] = "",
    ledger: LedgerOption = None,
) -> None:
    """Cancel a run: it stops at its next ctx call, and no mutating call starts afterwards."""
    with using(open_app(ledger)) as app:
        recorded = app.cancel(run_id, reason=reason)
    if recorded:
        console.print(
            f"Cancellation of {run_id} recorded; its owner stops it at the next ctx call."
        )
    else:
        console.print(f"Run {run_id} had already ended; nothing to cancel.")


def handoff_json(h: HandOffRecord) -> dict[str, Any]:
    """The stable JSON form of a hand-off."""
    return {
        "handoff_id": h.handoff_id,
        "run_id": h.run_id,
        "kind": h.kind,
        "reason": h.reason,
        "subject": h.subject,
        "status": h.status,
        "created_at": iso(h.created_at),
        "decision": h.decision,
        "decided_by": h.decided_by,
        "decided_at": iso(h.decided_at),
        "note": h.note,
    }


@handoffs.command("list")
def list_handoffs(
    status: Annotated[
        str | None, typer.Option(help="Only hand-offs with this status (open, decided).")
    ] = "open",
    run: Annotated[str | None, typer.Option("--run", help="Only hand-offs of this run.")] = None,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """List hand-offs (open ones by default; --status '' for all)."""
    app = open_app(ledger)
    try:
        found = app.handoffs(run_id=run, status=status or None)
    finally:
        app.close()
    if as_json:
        print_json([handoff_json(h) for h in found])
        return
    if not found:
        console.print("No hand-offs match.")
        return
    table = Table(title=f"{len(found)} hand-off(s)", title_justify="left")
    for column in ("hand-off id", "run id", "kind", "status", "created", "reason"):
        table.add_column(column)
    for h in found:
        table.add_row(h.handoff_id, h.run_id, h.kind, h.status, when(h.created_at), h.reason[:80])
    console.print(table)


@handoffs.command("show")
def show_handoff(
    handoff_id: Annotated[str, typer.Argument(help="The hand-off.")],
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one hand-off: the run, the reason and the output or step in question."""
    with using(open_app(ledger)) as app:
        found = app.handoff(handoff_id)
    if as_json:
        print_json(handoff_json(found))
        return
    console.print(f"[bold]Hand-off {found.handoff_id}[/] ({found.kind}, {found.status})")
    console.print(f"run {found.run_id}, opened {when(found.created_at)}")
    console.print(f"reason: {found.reason}")
    if found.decision:
        console.print(f"decided: {found.decision} by {found.decided_by or '-'}: {found.note or ''}")
    console.print_json(json.dumps(found.subject, default=str))


@handoffs.command("approve")
def approve(
    handoff_id: Annotated[str, typer.Argument(help="The hand-off.")],
    app_spec: AppForDecision,
    edit: Annotated[
        Path | None,
        typer.Option("--edit", help="A JSON file with the corrected output (verified again)."),
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who decides.")] = None,
    note: Annotated[str | None, typer.Option(help="A note kept with the decision.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a hand-off: the output (or the edited one, verified again) is committed."""
    app = load_app(app_spec)
    options: dict[str, Any] = {"by": by, "note": note}
    if edit is not None:
        try:
            options["output"] = json.loads(edit.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            errors.print(f"[bold red]error[/]: cannot read the edited output from {edit}: {exc}")
            raise typer.Exit(code=2) from exc
    try:
        result = app.approve(handoff_id, **options)
    except SeawallError as exc:
        raise fail(exc) from exc
    _report(result.run_id, result.status.value, as_json)


@handoffs.command("reject")
def reject(
    handoff_id: Annotated[str, typer.Argument(help="The hand-off.")],
    app_spec: AppForDecision,
    reason: Annotated[str, typer.Option(help="Why the output is rejected.")],
    by: Annotated[str | None, typer.Option(help="Who decides.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a hand-off: the run fails with the reason."""
    app = load_app(app_spec)
    try:
        result = app.reject(handoff_id, reason=reason, by=by)
    except SeawallError as exc:
        raise fail(exc) from exc
    _report(result.run_id, result.status.value, as_json)


def _report(run_id: str, status: str, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": run_id, "status": status})
    else:
        console.print(f"Run {run_id} is now {status}.")


breakers = typer.Typer(
    name="breakers",
    help="Circuit breakers of agents (agent:NAME) and tools (tool:NAME): list, open, reset.",
    no_args_is_help=True,
)


@breakers.command("list")
def list_breakers(ledger: LedgerOption = None, as_json: JsonOption = False) -> None:
    """List breakers the ledger knows, with their state and recent transitions."""
    app = open_app(ledger)
    try:
        states = app.breaker_states()
        events = {s.name: app.breaker_events(s.name, limit=5) for s in states}
    finally:
        app.close()
    if as_json:
        print_json(
            [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "state": s.state,
                    "failures": s.failures,
                    "opened_at": iso(s.opened_at),
                    "reason": s.reason,
                    "manual": s.manual,
                    "events": [
                        {
                            "at": iso(e.at),
                            "from": e.from_state,
                            "to": e.to_state,
                            "reason": e.reason,
                        }
                        for e in events[s.name]
                    ],
                }
                for s in states
            ]
        )
        return
    if not states:
        console.print("No breaker has recorded anything yet.")
        return
    table = Table(title=f"{len(states)} breaker(s)", title_justify="left")
    for column in ("name", "state", "failures", "opened", "reason"):
        table.add_column(column)
    for s in states:
        colour = {"closed": "green", "open": "red", "half_open": "yellow"}[s.state]
        state = f"[{colour}]{s.state}[/]" + (" (by hand)" if s.manual else "")
        table.add_row(s.name, state, str(s.failures), when(s.opened_at), s.reason or "")
    console.print(table)


@breakers.command("open")
def open_breaker(
    name: Annotated[str, typer.Argument(help="agent:NAME or tool:NAME.")],
    reason: Annotated[str, typer.Option(help="Why; shown to every refused run and call.")],
    ledger: LedgerOption = None,
) -> None:
    """Open a breaker by hand (freeze an agent or tool); it stays open until reset."""
    with using(open_app(ledger)) as app:
        state = app.open_breaker(name, reason=reason)
    console.print(f"{state.name} is open until `seawall breakers reset {state.name}`: {reason}")


@breakers.command("reset")
def reset_breaker(
    name: Annotated[str, typer.Argument(help="agent:NAME or tool:NAME.")],
    ledger: LedgerOption = None,
) -> None:
    """Close a breaker and forget its failures."""
    with using(open_app(ledger)) as app:
        state = app.reset_breaker(name)
    console.print(f"{state.name} is closed.")


def _event_json(event: Any) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "from": event.from_state,
        "to": event.to_state,
        "reason": event.reason,
    }
