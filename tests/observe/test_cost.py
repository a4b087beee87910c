"""Usage and cost: recorded once per LLM call, priced by overrides or genai-prices, never zero."""

from __future__ import annotations

import pytest

import seawall
from seawall import Context, Price, Seawall
from seawall.errors import ConfigurationError
from seawall.observe.cost import PriceTable, UsageEntry, UsageTotals


def test_override_prices_per_million_tokens() -> None:
    table = PriceTable({"house-model": Price(input_per_mtok=2.0, output_per_mtok=8.0)})
    cost = table.cost("house-model", 1_000_000, 500_000)
    assert cost.usd == pytest.approx(6.0)
    assert cost.source == "override"


def test_the_maintained_table_prices_a_known_model() -> None:
    cost = PriceTable().cost("gpt-4o", 1000, 500, provider="openai")
    assert cost.source == "genai-prices"
    assert cost.usd is not None
    assert cost.usd > 0


def test_an_unknown_model_is_unpriced_not_free() -> None:
    cost = PriceTable().cost("our-private-finetune-7", 1000, 500)
    assert cost == seawall.observe.cost.Cost(None, "unpriced")


def test_unknown_tokens_have_unknown_cost() -> None:
    assert PriceTable().cost("gpt-4o", None, None).source == "no-usage"


@pytest.mark.parametrize(
    "bad",
    [{"m": 3}, {"m": {"input": 1}}, {"m": "cheap"}],
)
def test_bad_price_overrides_are_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="Price"):
        PriceTable(bad)  # type: ignore[arg-type]


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="non-negative"):
        Price(-1.0, 1.0)


def test_totals_keep_retried_and_unknown_apart() -> None:
    totals = UsageTotals()
    totals.add(UsageEntry(100, 20, 0.5))
    totals.add(UsageEntry(None, None, None))
    totals.add_retried(UsageEntry(40, 10, 0.25))
    assert (totals.input_tokens, totals.output_tokens, totals.cost_usd) == (100, 20, 0.5)
    assert (totals.calls, totals.unknown_usage, totals.unpriced) == (2, 1, 1)
    assert (totals.retried_input_tokens, totals.retried_cost_usd) == (40, 0.25)


def test_usage_rolls_up_to_the_run_once(ledger_url: str) -> None:
    app = Seawall(ledger_url, prices={"house": Price(1.0, 2.0)})

    @app.tool(llm=True)
    def complete(prompt: str, model: str) -> str:
        return prompt.upper()

    @app.agent
    def agent(ctx: Context, text: str) -> str:
        answer: str = ctx.call(complete, text, model="house")
        ctx.record_usage(model="house", input_tokens=1_000_000, output_tokens=1_000_000)
        ctx.record_usage(model="mystery", input_tokens=None, output_tokens=None)
        return answer

    try:
        result = app.run(agent, text="hi")
        assert result.output == "HI"
        run = app.store.get_run(result.run_id)
        assert run is not None
        assert (run.input_tokens, run.output_tokens) == (1_000_000, 1_000_000)
        assert run.cost_usd == pytest.approx(3.0)
        assert (run.unknown_usage_calls, run.unpriced_calls) == (1, 1)
        kinds = [step.kind for step in app.store.load_steps(result.run_id)]
        assert kinds == ["llm", "usage", "usage"]
        # A recorded replay serves the priced usage: same totals, nothing counted twice.
        replayed = app.replay(result.run_id, mode="recorded")
        again = app.store.get_run(replayed.run.run_id)
        assert again is not None
        assert again.cost_usd == pytest.approx(3.0)
    finally:
        app.close()


def test_current_context_is_the_running_ctx(ledger_url: str) -> None:
    app = Seawall(ledger_url)
    seen: list[object] = []

    @app.agent
    def agent(ctx: Context) -> bool:
        seen.append(seawall.current_context())
        return seawall.current_context() is ctx

    @app.agent
    async def async_agent(ctx: seawall.AsyncContext) -> bool:
        return seawall.current_context() is ctx

    try:
        assert app.run(agent).output is True
        assert app.run(async_agent).output is True
        assert seawall.current_context() is None
    finally:
        app.close()


def test_an_llm_tool_cannot_be_mutating(ledger_url: str) -> None:
    app = Seawall(ledger_url)
    try:
        with pytest.raises(ConfigurationError, match="llm=True, mutating=True"):

            @app.tool(llm=True, mutating=True)
            def act() -> None:
                """Not allowed."""
    finally:
        app.close()


def test_a_drift_retry_counts_the_first_answer_as_retried(ledger_url: str) -> None:
    app = Seawall(ledger_url, prices={"house": Price(1.0, 1.0)})
    answers = iter(["draft", "final!"])

    @app.tool(llm=True)
    def complete(prompt: str, model: str) -> str:
        return next(answers)

    @app.agent(
        verify=[seawall.verify.rule(lambda s: s.endswith("!"), "end with !")],
        on_drift="retry",
    )
    def writer(ctx: Context) -> str:
        text: str = ctx.call(complete, "write", model="house")
        ctx.record_usage(model="house", input_tokens=1_000_000, output_tokens=0)
        return text

    try:
        result = app.run(writer)
        assert result.output == "final!"
        run = app.store.get_run(result.run_id)
        assert run is not None
        assert (run.input_tokens, run.cost_usd) == (1_000_000, pytest.approx(1.0))
        assert (run.retried_input_tokens, run.retried_cost_usd) == (1_000_000, pytest.approx(1.0))
        assert (run.unknown_usage_calls, run.unpriced_calls) == (0, 0)
    finally:
        app.close()
