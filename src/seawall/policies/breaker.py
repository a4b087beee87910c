"""Circuit breakers: a pure state machine, kept in the ledger so every process shares it.

closed → (N consecutive failures) → open → (cooldown) → half_open → one probe at a time →
closed after a successful probe, or open again after a failed one. An operator may open a
breaker by hand (it stays open until reset).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from seawall.errors import ConfigurationError
from seawall.policies._arguments import is_amount, is_count

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Breaker:
    """A breaker policy.

    Args:
        failures: Consecutive failures that open it (agents: failed runs; tools: failed calls,
            after the tool's own retries).
        cooldown: Seconds it stays open before letting one probe through.
        probe_timeout: Seconds after which a probe that never reported is presumed lost and
            another may start.
    """

    failures: int = 3
    cooldown: float = 30.0
    probe_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not is_count(self.failures, 1):
            raise ConfigurationError(f"Breaker(failures={self.failures!r}) must be an integer >= 1")
        for name in ("cooldown", "probe_timeout"):
            value = getattr(self, name)
            if not is_amount(value):
                raise ConfigurationError(f"Breaker({name}={value!r}) must be seconds >= 0")


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A breaker as the ledger holds it."""

    name: str
    kind: str
    state: State = "closed"
    failures: int = 0
    opened_at: float | None = None
    reason: str | None = None
    manual: bool = False
    probe_owner: str | None = None
    probe_at: float | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a run or call may go through, and the breaker's state afterwards."""

    allowed: bool
    probe: bool
    state: BreakerState
    reason: str = ""


def admit(policy: Breaker, state: BreakerState, now: float, owner: str) -> Admission:
    """Decide whether one run (or call) may go through now."""
    if state.state == "closed":
        return Admission(allowed=True, probe=False, state=state)
    if state.manual:
        return Admission(
            False, False, state, f"opened by hand: {state.reason or 'no reason given'}"
        )
    if state.state == "open":
        if state.opened_at is not None and now - state.opened_at < policy.cooldown:
            left = policy.cooldown - (now - state.opened_at)
            return Admission(
                False, False, state, f"open ({state.reason}); half-opens in {left:.1f}s"
            )
        probing = replace(state, state="half_open", probe_owner=owner, probe_at=now)
        return Admission(True, True, probing, "half-open: this is the probe")
    # half_open: one probe at a time
    if state.probe_at is not None and now - state.probe_at < policy.probe_timeout:
        return Admission(False, False, state, "half-open: a probe is in flight")
    return Admission(True, True, replace(state, probe_owner=owner, probe_at=now), "probe retaken")


def record(
    policy: Breaker, state: BreakerState, *, success: bool, now: float, reason: str = ""
) -> BreakerState:
    """The breaker after one outcome."""
    if state.manual:
        return state
    if success:
        if state.state == "closed" and state.failures == 0:
            return state
        return replace(
            state,
            state="closed",
            failures=0,
            opened_at=None,
            reason=None,
            probe_owner=None,
            probe_at=None,
        )
    if state.state == "half_open":
        return replace(
            state,
            state="open",
            opened_at=now,
            reason=reason or "the probe failed",
            probe_owner=None,
            probe_at=None,
        )
    failures = state.failures + 1
    if state.state == "closed" and failures >= policy.failures:
        return replace(
            state,
            state="open",
            failures=failures,
            opened_at=now,
            reason=reason or f"{failures} consecutive failures",
        )
    return replace(state, failures=failures)


def force_open(state: BreakerState, reason: str, now: float) -> BreakerState:
    """An operator opens the breaker by hand; it stays open until reset."""
    return replace(
        state,
        state="open",
        manual=True,
        opened_at=now,
        reason=reason,
        probe_owner=None,
        probe_at=None,
    )


def reset(state: BreakerState) -> BreakerState:
    """Close the breaker and forget its failures (and a manual opening)."""
    return BreakerState(name=state.name, kind=state.kind)
