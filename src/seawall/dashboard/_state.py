"""What every request of the dashboard shares: the app it reads through, the guard, templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.templating import Jinja2Templates

from seawall.dashboard import _charts, _views

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from seawall import Seawall
    from seawall.dashboard._security import Guard

HERE: Final = Path(__file__).parent
NOTICES: Final = {
    "reset": "Breaker reset: it is closed and its failures are forgotten.",
    "approved": "Hand-off approved; the run was resumed.",
    "rejected": "Hand-off rejected; the run failed with your reason.",
    "replayed": "Replay finished: this is the new run.",
    "login": "Logged in: actions are enabled for this browser session.",
    "logout": "Logged out: the dashboard is read-only.",
}
"""Fixed messages shown after an action redirects (``?done=KEY``): never text from the URL."""

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    local=_views.local,
    duration=_charts.duration_text,
    number=_charts.number,
    payload=_views.payload,
    fields=_views.fields,
    query=_views.query_string,
)


@dataclass(frozen=True, slots=True)
class State:
    """The dashboard's shared state.

    Attributes:
        reader: The app whose ledger is shown (the user's app when one was given).
        runner: The user's app, which can execute agents (``None``: replays, redrives and
            hand-off decisions are unavailable).
        guard: Checks the operator token, sessions and CSRF tokens.
        owns_reader: Whether the dashboard opened ``reader`` (and closes it).
    """

    reader: Seawall
    runner: Seawall | None
    guard: Guard
    owns_reader: bool


def state(request: Request) -> State:
    """The dashboard state of the app serving ``request``."""
    found: State = request.app.state.dashboard
    return found


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a template with what every page needs (session, CSRF token, notices, nav)."""
    shared = state(request)
    csrf = shared.guard.csrf(request)
    done = request.query_params.get("done")
    page: Response = templates.TemplateResponse(
        request,
        name,
        {
            "csrf": csrf,
            "operator": csrf is not None,
            "can_run": shared.runner is not None,
            "notice": NOTICES.get(done or ""),
            "ledger": _views.redacted(shared.reader.store.url),
            **context,
        },
        status_code=status_code,
    )
    return page
