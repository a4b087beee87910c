"""The dashboard's access control: one operator token, sessions and CSRF tokens derived from it.

Reading needs nothing (the dashboard binds to 127.0.0.1 by default). Acting (replay, redrive,
breaker reset, hand-off decisions) needs a session, opened by posting the token to ``/login``,
and every action form carries a CSRF token bound to that session. Both are HMACs of the
operator token, so nothing is stored server-side and a restart with a new token logs everyone
out. Cookies are ``HttpOnly`` and ``SameSite=Strict``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from starlette.requests import Request

SESSION_COOKIE: Final = "seawall_session"
TOKEN_ENV: Final = "SEAWALL_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a secret


def new_token() -> str:
    """Return a fresh operator token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Guard:
    """Checks tokens, opens sessions and derives their CSRF tokens.

    Args:
        token: The operator token.
    """

    token: str

    def _sign(self, purpose: str, value: str) -> str:
        message = f"{purpose}:{value}".encode()
        return hmac.new(self.token.encode(), message, hashlib.sha256).hexdigest()

    def accepts(self, candidate: str) -> bool:
        """Whether ``candidate`` is the operator token (compared in constant time)."""
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def open_session(self) -> str:
        """Return a new session cookie value (a random id and its signature)."""
        session = secrets.token_urlsafe(16)
        return f"{session}.{self._sign('session', session)}"

    def session(self, request: Request) -> str | None:
        """Return the request's session id when its cookie is genuine, else ``None``."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        session, _, signature = cookie.partition(".")
        if not session or not hmac.compare_digest(signature, self._sign("session", session)):
            return None
        return session

    def csrf(self, request: Request) -> str | None:
        """Return the CSRF token action forms of this session carry (``None``: no session)."""
        session = self.session(request)
        return None if session is None else self._sign("csrf", session)

    def allows(self, request: Request, submitted: str | None) -> bool:
        """Whether a form post comes from an operator's session with the right CSRF token."""
        expected = self.csrf(request)
        if expected is None or not submitted:
            return False
        return hmac.compare_digest(submitted, expected)
