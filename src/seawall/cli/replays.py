"""``seawall replay`` and ``seawall dlq``: re-run failed runs, from the ledger alone."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.text import Text

from seawall import UsageError
from seawall.cli._inputs import (
    AppOption,
    JsonOption,
    LedgerOption,
    load_app,
    open_app,
    parse_since,
    resolve_id,
)
from seawall.cli._output import (
    Column,
    console,
    fail,
    failure_json,
    id_note,
    iso,
    print_json,
    print_listing,
    print_table,
    short_ids,
    short_when,
    status_text,
    text,
)
from seawall.ledger import describe

dlq = typer.Typer(
    name="dlq",
    help="The dead-letter queue: every run that ended failed. list, redrive, resolve, purge.",
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
    run_id: Annotated[str, typer.Argument(help="The run to replay (its id or a unique prefix).")],
    app_spec: AppOption,
    recorded: Annotated[
        bool,
        typer.Option(
            "--recorded/--live",
            help="--recorded serves the journal's calls while the code asks for them (after a "
            "fix, read-only calls it lacks run live; a side effect it lacks stops the replay); "
            "--live calls tools and models again.",
        ),
    ] = True,
    allow_mutations: Annotated[
        bool,
        typer.Option(
            "--allow-mutations",
            help="With --recorded: let a side effect the recording lacks run live instead of "
            "stopping the replay.",
        ),
    ] = False,
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
    app = load_app(app_spec, ledger)
    run_id = resolve_id(app, "run", run_id)
    result = app.replay(
        run_id,
        mode="recorded" if recorded else "live",
        from_node=from_node,
        allow_mutations=allow_mutations,
    )
    failed_nodes = [] if result.ok else app.ledger.runs(parent_run_id=result.run.run_id, limit=100)
    body: dict[str, Any] = {
        "mode": result.mode,
        "original_run_id": result.original.run_id,
        "original_status": result.original.status.value,
        "run_id": result.run.run_id,
        "status": result.run.status.value,
        **failure_json(result.run),
        "error": result.run.error,
        "output": result.run.output,
        "output_changes": result.output_changes,
        "verdict_changes": result.verdict_changes,
        "divergence": result.divergence,
        "steps": result.steps,
    }
    if as_json:
        print_json(body)
    else:
        console.print(
            text(
                f"{result.mode} replay of {result.original.run_id} "
                f"({result.original.status.value})\n→ run {result.run.run_id}: "
            ),
            Text(result.run.status.value, style="green" if result.ok else "red"),
            sep="",
        )
        _print_steps(result.steps)
        _print_failure(result.divergence, result.run.error, failed_nodes)
        _print_changes(result.ok, result.output_changes, result.verdict_changes)
    if not result.ok:
        raise typer.Exit(code=1)


def _print_steps(steps: list[dict[str, Any]]) -> None:
    """A recorded replay's steps: how many were served, and each one that was not."""
    if not steps:
        return
    served = sum(1 for s in steps if s["action"] == "served")
    console.print(text(f"{served} of {len(steps)} step(s) served from the recording"))
    for step in steps:
        if step["action"] != "served":
            detail = f": {step['detail']}" if step["detail"] else ""
            console.print(text(f"  step {step['step']} {step['name']}: {step['action']}{detail}"))


def _print_failure(
    divergence: dict[str, Any] | None, error: dict[str, Any] | None, nodes: list[Any]
) -> None:
    """Why a replay did not succeed: its divergence, its error, and each failed node's."""
    if divergence:
        console.print(
            Text("diverged", style="red"),
            text(
                f" at step {divergence['step']}: the journal holds {divergence['expected']}, "
                f"the code asked for {divergence['got']}"
            ),
            sep="",
        )
        for change in divergence.get("changes") or []:
            console.print(text(f"  {change['path']}: {change['before']!r} → {change['after']!r}"))
    elif error:
        console.print(text(f"error: {error.get('message')}"))
    for node in nodes:
        if node.status.value == "failed" and node.error_type:
            console.print(
                text(f"  node {node.node or node.agent}: {node.error_type}: {node.error_message}")
            )


def _print_changes(ok: bool, outputs: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> None:
    if not outputs and not verdicts:
        console.print(
            text(
                "The output and the verdicts are the same as the original's."
                if ok
                else "The replay did not succeed, so there is no output to compare."
            )
        )
        return
    if outputs:
        print_table(
            "Output changes",
            (Column("path"), Column("original", wrap=True), Column("replay", wrap=True)),
            [
                [text(c["path"]), text(_clip(repr(c["before"]))), text(_clip(repr(c["after"])))]
                for c in outputs
            ],
        )
    for change in verdicts:
        console.print(text(f"verdict {change['name']}: {change['before']} → {change['after']}"))


def _clip(value: str, limit: int = 240) -> str:
    """``value`` cut after ``limit`` characters, at a space, marked with an ellipsis."""
    if len(value) <= limit:
        return value
    cut = value.rfind(" ", 0, limit)
    return value[: cut if cut > limit // 2 else limit] + " …"


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "run_id": entry.run_id,
        "agent": entry.agent,
        **failure_json(entry),
        "error_message": entry.error_message,
        "failed_at": iso(entry.failed_at),
        "attempts": entry.attempts,
        "status": entry.status,
        "claimed_by": entry.claimed_by,
        "claimed_at": iso(entry.claimed_at),
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
        str,
        typer.Option(
            help="open (default: pending, and claimed by a redriver), pending, redriving, "
            "redriven, purged, or all."
        ),
    ] = "open",
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: JsonOption = False,
) -> None:
    """List dead-letter entries, oldest first."""
    since_at = parse_since(since)  # a bad --since is refused before the ledger is opened
    with open_app(ledger) as app:
        entries = app.dlq.list(
            agent=agent,
            error_class=error_class,
            since=since_at,
            status=None if status == "all" else status,
            limit=limit,
        )
        shown = {} if as_json else short_ids(app, "run", (e.run_id for e in entries))
        where = describe(app.store.url)
    print_listing(
        entries,
        as_json=as_json,
        to_json=_entry_json,
        none=f"The dead-letter queue has no matching entry in the ledger at {where}.",
        title=f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} in {where}",
        columns=(
            Column("run id"),
            Column("agent"),
            Column("class", drop=3),
            Column("cause", drop=5),
            Column("tries", drop=6, justify="right"),
            Column("failed", drop=4),
            Column("status", drop=2),
            Column("error", wrap=True),
        ),
        row=lambda e: [
            text(shown[e.run_id]),
            text(e.agent),
            text(e.error_class.value if e.error_class else ""),
            text(e.failure_cause.value if e.failure_cause else ""),
            text(e.attempts),
            text(short_when(e.failed_at)),
            _entry_status(e),
            text(e.error_message),
        ],
        note=id_note(shown),
    )


def _entry_status(entry: Any) -> Text:
    if entry.status == "redriving" and entry.claimed_at is not None:
        age = max(0.0, time.time() - entry.claimed_at)
        run = f", run {entry.redrive_run_id}" if entry.redrive_run_id else ""
        return text(f"redriving by {entry.claimed_by} for {age:.0f}s{run}")
    return (
        status_text(entry.status)
        if entry.result is None
        else text(f"{entry.status} ({entry.result})")
    )


@dlq.command("redrive")
def dlq_redrive(
    app_spec: AppOption,
    agent: AgentFilter = None,
    error_class: ClassFilter = None,
    since: SinceFilter = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Only the entry of this run (id or prefix).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 1000,
    rate: Annotated[float | None, typer.Option(help="At most N redrives per second.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would run.")] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start each run afresh (new idempotency keys) instead of continuing its "
            "journal: side effects that were not compensated happen again.",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --fresh: confirm the side effects it repeats.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Redrive matching entries with the current code, each at most once.

    Each continues its failed run's journal: completed steps are served with their original
    idempotency keys, the failed step and what follows run. An entry with a call in doubt waits
    for `seawall dlq resolve`.
    """
    since_at = parse_since(since)
    app = load_app(app_spec)
    run_id = None if run is None else resolve_id(app, "run", run)
    options: dict[str, Any] = {
        "agent": agent,
        "error_class": error_class,
        "since": since_at,
        "run_id": run_id,
        "limit": limit,
        "rate": rate,
        "fresh": fresh,
    }
    if fresh and not dry_run and not yes:
        _confirm_repeats(app.dlq.redrive(dry_run=True, **options))
        yes = True
    outcomes = app.dlq.redrive(dry_run=dry_run, repeat_effects=yes, **options)
    if as_json:
        print_json(
            [
                {
                    "entry": _entry_json(o.entry),
                    "run_id": o.run_id,
                    "status": o.status,
                    "mode": o.mode,
                    "repeats": list(o.repeats),
                    "error": o.error,
                }
                for o in outcomes
            ]
        )
    else:
        verb = "would redrive" if dry_run else "redrove"
        console.print(text(f"{verb} {len(outcomes)} entr{'y' if len(outcomes) == 1 else 'ies'}"))
        for o in outcomes:
            how = "" if o.mode == "continue" else f" ({o.mode})"
            line = f"  {o.entry.run_id} → {o.run_id or '-'}: {o.status}{how}"
            console.print(text(line + (f": {o.error}" if o.error else "")))
    if any(o.status not in ("succeeded", "would redrive") for o in outcomes):
        raise typer.Exit(code=1)


def _confirm_repeats(planned: list[Any]) -> None:
    """Ask before a fresh redrive repeats side effects; refuse without a terminal to ask on."""
    repeats = [(o.entry.run_id, effect) for o in planned for effect in o.repeats]
    if not repeats:
        return
    for run_id, effect in repeats:
        console.print(text(f"  run {run_id}: {effect} will happen again"))
    if not sys.stdin.isatty():
        raise fail(
            UsageError(
                f"--fresh would repeat {len(repeats)} side effect(s) listed above; confirm with "
                "--yes, or redrive without --fresh to continue each run's journal"
            )
        )
    if not typer.confirm(f"Repeat these {len(repeats)} side effect(s)?", default=False):
        raise typer.Exit(code=1)


@dlq.command("resolve")
def dlq_resolve(
    run: Annotated[str, typer.Argument(help="The run with a call in doubt (id or prefix).")],
    happened: Annotated[
        bool | None,
        typer.Option(
            "--happened/--did-not-happen",
            help="Whether the in-doubt call took effect in the target system.",
        ),
    ] = None,
    result: Annotated[
        str | None,
        typer.Option(help="With --happened: the call's result as JSON, when the agent needs it."),
    ] = None,
    step: Annotated[
        int | None, typer.Option(help="The in-doubt step, when the run has several.")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who decides (recorded).")] = None,
    note: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Say whether a run's in-doubt call happened; then `dlq redrive --run RUN` goes on.

    --happened: the redrive serves the call (with --result as its result). --did-not-happen:
    the redrive issues it again, with its original idempotency key.
    """
    if happened is None:
        raise fail(UsageError("say what happened: --happened or --did-not-happen"))
    value: Any = None
    if result is not None:
        try:
            value = json.loads(result)
        except json.JSONDecodeError as exc:
            raise fail(UsageError(f"--result is not JSON: {exc}")) from exc
    with open_app(ledger) as app:
        run_id = resolve_id(app, "run", run)
        options: dict[str, Any] = {"happened": happened, "step": step, "by": by, "note": note}
        if result is not None:
            options["result"] = value
        resolution = app.dlq.resolve(run_id, **options)
    body = {
        "run_id": resolution.run_id,
        "step": resolution.seq,
        "decision": resolution.decision,
        "result": resolution.result,
        "decided_by": resolution.decided_by,
        "decided_at": iso(resolution.decided_at),
        "note": resolution.note,
    }
    if as_json:
        print_json(body)
        return
    console.print(
        text(
            f"step {resolution.seq} of run {run_id}: {resolution.decision.replace('_', ' ')}. "
            f"Redrive it now: seawall dlq redrive --run {run_id}"
        )
    )


@dlq.command("purge")
def dlq_purge(
    ledger: LedgerOption = None,
    agent: AgentFilter = None,
    error_class: ClassFilter = None,
    since: SinceFilter = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Mark matching pending entries purged (the runs stay in the ledger)."""
    since_at = parse_since(since)  # a bad --since is refused before the ledger is opened
    with open_app(ledger) as app:
        matching = app.dlq.list(agent=agent, error_class=error_class, since=since_at)
        if not matching:
            console.print(text("0 entries match; nothing to purge."))
            return
        if not yes and not typer.confirm(f"Purge {len(matching)} entries?", default=False):
            raise typer.Exit(code=1)
        count = app.dlq.purge(agent=agent, error_class=error_class, since=since_at)
    console.print(text(f"Purged {count} entr{'y' if count == 1 else 'ies'}."))
