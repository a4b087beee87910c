"""The breaker as a Hypothesis state machine: its rules hold for any sequence of events."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from seawall.policies.breaker import Breaker, BreakerState, admit, force_open, record, reset

POLICY = Breaker(failures=3, cooldown=10.0, probe_timeout=100.0)


class BreakerMachine(RuleBasedStateMachine):
    """Drives the pure breaker with outcomes, time passing, probes and operator actions."""

    def __init__(self) -> None:
        super().__init__()
        self.state = BreakerState(name="agent:a", kind="agent")
        self.now = 1000.0
        self.streak = 0
        self.probing = False

    @rule(seconds=st.floats(min_value=0, max_value=30))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(success=st.booleans())
    def outcome(self, success: bool) -> None:
        decision = admit(POLICY, self.state, self.now, "me")
        if not decision.allowed:
            assert self.state.state != "closed"
            return
        was_probe = decision.probe
        self.state = record(POLICY, decision.state, success=success, now=self.now)
        if self.state.manual:
            return
        if success:
            assert "closed" == self.state.state
            self.streak = 0
        elif was_probe:
            assert "open" == self.state.state
        else:
            self.streak += 1
            expected = "open" if self.streak >= POLICY.failures else "closed"
            assert expected == self.state.state

    @rule()
    def second_caller_during_probe(self) -> None:
        first = admit(POLICY, self.state, self.now, "me")
        if first.probe:
            second = admit(POLICY, first.state, self.now, "other")
            assert not second.allowed

    @rule(reason=st.text(min_size=1, max_size=5))
    def operator_opens(self, reason: str) -> None:
        self.state = force_open(self.state, reason, self.now)
        assert not admit(POLICY, self.state, self.now + 10_000, "me").allowed

    @rule()
    def operator_resets(self) -> None:
        self.state = reset(self.state)
        self.streak = 0

    @invariant()
    def open_means_refused_until_cooldown(self) -> None:
        state = self.state
        cooling = state.opened_at is not None and self.now - state.opened_at < POLICY.cooldown
        if state.state == "open" and not state.manual and cooling:
            assert not admit(POLICY, state, self.now, "x").allowed
        if state.state == "closed":
            assert admit(POLICY, state, self.now, "x").allowed


BreakerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase
