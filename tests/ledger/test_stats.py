"""Ledger aggregates for dashboards and metrics: run stats, step latency, backlog, run search."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from seawall import ErrorClass, From, Graph, Input, Retry, Seawall
from seawall.ledger import LATENCY_BOUNDS, RunQuery, StepLatency

LEDGERS = ("sqlite", "postgres")


def test_run_stats_buckets_by_time_agent_status_and_class(app: Seawall) -> None:
    """Runs land in their time bucket and group; without a width everything is bucket 0."""

    @app.agent(name="ok")
    def ok(ctx: object) -> int:
        return 1

    @app.agent(name="bad", retry=Retry(attempts=3))
    def bad(ctx: object) -> int:
        raise TimeoutError("slow")

    first = app.run("ok")
    app.run("ok")
    app.run("bad")
    since = app.ledger.run(first.run_id).start_time - 150
    rows = app.store.run_stats(since=since, bucket_seconds=100)
    assert {(1, "ok", "succeeded", None, 2, 0), (1, "bad", "failed", "clean_abort", 1, 2)} == {
        (r.bucket, r.agent, r.status, r.error_class, r.runs, r.retries) for r in rows
    }
    assert [0, 0] == [r.bucket for r in app.store.run_stats()]
    assert ["bad"] == [r.agent for r in app.store.run_stats(agent="bad")]
    assert [] == app.store.run_stats(until=since)
    with pytest.raises(ValueError, match="bucket_seconds"):
        app.store.run_stats(bucket_seconds=5)


def test_step_latency_histogram_and_quantiles(app: Seawall) -> None:
    """Finished tool calls are counted per tool in cumulative buckets."""

    @app.tool
    def lookup(key: str) -> str:
        return key

    @app.agent(name="reader")
    def reader(ctx: object, n: int) -> int:
        for i in range(n):
            ctx.call(lookup, str(i))  # type: ignore[attr-defined]
        return n

    app.run("reader", n=5)
    (row,) = app.store.step_latency(bounds=LATENCY_BOUNDS)
    assert ("tool", "lookup", 5, 0, 0) == (row.kind, row.name, row.calls, row.errors, row.retries)
    assert 5 == row.cumulative[-1]
    assert 5 == sum(row.counts)
    assert [] == app.store.step_latency(bounds=LATENCY_BOUNDS, agent="nobody")
    with pytest.raises(ValueError, match="ascending"):
        app.store.step_latency(bounds=(1.0, 0.5))


def test_quantile_interpolates_inside_the_bucket() -> None:
    """p50 of 10 calls split 5/5 over (0, 1] and (1, 2] is 1.0; p95 is 1.9."""
    row = StepLatency("tool", "t", 10, 0, 0, 12.0, (1.0, 2.0), (5, 10))
    assert 1.0 == row.quantile(0.5)
    assert pytest.approx(1.9) == row.quantile(0.95)
    assert (5, 5, 0) == row.counts
    assert StepLatency("tool", "t", 0, 0, 0, 0.0, (1.0,), (0,)).quantile(0.5) is None
    assert 1.0 == StepLatency("tool", "t", 2, 0, 0, 9.0, (1.0,), (0,)).quantile(0.5)


def test_list_runs_search_until_keyset_and_replay_of(app: Seawall) -> None:
    """Text search (wildcards literal), until, keyset paging and replay_of filter runs."""

    @app.agent(name="a", retry=Retry(attempts=1))
    def a(ctx: object, text: str) -> str:
        raise ValueError(text)

    ids = [app.run("a", text=t).run_id for t in ("100% sure", "under_score", "plain")]
    assert [ids[0]] == [r.run_id for r in app.store.list_runs(RunQuery(search="0% S"))]
    assert [ids[1]] == [r.run_id for r in app.store.list_runs(RunQuery(search="r_s"))]
    assert [] == app.store.list_runs(RunQuery(search="r%s"))
    newest_first = [r.run_id for r in app.store.list_runs(RunQuery())]
    assert list(reversed(ids)) == newest_first
    last = app.ledger.run(newest_first[0])
    assert newest_first[1:] == [
        r.run_id for r in app.store.list_runs(RunQuery(before=(last.start_time, last.run_id)))
    ]
    assert newest_first[1:] == [
        r.run_id for r in app.store.list_runs(RunQuery(until=last.start_time))
    ]
    assert [] == app.store.list_runs(RunQuery(replay_of=ids[0]))


def test_backlog_counts_dlq_and_handoffs(app: Seawall) -> None:
    """Pending DLQ entries are counted by agent and class."""

    @app.agent(name="a", retry=Retry(attempts=1))
    def a(ctx: object) -> str:
        raise ValueError("no")

    app.run("a")
    app.run("a")
    assert [("dlq", "a", "clean_abort", 2)] == [
        (q.queue, q.agent, q.label, q.count) for q in app.store.backlog()
    ]


def test_a_migration_merged_below_the_newest_is_still_applied(tmp_path: Path) -> None:
    """A ledger recorded at every version but 7 (merged later, numbered lower) gains 7."""
    import sqlite3

    from seawall.ledger import open_store

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        for name in (
            "runs_errors",
            "runs_by_agent_status",
            "runs_by_agent_class",
            "runs_by_replay",
        ):
            db.execute(f"DROP INDEX {name}")
        db.execute("DELETE FROM seawall_meta WHERE version = 7")
    open_store(url).close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert 1 == db.execute("SELECT count(*) FROM seawall_meta WHERE version = 7").fetchone()[0]
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"runs_errors", "runs_by_replay"} <= names


def test_agent_names_are_distinct_and_ordered(app: Seawall) -> None:
    """agent_names lists each agent with runs once, in order, up to the limit."""
    for name in ("zeta", "alpha", "mid"):
        app.agent(name=name)(lambda ctx: 1)
    for name in ("zeta", "alpha", "zeta", "mid"):
        app.run(name)
    assert ["alpha", "mid", "zeta"] == app.store.agent_names()
    assert ["alpha"] == app.store.agent_names(limit=1)


def test_unpriced_calls_and_usage_by_model(app: Seawall) -> None:
    """A run with an unpriced call counts as unpriced; usage by model sums known cost apart."""

    @app.agent(name="spender")
    def spender(ctx: Any, unpriced: bool) -> int:
        ctx.record_usage(model="m-known", input_tokens=100, output_tokens=10, cost_usd=0.5)
        if unpriced:
            ctx.record_usage(model="no-such-model-zz", input_tokens=7, output_tokens=None)
        return 1

    app.run("spender", unpriced=False)
    app.run("spender", unpriced=True)
    (row,) = app.store.run_stats()
    assert (2, 1.0) == (row.runs, row.cost_usd)  # the known part: a lower bound
    (unpriced,) = app.store.unpriced_usage()
    assert ("spender", 1, 1) == (unpriced.agent, unpriced.runs, unpriced.calls)
    assert [] == app.store.unpriced_usage(agent="nobody")
    models = app.store.usage_by_model()
    assert [("m-known", 2, 200, 20, 1.0, 0), ("no-such-model-zz", 1, 7, 0, 0.0, 1)] == [
        (m.model, m.calls, m.input_tokens, m.output_tokens, m.cost_usd, m.unpriced_calls)
        for m in models
    ]
    assert [] == app.store.usage_by_model(agent="nobody")
    assert [] == app.store.usage_by_model(since=time.time() + 60)


def test_error_counts_and_top_level_runs(app: Seawall) -> None:
    """Errors are counted by bucket and message; top-level runs exclude graph nodes."""

    @app.agent(name="a", retry=Retry(attempts=1))
    def a(ctx: object, n: int) -> str:
        raise ValueError(f"order {n} not found")

    @app.agent(name="after")
    def after(ctx: object, text: str) -> str:
        return text

    graph = Graph("flow")
    graph.add(a, name="first", inputs={"n": Input("n")})
    graph.add(after, name="second", inputs={"text": From("first")})
    app.graph(graph)
    lone = app.run("a", n=1).run_id
    app.run("a", n=1)
    flow = app.run(app.graphs["flow"], n=2).run_id
    since = app.ledger.run(lone).start_time - 1
    counts = app.store.error_counts(since=since, bucket_seconds=3600)
    by_message = {(c.agent, c.error_message): (c.bucket, c.error_type, c.runs) for c in counts}
    assert (0, "ValueError", 2) == by_message[("a", "order 1 not found")]
    assert (0, "ValueError", 1) == by_message[("a", "order 2 not found")]
    assert 2 == counts[0].runs  # largest first
    assert 1 == len(app.store.error_counts(since=since, bucket_seconds=3600, limit=1))
    assert {"after", "flow"} <= {c.agent for c in counts}  # the skipped node, the graph run
    top = {r.run_id for r in app.store.list_runs(RunQuery(top_level=True))}
    every = {r.run_id for r in app.store.list_runs(RunQuery())}
    assert {lone, flow} <= top
    assert 5 == len(every) - len(top) + 3  # two nodes are not top-level
    roots = RunQuery(error_classes=(ErrorClass.CLEAN_ABORT, ErrorClass.SILENT_DRIFT))
    assert 3 == len(app.store.list_runs(roots))  # the two lone runs and the first node
    assert [] == app.store.list_runs(RunQuery(retried=True))
    with pytest.raises(ValueError, match="bucket_seconds"):
        app.store.error_counts(since=since, bucket_seconds=0)
