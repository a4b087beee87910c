"""``app.handoffs``: outputs waiting for a person, approved or rejected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from seawall.errors import HandOffNotFoundError
from seawall.runtime.verification import decide

if TYPE_CHECKING:
    import builtins

    from seawall._result import RunResult
    from seawall.ledger import HandOffRecord
    from seawall.runtime.services import Runtime

_KEEP: Final[Any] = object()
"""``output=`` not given: the run's own output is committed."""


class HandOffs:
    """``app.handoffs``: hand-offs to a person (``on_drift="handoff"``) and their decisions.

    Deciding one finishes its run (committing or failing it), so each decision has an async
    twin: ``approve`` / ``aapprove``, ``reject`` / ``areject``.
    """

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def list(
        self, *, run_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> builtins.list[HandOffRecord]:
        """Return hand-offs to a person, newest first.

        Args:
            run_id: Only this run's.
            status: Only ``open``, ``approved`` or ``rejected`` ones.
            limit: At most this many.
        """
        return self._rt.store.list_handoffs(run_id=run_id, status=status, limit=limit)

    def get(self, handoff_id: str) -> HandOffRecord:
        """Return one hand-off.

        Raises:
            HandOffNotFoundError: No hand-off has this id.
        """
        found = self._rt.store.get_handoff(handoff_id)
        if found is None:
            raise HandOffNotFoundError(
                f"no hand-off {handoff_id!r}; list them with `seawall handoffs list`",
                handoff_id=handoff_id,
            )
        return found

    def approve(
        self,
        handoff_id: str,
        *,
        output: Any = _KEEP,
        by: str | None = None,
        note: str | None = None,
    ) -> RunResult:
        """Approve a hand-off: the run's output (or ``output``, verified again) is committed.

        Raises:
            HandOffNotFoundError: No hand-off has this id.
            HandOffDecidedError: It was already decided.
            VerificationError: The edited output failed the agent's verifiers (still open).
            UsageError: Called inside a running event loop (use ``await aapprove``).
        """
        return self._rt.sync(
            self.aapprove(handoff_id, output=output, by=by, note=note),
            "app.handoffs.approve",
            "app.handoffs.aapprove",
        )

    async def aapprove(
        self,
        handoff_id: str,
        *,
        output: Any = _KEEP,
        by: str | None = None,
        note: str | None = None,
    ) -> RunResult:
        """Async twin of :meth:`approve`."""
        self._rt.check_open()
        edited = output is not _KEEP
        return await decide(
            self._rt,
            handoff_id,
            approve=True,
            output=output if edited else None,
            edited=edited,
            by=by,
            note=note,
        )

    def reject(self, handoff_id: str, *, reason: str, by: str | None = None) -> RunResult:
        """Reject a hand-off: the run fails ``silent_drift`` with the reason.

        Raises:
            HandOffNotFoundError: No hand-off has this id.
            HandOffDecidedError: It was already decided.
            UsageError: Called inside a running event loop (use ``await areject``).
        """
        return self._rt.sync(
            self.areject(handoff_id, reason=reason, by=by),
            "app.handoffs.reject",
            "app.handoffs.areject",
        )

    async def areject(self, handoff_id: str, *, reason: str, by: str | None = None) -> RunResult:
        """Async twin of :meth:`reject`."""
        self._rt.check_open()
        return await decide(
            self._rt, handoff_id, approve=False, output=None, edited=False, by=by, note=reason
        )


__all__ = ["HandOffs"]
