"""An agent whose OpenAI calls are journaled LLM steps (seawall.integrations.openai).

Runs offline: with no OPENAI_API_KEY set, it starts a stand-in OpenAI-compatible endpoint on
127.0.0.1 that answers with a canned completion (and a 429 first, to show the retry). With
OPENAI_API_KEY (and optionally OPENAI_BASE_URL and OPENAI_MODEL) it talks to that endpoint.

    pip install 'seawall[openai]'
    python examples/openai_chat.py
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai

import seawall
from seawall.integrations.openai import wrap


class StandIn(BaseHTTPRequestHandler):
    """A canned chat-completions endpoint: the first request gets a 429 with Retry-After."""

    calls = 0

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        """Answer one request."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        StandIn.calls += 1
        if StandIn.calls == 1:
            status, body = 429, {"error": {"message": "rate limited"}}
        else:
            status, body = 200, {
                "id": "chatcmpl-demo",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Breakers stop cascades."},
                    }
                ],
                "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
            }
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "0.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Stay quiet."""


def main() -> None:
    """Run the agent once, then replay the run from the journal."""
    server = None
    if os.environ.get("OPENAI_API_KEY"):
        client = openai.OpenAI()
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="stand-in")
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

    with tempfile.TemporaryDirectory() as folder:
        app = seawall.Seawall(f"sqlite:///{Path(folder) / 'ledger.db'}")
        llm = wrap(client, app)

        @app.agent
        def explain(ctx: seawall.Context, topic: str) -> str:
            reply = llm.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"One line on {topic}."}]
            )
            return str(reply.choices[0].message.content)

        result = app.run(explain, topic="circuit breakers")
        print(result.status, repr(result.output), "tokens:", result.tokens_used)
        for step in app.ledger.steps(result.run_id):
            print(f"  step {step.record.seq}: {step.record.kind} {step.record.name}"
                  f" (tries: {step.record.tries})")
        before = StandIn.calls
        replayed = app.replay(result.run_id, mode="recorded")
        print(
            "recorded replay:",
            replayed.run.status,
            repr(replayed.run.output),
            "- model calls during the replay:",
            StandIn.calls - before,
        )
        app.close()
    client.close()
    if server is not None:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
