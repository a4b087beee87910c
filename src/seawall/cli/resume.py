"""``seawall resume``: take over runs whose process died."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall.cli._inputs import AppOption, JsonOption, LedgerOption, load_app, resolve_id
from seawall.cli._output import console, failure_json, print_json, text


def resume(
    app_spec: AppOption,
    run_id: Annotated[
        str | None,
        typer.Argument(
            help="Resume only this run, by its id or a unique prefix (default: every expired run)."
        ),
    ] = None,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume runs whose lease lapsed (their process died), serving their journals.

    Runs recorded for a worker whose message the broker lost (pending, never claimed, missing
    from the queue) are taken and executed here too.

    The runs are resumed in the ledger your app was created with; --ledger, when given, must
    name that same ledger (a guard against resuming against the wrong one).
    """
    app = load_app(app_spec, ledger)
    results = app.resume(None if run_id is None else resolve_id(app, "run", run_id))
    if as_json:
        print_json(
            [
                {
                    "run_id": r.run_id,
                    "agent": r.agent,
                    "status": r.status.value,
                    **failure_json(r),
                    "attempts": len(r.attempts),
                }
                for r in results
            ]
        )
    elif not results:
        console.print(text("No run needed resuming."))
    else:
        for r in results:
            extra = f" ({r.error_class}, {r.failure_cause})" if not r.ok else ""
            console.print(text(f"{r.run_id}  {r.agent}  {r.status.value}{extra}"))
    if any(not r.ok for r in results):
        raise typer.Exit(code=1)
