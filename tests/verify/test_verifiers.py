"""Each built-in verifier on its own: schema, rule, judge, vote, consistency; run_verifiers."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import jsonschema
import pydantic
import pytest

from seawall import ConfigurationError, verify
from seawall.verify import Check, Verdict, Verifier, VerifyContext, run_verifiers


class Item(pydantic.BaseModel):
    """A line of an order."""

    sku: str
    qty: int


class Order(pydantic.BaseModel):
    """An order with lines."""

    order_id: str
    items: list[Item]


ORDER_SCHEMA: dict[str, Any] = {
    "title": "order",
    "type": "object",
    "required": ["order_id", "items"],
    "properties": {
        "order_id": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
    },
}

GOOD_ORDER = {"order_id": "o-1", "items": [{"sku": "a", "qty": 2}]}
BAD_ORDER = {"order_id": "o-1", "items": [{"sku": "a", "qty": "two"}]}


def check(
    verifier: Verifier,
    value: Any,
    inputs: Mapping[str, Any] | None = None,
    facts: Mapping[str, tuple[Any, str]] | None = None,
) -> Check:
    """Run one verifier's check outside any run."""
    context = VerifyContext(inputs=inputs or {}, facts=facts or {})
    return asyncio.run(verifier.check(value, context))


def verdicts_of(
    value: Any, *verifiers: Verifier, inputs: Mapping[str, Any] | None = None
) -> list[Verdict]:
    """Run verifiers through run_verifiers outside any run."""
    return asyncio.run(run_verifiers(value, verifiers, VerifyContext(inputs=inputs or {})))


# -- schema -------------------------------------------------------------------------------------


def test_schema_pydantic_model_passes_a_matching_value() -> None:
    """A value the Pydantic model accepts passes."""
    assert Check(passed=True) == check(verify.schema(Order), GOOD_ORDER)


def test_schema_pydantic_model_failure_names_the_field_path() -> None:
    """A value the model rejects fails with the dotted path of the bad field."""
    outcome = check(verify.schema(Order), BAD_ORDER)
    assert not outcome.passed
    assert "items.0.qty" in outcome.message
    assert "Order" in outcome.message


def test_schema_pydantic_verifier_is_named_after_the_model() -> None:
    """The verifier's name names the model."""
    assert "schema(Order)" == verify.schema(Order).name


def test_schema_json_schema_passes_a_matching_value() -> None:
    """A value the JSON Schema accepts passes."""
    assert Check(passed=True) == check(verify.schema(ORDER_SCHEMA), GOOD_ORDER)


def test_schema_json_schema_failure_names_the_path() -> None:
    """A value the JSON Schema rejects fails with the slash path of the bad field."""
    outcome = check(verify.schema(ORDER_SCHEMA), BAD_ORDER)
    assert not outcome.passed
    assert "items/0/qty" in outcome.message


def test_schema_json_schema_failure_at_the_root_says_root() -> None:
    """A missing required field is reported at the root."""
    outcome = check(verify.schema(ORDER_SCHEMA), {"items": []})
    assert not outcome.passed
    assert "(root)" in outcome.message
    assert "order_id" in outcome.message


def test_schema_invalid_json_schema_raises_at_construction() -> None:
    """A schema dict that is not a valid JSON Schema is refused when the verifier is built."""
    with pytest.raises((ConfigurationError, jsonschema.exceptions.SchemaError)):
        verify.schema({"type": "no-such-type"})


def test_schema_of_something_else_is_a_configuration_error() -> None:
    """Neither a model nor a dict: ConfigurationError."""
    with pytest.raises(ConfigurationError):
        verify.schema(42)


# -- rule ---------------------------------------------------------------------------------------


def test_rule_passes_when_the_predicate_is_truthy() -> None:
    """A truthy predicate passes with no message."""
    assert Check(passed=True, message="") == check(
        verify.rule(lambda v: v > 0, "must be positive"), 3
    )


def test_rule_fails_with_its_message() -> None:
    """A falsy predicate fails with the rule's message as feedback."""
    assert Check(passed=False, message="must be positive") == check(
        verify.rule(lambda v: v > 0, "must be positive"), -1
    )


def test_rule_async_predicate_is_awaited() -> None:
    """An async predicate's answer (not the coroutine) decides."""

    async def positive(value: int) -> bool:
        await asyncio.sleep(0)
        return value > 0

    rule = verify.rule(positive, "must be positive")
    assert [True, False] == [check(rule, 1).passed, check(rule, -1).passed]


def test_rule_is_named_after_its_predicate_unless_named() -> None:
    """The default name is rule(<predicate name>); name= overrides it."""

    def positive(value: int) -> bool:
        return value > 0

    assert ["rule(positive)", "sign"] == [
        verify.rule(positive, "m").name,
        verify.rule(positive, "m", name="sign").name,
    ]


def test_rule_needs_a_callable() -> None:
    """A predicate that is not callable is a configuration error."""
    with pytest.raises(ConfigurationError):
        verify.rule(True, "m")  # type: ignore[arg-type]


# -- judge --------------------------------------------------------------------------------------


def test_judge_sync_function_returning_a_float() -> None:
    """A judge returning a number passes at or above the threshold and reports its score."""

    def grader(value: str, **inputs: Any) -> float:
        return 0.9

    assert Check(passed=True, message="", score=0.9) == check(verify.judge(grader), "answer")


def test_judge_receives_the_value_and_the_inputs() -> None:
    """The judge is called as judge(value, **inputs)."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def grader(value: str, **inputs: Any) -> float:
        seen.append((value, inputs))
        return 1.0

    check(verify.judge(grader), "answer", inputs={"question": "q"})
    assert [("answer", {"question": "q"})] == seen


def test_judge_tuple_below_threshold_fails_with_the_reason() -> None:
    """A (score, reason) below the threshold fails; the message has score, threshold, reason."""

    def grader(value: str, **inputs: Any) -> tuple[float, str]:
        return 0.25, "too vague"

    outcome = check(verify.judge(grader, threshold=0.5), "answer")
    assert not outcome.passed
    assert 0.25 == outcome.score
    assert "scored 0.25, below 0.5: too vague" == outcome.message


def test_judge_dict_answer() -> None:
    """A {"score", "reason"} dict is understood."""

    def grader(value: str, **inputs: Any) -> dict[str, Any]:
        return {"score": 0.1, "reason": "off topic"}

    outcome = check(verify.judge(grader), "answer")
    assert not outcome.passed
    assert "off topic" in outcome.message


def test_judge_async_function() -> None:
    """An async judge is awaited."""

    async def grader(value: str, **inputs: Any) -> float:
        await asyncio.sleep(0)
        return 0.75

    assert Check(passed=True, message="", score=0.75) == check(verify.judge(grader), "answer")


def test_judge_exactly_at_the_threshold_passes() -> None:
    """A score equal to the threshold passes."""

    def grader(value: str, **inputs: Any) -> float:
        return 0.7

    assert check(verify.judge(grader, threshold=0.7), "answer").passed


def test_judge_below_threshold_without_reason_has_no_dangling_colon() -> None:
    """With no reason, the message ends at the threshold."""

    def grader(value: str, **inputs: Any) -> float:
        return 0.5

    assert "scored 0.5, below 0.6" == check(verify.judge(grader, threshold=0.6), "a").message


@pytest.mark.parametrize("answer", ["high", math.nan, math.inf, True, None, {"reason": "no score"}])
def test_judge_returning_a_non_number_is_a_verifier_error(answer: Any) -> None:
    """A judge answer that is not a finite number yields an error verdict, not a pass."""

    def grader(value: str, **inputs: Any) -> Any:
        return answer

    [verdict] = verdicts_of("answer", verify.judge(grader))
    assert (False, True) == (verdict.passed, verdict.error)
    assert "TypeError" in verdict.message


@pytest.mark.parametrize("threshold", [math.nan, "0.5", None])
def test_judge_invalid_threshold_is_a_configuration_error(threshold: Any) -> None:
    """The threshold must be a finite number."""
    with pytest.raises(ConfigurationError):
        verify.judge(lambda v: 1.0, threshold=threshold)


# -- vote ---------------------------------------------------------------------------------------


def _path(answer: Any, name: str) -> Any:
    def path(**inputs: Any) -> Any:
        return answer(**inputs) if callable(answer) else answer

    path.__name__ = name
    return path


def test_vote_three_agreeing_paths_pass_silently() -> None:
    """Every path agreeing: passes with no message."""
    paths = [_path(lambda x: x * 2, name) for name in ("a", "b", "c")]
    assert Check(passed=True, message="") == check(verify.vote(paths), 4, inputs={"x": 2})


def test_vote_paths_are_called_with_the_inputs() -> None:
    """Each path is called as path(**inputs)."""
    seen: list[dict[str, Any]] = []

    def path(**inputs: Any) -> int:
        seen.append(inputs)
        return 4

    check(verify.vote([path]), 4, inputs={"x": 2})
    assert [{"x": 2}] == seen


def test_vote_one_dissent_with_majority_quorum_passes_and_names_the_dissenter() -> None:
    """Two of three agree (default quorum 2): passes; the message names the dissenting path."""
    paths = [_path(4, "a"), _path(4, "b"), _path(5, "contrarian")]
    outcome = check(verify.vote(paths), 4)
    assert outcome.passed
    assert "2 of 3 paths agree" in outcome.message
    assert "contrarian said 5" in outcome.message


def test_vote_default_quorum_is_a_majority() -> None:
    """The default quorum is len(paths) // 2 + 1."""
    assert ["vote(3 paths, quorum 2)", "vote(4 paths, quorum 3)"] == [
        verify.vote([_path(1, "a")] * 3).name,
        verify.vote([_path(1, "a")] * 4).name,
    ]


def test_vote_unanimous_quorum_fails_on_one_dissent() -> None:
    """quorum=3 of 3 with one dissent fails."""
    paths = [_path(4, "a"), _path(4, "b"), _path(5, "contrarian")]
    outcome = check(verify.vote(paths, quorum=3), 4)
    assert not outcome.passed
    assert "contrarian said 5" in outcome.message


def test_vote_key_field_name_compares_that_field_only() -> None:
    """key="total" compares only the total field of dict answers."""
    paths = [_path({"total": 4, "note": name}, name) for name in ("a", "b", "c")]
    assert check(verify.vote(paths, key="total"), {"total": 4, "note": "mine"}).passed


def test_vote_key_field_name_detects_a_different_field() -> None:
    """With key="total", answers with another total disagree."""
    paths = [_path({"total": 5}, name) for name in ("a", "b", "c")]
    outcome = check(verify.vote(paths, key="total"), {"total": 4})
    assert not outcome.passed
    assert "a said 5" in outcome.message


def test_vote_key_function() -> None:
    """key= as a function normalises answers before comparing."""
    paths = [_path(" Paris", "a"), _path("paris ", "b"), _path("PARIS", "c")]
    assert check(verify.vote(paths, key=lambda s: s.strip().lower()), "Paris").passed


def test_vote_async_paths() -> None:
    """Async paths are awaited."""

    async def path(**inputs: Any) -> int:
        await asyncio.sleep(0)
        return 4

    assert check(verify.vote([path, path, path]), 4).passed


@pytest.mark.parametrize("quorum", [0, 4, -1])
def test_vote_invalid_quorum_is_a_configuration_error(quorum: int) -> None:
    """A quorum outside 1..len(paths) is refused."""
    with pytest.raises(ConfigurationError):
        verify.vote([_path(1, "a"), _path(1, "b"), _path(1, "c")], quorum=quorum)


def test_vote_without_paths_is_a_configuration_error() -> None:
    """At least one path is needed."""
    with pytest.raises(ConfigurationError):
        verify.vote([])


# -- consistency ----------------------------------------------------------------------------------

FACTS = {"policy.bereavement.days": (30, "policy_db (step 1)")}


def test_consistency_passes_when_fields_match_facts() -> None:
    """A field equal to the observed fact passes."""
    assert Check(passed=True, message="") == check(
        verify.consistency(refund_days="policy.bereavement.days"), {"refund_days": 30}, facts=FACTS
    )


def test_consistency_failure_names_the_field_the_key_and_the_source() -> None:
    """A field that contradicts the fact fails; the message names field, key and source."""
    outcome = check(
        verify.consistency(refund_days="policy.bereavement.days"), {"refund_days": 14}, facts=FACTS
    )
    assert not outcome.passed
    assert (
        "refund_days is 14 but policy_db (step 1) says 'policy.bereavement.days' = 30"
        == outcome.message
    )


def test_consistency_reads_attributes_of_objects() -> None:
    """A non-dict value is compared on its attribute."""

    class Answer(pydantic.BaseModel):
        refund_days: int

    verifier = verify.consistency(refund_days="policy.bereavement.days")
    assert check(verifier, Answer(refund_days=30), facts=FACTS).passed


def test_consistency_fails_when_no_source_was_read() -> None:
    """No fact for the key: fails, saying no source was read for it."""
    outcome = check(verify.consistency(refund_days="policy.bereavement.days"), {"refund_days": 30})
    assert (
        Check(passed=False, message="no source was read for 'policy.bereavement.days'") == outcome
    )


def test_consistency_needs_at_least_one_field() -> None:
    """consistency() with no field=key pairs is refused."""
    with pytest.raises(ValueError, match="field=key"):
        verify.consistency()


def test_consistency_positional_name() -> None:
    """A positional argument names the verifier."""
    assert "policy" == verify.consistency("policy", refund_days="k").name


# -- run_verifiers --------------------------------------------------------------------------------


def test_run_verifiers_reports_a_raising_verifier_and_runs_the_others() -> None:
    """A verifier that raises yields an error verdict; every verifier still gets a verdict."""

    def broken(value: int) -> bool:
        return 1 / 0 > value

    verdicts = verdicts_of(
        3,
        verify.rule(broken, "never", name="broken"),
        verify.rule(lambda v: v > 0, "positive", name="positive"),
        verify.rule(lambda v: v > 5, "above five", name="big"),
    )
    assert [("broken", False, True), ("positive", True, False), ("big", False, False)] == [
        (v.name, v.passed, v.error) for v in verdicts
    ]
    assert "the verifier raised ZeroDivisionError: division by zero" == verdicts[0].message
    assert "above five" == verdicts[2].message


def test_run_verifiers_records_a_judge_score_and_a_duration() -> None:
    """A judge's score reaches its verdict; every verdict has a non-negative duration."""

    def grader(value: str, **inputs: Any) -> float:
        return 0.8

    [verdict] = verdicts_of("a", verify.judge(grader, name="grader"))
    assert ("grader", True, 0.8) == (verdict.name, verdict.passed, verdict.score)
    assert verdict.duration >= 0


def test_verdict_to_dict_is_the_ledger_form() -> None:
    """Verdict.to_dict has every field."""
    verdict = Verdict(name="n", passed=False, message="m", duration=0.5, error=True, score=0.1)
    assert {
        "name": "n",
        "passed": False,
        "message": "m",
        "duration": 0.5,
        "error": True,
        "score": 0.1,
    } == verdict.to_dict()


def test_builtin_verifiers_satisfy_the_protocol() -> None:
    """Every built-in verifier is a seawall.verify.Verifier."""
    built = [
        verify.schema(Order),
        verify.rule(bool, "m"),
        verify.judge(lambda v: 1.0),
        verify.vote([_path(1, "a")]),
        verify.consistency(x="k"),
    ]
    assert all(isinstance(v, Verifier) for v in built)
