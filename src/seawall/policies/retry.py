"""Retry policy: which failures are transient, and how long to wait before the next attempt.

The decision is a pure function of the attempt number, the error, the time spent so far and
the current time (injected; it dates a ``Retry-After`` given as an HTTP date). Backoff timing
comes from tenacity's full-jitter exponential wait; its state is created only after a failure,
so a call that succeeds pays nothing for the retry machinery.

A server's wait (``Retry-After`` in seconds or as an HTTP date, ``retry-after-ms``) is honoured
in full, even past the backoff cap ``max_delay``, up to ``max_server_wait``; a longer wait is
never shortened: the call fails with a :class:`~seawall.ServerWaitError` that states it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time
from dataclasses import dataclass
from typing import Any, Final

import tenacity

from seawall.errors import (
    BreakerOpenError,
    ConfigurationError,
    PermanentError,
    RetryableError,
    SeawallError,
    ServerWaitError,
)
from seawall.policies._arguments import is_amount, is_count

_TRANSIENT_STATUS: Final = frozenset({408, 425, 429})
_HTTP_CLIENT_ERROR: Final = range(400, 500)
_HTTP_SERVER_ERROR: Final = range(500, 600)
_HTTP_STATUS: Final = range(100, 600)
_PERMANENT_TYPES: Final = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    PermissionError,
    NotImplementedError,
    AssertionError,
)
_TRANSIENT_TYPES: Final = (TimeoutError, ConnectionError)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        retry: Whether another attempt should run.
        delay: Seconds to wait before it (0 when ``retry`` is false).
        transient: Whether the error was classified as transient.
        reason: Why, in words (``permanent error``, ``attempts exhausted``, ``deadline``...).
        server_wait: When the retry was refused because of the wait a server asked for
            (over ``max_server_wait`` or past the deadline): that wait in seconds.
    """

    retry: bool
    delay: float
    transient: bool
    reason: str
    server_wait: float | None = None

    def failure(self, error: BaseException) -> BaseException:
        """The error to raise when this decision gives up on ``error``.

        It is ``error`` itself, unless a server's wait was refused (longer than
        ``max_server_wait``, or ending past the deadline): then a
        :class:`~seawall.ServerWaitError` that states the wait, caused by ``error``.
        """
        if self.retry or self.server_wait is None or isinstance(error, ServerWaitError):
            return error
        refused = ServerWaitError(
            f"{type(error).__name__}: {str(error)[:500]} -- {self.reason}; the call failed "
            "instead of retrying sooner than the server asked",
            retry_after=self.server_wait,
            wait=self.server_wait,
            error_type=type(error).__name__,
        )
        refused.__cause__ = error
        return refused


@dataclass(frozen=True, slots=True)
class Retry:
    """A bounded retry policy with exponential backoff and full jitter.

    Args:
        attempts: Total attempts, the first included (1 means no retry).
        initial: Width in seconds of the first backoff window; the window doubles each time.
        max_delay: Cap on the backoff. A server's wait is not cut to it: see
            ``max_server_wait``.
        deadline: Give up when the next attempt would start later than this many seconds
            after the first one started (``None``: no deadline).
        retry_on: Extra exception types to treat as transient.
        give_up_on: Extra exception types to treat as permanent (checked first).
        max_server_wait: The longest wait a server may ask for (``Retry-After``,
            ``retry-after-ms``, or ``RetryableError(retry_after=...)``) that is honoured, in
            full; a server asking for longer makes the call fail with a
            :class:`~seawall.ServerWaitError` stating the wait, never a shorter wait.
        crash_loop: Takeovers in a row after which a run whose process keeps dying without
            progress (its journal gained no completed step) stops as ``crash_loop``. A crash is
            not an error of the agent: it never spends ``attempts``.

    Transient by default: timeouts, connection errors, HTTP 408/425/429 and 5xx, and any
    error not known to be permanent. Permanent by default: HTTP 4xx, ``ValueError`` (which
    covers validation errors), ``TypeError``, ``LookupError``, ``AttributeError``,
    ``PermissionError``, ``NotImplementedError``, ``AssertionError`` and
    :class:`seawall.PermanentError`.
    """

    attempts: int = 3
    initial: float = 0.5
    max_delay: float = 30.0
    deadline: float | None = None
    retry_on: tuple[type[BaseException], ...] = ()
    give_up_on: tuple[type[BaseException], ...] = ()
    max_server_wait: float = 60.0
    crash_loop: int = 3

    def __post_init__(self) -> None:
        if not is_count(self.attempts, 1):
            raise ConfigurationError(
                f"Retry(attempts={self.attempts!r}): attempts counts the first try too and must "
                "be an integer >= 1 (use 1 for no retry)"
            )
        if not is_count(self.crash_loop, 1):
            raise ConfigurationError(
                f"Retry(crash_loop={self.crash_loop!r}) must be an integer >= 1 (takeovers in a "
                "row without progress before the run stops)"
            )
        for name in ("initial", "max_delay", "max_server_wait"):
            value = getattr(self, name)
            if not is_amount(value):
                raise ConfigurationError(
                    f"Retry({name}={value!r}) must be a finite number of seconds >= 0"
                )
        if self.deadline is not None and not (is_amount(self.deadline) and self.deadline > 0):
            raise ConfigurationError(
                f"Retry(deadline={self.deadline!r}) must be a positive number of seconds or None"
            )
        for name in ("retry_on", "give_up_on"):
            types = getattr(self, name)
            if not isinstance(types, tuple) or not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in types
            ):
                raise ConfigurationError(
                    f"Retry({name}=...) must be a tuple of exception classes, got {types!r}"
                )

    def decide(
        self,
        attempt: int,
        error: BaseException,
        elapsed: float,
        *,
        now: float | None = None,
        asked: bool = False,
    ) -> RetryDecision:
        """Decide whether to retry after attempt number ``attempt`` failed with ``error``.

        Args:
            attempt: The number of the attempt that just failed (1-based).
            error: What it raised.
            elapsed: Seconds since the first attempt started.
            now: The current Unix time, to date a ``Retry-After`` given as an HTTP date
                (default: the system clock).
            asked: Whether the attempt asked a model or a read-only tool before failing. A
                permanent error that follows such an answer may not come back when the next
                attempt asks again, so it is retried too (never one of Seawall's own errors,
                which say what to fix).

        Returns:
            The decision, with the delay when it is to retry.
        """
        transient = is_transient(error, self.retry_on, self.give_up_on)
        if not transient and not (
            asked
            and not isinstance(error, SeawallError)
            and not (self.give_up_on and isinstance(error, self.give_up_on))
        ):
            return RetryDecision(retry=False, delay=0.0, transient=False, reason="permanent error")
        if attempt >= self.attempts:
            return RetryDecision(
                retry=False, delay=0.0, transient=True, reason=f"{self.attempts} attempts exhausted"
            )
        delay = self.backoff(attempt)
        hint = retry_after_of(error, now=now)
        server_wait: float | None = None
        if hint is not None and isinstance(error, BreakerOpenError):
            # A breaker's cooldown is our own estimate, not a server's demand: capped as backoff.
            delay = min(max(delay, hint), self.max_delay)
        elif hint is not None:
            server_wait = hint
            if hint > self.max_server_wait:
                return RetryDecision(
                    retry=False,
                    delay=0.0,
                    transient=True,
                    reason=f"the server asked to wait {hint:g}s before a retry, longer than "
                    f"Retry(max_server_wait={self.max_server_wait:g}) allows",
                    server_wait=hint,
                )
            delay = max(delay, hint)
        if self.deadline is not None and elapsed + delay > self.deadline:
            reason = f"deadline of {self.deadline}s"
            if server_wait is not None and elapsed + server_wait > self.deadline:
                reason = (
                    f"the server asked to wait {server_wait:g}s before a retry, which ends past "
                    f"the deadline of {self.deadline:g}s"
                )
            else:
                server_wait = None
            return RetryDecision(
                retry=False, delay=0.0, transient=True, reason=reason, server_wait=server_wait
            )
        if transient:
            return RetryDecision(retry=True, delay=delay, transient=True, reason="transient error")
        return RetryDecision(
            retry=True,
            delay=delay,
            transient=False,
            reason="permanent error after asking a model or a read-only tool: asking again may "
            "change it",
        )

    def backoff(self, attempt: int) -> float:
        """Return the jittered wait after failed attempt number ``attempt`` (1-based)."""
        wait = tenacity.wait_random_exponential(multiplier=self.initial, max=self.max_delay)
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = attempt
        return float(wait(state))


def is_transient(  # noqa: PLR0911 - an ordered list of rules, first match wins
    error: BaseException,
    retry_on: tuple[type[BaseException], ...] = (),
    give_up_on: tuple[type[BaseException], ...] = (),
) -> bool:
    """Classify ``error`` as transient (worth retrying) or permanent.

    Args:
        error: The exception to classify.
        retry_on: Types forced transient.
        give_up_on: Types forced permanent (checked first).

    Returns:
        True when another attempt may succeed.
    """
    if give_up_on and isinstance(error, give_up_on):
        return False
    if retry_on and isinstance(error, retry_on):
        return True
    if isinstance(error, PermanentError):
        return False
    if isinstance(error, RetryableError):
        return True
    status = _http_status(error)
    if status is not None:
        if status in _TRANSIENT_STATUS or status in _HTTP_SERVER_ERROR:
            return True
        if status in _HTTP_CLIENT_ERROR:
            return False
    if isinstance(error, _TRANSIENT_TYPES):
        return True
    if isinstance(error, SeawallError):
        return False
    return not isinstance(error, _PERMANENT_TYPES)


def _http_status(error: BaseException) -> int | None:
    for holder in (error, getattr(error, "response", None)):
        for name in ("status_code", "status"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and value in _HTTP_STATUS:
                return value
    return None


def retry_after_of(error: BaseException, *, now: float | None = None) -> float | None:
    """Return the wait a server asked for, if the error carries one.

    Looks at a ``retry_after`` attribute (seconds), then at the headers of the error and of
    its ``response``: ``retry-after-ms`` (milliseconds, sent by OpenAI-compatible APIs), then
    ``Retry-After`` (seconds or an HTTP date). Header names match in any case.

    Args:
        error: The exception raised by the failed attempt.
        now: The current Unix time, to turn an HTTP date into seconds (default: the system
            clock).

    Returns:
        Seconds to wait (0 for a date already past), or ``None`` when the error carries no
        readable hint.
    """
    value: Any = getattr(error, "retry_after", None)
    if value is not None:
        return _wait(value, now)
    for holder in (error, getattr(error, "response", None)):
        headers = getattr(holder, "headers", None)
        if headers is None or not hasattr(headers, "get"):
            continue
        millis = _number(_header(headers, "retry-after-ms"))
        if millis is not None:
            return millis / 1000
        text = _header(headers, "retry-after")
        if text is not None:
            wait = _wait(text, now)
            if wait is not None:
                return wait
    return None


def _header(headers: Any, name: str) -> Any:
    """The value of header ``name`` (lower case) in a mapping-like object, in any case."""
    for spelling in (name, name.title()):
        value = headers.get(spelling)
        if value is not None:
            return value
    items = getattr(headers, "items", None)
    if callable(items):
        for key, value in items():
            if str(key).lower() == name:
                return value
    return None


def _number(value: Any) -> float | None:
    """``value`` as a finite number of at least 0, or ``None`` when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value if isinstance(value, int | float) else str(value).strip())
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None


def _wait(value: Any, now: float | None) -> float | None:
    """Seconds from a ``Retry-After`` value: a number of seconds, or an HTTP date."""
    seconds = _number(value)
    if seconds is not None or isinstance(value, int | float):
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(str(value).strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; a date without a zone is read so
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
