"""The dashboard's actions (POST): replay, redrive, breaker reset, hand-off decisions.

Each one first checks the operator's session and the form's CSRF token (403 otherwise, before
anything is read or changed), then runs the app's public API in a worker thread (it may execute
agents), and redirects to a page that shows the result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from seawall.dashboard._state import render, state
from seawall.errors import SeawallError

if TYPE_CHECKING:
    from starlette.datastructures import FormData
    from starlette.requests import Request

    from seawall import Seawall


def refused(request: Request) -> Response:
    """The 403 page of an action without a session or with a wrong CSRF token."""
    return render(
        request,
        "error.html",
        status_code=403,
        title="Not allowed",
        message="Actions need an operator session and a valid form token: log in with the "
        "dashboard's token (printed when `seawall dashboard` started), then retry from the page.",
    )


async def _checked(request: Request) -> FormData | None:
    """The posted form when the session and its CSRF token are genuine, else ``None``."""
    form = await request.form()
    submitted = form.get("csrf")
    if state(request).guard.allows(request, submitted if isinstance(submitted, str) else None):
        return form
    return None


def _failed(request: Request, error: SeawallError | str, status_code: int = 409) -> Response:
    message = error if isinstance(error, str) else error.message
    return render(request, "error.html", status_code=status_code, title="Not done", message=message)


def _runner(request: Request) -> Seawall | Response:
    runner = state(request).runner
    if runner is None:
        return _failed(
            request,
            "This action runs agents, so it needs your app: restart the dashboard with "
            "`seawall dashboard --app module:attribute`.",
        )
    return runner


async def replay(request: Request) -> Response:
    """Replay a run, recorded or live; show the new run."""
    form = await _checked(request)
    if form is None:
        return refused(request)
    runner = _runner(request)
    if isinstance(runner, Response):
        return runner
    mode = form.get("mode")
    if mode not in ("recorded", "live"):
        return _failed(request, "mode must be recorded or live", 400)
    run_id = request.path_params["run_id"]
    live = mode == "live"
    try:
        result = await run_in_threadpool(
            lambda: runner.replay(run_id, mode="live" if live else "recorded")
        )
    except SeawallError as exc:
        return _failed(request, exc)
    return RedirectResponse(f"/runs/{result.run.run_id}?done=replayed", status_code=303)


async def redrive(request: Request) -> Response:
    """Redrive the selected DLQ entries, or every pending entry matching the filters."""
    form = await _checked(request)
    if form is None:
        return refused(request)
    runner = _runner(request)
    if isinstance(runner, Response):
        return runner
    selected = [value for value in form.getlist("entry") if isinstance(value, str)]
    try:
        if selected:
            outcomes = await run_in_threadpool(_redrive_selected, runner, selected)
        elif form.get("all") == "1":
            agent = form.get("agent") or None
            error_class = form.get("error_class") or None
            found = await run_in_threadpool(
                lambda: runner.dlq.redrive(agent=agent, error_class=error_class)  # type: ignore[arg-type]
            )
            outcomes = [
                {"entry": o.entry, "run_id": o.run_id, "status": o.status, "error": o.error}
                for o in found
            ]
        else:
            return _failed(request, "Select entries to redrive (or redrive all matching).", 400)
    except SeawallError as exc:
        return _failed(request, exc)
    return render(
        request,
        "dlq.html",
        entries=[],
        params={},
        status="pending",
        classes=(),
        outcomes=outcomes,
    )


def _redrive_selected(app: Seawall, entry_ids: list[str]) -> list[dict[str, Any]]:
    """Re-run selected pending entries live; a successful run settles its entry."""
    from seawall.ledger import DeadLetterQuery  # noqa: PLC0415 - keeps the module light

    pending = {e.entry_id: e for e in app.store.list_dead_letters(DeadLetterQuery(limit=100_000))}
    outcomes: list[dict[str, Any]] = []
    for entry_id in entry_ids:
        entry = pending.get(entry_id)
        if entry is None:
            outcomes.append(
                {
                    "entry": None,
                    "run_id": None,
                    "status": "error",
                    "error": f"{entry_id}: not pending",
                }
            )
            continue
        try:
            replayed = app.replay(entry.run_id, mode="live")
        except SeawallError as exc:
            outcomes.append(
                {"entry": entry, "run_id": None, "status": "error", "error": exc.message}
            )
            continue
        outcomes.append(
            {
                "entry": entry,
                "run_id": replayed.run.run_id,
                "status": replayed.run.status.value,
                "error": None,
            }
        )
    return outcomes


async def reset_breaker(request: Request) -> Response:
    """Close a breaker and forget its failures."""
    form = await _checked(request)
    if form is None:
        return refused(request)
    name = form.get("name")
    if not isinstance(name, str) or not name:
        return _failed(request, "name the breaker to reset", 400)
    try:
        await run_in_threadpool(state(request).reader.reset_breaker, name)
    except SeawallError as exc:
        return _failed(request, exc, 400)
    return RedirectResponse("/breakers?done=reset", status_code=303)


async def approve(request: Request) -> Response:
    """Approve a hand-off, with the run's output or an edited one (JSON)."""
    form = await _checked(request)
    if form is None:
        return refused(request)
    runner = _runner(request)
    if isinstance(runner, Response):
        return runner
    handoff_id = request.path_params["handoff_id"]
    note = str(form.get("note") or "") or None
    edited = str(form.get("output") or "").strip()
    kwargs: dict[str, Any] = {"by": "dashboard", "note": note}
    if edited and form.get("edit") == "1":
        try:
            kwargs["output"] = json.loads(edited)
        except json.JSONDecodeError as exc:
            return _failed(request, f"the edited output is not JSON: {exc}", 400)
    try:
        await run_in_threadpool(lambda: runner.approve(handoff_id, **kwargs))
    except SeawallError as exc:
        return _failed(request, exc)
    return RedirectResponse("/handoffs?done=approved", status_code=303)


async def reject(request: Request) -> Response:
    """Reject a hand-off with a reason: the run fails ``silent_drift``."""
    form = await _checked(request)
    if form is None:
        return refused(request)
    runner = _runner(request)
    if isinstance(runner, Response):
        return runner
    reason = str(form.get("reason") or "").strip()
    if not reason:
        return _failed(request, "give a reason for the rejection", 400)
    handoff_id = request.path_params["handoff_id"]
    try:
        await run_in_threadpool(lambda: runner.reject(handoff_id, reason=reason, by="dashboard"))
    except SeawallError as exc:
        return _failed(request, exc)
    return RedirectResponse("/handoffs?done=rejected", status_code=303)
