"""Alerts: where they go (sinks) and which operational conditions raise them (rules).

Every alert is recorded in the ledger (``seawall drift`` and the dashboard list them) and then
handed to each sink of the app, ``Seawall(alerts=[...])``:

- a plain function or :class:`CallbackSink`: called with the :class:`~seawall.AlertRecord`;
- :class:`WebhookSink`: an HTTP POST of the alert's JSON, retried with exponential backoff;
- :class:`LogSink`: one ``logging`` record.

Sinks run on the app's monitor thread, never on a run's path: a slow or failing sink delays
other alerts, never a run. A sink that raises is logged and counted (:attr:`Alerts.failures`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import tenacity

from seawall import _timing
from seawall.errors import ConfigurationError
from seawall.policies._arguments import is_amount

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from seawall.ledger import AlertRecord

KINDS: Final = ("drift", "breaker_open", "dlq_growth", "handoff_waiting", "run_overdue")
"""Every kind of alert."""

logger = logging.getLogger("seawall.alerts")


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    """The stable JSON form of an alert (webhook bodies, ``seawall drift --json``)."""
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "agent": alert.agent,
        "feature": alert.feature,
        "statistic": alert.statistic,
        "threshold": alert.threshold,
        "window": alert.window,
        "message": alert.message,
        "at": alert.at,
        "details": alert.details,
    }


@runtime_checkable
class AlertSink(Protocol):
    """Something that delivers alerts. Raise to report a failed delivery."""

    @property
    def name(self) -> str:
        """Name in logs and in :attr:`Alerts.failures`."""

    def send(self, alert: AlertRecord) -> None:
        """Deliver one alert."""


@dataclass(frozen=True, slots=True)
class CallbackSink:
    """Calls ``fn(alert)`` for every alert.

    Args:
        fn: Your function; what it returns is ignored.
        name: Name in logs (default: the function's).
    """

    fn: Callable[[AlertRecord], Any]
    name: str = ""

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigurationError(f"CallbackSink({self.fn!r}) needs a callable")
        if not self.name:
            label = getattr(self.fn, "__qualname__", None) or repr(self.fn)
            object.__setattr__(self, "name", f"callback:{label}")

    def send(self, alert: AlertRecord) -> None:
        """Call the function."""
        self.fn(alert)


@dataclass(frozen=True, slots=True)
class LogSink:
    """Writes every alert as one ``logging`` record (the alert's fields in ``extra``).

    Args:
        logger: Logger name.
        level: Logging level.
    """

    logger: str = "seawall.alerts"
    level: int = logging.WARNING
    name: str = "log"

    def send(self, alert: AlertRecord) -> None:
        """Log the alert."""
        logging.getLogger(self.logger).log(
            self.level,
            "%s alert: %s",
            alert.kind,
            alert.message,
            extra={
                "alert_id": alert.alert_id,
                "alert_kind": alert.kind,
                "agent": alert.agent,
                "feature": alert.feature,
            },
        )


class WebhookError(Exception):
    """A webhook delivery that failed (``transient`` ones are retried)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class WebhookSink:
    """POSTs every alert as JSON to a URL; connection errors, timeouts, 429 and 5xx are retried.

    Args:
        url: ``http://`` or ``https://`` endpoint.
        headers: Extra request headers (an ``Authorization`` token, ...).
        timeout: Seconds one request may take.
        attempts: Requests at most per alert.
        initial: Backoff scale in seconds: the n-th wait is random in [0, initial * 2^n]
            (full jitter), capped at ``max_delay``.
        max_delay: Longest backoff.
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    attempts: int = 4
    initial: float = 0.5
    max_delay: float = 8.0
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ConfigurationError(f"WebhookSink(url={self.url!r}) must be an http(s) URL")
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigurationError(f"WebhookSink(attempts={self.attempts!r}) must be >= 1")
        for label in ("timeout", "initial", "max_delay"):
            value = getattr(self, label)
            if not is_amount(value):
                raise ConfigurationError(f"WebhookSink({label}={value!r}) must be seconds >= 0")
        object.__setattr__(self, "headers", dict(self.headers))
        if not self.name:
            object.__setattr__(self, "name", f"webhook:{self.url.split('?', 1)[0]}")

    def send(self, alert: AlertRecord) -> None:
        """POST the alert, retrying transient failures.

        Raises:
            WebhookError: Every attempt failed, or the endpoint refused it (4xx).
        """
        body = json.dumps(alert_json(alert), sort_keys=True, default=str).encode()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_random_exponential(multiplier=self.initial, max=self.max_delay),
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, WebhookError) and e.transient
            ),
            sleep=_timing.sleep,
            reraise=True,
        )
        retrying(self._post, body)

    def _post(self, body: bytes) -> None:
        # Imported here: urllib.request loads ssl and email, which an app without a webhook
        # should not pay for at start-up.
        import urllib.error  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            transient = exc.code == 429 or exc.code >= 500  # noqa: PLR2004 - HTTP semantics
            raise WebhookError(f"{self.url} answered {exc.code}", transient=transient) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise WebhookError(f"{self.url} unreachable: {exc}", transient=True) from exc


def sink_of(value: AlertSink | Callable[[AlertRecord], Any]) -> AlertSink:
    """Accept a sink or a plain function (wrapped in :class:`CallbackSink`).

    Raises:
        ConfigurationError: It is neither.
    """
    if isinstance(value, AlertSink):
        return value
    if callable(value):
        return CallbackSink(value)
    raise ConfigurationError(
        f"Seawall(alerts=[...]) takes functions or sinks (WebhookSink, LogSink), got {value!r}"
    )


class Alerts:
    """The sinks of one app; delivers each alert to all of them.

    Args:
        sinks: Where alerts go.
    """

    def __init__(self, sinks: Sequence[AlertSink | Callable[[AlertRecord], Any]] = ()) -> None:
        if not isinstance(sinks, list | tuple):
            raise ConfigurationError(
                "Seawall(alerts=...) must be a list of functions or sinks, e.g. "
                "[seawall.LogSink(), seawall.WebhookSink('https://...')]"
            )
        self.sinks: tuple[AlertSink, ...] = tuple(sink_of(s) for s in sinks)
        self.delivered = 0
        self.failures: Counter[str] = Counter()
        """Failed deliveries by sink name."""
        self._lock = threading.Lock()

    def deliver(self, alert: AlertRecord) -> None:
        """Hand ``alert`` to every sink; a failing sink is logged and counted, never raised."""
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception:
                with self._lock:
                    self.failures[sink.name] += 1
                logger.warning(
                    "alert sink %s failed to deliver %s alert %s",
                    sink.name,
                    alert.kind,
                    alert.alert_id,
                    exc_info=True,
                )
            else:
                with self._lock:
                    self.delivered += 1


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Which operational conditions raise alerts (besides drift).

    Args:
        breaker_open: Alert when a breaker opens (from closed).
        dlq_growth: Alert when an agent has this many new DLQ entries within ``dlq_period``
            (``None``: off).
        dlq_period: Seconds over which DLQ entries are counted.
        handoff_waiting: Alert when a run is parked for a person.
        overdue_after: Seconds after which a running run without a ``Guards(deadline=...)`` is
            reported stuck (``None``: only runs with a deadline are).
        cooldown: Seconds between two ``dlq_growth`` (or ``handoff_waiting``) alerts of one agent.
    """

    breaker_open: bool = True
    dlq_growth: int | None = 10
    dlq_period: float = 300.0
    handoff_waiting: bool = True
    overdue_after: float | None = None
    cooldown: float = 900.0

    def __post_init__(self) -> None:
        if self.dlq_growth is not None and (
            not isinstance(self.dlq_growth, int) or self.dlq_growth < 1
        ):
            raise ConfigurationError(
                f"AlertRules(dlq_growth={self.dlq_growth!r}) must be an integer >= 1 or None"
            )
        for label in ("dlq_period", "cooldown", "overdue_after"):
            value = getattr(self, label)
            if value is None and label == "overdue_after":
                continue
            if not is_amount(value):
                raise ConfigurationError(f"AlertRules({label}={value!r}) must be seconds >= 0")
