"""A small workflow for chaos tests: a search, two artifacts, an idempotent publish, a verifier.

Its ledger is a SQLite file beside it, or ``$SEAWALL_CHAOS_LEDGER``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from seawall import Context, OnDrift, Retry, Seawall, verify

WORK = Path(__file__).parent
app = Seawall(
    os.environ.get("SEAWALL_CHAOS_LEDGER", f"sqlite:///{WORK / 'ledger.db'}"),
    artifacts=WORK / "out",
    staging=WORK / "staging",
    retry=Retry(attempts=3, initial=0.01, max_delay=0.05),
    busy_timeout=1.0,
)


@app.tool(retry=Retry(attempts=3, initial=0.01))
def search(q: str) -> list[str]:
    return [q, q + " facts"]


@app.tool(mutating=True, idempotent=True)
def publish(title: str, idempotency_key: str) -> str:
    with (WORK / "published.log").open("a") as handle:
        handle.write(json.dumps({"key": idempotency_key, "title": title}) + "\n")
    return "ok"


@app.agent(
    verify=[verify.rule(lambda out: "facts" in out["body"], "must cite facts")],
    on_drift=OnDrift(retries=1, then="quarantine"),
)
def writer(ctx: Context, topic: str) -> dict:
    hits = ctx.call(search, topic)
    ctx.artifacts.write_text("a.md", "a")
    ctx.artifacts.write_text("b.md", "b")
    ctx.call(publish, topic)
    return {"body": " ".join(hits)}
