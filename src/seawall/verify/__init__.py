"""Verification: nothing an agent produces is trusted until its verifiers pass.

Give an agent verifiers with ``@app.agent(verify=[...])`` (checked by the runtime after the
agent reports done) or gate a value mid-run with ``ctx.verify(value, *verifiers)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seawall.verify._builtin import (
    ConsistencyVerifier,
    JudgeVerifier,
    RuleVerifier,
    SchemaVerifier,
    VoteVerifier,
)
from seawall.verify._verdicts import Check, Verdict, Verifier, VerifyContext, run_verifiers

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "Check",
    "Verdict",
    "Verifier",
    "VerifyContext",
    "consistency",
    "judge",
    "rule",
    "run_verifiers",
    "schema",
    "vote",
]


def schema(model_or_schema: Any) -> Verifier:
    """The value must match a Pydantic model class or a JSON Schema dict.

    Raises:
        ConfigurationError: Neither a model nor a dict (or a dict without ``jsonschema``).
    """
    return SchemaVerifier(model_or_schema)


def rule(predicate: Callable[[Any], Any], message: str, *, name: str | None = None) -> Verifier:
    """A deterministic check: ``predicate(value)`` must be truthy; ``message`` is the feedback."""
    return RuleVerifier(predicate, message, name)


def judge(fn_or_agent: Any, *, threshold: float = 0.5, name: str | None = None) -> Verifier:
    """A second model or function scores the value; below ``threshold`` it fails.

    The judge is a function ``judge(value, **inputs)`` (sync or async) or a registered agent
    (run as a child run with ``output=value``). It returns a number, ``(score, reason)`` or
    ``{"score": ..., "reason": ...}``; the reason is the feedback when it fails. Anything else
    is a verifier error.
    """
    return JudgeVerifier(fn_or_agent, threshold, name)


def vote(
    paths: Sequence[Any],
    *,
    quorum: int | None = None,
    key: str | Callable[[Any], Any] | None = None,
    name: str | None = None,
) -> Verifier:
    """Multi-path verification: ``quorum`` of the independent ``paths`` must agree with the value.

    Each path is a function ``path(**inputs)`` (sync or async) or a registered agent, run on the
    run's inputs. Answers are compared on ``key`` (a field name or a function), or whole.
    ``quorum`` defaults to a majority of the paths.
    """
    return VoteVerifier(paths, quorum, key, name)


def consistency(name: str | None = None, /, **fields: str) -> Verifier:
    """The value's fields must agree with the facts the run read from its sources.

    ``consistency(refund_days="policy.bereavement.days")`` checks that ``value["refund_days"]``
    equals the value observed for the key ``policy.bereavement.days`` (through a tool's
    ``observes=`` or ``ctx.observe``). Two sources that disagree on a key already fail the run
    at the second read, before the agent builds on it.
    """
    if not fields:
        raise ValueError("consistency() needs field=key pairs")
    return ConsistencyVerifier(fields, name)
