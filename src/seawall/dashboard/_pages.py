"""The dashboard's run pages (GET): overview, runs, run detail, errors by signature, metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from seawall import ErrorClass, RunStatus
from seawall.dashboard import _alerts, _charts, _signatures, _views
from seawall.dashboard._state import render, state
from seawall.errors import SeawallError
from seawall.ledger import LATENCY_BOUNDS, RunQuery

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from seawall import Seawall, Step
    from seawall.ledger import (
        AttemptRecord,
        RunRecord,
        StepLatency,
        StepRecord,
        StepResolution,
    )

PAGE_SIZE: Final = 50
MAX_STEPS: Final = 500
"""Steps shown on a run's page (timeline and table); the CLI's ``show --json`` has them all."""
MAX_ERROR_ROWS: Final = 5000
"""Error counts read for the errors page (the largest first)."""


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def _window(request: Request) -> str:
    window = request.query_params.get("range", _views.DEFAULT_RANGE)
    if window not in _views.RANGES:
        raise _bad(f"range must be one of {', '.join(_views.RANGES)}")
    return window


def _start(window: str, now: float) -> tuple[float, float, int]:
    """The range's first bucket start, the bucket width and the bucket count."""
    span, bucket = _views.RANGES[window]
    return (now // bucket + 1) * bucket - span, bucket, round(span / bucket)


# -- overview -------------------------------------------------------------------------------


def _overview_data(
    app: Seawall, window: str, agent: str | None, clock: _views.Clock
) -> dict[str, Any]:
    since, bucket, buckets = _start(window, time.time())
    store = app.store
    stats = store.run_stats(since=since, bucket_seconds=bucket, agent=agent)
    series = _views.time_series(
        stats,
        since=since,
        bucket=bucket,
        buckets=buckets,
        clock=clock,
        unpriced=store.unpriced_usage(since=since, agent=agent),
    )
    latency = store.step_latency(bounds=LATENCY_BOUNDS, since=since, agent=agent)
    breakers = store.list_breakers()
    backlog = store.backlog()
    drift_open = _alerts.open_alerts(store, _alerts.drift_kinds(), limit=200)
    operational_open = _alerts.open_alerts(store, _alerts.OPERATIONAL, limit=200)
    starts = series["starts"]
    scope = {"agent": agent, "since": clock.form(since)}

    def bucket_runs(i: int, name: str) -> str:
        since_i, until_i = clock.form(starts[i]), clock.form(starts[i] + bucket)
        filters = _views.series_filter(name)
        return _views.link("/runs", agent=agent, since=since_i, until=until_i, **filters)

    def agent_runs(row: int, name: str) -> str:
        filters = {"error_class": name} if name else {}
        return _views.link("/runs", **{**scope, "agent": series["by_agent"][row][0]}, **filters)

    return {
        "series": series,
        "since": since,
        "scope": scope,
        "roots": list(_views.ROOT_CLASSES),
        "charts": {
            "outcomes": _charts.stacked_bars(
                series["labels"],
                series["outcomes"],
                title="Runs over time by outcome",
                width=1300,
                height=240,
                href=bucket_runs,
            ),
            "classes": _charts.horizontal_bars(
                series["by_agent"],
                title="Failure classes by agent",
                series=[c.value for c in ErrorClass],
                href=agent_runs,
            ),
            "tokens": _charts.stacked_bars(
                series["labels"], series["tokens"], title="Tokens over time", href=bucket_runs
            ),
            "cost": _charts.stacked_bars(
                series["labels"],
                series["cost"],
                title="Cost over time (USD)",
                prefix="$",
                href=bucket_runs,
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
        "drift": drift_open,
        "operational": operational_open,
        "agents": store.agent_names(),
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


async def _ranged(
    request: Request,
    compute: Callable[[Seawall, str, str | None, _views.Clock], dict[str, Any]],
    template: str,
) -> Response:
    """A page over a time range and an agent: its data computed in a worker thread, rendered."""
    window = _window(request)
    agent = request.query_params.get("agent") or None
    shared = state(request)
    data = await run_in_threadpool(compute, shared.reader, window, agent, shared.clock)
    ranges = list(_views.RANGES)
    return render(request, template, window=window, ranges=ranges, agent=agent or "", **data)


async def overview(request: Request) -> Response:
    """Overview: what needs a person first, then outcomes, failures, cost and latency."""
    return await _ranged(request, _overview_data, "overview.html")


# -- cost -----------------------------------------------------------------------------------


def _cost_data(app: Seawall, window: str, agent: str | None, clock: _views.Clock) -> dict[str, Any]:
    since, bucket, buckets = _start(window, time.time())
    store = app.store
    stats = store.run_stats(since=since, agent=agent)
    unpriced = store.unpriced_usage(since=since, agent=agent)
    series = _views.time_series(
        stats, since=since, bucket=bucket, buckets=buckets, clock=clock, unpriced=unpriced
    )
    return {
        "series": series,
        "scope": {"agent": agent, "since": clock.form(since)},
        "models": store.usage_by_model(since=since, agent=agent),
        "agents": store.agent_names(),
    }


async def cost(request: Request) -> Response:
    """Cost by agent and by model over a range; unpriced calls counted, never taken as $0."""
    return await _ranged(request, _cost_data, "cost.html")


# -- runs -----------------------------------------------------------------------------------


def _run_query(request: Request, clock: _views.Clock) -> tuple[RunQuery, dict[str, Any]]:
    names = ("agent", "status", "since", "until", "q", "top", "retried")
    params: dict[str, Any] = {
        name: value for name in names if (value := request.query_params.get(name, "").strip())
    }
    classes = [c for c in request.query_params.getlist("error_class") if c.strip()]
    if classes:
        params["error_class"] = classes
    try:
        status = RunStatus(params["status"]) if "status" in params else None
        error_classes = tuple(ErrorClass(c) for c in classes)
        since = clock.parse(params.get("since"))
        until = clock.parse(params.get("until"))
        before = None
        if cursor := request.query_params.get("before"):
            stamp, _, run_id = cursor.partition(":")
            before = (float(stamp), run_id)
    except ValueError as exc:
        raise _bad(f"bad filter: {exc}") from exc
    query = RunQuery(
        status=status,
        agent=params.get("agent"),
        error_class=error_classes[0] if len(error_classes) == 1 else None,
        error_classes=error_classes if len(error_classes) > 1 else (),
        since=since,
        until=until,
        search=params.get("q"),
        before=before,
        limit=PAGE_SIZE + 1,
        top_level=params.get("top") == "1",
        retried=params.get("retried") == "1",
    )
    return query, params


def _runs_data(app: Seawall, query: RunQuery) -> tuple[list[RunRecord], list[str]]:
    return app.store.list_runs(query), app.store.agent_names()


async def runs(request: Request) -> Response:
    """The runs table: filters, and keyset paging (no offsets) that stays fast on deep pages."""
    shared = state(request)
    query, params = _run_query(request, shared.clock)
    found, agents = await run_in_threadpool(_runs_data, shared.reader, query)
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
        classes_chosen=params.get("error_class", []),
        older=older,
        paged=query.before is not None,
        statuses=_views.STATUSES,
        classes=_views.ERROR_CLASSES,
        agents=agents,
    )


# -- run detail -----------------------------------------------------------------------------


def _detail(app: Seawall, run_id: str, trace_url: str | None) -> dict[str, Any]:
    store = app.store
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"No run {run_id!r} in this ledger.")
    steps = app.ledger.steps(run_id)
    attempts = store.list_attempts(run_id)
    spans = _timeline(run, attempts, steps[:MAX_STEPS])
    children = store.list_runs(RunQuery(parent_run_id=run_id, limit=500))
    replays = store.list_runs(RunQuery(replay_of=run_id, limit=50))
    try:
        inputs: Any = app.ledger.inputs(run_id)
    except SeawallError as exc:
        inputs = {"unavailable": exc.message}
    output = app.ledger.output(run_id)
    resolutions = store.list_resolutions(run_id)
    return {
        "run": run,
        "trace": _views.trace_link(trace_url, run.run_id, run.trace_id, run.span_id),
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
        "in_doubt": _unresolved(run, steps, resolutions),
        "resolutions": resolutions,
        "inputs": inputs,
        "output": output,
        "dag": _dag(app, run, children),
    }


def _unresolved(
    run: RunRecord, steps: list[Step], resolutions: list[StepResolution]
) -> list[StepRecord]:
    """The side effects of an ended run left in doubt that no operator resolved yet."""
    if not run.status.final:
        return []
    done = {r.seq for r in resolutions}
    return [
        s.record
        for s in steps
        if s.record.mutating
        and s.record.status == "started"
        and s.record.kind != "run"
        and s.record.seq not in done
    ]


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
    shared = state(request)
    data = await run_in_threadpool(_detail, shared.reader, run_id, shared.trace_url)
    return render(request, "run.html", **data)


# -- errors by signature --------------------------------------------------------------------


def _errors_data(
    app: Seawall, window: str, agent: str | None, clock: _views.Clock
) -> dict[str, Any]:
    since, bucket, buckets = _start(window, time.time())
    counts = app.store.error_counts(
        since=since, bucket_seconds=bucket, agent=agent, limit=MAX_ERROR_ROWS
    )
    groups = _signatures.group_errors(counts, buckets)
    rows = []
    for group in groups[:200]:
        agents = list(group.agents)
        trend = _charts.sparkline(group.trend, title=f"{group.runs} runs over the range")
        search = _views.link(
            "/runs",
            q=group.fragment,
            error_class=group.error_class,
            agent=agents[0] if len(agents) == 1 else agent,
            since=clock.form(since),
        )
        last = group.last_bucket
        rows.append((group, trend, search, since + last * bucket if last >= 0 else None))
    return {
        "groups": rows,
        "partial": len(counts) >= MAX_ERROR_ROWS,
        "agents": app.store.agent_names(),
        "bucket": bucket,
    }


async def errors(request: Request) -> Response:
    """Errors grouped by signature (ids and numbers set aside), root failures first, with trend."""
    return await _ranged(request, _errors_data, "errors.html")


async def metrics(request: Request) -> Response:
    """Prometheus text exposition computed from the ledger."""
    from seawall.observe.prometheus import CONTENT_TYPE, exposition  # noqa: PLC0415 - lazy

    text = await run_in_threadpool(exposition, state(request).reader.store)
    return Response(text, media_type=CONTENT_TYPE)
