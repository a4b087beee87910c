"""The part of the storage contract that watches runs: alerts, drift samples, operators' records.

:class:`~seawall.ledger.Store` extends it; the runtime's monitors and the dashboard use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from seawall.ledger._watch_records import (
        AlertAck,
        AlertRecord,
        AlertSilence,
        DriftEmbedding,
        DriftSample,
        HandOffClaim,
        OperatorAction,
    )


class WatchStore(Protocol):
    """Alerts and their state, drift samples and embeddings, and what operators decide."""

    # alerts and drift -----------------------------------------------------------------------
    def record_alert(self, alert: AlertRecord) -> None:
        """Record an alert durably."""

    def list_alerts(
        self,
        *,
        agent: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
        acknowledged: bool | None = None,
    ) -> list[AlertRecord]:
        """Return alerts (of ``agent``, of ``kind``, raised at or after ``since``), newest first.

        ``acknowledged``: only alerts an operator acknowledged (``True``) or not (``False``).
        """

    def update_alert_state(
        self,
        key: str,
        change: Callable[[Any], tuple[Any, Sequence[AlertRecord]]],
    ) -> list[AlertRecord]:
        """Apply ``change`` to the JSON state under ``key`` in one transaction.

        ``change`` receives the stored state (``None`` when there is none) and returns the new
        state and the alerts it raises; both are written in the same transaction, so of several
        processes seeing one condition exactly one raises its alert. Returns those alerts.
        """

    def alert_state(self, key: str) -> Any:
        """Return the JSON state under ``key`` (``None`` when there is none)."""

    def add_drift_samples(self, samples: Sequence[DriftSample]) -> None:
        """Record drift samples (a run already sampled is left as it was)."""

    def list_drift_samples(
        self,
        agent: str,
        *,
        newest: bool,
        limit: int,
        since: float | None = None,
        until: float | None = None,
    ) -> list[DriftSample]:
        """Return ``limit`` samples of ``agent`` (finished in ``[since, until)``), oldest first.

        With ``newest`` the last ``limit`` samples are taken, otherwise the first ``limit``;
        either way they are returned in the order the runs finished.
        """

    def count_drift_samples(self, agent: str) -> int:
        """Return how many samples of ``agent`` the ledger holds."""

    def add_drift_embeddings(self, embeddings: Sequence[DriftEmbedding]) -> None:
        """Record output embeddings (a run already embedded is left as it was)."""

    def list_drift_embeddings(
        self,
        agent: str,
        *,
        model: str,
        newest: bool,
        limit: int,
        since: float | None = None,
        until: float | None = None,
    ) -> list[DriftEmbedding]:
        """Return ``limit`` embeddings of ``agent`` made by ``model``, oldest first.

        As :meth:`list_drift_samples`: the first or (``newest``) the last ``limit`` of those
        finished in ``[since, until)``, returned in the order the runs finished.
        """

    # operators' records ---------------------------------------------------------------------
    def acknowledge_alert(self, ack: AlertAck) -> AlertAck | None:
        """Record an acknowledgement of an alert; return the one that stands (the first).

        ``None`` when the ledger has no such alert.
        """

    def alert_acks(self, alert_ids: Sequence[str]) -> dict[str, AlertAck]:
        """Return the acknowledgements of any of ``alert_ids``, by alert id."""

    def add_silence(self, silence: AlertSilence) -> None:
        """Record a silence of alerts."""

    def list_silences(
        self, *, ending_after: float | None = None, limit: int = 100
    ) -> list[AlertSilence]:
        """Return silences (ending after ``ending_after``), the latest to end first."""

    def lift_silence(self, silence_id: str, *, by: str, at: float) -> bool:
        """End a silence early; false when it is unknown, lifted or over."""

    def claim_handoff(self, claim: HandOffClaim, *, take_over: bool = False) -> HandOffClaim | None:
        """Claim an open hand-off; return the claim that stands (``None``: not open)."""

    def release_handoff(self, handoff_id: str, *, by: str) -> bool:
        """Drop ``by``'s claim on a hand-off; false when ``by`` does not hold it."""

    def handoff_claims(self, handoff_ids: Sequence[str]) -> dict[str, HandOffClaim]:
        """Return the claims on any of ``handoff_ids``, by hand-off id."""

    def record_operator_action(self, action: OperatorAction) -> None:
        """Record an operator's decision (who, what, on what, when)."""

    def list_operator_actions(
        self,
        *,
        operator: str | None = None,
        action: str | None = None,
        target: str | None = None,
        before: tuple[float, str] | None = None,
        limit: int = 100,
    ) -> list[OperatorAction]:
        """Return operators' decisions, newest first (keyset paging with ``before``)."""
