"""The dashboard's actions (POST): replay, redrive, breaker reset, hand-off decisions.

Each one first checks the operator's session and the form's CSRF token (403 otherwise, before
anything is read or changed), then runs the app's public API in a worker thread (it may execute
agents), and redirects to a page that shows the result.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from seawall._failures import ErrorClass
from seawall.dashboard._state import render, state
from seawall.errors import RegistrationError, SeawallError
from seawall.ledger import DeadLetterQuery

if TYPE_CHECKING:
    from starlette.datastructures import FormData
    from starlette.requests import Request

    from seawall import Seawall
    from seawall.ledger import DeadLetter


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


async def _checked_with_app(request: Request) -> tuple[FormData, Seawall] | Response:
    """The posted form and the user's app for an action that runs agents, or the refusal."""
    form = await _checked(request)
    if form is None:
        return refused(request)
    runner = state(request).runner
    if runner is None:
        return _failed(
            request,
            "This action runs agents, so it needs your app: restart the dashboard with "
            "`seawall dashboard --app module:attribute`.",
        )
    return form, runner


async def replay(request: Request) -> Response:
    """Replay a run, recorded or live; show the new run."""
    checked = await _checked_with_app(request)
    if isinstance(checked, Response):
        return checked
    form, runner = checked
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
    checked = await _checked_with_app(request)
    if isinstance(checked, Response):
        return checked
    form, runner = checked
    selected = [value for value in form.getlist("entry") if isinstance(value, str)]
    agent = str(form.get("agent") or "") or None
    try:
        error_class = ErrorClass(str(form.get("error_class"))) if form.get("error_class") else None
    except ValueError as exc:
        return _failed(request, f"bad filter: {exc}", 400)
    try:
        if selected:
            query = DeadLetterQuery(agent=agent, error_class=error_class, limit=100_000)
            outcomes = await run_in_threadpool(_redrive_selected, runner, selected, query)
        elif form.get("all") == "1":
            found = await run_in_threadpool(
                lambda: runner.dlq.redrive(agent=agent, error_class=error_class)
            )
            outcomes = [_outcome(o.entry, o.run_id, o.status, o.error) for o in found]
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


def _redrive_selected(
    app: Seawall, entry_ids: list[str], query: DeadLetterQuery
) -> list[dict[str, Any]]:
    """Redrive selected pending entries live, each claimed first so it runs at most once.

    ``query`` is the page's filter, to find the entries; each one is then claimed alone (a
    query matching only its agent, class and failure time), exactly as ``dlq redrive`` claims.
    """
    pending = {e.entry_id: e for e in app.store.list_dead_letters(query)}
    owner = f"dashboard-{os.getpid()}"
    outcomes: list[dict[str, Any]] = []
    for entry_id in entry_ids:
        entry = pending.get(entry_id)
        exact = None
        if entry is not None:
            exact = replace(
                query,
                agent=entry.agent,
                error_class=entry.error_class,
                since=entry.failed_at,
                until=math.nextafter(entry.failed_at, math.inf),
                limit=1,
            )
        claimed = None if exact is None else app.store.claim_dead_letter(exact, owner, time.time())
        if claimed is None:
            outcomes.append(_outcome(entry, None, "error", "no longer pending (redriven already?)"))
            continue
        try:
            replayed = app.replay(claimed.run_id, mode="live")
        except RegistrationError as exc:
            app.store.release_dead_letter(claimed.entry_id)
            outcomes.append(_outcome(claimed, None, "error", exc.message))
            continue
        except SeawallError as exc:
            app.store.finish_dead_letter(
                claimed.entry_id, redrive_run_id="", result=f"error: {exc.message}", at=time.time()
            )
            outcomes.append(_outcome(claimed, None, "error", exc.message))
            continue
        status = replayed.run.status.value
        app.store.finish_dead_letter(
            claimed.entry_id, redrive_run_id=replayed.run.run_id, result=status, at=time.time()
        )
        outcomes.append(_outcome(claimed, replayed.run.run_id, status, None))
    return outcomes


def _outcome(
    entry: DeadLetter | None, run_id: str | None, status: str, error: str | None
) -> dict[str, Any]:
    return {"entry": entry, "run_id": run_id, "status": status, "error": error}


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
    checked = await _checked_with_app(request)
    if isinstance(checked, Response):
        return checked
    form, runner = checked
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
    checked = await _checked_with_app(request)
    if isinstance(checked, Response):
        return checked
    form, runner = checked
    reason = str(form.get("reason") or "").strip()
    if not reason:
        return _failed(request, "give a reason for the rejection", 400)
    handoff_id = request.path_params["handoff_id"]
    try:
        await run_in_threadpool(lambda: runner.reject(handoff_id, reason=reason, by="dashboard"))
    except SeawallError as exc:
        return _failed(request, exc)
    return RedirectResponse("/handoffs?done=rejected", status_code=303)
