"""The dashboard's gate: every request passes it before any page or action runs.

In order, before a byte of the body is read:

1. the ``Host`` must be one the dashboard serves (a DNS-rebinding page gets a 400);
2. the client is identified (session, bearer token, trusted proxy header, or public reading);
   without an identity a page redirects to the login form, ``/metrics`` answers 401 and a post
   is refused (403);
3. a post must come from this site: its ``Origin`` (else its ``Referer``) must name the host it
   was sent to (a cross-origin post is refused with 403, whatever cookie it carries);
4. a body larger than the limit is refused (413): a small one for the login form, ``max_body``
   for an identified client.

Every response then gets the security headers: a Content-Security-Policy that allows no script,
no framing, no sniffing, a same-origin referrer, and ``Cache-Control: no-store`` on everything but
the stylesheet, so no ledger data stays in a browser's or proxy's cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from seawall.dashboard._security import ANONYMOUS, SESSION_COOKIE, Identity, host_name, proxy_csrf
from seawall.dashboard._state import IDENTITY, State, render

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
LOGIN_BODY: Final = 16 * 1024
"""Largest body accepted before the client is identified (the login form)."""
OPEN_PATHS: Final = ("/login", "/static/")
CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: Final = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # The browser sends Origin on a same-origin post (which the gate checks) and no Referer to
    # other sites; "no-referrer" would turn that Origin into "null".
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)
SAFE_METHODS: Final = ("GET", "HEAD")


class BodyTooLargeError(Exception):
    """A request body went past its limit while it was read."""


@dataclass
class Gate:
    """ASGI middleware applying the checks above (see the module docstring).

    Attributes:
        app: The wrapped app.
    """

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        shared: State = scope["app"].state.dashboard
        access = shared.access
        static = request.url.path.startswith("/static/")
        send = _with_headers(send, static=static)
        host = request.headers.get("host", "")
        if not access.host_allowed(host):
            refused = PlainTextResponse(
                f"This dashboard does not serve the host {host_name(host)!r}. If that is its "
                "address, allow it: create_app(allowed_hosts=[...]).",
                status_code=400,
            )
            await refused(scope, receive, send)
            return
        identity = _identify(request, shared)
        scope[IDENTITY] = identity
        method = request.method
        if identity is None and not request.url.path.startswith(OPEN_PATHS):
            await _unidentified(request, method)(scope, receive, send)
            return
        if method not in SAFE_METHODS and not _same_origin(request, host):
            await _page(request, 403, "Cross-site post refused", _CROSS_SITE)(scope, receive, send)
            return
        limit = LOGIN_BODY if identity is None else access.max_body
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _too_large(request, limit)(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, _limited(receive, limit), tracked_send)
        except BodyTooLargeError:
            if started:
                raise
            await _too_large(request, limit)(scope, receive, send)


_CROSS_SITE: Final = (
    "This form was posted from another site (its Origin or Referer does not name this "
    "dashboard), so nothing was done. Act from the dashboard's own pages."
)


def _identify(request: Request, shared: State) -> Identity | None:
    access = shared.access
    cookie = request.cookies.get(SESSION_COOKIE, "")
    found = shared.sessions.get(cookie) if cookie else None
    if found is not None:
        return found
    authorization = request.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if request.method in SAFE_METHODS and scheme.lower() == "bearer" and credential.strip():
        holder = access.holder(credential.strip())
        if holder is not None:
            return Identity(holder[0], holder[1], "bearer")
    if access.operator_header is not None:
        client = request.client.host if request.client is not None else ""
        name = request.headers.get(access.operator_header, "").strip()
        if name and name.isprintable() and client in access.trusted_proxies:
            return Identity(name, "operator", "proxy", proxy_csrf(shared.secret, name))
    if access.public_read and request.method in SAFE_METHODS:
        return ANONYMOUS
    return None


def _unidentified(request: Request, method: str) -> Response:
    if method not in SAFE_METHODS:
        return _page(
            request,
            403,
            "Not allowed",
            "Actions need an operator session: log in with your dashboard token, then retry "
            "from the page.",
        )
    if request.url.path == "/metrics":
        return PlainTextResponse(
            "/metrics needs a dashboard token: send it as 'Authorization: Bearer TOKEN' "
            "(Prometheus: authorization: {credentials: TOKEN} in the scrape config).",
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="seawall"'},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _same_origin(request: Request, host: str) -> bool:
    """Whether a post names this dashboard as its origin (Origin, else Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = {"http": "80", "https": "443"}[parts.scheme]
    return _netloc(parts.netloc, default) == _netloc(host, default)


def _netloc(value: str, default_port: str) -> str:
    value = value.strip().lower()
    name = host_name(value)
    port = value.rpartition("]")[2] if value.startswith("[") else value
    port = port.rpartition(":")[2] if ":" in port else default_port
    return f"{name}:{port or default_port}"


def _page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", status_code=status, title=title, message=message)


def _too_large(request: Request, limit: int) -> Response:
    return _page(
        request,
        413,
        "Too large",
        f"The request body is larger than this dashboard accepts ({limit:,} bytes)."
        + ("" if limit > LOGIN_BODY else " Log in first."),
    )


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive``, raising :class:`BodyTooLargeError` once the body passes ``limit`` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLargeError
        return message

    return counted


def _with_headers(send: Send, *, static: bool) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            for name, value in HEADERS:
                if name.encode() not in names:
                    headers.append((name.encode(), value.encode()))
            if not static:
                headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return sending
