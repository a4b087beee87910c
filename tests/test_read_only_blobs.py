"""A read-only step whose request is too large to sit inline keeps its request blob."""

from __future__ import annotations

from seawall import Context, Seawall


def test_a_large_read_only_request_can_be_read_back(app: Seawall) -> None:
    """app.ledger.steps() decodes a read-only step whose arguments were stored as a blob."""

    @app.tool
    def echo(text: str) -> int:
        return len(text)

    @app.agent
    def agent(ctx: Context) -> int:
        return int(ctx.call(echo, "x" * 200_000))

    result = app.run(agent)
    [step] = app.ledger.steps(result.run_id)
    assert ["echo", ["x" * 200_000], {}] == step.request
    assert 200_000 == step.response
