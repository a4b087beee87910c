"""Pure helpers of the dashboard's pages: time ranges, filters, payload display, chart data."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from seawall._failures import ErrorClass, RunStatus

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from seawall.ledger import RunStats

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
OUTCOMES: Final = (
    "succeeded",
    "running",
    "pending",
    "awaiting_human",
    "cancelled",
    *(c.value for c in ErrorClass),
    "other",
)
"""Series of the runs-over-time chart: a run counts under its error class when it has one."""
STATUSES: Final = tuple(s.value for s in RunStatus)
ERROR_CLASSES: Final = tuple(c.value for c in ErrorClass)
COLLAPSE_AT: Final = 600
"""Pretty JSON longer than this many characters is shown collapsed."""
ONE_LINE: Final = 80
"""JSON this short is shown on one line; longer values are indented (and summarised)."""


def redacted(url: str) -> str:
    """A ledger URL fit to show: any password in it replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415 - used once per page

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


def local(timestamp: float | None) -> str:
    """Format a Unix time for people (local time, seconds)."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: str | None) -> float | None:
    """Parse a ``datetime-local`` form value (or any ISO time) as local time; ``None`` if empty.

    Raises:
        ValueError: The value is not a date or time.
    """
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.timestamp()


def form_time(timestamp: float | None) -> str:
    """Format a Unix time for a ``datetime-local`` input."""
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%dT%H:%M")


def bucket_label(start: float, width: float) -> str:
    """The axis label of a time bucket starting at ``start``."""
    moment = dt.datetime.fromtimestamp(start).astimezone()
    if width >= DAY:
        return moment.strftime("%m-%d")
    if width >= HOUR:
        return moment.strftime("%m-%d %Hh")
    return moment.strftime("%H:%M")


@dataclass(frozen=True, slots=True)
class Payload:
    """A JSON value ready to show: its pretty text and whether to collapse it.

    Attributes:
        text: Indented JSON (or ``repr`` for a value JSON cannot show).
        collapsed: Whether it is long enough to start collapsed.
        summary: A one-line start of it, for the collapsed view.
    """

    text: str
    collapsed: bool
    summary: str


def payload(value: Any) -> Payload:
    """Pretty-print a decoded ledger value (escaping is the template's job)."""
    try:
        flat = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
        text = flat
        if len(flat) > ONE_LINE:
            text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        flat = text = repr(value)
    summary = flat if len(flat) <= ONE_LINE else f"{flat[: ONE_LINE - 1]}… ({len(text):,} chars)"
    return Payload(text, len(text) > COLLAPSE_AT, summary)


def fields(value: Any) -> list[tuple[str, Payload]]:
    """Top-level fields of a mapping (each shown and collapsed on its own), else one field."""
    if isinstance(value, dict):
        return [(str(key), payload(item)) for key, item in sorted(value.items(), key=str)]
    return [("value", payload(value))]


def time_series(
    rows: Sequence[RunStats], *, since: float, bucket: float, buckets: int
) -> dict[str, Any]:
    """Chart series from run stats: outcomes, tokens and cost per bucket; classes per agent."""
    labels = [bucket_label(since + i * bucket, bucket) for i in range(buckets)]
    outcomes = {name: [0] * buckets for name in OUTCOMES}
    tokens = {"input": [0] * buckets, "output": [0] * buckets}
    cost = {"cost": [0.0] * buckets}
    by_agent: dict[str, dict[str, float]] = {}
    totals = {"runs": 0, "failed": 0, "retries": 0, "tokens": 0, "cost": 0.0}
    for row in rows:
        i = min(max(row.bucket, 0), buckets - 1)
        outcomes[outcome(row.status, row.error_class)][i] += row.runs
        tokens["input"][i] += row.input_tokens
        tokens["output"][i] += row.output_tokens
        cost["cost"][i] += row.cost_usd
        totals["runs"] += row.runs
        totals["retries"] += row.retries
        totals["tokens"] += row.input_tokens + row.output_tokens
        totals["cost"] += row.cost_usd
        if row.error_class:
            totals["failed"] += row.runs
            agent = by_agent.setdefault(row.agent, {})
            agent[row.error_class] = agent.get(row.error_class, 0) + row.runs
    return {
        "labels": labels,
        "outcomes": {name: values for name, values in outcomes.items() if any(values)},
        "tokens": tokens,
        "cost": cost,
        "by_agent": sorted(by_agent.items(), key=lambda item: -sum(item[1].values()))[:15],
        "totals": totals,
    }


def query_string(params: Mapping[str, str | None], **changes: str | None) -> str:
    """A URL query string from ``params`` with ``changes`` applied (empty values dropped)."""
    from urllib.parse import urlencode  # noqa: PLC0415 - only pages with links need it

    merged = {**params, **changes}
    return urlencode({key: value for key, value in merged.items() if value})
