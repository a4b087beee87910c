"""A small app and a known workload for dashboard and metrics tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from seawall import Context, From, Graph, Input, Retry, Seawall, verify
from seawall.ledger import AlertRecord

XSS = "<script>alert('pwned')</script>"


@dataclass
class Seeded:
    """What the workload recorded: run ids by role."""

    ok: list[str] = field(default_factory=list)
    failed: str = ""
    xss: str = ""
    parked: str = ""
    graph: str = ""


def register(app: Seawall) -> None:
    """Register the workload's tools, agents and graph on ``app``."""

    @app.tool
    def search(query: str) -> list[str]:
        return [f"{query}-1", f"{query}-2"]

    @app.tool(llm=True)
    def complete(prompt: str, model: str = "m-1") -> str:
        return f"summary of {prompt}"

    @app.tool(mutating=True)
    def save(text: str) -> int:
        return len(text)

    @app.agent(name="researcher")
    def researcher(ctx: Context, topic: str) -> dict[str, Any]:
        hits = ctx.call(search, topic)
        ctx.call(complete, topic, model="m-1")
        ctx.record_usage(model="m-1", input_tokens=100, output_tokens=20, cost_usd=0.01)
        return {"topic": topic, "hits": hits, "long": "x" * 2000}

    @app.agent(name="flaky", retry=Retry(attempts=2))
    def flaky(ctx: Context, n: int) -> int:
        ctx.call(search, "flaky")
        raise TimeoutError(f"upstream timed out for n={n}")

    @app.agent(name="echo")
    def echo(ctx: Context, text: str) -> str:
        return text

    @app.agent(
        name="writer",
        verify=[verify.rule(lambda out: out.get("ok"), "needs review")],
        on_drift="handoff",
    )
    def writer(ctx: Context, title: str) -> dict[str, Any]:
        ctx.call(save, title)
        return {"title": title, "ok": False}

    @app.agent(name="fails_always", retry=Retry(attempts=1))
    def fails_always(ctx: Context, topic: str) -> str:
        raise ValueError("bad topic")

    @app.agent(name="summarise")
    def summarise(ctx: Context, text: str) -> str:
        return text

    graph = Graph("pipeline")
    graph.add(fails_always, name="research", inputs={"topic": Input("topic")})
    graph.add(summarise, name="summary", inputs={"text": From("research")})
    app.graph(graph)


def run_workload(app: Seawall) -> Seeded:
    """Run the known workload: 3 successes, 1 failure (2 attempts), 1 XSS echo, 1 hand-off, 1 graph."""
    seeded = Seeded()
    for topic in ("alpha", "beta", "gamma"):
        seeded.ok.append(app.run("researcher", topic=topic).run_id)
    seeded.failed = app.run("flaky", n=1).run_id
    seeded.xss = app.run("echo", text=XSS).run_id
    seeded.parked = app.run("writer", title="Draft").run_id
    seeded.graph = app.run(app.graphs["pipeline"], topic="t").run_id
    return seeded


DRIFT_EVIDENCE: dict[str, Any] = {
    "psi": 0.31,
    "p_value": 2e-7,
    "test": "chi2",
    "alpha": 1e-5,
    "reference": {"approve": 0.85, "refund": 0.15},
    "current": {"approve": 0.62, "refund": 0.38},
    "reference_n": 300,
    "current_n": 100,
}
"""The details of a drift alert, as ``seawall.observe.evaluation`` records them."""


def record_drift(
    app: Seawall, alert_id: str, details: dict[str, Any] | None = None, **fields: Any
) -> None:
    """Record a drift alert of the researcher's decision (``fields`` override its columns)."""
    values: dict[str, Any] = {
        "kind": "drift",
        "agent": "researcher",
        "feature": "decision",
        "statistic": 0.31,
        "threshold": 0.2,
        "window": "reference: the first 300 runs; current: the last 100 runs",
        "message": "agent 'researcher' drifted",
        "at": time.time(),
        **fields,
    }
    evidence = DRIFT_EVIDENCE if details is None else details
    app.store.record_alert(AlertRecord(alert_id=alert_id, details=evidence, **values))
