"""Verification through runs: output verifiers, on_drift policies, confidence and mid-run gates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seawall import (
    AsyncContext,
    Context,
    ErrorClass,
    FailureCause,
    Guards,
    OnDrift,
    RunStatus,
    Seawall,
    verify,
)
from seawall.testing import no_waits

TOTAL_IS_4 = verify.rule(lambda o: o["total"] == 4, "total must be 4", name="total")
HAS_NOTE = verify.rule(lambda o: "note" in o, "a note is required", name="note")


@pytest.fixture
def art_app(tmp_path: Path, ledger_url: str) -> Iterator[Seawall]:
    """An app with a local artifact destination; retries do not sleep."""
    with (
        no_waits(),
        Seawall(
            ledger_url, lease=2.0, artifacts=tmp_path / "out", staging=tmp_path / "staging"
        ) as instance,
    ):
        yield instance


def kinds_of(app: Seawall, run_id: str) -> list[tuple[str, str, bool]]:
    """(kind, name, passed) of every verdict of a run."""
    return [(v.kind, v.name, v.passed) for v in app.ledger.verdicts(run_id)]


# -- output verifiers -----------------------------------------------------------------------------


def test_passing_verifier_run_succeeds_with_an_output_verdict(app: Seawall) -> None:
    """A verified output is the run's; its verdict is recorded with kind "output"."""

    @app.agent(verify=[TOTAL_IS_4])
    def adder(ctx: Context, x: int) -> dict[str, int]:
        return {"total": x + 2}

    result = app.run(adder, x=2)
    assert RunStatus.SUCCEEDED == result.status
    assert {"total": 4} == result.output
    [verdict] = app.ledger.verdicts(result.run_id)
    assert ("output", "total", True, False, 1) == (
        verdict.kind,
        verdict.name,
        verdict.passed,
        verdict.error,
        verdict.attempt,
    )


def test_failing_verifier_fails_the_run_as_silent_drift(app: Seawall) -> None:
    """A rejected output fails the run silent_drift / verification_failed."""

    @app.agent(verify=[TOTAL_IS_4])
    def adder(ctx: Context, x: int) -> dict[str, int]:
        return {"total": x + 3}

    result = app.run(adder, x=2)
    assert RunStatus.FAILED == result.status
    assert ErrorClass.SILENT_DRIFT == result.error_class
    assert FailureCause.VERIFICATION_FAILED == result.failure_cause
    assert "VerificationError" == (result.error or {}).get("type")
    assert "total must be 4" in (result.error or {}).get("message", "")


def test_failing_verifier_output_is_neither_returned_nor_committed(app: Seawall) -> None:
    """A rejected output is not in the result and not in the ledger."""

    @app.agent(verify=[TOTAL_IS_4])
    def adder(ctx: Context, x: int) -> dict[str, int]:
        return {"total": x + 3}

    result = app.run(adder, x=2)
    assert result.output is None
    assert app.ledger.output(result.run_id) is None
    assert app.ledger.run(result.run_id).output_hash is None
    assert [("output", "total", False)] == kinds_of(app, result.run_id)


def test_failing_verifier_is_not_retried_by_the_retry_policy(app: Seawall) -> None:
    """Drift is governed by on_drift, not the agent's retry policy: one attempt by default."""
    calls: list[int] = []

    @app.agent(verify=[TOTAL_IS_4])
    def adder(ctx: Context) -> dict[str, int]:
        calls.append(ctx.attempt)
        return {"total": 5}

    result = app.run(adder)
    assert [1] == calls
    assert 1 == len(result.attempts)


def test_combined_verifiers_all_verdicts_are_recorded(app: Seawall) -> None:
    """Every verifier runs; one failing and one passing are both recorded, in order."""

    @app.agent(verify=[HAS_NOTE, TOTAL_IS_4])
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 4}

    result = app.run(adder)
    assert RunStatus.FAILED == result.status
    assert [("output", "note", False), ("output", "total", True)] == kinds_of(app, result.run_id)
    assert [1, 2] == [v.ordinal for v in app.ledger.verdicts(result.run_id)]


def test_single_verifier_without_a_list_is_accepted(app: Seawall) -> None:
    """verify= takes one verifier as well as a list."""

    @app.agent(verify=TOTAL_IS_4)
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 4}

    assert RunStatus.SUCCEEDED == app.run(adder).status


def test_verifier_that_raises_means_the_run_is_not_trusted(app: Seawall) -> None:
    """A broken verifier fails the run silent_drift; its verdict is flagged error."""

    def broken(output: Any) -> bool:
        raise RuntimeError("verifier bug")

    @app.agent(verify=[verify.rule(broken, "never", name="broken")])
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 4}

    result = app.run(adder)
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT) == (result.status, result.error_class)
    [verdict] = app.ledger.verdicts(result.run_id)
    assert (False, True) == (verdict.passed, verdict.error)
    assert "RuntimeError: verifier bug" in verdict.message


# -- the feedback loop ----------------------------------------------------------------------------


def test_drift_retry_next_attempt_sees_the_failing_messages(app: Seawall) -> None:
    """With on_drift="retry", attempt 2 sees attempt 1's failing verifier messages."""
    seen: list[tuple[str, ...]] = []

    @app.agent(verify=[HAS_NOTE, TOTAL_IS_4], on_drift="retry")
    def adder(ctx: Context) -> dict[str, Any]:
        seen.append(ctx.feedback)
        return {"total": 4, "note": "fixed"} if ctx.feedback else {"total": 5}

    result = app.run(adder)
    assert RunStatus.SUCCEEDED == result.status
    assert [(), ("note: a note is required", "total: total must be 4")] == seen
    assert {"total": 4, "note": "fixed"} == result.output


def test_drift_retry_records_each_attempt_and_its_verdicts(app: Seawall) -> None:
    """The failed attempt is recorded verification_failed; verdicts are kept per attempt."""

    @app.agent(verify=[TOTAL_IS_4], on_drift="retry")
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 4 if ctx.attempt == 2 else 3}

    result = app.run(adder)
    assert [("failed", FailureCause.VERIFICATION_FAILED), ("succeeded", None)] == [
        (a.status, a.failure_cause) for a in result.attempts
    ]
    assert [(1, False), (2, True)] == [
        (v.attempt, v.passed) for v in app.ledger.verdicts(result.run_id)
    ]


def test_drift_retry_reruns_reads_and_serves_completed_writes(app: Seawall) -> None:
    """A drift retry asks again: read-only calls run again, completed mutating calls are served."""
    reads: list[int] = []
    writes: list[int] = []

    @app.tool
    def lookup(x: int) -> int:
        reads.append(x)
        return x * 10

    @app.tool(mutating=True)
    def charge(amount: int) -> str:
        writes.append(amount)
        return f"receipt-{amount}"

    @app.agent(verify=[TOTAL_IS_4], on_drift="retry")
    def agent(ctx: Context) -> dict[str, Any]:
        price = ctx.call(lookup, 1)
        receipt = ctx.call(charge, price)
        return {"total": 4 if ctx.feedback else 3, "receipt": receipt}

    result = app.run(agent)
    assert RunStatus.SUCCEEDED == result.status
    assert [1, 1] == reads
    assert [10] == writes
    assert "receipt-10" == result.output["receipt"]


def test_drift_retries_exhausted_fail_the_run(app: Seawall) -> None:
    """ "retry" means 2 retries: 3 attempts in all, then the run fails silent_drift."""
    attempts: list[int] = []

    @app.agent(verify=[TOTAL_IS_4], on_drift="retry")
    def adder(ctx: Context) -> dict[str, int]:
        attempts.append(ctx.attempt)
        return {"total": 5}

    result = app.run(adder)
    assert [1, 2, 3] == attempts
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT, FailureCause.VERIFICATION_FAILED) == (
        result.status,
        result.error_class,
        result.failure_cause,
    )
    assert 3 == len(result.attempts)


def test_drift_retries_count_is_configurable(app: Seawall) -> None:
    """OnDrift(retries=1) allows exactly two attempts."""
    attempts: list[int] = []

    @app.agent(verify=[TOTAL_IS_4], on_drift=OnDrift(retries=1))
    def adder(ctx: Context) -> dict[str, int]:
        attempts.append(ctx.attempt)
        return {"total": 5}

    assert RunStatus.FAILED == app.run(adder).status
    assert [1, 2] == attempts


# -- fallback and then= ---------------------------------------------------------------------------


def test_fallback_runs_as_a_child_and_its_output_becomes_the_runs(app: Seawall) -> None:
    """The fallback agent runs as a child run on the same inputs; its output is the run's."""

    @app.agent
    def narrow(ctx: Context, x: int) -> dict[str, Any]:
        return {"total": x * 2, "by": "narrow"}

    @app.agent(verify=[TOTAL_IS_4], on_drift=OnDrift(fallback=narrow))
    def broad(ctx: Context, x: int) -> dict[str, Any]:
        return {"total": 99}

    result = app.run(broad, x=2)
    assert RunStatus.SUCCEEDED == result.status
    assert {"total": 4, "by": "narrow"} == result.output
    assert {"total": 4, "by": "narrow"} == app.ledger.output(result.run_id)
    [child] = app.ledger.runs(parent_run_id=result.run_id)
    assert ("narrow", RunStatus.SUCCEEDED) == (child.agent, child.status)
    assert {"x": 2} == app.ledger.inputs(child.run_id)


def test_fallback_verdict_is_recorded(app: Seawall) -> None:
    """The fallback's outcome is recorded as a "fallback" verdict after the output verdict."""

    @app.agent
    def narrow(ctx: Context) -> dict[str, int]:
        return {"total": 4}

    @app.agent(verify=[TOTAL_IS_4], on_drift=OnDrift(fallback=narrow))
    def broad(ctx: Context) -> dict[str, int]:
        return {"total": 99}

    result = app.run(broad)
    assert [("output", "total", False), ("fallback", "fallback(narrow)", True)] == kinds_of(
        app, result.run_id
    )


def test_fallback_by_name_runs_after_drift_retries(app: Seawall) -> None:
    """The fallback (given by name) runs only once the drift retries are spent."""
    attempts: list[int] = []

    @app.agent(name="narrow")
    def narrow(ctx: Context) -> dict[str, int]:
        return {"total": 4}

    @app.agent(verify=[TOTAL_IS_4], on_drift=OnDrift(retries=1, fallback="narrow"))
    def broad(ctx: Context) -> dict[str, int]:
        attempts.append(ctx.attempt)
        return {"total": 99}

    result = app.run(broad)
    assert RunStatus.SUCCEEDED == result.status
    assert [1, 2] == attempts
    assert 1 == len(app.ledger.runs(parent_run_id=result.run_id))


def test_fallback_failing_then_fail_fails_the_run(app: Seawall) -> None:
    """When the fallback fails too, then="fail" (the default) fails the run silent_drift."""

    @app.agent(verify=[TOTAL_IS_4])
    def narrow(ctx: Context) -> dict[str, int]:
        return {"total": 7}

    @app.agent(verify=[TOTAL_IS_4], on_drift=OnDrift(fallback=narrow))
    def broad(ctx: Context) -> dict[str, int]:
        return {"total": 99}

    result = app.run(broad)
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT) == (result.status, result.error_class)
    [child] = app.ledger.runs(parent_run_id=result.run_id)
    assert RunStatus.FAILED == child.status
    assert ("fallback", False) == (
        app.ledger.verdicts(result.run_id)[-1].kind,
        app.ledger.verdicts(result.run_id)[-1].passed,
    )


def test_fallback_failing_then_quarantine_quarantines_the_run(app: Seawall) -> None:
    """When the fallback raises, then="quarantine" keeps the original output."""

    @app.agent
    def narrow(ctx: Context) -> dict[str, int]:
        raise ValueError("cannot do it either")

    @app.agent(verify=[TOTAL_IS_4], on_drift=OnDrift(fallback=narrow, then="quarantine"))
    def broad(ctx: Context) -> dict[str, int]:
        return {"total": 99}

    result = app.run(broad)
    assert RunStatus.QUARANTINED == result.status
    assert {"total": 99} == app.ledger.output(result.run_id)


# -- quarantine -----------------------------------------------------------------------------------


def test_quarantine_keeps_the_output_but_does_not_trust_it(art_app: Seawall) -> None:
    """Quarantined: the output is kept for inspection, not returned as a result."""

    @art_app.agent(verify=[TOTAL_IS_4], on_drift="quarantine")
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 5}

    result = art_app.run(adder)
    assert RunStatus.QUARANTINED == result.status
    assert (ErrorClass.SILENT_DRIFT, FailureCause.VERIFICATION_FAILED) == (
        result.error_class,
        result.failure_cause,
    )
    assert result.output is None
    assert {"total": 5} == art_app.ledger.output(result.run_id)


def test_quarantine_does_not_commit_artifacts(art_app: Seawall, tmp_path: Path) -> None:
    """A quarantined run's staged artifacts never reach the destination; staging is cleared."""

    @art_app.agent(verify=[TOTAL_IS_4], on_drift="quarantine")
    def reporter(ctx: Context) -> dict[str, int]:
        ctx.artifacts.write_text("report.md", "# total 5\n")
        return {"total": 5}

    result = art_app.run(reporter)
    assert RunStatus.QUARANTINED == result.status
    assert not (tmp_path / "out" / result.run_id).exists()
    assert [] == art_app.ledger.artifacts(result.run_id)
    assert [] == list((tmp_path / "staging").rglob("report.md"))


def test_verified_artifacts_are_committed(art_app: Seawall, tmp_path: Path) -> None:
    """The contrast: a verified run's staged artifact is published."""

    @art_app.agent(verify=[TOTAL_IS_4])
    def reporter(ctx: Context) -> dict[str, int]:
        ctx.artifacts.write_text("report.md", "# total 4\n")
        return {"total": 4}

    result = art_app.run(reporter)
    assert RunStatus.SUCCEEDED == result.status
    assert ["report.md"] == [a.name for a in art_app.ledger.artifacts(result.run_id)]


# -- confidence -----------------------------------------------------------------------------------


def test_reported_confidence_below_threshold_is_drift(app: Seawall) -> None:
    """ctx.confidence under min_confidence fails the run silent_drift with a confidence verdict."""

    @app.agent(min_confidence=0.8)
    def unsure(ctx: Context) -> str:
        ctx.confidence(0.5)
        return "maybe"

    result = app.run(unsure)
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT) == (result.status, result.error_class)
    [verdict] = app.ledger.verdicts(result.run_id)
    assert ("output", "confidence", False, 0.5) == (
        verdict.kind,
        verdict.name,
        verdict.passed,
        verdict.score,
    )
    assert "confidence 0.5 is below the threshold 0.8" == verdict.message


def test_confidence_exactly_at_threshold_passes(app: Seawall) -> None:
    """A confidence equal to min_confidence is trusted."""

    @app.agent(min_confidence=0.8)
    def sure(ctx: Context) -> str:
        ctx.confidence(0.8)
        return "yes"

    assert RunStatus.SUCCEEDED == app.run(sure).status


def test_confidence_field_of_a_dict_output_is_checked(app: Seawall) -> None:
    """An output dict's "confidence" field counts when ctx.confidence was not called."""

    @app.agent(min_confidence=0.8)
    def sure(ctx: Context) -> dict[str, Any]:
        return {"answer": "yes", "confidence": 0.9}

    result = app.run(sure)
    assert RunStatus.SUCCEEDED == result.status
    assert [("output", "confidence", True)] == kinds_of(app, result.run_id)


def test_confidence_field_below_threshold_is_drift(app: Seawall) -> None:
    """A low "confidence" field in the output fails the run."""

    @app.agent(min_confidence=0.8)
    def unsure(ctx: Context) -> dict[str, Any]:
        return {"answer": "yes", "confidence": 0.3}

    assert ErrorClass.SILENT_DRIFT == app.run(unsure).error_class


def test_ctx_confidence_wins_over_the_output_field(app: Seawall) -> None:
    """ctx.confidence takes precedence over a confidence field in the output."""

    @app.agent(min_confidence=0.8)
    def unsure(ctx: Context) -> dict[str, Any]:
        ctx.confidence(0.2)
        return {"answer": "yes", "confidence": 0.99}

    assert RunStatus.FAILED == app.run(unsure).status


def test_no_reported_confidence_is_not_checked(app: Seawall) -> None:
    """Without any reported confidence the threshold does not apply and no verdict is recorded."""

    @app.agent(min_confidence=0.8)
    def silent(ctx: Context) -> dict[str, str]:
        return {"answer": "yes"}

    result = app.run(silent)
    assert RunStatus.SUCCEEDED == result.status
    assert [] == app.ledger.verdicts(result.run_id)


def test_confidence_out_of_range_fails_the_run_with_a_configuration_error(app: Seawall) -> None:
    """ctx.confidence(2) raises ConfigurationError, which fails the run (not drift)."""

    @app.agent(min_confidence=0.8)
    def broken(ctx: Context) -> str:
        ctx.confidence(2)
        return "never"

    result = app.run(broken)
    assert RunStatus.FAILED == result.status
    assert "ConfigurationError" == (result.error or {}).get("type")
    assert (ErrorClass.CLEAN_ABORT, FailureCause.EXCEPTION) == (
        result.error_class,
        result.failure_cause,
    )


@pytest.mark.parametrize("value", [-0.1, float("nan"), True, "0.9"])
def test_confidence_rejects_non_numbers(app: Seawall, value: Any) -> None:
    """ctx.confidence refuses values outside [0, 1] and non-numbers."""

    @app.agent
    def broken(ctx: Context) -> str:
        ctx.confidence(value)
        return "never"

    assert "ConfigurationError" == (app.run(broken).error or {}).get("type")


# -- mid-run gates --------------------------------------------------------------------------------

POSITIVE = verify.rule(lambda v: v > 0, "must be positive", name="positive")


def test_passing_gate_returns_the_value_and_records_a_gate_verdict(app: Seawall) -> None:
    """ctx.verify returns the value when it passes; the verdict's kind is "gate"."""

    @app.agent
    def gated(ctx: Context) -> int:
        return ctx.verify(7, POSITIVE) + 1

    result = app.run(gated)
    assert 8 == result.output
    assert [("gate", "positive", True)] == kinds_of(app, result.run_id)


def test_passing_gate_resets_the_mutation_guard(app: Seawall) -> None:
    """Three writes, a passing gate, a fourth write: the default guard lets it through."""
    writes: list[int] = []

    @app.tool(mutating=True)
    def write(n: int) -> int:
        writes.append(n)
        return n

    @app.agent
    def writer(ctx: Context) -> str:
        for n in range(3):
            ctx.call(write, n)
        ctx.verify(writes[-1], verify.rule(lambda v: v == 2, "third write must be 2", name="ok"))
        ctx.call(write, 3)
        return "done"

    result = app.run(writer)
    assert RunStatus.SUCCEEDED == result.status
    assert [0, 1, 2, 3] == writes


def test_failing_gate_stops_the_run_as_silent_drift(app: Seawall) -> None:
    """A failing gate raises: the next line never runs; the run fails silent_drift."""
    after: list[bool] = []

    @app.agent
    def gated(ctx: Context) -> int:
        ctx.verify(-1, POSITIVE)
        after.append(True)
        return 1

    result = app.run(gated)
    assert [] == after
    assert (RunStatus.FAILED, ErrorClass.SILENT_DRIFT, FailureCause.VERIFICATION_FAILED) == (
        result.status,
        result.error_class,
        result.failure_cause,
    )
    assert [("gate", "positive", False)] == kinds_of(app, result.run_id)
    assert "must be positive" in (result.error or {}).get("message", "")


def test_failing_gate_feedback_reaches_a_drift_retry(app: Seawall) -> None:
    """A gate failure is drift like an output failure: on_drift retries with its feedback."""
    seen: list[tuple[str, ...]] = []

    @app.agent(on_drift="retry")
    def gated(ctx: Context) -> int:
        seen.append(ctx.feedback)
        return ctx.verify(1 if ctx.feedback else -1, POSITIVE)

    result = app.run(gated)
    assert 1 == result.output
    assert [(), ("positive: must be positive",)] == seen


def test_gate_without_verifiers_is_a_configuration_error(app: Seawall) -> None:
    """ctx.verify(value) with no verifier fails the run with ConfigurationError."""

    @app.agent
    def gated(ctx: Context) -> int:
        return ctx.verify(1)

    assert "ConfigurationError" == (app.run(gated).error or {}).get("type")


def test_async_agent_awaits_a_gate(app: Seawall) -> None:
    """An async agent's ctx.verify is awaited and returns the value."""

    @app.agent
    async def gated(ctx: AsyncContext) -> int:
        return await ctx.verify(5, POSITIVE)

    result = app.run(gated)
    assert 5 == result.output
    assert [("gate", "positive", True)] == kinds_of(app, result.run_id)


def test_async_agent_failing_gate_is_drift(app: Seawall) -> None:
    """An async agent's failing gate fails the run silent_drift."""

    @app.agent
    async def gated(ctx: AsyncContext) -> int:
        return await ctx.verify(-5, POSITIVE)

    assert ErrorClass.SILENT_DRIFT == app.run(gated).error_class


def test_async_agent_gate_resets_the_mutation_guard(app: Seawall) -> None:
    """The async gate resets the mutation guard too."""
    writes: list[int] = []

    @app.tool(mutating=True)
    async def write(n: int) -> int:
        writes.append(n)
        return n

    @app.agent
    async def writer(ctx: AsyncContext) -> str:
        for n in range(3):
            await ctx.call(write, n)
        await ctx.verify(3, POSITIVE)
        await ctx.call(write, 3)
        return "done"

    assert RunStatus.SUCCEEDED == app.run(writer).status
    assert [0, 1, 2, 3] == writes


# -- agents as judges and voters ------------------------------------------------------------------


def test_registered_agent_judge_runs_as_a_child_run(app: Seawall) -> None:
    """A judge that is a registered agent runs as a child run given output=value."""

    @app.agent
    def grader(ctx: Context, output: dict[str, int]) -> list[Any]:
        return [1.0, "right"] if output["total"] == 4 else [0.0, "wrong"]

    @app.agent(verify=[verify.judge(grader, name="grader")])
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 4}

    result = app.run(adder)
    assert RunStatus.SUCCEEDED == result.status
    [child] = app.ledger.runs(parent_run_id=result.run_id)
    assert ("grader", RunStatus.SUCCEEDED) == (child.agent, child.status)
    assert {"output": {"total": 4}} == app.ledger.inputs(child.run_id)
    [verdict] = app.ledger.verdicts(result.run_id)
    assert ("grader", True, 1.0) == (verdict.name, verdict.passed, verdict.score)


def test_registered_agent_judge_rejection_carries_its_reason(app: Seawall) -> None:
    """An agent judge scoring low fails the run with its reason."""

    @app.agent
    def grader(ctx: Context, output: dict[str, int]) -> dict[str, Any]:
        return {"score": 0.0, "reason": "wrong total"}

    @app.agent(verify=[verify.judge(grader, name="grader")])
    def adder(ctx: Context) -> dict[str, int]:
        return {"total": 5}

    result = app.run(adder)
    assert ErrorClass.SILENT_DRIFT == result.error_class
    assert "wrong total" in app.ledger.verdicts(result.run_id)[0].message


def test_registered_agent_voters_run_as_child_runs(app: Seawall) -> None:
    """Vote paths that are registered agents run as child runs on the run's inputs."""

    @app.agent(name="voter_a")
    def voter_a(ctx: Context, x: int) -> int:
        return x * 2

    @app.agent(name="voter_b")
    def voter_b(ctx: Context, x: int) -> int:
        return x * 2

    @app.agent(verify=[verify.vote([voter_a, voter_b])])
    def doubler(ctx: Context, x: int) -> int:
        return x + x

    result = app.run(doubler, x=3)
    assert RunStatus.SUCCEEDED == result.status
    assert ["voter_a", "voter_b"] == sorted(
        r.agent for r in app.ledger.runs(parent_run_id=result.run_id)
    )


def test_agent_that_writes_in_a_loop_needs_guards_relaxed(app: Seawall) -> None:
    """With the mutation guard off, a verified agent may write many times without gates."""
    writes: list[int] = []

    @app.tool(mutating=True)
    def write(n: int) -> int:
        writes.append(n)
        return n

    @app.agent(verify=[POSITIVE], guards=Guards(max_mutations_without_gate=None))
    def writer(ctx: Context) -> int:
        for n in range(6):
            ctx.call(write, n)
        return len(writes)

    assert 6 == app.run(writer).output
