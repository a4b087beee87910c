"""Group commit of the SQLite ledger at the ``power`` level: one fsync for many threads' writes.

A thread's writes wait as a :class:`Ticket`; the thread that leads the next commit writes every
waiting ticket in one transaction (:func:`write_batch`), refusing, ticket by ticket, a run taken
over or cancelled, and each waiting thread learns what became of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seawall.errors import RunCancelled
from seawall.ledger import _writes as writes

if TYPE_CHECKING:
    import sqlite3

    from seawall._payload import Blob
    from seawall.errors import LedgerError
    from seawall.ledger._inputs import StepRow


@dataclass(slots=True, eq=False)
class Ticket:
    """One run's writes waiting for a group commit, and what became of them.

    Attributes:
        rows: Step rows to write (an intent last, when ``durable``).
        updates: Step outcomes to write (:data:`~seawall.ledger._sqlbase.Statements`'s
            ``complete_step`` parameters without the fence's).
        blobs: Blobs the rows refer to.
        durable: The ticket guards a side effect: the commit carrying it is fsynced.
        epoch: The epoch of the lease the writer holds.
        run_id: The run written (from the rows or the updates).
        done: The leader wrote (or refused) the ticket.
        error: Why the leader's commit failed.
        refused: Why this ticket alone was refused (a takeover, a cancellation).
    """

    rows: list[StepRow]
    updates: list[tuple[Any, ...]]
    blobs: list[Blob]
    durable: bool = field(kw_only=True)
    epoch: int = field(kw_only=True)
    run_id: str = field(init=False)
    done: bool = field(init=False, default=False)
    error: LedgerError | None = field(init=False, default=None)
    refused: BaseException | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.run_id = str(self.rows[-1][0] if self.rows else self.updates[-1][6])

    def settle(self) -> None:
        """Raise what became of the ticket, if it was not written."""
        if self.error is not None:
            raise self.error
        if self.refused is not None:
            raise self.refused


def refuse(db: sqlite3.Connection, batch: list[Ticket]) -> None:
    """Refuse, in the batch's transaction, the tickets whose writes must not land.

    A ticket of a run taken over is refused whole; the intent of a cancelled run is refused
    (the read-only steps buffered before it are kept).
    """
    ids = sorted({t.run_id for t in batch})
    marks = ", ".join("?" * len(ids))
    held = {
        run_id: (epoch, cancelled, reason or "")
        for run_id, epoch, cancelled, reason in db.execute(
            "SELECT run_id, epoch, cancel_requested_at IS NOT NULL, cancel_reason "
            f"FROM runs WHERE run_id IN ({marks})",
            ids,
        ).fetchall()
    }
    for ticket in batch:
        epoch, cancelled, reason = held.get(ticket.run_id, (None, False, ""))
        if epoch != ticket.epoch:
            ticket.refused = writes.lease_lost(ticket.run_id, ticket.epoch, epoch, None)
            ticket.rows, ticket.updates, ticket.blobs = [], [], []
        elif cancelled and ticket.durable and ticket.rows:
            ticket.refused = RunCancelled(reason)
            ticket.rows = ticket.rows[:-1]
