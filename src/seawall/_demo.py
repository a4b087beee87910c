"""The embedded demo: a "research → draft → review → publish" graph under a chaos plan.

Everything runs locally on the SQLite ledger with no network and no API key: the "model" is a
deterministic stand-in, clearly labelled as such. With ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``
set (or ``seawall demo --model NAME``), the model tool calls that OpenAI-compatible endpoint.

The chaos plan exercises the four failure classes:

- clean abort: the document store fails once (a transient error) and the call is retried;
- partial write: the notification tool's process is killed right after it notified, before the
  journal heard of it; the run resumes and the idempotent tool is re-issued with the same key;
- silent drift: the drafting agent returns a draft without sources; its verifier rejects it and
  the retry, which reads the verifier's feedback, cites them;
- cascade: research fails for good in one run; its dependents are not started (contained).

The module-level ``app`` and ``publish`` graph are what ``seawall chaos run`` imports in its child
processes; ``SEAWALL_DEMO_LEDGER`` and ``SEAWALL_DEMO_WORKDIR`` say where they live. Imported by
another command (``seawall replay RUN --app seawall._demo:app --ledger URL``), the app opens the
ledger that command names (``$SEAWALL_LEDGER``), else the CLI's default ledger.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from seawall import Context, From, Graph, Input, OnDrift, Retry, Seawall, verify
from seawall.ledger import DEFAULT_LEDGER_URL

OFFLINE_MODEL = "offline-stand-in (deterministic, not an LLM)"
MIN_BODY = 20
TOPICS = ("circuit breakers", "idempotency keys", "staging then commit", "dead-letter queues")

WORKDIR = Path(os.environ.get("SEAWALL_DEMO_WORKDIR", ".seawall/demo"))
LEDGER = (
    os.environ.get("SEAWALL_DEMO_LEDGER") or os.environ.get("SEAWALL_LEDGER") or DEFAULT_LEDGER_URL
)
MODEL = os.environ.get("SEAWALL_DEMO_MODEL") or os.environ.get("OPENAI_MODEL") or ""

app = Seawall(
    LEDGER,
    artifacts=WORKDIR / "published",
    staging=WORKDIR / "staging",
    retry=Retry(attempts=3, initial=0.02, max_delay=0.1),
)

_DOCUMENTS = {
    "circuit breakers": [
        "A breaker opens after repeated failures.",
        "It half-opens after a cooldown.",
    ],
    "idempotency keys": ["A key makes a retried call safe.", "Providers dedupe on it."],
    "staging then commit": ["Write to staging first.", "Publish all files at once."],
    "dead-letter queues": ["Failed work is parked with its input.", "Redrive it after a fix."],
}


@app.tool(retry=Retry(attempts=3, initial=0.01, max_delay=0.05))
def documents(topic: str) -> list[str]:
    """The local document store."""
    return _DOCUMENTS.get(topic, [f"Nothing on {topic} yet."])


@app.tool(retry=Retry(attempts=3, initial=0.05, max_delay=1.0))
def model(prompt: str) -> dict[str, Any]:
    """The model: an OpenAI-compatible endpoint when configured, else the offline stand-in."""
    base, key = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")
    if base and key and MODEL:
        body = json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the user's own configured endpoint
            base.rstrip("/") + "/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            answer = json.loads(response.read())
        usage = answer.get("usage") or {}
        return {
            "model": MODEL,
            "text": answer["choices"][0]["message"]["content"],
            "input_tokens": int(usage.get("prompt_tokens", 0)),
            "output_tokens": int(usage.get("completion_tokens", 0)),
        }
    words = prompt.split()
    return {
        "model": OFFLINE_MODEL,
        "text": " ".join(words[-30:]),
        "input_tokens": len(words) * 4 // 3,
        "output_tokens": 40,
    }


def _retract(result: Any, channel: str, message: str, idempotency_key: str) -> None:  # noqa: ARG001 - the compensation signature
    _log("retracted.jsonl", {"channel": channel, "key": idempotency_key})


@app.tool(mutating=True, idempotent=True, compensate=_retract)
def notify(channel: str, message: str, idempotency_key: str) -> str:
    """A notification service that dedupes on the idempotency key."""
    sent = _read("notified.jsonl")
    if idempotency_key not in {entry["key"] for entry in sent}:
        _log("notified.jsonl", {"channel": channel, "key": idempotency_key, "message": message})
    return f"notified {channel}"


def _log(name: str, entry: dict[str, Any]) -> None:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    with (WORKDIR / name).open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _read(name: str) -> list[dict[str, Any]]:
    path = WORKDIR / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _think(ctx: Context, prompt: str) -> str:
    reply = ctx.call(model, prompt)
    ctx.record_usage(
        model=reply["model"],
        input_tokens=reply["input_tokens"],
        output_tokens=reply["output_tokens"],
        cost_usd=0.0 if reply["model"] == OFFLINE_MODEL else None,
    )
    return str(reply["text"])


@app.agent
def research(ctx: Context, topic: str) -> dict[str, Any]:
    """Gather sources on a topic."""
    sources = ctx.call(documents, topic)
    return {"topic": topic, "sources": sources, "summary": _think(ctx, " ".join(sources))}


def _cites(draft: dict[str, Any]) -> bool:
    return bool(draft.get("sources")) and "[source]" in str(draft.get("body", ""))


@app.agent(
    verify=[verify.rule(_cites, "the draft must cite its sources with [source]")],
    on_drift=OnDrift(retries=2, then="quarantine"),
)
def draft(ctx: Context, notes: dict[str, Any]) -> dict[str, Any]:
    """Write a draft; a retry reads the verifier's feedback."""
    text = _think(ctx, f"Write about {notes['topic']}: {notes['summary']}")
    body = f"{text} [source] " + " ".join(notes["sources"])
    return {"title": notes["topic"].title(), "body": body, "sources": notes["sources"]}


@app.agent
def review(ctx: Context, draft: dict[str, Any]) -> dict[str, Any]:
    """A second look: a length check at a verification gate."""
    ctx.verify(
        draft["body"], verify.rule(lambda body: len(body) > MIN_BODY, "the draft is too short")
    )
    return {**draft, "reviewed": True}


@app.agent
def publish_article(ctx: Context, article: dict[str, Any]) -> str:
    """Stage the article (published atomically on success) and notify the team."""
    ctx.artifacts.write_text(
        f"{article['title']}.md", f"# {article['title']}\n\n{article['body']}\n"
    )
    ctx.call(notify, "#articles", f"Published: {article['title']}")
    return f"published {article['title']}"


publish = Graph("publish", max_concurrency=2)
publish.add(research, inputs={"topic": Input("topic")})
publish.add(draft, inputs={"notes": From("research")})
publish.add(review, inputs={"draft": From("draft")})
publish.add(publish_article, name="publish", inputs={"article": From("review")})
app.graph(publish)

PLAN = """
seed = 7

[[fault]]              # clean abort: the document store fails once; the call is retried
target = "tool:documents"
kind = "exception"
on_call = 1

[[fault]]              # silent drift: a draft without sources; the verifier rejects it
target = "agent:draft"
kind = "drift"
on_call = 2
value = { title = "Idempotency Keys", body = "trust me", sources = [] }

[[fault]]              # partial write: killed right after notifying, before the journal knew
target = "tool:notify"
kind = "crash_after_effect"
on_call = 3

[[fault]]              # cascade: research fails for good; its dependents are not started
target = "agent:research"
kind = "upstream"
on_call = 4
"""
