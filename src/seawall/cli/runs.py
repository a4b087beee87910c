"""``seawall runs`` and ``seawall show``: read the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from seawall.cli._common import (
    JsonOption,
    LedgerOption,
    console,
    iso,
    open_app,
    parse_since,
    print_json,
    seconds,
    using,
    when,
)

if TYPE_CHECKING:
    from seawall import AttemptRecord, RunRecord, Step
    from seawall.ledger import ArtifactRecord, CompensationRecord, HandOffRecord, VerdictRecord

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "pending": "yellow",
    "awaiting_human": "magenta",
    "cancelled": "dim",
    "skipped": "dim",
    "quarantined": "magenta",
}


def run_json(run: RunRecord) -> dict[str, Any]:
    """The stable JSON form of a run row."""
    return {
        "run_id": run.run_id,
        "agent": run.agent,
        "status": run.status.value,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "duration_s": run.duration,
        "input_hash": run.input_hash,
        "output_hash": run.output_hash,
        "tokens_used": run.tokens_used,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "cost_usd": run.cost_usd,
        "retried_input_tokens": run.retried_input_tokens,
        "retried_output_tokens": run.retried_output_tokens,
        "retried_cost_usd": run.retried_cost_usd,
        "unknown_usage_calls": run.unknown_usage_calls,
        "unpriced_calls": run.unpriced_calls,
        "trace_id": run.trace_id,
        "error_class": None if run.error_class is None else run.error_class.value,
        "failure_cause": None if run.failure_cause is None else run.failure_cause.value,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "error": run.error,
        "attempts": run.attempts,
        "workflow": run.workflow,
        "parent_run_id": run.parent_run_id,
        "replay_of": run.replay_of,
        "code_version": run.code_version,
        "lease_owner": run.lease_owner,
        "lease_expires_at": iso(run.lease_expires_at),
    }


def _tokens(run: RunRecord) -> str:
    text = f"{run.tokens_used} ({run.input_tokens} in, {run.output_tokens} out)"
    if run.unknown_usage_calls:
        text += f" + {run.unknown_usage_calls} call(s) of unknown usage"
    retried = run.retried_input_tokens + run.retried_output_tokens
    if retried:
        text += f"; {retried} more spent by superseded retries"
    return text


def _cost(run: RunRecord) -> str:
    if run.cost_usd is None:
        return "unknown"
    text = f"${run.cost_usd:.6f}"
    if run.unpriced_calls:
        text += f" + {run.unpriced_calls} unpriced call(s) (no price for their model)"
    if run.retried_cost_usd:
        text += f"; ${run.retried_cost_usd:.6f} more spent by superseded retries"
    return text


def step_json(step: Step) -> dict[str, Any]:
    """The stable JSON form of a journal step."""
    record = step.record
    return {
        "seq": record.seq,
        "attempt": record.attempt,
        "kind": record.kind,
        "name": record.name,
        "mutating": record.mutating,
        "status": record.status,
        "idempotency_key": record.idempotency_key,
        "request_hash": record.request_hash,
        "start_time": iso(record.start_time),
        "end_time": iso(record.end_time),
        "duration_ms": None if record.duration is None else round(record.duration * 1000, 3),
        "tries": record.tries,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "request": step.request,
        "response": step.response,
    }


def runs(
    ledger: LedgerOption = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only runs of this agent.")] = None,
    error_class: Annotated[
        str | None,
        typer.Option(
            help="Only runs of this class: clean_abort, partial_write, ...", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs since an ISO time or an age (30m, 2h, 7d).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    with using(open_app(ledger)) as app:
        found = app.runs(
            status=status,
            agent=agent,
            error_class=error_class,
            since=parse_since(since),
            limit=limit,
        )
    if as_json:
        print_json([run_json(run) for run in found])
        return
    if not found:
        console.print("No runs match.")
        return
    table = Table(title=f"{len(found)} run(s)", title_justify="left")
    for column in (
        "run id",
        "agent",
        "status",
        "class",
        "cause",
        "tries",
        "started",
        "took",
        "tokens",
        "cost $",
    ):
        table.add_column(column)
    for run in found:
        style = _STATUS_STYLE.get(run.status.value, "")
        table.add_row(
            run.run_id,
            run.agent,
            f"[{style}]{run.status.value}[/]" if style else run.status.value,
            run.error_class.value if run.error_class else "",
            run.failure_cause.value if run.failure_cause else "",
            str(run.attempts),
            when(run.start_time),
            seconds(run.duration),
            str(run.tokens_used),
            f"{run.cost_usd:.4f}" if run.cost_usd else "",
        )
    console.print(table)


@dataclass(frozen=True)
class _RunView:
    """Everything `seawall show` prints about one run."""

    run: RunRecord
    attempts: list[AttemptRecord]
    steps: list[Step]
    inputs: Any
    output: Any
    artifacts: list[ArtifactRecord]
    compensations: list[CompensationRecord]
    handoffs: list[HandOffRecord]
    verdicts: list[VerdictRecord]


def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: its fields, attempts, step timeline, artifacts, compensations, hand-offs."""
    with using(open_app(ledger)) as app:
        view = _RunView(
            run=app.get_run(run_id),
            attempts=app.attempts(run_id),
            steps=app.steps(run_id),
            inputs=app.inputs_of(run_id),
            output=app.output_of(run_id),
            artifacts=app.artifacts_of(run_id),
            compensations=app.compensations(run_id),
            handoffs=app.handoffs(run_id=run_id),
            verdicts=app.verdicts(run_id),
        )
    if as_json:
        print_json(_view_json(view))
    else:
        _print_view(view)


def _view_json(view: _RunView) -> dict[str, Any]:
    return {
        "run": run_json(view.run),
        "inputs": view.inputs,
        "output": view.output,
        "attempts": [
            {
                "attempt": a.attempt,
                "status": a.status,
                "start_time": iso(a.start_time),
                "end_time": iso(a.end_time),
                "error_class": None if a.error_class is None else a.error_class.value,
                "failure_cause": None if a.failure_cause is None else a.failure_cause.value,
                "error_type": a.error_type,
                "error_message": a.error_message,
                "retry_delay_s": a.retry_delay,
                "owner": a.owner,
                "epoch": a.epoch,
                "journal_line_after_step": a.base_seq,
                "fenced_at": iso(a.fenced_at),
                "decision": a.decision,
            }
            for a in view.attempts
        ],
        "steps": [step_json(step) for step in view.steps],
        "artifacts": [
            {
                "name": a.name,
                "size": a.size,
                "sha256": a.sha256,
                "committed_at": iso(a.committed_at),
            }
            for a in view.artifacts
        ],
        "compensations": [
            {
                "seq": c.seq,
                "tool": c.tool,
                "status": c.status,
                "idempotency_key": c.idempotency_key,
                "start_time": iso(c.start_time),
                "end_time": iso(c.end_time),
                "tries": c.tries,
                "error_type": c.error_type,
                "error_message": c.error_message,
            }
            for c in view.compensations
        ],
        "verdicts": [
            {
                "attempt": v.attempt,
                "kind": v.kind,
                "name": v.name,
                "passed": v.passed,
                "error": v.error,
                "score": v.score,
                "message": v.message,
                "duration_ms": round(v.duration * 1000, 3),
            }
            for v in view.verdicts
        ],
        "handoffs": [
            {
                "handoff_id": h.handoff_id,
                "kind": h.kind,
                "status": h.status,
                "reason": h.reason,
                "subject": h.subject,
                "created_at": iso(h.created_at),
                "decision": h.decision,
            }
            for h in view.handoffs
        ],
    }


def _print_view(view: _RunView) -> None:
    run = view.run
    style = _STATUS_STYLE.get(run.status.value, "")
    console.print(
        f"[bold]Run {run.run_id}[/]  agent [bold]{run.agent}[/]  [{style}]{run.status.value}[/]"
    )
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="dim")
    fields.add_column()
    for label, value in (
        ("started", when(run.start_time)),
        ("ended", when(run.end_time)),
        ("took", seconds(run.duration)),
        ("error class", run.error_class.value if run.error_class else "-"),
        ("failure cause", run.failure_cause.value if run.failure_cause else "-"),
        ("error", f"{run.error_type}: {run.error_message}" if run.error_type else "-"),
        ("attempts", str(run.attempts)),
        ("tokens", _tokens(run)),
        ("cost", _cost(run)),
        ("input hash", run.input_hash),
        ("output hash", run.output_hash or "-"),
        ("code version", run.code_version or "-"),
        ("parent run", run.parent_run_id or "-"),
        ("replay of", run.replay_of or "-"),
        ("phase", run.phase or "-"),
    ):
        fields.add_row(label, value)
    console.print(fields)
    _print_attempts(view.attempts)
    _print_steps(view.steps)
    _print_verdicts(view.verdicts)
    _print_settling(view)


def _print_attempts(attempts: list[AttemptRecord]) -> None:
    if not attempts:
        return
    table = Table(title="Attempts", title_justify="left")
    for column in ("#", "status", "started", "took", "class", "cause", "error", "then waited"):
        table.add_column(column)
    for a in attempts:
        took = None if a.end_time is None else a.end_time - a.start_time
        table.add_row(
            str(a.attempt),
            a.status,
            when(a.start_time),
            seconds(took),
            a.error_class.value if a.error_class else "",
            a.failure_cause.value if a.failure_cause else "",
            f"{a.error_type}: {a.error_message}" if a.error_type else "",
            seconds(a.retry_delay) if a.retry_delay is not None else "",
        )
    console.print(table)
    for a in attempts:
        # Why it was (or was not) retried, or taken over; a fenced owner says when it woke up.
        lines = [a.decision] if a.decision else []
        if a.fenced_at is not None:
            lines.append(f"its process woke up at {when(a.fenced_at)} and found the run taken over")
        for line in lines:
            console.print(Text(f"attempt {a.attempt}: {line}"))


def _print_steps(steps: list[Step]) -> None:
    if not steps:
        return
    table = Table(title=f"Steps ({len(steps)})", title_justify="left")
    for column in ("seq", "att", "kind", "name", "status", "took", "tries", "key / error"):
        table.add_column(column)
    for step in steps:
        record = step.record
        note = (
            f"[red]{record.error_type}: {record.error_message}[/]"
            if record.error_type
            else (record.idempotency_key or "")
        )
        name = f"[bold]{record.name}[/] (mutating)" if record.mutating else record.name
        table.add_row(
            str(record.seq),
            str(record.attempt),
            record.kind,
            name,
            record.status,
            seconds(record.duration),
            str(record.tries),
            note,
        )
    console.print(table)


def _print_verdicts(verdicts: list[VerdictRecord]) -> None:
    if not verdicts:
        return
    table = Table(title="Verification", title_justify="left")
    for column in ("att", "kind", "verifier", "verdict", "took", "message"):
        table.add_column(column)
    for v in verdicts:
        verdict = (
            "[green]passed[/]"
            if v.passed
            else "[red]verifier error[/]"
            if v.error
            else "[red]failed[/]"
        )
        table.add_row(str(v.attempt), v.kind, v.name, verdict, seconds(v.duration), v.message or "")
    console.print(table)


def _print_settling(view: _RunView) -> None:
    if view.artifacts:
        table = Table(title=f"Artifacts ({len(view.artifacts)})", title_justify="left")
        for column in ("name", "bytes", "sha256", "committed"):
            table.add_column(column)
        for artifact in view.artifacts:
            table.add_row(
                artifact.name,
                f"{artifact.size:,}",
                artifact.sha256[:16],
                when(artifact.committed_at),
            )
        console.print(table)
    if view.compensations:
        table = Table(title="Compensations (newest step first)", title_justify="left")
        for column in ("step", "tool", "status", "tries", "error"):
            table.add_column(column)
        for c in view.compensations:
            error = f"{c.error_type}: {c.error_message}" if c.error_type else ""
            table.add_row(str(c.seq), c.tool, c.status, str(c.tries), error)
        console.print(table)
    for h in view.handoffs:
        console.print(
            f"[bold magenta]hand-off {h.status}[/] ({h.kind}, {h.handoff_id}): {h.reason}"
        )
