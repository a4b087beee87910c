"""What an app was configured with, checked once by ``Seawall()``; the services derive from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from seawall._payload import Encoder
    from seawall.artifacts import Destination
    from seawall.ledger import AlertRecord, Durability, Store
    from seawall.observe.alerts import AlertRules, AlertSink
    from seawall.observe.cost import Price
    from seawall.policies.retry import Retry


@dataclass(frozen=True, slots=True)
class Config:
    """What ``Seawall(...)`` was configured with, checked; everything the services derive from."""

    ledger: str | Store | None
    durability: Durability
    lease: float
    busy_timeout: float
    max_payload_bytes: int
    encoders: Mapping[type, Encoder] | None
    retry: Retry
    tool_retry: Retry
    max_threads: int
    tool_threads: int | None
    destination: Destination | None
    staging: Path
    max_artifact_bytes: int
    max_concurrent_runs: int | None
    max_queued_runs: int | None
    block: bool
    prices: Mapping[str, Price | Mapping[str, float]] | None
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    alerts: Sequence[AlertSink | Callable[[AlertRecord], Any]]
    alert_rules: AlertRules


__all__ = ["Config"]
