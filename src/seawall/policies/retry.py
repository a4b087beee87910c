"""Retry policy: which failures are transient, and how long to wait before the next attempt.

The decision is a pure function of the attempt number, the error and the time spent so far.
Backoff timing comes from tenacity's full-jitter exponential wait; its state is created only
after a failure, so a call that succeeds pays nothing for the retry machinery.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from typing import Any, Final

import tenacity

from seawall.errors import ConfigurationError, PermanentError, RetryableError, SeawallError

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
    """

    retry: bool
    delay: float
    transient: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A bounded retry policy with exponential backoff and full jitter.

    Args:
        attempts: Total attempts, the first included (1 means no retry).
        initial: Width in seconds of the first backoff window; the window doubles each time.
        max_delay: Cap on any single wait, a server's ``Retry-After`` included.
        deadline: Give up when the next attempt would start later than this many seconds
            after the first one started (``None``: no deadline).
        retry_on: Extra exception types to treat as transient.
        give_up_on: Extra exception types to treat as permanent (checked first).
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
    crash_loop: int = 3

    def __post_init__(self) -> None:
        if (
            not isinstance(self.attempts, int)
            or isinstance(self.attempts, bool)
            or self.attempts < 1
        ):
            raise ConfigurationError(
                f"Retry(attempts={self.attempts!r}): attempts counts the first try too and must "
                "be an integer >= 1 (use 1 for no retry)"
            )
        if (
            not isinstance(self.crash_loop, int)
            or isinstance(self.crash_loop, bool)
            or self.crash_loop < 1
        ):
            raise ConfigurationError(
                f"Retry(crash_loop={self.crash_loop!r}) must be an integer >= 1 (takeovers in a "
                "row without progress before the run stops)"
            )
        for name in ("initial", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
                raise ConfigurationError(
                    f"Retry({name}={value!r}) must be a finite number of seconds >= 0"
                )
        if self.deadline is not None and (
            not isinstance(self.deadline, int | float)
            or not math.isfinite(self.deadline)
            or self.deadline <= 0
        ):
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
        self, attempt: int, error: BaseException, elapsed: float, *, asked: bool = False
    ) -> RetryDecision:
        """Decide whether to retry after attempt number ``attempt`` failed with ``error``.

        Args:
            attempt: The number of the attempt that just failed (1-based).
            error: What it raised.
            elapsed: Seconds since the first attempt started.
            asked: Whether the attempt asked a model or a read-only tool before failing. A
                permanent error that follows such an answer may not come back when the next
                attempt asks again, so it is retried too (never one of Seawall's own errors,
                which say what to fix).

        Returns:
            The decision, with the backoff delay when it is to retry.
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
        hint = retry_after_of(error)
        if hint is not None:
            delay = max(delay, hint)
        delay = min(delay, self.max_delay)
        if self.deadline is not None and elapsed + delay > self.deadline:
            return RetryDecision(
                retry=False, delay=0.0, transient=True, reason=f"deadline of {self.deadline}s"
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


def retry_after_of(error: BaseException) -> float | None:
    """Return the wait a server asked for, if the error carries one.

    Looks at a ``retry_after`` attribute, then at a ``Retry-After`` header on the error or its
    ``response`` (seconds or an HTTP date).

    Args:
        error: The exception raised by the failed attempt.

    Returns:
        Seconds to wait, or ``None`` when the error carries no hint.
    """
    value: Any = getattr(error, "retry_after", None)
    if value is None:
        for holder in (error, getattr(error, "response", None)):
            headers = getattr(holder, "headers", None)
            if headers is not None and hasattr(headers, "get"):
                value = headers.get("retry-after") or headers.get("Retry-After")
                if value is not None:
                    break
    if value is None:
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value)) if math.isfinite(value) else None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
