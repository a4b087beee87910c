"""Fault plans: which failure to inject into which agent or tool, and when (pure data)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

from seawall.errors import ConfigurationError
from seawall.policies._arguments import is_amount

Kind = Literal[
    "exception",
    "permanent",
    "timeout",
    "crash",
    "crash_after_effect",
    "partial_artifacts",
    "drift",
    "slow",
    "contradict",
    "upstream",
    "stall",
    "ledger_outage",
]
KINDS: Final[tuple[str, ...]] = get_args(Kind)
_AGENT_ONLY: Final = frozenset({"drift", "partial_artifacts", "upstream"})
_TOOL_ONLY: Final = frozenset({"crash_after_effect", "contradict"})
_ONCE: Final = frozenset(
    {"crash", "crash_after_effect", "partial_artifacts", "stall", "ledger_outage"}
)
"""Kinds that strike once per session unless ``times`` says otherwise."""
CLASS_OF: Final = {
    "exception": "clean_abort",
    "permanent": "clean_abort",
    "timeout": "clean_abort",
    "crash": "crashed",
    "crash_after_effect": "partial_write",
    "partial_artifacts": "partial_write",
    "drift": "silent_drift",
    "slow": "none (latency)",
    "contradict": "silent_drift",
    "upstream": "cascade",
    "stall": "crashed",
    "ledger_outage": "interrupted",
}
"""The failure class each kind of fault provokes (``crashed``: a process that died or stalled
past its lease; ``interrupted``: an attempt stopped by its ledger, which is no failure of the
run)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject.

    Args:
        target: ``agent:NAME`` or ``tool:NAME``.
        kind: ``exception`` (transient), ``permanent``, ``timeout``, ``crash`` (SIGKILL of the
            process before the call), ``crash_after_effect`` (a tool's effect happens, then
            SIGKILL before the journal records it), ``partial_artifacts`` (an agent's first
            artifact is written, then SIGKILL), ``drift`` (an agent returns ``value``: wrong but
            plausible), ``slow`` (``delay`` seconds first), ``contradict`` (a tool answers
            ``value`` instead of its result), ``upstream`` (an agent fails for good, so its
            dependents must be contained), ``stall`` (SIGSTOP of the process past its lease
            while a competing process takes the run over, then SIGCONT: it must find itself
            fenced), ``ledger_outage`` (the process's ledger is unreachable for ``delay``
            seconds: the attempt stops and the run is resumed once it is back).
        on_call: Inject on this call of the target (1-based, counted per chaos session).
        probability: Or inject with this probability on each call (seeded).
        times: At most this many injections per session (crashes, stalls and outages default
            to 1).
        delay: Seconds of a ``slow`` fault (default 1) or of a ``ledger_outage`` (default:
            longer than the process waits for its ledger, ``busy_timeout`` or the PostgreSQL
            ``retry_timeout``, plus one lease).
        value: What ``drift`` and ``contradict`` return.
    """

    target: str
    kind: Kind
    on_call: int | None = None
    probability: float | None = None
    times: int | None = None
    delay: float | None = None
    value: Any = None

    def __post_init__(self) -> None:
        kind, _, name = self.target.partition(":")
        if kind not in ("agent", "tool") or not name:
            raise ConfigurationError(
                f"fault target {self.target!r} must be agent:NAME or tool:NAME"
            )
        if self.kind not in KINDS:
            raise ConfigurationError(f"fault kind {self.kind!r} is not one of {list(KINDS)}")
        if kind == "tool" and self.kind in _AGENT_ONLY:
            raise ConfigurationError(f"fault {self.kind!r} applies to agents, not {self.target!r}")
        if kind == "agent" and self.kind in _TOOL_ONLY:
            raise ConfigurationError(f"fault {self.kind!r} applies to tools, not {self.target!r}")
        if (self.on_call is None) == (self.probability is None):
            raise ConfigurationError(
                f"fault {self.kind!r} on {self.target!r}: give one of on_call or probability"
            )
        if self.on_call is not None and (not isinstance(self.on_call, int) or self.on_call < 1):
            raise ConfigurationError(f"fault on_call={self.on_call!r} must be an integer >= 1")
        if self.probability is not None and not (
            is_amount(self.probability) and self.probability <= 1
        ):
            raise ConfigurationError(f"fault probability={self.probability!r} must be in [0, 1]")
        if self.delay is not None and not is_amount(self.delay):
            raise ConfigurationError(f"fault delay={self.delay!r} must be a number of seconds >= 0")

    @property
    def limit(self) -> int | None:
        """Injections allowed per session."""
        if self.times is not None:
            return self.times
        if self.on_call is not None or self.kind in _ONCE:
            return 1
        return None


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """A set of faults and the seed of their dice.

    Load one from TOML with :meth:`load`::

        seed = 7

        [[fault]]
        target = "tool:search"
        kind = "exception"
        on_call = 1
    """

    faults: tuple[Fault, ...] = field(default_factory=tuple)
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        """Build a plan from its TOML/JSON form.

        Raises:
            ConfigurationError: A fault is malformed.
        """
        raw = data.get("fault", data.get("faults", []))
        if not isinstance(raw, list):
            raise ConfigurationError("a fault plan's 'fault' entries must be a list of tables")
        faults = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                raise ConfigurationError(f"fault #{index + 1} must be a table, got {item!r}")
            unknown = set(item) - {
                "target",
                "kind",
                "on_call",
                "probability",
                "times",
                "delay",
                "value",
            }
            if unknown:
                raise ConfigurationError(f"fault #{index + 1} has unknown keys {sorted(unknown)}")
            try:
                faults.append(Fault(**item))
            except TypeError as exc:
                raise ConfigurationError(f"fault #{index + 1}: {exc}") from exc
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise ConfigurationError(f"seed={seed!r} must be an integer")
        return cls(tuple(faults), seed)

    @classmethod
    def load(cls, path: str | Path) -> FaultPlan:
        """Read a plan from a TOML file (or YAML, when PyYAML is installed).

        Raises:
            ConfigurationError: The file cannot be read or is not a valid plan.
        """
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the fault plan {source}: {exc.strerror}"
            ) from exc
        if source.suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped]  # noqa: PLC0415 - optional
            except ImportError as exc:
                raise ConfigurationError(
                    "YAML fault plans need PyYAML: pip install pyyaml"
                ) from exc
            data = yaml.safe_load(text) or {}
        else:
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"{source} is not valid TOML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"{source} must hold a table of faults")
        return cls.from_dict(data)
