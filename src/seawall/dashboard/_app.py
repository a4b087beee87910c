"""The dashboard's ASGI app: routes, security headers, login and error pages."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from seawall.errors import ConfigurationError

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigurationError(
        "the dashboard needs its extra: pip install 'seawall[dashboard]'"
    ) from exc

from seawall import Seawall
from seawall.dashboard import _actions, _pages
from seawall.dashboard._security import SESSION_COOKIE, Guard
from seawall.dashboard._state import HERE, State, render, state

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request

    from seawall.ledger import Store

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class _Headers(BaseHTTPMiddleware):
    """Security headers on every response: no scripts at all, no framing, no sniffing."""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def create_app(
    ledger: str | Store | None = None,
    *,
    app: Seawall | None = None,
    token: str,
) -> Starlette:
    """Build the dashboard's ASGI app.

    Args:
        ledger: The ledger to show (a URL or an open store); ignored when ``app`` is given.
        app: Your Seawall app: the dashboard reads its ledger and uses it to replay runs,
            redrive DLQ entries and decide hand-offs. Without it those actions are unavailable
            (breakers can still be reset).
        token: The operator token: whoever logs in with it may act; everyone else reads.

    Returns:
        A Starlette app (serve it with uvicorn, or test it with Starlette's ``TestClient``).

    Raises:
        ConfigurationError: The token is empty.
        LedgerError: The ledger cannot be opened.
    """
    if not token:
        raise ConfigurationError("the dashboard token must be a non-empty string")
    reader = app if app is not None else Seawall(ledger)
    shared = State(reader=reader, runner=app, guard=Guard(token), owns_reader=app is None)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if shared.owns_reader:
                reader.close()

    routes = [
        Route("/", _pages.overview),
        Route("/runs", _pages.runs),
        Route("/runs/{run_id}", _pages.run_detail),
        Route("/runs/{run_id}/replay", _actions.replay, methods=["POST"]),
        Route("/dlq", _pages.dlq),
        Route("/dlq/redrive", _actions.redrive, methods=["POST"]),
        Route("/breakers", _pages.breakers),
        Route("/breakers/reset", _actions.reset_breaker, methods=["POST"]),
        Route("/handoffs", _pages.handoffs),
        Route("/handoffs/{handoff_id}/approve", _actions.approve, methods=["POST"]),
        Route("/handoffs/{handoff_id}/reject", _actions.reject, methods=["POST"]),
        Route("/drift", _pages.drift),
        Route("/metrics", _pages.metrics),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    dashboard = Starlette(
        routes=routes,
        middleware=[Middleware(_Headers)],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    dashboard.state.dashboard = shared
    return dashboard


async def login(request: Request) -> Response:
    """Show the login form, or check the posted token and open a session."""
    error = None
    if request.method == "POST":
        form = await request.form()
        candidate = form.get("token")
        if isinstance(candidate, str) and state(request).guard.accepts(candidate):
            response = RedirectResponse(_after_login(form.get("next")), status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                state(request).guard.open_session(),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response
        error = "That is not the dashboard's token (printed when `seawall dashboard` started)."
    return render(
        request,
        "login.html",
        status_code=403 if error else 200,
        error=error,
        next=request.query_params.get("next", "/"),
    )


def _after_login(target: object) -> str:
    """Where to go after logging in: a path of this site only, never another host."""
    local = (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
    )
    path = target if local and isinstance(target, str) else "/"
    return f"{path}{'&' if '?' in path else '?'}done=login"


async def logout(request: Request) -> Response:
    """Close the session (needs its CSRF token, like every action)."""
    form = await request.form()
    submitted = form.get("csrf")
    if not state(request).guard.allows(request, submitted if isinstance(submitted, str) else None):
        return _actions.refused(request)
    response = RedirectResponse("/?done=logout", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def _not_found(request: Request, exc: Any) -> Response:
    detail = getattr(exc, "detail", None) or "Nothing here."
    return render(request, "error.html", status_code=404, title="Not found", message=detail)


async def _not_allowed(request: Request, exc: Any) -> Response:  # noqa: ARG001 - handler signature
    return render(
        request,
        "error.html",
        status_code=405,
        title="Method not allowed",
        message=f"{request.method} is not accepted here.",
    )
