"""The dashboard's pages (GET): overview, runs, run detail, DLQ, breakers, hand-offs, drift."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from seawall._failures import ErrorClass, RunStatus
from seawall.dashboard import _charts, _views
from seawall.dashboard._state import render, state
from seawall.errors import SeawallError
from seawall.ledger import LATENCY_BOUNDS, DeadLetterQuery, RunQuery

if TYPE_CHECKING:
    from starlette.requests import Request

    from seawall import Seawall, Step
    from seawall.ledger import AttemptRecord, RunRecord, StepLatency, Store

PAGE_SIZE: Final = 50
MAX_STEPS: Final = 500
"""Steps shown on a run's page (timeline and table); the CLI's ``show --json`` has them all."""
NOT_AVAILABLE: Final = "drift detection not available in this ledger"


def _filters(request: Request, *names: str) -> dict[str, str]:
    """The non-empty query parameters among ``names``."""
    return {name: value for name in names if (value := request.query_params.get(name, "").strip())}


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def _alerts(
    store: Store, *, agent: str | None = None, since: float | None = None, limit: int = 100
) -> list[Any] | None:
    """Drift alerts, or ``None`` when this ledger's store has no alert table."""
    list_alerts = getattr(store, "list_alerts", None)
    if list_alerts is None:
        return None
    found: list[Any] = list_alerts(agent=agent, since=since, limit=limit)
    return found


def _alert_rows(alerts: list[Any]) -> list[dict[str, Any]]:
    """Alerts as ordered field/value mappings (their record type belongs to the drift store)."""
    rows = []
    for alert in alerts:
        if dataclasses.is_dataclass(alert) and not isinstance(alert, type):
            rows.append(dataclasses.asdict(alert))
        else:
            rows.append(dict(vars(alert)))
    return rows


# -- overview -------------------------------------------------------------------------------


def _overview_data(app: Seawall, window: str, agent: str | None) -> dict[str, Any]:
    span, bucket = _views.RANGES[window]
    now = time.time()
    since = (now // bucket + 1) * bucket - span
    store = app.store
    stats = store.run_stats(since=since, bucket_seconds=bucket, agent=agent)
    series = _views.time_series(stats, since=since, bucket=bucket, buckets=round(span / bucket))
    latency = store.step_latency(bounds=LATENCY_BOUNDS, since=since, agent=agent)
    breakers = store.list_breakers()
    backlog = store.backlog()
    alerts = _alerts(store, agent=agent, since=since, limit=5)
    return {
        "series": series,
        "charts": {
            "outcomes": _charts.stacked_bars(
                series["labels"],
                series["outcomes"],
                title="Runs over time by outcome",
                width=1300,
                height=240,
            ),
            "classes": _charts.horizontal_bars(
                series["by_agent"],
                title="Failure classes by agent",
                series=[c.value for c in ErrorClass],
            ),
            "tokens": _charts.stacked_bars(
                series["labels"], series["tokens"], title="Tokens over time"
            ),
            "cost": _charts.stacked_bars(
                series["labels"], series["cost"], title="Cost over time (USD)", prefix="$"
            ),
            "histogram": _histogram(latency),
        },
        "latency": [
            (row, row.quantile(0.5), row.quantile(0.95))
            for row in sorted(latency, key=lambda r: -r.calls)
        ],
        "open_breakers": [b for b in breakers if b.state != "closed"],
        "dlq_depth": sum(q.count for q in backlog if q.queue == "dlq"),
        "handoffs_waiting": sum(q.count for q in backlog if q.queue == "handoff"),
        "alerts": None if alerts is None else _alert_rows(alerts),
    }


def _histogram(latency: list[StepLatency]) -> Any:
    """One latency histogram over every tool and model call of the range."""
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    for row in latency:
        for i, count in enumerate(row.counts):
            counts[i] += count
    labels = [f"≤{_charts.duration_text(b)}" for b in LATENCY_BOUNDS] + [
        f">{_charts.duration_text(LATENCY_BOUNDS[-1])}"
    ]
    while len(counts) > 1 and counts[-1] == 0 and counts[-2] == 0:
        counts.pop()
        labels.pop()
    return _charts.stacked_bars(labels, {"calls": counts}, title="Call latency histogram")


async def overview(request: Request) -> Response:
    """Overview: outcomes over time, failure classes, cost, latency, what waits for a person."""
    window = request.query_params.get("range", _views.DEFAULT_RANGE)
    if window not in _views.RANGES:
        raise _bad(f"range must be one of {', '.join(_views.RANGES)}")
    agent = request.query_params.get("agent") or None
    data = await run_in_threadpool(_overview_data, state(request).reader, window, agent)
    return render(
        request,
        "overview.html",
        window=window,
        ranges=list(_views.RANGES),
        agent=agent or "",
        **data,
    )


# -- runs -----------------------------------------------------------------------------------


def _run_query(request: Request) -> tuple[RunQuery, dict[str, str]]:
    params = _filters(request, "agent", "status", "error_class", "since", "until", "q")
    try:
        status = RunStatus(params["status"]) if "status" in params else None
        error_class = ErrorClass(params["error_class"]) if "error_class" in params else None
        since = _views.parse_time(params.get("since"))
        until = _views.parse_time(params.get("until"))
        before = None
        if cursor := request.query_params.get("before"):
            stamp, _, run_id = cursor.partition(":")
            before = (float(stamp), run_id)
    except ValueError as exc:
        raise _bad(f"bad filter: {exc}") from exc
    query = RunQuery(
        status=status,
        agent=params.get("agent"),
        error_class=error_class,
        since=since,
        until=until,
        search=params.get("q"),
        before=before,
        limit=PAGE_SIZE + 1,
    )
    return query, params


async def runs(request: Request) -> Response:
    """The runs table: filters, and keyset paging (no offsets) that stays fast on deep pages."""
    query, params = _run_query(request)
    found = await run_in_threadpool(state(request).reader.store.list_runs, query)
    page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    older = None
    if more:
        last = page[-1]
        older = _views.query_string(params, before=f"{last.start_time!r}:{last.run_id}")
    return render(
        request,
        "runs.html",
        runs=page,
        params=params,
        older=older,
        paged=query.before is not None,
        statuses=_views.STATUSES,
        classes=_views.ERROR_CLASSES,
    )


# -- run detail -----------------------------------------------------------------------------


def _detail(app: Seawall, run_id: str) -> dict[str, Any]:
    store = app.store
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"No run {run_id!r} in this ledger.")
    steps = app.steps(run_id)
    attempts = store.list_attempts(run_id)
    spans = _timeline(run, attempts, steps[:MAX_STEPS])
    children = store.list_runs(RunQuery(parent_run_id=run_id, limit=500))
    replays = store.list_runs(RunQuery(replay_of=run_id, limit=50))
    try:
        inputs: Any = app.inputs_of(run_id)
    except SeawallError as exc:
        inputs = {"unavailable": exc.message}
    output = app.output_of(run_id)
    return {
        "run": run,
        "attempts": attempts,
        "steps": steps[:MAX_STEPS],
        "step_count": len(steps),
        "waterfall": _charts.waterfall(
            spans, total=run.duration or 0.0, title=f"Step timeline of run {run_id}"
        )
        if spans
        else None,
        "verdicts": store.list_verdicts(run_id),
        "artifacts": store.list_artifacts(run_id),
        "compensations": store.list_compensations(run_id),
        "handoffs": store.list_handoffs(run_id=run_id),
        "children": sorted(children, key=lambda r: r.start_time),
        "replays": replays,
        "inputs": inputs,
        "output": output,
        "dag": _dag(app, run, children),
    }


def _timeline(run: RunRecord, attempts: list[AttemptRecord], steps: list[Step]) -> list[Any]:
    """Waterfall rows: each attempt (its span and the backoff after it), then its steps."""
    by_attempt: dict[int, list[Step]] = {}
    for step in steps:
        by_attempt.setdefault(step.record.attempt, []).append(step)
    spans: list[_charts.Span] = []
    rows: list[AttemptRecord | None] = [*attempts] or [None]
    for attempt in rows:
        number = attempt.attempt if attempt is not None else 1
        if attempt is not None and len(attempts) > 1:
            end = attempt.end_time
            spans.append(
                _charts.Span(
                    label=f"attempt {number}",
                    start=attempt.start_time - run.start_time,
                    duration=None if end is None else end - attempt.start_time,
                    status=attempt.status,
                    note=f"then backoff {_charts.duration_text(attempt.retry_delay)}"
                    if attempt.retry_delay
                    else "",
                )
            )
        for step in by_attempt.pop(number, []):
            record = step.record
            spans.append(
                _charts.Span(
                    label=f"#{record.seq} {record.kind}"
                    + ("" if record.kind == record.name else f" {record.name}"),
                    start=record.start_time - run.start_time,
                    duration=record.duration,
                    status=record.status,
                    note=f"{record.tries} tries" if record.tries > 1 else "",
                )
            )
    return spans


def _dag(app: Seawall, run: RunRecord, children: list[RunRecord]) -> Any:
    """The DAG of a graph run (edges from the registered graph, else from skip records)."""
    nodes = [child for child in children if child.node is not None]
    if not nodes:
        return None
    graph = app.graphs.get(run.workflow or "")
    after: dict[str, tuple[str, ...]] = {}
    if graph is not None:
        after = {name: node.after for name, node in graph.nodes.items()}
    else:
        for child in nodes:
            blocked = (child.error or {}).get("blocked_by", [])
            after[child.node or ""] = tuple(str(b.get("node")) for b in blocked[:1])
    seen = {child.node: child for child in nodes}
    names = list(graph.nodes) if graph is not None else [c.node or "" for c in nodes]
    dag_nodes = [
        _charts.DagNode(
            name=name,
            status=seen[name].status.value if name in seen else "not started",
            href=f"/runs/{seen[name].run_id}" if name in seen else None,
            after=after.get(name, ()),
        )
        for name in names
    ]
    return _charts.dag(dag_nodes, title=f"Graph {run.workflow or ''}")


async def run_detail(request: Request) -> Response:
    """One run: fields, attempts, step timeline, payloads, verdicts, artifacts, links, DAG."""
    run_id = request.path_params["run_id"]
    data = await run_in_threadpool(_detail, state(request).reader, run_id)
    return render(request, "run.html", **data)


# -- operator queues ------------------------------------------------------------------------


async def dlq(request: Request) -> Response:
    """The dead-letter queue, filtered; operators select entries and redrive them."""
    params = _filters(request, "agent", "error_class", "status")
    status = params.get("status", "pending")
    try:
        query = DeadLetterQuery(
            agent=params.get("agent"),
            error_class=ErrorClass(params["error_class"]) if "error_class" in params else None,
            status=None if status == "any" else status,
            limit=500,
        )
    except ValueError as exc:
        raise _bad(f"bad filter: {exc}") from exc
    entries = await run_in_threadpool(state(request).reader.store.list_dead_letters, query)
    return render(
        request,
        "dlq.html",
        entries=entries,
        params=params,
        status=status,
        classes=_views.ERROR_CLASSES,
        outcomes=None,
    )


def _breaker_data(app: Seawall) -> list[tuple[Any, list[Any]]]:
    return [(b, app.store.breaker_events(b.name, 10)) for b in app.store.list_breakers()]


async def breakers(request: Request) -> Response:
    """Every breaker's state and recent transitions; operators reset them."""
    found = await run_in_threadpool(_breaker_data, state(request).reader)
    return render(request, "breakers.html", breakers=found)


def _handoff_data(app: Seawall) -> dict[str, Any]:
    waiting = app.store.list_handoffs(status="open", limit=200)
    outputs = {}
    for handoff in waiting:
        run = app.store.get_run(handoff.run_id)
        outputs[handoff.handoff_id] = (run, app.output_of(handoff.run_id))
    decided = [h for h in app.store.list_handoffs(limit=50) if h.status != "open"]
    return {"waiting": waiting, "outputs": outputs, "decided": decided}


async def handoffs(request: Request) -> Response:
    """Hand-offs waiting for a person (approve, edit, reject) and recent decisions."""
    data = await run_in_threadpool(_handoff_data, state(request).reader)
    return render(request, "handoffs.html", **data)


async def drift(request: Request) -> Response:
    """Drift alerts (when the ledger has the drift-alert table)."""
    agent = request.query_params.get("agent") or None
    alerts = await run_in_threadpool(_alerts, state(request).reader.store, agent=agent, limit=200)
    return render(
        request,
        "drift.html",
        alerts=None if alerts is None else _alert_rows(alerts),
        agent=agent or "",
        not_available=NOT_AVAILABLE,
    )


async def metrics(request: Request) -> Response:
    """Prometheus text exposition computed from the ledger."""
    from seawall.observe.prometheus import CONTENT_TYPE, exposition  # noqa: PLC0415 - lazy

    text = await run_in_threadpool(exposition, state(request).reader.store)
    return Response(text, media_type=CONTENT_TYPE)
