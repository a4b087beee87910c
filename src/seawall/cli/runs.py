"""``seawall runs`` and ``seawall show``: read the ledger."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from seawall.cli._inputs import JsonOption, LedgerOption, open_app, parse_since, resolve_id
from seawall.cli._output import (
    Column,
    console,
    failure_json,
    id_note,
    iso,
    print_json,
    print_listing,
    print_table,
    seconds,
    short_ids,
    short_when,
    status_text,
    text,
    when,
)
from seawall.ledger import RunQuery, describe

if TYPE_CHECKING:
    from seawall import AttemptRecord, RunRecord, Step
    from seawall.ledger import (
        ArtifactRecord,
        CompensationRecord,
        HandOffRecord,
        StepResolution,
        VerdictRecord,
    )


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
        **failure_json(run),
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
    since_at = parse_since(since)  # a bad --since is refused before the ledger is opened
    with open_app(ledger) as app:
        found = app.ledger.runs(
            status=status,
            agent=agent,
            error_class=error_class,
            since=since_at,
            limit=limit,
        )
        shown = {} if as_json else short_ids(app, "run", (run.run_id for run in found))
        where = describe(app.store.url)
    print_listing(
        found,
        as_json=as_json,
        to_json=run_json,
        none=f"No runs match in the ledger at {where}.",
        title=f"{len(found)} run(s) in {where}",
        columns=(
            Column("run id"),
            Column("agent"),
            Column("status"),
            Column("class", drop=2),
            Column("cause", drop=6),
            Column("tries", drop=7, justify="right"),
            Column("started", drop=3),
            Column("took", drop=4, justify="right"),
            Column("tokens", drop=8, justify="right"),
            Column("cost $", drop=5, justify="right"),
        ),
        row=lambda run: [
            text(shown[run.run_id]),
            text(run.agent),
            status_text(run.status.value),
            text(run.error_class.value if run.error_class else ""),
            text(run.failure_cause.value if run.failure_cause else ""),
            text(run.attempts),
            text(short_when(run.start_time)),
            text(seconds(run.duration)),
            text(run.tokens_used),
            text(f"{run.cost_usd:.4f}" if run.cost_usd else ""),
        ],
        note=id_note(shown),
    )


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
    replays: list[RunRecord]
    resolutions: list[StepResolution]


def show(
    run_id: Annotated[str, typer.Argument(help="The run to show (its id or a unique prefix).")],
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: its fields, attempts, step timeline, artifacts, compensations, hand-offs."""
    with open_app(ledger) as app:
        run_id = resolve_id(app, "run", run_id)
        view = _RunView(
            run=app.ledger.run(run_id),
            attempts=app.ledger.attempts(run_id),
            steps=app.ledger.steps(run_id),
            inputs=app.ledger.inputs(run_id),
            output=app.ledger.output(run_id),
            artifacts=app.ledger.artifacts(run_id),
            compensations=app.ledger.compensations(run_id),
            handoffs=app.handoffs.list(run_id=run_id),
            verdicts=app.ledger.verdicts(run_id),
            replays=app.store.list_runs(RunQuery(replay_of=run_id, limit=100)),
            resolutions=app.store.list_resolutions(run_id),
        )
    if as_json:
        print_json(_view_json(view))
    else:
        _print_view(view)


def _view_json(view: _RunView) -> dict[str, Any]:
    return {
        "replays": [
            {"run_id": r.run_id, "mode": r.replay_mode, "status": r.status.value}
            for r in view.replays
        ],
        "resolutions": [
            {
                "step": r.seq,
                "decision": r.decision,
                "result": r.result,
                "decided_by": r.decided_by,
                "decided_at": iso(r.decided_at),
                "note": r.note,
            }
            for r in view.resolutions
        ],
        "run": run_json(view.run),
        "inputs": view.inputs,
        "output": view.output,
        "attempts": [
            {
                "attempt": a.attempt,
                "status": a.status,
                "start_time": iso(a.start_time),
                "end_time": iso(a.end_time),
                **failure_json(a),
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
    console.print(
        Text.assemble(
            ("Run ", "bold"),
            (run.run_id, "bold"),
            "  agent ",
            (run.agent, "bold"),
            "  ",
            status_text(run.status.value),
        )
    )
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="dim", no_wrap=True)
    fields.add_column(overflow="fold")
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
        (_relation(run), run.replay_of or "-"),
        ("phase", run.phase or "-"),
    ):
        fields.add_row(label, text(value))
    console.print(fields)
    for later in view.replays:
        how = "redriven" if later.replay_mode == "redrive" else f"replayed ({later.replay_mode})"
        console.print(text(f"{how} as run {later.run_id}: {later.status.value}"))
    for resolution in view.resolutions:
        console.print(
            text(
                f"step {resolution.seq}: an operator ({resolution.decided_by or 'unnamed'}) said "
                f"it {'happened' if resolution.decision == 'happened' else 'did not happen'} "
                f"at {when(resolution.decided_at)}"
                + (f": {resolution.note}" if resolution.note else "")
            )
        )
    _print_divergence(run.error)
    _print_attempts(view.attempts)
    _print_steps(view.steps)
    _print_verdicts(view.verdicts)
    _print_settling(view)


def _relation(run: RunRecord) -> str:
    if run.replay_mode == "redrive":
        return "redrive of"
    return "replay of" if run.replay_of is None else f"{run.replay_mode or 'live'} replay of"


def _print_divergence(error: dict[str, Any] | None) -> None:
    """What the code asked for that the journal does not hold: one line per changed field."""
    if not error or not error.get("changes"):
        return
    expected, got = error.get("expected"), error.get("got")
    what = (
        f"the code asked for {got} with other arguments than the journal holds"
        if expected == got
        else f"the journal holds {expected}, the code asked for {got}"
    )
    console.print(
        Text("diverged", style="red"),
        text(f" at step {error.get('step')}: {what} (journal → now)"),
        sep="",
    )
    for change in error["changes"]:
        path = str(change.get("path"))
        # Each side gets half the line, so a change fits on one: "path: before → after".
        room = max(_EXCERPT_MIN, (console.width - len(path) - 8) // 2)
        before, after = change.get("before"), change.get("after")
        console.print(
            text(f"  {path}: {_excerpt(before, after, room)} → {_excerpt(after, before, room)}")
        )


_EXCERPT_MIN = 16
"""The fewest characters of a changed value shown, however narrow the terminal."""
_ABSENT = "<absent>"
"""How a divergence's changes mark a field that one side does not have."""


def _excerpt(value: Any, other: Any, room: int) -> str:
    """``value`` as JSON in about ``room`` characters, around where it starts to differ."""
    if value == _ABSENT:
        return _ABSENT
    if not isinstance(value, str) or len(value) <= room:
        shown = json.dumps(value, ensure_ascii=False, default=repr)
        return shown if len(shown) <= room or isinstance(value, str) else shown[:room] + "…"
    # Character by character on purpose: where the two strings start to differ.
    common = os.path.commonprefix([value, other]) if isinstance(other, str) else ""  # noqa: RUF071
    at = len(common)
    start = max(0, at - room // 3)
    end = min(len(value), start + room)
    shown = json.dumps(value[start:end], ensure_ascii=False)
    while len(shown) > room and end > at + 1:  # escapes (\" \n) make the text longer
        end -= 1
        shown = json.dumps(value[start:end], ensure_ascii=False)
    return ("…" if start else "") + shown + ("…" if end < len(value) else "")


def _print_attempts(attempts: list[AttemptRecord]) -> None:
    if not attempts:
        return
    columns = (
        Column("#"),
        Column("status"),
        Column("started", drop=3),
        Column("took", drop=4, justify="right"),
        Column("class", drop=2),
        Column("cause", drop=5),
        Column("error", wrap=True),
        Column("then waited", drop=1, justify="right"),
    )
    rows = [
        [
            text(a.attempt),
            status_text(a.status),
            text(short_when(a.start_time)),
            text(seconds(None if a.end_time is None else a.end_time - a.start_time)),
            text(a.error_class.value if a.error_class else ""),
            text(a.failure_cause.value if a.failure_cause else ""),
            text(f"{a.error_type}: {a.error_message}" if a.error_type else ""),
            text(seconds(a.retry_delay) if a.retry_delay is not None else ""),
        ]
        for a in attempts
    ]
    print_table("Attempts", columns, rows)
    for a in attempts:
        # Why it was (or was not) retried, or taken over; a fenced owner says when it woke up.
        lines = [a.decision] if a.decision else []
        if a.fenced_at is not None:
            lines.append(f"its process woke up at {when(a.fenced_at)} and found the run taken over")
        for line in lines:
            console.print(text(f"attempt {a.attempt}: {line}"))


def _print_steps(steps: list[Step]) -> None:
    if not steps:
        return
    columns = (
        Column("seq", justify="right"),
        Column("att", drop=3, justify="right"),
        Column("kind", drop=4),
        Column("name"),
        Column("status"),
        Column("took", drop=2, justify="right"),
        Column("tries", drop=5, justify="right"),
        Column("error", wrap=True),
        Column("idempotency key", drop=6),
    )
    rows = []
    for step in steps:
        record = step.record
        name = Text(record.name, style="bold" if record.mutating else "")
        if record.mutating:
            name.append(" (mutating)", style="dim")
        rows.append(
            [
                text(record.seq),
                text(record.attempt),
                text(record.kind),
                name,
                status_text(record.status),
                text(seconds(record.duration)),
                text(record.tries),
                text(
                    f"{record.error_type}: {record.error_message}" if record.error_type else "",
                    style="red",
                ),
                text(record.idempotency_key),
            ]
        )
    print_table(f"Steps ({len(steps)})", columns, rows)


def _print_verdicts(verdicts: list[VerdictRecord]) -> None:
    if not verdicts:
        return
    columns = (
        Column("att", drop=2, justify="right"),
        Column("kind", drop=3),
        Column("verifier"),
        Column("verdict"),
        Column("took", drop=1, justify="right"),
        Column("message", wrap=True),
    )
    rows = [
        [
            text(v.attempt),
            text(v.kind),
            text(v.name),
            Text("passed", style="green")
            if v.passed
            else Text("verifier error" if v.error else "failed", style="red"),
            text(seconds(v.duration)),
            text(v.message),
        ]
        for v in verdicts
    ]
    print_table("Verification", columns, rows)


def _print_settling(view: _RunView) -> None:
    if view.artifacts:
        print_table(
            f"Artifacts ({len(view.artifacts)})",
            (
                Column("name"),
                Column("bytes", justify="right"),
                Column("sha256", drop=2),
                Column("committed", drop=1),
            ),
            [
                [
                    text(a.name),
                    text(f"{a.size:,}"),
                    text(a.sha256[:16]),
                    text(short_when(a.committed_at)),
                ]
                for a in view.artifacts
            ],
        )
    if view.compensations:
        print_table(
            "Compensations (newest step first)",
            (
                Column("step", justify="right"),
                Column("tool"),
                Column("status"),
                Column("tries", drop=1, justify="right"),
                Column("error", wrap=True),
            ),
            [
                [
                    text(c.seq),
                    text(c.tool),
                    status_text(c.status),
                    text(c.tries),
                    text(f"{c.error_type}: {c.error_message}" if c.error_type else ""),
                ]
                for c in view.compensations
            ],
        )
    for h in view.handoffs:
        console.print(
            Text.assemble(
                (f"hand-off {h.status}", "bold magenta"),
                f" ({h.kind}, {h.handoff_id}): {h.reason}",
            )
        )
