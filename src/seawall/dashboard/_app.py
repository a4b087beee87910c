"""The dashboard's ASGI app: routes, the gate, login, logout and error pages."""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from seawall.errors import ConfigurationError

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigurationError(
        "the dashboard needs its extra: pip install 'seawall[dashboard]'"
    ) from exc

from seawall import Seawall
from seawall.dashboard import _actions, _alerts, _pages, _queues, _resolve
from seawall.dashboard._gate import Gate
from seawall.dashboard._security import (
    LOOPBACK,
    SESSION_COOKIE,
    Access,
    LoginLimiter,
    Sessions,
    same,
)
from seawall.dashboard._state import HERE, State, render, state, who
from seawall.dashboard._views import Clock, check_trace_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from starlette.requests import Request

    from seawall.ledger import Store


def create_app(
    ledger: str | Store | None = None,
    *,
    app: Seawall | None = None,
    token: str | None = None,
    operators: Mapping[str, str] | None = None,
    viewers: Mapping[str, str] | None = None,
    public_read: bool = False,
    allowed_hosts: Sequence[str] = LOOPBACK,
    operator_header: str | None = None,
    trusted_proxies: Sequence[str] = ("127.0.0.1", "::1"),
    trace_url: str | None = None,
    timezone: str | None = None,
    session_ttl: float = 12 * 3600.0,
    idle_timeout: float = 2 * 3600.0,
    max_body: int = 4 * 1024 * 1024,
) -> Starlette:
    """Build the dashboard's ASGI app.

    Every page and ``/metrics`` needs an identity (see ``docs/dashboard.md``): a session opened
    with a token at ``/login``, a bearer token, or a trusted proxy's header.

    Args:
        ledger: The ledger to show (a URL or an open store); ignored when ``app`` is given.
        app: Your Seawall app: the dashboard reads its ledger and uses it to replay runs,
            redrive DLQ entries and decide hand-offs. Without it those actions are unavailable
            (breakers can still be reset, alerts acknowledged).
        token: One operator token, for a dashboard with a single operator (decisions are
            recorded as by ``operator``).
        operators: Named operators, ``{name: token}``: each may act, and every decision
            records their name.
        viewers: Named readers, ``{name: token}``: they read every page (a token for a
            Prometheus scraper of ``/metrics`` belongs here), never act.
        public_read: Let anyone who reaches the dashboard read it without logging in (acting
            still needs an operator). Off by default: the ledger holds every input and output.
        allowed_hosts: Host names the dashboard answers to (``*.example.com`` for subdomains,
            ``*`` for any). The default, the loopback names, defeats DNS rebinding.
        operator_header: A request header (``X-Forwarded-User``) holding the name of the
            operator an authenticating reverse proxy let through; trusted only from
            ``trusted_proxies``.
        trusted_proxies: Client addresses whose ``operator_header`` is believed.
        trace_url: A URL template of your trace viewer with ``{trace_id}`` (and optionally
            ``{span_id}``, ``{run_id}``): Jaeger ``http://jaeger:16686/trace/{trace_id}``,
            Tempo, Langfuse, Phoenix...
        timezone: The zone times are shown in (``UTC``, ``Europe/Paris``; default: the
            server's). Every time shown names its zone.
        session_ttl: Seconds a login lasts at most.
        idle_timeout: Seconds a login lasts without a request.
        max_body: Largest request body accepted from a logged-in client, in bytes.

    Returns:
        A Starlette app (serve it with uvicorn, or test it with Starlette's ``TestClient``).

    Raises:
        ConfigurationError: An option is invalid (a token shorter than 16 characters, two
            people with one token, no way in at all, an unknown time zone...).
        LedgerError: The ledger cannot be opened.
    """
    access = Access.build(
        token=token,
        operators=operators,
        viewers=viewers,
        public_read=public_read,
        allowed_hosts=tuple(allowed_hosts),
        operator_header=operator_header,
        trusted_proxies=tuple(trusted_proxies),
        session_ttl=session_ttl,
        idle_timeout=idle_timeout,
        max_body=max_body,
    )
    clock = Clock(timezone)
    checked_trace_url = check_trace_url(trace_url)
    limiter = LoginLimiter(access.login_limit, access.global_login_limit)
    reader = app if app is not None else Seawall(ledger)
    shared = State(
        reader=reader,
        runner=app,
        access=access,
        sessions=Sessions(access.session_ttl, access.idle_timeout),
        limiter=limiter,
        secret=secrets.token_bytes(32),
        clock=clock,
        trace_url=checked_trace_url,
        owns_reader=app is None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if shared.owns_reader:
                # Off the event loop: closing the app stops its own loop thread.
                await run_in_threadpool(reader.close)

    routes = [
        Route("/", _pages.overview),
        Route("/runs", _pages.runs),
        Route("/runs/{run_id}", _pages.run_detail),
        Route("/runs/{run_id}/replay", _actions.replay, methods=["POST"]),
        Route("/runs/{run_id}/resolve", _resolve.resolve, methods=["POST"]),
        Route("/errors", _pages.errors),
        Route("/cost", _pages.cost),
        Route("/dlq", _queues.dlq),
        Route("/dlq/redrive", _actions.redrive, methods=["POST"]),
        Route("/breakers", _queues.breakers),
        Route("/breakers/reset", _actions.reset_breaker, methods=["POST"]),
        Route("/handoffs", _queues.handoffs),
        Route("/handoffs/{handoff_id}/approve", _actions.approve, methods=["POST"]),
        Route("/handoffs/{handoff_id}/reject", _actions.reject, methods=["POST"]),
        Route("/handoffs/{handoff_id}/claim", _actions.claim, methods=["POST"]),
        Route("/drift", _alerts.drift),
        Route("/alerts", _alerts.operational),
        Route("/alerts/{alert_id}/ack", _actions.acknowledge, methods=["POST"]),
        Route("/alerts/silence", _actions.silence, methods=["POST"]),
        Route("/alerts/silences/{silence_id}/lift", _actions.lift, methods=["POST"]),
        Route("/activity", _queues.activity),
        Route("/metrics", _pages.metrics),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    dashboard = Starlette(
        routes=routes,
        middleware=[Middleware(Gate)],
        lifespan=lifespan,
        exception_handlers={400: _bad_request, 404: _not_found, 405: _not_allowed},
    )
    dashboard.state.dashboard = shared
    return dashboard


async def login(request: Request) -> Response:
    """Show the login form, or check the posted token and open a session."""
    shared = state(request)
    error = None
    status = 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        client = request.client.host if request.client is not None else "?"
        wait = shared.limiter.wait(client)
        form = await request.form()
        candidate = form.get("token")
        holder = None
        if wait > 0:
            error = f"Too many failed logins: wait {wait:.0f} s before trying again."
            status, headers = 429, {"retry-after": str(round(wait))}
        elif isinstance(candidate, str) and (holder := shared.access.holder(candidate)):
            name, role = holder
            previous = request.cookies.get(SESSION_COOKIE)
            if previous:
                shared.sessions.close(previous)
            response = RedirectResponse(_after_login(form.get("next")), status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                shared.sessions.open(name, role),
                max_age=round(shared.access.session_ttl),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response
        else:
            shared.limiter.failed(client)
            error = "That is not a dashboard token (ask whoever runs the dashboard for yours)."
            status = 403
    target = request.query_params.get("next", "/")
    if request.method == "POST":
        posted = (await request.form()).get("next")
        target = posted if isinstance(posted, str) else "/"
    page = render(request, "login.html", status_code=status, error=error, next=target)
    page.headers.update(headers)
    return page


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
    """Close the session on the server (needs its CSRF token, like every post)."""
    identity = who(request)
    form = await request.form()
    if identity is None or identity.session is None or not same(identity.csrf, form.get("csrf")):
        return _actions.refused(request)
    state(request).sessions.close(identity.session)
    response = RedirectResponse("/login?done=logout", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


async def _bad_request(request: Request, exc: Any) -> Response:
    detail = getattr(exc, "detail", None) or "Bad request."
    return render(request, "error.html", status_code=400, title="Bad request", message=detail)


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
