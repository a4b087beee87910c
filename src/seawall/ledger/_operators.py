"""What operators decide, kept in the ledger.

Alert acknowledgements and silences, hand-off claims, and the log of every decision with its
author's name. Written once for both ledgers over :class:`~seawall.ledger._sqlbase.SQLBase` (a
read is ``_rows``, a write ``_apply``). Every write is a single idempotent statement (an insert
that keeps what is there, or a conditional update checked by reading it back), so a PostgreSQL
store may redo it after a lost connection.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from seawall.ledger._sqlbase import SQLBase
from seawall.ledger._watch_records import AlertAck, AlertSilence, HandOffClaim, OperatorAction

if TYPE_CHECKING:
    from collections.abc import Sequence

_ACK_COLUMNS: Final = "alert_id, acked_by, acked_at, note"
_SILENCE_COLUMNS: Final = (
    "silence_id, kind, agent, feature, starts_at, ends_at, created_by, note, lifted_by, lifted_at"
)
_CLAIM_COLUMNS: Final = "handoff_id, claimed_by, claimed_at"
_ACTION_COLUMNS: Final = "action_id, at, operator, action, target, details"


class OperatorRecords(SQLBase):
    """Alert acknowledgements and silences, hand-off claims and the operators' decision log."""

    # -- alerts -------------------------------------------------------------------------------

    def acknowledge_alert(self, ack: AlertAck) -> AlertAck | None:
        """Record an acknowledgement of an alert; the first one stands.

        Returns:
            The acknowledgement that stands (an earlier one, when there was one), or ``None``
            when the ledger has no such alert.
        """
        self._apply(
            f"INSERT INTO alert_acks ({_ACK_COLUMNS}) SELECT ?, ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM alerts WHERE alert_id = ?) ON CONFLICT (alert_id) DO NOTHING",
            (ack.alert_id, ack.by, ack.at, ack.note, ack.alert_id),
            f"acknowledge alert {ack.alert_id}",
        )
        return self.alert_acks([ack.alert_id]).get(ack.alert_id)

    def alert_acks(self, alert_ids: Sequence[str]) -> dict[str, AlertAck]:
        """Return the acknowledgements of any of ``alert_ids``, by alert id."""
        rows = self._among(
            f"SELECT {_ACK_COLUMNS} FROM alert_acks WHERE alert_id IN ({{}})",
            alert_ids,
            "read alert acks",
        )
        return {row[0]: AlertAck(row[0], row[1], row[2], row[3]) for row in rows}

    def add_silence(self, silence: AlertSilence) -> None:
        """Record a silence (a silence with this id already recorded is kept as it was)."""
        self._apply(
            f"INSERT INTO alert_silences ({_SILENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?) ON CONFLICT (silence_id) DO NOTHING",
            (
                silence.silence_id,
                silence.kind,
                silence.agent,
                silence.feature,
                silence.starts_at,
                silence.ends_at,
                silence.created_by,
                silence.note,
                silence.lifted_by,
                silence.lifted_at,
            ),
            f"silence {silence.kind} alerts",
        )

    def list_silences(
        self, *, ending_after: float | None = None, limit: int = 100
    ) -> list[AlertSilence]:
        """Return silences, the latest to end first.

        Args:
            ending_after: Only silences that end (or were lifted) after this Unix time: with
                the current time, the silences in force or yet to start.
            limit: At most this many.
        """
        where = ""
        params: list[Any] = [limit]
        if ending_after is not None:
            where = " WHERE ends_at > ? AND (lifted_at IS NULL OR lifted_at > ?)"
            params = [ending_after, ending_after, limit]
        rows = self._rows(
            f"SELECT {_SILENCE_COLUMNS} FROM alert_silences{where} "
            "ORDER BY ends_at DESC, silence_id LIMIT ?",
            params,
            "list silences",
        )
        return [AlertSilence(*row) for row in rows]

    def lift_silence(self, silence_id: str, *, by: str, at: float) -> bool:
        """End a silence now; false when it is unknown, already lifted or over."""
        self._apply(
            "UPDATE alert_silences SET lifted_by = ?, lifted_at = ? "
            "WHERE silence_id = ? AND lifted_at IS NULL AND ends_at > ?",
            (by, at, silence_id, at),
            f"lift silence {silence_id}",
        )
        rows = self._rows(
            "SELECT 1 FROM alert_silences WHERE silence_id = ? AND lifted_by = ? AND lifted_at = ?",
            (silence_id, by, at),
            "read a silence",
        )
        return bool(rows)

    # -- hand-off claims ----------------------------------------------------------------------

    def claim_handoff(self, claim: HandOffClaim, *, take_over: bool = False) -> HandOffClaim | None:
        """Claim an open hand-off; an earlier claim stands unless ``take_over``.

        Returns:
            The claim that stands, or ``None`` when the hand-off is not open (decided, unknown).
        """
        conflict = (
            "DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at"
            if take_over
            else "DO NOTHING"
        )
        self._apply(
            f"INSERT INTO handoff_claims ({_CLAIM_COLUMNS}) SELECT ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM handoffs WHERE handoff_id = ? AND status = 'open') "
            f"ON CONFLICT (handoff_id) {conflict}",
            (claim.handoff_id, claim.by, claim.at, claim.handoff_id),
            f"claim hand-off {claim.handoff_id}",
        )
        if not self._rows(
            "SELECT 1 FROM handoffs WHERE handoff_id = ? AND status = 'open'",
            (claim.handoff_id,),
            "read a hand-off",
        ):
            return None
        return self.handoff_claims([claim.handoff_id]).get(claim.handoff_id)

    def release_handoff(self, handoff_id: str, *, by: str) -> bool:
        """Drop ``by``'s claim on a hand-off; false when ``by`` does not hold it."""
        held = self._rows(
            "SELECT 1 FROM handoff_claims WHERE handoff_id = ? AND claimed_by = ?",
            (handoff_id, by),
            "read a hand-off claim",
        )
        self._apply(
            "DELETE FROM handoff_claims WHERE handoff_id = ? AND claimed_by = ?",
            (handoff_id, by),
            f"release hand-off {handoff_id}",
        )
        return bool(held)

    def handoff_claims(self, handoff_ids: Sequence[str]) -> dict[str, HandOffClaim]:
        """Return the claims on any of ``handoff_ids``, by hand-off id."""
        rows = self._among(
            f"SELECT {_CLAIM_COLUMNS} FROM handoff_claims WHERE handoff_id IN ({{}})",
            handoff_ids,
            "read hand-off claims",
        )
        return {row[0]: HandOffClaim(row[0], row[1], row[2]) for row in rows}

    # -- the decision log ---------------------------------------------------------------------

    def record_operator_action(self, action: OperatorAction) -> None:
        """Record an operator's decision (one with this id already recorded is kept)."""
        self._apply(
            f"INSERT INTO operator_actions ({_ACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (action_id) DO NOTHING",
            (
                action.action_id,
                action.at,
                action.operator,
                action.action,
                action.target,
                json.dumps(action.details, sort_keys=True, default=str),
            ),
            f"record {action.action} by {action.operator}",
        )

    def list_operator_actions(
        self,
        *,
        operator: str | None = None,
        action: str | None = None,
        target: str | None = None,
        before: tuple[float, str] | None = None,
        limit: int = 100,
    ) -> list[OperatorAction]:
        """Return operators' decisions, newest first.

        Args:
            operator: Only this operator's.
            action: Only this kind of decision.
            target: Only decisions on this run, breaker, alert...
            before: Keyset paging: only decisions older than ``(at, action_id)``.
            limit: At most this many.
        """
        clauses: list[str] = []
        params: list[Any] = []
        filters = (("operator = ?", operator), ("action = ?", action), ("target = ?", target))
        for clause, value in filters:
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if before is not None:
            clauses.append("(at, action_id) < (?, ?)")
            params += [before[0], before[1]]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            f"SELECT {_ACTION_COLUMNS} FROM operator_actions{where} "
            "ORDER BY at DESC, action_id DESC LIMIT ?",
            [*params, limit],
            "list operator actions",
        )
        return [OperatorAction(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
