"""Who may use the dashboard: named tokens, server-side sessions, login rate limits.

Nothing is readable without an identity unless the dashboard was opened with
``public_read=True``. An identity comes from one of:

- a **session**, opened by posting a token to ``/login``: the token names its holder (an
  operator, who may act, or a viewer, who may only read). The session lives in the dashboard's
  memory under a random id (the ``HttpOnly``, ``SameSite=Strict`` cookie); it expires after
  ``session_ttl`` seconds, or ``idle_timeout`` seconds without a request, and logging out
  deletes it, so a copied cookie stops working at once. Each session has its own CSRF token.
- a **bearer token** (``Authorization: Bearer ...``) on a GET: for scrapers of ``/metrics``
  and scripts; it reads, it never acts.
- a **trusted proxy header** (opt-in): the name a reverse proxy that authenticated the person
  put in ``operator_header``, honoured only from ``trusted_proxies``.

Failed logins are rate-limited per client and overall (``limits``' moving windows).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from seawall._extras import optional_module
from seawall.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

SESSION_COOKIE: Final = "seawall_session"
TOKEN_ENV: Final = "SEAWALL_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a secret
MIN_TOKEN: Final = 16
"""Shortest token accepted: a guessable token would make the login rate limit the only guard."""
LOOPBACK: Final = ("localhost", "127.0.0.1", "::1")
"""Host names served by default: a DNS-rebinding page under any other name gets a 400."""
MAX_SESSIONS: Final = 10_000
SINGLE_OPERATOR: Final = "operator"
"""The name decisions are recorded under when the dashboard has one anonymous ``token``."""

Role = Literal["operator", "viewer"]


def new_token() -> str:
    """Return a fresh operator token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who makes a request.

    Attributes:
        name: The operator's or viewer's name (``anonymous`` for public reading).
        role: ``operator`` (may act) or ``viewer`` (reads only).
        via: How they were recognised: ``session``, ``bearer``, ``proxy`` or ``public``.
        csrf: The token their action forms carry (``None``: they cannot post actions).
        session: Their session cookie, when they have one.
    """

    name: str
    role: Role
    via: str
    csrf: str | None = None
    session: str | None = None

    @property
    def can_act(self) -> bool:
        """Whether this identity may replay, redrive, reset and decide."""
        return self.role == "operator" and self.csrf is not None


ANONYMOUS: Final = Identity("anonymous", "viewer", "public")


@dataclass(frozen=True, slots=True)
class Access:
    """The dashboard's access rules (built by ``create_app`` from its keyword arguments).

    Attributes:
        tokens: Each accepted token, with the name and role it stands for.
        public_read: Whether pages are readable without an identity.
        allowed_hosts: Host names served (``*.example.com`` matches subdomains; ``*`` any).
        operator_header: Request header naming the operator a trusted proxy authenticated.
        trusted_proxies: Client addresses whose ``operator_header`` is believed.
        session_ttl: Seconds a session lasts at most.
        idle_timeout: Seconds a session lasts without a request.
        max_body: Largest request body accepted from an identified client, in bytes.
        login_limit: Failed logins allowed per client (a ``limits`` rate, ``5/minute``).
        global_login_limit: Failed logins allowed from every client together.
    """

    tokens: Mapping[str, tuple[str, Role]]
    public_read: bool = False
    allowed_hosts: tuple[str, ...] = LOOPBACK
    operator_header: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    session_ttl: float = 12 * 3600.0
    idle_timeout: float = 2 * 3600.0
    max_body: int = 4 * 1024 * 1024
    login_limit: str = "5/minute"
    global_login_limit: str = "60/minute"

    @classmethod
    def build(  # noqa: C901 - one check per documented argument, read top-down
        cls,
        *,
        token: str | None = None,
        operators: Mapping[str, str] | None = None,
        viewers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Access:
        """Validate the arguments of ``create_app`` into access rules.

        Raises:
            ConfigurationError: A token is short, reused or missing, a name or host is empty,
                or a duration is not positive.
        """
        tokens: dict[str, tuple[str, Role]] = {}
        named: list[tuple[str, str, Role]] = []
        if token is not None:
            named.append((SINGLE_OPERATOR, token, "operator"))
        named += [(name, secret, "operator") for name, secret in (operators or {}).items()]
        named += [(name, secret, "viewer") for name, secret in (viewers or {}).items()]
        seen: set[str] = set()
        for name, secret, role in named:
            _check_name(name)
            if not isinstance(secret, str) or len(secret) < MIN_TOKEN:
                raise ConfigurationError(
                    f"the dashboard token of {name!r} must be a string of at least {MIN_TOKEN} "
                    "characters (seawall.dashboard.new_token() makes a random one)"
                )
            if secret in tokens:
                raise ConfigurationError(
                    f"{name!r} and {tokens[secret][0]!r} have the same dashboard token; give each "
                    "person their own, so every decision names who made it"
                )
            if name in seen:
                raise ConfigurationError(f"the dashboard name {name!r} is given twice")
            seen.add(name)
            tokens[secret] = (name, role)
        access = cls(tokens=tokens, **options)
        if not tokens and access.operator_header is None and not access.public_read:
            raise ConfigurationError(
                "the dashboard needs a way in: token=, operators={name: token}, viewers=, "
                "operator_header= (behind an authenticating proxy) or public_read=True"
            )
        hosts = tuple(h.strip().lower() for h in access.allowed_hosts)
        if not hosts or not all(hosts):
            raise ConfigurationError(
                f"allowed_hosts={access.allowed_hosts!r} must name at least one host "
                "('dashboard.example.com', '*.example.com', or '*' for any)"
            )
        for label in ("session_ttl", "idle_timeout"):
            if not getattr(access, label) > 0:
                raise ConfigurationError(f"{label}={getattr(access, label)!r} must be seconds > 0")
        if not isinstance(access.max_body, int) or access.max_body < 1024:  # noqa: PLR2004
            raise ConfigurationError(f"max_body={access.max_body!r} must be bytes >= 1024")
        if access.operator_header is not None:
            _check_name(access.operator_header)
        return replace(
            access,
            allowed_hosts=hosts,
            trusted_proxies=tuple(access.trusted_proxies),
            operator_header=None
            if access.operator_header is None
            else access.operator_header.lower(),
        )

    def holder(self, candidate: str) -> tuple[str, Role] | None:
        """The name and role a presented token stands for (compared in constant time)."""
        found = None
        for secret, who in self.tokens.items():
            if hmac.compare_digest(candidate.encode(), secret.encode()):
                found = who
        return found

    def host_allowed(self, host: str) -> bool:
        """Whether a request's ``Host`` (port ignored) is one this dashboard serves."""
        name = host_name(host)
        if not name:
            return False
        for allowed in self.allowed_hosts:
            if allowed in ("*", name):
                return True
            if allowed.startswith("*.") and name.endswith(allowed[1:]):
                return True
        return False


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise ConfigurationError(
            f"{name!r} is not a usable dashboard name: give a non-empty printable string"
        )


def host_name(host: str) -> str:
    """The host name of a ``Host`` header value, lower-case, without its port."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8765
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host


class Sessions:
    """Open sessions, in memory: a random id per login, dropped at logout or expiry.

    Args:
        ttl: Seconds a session lasts at most.
        idle: Seconds a session lasts without use.
        clock: The time source (tests pass a fake one).
        limit: Most sessions kept (the oldest is dropped first).
    """

    def __init__(
        self,
        ttl: float,
        idle: float,
        *,
        clock: Callable[[], float] = time.time,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self.ttl = ttl
        self.idle = idle
        self.clock = clock
        self.limit = limit
        self._open: dict[str, tuple[Identity, float, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(cookie: str) -> str:
        # Only a digest is kept, so a memory dump holds no usable cookie.
        return hashlib.sha256(cookie.encode()).hexdigest()

    def open(self, name: str, role: Role) -> str:
        """Open a session for ``name``; return its cookie value."""
        cookie = secrets.token_urlsafe(32)
        identity = Identity(name, role, "session", secrets.token_urlsafe(32), cookie)
        now = self.clock()
        with self._lock:
            if len(self._open) >= self.limit:
                oldest = min(self._open, key=lambda key: self._open[key][1])
                del self._open[oldest]
            self._open[self._key(cookie)] = (identity, now, now)
        return cookie

    def get(self, cookie: str) -> Identity | None:
        """The identity of a live session (its idle timer restarts), else ``None``."""
        if not cookie:
            return None
        key = self._key(cookie)
        now = self.clock()
        with self._lock:
            found = self._open.get(key)
            if found is None:
                return None
            identity, opened, seen = found
            if now - opened >= self.ttl or now - seen >= self.idle:
                del self._open[key]
                return None
            self._open[key] = (identity, opened, now)
            return identity

    def close(self, cookie: str) -> bool:
        """End a session; false when it was not open."""
        with self._lock:
            return self._open.pop(self._key(cookie), None) is not None

    def __len__(self) -> int:
        return len(self._open)


class LoginLimiter:
    """Counts failed logins per client and overall; refuses more than the limits allow.

    Args:
        per_client: A ``limits`` rate (``5/minute``).
        overall: Another, for every client together.
    """

    def __init__(self, per_client: str, overall: str) -> None:
        limits = optional_module(
            "limits", extra="dashboard", needed_by="the dashboard needs its extra"
        )
        try:
            self._items = (limits.parse(per_client), limits.parse(overall))
        except ValueError as exc:
            raise ConfigurationError(
                f"login limits {per_client!r} and {overall!r} must be rates such as '5/minute'"
            ) from exc
        self._limiter: Any = limits.strategies.MovingWindowRateLimiter(
            limits.storage.MemoryStorage()
        )

    def _keys(self, client: str) -> Sequence[tuple[Any, str]]:
        return ((self._items[0], f"client:{client}"), (self._items[1], "everyone"))

    def wait(self, client: str) -> float:
        """Seconds before ``client`` may try again (0: now)."""
        waits = [
            max(1.0, float(self._limiter.get_window_stats(item, key).reset_time) - time.time())
            for item, key in self._keys(client)
            if not self._limiter.test(item, key)
        ]
        return max(waits, default=0.0)

    def failed(self, client: str) -> None:
        """Count a failed login of ``client``."""
        for item, key in self._keys(client):
            self._limiter.hit(item, key)


def same(expected: str | None, submitted: object) -> bool:
    """Whether a submitted form token is the expected one (constant time)."""
    if expected is None or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())


def proxy_csrf(secret: bytes, name: str) -> str:
    """The CSRF token of a proxy-authenticated operator (stable for this dashboard's life)."""
    return hmac.new(secret, f"csrf:{name}".encode(), hashlib.sha256).hexdigest()
