"""seawall.integrations.openai against a local HTTP server speaking the OpenAI JSON."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openai")

import openai
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import seawall
from seawall import IntegrationError, Retry, RunStatus, Seawall, ToolResponseError, UsageError
from seawall.integrations import _versions
from seawall.integrations.openai import SUPPORTED, wrap
from tests.integrations.fake_openai import FakeOpenAI, Reply, chat_completion, response_body

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_TOOL = "openai.chat.completions.create"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.script(Reply(body=chat_completion()))
        yield fake


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays the runtime decided (waits are off in tests; this records them)."""
    decided: list[float] = []
    monkeypatch.setattr(seawall._timing, "sleep", decided.append)

    async def asleep(delay: float) -> None:
        decided.append(delay)

    monkeypatch.setattr(seawall._timing, "asleep", asleep)
    return decided


def sync_client(server: FakeOpenAI, app: Seawall, **options: Any) -> openai.OpenAI:
    return wrap(
        openai.OpenAI(base_url=server.base_url, api_key="test", timeout=2.0), app, **options
    )


def async_client(server: FakeOpenAI, app: Seawall, **options: Any) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", timeout=2.0)
    return wrap(client, app, **options)


def chat_agent(app: Seawall, client: openai.OpenAI) -> Any:
    @app.agent(retry=Retry(attempts=1))
    def ask(ctx: seawall.Context, question: str) -> dict[str, Any]:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        assert isinstance(reply, ChatCompletion)
        return {"text": reply.choices[0].message.content, "id": reply.id}

    return ask


def usage_of(app: Seawall, run_id: str) -> list[dict[str, Any]]:
    return [step.request for step in app.ledger.steps(run_id) if step.record.kind == "usage"]


def llm_steps(app: Seawall, run_id: str) -> list[Any]:
    return [step for step in app.ledger.steps(run_id) if step.record.name == CHAT_TOOL]


def test_a_chat_call_in_a_run_is_one_journaled_step_with_its_usage(
    app: Seawall, server: FakeOpenAI
) -> None:
    """The call is journaled, returns a ChatCompletion, and its tokens land on the run."""
    ask = chat_agent(app, sync_client(server, app))
    result = app.run(ask, question="hi")
    assert RunStatus.SUCCEEDED == result.status
    assert {"text": "hello", "id": "chatcmpl-1"} == result.output
    [step] = llm_steps(app, result.run_id)
    assert "llm" == step.record.kind
    assert "gpt-4o-mini" == step.request[2]["model"]
    assert [12, 5] == [
        usage_of(app, result.run_id)[0][k] for k in ("input_tokens", "output_tokens")
    ]
    assert 17 == result.tokens_used
    record = app.ledger.run(result.run_id)
    assert (0, 0) == (record.unknown_usage_calls, record.unpriced_calls)
    assert 0 < (result.cost_usd or 0)  # priced from the maintained table (genai-prices)


def test_a_429_is_retried_after_the_wait_the_server_asked_for(
    app: Seawall, server: FakeOpenAI, waits: list[float]
) -> None:
    """Retry-After on a 429 sets the backoff; the step succeeds on its second try."""
    server.script(
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
        Reply(body=chat_completion("after the wait")),
    )
    ask = chat_agent(app, sync_client(server, app))
    result = app.run(ask, question="hi")
    assert "after the wait" == result.output["text"]
    assert [1.0] == waits
    assert 2 == llm_steps(app, result.run_id)[0].record.tries


def test_retry_after_ms_is_honoured(app: Seawall, server: FakeOpenAI, waits: list[float]) -> None:
    """``retry-after-ms: 3000`` on a 429 waits 3 s (not the backoff's fraction of a second)."""
    server.script(
        Reply(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "3000"}),
        Reply(body=chat_completion("after the wait")),
    )
    result = app.run(chat_agent(app, sync_client(server, app)), question="hi")
    assert ("after the wait", [3.0]) == (result.output["text"], waits)


def test_a_server_wait_longer_than_the_backoff_cap_is_waited_in_full(
    app: Seawall, server: FakeOpenAI, waits: list[float]
) -> None:
    """``Retry-After: 30`` under the default tool policy (max_delay 2 s) waits 30 s once."""
    server.script(
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "30"}),
        Reply(body=chat_completion("after the wait")),
    )
    result = app.run(chat_agent(app, sync_client(server, app)), question="hi")
    assert ("after the wait", [30.0]) == (result.output["text"], waits)


def test_a_server_wait_over_max_server_wait_fails_the_call_stating_it(
    app: Seawall, server: FakeOpenAI, waits: list[float]
) -> None:
    """``Retry-After: 120`` over max_server_wait (60 s): no shorter retry; the error says 120 s."""
    server.script(Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "120"}))
    result = app.run(chat_agent(app, sync_client(server, app)), question="hi")
    assert (RunStatus.FAILED, [], 1) == (result.status, waits, len(server.requests))
    assert "ServerWaitError" == app.ledger.run(result.run_id).error_type
    assert "wait 120s" in (app.ledger.run(result.run_id).error_message or "")


def test_the_sdk_does_not_retry_inside_a_run(app: Seawall, server: FakeOpenAI) -> None:
    """Only Seawall's policy retries: 2 attempts mean exactly 2 requests, not 2 x SDK retries."""
    server.script(Reply(500, {"error": {"message": "boom"}}))
    ask = chat_agent(app, sync_client(server, app, retry=Retry(attempts=2, initial=0)))
    result = app.run(ask, question="hi")
    assert RunStatus.FAILED == result.status
    assert 2 == len(server.requests)
    assert "InternalServerError" == llm_steps(app, result.run_id)[0].record.error_type


def test_a_500_then_a_success_succeeds(app: Seawall, server: FakeOpenAI) -> None:
    """A server error is transient."""
    server.script(Reply(500, {"error": {"message": "boom"}}), Reply(body=chat_completion("ok")))
    ask = chat_agent(app, sync_client(server, app))
    assert "ok" == app.run(ask, question="hi").output["text"]


def test_a_400_is_permanent(app: Seawall, server: FakeOpenAI) -> None:
    """A client error is not retried."""
    server.script(Reply(400, {"error": {"message": "bad model"}}))
    ask = chat_agent(app, sync_client(server, app))
    result = app.run(ask, question="hi")
    assert RunStatus.FAILED == result.status
    assert 1 == len(server.requests)


def test_a_timeout_is_retried(app: Seawall, server: FakeOpenAI) -> None:
    """A request that times out is tried again."""
    server.script(Reply(body=chat_completion("late"), delay=1.0), Reply(body=chat_completion("ok")))
    client = wrap(openai.OpenAI(base_url=server.base_url, api_key="test", timeout=0.2), app)
    ask = chat_agent(app, client)
    result = app.run(ask, question="hi")
    assert "ok" == result.output["text"]
    assert 2 == llm_steps(app, result.run_id)[0].record.tries


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        ({"unexpected": True}, "not a ChatCompletion (it has no 'choices' list)"),
    ],
    ids=["not-json", "wrong-shape"],
)
def test_a_malformed_body_is_a_tool_response_error(
    app: Seawall, server: FakeOpenAI, body: Any, says: str
) -> None:
    """A body that is not the API's response is retried, then reported as such."""
    server.script(Reply(body=body))
    client = sync_client(server, app, retry=Retry(attempts=2, initial=0))
    ask = chat_agent(app, client)
    result = app.run(ask, question="hi")
    assert RunStatus.FAILED == result.status
    assert 2 == len(server.requests)
    [step] = llm_steps(app, result.run_id)
    assert "ToolResponseError" == step.record.error_type
    assert says in (step.record.error_message or "")


def test_a_response_without_usage_records_unknown_tokens(app: Seawall, server: FakeOpenAI) -> None:
    """No usage in the body: the tokens are recorded as unknown (None), not zero."""
    server.script(Reply(body=chat_completion(usage=False)))
    ask = chat_agent(app, sync_client(server, app))
    result = app.run(ask, question="hi")
    [usage] = usage_of(app, result.run_id)
    assert (None, None) == (usage["input_tokens"], usage["output_tokens"])
    assert 1 == app.ledger.run(result.run_id).unknown_usage_calls


def test_a_recorded_replay_is_served_without_calling_the_model(
    app: Seawall, server: FakeOpenAI
) -> None:
    """Replay returns the same typed response from the journal; the server sees no request."""
    ask = chat_agent(app, sync_client(server, app))
    original = app.run(ask, question="hi")
    before = len(server.requests)
    replayed = app.replay(original.run_id, mode="recorded")
    assert before == len(server.requests)
    assert replayed.ok
    assert original.output == replayed.run.output


def test_outside_a_run_the_wrapped_client_is_the_plain_client(
    app: Seawall, server: FakeOpenAI
) -> None:
    """Called outside any run it calls the API directly and journals nothing."""
    client = sync_client(server, app)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "hello" == reply.choices[0].message.content
    assert [] == app.ledger.runs()


def test_the_responses_api_is_journaled_with_its_usage(app: Seawall, server: FakeOpenAI) -> None:
    """responses.create is an LLM step too; its input/output tokens are recorded."""
    server.script(Reply(body=response_body("from responses")))
    client = sync_client(server, app)

    @app.agent
    def ask(ctx: seawall.Context) -> str:
        reply = client.responses.create(model="gpt-4o-mini", input="hi")
        assert isinstance(reply, Response)
        return reply.output_text

    result = app.run(ask)
    assert "from responses" == result.output
    assert 27 == result.tokens_used
    assert ["openai.responses.create"] == [
        s.record.name for s in app.ledger.steps(result.run_id) if s.record.kind != "usage"
    ]


def test_streaming_parse_and_raw_responses_are_refused_inside_a_run(
    app: Seawall, server: FakeOpenAI
) -> None:
    """Calls that cannot be journaled fail loudly inside runs instead of escaping the journal."""
    client = sync_client(server, app)
    seen: list[str] = []

    @app.agent(retry=Retry(attempts=1))
    def ask(ctx: seawall.Context) -> None:
        for call in (
            lambda: client.chat.completions.create(model="m", messages=MESSAGES, stream=True),
            lambda: client.chat.completions.parse(model="m", messages=MESSAGES),
            lambda: client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES),
        ):
            try:
                call()
            except UsageError as exc:
                seen.append(exc.message)

    app.run(ask)
    assert 3 == len(seen)
    assert "stream=True" in seen[0]
    assert "parse() is not journaled" in seen[1]
    assert "with_raw_response" in seen[2]
    assert [] == server.requests


def test_a_sync_client_in_an_async_agent_is_a_usage_error(app: Seawall, server: FakeOpenAI) -> None:
    """The sync client cannot await the async journal: it says which client to use."""
    client = sync_client(server, app)

    @app.agent(retry=Retry(attempts=1))
    async def ask(ctx: seawall.AsyncContext) -> None:
        client.chat.completions.create(model="m", messages=MESSAGES)

    result = app.run(ask)
    assert "AsyncOpenAI" in (result.error or {})["message"]


def test_wrapping_twice_under_one_name_is_refused(app: Seawall, server: FakeOpenAI) -> None:
    """A second client needs its own prefix."""
    sync_client(server, app)
    with pytest.raises(seawall.ConfigurationError, match="name='other'"):
        sync_client(server, app)
    sync_client(server, app, name="other")


def test_async_client_chat_429_then_success_and_replay(
    app: Seawall, server: FakeOpenAI, waits: list[float]
) -> None:
    """The async client: retried on 429 honouring Retry-After, usage recorded, replay served."""
    server.script(
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
        Reply(body=chat_completion("async ok")),
    )
    client = async_client(server, app)

    @app.agent
    async def ask(ctx: seawall.AsyncContext) -> str:
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert isinstance(reply, ChatCompletion)
        return str(reply.choices[0].message.content)

    result = app.run(ask)
    assert "async ok" == result.output
    assert [1.0] == waits
    assert 17 == result.tokens_used
    requests = len(server.requests)
    assert "async ok" == app.replay(result.run_id, mode="recorded").run.output
    assert requests == len(server.requests)


def test_async_client_responses_and_unknown_usage(app: Seawall, server: FakeOpenAI) -> None:
    """The async responses API without usage records unknown tokens."""
    server.script(Reply(body=response_body("no usage", usage=False)))
    client = async_client(server, app)

    @app.agent
    async def ask(ctx: seawall.AsyncContext) -> str:
        reply = await client.responses.create(model="gpt-4o-mini", input="hi")
        return reply.output_text

    result = app.run(ask)
    assert "no usage" == result.output
    [usage] = usage_of(app, result.run_id)
    assert None is usage["input_tokens"]


def test_async_client_outside_a_run_is_plain(app: Seawall, server: FakeOpenAI) -> None:
    """The async copy behaves as the plain async client outside runs."""
    client = async_client(server, app)
    reply = asyncio.run(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))
    assert "hello" == reply.choices[0].message.content


def test_an_unsupported_openai_version_fails_at_import_naming_the_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openai 0.28 installed: importing the integration raises, naming the supported range."""
    monkeypatch.setattr(_versions, "installed_version", lambda name: "0.28.1")
    monkeypatch.delitem(sys.modules, "seawall.integrations.openai")
    with pytest.raises(IntegrationError) as caught:
        importlib.import_module("seawall.integrations.openai")
    assert f"openai{SUPPORTED}" in caught.value.message
    assert "0.28.1" in caught.value.message
    assert "pip install 'seawall[openai]'" in caught.value.message


def test_a_missing_openai_fails_at_import_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not installed: the error names the extra to install."""
    monkeypatch.setattr(_versions, "installed_version", lambda name: None)
    monkeypatch.delitem(sys.modules, "seawall.integrations.openai")
    with pytest.raises(IntegrationError, match=r"not installed; pip install 'seawall\[openai\]'"):
        importlib.import_module("seawall.integrations.openai")


def test_a_tool_response_error_is_what_the_agent_sees_after_the_retries(
    app: Seawall, server: FakeOpenAI
) -> None:
    """Inside the agent, the exhausted malformed-body failure is a ToolResponseError."""
    server.script(Reply(body=b"<html>bad gateway</html>"))
    client = sync_client(server, app, retry=Retry(attempts=1))
    caught: list[BaseException] = []

    @app.agent
    def ask(ctx: seawall.Context) -> None:
        try:
            client.chat.completions.create(model="m", messages=MESSAGES)
        except ToolResponseError as exc:
            caught.append(exc)

    app.run(ask)
    assert 1 == len(caught)
