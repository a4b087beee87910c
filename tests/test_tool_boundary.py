"""The tool boundary: returns= validation, read_back (read-your-writes) and observes= facts."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from seawall import (
    ConfigurationError,
    Context,
    ErrorClass,
    FailureCause,
    Retry,
    RetryableError,
    RunStatus,
    Seawall,
    verify,
)


class Stock(pydantic.BaseModel):
    """What the inventory tool returns."""

    sku: str
    qty: int


STOCK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
}

ONE_TRY = Retry(attempts=1)
THREE_TRIES = Retry(attempts=3)


def _error_type(result: Any) -> Any:
    return (result.error or {}).get("type")


# -- returns= -------------------------------------------------------------------------------------


def test_returns_model_agent_receives_a_model_instance(app: Seawall) -> None:
    """A valid dict response reaches the agent as an instance of the declared model."""
    seen: list[Any] = []

    @app.tool(returns=Stock)
    def inventory(sku: str) -> dict[str, Any]:
        return {"sku": sku, "qty": 2}

    @app.agent
    def agent(ctx: Context) -> int:
        stock = ctx.call(inventory, "a")
        seen.append(stock)
        return stock.qty

    result = app.run(agent)
    assert 2 == result.output
    assert [Stock(sku="a", qty=2)] == seen


def test_returns_model_response_is_stored_as_json(app: Seawall) -> None:
    """The journal stores the model's JSON form."""

    @app.tool(returns=Stock)
    def inventory(sku: str) -> dict[str, Any]:
        return {"sku": sku, "qty": 2}

    @app.agent
    def agent(ctx: Context) -> None:
        ctx.call(inventory, "a")

    result = app.run(agent)
    [step] = app.ledger.steps(result.run_id)
    assert {"sku": "a", "qty": 2} == step.response


def test_returns_model_served_from_the_journal_on_retry_is_a_model_again(app: Seawall) -> None:
    """On a retry a side effect is served (not called again) and validated into the model again."""
    calls: list[str] = []
    seen: list[Any] = []

    @app.tool(returns=Stock, mutating=True)
    def reserve(sku: str) -> dict[str, Any]:
        calls.append(sku)
        return {"sku": sku, "qty": 2}

    @app.agent(retry=Retry(attempts=2))
    def agent(ctx: Context) -> int:
        stock = ctx.call(reserve, "a")
        seen.append(stock)
        if ctx.attempt == 1:
            raise RetryableError("the model timed out")
        return stock.qty

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert ["a"] == calls
    assert [Stock(sku="a", qty=2)] * 2 == seen
    assert all(isinstance(s, Stock) for s in seen)


def test_returns_model_instance_response_is_accepted(app: Seawall) -> None:
    """A tool returning the model itself passes through unchanged."""

    @app.tool(returns=Stock)
    def inventory(sku: str) -> Stock:
        return Stock(sku=sku, qty=3)

    @app.agent
    def agent(ctx: Context) -> int:
        return ctx.call(inventory, "a").qty

    assert 3 == app.run(agent).output


def test_invalid_response_is_retried_by_the_tools_retry_policy(app: Seawall) -> None:
    """A response the model rejects is a ToolResponseError, retried by the tool's policy."""
    calls: list[str] = []

    @app.tool(returns=Stock, retry=THREE_TRIES)
    def inventory(sku: str) -> dict[str, Any]:
        calls.append(sku)
        return {"sku": sku}

    @app.agent(retry=ONE_TRY)
    def agent(ctx: Context) -> None:
        ctx.call(inventory, "a")

    app.run(agent)
    assert ["a", "a", "a"] == calls


def test_invalid_response_then_fails_the_run_with_tool_response_error(app: Seawall) -> None:
    """Once the tool's retries are spent the run fails with ToolResponseError."""
    after: list[Any] = []

    @app.tool(returns=Stock, retry=THREE_TRIES)
    def inventory(sku: str) -> dict[str, Any]:
        return {"sku": sku, "qty": "lots"}

    @app.agent(retry=ONE_TRY)
    def agent(ctx: Context) -> None:
        after.append(ctx.call(inventory, "a"))

    result = app.run(agent)
    assert RunStatus.FAILED == result.status
    assert "ToolResponseError" == _error_type(result)
    assert "inventory" == (result.error or {}).get("tool")
    assert "qty" in (result.error or {}).get("message", "")
    assert [] == after
    [step] = app.ledger.steps(result.run_id)
    assert ("failed", 3, "ToolResponseError") == (
        step.record.status,
        step.record.tries,
        step.record.error_type,
    )


def test_invalid_response_that_recovers_within_the_tool_retries_succeeds(app: Seawall) -> None:
    """A malformed response followed by a valid one: the agent sees only the valid one."""
    answers = iter([{"sku": "a"}, {"sku": "a", "qty": 1}])

    @app.tool(returns=Stock, retry=THREE_TRIES)
    def inventory(sku: str) -> dict[str, Any]:
        return next(answers)

    @app.agent(retry=ONE_TRY)
    def agent(ctx: Context) -> int:
        return ctx.call(inventory, "a").qty

    result = app.run(agent)
    assert 1 == result.output
    assert 2 == app.ledger.steps(result.run_id)[0].record.tries


def test_returns_json_schema_accepts_a_matching_response(app: Seawall) -> None:
    """A response matching the JSON Schema reaches the agent unchanged."""

    @app.tool(returns=STOCK_SCHEMA)
    def inventory(sku: str) -> dict[str, Any]:
        return {"sku": sku, "qty": 2}

    @app.agent
    def agent(ctx: Context) -> Any:
        return ctx.call(inventory, "a")

    assert {"sku": "a", "qty": 2} == app.run(agent).output


def test_returns_json_schema_rejects_a_mismatching_response(app: Seawall) -> None:
    """A response the JSON Schema rejects fails the call after the tool's retries."""
    calls: list[str] = []

    @app.tool(returns=STOCK_SCHEMA, retry=Retry(attempts=2))
    def inventory(sku: str) -> dict[str, Any]:
        calls.append(sku)
        return {"sku": sku, "qty": 2.5}

    @app.agent(retry=ONE_TRY)
    def agent(ctx: Context) -> Any:
        return ctx.call(inventory, "a")

    result = app.run(agent)
    assert "ToolResponseError" == _error_type(result)
    assert 2 == len(calls)


def test_returns_type_accepts_an_instance(app: Seawall) -> None:
    """returns=int lets an int through."""

    @app.tool(returns=int)
    def count() -> int:
        return 5

    @app.agent
    def agent(ctx: Context) -> int:
        return ctx.call(count)

    assert 5 == app.run(agent).output


def test_returns_type_rejects_another_type(app: Seawall) -> None:
    """returns=int refuses a string, even one that looks like a number."""

    @app.tool(returns=int, retry=ONE_TRY)
    def count() -> Any:
        return "5"

    @app.agent(retry=ONE_TRY)
    def agent(ctx: Context) -> int:
        return ctx.call(count)

    result = app.run(agent)
    assert "ToolResponseError" == _error_type(result)
    assert "expected int, got str" in (result.error or {}).get("message", "")


def test_returns_function_validates_the_response(app: Seawall) -> None:
    """A validating function that returns the value lets a good response through."""

    def non_negative(value: int) -> int:
        if value < 0:
            raise ValueError("negative stock")
        return value

    @app.tool(returns=non_negative)
    def count(n: int) -> int:
        return n

    @app.agent
    def agent(ctx: Context, n: int) -> int:
        return ctx.call(count, n)

    assert 4 == app.run(agent, n=4).output


def test_returns_function_raising_rejects_the_response(app: Seawall) -> None:
    """A validating function that raises stops the response at the boundary."""

    def non_negative(value: int) -> int:
        if value < 0:
            raise ValueError("negative stock")
        return value

    @app.tool(returns=non_negative, retry=ONE_TRY)
    def count(n: int) -> int:
        return n

    @app.agent(retry=ONE_TRY)
    def agent(ctx: Context, n: int) -> int:
        return ctx.call(count, n)

    result = app.run(agent, n=-1)
    assert "ToolResponseError" == _error_type(result)
    assert "ValueError: negative stock" in (result.error or {}).get("message", "")


def test_returns_function_result_is_what_the_agent_sees(app: Seawall) -> None:
    """The validating function's return value is the response the agent gets."""

    @app.tool(returns=lambda v: v.strip())
    def name() -> str:
        return "  ada  "

    @app.agent
    def agent(ctx: Context) -> str:
        return ctx.call(name)

    assert "ada" == app.run(agent).output


@pytest.mark.parametrize("returns", [42, "int", 1.5])
def test_returns_that_cannot_validate_is_refused_at_registration(
    app: Seawall, returns: Any
) -> None:
    """returns= must be a model, a dict, a type or a function."""
    with pytest.raises(ConfigurationError):

        @app.tool(returns=returns)
        def tool() -> None:
            return None


# -- read_back ------------------------------------------------------------------------------------


def _kv_tools(app: Seawall, *, effective: bool) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """A key-value store and a `put` tool that writes (or silently does not) with a read back."""
    store: dict[str, Any] = {}
    read_backs: list[tuple[Any, ...]] = []

    def landed(result: Any, key: str, value: Any) -> bool:
        read_backs.append((result, key, value))
        return store.get(key) == value

    @app.tool(mutating=True, read_back=landed)
    def put(key: str, value: Any) -> str:
        if effective:
            store[key] = value
        return "ok"

    return store, read_backs


def test_read_back_of_a_write_that_did_nothing_fails_the_run_as_drift(app: Seawall) -> None:
    """A write whose effect is not there fails the run silent_drift with ReadBackError."""
    _kv_tools(app, effective=False)
    after: list[bool] = []

    @app.agent
    def agent(ctx: Context) -> None:
        ctx.call("put", "k", 1)
        after.append(True)

    result = app.run(agent)
    assert [] == after
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT, FailureCause.VERIFICATION_FAILED) == (
        result.status,
        result.error_class,
        result.failure_cause,
    )
    assert "ReadBackError" == _error_type(result)
    assert (1, "put") == ((result.error or {}).get("step"), (result.error or {}).get("tool"))


def test_read_back_failure_records_a_read_back_verdict(app: Seawall) -> None:
    """The failed read back is recorded as a "read_back" verdict."""
    _kv_tools(app, effective=False)

    @app.agent
    def agent(ctx: Context) -> None:
        ctx.call("put", "k", 1)

    result = app.run(agent)
    [verdict] = app.ledger.verdicts(result.run_id)
    assert ("read_back", "read_back(put)", False) == (verdict.kind, verdict.name, verdict.passed)
    assert "the effect of step 1 (put) is not there" == verdict.message


def test_read_back_is_called_with_the_result_and_the_arguments(app: Seawall) -> None:
    """read_back(result, *args, **kwargs) gets the tool's result and its call arguments."""
    _, read_backs = _kv_tools(app, effective=True)

    @app.agent
    def agent(ctx: Context) -> None:
        ctx.call("put", "k", value=7)

    app.run(agent)
    assert [("ok", "k", 7)] == read_backs


def test_read_back_of_an_effective_write_passes(app: Seawall) -> None:
    """A write whose effect is there passes; a passing read_back verdict is recorded."""
    store, _ = _kv_tools(app, effective=True)

    @app.agent
    def agent(ctx: Context) -> str:
        return ctx.call("put", "k", 1)

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert {"k": 1} == store
    assert [("read_back", True)] == [(v.kind, v.passed) for v in app.ledger.verdicts(result.run_id)]


def test_passing_read_back_resets_the_mutation_guard(app: Seawall) -> None:
    """Five read-back-checked writes in a row pass the default guard (3 without a gate)."""
    store, _ = _kv_tools(app, effective=True)

    @app.agent
    def agent(ctx: Context) -> int:
        for i in range(5):
            ctx.call("put", f"k{i}", i)
        return len(store)

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert 5 == result.output


def test_async_read_back_is_awaited(app: Seawall) -> None:
    """An async read_back's answer (not its coroutine) decides."""

    async def nothing_there(result: Any, key: str) -> bool:
        return False

    @app.tool(mutating=True, read_back=nothing_there)
    def put(key: str) -> str:
        return "ok"

    @app.agent
    def agent(ctx: Context) -> None:
        ctx.call(put, "k")

    assert "ReadBackError" == _error_type(app.run(agent))


def test_read_back_on_a_read_only_tool_is_refused_at_registration(app: Seawall) -> None:
    """read_back only makes sense on a mutating tool."""
    with pytest.raises(ConfigurationError, match="mutating=True"):

        @app.tool(read_back=lambda result: True)
        def lookup() -> None:
            return None


def test_read_back_must_be_callable(app: Seawall) -> None:
    """read_back= must be a callable."""
    with pytest.raises(ConfigurationError):

        @app.tool(mutating=True, read_back=True)  # type: ignore[arg-type]
        def put() -> None:
            return None


# -- observes= and ctx.observe --------------------------------------------------------------------

KEY = "policy.bereavement.days"


def _sources(app: Seawall, db_days: int, faq_days: int) -> None:
    def facts(result: dict[str, Any], topic: str) -> dict[str, Any]:
        return {f"policy.{topic}.days": result["days"]}

    @app.tool(name="policy_db", observes=facts)
    def policy_db(topic: str) -> dict[str, Any]:
        return {"topic": topic, "days": db_days}

    @app.tool(name="faq", observes=facts)
    def faq(topic: str) -> dict[str, Any]:
        return {"topic": topic, "days": faq_days}


def test_disagreeing_sources_fail_at_the_second_read(app: Seawall) -> None:
    """Two sources disagreeing on a key raise ConsistencyError before the agent's next line."""
    _sources(app, db_days=30, faq_days=14)
    lines: list[str] = []

    @app.agent
    def agent(ctx: Context) -> int:
        ctx.call("policy_db", "bereavement")
        lines.append("after db")
        ctx.call("faq", "bereavement")
        lines.append("after faq")
        return 0

    result = app.run(agent)
    assert ["after db"] == lines
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT, FailureCause.VERIFICATION_FAILED) == (
        result.status,
        result.error_class,
        result.failure_cause,
    )
    assert "ConsistencyError" == _error_type(result)
    assert KEY == (result.error or {}).get("key")
    message = (result.error or {}).get("message", "")
    assert "faq (step 2)" in message
    assert "policy_db (step 1)" in message


def test_agreeing_sources_pass(app: Seawall) -> None:
    """Two sources agreeing on a key: the run goes on."""
    _sources(app, db_days=30, faq_days=30)

    @app.agent
    def agent(ctx: Context) -> int:
        return ctx.call("policy_db", "bereavement")["days"] + ctx.call("faq", "bereavement")["days"]

    assert 60 == app.run(agent).output


def test_observations_of_different_keys_do_not_conflict(app: Seawall) -> None:
    """Different topics are different keys."""
    _sources(app, db_days=30, faq_days=14)

    @app.agent
    def agent(ctx: Context) -> str:
        ctx.call("policy_db", "bereavement")
        ctx.call("faq", "medical")
        return "ok"

    assert RunStatus.SUCCEEDED == app.run(agent).status


def test_manual_observation_conflicting_with_a_tool_fails(app: Seawall) -> None:
    """A fact recorded with ctx.observe is checked against later tool observations."""
    _sources(app, db_days=30, faq_days=30)

    @app.agent
    def agent(ctx: Context) -> None:
        ctx.observe(KEY, 10, source="the ticket")
        ctx.call("policy_db", "bereavement")

    result = app.run(agent)
    assert "ConsistencyError" == _error_type(result)
    assert "the ticket" in (result.error or {}).get("message", "")


def test_manual_observations_that_agree_pass(app: Seawall) -> None:
    """Repeating the same fact from another source is fine."""

    @app.agent
    def agent(ctx: Context) -> str:
        ctx.observe(KEY, 30, source="the ticket")
        ctx.observe(KEY, 30, source="the manager")
        return "ok"

    assert RunStatus.SUCCEEDED == app.run(agent).status


def test_manual_observations_that_disagree_fail(app: Seawall) -> None:
    """Two ctx.observe calls disagreeing on a key fail the run at the second one."""
    lines: list[str] = []

    @app.agent
    def agent(ctx: Context) -> str:
        ctx.observe(KEY, 30, source="the ticket")
        ctx.observe(KEY, 14, source="the manager")
        lines.append("after")
        return "ok"

    result = app.run(agent)
    assert [] == lines
    assert (ErrorClass.SILENT_DRIFT, "ConsistencyError") == (
        result.error_class,
        _error_type(result),
    )


def test_output_consistent_with_observed_facts_passes(app: Seawall) -> None:
    """verify.consistency checks the output's field against the fact the run read."""
    _sources(app, db_days=30, faq_days=30)

    @app.agent(verify=[verify.consistency(refund_days=KEY)])
    def agent(ctx: Context) -> dict[str, int]:
        return {"refund_days": ctx.call("policy_db", "bereavement")["days"]}

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert [("output", True)] == [(v.kind, v.passed) for v in app.ledger.verdicts(result.run_id)]


def test_output_contradicting_observed_facts_is_drift(app: Seawall) -> None:
    """An output field contradicting the fact fails verification, naming the source."""
    _sources(app, db_days=30, faq_days=30)

    @app.agent(verify=[verify.consistency(refund_days=KEY)])
    def agent(ctx: Context) -> dict[str, int]:
        ctx.call("policy_db", "bereavement")
        return {"refund_days": 14}

    result = app.run(agent)
    assert ErrorClass.SILENT_DRIFT == result.error_class
    [verdict] = app.ledger.verdicts(result.run_id)
    assert f"refund_days is 14 but policy_db (step 1) says '{KEY}' = 30" == verdict.message


def test_output_consistency_with_manually_observed_facts(app: Seawall) -> None:
    """Facts from ctx.observe count for verify.consistency too."""

    @app.agent(verify=[verify.consistency(refund_days=KEY)])
    def agent(ctx: Context) -> dict[str, int]:
        ctx.observe(KEY, 30, source="the handbook")
        return {"refund_days": 30}

    assert RunStatus.SUCCEEDED == app.run(agent).status


def test_output_consistency_without_any_source_is_drift(app: Seawall) -> None:
    """No source read for the key: the output is not trusted."""

    @app.agent(verify=[verify.consistency(refund_days=KEY)])
    def agent(ctx: Context) -> dict[str, int]:
        return {"refund_days": 30}

    result = app.run(agent)
    assert ErrorClass.SILENT_DRIFT == result.error_class
    assert f"no source was read for '{KEY}'" == app.ledger.verdicts(result.run_id)[0].message


def test_observations_are_replayed_from_the_journal(app: Seawall) -> None:
    """A served step still asserts its facts: a conflict on the retry is caught again."""
    _sources(app, db_days=30, faq_days=30)
    calls: list[int] = []

    @app.agent(retry=Retry(attempts=2))
    def agent(ctx: Context) -> str:
        calls.append(ctx.attempt)
        ctx.call("policy_db", "bereavement")
        if ctx.attempt == 1:
            raise RetryableError("flaky model")
        ctx.observe(KEY, 14, source="the ticket")
        return "never"

    result = app.run(agent)
    assert [1, 2] == calls
    assert "ConsistencyError" == _error_type(result)


def test_a_mutating_tool_raising_in_doubt_leaves_its_step_in_doubt(app: Seawall) -> None:
    """InDoubtError from a mutating tool: intent kept, no result, not retried, run in_doubt."""
    from seawall import InDoubtError

    calls: list[str] = []

    @app.tool(mutating=True, retry=THREE_TRIES)
    def charge(order: str) -> None:
        calls.append(order)
        raise InDoubtError("the payment server went away before answering")

    @app.agent(retry=THREE_TRIES)
    def agent(ctx: Context) -> None:
        ctx.call(charge, "A-1")

    result = app.run(agent)
    assert (RunStatus.FAILED, FailureCause.IN_DOUBT, ErrorClass.PARTIAL_WRITE) == (
        result.status,
        result.failure_cause,
        result.error_class,
    )
    [step] = app.ledger.steps(result.run_id)
    assert ("started", None) == (step.record.status, step.record.end_time)
    assert ["A-1"] == calls
