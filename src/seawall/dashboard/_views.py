"""Pure helpers of the dashboard's pages: time ranges and zones, filters, payloads, series."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from markupsafe import Markup

from seawall import ErrorClass, RunStatus
from seawall.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from seawall.ledger import RunStats, UnpricedCount

HOUR: Final = 3600.0
DAY: Final = 86400.0
RANGES: Final = {
    "1h": (3600.0, 120.0),
    "6h": (6 * 3600.0, 600.0),
    "24h": (86400.0, 1800.0),
    "7d": (7 * 86400.0, 4 * 3600.0),
    "30d": (30 * 86400.0, 12 * 3600.0),
}
"""Overview time ranges: ``name -> (span seconds, bucket seconds)``."""
DEFAULT_RANGE: Final = "24h"
STATUS_SERIES: Final = ("succeeded", "running", "pending", "awaiting_human", "cancelled")
OUTCOMES: Final = (*STATUS_SERIES, *(c.value for c in ErrorClass), "other")
"""Series of the runs-over-time chart: a run counts under its error class when it has one."""
STATUSES: Final = tuple(s.value for s in RunStatus)
ERROR_CLASSES: Final = tuple(c.value for c in ErrorClass)
CONTAINED: Final = ErrorClass.CASCADE.value
"""The class of runs that failed or were skipped because something upstream failed."""
ROOT_CLASSES: Final = tuple(c for c in ERROR_CLASSES if c != CONTAINED)
"""Classes of failures that start somewhere (not contained consequences of another)."""
REFRESH: Final = (10, 30, 60, 300)
"""Auto-refresh periods offered, in seconds."""
COLLAPSE_AT: Final = 600
"""Pretty JSON longer than this many characters is shown collapsed."""
ONE_LINE: Final = 80
"""JSON this short is shown on one line; longer values are indented (and summarised)."""
SHOWN_AT_MOST: Final = 200_000
"""Characters of one value a page shows; the rest is left to ``seawall show RUN --json``."""
_BIDI: Final = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def redacted(url: str) -> str:
    """A ledger URL fit to show: any password in it replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def outcome(status: str, error_class: str | None) -> str:
    """The chart series of a run: its error class, else its status."""
    if error_class:
        return error_class
    return status if status in OUTCOMES else "other"


def series_filter(name: str) -> dict[str, str]:
    """The runs-list filter of one chart series (``{}`` for ``other``)."""
    if name in ERROR_CLASSES:
        return {"error_class": name}
    if name in STATUS_SERIES:
        return {"status": name}
    return {}


def visible_controls(text: str) -> str:
    """``text`` with its bidirectional control characters shown as ``<U+202E>`` markers.

    For SVG labels, where ``<bdi>`` does not exist: a right-to-left override in a name can then
    neither reverse the text around it nor hide what it does.
    """
    if not _BIDI.intersection(text):
        return text
    return "".join(f"<U+{ord(ch):04X}>" if ch in _BIDI else ch for ch in text)


class Clock:
    """Formats and parses times in the dashboard's time zone, always naming the zone.

    Args:
        zone: An IANA zone name (``Europe/Paris``, ``UTC``); ``None``: the server's zone.

    Raises:
        ConfigurationError: The zone is unknown.
    """

    def __init__(self, zone: str | None = None) -> None:
        self.tz: dt.tzinfo | None = None
        if zone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415 - rarely set

            try:
                self.tz = ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ConfigurationError(
                    f"timezone={zone!r} is not a time zone name such as 'UTC' or 'Europe/Paris'"
                ) from exc

    def moment(self, timestamp: float) -> dt.datetime:
        """A Unix time as an aware datetime in the dashboard's zone."""
        return dt.datetime.fromtimestamp(timestamp, self.tz).astimezone(self.tz)

    @property
    def zone(self) -> str:
        """The zone's abbreviation now (``UTC``, ``CEST``)."""
        return dt.datetime.now(self.tz).astimezone(self.tz).strftime("%Z")

    def text(self, timestamp: float | None) -> str:
        """``2024-05-01 10:00:00 CEST`` (``-`` for none)."""
        if timestamp is None:
            return "-"
        return self.moment(timestamp).strftime("%Y-%m-%d %H:%M:%S %Z")

    def html(self, timestamp: float | None) -> Markup:
        """A ``<time>`` element: the time with its zone, the exact UTC time on hover."""
        if timestamp is None:
            return Markup("-")
        utc = dt.datetime.fromtimestamp(timestamp, dt.UTC)
        return Markup('<time datetime="{0}" title="{1}">{2}</time>').format(
            utc.isoformat(timespec="milliseconds"),
            utc.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
            self.text(timestamp),
        )

    def form(self, timestamp: float | None) -> str:
        """A Unix time for a ``datetime-local`` input (minutes, the dashboard's zone)."""
        if timestamp is None:
            return ""
        return self.moment(timestamp).strftime("%Y-%m-%dT%H:%M")

    def parse(self, value: str | None) -> float | None:
        """Parse a ``datetime-local`` value (the dashboard's zone) or an ISO time with a zone.

        Raises:
            ValueError: The value is not a date or time.
        """
        if not value:
            return None
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.tz) if self.tz is not None else parsed.astimezone()
        return parsed.timestamp()

    def bucket_label(self, start: float, width: float) -> str:
        """The axis label of a time bucket starting at ``start``."""
        moment = self.moment(start)
        if width >= DAY:
            return moment.strftime("%m-%d")
        if width >= HOUR:
            return moment.strftime("%m-%d %Hh")
        return moment.strftime("%H:%M")


def age(seconds: float) -> str:
    """How long something has waited, in words (``3 h 12 min``)."""
    seconds = max(0.0, seconds)
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 1:
        return f"{minutes} min"
    days, hours = divmod(hours, 24)
    if days < 1:
        return f"{hours} h {minutes} min"
    return f"{days} d {hours} h"


@dataclass(frozen=True, slots=True)
class Payload:
    """A JSON value ready to show: its pretty text and whether to collapse it.

    Attributes:
        text: Indented JSON (or ``repr`` for a value JSON cannot show), at most
            :data:`SHOWN_AT_MOST` characters.
        collapsed: Whether it is long enough to start collapsed.
        summary: A one-line start of it, for the collapsed view.
        cut: Characters left out of ``text`` (0: it is whole).
    """

    text: str
    collapsed: bool
    summary: str
    cut: int = 0


def payload(value: Any) -> Payload:
    """Pretty-print a decoded ledger value (escaping is the template's job)."""
    try:
        flat = json.dumps(value, ensure_ascii=False, default=str)
        text = flat
        if len(flat) > ONE_LINE:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        flat = text = repr(value)
    size = len(text)
    summary = flat if len(flat) <= ONE_LINE else f"{flat[: ONE_LINE - 1]}… ({size:,} chars)"
    cut = max(0, size - SHOWN_AT_MOST)
    return Payload(text[:SHOWN_AT_MOST], size > COLLAPSE_AT, summary, cut)


def fields(value: Any) -> list[tuple[str, Payload]]:
    """Top-level fields of a mapping (each shown and collapsed on its own), else one field."""
    if isinstance(value, dict):
        return [(str(key), payload(item)) for key, item in sorted(value.items(), key=str)]
    return [("value", payload(value))]


def time_series(
    rows: Sequence[RunStats],
    *,
    since: float,
    bucket: float,
    buckets: int,
    clock: Clock,
    unpriced: Sequence[UnpricedCount] = (),
) -> dict[str, Any]:
    """Chart series from run stats: outcomes, tokens, cost per bucket; classes and cost per agent.

    ``totals`` separates root failures (a class other than ``cascade``) from contained ones
    (``cascade``: skipped or stopped by an upstream failure or an open breaker), and counts the
    runs whose cost is only a lower bound (``unpriced``: a model call had no price).
    """
    labels = [clock.bucket_label(since + i * bucket, bucket) for i in range(buckets)]
    outcomes = {name: [0] * buckets for name in OUTCOMES}
    tokens = {"input": [0] * buckets, "output": [0] * buckets}
    cost = {"cost": [0.0] * buckets}
    by_agent: dict[str, dict[str, float]] = {}
    spend: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = dict.fromkeys(
        (
            *("runs", "failed", "root", "contained", "retries", "tokens", "cost"),
            *("unpriced_runs", "unpriced_calls"),
        ),
        0,
    )
    for row in rows:
        i = min(max(row.bucket, 0), buckets - 1)
        outcomes[outcome(row.status, row.error_class)][i] += row.runs
        tokens["input"][i] += row.input_tokens
        tokens["output"][i] += row.output_tokens
        cost["cost"][i] += row.cost_usd
        for key, value in (
            ("runs", row.runs),
            ("retries", row.retries),
            ("tokens", row.input_tokens + row.output_tokens),
            ("cost", row.cost_usd),
        ):
            totals[key] += value
        agent_spend = spend.setdefault(
            row.agent, dict.fromkeys(("runs", "tokens", "cost", "unpriced_calls"), 0.0)
        )
        agent_spend["runs"] += row.runs
        agent_spend["tokens"] += row.input_tokens + row.output_tokens
        agent_spend["cost"] += row.cost_usd
        if row.error_class:
            totals["failed"] += row.runs
            totals["contained" if row.error_class == CONTAINED else "root"] += row.runs
            agent = by_agent.setdefault(row.agent, {})
            agent[row.error_class] = agent.get(row.error_class, 0) + row.runs

    for count in unpriced:
        totals["unpriced_runs"] += count.runs
        totals["unpriced_calls"] += count.calls
        if count.agent in spend:
            spend[count.agent]["unpriced_calls"] += count.calls

    def roots_first(item: tuple[str, dict[str, float]]) -> tuple[float, float]:
        counts = item[1]
        return (-sum(v for k, v in counts.items() if k != CONTAINED), -sum(counts.values()))

    return {
        "labels": labels,
        "starts": [since + i * bucket for i in range(buckets)],
        "outcomes": {name: values for name, values in outcomes.items() if any(values)},
        "tokens": tokens,
        "cost": cost,
        "by_agent": sorted(by_agent.items(), key=roots_first)[:15],
        "spend": sorted(spend.items(), key=lambda item: (-item[1]["cost"], item[0]))[:50],
        "totals": totals,
    }


def query_string(params: Mapping[str, Any], **changes: Any) -> str:
    """A URL query string from ``params`` with ``changes`` applied (empty values dropped).

    A value may be a list (a repeated parameter).
    """
    merged = {**params, **changes}
    return urlencode({key: value for key, value in merged.items() if value}, doseq=True)


def link(path: str, **params: Any) -> str:
    """``path`` with a query string of the non-empty ``params``."""
    query = query_string(params)
    return f"{path}?{query}" if query else path


def trace_link(template: str | None, run_id: str, trace_id: str | None, span_id: str | None) -> str:
    """The URL of a run's trace from the configured template, or ``""`` without one."""
    from urllib.parse import quote  # noqa: PLC0415 - only pages with a trace need it

    if template is None or not trace_id:
        return ""
    return template.format(
        trace_id=quote(trace_id, safe=""),
        span_id=quote(span_id or "", safe=""),
        run_id=quote(run_id, safe=""),
    )


def check_trace_url(template: str | None) -> str | None:
    """Validate a trace URL template.

    Raises:
        ConfigurationError: It is not an http(s) URL naming ``{trace_id}``, or it names other
            fields.
    """
    if template is None:
        return None
    bad = ConfigurationError(
        f"trace_url={template!r} must be an http(s) URL with a {{trace_id}} field (and "
        "optionally {span_id}, {run_id}), e.g. 'http://jaeger:16686/trace/{trace_id}'"
    )
    if not isinstance(template, str) or not template.startswith(("http://", "https://")):
        raise bad
    try:
        sample = template.format(trace_id="t", span_id="s", run_id="r")
    except (KeyError, IndexError, ValueError) as exc:
        raise bad from exc
    if "{trace_id}" not in template or "{" in sample:
        raise bad
    return template
