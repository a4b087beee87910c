"""The embedded demo: an offline "research and publish" agent that meets real failures.

Everything runs locally on the SQLite ledger, with no network and no API key. The "model" is
a deterministic stand-in (clearly labelled as such) that produces text from the inputs.

Scenarios:

1. A flaky search index fails twice with a connection error: the tool's retry policy absorbs
   it inside the step and the run succeeds.
2. The agent itself fails transiently after publishing (a mutating, idempotent call): the
   next attempt serves every completed step from the journal, so the article is published
   exactly once.
3. Bad input: the agent raises a permanent error before any side effect; no retry, the run
   ends ``clean_abort``.
4. A child process is killed with SIGKILL in the middle of a run; ``resume`` takes the run
   over once its lease lapses and finishes it without repeating a published article.

Run it with ``seawall demo``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall import AsyncContext, Context, PermanentError, Retry, RunResult, Seawall

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL = "offline-demo-model (deterministic stand-in, not an LLM)"
DEMO_LEASE = 1.0
CRASH_AT_SECTION = 2


def build_app(ledger: str, workdir: Path) -> Demo:  # noqa: C901 - the demo's tools live here
    """Build the demo app: tools write into ``workdir``; the ledger is ``ledger``."""
    workdir.mkdir(parents=True, exist_ok=True)
    published = workdir / "published.jsonl"
    crash_marker = workdir / "crash-once"
    flaky = {"left": 0}
    app = Seawall(ledger, lease=DEMO_LEASE, retry=Retry(attempts=3, initial=0.05, max_delay=0.2))

    @app.tool(retry=Retry(attempts=4, initial=0.02, max_delay=0.1))
    def search(topic: str) -> list[dict[str, str]]:
        """A local document index; fails while ``flaky['left']`` > 0."""
        if flaky["left"] > 0:
            flaky["left"] -= 1
            raise ConnectionError("search index unreachable (injected by the demo)")
        return [
            {
                "title": f"{topic}: a field guide",
                "snippet": f"What practitioners know about {topic}.",
            },
            {"title": f"Failures of {topic}", "snippet": f"Where {topic} breaks, and why."},
        ]

    @app.tool
    def model(prompt: str) -> dict[str, Any]:
        """The offline model stand-in: deterministic text and token counts."""
        words = prompt.split()
        text = " ".join(words[: min(len(words), 24)])
        return {
            "text": f"[{MODEL}] {text}",
            "usage": {"input_tokens": len(words) * 4, "output_tokens": 48},
        }

    @app.tool(mutating=True, idempotent=True)
    def publish(title: str, body: str, idempotency_key: str) -> dict[str, str]:
        """Append the article to the published log, once per idempotency key."""
        record = {"key": idempotency_key, "title": title, "words": len(body.split())}
        seen = set()
        if published.exists():
            seen = {json.loads(line)["key"] for line in published.read_text().splitlines()}
        if idempotency_key not in seen:
            with published.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        return {"url": f"file://published/{idempotency_key}"}

    failures = {"after_publish": 0}

    @app.agent(name="research")
    def research(ctx: Context, topic: str) -> dict[str, Any]:
        """Search, draft three sections with the model, publish, return the article's URL."""
        if not topic.strip():
            raise PermanentError("topic is empty: nothing to research")
        hits = ctx.call(search, topic)
        sections = []
        for index, hit in enumerate([*hits, {"title": "Summary", "snippet": topic}]):
            if index == CRASH_AT_SECTION and crash_marker.exists():  # scenario 4: die once, mid-run
                crash_marker.unlink()
                os.kill(os.getpid(), signal.SIGKILL)
            reply = ctx.call(model, f"Write about {hit['title']}: {hit['snippet']}")
            ctx.record_usage(model=MODEL, **reply["usage"], cost_usd=0.0)
            sections.append(reply["text"])
        receipt = ctx.call(publish, f"On {topic}", "\n\n".join(sections))
        if failures["after_publish"] > 0:
            failures["after_publish"] -= 1
            raise TimeoutError("the notification service timed out (injected by the demo)")
        return {"url": receipt["url"], "sections": len(sections), "drafted_at": ctx.now()}

    @app.agent(name="summarise")
    async def summarise(ctx: AsyncContext, topic: str) -> str:
        """An async agent: one model call."""
        reply = await ctx.call(model, f"Summarise {topic}")
        ctx.record_usage(model=MODEL, **reply["usage"], cost_usd=0.0)
        return str(reply["text"])

    return Demo(app=app, flaky=flaky, failures=failures, published=published)


@dataclass
class Demo:
    """The demo app and the knobs its scenarios turn."""

    app: Seawall
    flaky: dict[str, int]
    failures: dict[str, int]
    published: Path

    def published_keys(self) -> list[str]:
        """Idempotency keys of every article published so far (duplicates included)."""
        if not self.published.exists():
            return []
        return [json.loads(line)["key"] for line in self.published.read_text().splitlines()]


@dataclass(frozen=True)
class Scenario:
    """One scenario's outcome, for the summary table."""

    title: str
    recovery: str
    result: RunResult


def run_scenarios(
    ledger: str, workdir: Path, progress: Callable[[str], None]
) -> tuple[list[Scenario], Demo]:
    """Run the four scenarios against ``ledger``; ``progress`` is told what starts."""
    demo = build_app(ledger, workdir)
    app = demo.app
    scenarios: list[Scenario] = []

    progress("1/4 flaky search index (clean abort inside a step)")
    demo.flaky["left"] = 2
    result = app.run("research", topic="retries")
    scenarios.append(Scenario("flaky tool", "tool retried with backoff", result))

    progress("2/4 agent fails after publishing (partial write)")
    demo.failures["after_publish"] = 1
    result = app.run("research", topic="idempotency")
    scenarios.append(
        Scenario("failure after a side effect", "retry served journal; published once", result)
    )

    progress("3/4 bad input (permanent error)")
    result = app.run("research", topic="  ")
    scenarios.append(Scenario("bad input", "no retry: permanent", result))

    progress("4/4 process killed with SIGKILL mid-run, then resumed")
    subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "seawall._demo", "child", ledger, str(workdir)],
        check=False,
        capture_output=True,
    )
    time.sleep(DEMO_LEASE * 1.5)
    resumed = app.resume()
    crashed = [r for r in resumed if r.agent == "research"]
    if crashed:
        scenarios.append(Scenario("SIGKILL mid-run", "resumed from the journal", crashed[-1]))
    summary = app.run("summarise", topic="failure classes")
    scenarios.append(Scenario("async agent", "-", summary))
    return scenarios, demo


if __name__ == "__main__":  # pragma: no cover - the demo runs this in a child process
    if len(sys.argv) == 4 and sys.argv[1] == "child":  # noqa: PLR2004
        demo = build_app(sys.argv[2], Path(sys.argv[3]))
        (Path(sys.argv[3]) / "crash-once").touch()
        demo.app.run("research", topic="circuit breakers")
