"""``seawall cancel`` and ``seawall handoffs``: an operator stops runs and decides hand-offs."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer reads annotations at run time
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.markup import escape
from rich.text import Text

from seawall.cli._inputs import JsonOption, LedgerOption, load_app, open_app, resolve_id
from seawall.cli._output import (
    Column,
    console,
    errors,
    id_note,
    iso,
    print_json,
    print_listing,
    short_ids,
    short_when,
    status_text,
    text,
    when,
)
from seawall.ledger import describe

if TYPE_CHECKING:
    from seawall import HandOffRecord
    from seawall.policies.breaker import BreakerState

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
    run_id: Annotated[str, typer.Argument(help="The run to cancel (its id or a unique prefix).")],
    reason: Annotated[str, typer.Option(help="Why, recorded on the run.")] = "",
    ledger: LedgerOption = None,
) -> None:
    """Cancel a run: it stops at its next ctx call, and no mutating call starts afterwards."""
    with open_app(ledger) as app:
        run_id = resolve_id(app, "run", run_id)
        recorded = app.cancel(run_id, reason=reason)
    if recorded:
        console.print(
            text(f"Cancellation of {run_id} recorded; its owner stops it at the next ctx call.")
        )
    else:
        console.print(text(f"Run {run_id} had already ended; nothing to cancel."))


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
    run: Annotated[
        str | None,
        typer.Option("--run", help="Only hand-offs of this run (its id or a unique prefix)."),
    ] = None,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """List hand-offs (open ones by default; --status '' for all)."""
    with open_app(ledger) as app:
        if run is not None:
            run = resolve_id(app, "run", run)
        found = app.handoffs.list(run_id=run, status=status or None)
        shown = {} if as_json else short_ids(app, "handoff", (h.handoff_id for h in found))
        runs = {} if as_json else short_ids(app, "run", (h.run_id for h in found))
        where = describe(app.store.url)
    print_listing(
        found,
        as_json=as_json,
        to_json=handoff_json,
        none=f"No hand-offs match in the ledger at {where}.",
        title=f"{len(found)} hand-off(s) in {where}",
        columns=(
            Column("hand-off id"),
            Column("run id", drop=3),
            Column("kind", drop=2),
            Column("status"),
            Column("created", drop=1),
            Column("reason", wrap=True),
        ),
        row=lambda h: [
            text(shown[h.handoff_id]),
            text(runs[h.run_id]),
            text(h.kind),
            status_text(h.status),
            text(short_when(h.created_at)),
            text(h.reason),
        ],
        note=id_note({**shown, **runs}),
    )


@handoffs.command("show")
def show_handoff(
    handoff_id: Annotated[str, typer.Argument(help="The hand-off (its id or a unique prefix).")],
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one hand-off: the run, the reason and the output or step in question."""
    with open_app(ledger) as app:
        found = app.handoffs.get(resolve_id(app, "handoff", handoff_id))
    if as_json:
        print_json(handoff_json(found))
        return
    console.print(
        Text.assemble(("Hand-off ", "bold"), (found.handoff_id, "bold"), f" ({found.kind}, "),
        status_text(found.status),
        text(")"),
        sep="",
    )
    console.print(text(f"run {found.run_id}, opened {when(found.created_at)}"))
    console.print(text(f"reason: {found.reason}"))
    if found.decision:
        console.print(
            text(f"decided: {found.decision} by {found.decided_by or '-'}: {found.note or ''}")
        )
    console.print_json(json.dumps(found.subject, default=str))


@handoffs.command("approve")
def approve(
    handoff_id: Annotated[str, typer.Argument(help="The hand-off (its id or a unique prefix).")],
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
            errors.print(
                f"[bold red]error[/]: cannot read the edited output from "
                f"{escape(str(edit))}: {escape(str(exc))}"
            )
            raise typer.Exit(code=2) from exc
    result = app.handoffs.approve(resolve_id(app, "handoff", handoff_id), **options)
    _report(result.run_id, result.status.value, as_json)


@handoffs.command("reject")
def reject(
    handoff_id: Annotated[str, typer.Argument(help="The hand-off (its id or a unique prefix).")],
    app_spec: AppForDecision,
    reason: Annotated[str, typer.Option(help="Why the output is rejected.")],
    by: Annotated[str | None, typer.Option(help="Who decides.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a hand-off: the run fails with the reason."""
    app = load_app(app_spec)
    result = app.handoffs.reject(resolve_id(app, "handoff", handoff_id), reason=reason, by=by)
    _report(result.run_id, result.status.value, as_json)


def _report(run_id: str, status: str, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": run_id, "status": status})
    else:
        console.print(text(f"Run {run_id} is now {status}."))


_COLOURS: Final = {"closed": "green", "open": "red", "half_open": "yellow"}
"""The colour of each breaker state."""

breakers = typer.Typer(
    name="breakers",
    help="Circuit breakers of agents (agent:NAME) and tools (tool:NAME): list, open, reset.",
    no_args_is_help=True,
)


@breakers.command("list")
def list_breakers(ledger: LedgerOption = None, as_json: JsonOption = False) -> None:
    """List breakers the ledger knows, with their state and recent transitions."""
    with open_app(ledger) as app:
        states = app.breakers.list()
        events = {s.name: app.breakers.events(s.name, limit=5) for s in states}
        where = describe(app.store.url)
    print_listing(
        states,
        as_json=as_json,
        to_json=lambda s: {
            "name": s.name,
            "kind": s.kind,
            "state": s.state,
            "failures": s.failures,
            "opened_at": iso(s.opened_at),
            "reason": s.reason,
            "manual": s.manual,
            "events": [_event_json(e) for e in events[s.name]],
        },
        none=f"No breaker has recorded anything yet in the ledger at {where}.",
        title=f"{len(states)} breaker(s) in {where}",
        columns=(
            Column("name"),
            Column("state"),
            Column("failures", drop=2, justify="right"),
            Column("opened", drop=1),
            Column("reason", wrap=True),
        ),
        row=lambda s: [
            text(s.name),
            _breaker_state(s),
            text(s.failures),
            text(short_when(s.opened_at)),
            text(s.reason),
        ],
    )


def _breaker_state(breaker: BreakerState) -> Text:
    """The breaker's state, coloured, noting one opened or closed by hand."""
    state = Text(breaker.state, style=_COLOURS.get(breaker.state, ""))
    if breaker.manual:
        state.append(" (by hand)")
    return state


@breakers.command("open")
def open_breaker(
    name: Annotated[str, typer.Argument(help="agent:NAME or tool:NAME.")],
    reason: Annotated[str, typer.Option(help="Why; shown to every refused run and call.")],
    ledger: LedgerOption = None,
) -> None:
    """Open a breaker by hand (freeze an agent or tool); it stays open until reset.

    The ledger is created if it does not exist yet, so an agent can be frozen before its app
    first runs; the message says which ledger holds the breaker.
    """
    with open_app(ledger, create=True) as app:
        state = app.breakers.open(name, reason=reason)
        where = describe(app.store.url)
    console.print(
        text(
            f"{state.name} is open in the ledger at {where} until "
            f"`seawall breakers reset {state.name}`: {reason}"
        )
    )


@breakers.command("reset")
def reset_breaker(
    name: Annotated[str, typer.Argument(help="agent:NAME or tool:NAME.")],
    ledger: LedgerOption = None,
) -> None:
    """Close a breaker and forget its failures."""
    with open_app(ledger) as app:
        state = app.breakers.reset(name)
        where = describe(app.store.url)
    console.print(text(f"{state.name} is closed in the ledger at {where}."))


def _event_json(event: Any) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "from": event.from_state,
        "to": event.to_state,
        "reason": event.reason,
    }
