"""A server's wait (Retry-After, retry-after-ms) in runs: honoured in full, or refused and stated."""

from __future__ import annotations

import pytest

from seawall import Context, Retry, RunStatus, Seawall


class RateLimitedError(Exception):
    """An HTTP 429 as client libraries raise it: a status and the response's headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("HTTP 429 Too Many Requests")
        self.status_code = 429
        self.headers = headers


def test_agent_retry_waits_what_the_server_asked(app: Seawall) -> None:
    """An agent's retry after ``retry-after-ms: 4500`` is recorded as a 4.5 s wait."""
    calls: list[int] = []

    @app.agent(retry=Retry(attempts=2, initial=0.01, max_delay=1.0))
    def fetch(ctx: Context) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitedError({"retry-after-ms": "4500"})
        return "ok"

    result = app.run(fetch)
    assert (RunStatus.SUCCEEDED, [4.5, None]) == (
        result.status,
        [a.retry_delay for a in app.ledger.attempts(result.run_id)],
    )


def test_agent_run_fails_stating_a_refused_server_wait(app: Seawall) -> None:
    """A wait over the agent's max_server_wait fails the run with the wait in its error."""

    @app.agent(retry=Retry(attempts=3, max_server_wait=10))
    def fetch(ctx: Context) -> str:
        raise RateLimitedError({"Retry-After": "45"})

    result = app.run(fetch)
    record = app.ledger.run(result.run_id)
    assert (RunStatus.FAILED, 1, "ServerWaitError") == (
        result.status,
        record.attempts,
        record.error_type,
    )
    assert "wait 45s" in (record.error_message or "")
    assert "max_server_wait=10" in (record.error_message or "")


@pytest.mark.parametrize(("agent_limit", "retried"), [(600.0, True), (60.0, False)])
def test_tool_refusal_is_honoured_by_an_agent_policy_that_allows_it(
    app: Seawall, agent_limit: float, retried: bool
) -> None:
    """A tool that will not wait 120 s fails; the agent retries after 120 s only if allowed."""
    calls: list[int] = []

    @app.tool(retry=Retry(attempts=3))
    def quota() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitedError({"Retry-After": "120"})
        return "granted"

    @app.agent(retry=Retry(attempts=2, max_server_wait=agent_limit))
    def worker(ctx: Context) -> str:
        return str(ctx.call(quota))

    result = app.run(worker)
    delays = [a.retry_delay for a in app.ledger.attempts(result.run_id)]
    if retried:
        assert (RunStatus.SUCCEEDED, [120.0, None]) == (result.status, delays)
    else:
        assert (RunStatus.FAILED, [None]) == (result.status, delays)
        assert "ServerWaitError" == app.ledger.run(result.run_id).error_type
