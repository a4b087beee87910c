"""The operator queues (GET): DLQ, breakers, hand-offs (oldest first), and the decision log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from seawall import ErrorClass
from seawall.dashboard import _views
from seawall.dashboard._state import render, state
from seawall.ledger import DeadLetterQuery

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from seawall import Seawall

DLQ_PAGE: Final = 500
HANDOFF_PAGE: Final = 20
ACTIVITY_PAGE: Final = 100
DLQ_STATUSES: Final = ("pending", "redriving", "redriven", "purged", "any")


def _cursor(request: Request) -> tuple[float, str] | None:
    """A ``time:id`` paging cursor from the query string (400 when it does not parse)."""
    raw = request.query_params.get("after") or request.query_params.get("before")
    if not raw:
        return None
    stamp, _, key = raw.partition(":")
    try:
        return float(stamp), key
    except ValueError as exc:
        raise HTTPException(400, f"bad cursor: {exc}") from exc


# -- DLQ ------------------------------------------------------------------------------------


def _dlq_data(app: Seawall, query: DeadLetterQuery) -> dict[str, Any]:
    return {
        "entries": app.store.list_dead_letters(query),
        "agents": app.store.agent_names(),
    }


async def dlq(request: Request) -> Response:
    """The dead-letter queue, filtered; operators select entries, preview, then redrive."""
    params = {
        name: value
        for name in ("agent", "error_class", "status")
        if (value := request.query_params.get(name, "").strip())
    }
    status = params.get("status", "pending")
    if status not in DLQ_STATUSES:
        raise HTTPException(400, f"bad filter: status must be one of {', '.join(DLQ_STATUSES)}")
    try:
        query = DeadLetterQuery(
            agent=params.get("agent"),
            error_class=ErrorClass(params["error_class"]) if "error_class" in params else None,
            status=None if status == "any" else status,
            limit=DLQ_PAGE,
        )
    except ValueError as exc:
        raise HTTPException(400, f"bad filter: {exc}") from exc
    data = await run_in_threadpool(_dlq_data, state(request).reader, query)
    return render(
        request,
        "dlq.html",
        params=params,
        status=status,
        statuses=DLQ_STATUSES,
        classes=_views.ERROR_CLASSES,
        page_size=DLQ_PAGE,
        **data,
    )


# -- breakers -------------------------------------------------------------------------------


def _breaker_data(app: Seawall) -> list[tuple[Any, list[Any]]]:
    return [(b, app.store.breaker_events(b.name, 10)) for b in app.store.list_breakers()]


async def breakers(request: Request) -> Response:
    """Every breaker's state and recent transitions; operators reset them (after confirming)."""
    found = await run_in_threadpool(_breaker_data, state(request).reader)
    return render(request, "breakers.html", breakers=found)


# -- hand-offs ------------------------------------------------------------------------------


def handoff_data(app: Seawall, after: tuple[float, str] | None) -> dict[str, Any]:
    """A page of the hand-offs waiting (oldest first), their runs, outputs and claims."""
    store = app.store
    found = store.list_handoffs(
        status="open", oldest_first=True, after=after, limit=HANDOFF_PAGE + 1
    )
    waiting = found[:HANDOFF_PAGE]
    outputs = {
        h.handoff_id: (store.get_run(h.run_id), app.ledger.output(h.run_id)) for h in waiting
    }
    decided = [h for h in store.list_handoffs(limit=50) if h.status != "open"][:20]
    last = waiting[-1] if len(found) > HANDOFF_PAGE else None
    return {
        "waiting": waiting,
        "total": sum(q.count for q in store.backlog() if q.queue == "handoff"),
        "outputs": outputs,
        "claims": store.handoff_claims([h.handoff_id for h in waiting]),
        "decided": decided,
        "next": None if last is None else f"{last.created_at!r}:{last.handoff_id}",
        "paged": after is not None,
        "now": time.time(),
    }


async def handoffs(request: Request) -> Response:
    """Hand-offs waiting for a person, oldest first with their age; recent decisions."""
    data = await run_in_threadpool(handoff_data, state(request).reader, _cursor(request))
    return render(request, "handoffs.html", edits={}, failures={}, **data)


# -- the decision log -------------------------------------------------------------------------


async def activity(request: Request) -> Response:
    """Every decision operators made (who, what, on what, when), newest first."""
    operator = request.query_params.get("operator") or None
    before = _cursor(request)
    store = state(request).reader.store
    found = await run_in_threadpool(
        lambda: store.list_operator_actions(
            operator=operator, before=before, limit=ACTIVITY_PAGE + 1
        )
    )
    page = found[:ACTIVITY_PAGE]
    older = None
    if len(found) > ACTIVITY_PAGE:
        older = _views.link(
            "/activity", operator=operator, before=f"{page[-1].at!r}:{page[-1].action_id}"
        )
    return render(
        request,
        "activity.html",
        actions=page,
        operator=operator or "",
        older=older,
        paged=before is not None,
    )
