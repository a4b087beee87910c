"""The dashboard's actions (POST): replay, redrive, breaker reset, hand-offs, alert answers.

Each one first checks that an operator posts it with their form token (403 otherwise, before
anything is read or changed), then runs the app's public API in a worker thread (it may execute
agents), records the decision and its author in the ledger's decision log, and shows the result.

Bulk and irreversible actions take two steps: the first post shows what would happen (a DLQ
redrive's dry run, the breaker to reset, the live replay's consequences) and a confirmation
form; only the confirmed post acts, and only on what was shown.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from seawall.dashboard import _alerts, _queues
from seawall.dashboard._security import same
from seawall.dashboard._state import audit, render, state, who
from seawall.errors import SeawallError
from seawall.ledger import AlertAck, AlertSilence, HandOffClaim

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.datastructures import FormData
    from starlette.requests import Request

    from seawall import Seawall
    from seawall.dashboard._security import Identity

    Action = Callable[[Request, FormData, Identity], Awaitable[Response]]
    """An action's body: the request, its checked form and the operator posting it."""
    RunningAction = Callable[[Request, FormData, Identity, Seawall], Awaitable[Response]]
    """The body of an action that executes agents: it also gets the user's app."""

PREVIEW: Final = 500
"""Most DLQ entries one confirmed redrive takes (larger sets go in several batches)."""


def refused(request: Request) -> Response:
    """The 403 page of a post without an operator session or with a wrong form token."""
    return render(
        request,
        "error.html",
        status_code=403,
        title="Not allowed",
        message="Actions need an operator's session and the page's form token: log in with "
        "your operator token, then retry from the page.",
    )


def failed(request: Request, error: SeawallError | str, status_code: int = 409) -> Response:
    """The error page of an action that was refused or failed (409 unless told)."""
    message = error if isinstance(error, str) else error.message
    return render(request, "error.html", status_code=status_code, title="Not done", message=message)


def acting(action: Action) -> Callable[[Request], Awaitable[Response]]:
    """Run ``action(request, form, operator)`` only for an operator posting their form token."""

    @functools.wraps(action)
    async def checked(request: Request) -> Response:
        identity = who(request)
        if identity is None or not identity.can_act:
            return refused(request)
        form = await request.form()
        if not same(identity.csrf, form.get("csrf")):
            return refused(request)
        return await action(request, form, identity)

    return checked


def _runner(request: Request) -> Seawall | Response:
    runner = state(request).runner
    if runner is None:
        return failed(
            request,
            "This action runs agents, so it needs your app: restart the dashboard with "
            "`seawall dashboard --app module:attribute`.",
        )
    return runner


def running(action: RunningAction) -> Callable[[Request], Awaitable[Response]]:
    """:func:`acting`, for an action that executes agents: it is given the user's app.

    Without one (the dashboard was started without ``--app``) the page says how to give it.
    """

    @functools.wraps(action)
    async def with_runner(request: Request, form: FormData, identity: Identity) -> Response:
        runner = _runner(request)
        if isinstance(runner, Response):
            return runner
        return await action(request, form, identity, runner)

    return acting(with_runner)


def form_text(form: FormData, name: str) -> str:
    """The field ``name`` of ``form``, stripped (empty when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _back(form: FormData, default: str) -> str:
    """Where to return after an action: a local path the form named, else ``default``."""
    target = form_text(form, "next")
    local = target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target
    return target if local else default


def with_done(path: str, done: str) -> str:
    """``path`` with ``done=KEY`` added: the page then shows that notice."""
    return f"{path}{'&' if '?' in path else '?'}done={done}"


# -- replay ---------------------------------------------------------------------------------


@running
async def replay(
    request: Request, form: FormData, _operator: Identity, runner: Seawall
) -> Response:
    """Replay a run: recorded at once (nothing executes), live after a confirmation."""
    mode = form.get("mode")
    if mode not in ("recorded", "live"):
        return failed(request, "mode must be recorded or live", 400)
    run_id = request.path_params["run_id"]
    if mode == "live" and form.get("confirm") != "1":
        run = await run_in_threadpool(runner.store.get_run, run_id)
        if run is None:
            return failed(request, f"No run {run_id!r} in this ledger.", 404)
        return render(request, "confirm.html", action="replay", run=run)
    try:
        result = await run_in_threadpool(
            lambda: runner.replay(run_id, mode="live" if mode == "live" else "recorded")
        )
    except SeawallError as exc:
        return failed(request, exc)
    await audit(request, "replay", run_id, mode=mode, new_run=result.run.run_id)
    return RedirectResponse(f"/runs/{result.run.run_id}?done=replayed", status_code=303)


# -- redrive --------------------------------------------------------------------------------


def _preview(app: Seawall, form: FormData) -> dict[str, Any]:
    selected = [v for v in form.getlist("entry") if isinstance(v, str) and v]
    agent = form_text(form, "agent") or None
    error_class = form_text(form, "error_class") or None
    would = app.dlq.redrive(
        dry_run=True, entry_ids=selected, agent=agent, error_class=error_class, limit=PREVIEW
    )
    matching = sum(
        q.count
        for q in app.store.backlog()
        if q.queue == "dlq"
        and (agent is None or q.agent == agent)
        and (error_class is None or q.label == error_class)
    )
    return {
        "preview": [o.entry for o in would],
        "matching": len(would) if selected else matching,
        "filters": {"agent": agent, "error_class": error_class},
    }


@acting
async def redrive(  # noqa: PLR0911 - a page per refusal
    request: Request, form: FormData, _operator: Identity
) -> Response:
    """Preview a redrive (a dry run of the selection or of the filters), or do a confirmed one."""
    if form.get("confirm") != "1":
        if not form.getlist("entry") and form.get("all") != "1":
            return failed(request, "Select entries to redrive (or redrive all matching).", 400)
        try:
            data = await run_in_threadpool(_preview, state(request).reader, form)
        except SeawallError as exc:
            return failed(request, exc, 400)
        return render(request, "dlq_preview.html", **data)
    runner = _runner(request)
    if isinstance(runner, Response):
        return runner
    chosen = [v for v in form.getlist("entry") if isinstance(v, str) and v][:PREVIEW]
    if not chosen:
        return failed(request, "Nothing was confirmed: preview the redrive again.", 400)
    try:
        outcomes = await run_in_threadpool(
            lambda: runner.dlq.redrive(entry_ids=chosen, limit=len(chosen))
        )
    except SeawallError as exc:
        return failed(request, exc)
    await audit(
        request,
        "redrive",
        f"{len(chosen)} DLQ entries",
        entry_ids=chosen,
        results={o.entry.entry_id: [o.status, o.run_id] for o in outcomes},
    )
    done = {o.entry.entry_id for o in outcomes}
    return render(
        request,
        "dlq_results.html",
        outcomes=outcomes,
        skipped=[entry_id for entry_id in chosen if entry_id not in done],
    )


# -- breakers -------------------------------------------------------------------------------


@acting
async def reset_breaker(request: Request, form: FormData, _operator: Identity) -> Response:
    """Close a breaker and forget its failures, after a confirmation."""
    name = form_text(form, "name")
    if not name:
        return failed(request, "name the breaker to reset", 400)
    reader = state(request).reader
    if form.get("confirm") != "1":
        known = {b.name: b for b in await run_in_threadpool(reader.breakers.list)}
        if name not in known:
            return failed(request, f"No breaker {name!r} in this ledger.", 404)
        return render(request, "confirm.html", action="reset", breaker=known[name])
    try:
        await run_in_threadpool(reader.breakers.reset, name)
    except SeawallError as exc:
        return failed(request, exc, 400)
    await audit(request, "breaker_reset", name)
    return RedirectResponse("/breakers?done=reset", status_code=303)


# -- hand-offs ------------------------------------------------------------------------------


async def _kept(
    request: Request, handoff_id: str, message: str, status: int, **kept: str
) -> Response:
    """The hand-off again, with what the operator typed and why it was not done."""
    app = state(request).reader
    record = await run_in_threadpool(app.store.get_handoff, handoff_id)
    if record is None:
        return failed(request, f"No hand-off {handoff_id!r} in this ledger.", 404)
    data = await run_in_threadpool(_queues.handoff_data, app, None)
    data["waiting"] = [record]
    data["outputs"] = {
        handoff_id: await run_in_threadpool(
            lambda: (app.store.get_run(record.run_id), app.ledger.output(record.run_id))
        )
    }
    data["claims"] = await run_in_threadpool(app.store.handoff_claims, [handoff_id])
    data["next"], data["paged"] = None, True
    return render(
        request,
        "handoffs.html",
        status_code=status,
        edits={handoff_id: kept},
        failures={handoff_id: message},
        **data,
    )


@running
async def approve(
    request: Request, form: FormData, identity: Identity, runner: Seawall
) -> Response:
    """Approve a hand-off, with the run's output or an edited one (JSON, verified again)."""
    handoff_id = request.path_params["handoff_id"]
    note = form_text(form, "note") or None
    edited = form_text(form, "output")
    editing = bool(edited) and form.get("edit") == "1"
    kept = {"output": edited, "note": note or "", "edit": "1" if editing else ""}
    if form.get("confirm") != "1":
        return await _kept(
            request, handoff_id, "Tick 'I reviewed the output' to approve.", 400, **kept
        )
    kwargs: dict[str, Any] = {"by": identity.name, "note": note}
    if editing:
        try:
            kwargs["output"] = json.loads(edited)
        except json.JSONDecodeError as exc:
            return await _kept(
                request, handoff_id, f"The edited output is not JSON: {exc}", 400, **kept
            )
    try:
        await run_in_threadpool(lambda: runner.handoffs.approve(handoff_id, **kwargs))
    except SeawallError as exc:
        return await _kept(request, handoff_id, exc.message, 409, **kept)
    await audit(request, "handoff_approve", handoff_id, edited=editing, note=note)
    return RedirectResponse("/handoffs?done=approved", status_code=303)


@running
async def reject(request: Request, form: FormData, identity: Identity, runner: Seawall) -> Response:
    """Reject a hand-off with a reason: the run fails ``silent_drift``."""
    handoff_id = request.path_params["handoff_id"]
    reason = form_text(form, "reason")
    if not reason:
        return await _kept(request, handoff_id, "Give a reason for the rejection.", 400)
    try:
        await run_in_threadpool(
            lambda: runner.handoffs.reject(handoff_id, reason=reason, by=identity.name)
        )
    except SeawallError as exc:
        return await _kept(request, handoff_id, exc.message, 409, reason=reason)
    await audit(request, "handoff_reject", handoff_id, reason=reason)
    return RedirectResponse("/handoffs?done=rejected", status_code=303)


@acting
async def claim(request: Request, form: FormData, identity: Identity) -> Response:
    """Claim a hand-off (others see who is on it), take it over, or release one's claim."""
    handoff_id = request.path_params["handoff_id"]
    store = state(request).reader.store
    what = form_text(form, "what") or "claim"
    if what == "release":
        released = await run_in_threadpool(
            lambda: store.release_handoff(handoff_id, by=identity.name)
        )
        if not released:
            return failed(request, "You do not hold a claim on this hand-off.")
        await audit(request, "handoff_release", handoff_id)
        return RedirectResponse(with_done(_back(form, "/handoffs"), "released"), status_code=303)
    mine = HandOffClaim(handoff_id, identity.name, time.time())
    held = await run_in_threadpool(lambda: store.claim_handoff(mine, take_over=what == "take_over"))
    if held is None:
        return failed(request, "This hand-off is not waiting any more (decided or unknown).")
    if held.by != identity.name:
        return failed(request, f"{held.by} claimed this hand-off first; take it over if needed.")
    await audit(request, "handoff_claim", handoff_id, take_over=what == "take_over")
    return RedirectResponse(with_done(_back(form, "/handoffs"), "claimed"), status_code=303)


# -- alerts ---------------------------------------------------------------------------------


@acting
async def acknowledge(request: Request, form: FormData, identity: Identity) -> Response:
    """Acknowledge an alert ("seen, on it"), with an optional note."""
    alert_id = request.path_params["alert_id"]
    store = state(request).reader.store
    ack = AlertAck(alert_id, identity.name, time.time(), form_text(form, "note") or None)
    stands = await run_in_threadpool(store.acknowledge_alert, ack)
    if stands is None:
        return failed(request, f"No alert {alert_id!r} in this ledger.", 404)
    if stands.by != identity.name or stands.at != ack.at:
        return failed(request, f"{stands.by} acknowledged this alert already.")
    await audit(request, "alert_ack", alert_id, note=ack.note)
    return RedirectResponse(with_done(_back(form, "/drift"), "acked"), status_code=303)


@acting
async def silence(request: Request, form: FormData, identity: Identity) -> Response:
    """Mute one kind of alert (of an agent and feature, or any) for a while."""
    from seawall.observe.alerts import KINDS  # noqa: PLC0415 - the list may grow

    kind = form_text(form, "kind")
    period = _alerts.SILENCE_FOR.get(form_text(form, "for"))
    if kind not in KINDS or period is None:
        return failed(
            request,
            f"silence needs a kind among {', '.join(KINDS)} and a duration among "
            f"{', '.join(_alerts.SILENCE_FOR)}",
            400,
        )
    now = time.time()
    muted = AlertSilence(
        silence_id=uuid.uuid4().hex,
        kind=kind,
        agent=form_text(form, "agent") or None,
        feature=form_text(form, "feature") or None,
        starts_at=now,
        ends_at=now + period,
        created_by=identity.name,
        note=form_text(form, "note") or None,
    )
    await run_in_threadpool(state(request).reader.store.add_silence, muted)
    await audit(
        request,
        "alert_silence",
        muted.silence_id,
        kind=kind,
        agent=muted.agent,
        feature=muted.feature,
        until=muted.ends_at,
    )
    return RedirectResponse(with_done(_back(form, "/drift"), "silenced"), status_code=303)


@acting
async def lift(request: Request, form: FormData, identity: Identity) -> Response:
    """End a silence early."""
    silence_id = request.path_params["silence_id"]
    store = state(request).reader.store
    lifted = await run_in_threadpool(
        lambda: store.lift_silence(silence_id, by=identity.name, at=time.time())
    )
    if not lifted:
        return failed(request, "That silence is unknown, lifted already, or over.")
    await audit(request, "alert_unsilence", silence_id)
    return RedirectResponse(with_done(_back(form, "/drift"), "lifted"), status_code=303)
