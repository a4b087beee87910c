"""What the ledger holds about watching runs: alerts, drift samples, operators' decisions.

Frozen value objects shared by the monitors, the dashboard, the CLI and the stores (the records
of runs themselves are in :mod:`seawall.ledger._records`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert, as the ledger records it and the sinks receive it.

    Attributes:
        alert_id: Unique id.
        kind: ``drift``, ``breaker_open``, ``dlq_growth``, ``handoff_waiting`` or
            ``run_overdue``.
        agent: The agent concerned (``None`` for a tool's breaker).
        feature: What shifted or tripped: a drift feature (``decision``, ``latency``, ...), a
            breaker's name, ``dlq``, ``handoffs`` or a run id.
        statistic: The measured value: the PSI of a drift, the failures that opened a breaker,
            new DLQ entries, waiting hand-offs, seconds a run is overdue.
        threshold: The value it was compared with.
        window: The windows compared, in words (for drift: the reference and current windows).
        message: What happened and what to do, for a person.
        at: Unix time it was raised.
        details: Structured context (for drift: the test, its p-value, both distributions).
    """

    alert_id: str
    kind: str
    agent: str | None
    feature: str | None
    statistic: float | None
    threshold: float | None
    window: str
    message: str
    at: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DriftSample:
    """What drift detection keeps of one finished run of a watched agent.

    Attributes:
        agent: The agent.
        run_id: The run.
        at: When it finished (Unix time).
        decision: The categorical decision read from its output (``None``: no output or no
            such field).
        output_bytes: Size of its output's canonical JSON.
        tokens: Tokens it recorded.
        cost_usd: Cost it recorded.
        latency: Seconds from submission to its final status.
        confidence: The confidence it reported.
        verified: Whether its output passed its verifiers (``None``: none ran).
    """

    agent: str
    run_id: str
    at: float
    decision: str | None
    output_bytes: int | None
    tokens: int | None
    cost_usd: float | None
    latency: float | None
    confidence: float | None
    verified: bool | None


@dataclass(frozen=True, slots=True)
class DriftEmbedding:
    """The embedding of one finished run's output, kept for semantic drift detection.

    Attributes:
        agent: The agent.
        run_id: The run.
        at: When it finished (Unix time).
        model: The embedding model that made it (embeddings of different models are never
            compared).
        scale: The quantisation step: the vector is ``codes * scale``.
        vector: The vector's codes, one signed byte per dimension.
        excerpt: The start of the text embedded (shown as evidence by alerts).
    """

    agent: str
    run_id: str
    at: float
    model: str
    scale: float
    vector: bytes
    excerpt: str


@dataclass(frozen=True, slots=True)
class AlertAck:
    """An operator's acknowledgement of an alert ("seen, on it").

    Attributes:
        alert_id: The alert.
        by: Who acknowledged it.
        at: When.
        note: What they said.
    """

    alert_id: str
    by: str
    at: float
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AlertSilence:
    """Mutes the alerts of one kind (of one agent and feature, or any) for a while.

    Attributes:
        silence_id: Unique id.
        kind: The alert kind it mutes (``drift``, ``dlq_growth``, ...).
        agent: Only alerts about this agent (``None``: any agent).
        feature: Only alerts about this feature (``None``: any feature).
        starts_at: Alerts raised from this Unix time on are muted...
        ends_at: ...until this one.
        created_by: Who silenced them.
        note: Why.
        lifted_by: Who ended the silence early, if someone did.
        lifted_at: When.
    """

    silence_id: str
    kind: str
    agent: str | None
    feature: str | None
    starts_at: float
    ends_at: float
    created_by: str
    note: str | None = None
    lifted_by: str | None = None
    lifted_at: float | None = None

    @property
    def until(self) -> float:
        """When the silence ends (or ended): its end, or its lifting when earlier."""
        return self.ends_at if self.lifted_at is None else min(self.ends_at, self.lifted_at)

    def active(self, at: float) -> bool:
        """Whether it mutes alerts raised at ``at``."""
        return self.starts_at <= at < self.until

    def mutes(self, alert: AlertRecord) -> bool:
        """Whether it mutes ``alert``: same kind (agent, feature), raised while it lasts.

        Lifting a silence un-mutes what it muted (an operator lifts one to see them again).
        """
        return (
            self.lifted_at is None
            and alert.kind == self.kind
            and (self.agent is None or alert.agent == self.agent)
            and (self.feature is None or alert.feature == self.feature)
            and self.active(alert.at)
        )


@dataclass(frozen=True, slots=True)
class HandOffClaim:
    """Who took an open hand-off (a claim warns others; it does not lock).

    Attributes:
        handoff_id: The hand-off.
        by: Who claimed it.
        at: When.
    """

    handoff_id: str
    by: str
    at: float


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """One decision an operator made: the audit log of the dashboard and other tools.

    Attributes:
        action_id: Unique id.
        at: When (Unix time).
        operator: Who (an operator's name).
        action: What (``replay``, ``redrive``, ``breaker_reset``, ``handoff_approve``,
            ``handoff_reject``, ``alert_ack``, ``alert_silence``, ...).
        target: On what (a run id, a breaker's name, an alert id...).
        details: Its parameters and outcome (JSON).
    """

    action_id: str
    at: float
    operator: str
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)
