"""What to do when an output fails verification (or reports too little confidence)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from seawall.errors import ConfigurationError
from seawall.policies._arguments import is_count

Then = Literal["fail", "quarantine", "handoff"]


@dataclass(frozen=True, slots=True)
class OnDrift:
    """The degradation policy of an agent whose output is not trusted.

    Args:
        retries: Attempts to run again with the verifiers' messages in ``ctx.feedback``.
        fallback: Another registered agent (narrower scope) to try once the retries are spent;
            it runs as a child run on the same inputs, and its verified output is the run's.
        then: What happens after that: ``"fail"`` (the run fails ``silent_drift``),
            ``"quarantine"`` (the output is kept for inspection, never committed) or
            ``"handoff"`` (the run waits, as ``awaiting_human``, for a person to approve,
            edit or reject the output).

    Strings are shortcuts: ``"retry"`` is ``OnDrift(retries=2)``, ``"quarantine"``,
    ``"handoff"`` and ``"fail"`` are ``OnDrift(then=...)``.
    """

    retries: int = 0
    fallback: Any = None
    then: Then = "fail"

    def __post_init__(self) -> None:
        if not is_count(self.retries, 0):
            raise ConfigurationError(f"OnDrift(retries={self.retries!r}) must be an integer >= 0")
        if self.then not in ("fail", "quarantine", "handoff"):
            raise ConfigurationError(
                f"OnDrift(then={self.then!r}) must be 'fail', 'quarantine' or 'handoff'"
            )

    @classmethod
    def of(cls, value: OnDrift | str) -> OnDrift:
        """Turn the ``on_drift=`` argument of ``@app.agent`` into a policy."""
        if isinstance(value, OnDrift):
            return value
        shortcuts = {
            "retry": cls(retries=2),
            "fail": cls(),
            "quarantine": cls(then="quarantine"),
            "handoff": cls(then="handoff"),
        }
        if value not in shortcuts:
            raise ConfigurationError(
                f"on_drift={value!r}: use 'retry', 'fail', 'quarantine', 'handoff' or "
                "seawall.OnDrift(retries=..., fallback=..., then=...)"
            )
        return shortcuts[value]
