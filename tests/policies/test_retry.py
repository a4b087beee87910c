"""The retry policy: validation, transient/permanent classification and backoff decisions."""

# The house style writes asserts as `expected == actual`, which SIM300 calls a Yoda condition.
# (SIM300 is ignored for tests in pyproject.toml)

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seawall
from seawall.policies import Retry, is_transient, retry_after_of


class HTTPError(Exception):
    """An error carrying an HTTP status, like the ones HTTP client libraries raise."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers or {}


class Response:
    """A stand-in for an HTTP client's response object."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers or {}


class ClientError(Exception):
    """An error that carries the response it failed on (``error.response.status_code``)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class CustomError(Exception):
    """An error type Seawall knows nothing about."""


@pytest.fixture
def widest_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make full jitter pick the top of its window, so the window's width can be asserted."""
    monkeypatch.setattr(random, "uniform", lambda _low, high: high)


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"attempts": 2.5},
        {"initial": -0.1},
        {"initial": float("inf")},
        {"max_delay": -1},
        {"deadline": 0},
        {"retry_on": [ValueError]},
        {"retry_on": (ValueError, "KeyError")},
        {"give_up_on": ValueError},
        {"give_up_on": (int,)},
    ],
    ids=repr,
)
def test_invalid_options_raise_configuration_error(options: dict[str, Any]) -> None:
    """Invalid constructor arguments raise ConfigurationError."""
    with pytest.raises(seawall.ConfigurationError):
        Retry(**options)


def test_configuration_error_names_the_argument() -> None:
    """The validation message names the offending argument and its value."""
    with pytest.raises(seawall.ConfigurationError, match=r"Retry\(attempts=0\)"):
        Retry(attempts=0)


def test_defaults_are_valid() -> None:
    """Retry() with no arguments is three attempts, 0.5 s initial window, 30 s cap."""
    policy = Retry()
    assert (3, 0.5, 30.0, None) == (
        policy.attempts,
        policy.initial,
        policy.max_delay,
        policy.deadline,
    )


# -- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [TimeoutError(), ConnectionError(), ConnectionResetError(), CustomError(), RuntimeError()],
    ids=repr,
)
def test_transient_errors(error: BaseException) -> None:
    """Timeouts, connection errors and unknown errors are transient."""
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [ValueError(), TypeError(), KeyError("k"), PermissionError(), NotImplementedError()],
    ids=repr,
)
def test_permanent_errors(error: BaseException) -> None:
    """Validation, type, lookup and permission errors are permanent."""
    assert not is_transient(error)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
def test_transient_http_status(status: int) -> None:
    """HTTP 408, 425, 429 and 5xx on the error are transient."""
    assert is_transient(HTTPError(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_permanent_http_status(status: int) -> None:
    """Other HTTP 4xx on the error are permanent."""
    assert not is_transient(HTTPError(status))


@pytest.mark.parametrize(("status", "expected"), [(429, True), (503, True), (404, False)])
def test_http_status_on_the_response(status: int, expected: bool) -> None:
    """A status on ``error.response.status_code`` is classified like one on the error."""
    assert expected == is_transient(ClientError(Response(status)))


def test_http_status_wins_over_the_exception_type() -> None:
    """A ValueError carrying HTTP 503 is transient: the status decides first."""

    class ServiceUnavailableError(ValueError):
        status_code = 503

    assert is_transient(ServiceUnavailableError())


def test_retryable_error_is_transient() -> None:
    """seawall.RetryableError is transient."""
    assert is_transient(seawall.RetryableError("try later"))


def test_permanent_error_is_permanent() -> None:
    """seawall.PermanentError is permanent."""
    assert not is_transient(seawall.PermanentError("never"))


def test_other_seawall_errors_are_permanent() -> None:
    """A SeawallError that is neither Retryable nor Permanent is not retried."""
    assert not is_transient(seawall.SeawallError("bug"))


def test_retry_on_makes_an_error_transient() -> None:
    """retry_on turns a permanent-by-default type transient."""
    assert is_transient(ValueError(), retry_on=(ValueError,))


def test_give_up_on_makes_an_error_permanent() -> None:
    """give_up_on turns a transient-by-default type permanent."""
    assert not is_transient(TimeoutError(), give_up_on=(TimeoutError,))


def test_give_up_on_wins_over_retry_on() -> None:
    """A type in both give_up_on and retry_on is permanent."""
    assert not is_transient(KeyError(), retry_on=(KeyError,), give_up_on=(LookupError,))


def test_overrides_win_over_seawall_markers() -> None:
    """give_up_on overrides RetryableError and retry_on overrides PermanentError."""
    retryable = seawall.RetryableError("x")
    permanent = seawall.PermanentError("x")
    assert not is_transient(retryable, give_up_on=(seawall.RetryableError,))
    assert is_transient(permanent, retry_on=(seawall.PermanentError,))


def test_policy_overrides_reach_decide() -> None:
    """Retry(give_up_on=...) makes decide stop on that type."""
    decision = Retry(give_up_on=(ConnectionError,)).decide(1, ConnectionError(), 0.0)
    assert (False, False) == (decision.retry, decision.transient)


# -- decide -------------------------------------------------------------------------------


def test_permanent_error_is_not_retried() -> None:
    """A permanent error stops at once, with no delay."""
    decision = Retry(attempts=5).decide(1, ValueError("bad"), 0.0)
    assert (False, 0.0, False, "permanent error") == (
        decision.retry,
        decision.delay,
        decision.transient,
        decision.reason,
    )


def test_exhausted_attempts_are_not_retried() -> None:
    """A transient error on the last attempt stops, saying the attempts ran out."""
    decision = Retry(attempts=3).decide(3, TimeoutError(), 0.0)
    assert (False, 0.0, True) == (decision.retry, decision.delay, decision.transient)
    assert "3 attempts exhausted" == decision.reason


def test_single_attempt_policy_never_retries() -> None:
    """Retry(attempts=1) does not retry even a transient error."""
    assert not Retry(attempts=1).decide(1, TimeoutError(), 0.0).retry


def test_transient_error_before_the_last_attempt_is_retried() -> None:
    """A transient error with attempts left is retried."""
    decision = Retry(attempts=3).decide(2, ConnectionError(), 0.0)
    assert (True, True, "transient error") == (
        decision.retry,
        decision.transient,
        decision.reason,
    )


@pytest.mark.parametrize(("attempt", "window"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)])
@pytest.mark.usefixtures("widest_jitter")
def test_backoff_window_doubles_from_initial(attempt: int, window: float) -> None:
    """The jitter window after attempt n is initial * 2**(n-1) (tenacity's exponent is n-1)."""
    assert window == Retry(attempts=10, initial=0.5, max_delay=30).backoff(attempt)


@pytest.mark.usefixtures("widest_jitter")
def test_backoff_window_is_capped_at_max_delay() -> None:
    """The jitter window never grows past max_delay."""
    assert 3.0 == Retry(attempts=20, initial=0.5, max_delay=3.0).backoff(15)


def test_backoff_window_starts_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full jitter: the bottom of the window is 0, not initial."""
    monkeypatch.setattr(random, "uniform", lambda low, _high: low)
    assert 0.0 == Retry(attempts=10, initial=0.5, max_delay=30).backoff(4)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8])
def test_delay_is_within_the_jitter_window(attempt: int) -> None:
    """Sampled delays lie in [0, min(max_delay, initial * 2**(attempt-1))]."""
    policy = Retry(attempts=10, initial=0.25, max_delay=10.0)
    bound = min(policy.max_delay, policy.initial * 2 ** (attempt - 1))
    delays = [policy.decide(attempt, TimeoutError(), 0.0).delay for _ in range(200)]
    assert all(0.0 <= delay <= bound for delay in delays)
    assert max(delays) > bound / 2  # the whole window is used, not only its lower half


def test_retry_after_seconds_is_honoured() -> None:
    """RetryableError(retry_after=5) waits at least 5 s."""
    policy = Retry(attempts=3, initial=0.01, max_delay=30.0)
    delay = policy.decide(1, seawall.RetryableError("slow down", retry_after=5), 0.0).delay
    assert 5.0 <= delay <= 30.0


def test_server_wait_longer_than_max_delay_is_honoured_in_full() -> None:
    """A Retry-After of 30 s under max_delay=2 waits 30 s, not 2 s (it is not the backoff)."""
    policy = Retry(attempts=3, initial=0.1, max_delay=2.0)
    decision = policy.decide(1, HTTPError(429, {"Retry-After": "30"}), 0.0)
    assert (True, 30.0, None) == (decision.retry, decision.delay, decision.server_wait)


def test_server_wait_over_max_server_wait_fails_stating_the_wait() -> None:
    """A wait over max_server_wait is refused, never shortened; the failure states it."""
    error = HTTPError(429, {"Retry-After": "120"})
    decision = Retry(attempts=3).decide(1, error, 0.0)
    assert (False, 0.0, True, 120.0) == (
        decision.retry,
        decision.delay,
        decision.transient,
        decision.server_wait,
    )
    failure = decision.failure(error)
    assert isinstance(failure, seawall.ServerWaitError)
    assert "wait 120s" in failure.message
    assert "max_server_wait=60" in failure.message
    assert (120.0, error, "HTTPError") == (
        failure.retry_after,
        failure.__cause__,
        failure.error_type,
    )


def test_max_server_wait_raises_the_limit() -> None:
    """Retry(max_server_wait=300) honours a server's 120 s."""
    decision = Retry(max_server_wait=300).decide(1, HTTPError(503, {"Retry-After": "120"}), 0.0)
    assert (True, 120.0) == (decision.retry, decision.delay)


def test_refused_server_wait_is_not_wrapped_twice() -> None:
    """An outer policy refusing a ServerWaitError again raises it as it is."""
    inner = seawall.ServerWaitError("waited too long", retry_after=120)
    decision = Retry().decide(1, inner, 0.0)
    assert (False, inner) == (decision.retry, decision.failure(inner))


def test_failure_of_an_ordinary_refusal_is_the_error_itself() -> None:
    """Giving up for any other reason raises the original error."""
    error = HTTPError(400)
    assert error is Retry().decide(1, error, 0.0).failure(error)


def test_retry_after_ms_is_honoured() -> None:
    """``retry-after-ms: 3000`` waits 3 s, even under max_delay=2."""
    error = HTTPError(429, {"retry-after-ms": "3000"})
    assert 3.0 == retry_after_of(error)
    assert 3.0 == Retry(attempts=3, initial=0.1, max_delay=2.0).decide(1, error, 0.0).delay


def test_retry_after_ms_wins_over_retry_after() -> None:
    """The millisecond header is the more precise one; it is read first."""
    error = ClientError(Response(429, {"Retry-After": "3", "Retry-After-Ms": "2500"}))
    assert 2.5 == retry_after_of(error)


def test_header_names_match_in_any_case() -> None:
    """``RETRY-AFTER`` in a plain dict is found."""
    assert 4.0 == retry_after_of(HTTPError(503, {"RETRY-AFTER": "4"}))


def test_unreadable_ms_header_falls_back_to_retry_after() -> None:
    """A ``retry-after-ms`` that is not a number leaves ``Retry-After`` in charge."""
    assert 5.0 == retry_after_of(HTTPError(503, {"retry-after-ms": "soon", "retry-after": "5"}))


def test_http_date_is_measured_from_the_injected_clock() -> None:
    """An HTTP-date Retry-After counts from ``now``, not from the system clock."""
    error = HTTPError(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"})
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()
    assert 30.0 == retry_after_of(error, now=now)
    assert 30.0 == Retry(max_delay=1.0).decide(1, error, 0.0, now=now).delay


def test_server_wait_past_the_deadline_fails_stating_the_wait() -> None:
    """A server wait that ends after the deadline is refused and the failure says so."""
    error = HTTPError(429, {"Retry-After": "20"})
    decision = Retry(attempts=5, deadline=10.0).decide(1, error, 0.0)
    assert (False, 20.0) == (decision.retry, decision.server_wait)
    assert "past the deadline of 10s" in str(decision.failure(error))


def test_breaker_cooldown_stays_capped_at_max_delay() -> None:
    """A breaker's retry_after is its own cooldown estimate: capped like a backoff."""
    error = seawall.BreakerOpenError("open", retry_after=90)
    decision = Retry(attempts=3, initial=0.01, max_delay=2.0).decide(1, error, 0.0)
    assert (True, 2.0, None) == (decision.retry, decision.delay, decision.server_wait)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "x"])
def test_max_server_wait_must_be_a_finite_non_negative_number(value: Any) -> None:
    """Retry(max_server_wait=...) is validated like the other durations."""
    with pytest.raises(seawall.ConfigurationError, match="max_server_wait"):
        Retry(max_server_wait=value)


def test_retry_after_header_on_the_response_is_honoured() -> None:
    """A ``Retry-After: 3`` header on ``error.response`` waits at least 3 s."""
    error = ClientError(Response(503, {"Retry-After": "3"}))
    assert 3.0 == retry_after_of(error)
    assert Retry(attempts=3, initial=0.01).decide(1, error, 0.0).delay >= 3.0


def test_lowercase_retry_after_header_on_the_error_is_read() -> None:
    """A lowercase ``retry-after`` header on the error itself is read."""
    assert 7.0 == retry_after_of(HTTPError(429, {"retry-after": "7"}))


def test_retry_after_http_date_is_honoured() -> None:
    """A Retry-After given as an HTTP date waits until about that time."""
    when = datetime.now(UTC) + timedelta(seconds=10)
    error = ClientError(Response(503, {"Retry-After": format_datetime(when, usegmt=True)}))
    hint = retry_after_of(error)
    assert hint is not None
    assert 8.0 <= hint <= 10.0
    assert 8.0 <= Retry(attempts=3, initial=0.01).decide(1, error, 0.0).delay <= 10.0


def test_retry_after_date_in_the_past_is_zero() -> None:
    """A Retry-After date already past asks for no wait."""
    error = HTTPError(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert 0.0 == retry_after_of(error)


def test_unparseable_retry_after_is_ignored() -> None:
    """A Retry-After that is neither seconds nor a date gives no hint."""
    assert retry_after_of(HTTPError(503, {"Retry-After": "soon"})) is None


def test_error_without_hint_has_no_retry_after() -> None:
    """An error carrying no Retry-After gives no hint."""
    assert retry_after_of(TimeoutError()) is None


def test_deadline_exceeded_is_not_retried() -> None:
    """No retry when the next attempt would start after the deadline."""
    decision = Retry(attempts=5, initial=0.01, deadline=1.0).decide(1, TimeoutError(), 5.0)
    assert (False, 0.0, True) == (decision.retry, decision.delay, decision.transient)
    assert "deadline" in decision.reason


def test_retry_after_past_the_deadline_is_not_retried() -> None:
    """A Retry-After that would land after the deadline stops the retries."""
    error = seawall.RetryableError("later", retry_after=20)
    decision = Retry(attempts=5, initial=0.01, deadline=10.0).decide(1, error, 0.0)
    assert not decision.retry


def test_retry_within_the_deadline_goes_ahead() -> None:
    """A retry that fits before the deadline is allowed."""
    decision = Retry(attempts=5, initial=0.01, deadline=10.0).decide(1, TimeoutError(), 1.0)
    assert decision.retry


transient_errors = st.sampled_from(
    [
        TimeoutError(),
        ConnectionError(),
        seawall.RetryableError("again"),
        seawall.RetryableError("later", retry_after=1000),
        HTTPError(503),
        ClientError(Response(429, {"Retry-After": "12"})),
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    attempt=st.integers(1, 20),
    attempts=st.integers(1, 20),
    initial=st.floats(0, 10, allow_nan=False),
    max_delay=st.floats(0, 60, allow_nan=False),
    error=transient_errors,
)
def test_decision_property_for_transient_errors(
    attempt: int, attempts: int, initial: float, max_delay: float, error: BaseException
) -> None:
    """For a transient error the delay is the backoff (at most max_delay) or the server's whole
    wait; it retries iff attempts remain and the server's wait is within max_server_wait."""
    policy = Retry(attempts=attempts, initial=initial, max_delay=max_delay)
    decision = policy.decide(attempt, error, 0.0)
    hint = retry_after_of(error)
    waits_too_long = hint is not None and hint > policy.max_server_wait
    assert (attempt < attempts and not waits_too_long) == decision.retry
    assert decision.transient
    if decision.retry:
        assert 0.0 <= decision.delay <= max(max_delay, hint or 0.0)
        assert hint is None or decision.delay >= hint
    else:
        assert 0.0 == decision.delay
