"""What every request of the dashboard shares: the app it reads through, access rules, templates."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates

from seawall.dashboard import _charts, _views
from seawall.ledger import OperatorAction

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from seawall import Seawall
    from seawall.dashboard._security import Access, Identity, LoginLimiter, Sessions

HERE: Final = Path(__file__).parent
IDENTITY: Final = "seawall.identity"
"""The request scope key where the gate puts the request's identity (``None``: not identified)."""
NOTICES: Final = {
    "reset": "Breaker reset: it is closed and its failures are forgotten.",
    "approved": "Hand-off approved; the run was resumed.",
    "rejected": "Hand-off rejected; the run failed with your reason.",
    "claimed": "You claimed the hand-off: others see that you are on it.",
    "released": "Your claim on the hand-off is released.",
    "replayed": "Replay finished: this is the new run.",
    "resolved": "Recorded: a redrive now serves the step (it happened) or re-issues it "
    "with its original key (it did not).",
    "acked": "Alert acknowledged.",
    "silenced": "Silenced: matching alerts are muted until the silence ends.",
    "lifted": "Silence lifted: matching alerts show again.",
    "login": "Logged in.",
    "logout": "Logged out: the session is closed on the server too.",
}
"""Fixed messages shown after an action redirects (``?done=KEY``): never text from the URL."""

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    duration=_charts.duration_text,
    number=_charts.number,
    payload=_views.payload,
    fields=_views.fields,
    query=_views.query_string,
    link=_views.link,
    age=_views.age,
    refresh_choices=_views.REFRESH,
)
templates.env.filters["visible"] = _views.visible_controls


@dataclass(frozen=True, slots=True)
class State:
    """The dashboard's shared state.

    Attributes:
        reader: The app whose ledger is shown (the user's app when one was given).
        runner: The user's app, which can execute agents (``None``: replays, redrives and
            hand-off decisions are unavailable).
        access: Who may read and act.
        sessions: The open sessions.
        limiter: Failed-login rate limits.
        secret: This dashboard's random key (CSRF tokens of proxy-authenticated operators).
        clock: Formats times in the dashboard's time zone.
        trace_url: The trace URL template (``None``: trace ids are shown without a link).
        owns_reader: Whether the dashboard opened ``reader`` (and closes it).
    """

    reader: Seawall
    runner: Seawall | None
    access: Access
    sessions: Sessions
    limiter: LoginLimiter
    secret: bytes
    clock: _views.Clock
    trace_url: str | None
    owns_reader: bool


def state(request: Request) -> State:
    """The dashboard state of the app serving ``request``."""
    found: State = request.app.state.dashboard
    return found


def who(request: Request) -> Identity | None:
    """The identity the gate found for ``request`` (``None``: not identified)."""
    found: Identity | None = request.scope.get(IDENTITY)
    return found


def refresh_of(request: Request) -> int | None:
    """The auto-refresh period the page asked for (``?refresh=30``), if one of the offered."""
    value = request.query_params.get("refresh", "")
    return int(value) if value.isdigit() and int(value) in _views.REFRESH else None


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a template with what every page needs (identity, CSRF token, notices, zone)."""
    shared = state(request)
    identity = who(request)
    done = request.query_params.get("done")
    params = {
        key: request.query_params.getlist(key)
        for key in request.query_params
        if key not in ("done", "refresh")
    }
    page: Response = templates.TemplateResponse(
        request,
        name,
        {
            "who": identity,
            "csrf": identity.csrf if identity is not None else None,
            "operator": identity is not None and identity.can_act,
            "can_run": shared.runner is not None,
            "notice": NOTICES.get(done or ""),
            "ledger": _views.redacted(shared.reader.store.url),
            "when": shared.clock.html,
            "zone": shared.clock.zone,
            "refresh": refresh_of(request),
            "here": request.url.path,
            "here_params": params,
            **context,
        },
        status_code=status_code,
    )
    return page


async def audit(request: Request, action: str, target: str, **details: Any) -> None:
    """Record a decision of the request's operator in the ledger's decision log."""
    identity = who(request)
    entry = OperatorAction(
        action_id=uuid.uuid4().hex,
        at=time.time(),
        operator=identity.name if identity is not None else "anonymous",
        action=action,
        target=target,
        details={"via": identity.via if identity is not None else "", **details},
    )
    await run_in_threadpool(state(request).reader.store.record_operator_action, entry)
