"""An app for operator tests, importable by a child process and by the CLI (`ops_app:app`)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from seawall import Context, Guards, Seawall, verify

WORK = Path(os.environ["SEAWALL_OPS_WORK"])
LEDGER = f"sqlite:///{WORK / 'ledger.db'}"

app = Seawall(LEDGER, lease=1.0, artifacts=WORK / "out", staging=WORK / "staging")


def _log(name: str, record: dict[str, Any]) -> None:
    with (WORK / name).open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def undo_delete(result: Any, item: int) -> None:
    _log("undo.log", {"item": item})


@app.tool(mutating=True, compensate=undo_delete)
def delete(item: int) -> int:
    _log("calls.log", {"item": item, "started": time.time()})
    time.sleep(0.05)
    return item


@app.agent(name="janitor", guards=Guards(max_mutations_without_gate=None))
def janitor(ctx: Context, items: int) -> int:
    for item in range(items):
        ctx.call(delete, item)
    return items


@app.agent(
    name="writer",
    verify=[verify.rule(lambda out: out.get("approved_by_rule"), "needs review")],
    on_drift="handoff",
)
def writer(ctx: Context, title: str) -> dict[str, Any]:
    ctx.artifacts.write_text("article.md", f"# {title}\n")
    return {"title": title, "approved_by_rule": False}


if __name__ == "__main__":
    agent = sys.argv[1]
    if agent == "janitor":
        print(app.run("janitor", items=int(sys.argv[2])).status.value, flush=True)
    else:
        print(app.run("writer", title=sys.argv[2]).status.value, flush=True)
    app.close()
