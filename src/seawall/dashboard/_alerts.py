"""The alert pages: drift (with its evidence) apart from operational alerts, and their answers.

A drift alert's ``details`` carry its evidence: the test and its p-value, the PSI (the effect
size), and the reference and recent distributions. Keys this page does not know (other kinds of
drift, later versions) are shown as they are, so no evidence is ever hidden.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool

from seawall.dashboard import _charts, _views
from seawall.dashboard._state import render, state

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from seawall.ledger import AlertAck, AlertRecord, AlertSilence, Store

OPERATIONAL: Final = ("breaker_open", "dlq_growth", "handoff_waiting", "run_overdue")
"""Alerts about the machinery (breakers, queues, stuck runs), shown apart from drift."""
EVIDENCE_KEYS: Final = (
    "test",
    "p_value",
    "alpha",
    "psi",
    "reference",
    "current",
    "reference_n",
    "current_n",
)
PAGE: Final = 50
SILENCE_FOR: Final = {"1h": 3600.0, "4h": 4 * 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
"""How long a silence may last, as offered on the page."""
STATES: Final = ("open", "acknowledged", "silenced", "all")
_SHARE_TOLERANCE: Final = 0.02


def drift_kinds() -> tuple[str, ...]:
    """Every alert kind that is not operational (``drift``, and any kind added since)."""
    from seawall.observe.alerts import KINDS  # noqa: PLC0415 - the list may grow

    return tuple(k for k in KINDS if k not in OPERATIONAL)


def effect(psi: float | None) -> str:
    """The size of a shift in words, from its PSI (0.1 moderate, 0.25 large)."""
    if psi is None or not math.isfinite(psi):
        return "unknown"
    if psi >= 0.25:  # noqa: PLR2004 - the PSI's usual bands
        return "large"
    if psi >= 0.1:  # noqa: PLR2004
        return "moderate"
    return "small"


def _numbers(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        return None
    return {str(k): float(v) for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a drift alert rests on, ready to show.

    Attributes:
        test: The two-sample test (``chi2``, ``ks``, ``psi``...).
        p_value: Its p-value (``None``: not computed).
        alpha: The p-value below which the shift was not taken for noise.
        psi: The population stability index: the effect size.
        size: The effect size in words.
        reference_n: Runs in the reference window.
        current_n: Runs in the recent window.
        shares: Whether the distributions are category shares (drawn as bars), else numbers
            such as quantiles (shown as a table).
        reference: The reference distribution.
        current: The recent distribution.
        chart: The two distributions drawn (shares only).
        other: Every other detail, as field and pretty value.
    """

    test: str | None
    p_value: float | None
    alpha: float | None
    psi: float | None
    size: str
    reference_n: Any
    current_n: Any
    shares: bool
    reference: dict[str, float]
    current: dict[str, float]
    chart: Any
    other: list[tuple[str, _views.Payload]] = field(default_factory=list)


def evidence(alert: AlertRecord) -> Evidence:
    """Shape an alert's details (its statistic as the PSI when the details lack one)."""
    details = dict(alert.details or {})
    reference = _numbers(details.get("reference")) or {}
    current = _numbers(details.get("current")) or {}
    if details.get("reference") and not reference:  # not numbers: shown as they are
        details["reference (raw)"] = details.pop("reference")
    if details.get("current") and not current:
        details["current (raw)"] = details.pop("current")
    shares = bool(reference or current) and all(
        0 <= v <= 1 for v in (*reference.values(), *current.values())
    )
    shares = shares and all(
        abs(sum(side.values()) - 1) <= _SHARE_TOLERANCE for side in (reference, current) if side
    )
    psi = details.get("psi", alert.statistic if alert.kind == "drift" else None)
    psi = float(psi) if isinstance(psi, int | float) else None
    title = f"{alert.feature or 'value'}: reference and recent distributions"
    return Evidence(
        test=details.get("test"),
        p_value=details.get("p_value") if isinstance(details.get("p_value"), int | float) else None,
        alpha=details.get("alpha") if isinstance(details.get("alpha"), int | float) else None,
        psi=psi,
        size=effect(psi),
        reference_n=details.get("reference_n"),
        current_n=details.get("current_n"),
        shares=shares,
        reference=reference,
        current=current,
        chart=_charts.distribution(reference, current, title=title) if shares else None,
        other=[
            (key, _views.payload(value))
            for key, value in sorted(details.items())
            if key not in EVIDENCE_KEYS
        ],
    )


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert with what operators said of it.

    Attributes:
        alert: The alert.
        ack: Its acknowledgement, if any.
        silence: The silence muting it, if any.
        evidence: Its evidence (drift alerts).
    """

    alert: AlertRecord
    ack: AlertAck | None
    silence: AlertSilence | None
    evidence: Evidence | None

    @property
    def state(self) -> str:
        """``acknowledged``, ``silenced`` or ``open``."""
        if self.ack is not None:
            return "acknowledged"
        return "silenced" if self.silence is not None else "open"


def views(store: Store, alerts: list[AlertRecord], *, with_evidence: bool) -> list[AlertView]:
    """The alerts with their acknowledgements and silences (and evidence)."""
    if not alerts:
        return []
    acks = store.alert_acks([a.alert_id for a in alerts])
    silences = store.list_silences(ending_after=min(a.at for a in alerts), limit=500)
    return [
        AlertView(
            alert=a,
            ack=acks.get(a.alert_id),
            silence=next((s for s in silences if s.mutes(a)), None),
            evidence=evidence(a) if with_evidence else None,
        )
        for a in alerts
    ]


def newest(
    store: Store,
    kinds: tuple[str, ...],
    *,
    agent: str | None = None,
    since: float | None = None,
    acknowledged: bool | None = None,
    limit: int = PAGE,
) -> list[AlertRecord]:
    """The newest alerts of any of ``kinds`` (one indexed query per kind), newest first."""
    found: list[AlertRecord] = []
    for kind in kinds:
        found += store.list_alerts(
            agent=agent, kind=kind, since=since, limit=limit, acknowledged=acknowledged
        )
    return sorted(found, key=lambda a: (a.at, a.alert_id), reverse=True)[:limit]


def open_alerts(
    store: Store, kinds: tuple[str, ...], *, since: float | None = None, limit: int = PAGE
) -> list[AlertView]:
    """Alerts of ``kinds`` nobody acknowledged or silenced, newest first."""
    found = newest(store, kinds, since=since, acknowledged=False, limit=limit)
    return [v for v in views(store, found, with_evidence=True) if v.state == "open"]


def _page_data(app: Any, kinds: tuple[str, ...], agent: str | None, shown: str) -> dict[str, Any]:
    store = app.store
    acknowledged = {"open": False, "acknowledged": True}.get(shown)
    found = newest(store, kinds, agent=agent, acknowledged=acknowledged, limit=200)
    listed = views(store, found, with_evidence=True)
    if shown in ("open", "silenced"):
        listed = [v for v in listed if v.state == shown]
    return {
        "alerts": listed[:PAGE],
        "more": len(listed) > PAGE,
        "silences": store.list_silences(ending_after=time.time()),
        "agents": store.agent_names(),
    }


async def _alerts_page(request: Request, *, kinds: tuple[str, ...], title: str) -> Response:
    agent = request.query_params.get("agent") or None
    shown = request.query_params.get("state", "open")
    if shown not in STATES:
        shown = "open"
    data = await run_in_threadpool(_page_data, state(request).reader, kinds, agent, shown)
    return render(
        request,
        "alerts.html",
        title=title,
        kinds=kinds,
        agent=agent or "",
        shown=shown,
        states=STATES,
        silence_for=list(SILENCE_FOR),
        **data,
    )


async def drift(request: Request) -> Response:
    """Drift alerts with their evidence; operators acknowledge or silence them."""
    return await _alerts_page(request, kinds=drift_kinds(), title="Drift")


async def operational(request: Request) -> Response:
    """Operational alerts: breakers opened, DLQ growth, hand-offs waiting, overdue runs."""
    return await _alerts_page(request, kinds=OPERATIONAL, title="Operational alerts")
