"""A ledger as an on-call engineer finds it at 3 a.m.: drift, a cascade, a DLQ, hand-offs.

Used by the browser tests and by ``make screenshots`` (``tests/dashboard/screenshots.py``).
Deterministic: a seeded random generator, no sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from seawall import Context, DriftWatch, From, Graph, Input, Retry, Seawall, verify

RTL_NAME = "invoice\u202egnp.exe"
"""An agent name with a right-to-left override: displayed raw, it would reverse its neighbours."""
LONG_NAME = "summarise_" + "very_long_agent_name_" * 14
"""An agent name of about 300 characters, with no space to wrap at."""
TRACE_URL = "http://jaeger.internal:16686/trace/{trace_id}"


@dataclass
class Scene:
    """What the scene recorded."""

    failed: str = ""
    graph: str = ""
    hostile: list[str] = field(default_factory=list)
    handoffs: int = 0


def build(app: Seawall, *, reference: int = 120, recent: int = 100) -> Scene:
    """Register the scene's agents on ``app`` and run them; return what to look at."""
    rng = random.Random(3)
    scene = Scene()
    share = {"refund": 0.15}

    @app.tool(llm=True)
    def complete(prompt: str, model: str = "gpt-4o-mini") -> str:
        return f"answer to {prompt[:20]}"

    @app.tool
    def lookup(order: int) -> dict[str, Any]:
        return {"order": order, "total": 10 + order % 7}

    @app.tool(mutating=True)
    def notify(text: str) -> int:
        return len(text)

    @app.agent(
        name="triage",
        drift=DriftWatch(
            decision="action",
            features=(),
            reference=reference,
            window=80,
            every=10,
            min_samples=40,
            confirm=2,
        ),
    )
    def triage(ctx: Context, ticket: int) -> dict[str, Any]:
        ctx.call(lookup, ticket)
        ctx.call(complete, f"ticket {ticket}", model="gpt-4o-mini")
        ctx.record_usage(model="gpt-4o-mini", input_tokens=420, output_tokens=60, cost_usd=0.0004)
        roll = rng.random()
        action = "refund" if roll < share["refund"] else "resolve"
        if action == "resolve" and rng.random() < 0.25:
            action = "escalate"
        return {"ticket": ticket, "action": action}

    @app.agent(name="fetch_orders", retry=Retry(attempts=2))
    def fetch_orders(ctx: Context, day: str) -> list[int]:
        ctx.call(lookup, 1)
        raise ConnectionError(f"orders-db 10.0.3.{rng.randrange(2, 250)}:5432 refused (day {day})")

    @app.agent(name="score")
    def score(ctx: Context, orders: list[int]) -> int:
        return len(orders)

    @app.agent(name="report")
    def report(ctx: Context, total: int) -> str:
        ctx.call(notify, f"total {total}")
        return "sent"

    @app.agent(
        name="writer",
        verify=[verify.rule(lambda out: out.get("tone") == "polite", "tone must be polite")],
        on_drift="handoff",
    )
    def writer(ctx: Context, customer: str) -> dict[str, Any]:
        ctx.call(complete, f"reply to {customer}", model="house-model-v2")
        ctx.record_usage(model="house-model-v2", input_tokens=900, output_tokens=300)
        return {"customer": customer, "tone": "curt", "text": f"Dear {customer}, no."}

    @app.agent(name=RTL_NAME, retry=Retry(attempts=1))
    def spoof(ctx: Context, n: int) -> str:
        raise ValueError(f"attachment {n} rejected")

    @app.agent(name=LONG_NAME)
    def long_named(ctx: Context, text: str) -> dict[str, Any]:
        return {"text": text, "blob": "x" * 100_000}

    pipeline = Graph("nightly_orders")
    pipeline.add(fetch_orders, name="fetch", inputs={"day": Input("day")})
    pipeline.add(score, name="score", inputs={"orders": From("fetch")})
    pipeline.add(report, name="report", inputs={"total": From("score")})
    app.graph(pipeline)

    for i in range(reference):
        app.run(triage, ticket=i)
        if i % 10 == 9:
            app.runtime.monitor.flush()
    share["refund"] = 0.38
    for i in range(reference, reference + recent):
        app.run(triage, ticket=i)
        if i % 10 == 9:
            app.runtime.monitor.flush()
    scene.failed = app.run(fetch_orders, day="adhoc").run_id
    for day in ("2025-03-01", "2025-03-02", "2025-03-03"):
        scene.graph = app.run(pipeline, day=day).run_id
    for customer in ("Ines", "Bjorn", "Chloé"):
        app.run(writer, customer=customer)
        scene.handoffs += 1
    scene.hostile.append(app.run(RTL_NAME, n=7).run_id)
    scene.hostile.append(app.run(LONG_NAME, text="<b>" + "wide" * 80 + "</b>").run_id)
    app.breakers.open("tool:lookup", reason="orders-db failover in progress (INC-4711)")
    app.store.set_trace(scene.failed, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    app.runtime.monitor.flush()
    return scene
