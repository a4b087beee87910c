"""The dead-letter queue: every run that ended failed, listed, redriven at most once, purged.

A failed run enters the queue in the same transaction that records its failure, so nothing is
lost between the two. A redrive re-runs the entry live, with the current code, on the original
input snapshot (a ``live`` replay); claiming an entry is atomic, so two redrivers never take the
same one. A redriven run that fails again is a new entry linked to the old one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from seawall._failures import ErrorClass
from seawall.errors import ConfigurationError, RegistrationError, SeawallError
from seawall.ledger import DeadLetter, DeadLetterQuery

if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence

    from seawall._app import Seawall


@dataclass(frozen=True, slots=True)
class Redrive:
    """How one entry's redrive ended.

    Attributes:
        entry: The entry (as claimed).
        run_id: The run that redrove it (``None`` when it could not start).
        status: That run's final status, or ``error``.
        error: Why it could not start, when it could not.
    """

    entry: DeadLetter
    run_id: str | None
    status: str
    error: str | None = None


class DeadLetterQueue:
    """``app.dlq``: the failed runs of an app's ledger."""

    def __init__(self, app: Seawall) -> None:
        self._app = app

    @staticmethod
    def query(
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        status: str | None = "pending",
        limit: int = 1000,
        entry_ids: Sequence[str] = (),
    ) -> DeadLetterQuery:
        """Build a filter (``status=None`` matches every status; ``entry_ids``: only those).

        Raises:
            ConfigurationError: A filter value is not valid.
        """
        if limit < 0:
            raise ConfigurationError("limit must be >= 0")
        try:
            cls = None if error_class is None else ErrorClass(error_class)
        except ValueError as exc:
            raise ConfigurationError(
                f"{exc}; error classes: {[c.value for c in ErrorClass]}"
            ) from exc
        return DeadLetterQuery(
            agent=agent,
            error_class=cls,
            since=since,
            status=status,
            limit=limit,
            entry_ids=tuple(entry_ids),
        )

    def list(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        status: str | None = "pending",
        limit: int = 1000,
        entry_ids: Sequence[str] = (),
    ) -> list[DeadLetter]:
        """Entries matching the filters, oldest first (pending ones by default)."""
        query = self.query(
            agent=agent,
            error_class=error_class,
            since=since,
            status=status,
            limit=limit,
            entry_ids=entry_ids,
        )
        return self._app.store.list_dead_letters(query)

    def redrive(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        limit: int = 1000,
        rate: float | None = None,
        dry_run: bool = False,
        entry_ids: Sequence[str] = (),
    ) -> builtins.list[Redrive]:
        """Re-run matching pending entries live with the current code, each at most once.

        Args:
            agent: Only entries of this agent.
            error_class: Only entries of this class.
            since: Only entries that failed at or after this Unix time.
            limit: At most this many entries.
            rate: At most this many redrives per second.
            dry_run: Only report what would be redriven (nothing is claimed).
            entry_ids: Only these entries (those still pending and matching the other
                filters): what an operator saw in a dry run and confirmed.

        Returns:
            One outcome per entry redriven (or, for a dry run, matched).
        """
        result: builtins.list[Redrive] = self._app._sync(  # noqa: SLF001 - the app's sync bridge
            self.aredrive(
                agent=agent,
                error_class=error_class,
                since=since,
                limit=limit,
                rate=rate,
                dry_run=dry_run,
                entry_ids=entry_ids,
            ),
            "dlq.redrive",
            "dlq.aredrive",
        )
        return result

    async def aredrive(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        limit: int = 1000,
        rate: float | None = None,
        dry_run: bool = False,
        entry_ids: Sequence[str] = (),
    ) -> builtins.list[Redrive]:
        """Async twin of :meth:`redrive`."""
        if rate is not None and rate <= 0:
            raise ConfigurationError(
                f"rate={rate!r} must be a positive number of redrives per second"
            )
        query = self.query(
            agent=agent, error_class=error_class, since=since, limit=limit, entry_ids=entry_ids
        )
        # Entries created by this call's own failed redrives are not taken again by it.
        query = replace(query, until=time.time())
        app = self._app
        if dry_run:
            return [Redrive(e, None, "would redrive") for e in app.store.list_dead_letters(query)]
        outcomes: builtins.list[Redrive] = []
        skipped_agents: set[str] = set()
        interval = 0.0 if rate is None else 1.0 / rate
        next_start = time.monotonic()
        while len(outcomes) < limit:
            entry = app.store.claim_dead_letter(query, app.leases.owner, time.time())
            if entry is None:
                break
            delay = next_start - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_start = time.monotonic() + interval
            try:
                replayed = await app.areplay(entry.run_id, mode="live")
            except RegistrationError as exc:
                # This app cannot run the entry's agent: leave it for a redriver that can.
                app.store.release_dead_letter(entry.entry_id)
                outcomes.append(Redrive(entry, None, "error", exc.message))
                skipped_agents.add(entry.agent)
                query = replace(query, excluded=tuple(sorted(skipped_agents)))
                continue
            except SeawallError as exc:
                app.store.finish_dead_letter(
                    entry.entry_id,
                    redrive_run_id="",
                    result=f"error: {exc.message}",
                    at=time.time(),
                )
                outcomes.append(Redrive(entry, None, "error", exc.message))
                continue
            status = replayed.run.status.value
            app.store.finish_dead_letter(
                entry.entry_id, redrive_run_id=replayed.run.run_id, result=status, at=time.time()
            )
            outcomes.append(Redrive(entry, replayed.run.run_id, status))
        return outcomes

    def purge(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        limit: int = 1_000_000,
    ) -> int:
        """Mark matching pending entries purged (they stay in the ledger); return how many."""
        query = self.query(agent=agent, error_class=error_class, since=since, limit=limit)
        return self._app.store.purge_dead_letters(query)
