"""Verdicts and the verifier contract; running a list of verifiers over one value."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verifier's judgement of one value.

    Attributes:
        name: The verifier's name.
        passed: Whether the value passed.
        message: Why it failed (the feedback an agent sees on its next attempt), or a note.
        duration: Seconds the check took.
        error: Whether the verifier itself raised (the value is then not trusted either).
        score: The score a judge gave, when there is one.
    """

    name: str
    passed: bool
    message: str = ""
    duration: float = 0.0
    error: bool = False
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the ledger."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "duration": self.duration,
            "error": self.error,
            "score": self.score,
        }


@dataclass(frozen=True, slots=True)
class Check:
    """What a verifier returns: passed or not, and a message (and a judge's score)."""

    passed: bool
    message: str = ""
    score: float | None = None


@dataclass(slots=True)
class VerifyContext:
    """What a verifier may look at besides the value.

    Attributes:
        inputs: The run's inputs.
        run_id: The run.
        facts: Values observed for keys during the run (for consistency checks).
        run_agent: Runs a registered agent as a child run and returns its output (for judges
            and voters that are agents); ``None`` outside a run.
    """

    inputs: Mapping[str, Any]
    run_id: str | None = None
    facts: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    run_agent: Callable[[Any, dict[str, Any]], Awaitable[Any]] | None = None


@runtime_checkable
class Verifier(Protocol):
    """Anything with a ``name`` and an async ``check(value, context) -> Check``."""

    name: str

    async def check(self, value: Any, context: VerifyContext) -> Check:
        """Judge ``value``."""


async def run_verifiers(
    value: Any, verifiers: tuple[Verifier, ...], context: VerifyContext
) -> list[Verdict]:
    """Run every verifier over ``value`` (all of them, so every failure is reported at once).

    A verifier that raises yields a failed verdict flagged ``error``: the value is not trusted,
    and the report says the verifier, not the agent, broke.
    """
    verdicts = []
    for verifier in verifiers:
        start = time.perf_counter()
        try:
            outcome = await verifier.check(value, context)
        except Exception as exc:
            verdicts.append(
                Verdict(
                    name=verifier.name,
                    passed=False,
                    message=f"the verifier raised {type(exc).__name__}: {exc}",
                    duration=time.perf_counter() - start,
                    error=True,
                )
            )
            continue
        verdicts.append(
            Verdict(
                name=verifier.name,
                passed=bool(outcome.passed),
                message=outcome.message,
                duration=time.perf_counter() - start,
                score=outcome.score,
            )
        )
    return verdicts
