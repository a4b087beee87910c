"""Guards: budgets and safety limits on one run. Pure checks; the context enforces them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from seawall.errors import BudgetExceededError, ConfigurationError, GuardTrippedError
from seawall.policies._arguments import is_amount, is_count

Limit = Literal[
    "deadline",
    "max_tool_calls",
    "max_tokens",
    "max_cost",
    "max_destructive_without_gate",
    "max_mutations_without_gate",
    "max_calls_without_gate",
]


@dataclass(frozen=True, slots=True)
class Guards:
    """Limits on one run; a breach stops it before the offending call runs.

    Args:
        deadline: Seconds from the run's submission after which no tool call is allowed (the
            reasoning-chain timeout, across attempts). ``budget_exceeded``.
        max_tool_calls: Tool calls the run may make. ``budget_exceeded``.
        max_tokens: Tokens the run may record. ``budget_exceeded``.
        max_cost: Dollars the run may record. ``budget_exceeded``.
        max_destructive_without_gate: Consecutive *destructive* calls (tools registered with
            ``destructive=True``, or annotated so by an MCP server) allowed without a passing
            ``ctx.verify`` gate between them (default 3: the 4th is refused). ``guard_tripped``.
        max_mutations_without_gate: Consecutive mutating calls of any kind (a notification as
            much as a deletion) allowed without a passing gate (default off). ``guard_tripped``.
        max_calls_without_gate: Consecutive tool calls of any kind allowed without a passing
            gate (default off). ``guard_tripped``.
    """

    deadline: float | None = None
    max_tool_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    max_destructive_without_gate: int | None = 3
    max_mutations_without_gate: int | None = None
    max_calls_without_gate: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_tool_calls",
            "max_tokens",
            "max_destructive_without_gate",
            "max_mutations_without_gate",
            "max_calls_without_gate",
        ):
            value = getattr(self, name)
            if value is not None and not is_count(value, 0):
                raise ConfigurationError(
                    f"Guards({name}={value!r}) must be a non-negative integer or None"
                )
        for name in ("deadline", "max_cost"):
            value = getattr(self, name)
            if value is not None and not is_amount(value):
                raise ConfigurationError(
                    f"Guards({name}={value!r}) must be a non-negative number or None"
                )

    # Each check is called before the action it guards; ``count`` is how many were done before.

    def check_call(
        self,
        *,
        calls: int,
        mutating: bool,
        mutations_since_gate: int,
        calls_since_gate: int,
        destructive: bool = False,
        destructive_since_gate: int = 0,
    ) -> None:
        """Refuse a tool call that would exceed a limit.

        Raises:
            BudgetExceededError: ``max_tool_calls`` would be exceeded.
            GuardTrippedError: A limit on calls without a gate would be exceeded.
        """
        if self.max_tool_calls is not None and calls >= self.max_tool_calls:
            raise _budget("max_tool_calls", self.max_tool_calls, f"tool call {calls + 1}")
        if (
            destructive
            and self.max_destructive_without_gate is not None
            and destructive_since_gate >= self.max_destructive_without_gate
        ):
            raise _streak(
                "max_destructive_without_gate",
                self.max_destructive_without_gate,
                f"destructive call {destructive_since_gate + 1}",
            )
        if (
            mutating
            and self.max_mutations_without_gate is not None
            and mutations_since_gate >= self.max_mutations_without_gate
        ):
            raise _streak(
                "max_mutations_without_gate",
                self.max_mutations_without_gate,
                f"mutating call {mutations_since_gate + 1}",
            )
        if (
            self.max_calls_without_gate is not None
            and calls_since_gate >= self.max_calls_without_gate
        ):
            raise _streak(
                "max_calls_without_gate",
                self.max_calls_without_gate,
                f"tool call {calls_since_gate + 1}",
            )

    def check_deadline(self, started: float, now: float) -> None:
        """Refuse any further work once the run's deadline has passed."""
        if self.deadline is not None and now - started > self.deadline:
            raise _budget("deadline", self.deadline, f"{now - started:.3f}s since submission")

    def check_usage(self, tokens: int, cost: float) -> None:
        """Stop a run whose recorded usage went over its token or cost budget."""
        if self.max_tokens is not None and tokens > self.max_tokens:
            raise _budget("max_tokens", self.max_tokens, f"{tokens} tokens")
        if self.max_cost is not None and cost > self.max_cost:
            raise _budget("max_cost", self.max_cost, f"${cost:.6f}")


def _streak(limit: str, value: int, what: str) -> GuardTrippedError:
    return GuardTrippedError(
        f"refused {what} in a row without a verification gate ({limit}={value}): check the "
        "state with ctx.verify(...) before going on, or raise the limit in "
        "@app.agent(guards=Guards(...))",
        limit=limit,
        value=value,
    )


def _budget(limit: str, value: Any, what: str) -> BudgetExceededError:
    return BudgetExceededError(
        f"the run went over its {limit} budget ({value}) at {what}; raise the limit in "
        "@app.agent(guards=Guards(...)) if it is too tight",
        limit=limit,
        value=value,
    )


NO_GUARDS = Guards(max_destructive_without_gate=None)
"""Guards that limit nothing (the journals of replays and of tooling outside agents)."""
