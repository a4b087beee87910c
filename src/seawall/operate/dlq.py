"""The dead-letter queue: runs that ended failed, redriven at most once, repeating no effect.

A failed run (or one an open breaker refused) enters the queue in the same transaction that
records its end, so nothing is lost between the two. A **redrive** continues the failed run's
journal with the current code, in a new run linked to it (``replay_of``, mode ``redrive``): the
steps that completed are served with their original idempotency keys, and the failed step and what
follows execute. Only a run whose side effects were all compensated starts afresh (new keys are
then right); a ``fresh`` redrive of any other run repeats its side effects and must be confirmed.

An entry whose run left a step **in doubt** (a non-idempotent call in flight when its process
died) is not redriven until an operator says what happened: :meth:`DeadLetterQueue.resolve`
(``seawall dlq resolve RUN --happened [--result JSON] | --did-not-happen``). "It happened"
completes the step (a redrive serves it); "it did not happen" marks it failed (a redrive issues
it again, with its original key).

Claiming an entry is atomic and is a lease: the redriver names the redrive run in the entry in
the transaction that records that run, and that run's end settles the entry. A redriver that dies
after recording the run leaves an ordinary run that any process resumes; one that dies before
leaves a claim that expires after two lease periods.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, RunStatus
from seawall._ids import new_run_id
from seawall.errors import ConfigurationError, RegistrationError, SeawallError, UsageError
from seawall.ledger import DeadLetter, DeadLetterQuery, NewRun, StepResolution
from seawall.runtime.lineage import Lineage
from seawall.runtime.runner import execute_run
from seawall.runtime.serving import STARTED

if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence

    from seawall.ledger import RunRecord, StepRecord
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Redrive:
    """How one entry's redrive went.

    Attributes:
        entry: The entry (as claimed, or as matched by a dry run).
        run_id: The run that redrove it (``None`` when it did not start).
        status: That run's final status; ``would redrive`` (dry run); ``in_doubt`` (it waits
            for an operator's resolution); ``error`` (it could not start).
        error: Why it did not start, when it did not.
        mode: ``continue`` (the journal goes on, completed steps served) or ``fresh``.
        repeats: For a fresh redrive: the side effects it repeats (``step tool key``).
    """

    entry: DeadLetter
    run_id: str | None
    status: str
    error: str | None = None
    mode: str = "continue"
    repeats: tuple[str, ...] = ()


class DeadLetterQueue:
    """``app.dlq``: the failed runs of an app's ledger."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    @staticmethod
    def query(
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        status: str | None = "open",
        limit: int = 1000,
        run_id: str | None = None,
        entry_ids: Sequence[str] = (),
    ) -> DeadLetterQuery:
        """Build a filter of entries.

        ``status=None`` matches every status, ``open`` pending or claimed ones; ``entry_ids``
        keeps only those entries.

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
            run_id=run_id,
            entry_ids=tuple(entry_ids),
        )

    def list(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        status: str | None = "open",
        limit: int = 1000,
        entry_ids: Sequence[str] = (),
    ) -> list[DeadLetter]:
        """Entries matching the filters, oldest first (pending and claimed ones by default)."""
        query = self.query(
            agent=agent,
            error_class=error_class,
            since=since,
            status=status,
            limit=limit,
            entry_ids=entry_ids,
        )
        return self._rt.store.list_dead_letters(query)

    # -- redrive ------------------------------------------------------------------------------

    def redrive(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        run_id: str | None = None,
        limit: int = 1000,
        rate: float | None = None,
        dry_run: bool = False,
        fresh: bool = False,
        repeat_effects: bool = False,
        entry_ids: Sequence[str] = (),
    ) -> builtins.list[Redrive]:
        """Redrive matching entries with the current code, each at most once.

        Each continues its failed run's journal (completed steps served with their original
        keys); a run whose side effects were all compensated starts afresh. Entries left in
        doubt wait for :meth:`resolve`.

        Args:
            agent: Only entries of this agent.
            error_class: Only entries of this class.
            since: Only entries that failed at or after this Unix time.
            run_id: Only the entry of this run.
            limit: At most this many entries.
            rate: At most this many redrives per second.
            dry_run: Only report what would be redriven, and how (nothing is claimed).
            fresh: Start every run afresh (new idempotency keys) instead of continuing it.
            repeat_effects: Confirm a fresh redrive of runs whose side effects were not
                compensated: they will happen again (the dry run lists them).
            entry_ids: Only these entries (those still pending and matching the other
                filters): what an operator saw in a dry run and confirmed.

        Returns:
            One outcome per entry matched.
        """
        result: builtins.list[Redrive] = self._rt.sync(
            self.aredrive(
                agent=agent,
                error_class=error_class,
                since=since,
                run_id=run_id,
                limit=limit,
                rate=rate,
                dry_run=dry_run,
                fresh=fresh,
                repeat_effects=repeat_effects,
                entry_ids=entry_ids,
            ),
            "app.dlq.redrive",
            "app.dlq.aredrive",
        )
        return result

    async def aredrive(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        run_id: str | None = None,
        limit: int = 1000,
        rate: float | None = None,
        dry_run: bool = False,
        fresh: bool = False,
        repeat_effects: bool = False,
        entry_ids: Sequence[str] = (),
    ) -> builtins.list[Redrive]:
        """Async twin of :meth:`redrive`."""
        if rate is not None and rate <= 0:
            raise ConfigurationError(
                f"rate={rate!r} must be a positive number of redrives per second"
            )
        rt = self._rt
        query = self.query(
            agent=agent,
            error_class=error_class,
            since=since,
            limit=limit,
            run_id=run_id,
            status="pending",
            entry_ids=entry_ids,
        )
        # Entries created by this call's own failed redrives are not taken again by it.
        query = replace(query, until=time.time())
        if dry_run:
            return [await self._plan(entry, fresh) for entry in rt.store.list_dead_letters(query)]
        await self._finish_stalled()
        outcomes: builtins.list[Redrive] = []
        interval = 0.0 if rate is None else 1.0 / rate
        next_start = time.monotonic()
        while len(outcomes) < limit:
            stale = time.time() - 2 * rt.leases.duration
            entry = await rt.io.run(
                rt.store.claim_dead_letter,
                query,
                rt.leases.owner,
                time.time(),
                stale_before=stale,
            )
            if entry is None:
                break
            delay = next_start - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_start = time.monotonic() + interval
            outcome = await self._redrive_one(entry, fresh=fresh, repeat_effects=repeat_effects)
            if outcome.run_id is None:
                # It did not start: give it back, and do not take it again in this call.
                await rt.io.run(rt.store.release_dead_letter, entry.entry_id)
                query = replace(query, excluded_runs=(*query.excluded_runs, entry.run_id))
            outcomes.append(outcome)
        return outcomes

    async def _plan(self, entry: DeadLetter, fresh: bool) -> Redrive:
        """What redriving ``entry`` would do (a dry run)."""
        rt = self._rt
        steps = await rt.io.run(rt.store.load_steps, entry.run_id)
        if _in_doubt(steps):
            return Redrive(entry, None, "in_doubt", _waits(entry.run_id, steps), "continue")
        mode = "fresh" if fresh or await self._compensated(entry.run_id, steps) else "continue"
        repeats = await self._repeats(entry.run_id, steps) if mode == "fresh" else ()
        return Redrive(entry, None, "would redrive", None, mode, repeats)

    async def _redrive_one(
        self, entry: DeadLetter, *, fresh: bool, repeat_effects: bool
    ) -> Redrive:
        """Redrive one claimed entry to its end (or say why it cannot start)."""
        rt = self._rt
        original = await rt.io.run(rt.get_run, entry.run_id)
        try:
            spec = rt.registry.agent(original.agent)
        except RegistrationError as exc:
            # This app cannot run the entry's agent: leave it for a redriver that can.
            return Redrive(entry, None, "error", exc.message)
        steps = await rt.io.run(rt.store.load_steps, entry.run_id)
        if _in_doubt(steps):
            return Redrive(entry, None, "in_doubt", _waits(entry.run_id, steps))
        compensated = await self._compensated(entry.run_id, steps)
        mode = "fresh" if fresh or compensated else "continue"
        repeats = () if compensated else await self._repeats(entry.run_id, steps)
        if mode == "fresh" and repeats and not repeat_effects:
            return Redrive(
                entry,
                None,
                "error",
                f"a fresh redrive of run {entry.run_id} would repeat {len(repeats)} side "
                f"effect(s) that were not compensated ({'; '.join(repeats)}); confirm with "
                "repeat_effects=True (CLI: --fresh --yes), or redrive it without --fresh to "
                "continue its journal",
                mode,
                repeats,
            )
        try:
            return await self._start(entry, original, spec, mode, repeats)
        except SeawallError as exc:
            return Redrive(entry, None, "error", exc.message, mode, repeats)

    async def _start(
        self,
        entry: DeadLetter,
        original: RunRecord,
        spec: AgentSpec,
        mode: str,
        repeats: tuple[str, ...],
    ) -> Redrive:
        rt = self._rt
        columns = await rt.io.run(rt.store.get_run_io, original.run_id)
        if columns is None:
            return Redrive(entry, None, "error", f"run {original.run_id} has no input snapshot")
        inputs = await rt.io.run(rt.inputs_of, original.run_id)
        now = time.time()
        run = NewRun(
            run_id=new_run_id(),
            agent=spec.name,
            start_time=now,
            input_hash=original.input_hash,
            input_column=columns[0],
            code_version=spec.code_version,
            owner=rt.leases.owner,
            lease_expires_at=now + rt.leases.duration,
            parent_run_id=original.parent_run_id,
            replay_of=original.run_id,
            replay_mode="redrive" if mode == "continue" else "live",
            workflow=original.workflow,
            node=original.node,
            status=RunStatus.RUNNING,
        )
        source = original.run_id if mode == "continue" else None
        began = await rt.io.run(
            rt.store.begin_redrive, entry.entry_id, rt.leases.owner, run, source
        )
        if not began:
            return Redrive(entry, None, "error", "the claim expired before the redrive began")
        lineage = None
        if mode == "continue":
            attempts = await rt.io.run(rt.store.list_attempts, original.run_id)
            base = attempts[-1].base_seq if attempts else 0
            lineage = Lineage(base=base, journaled=True)
        result = await execute_run(
            rt, spec, run.run_id, inputs, epoch=1, lineage=lineage, started=now
        )
        return Redrive(entry, run.run_id, result.status.value, None, mode, repeats)

    async def _finish_stalled(self) -> None:
        """See through the redrives of redrivers that died: their runs are ordinary runs."""
        rt = self._rt
        claimed = await rt.io.run(
            rt.store.list_dead_letters, DeadLetterQuery(status="redriving", limit=10_000)
        )
        now = time.time()
        for entry in claimed:
            if entry.redrive_run_id is None:
                continue
            run = await rt.io.run(rt.store.get_run, entry.redrive_run_id)
            if (
                run is not None
                and not run.status.final
                and run.lease_expires_at is not None
                and run.lease_expires_at < now
                and run.agent in rt.registry.agents
            ):
                await rt.engine.resume_run(run)

    async def _compensated(self, run_id: str, steps: builtins.list[StepRecord]) -> bool:
        """Whether the run had side effects and every one was undone by its compensation."""
        effects = [s for s in steps if s.mutating and s.status == "completed" and s.kind == "tool"]
        if not effects:
            return False
        undone = {
            c.seq
            for c in await self._rt.io.run(self._rt.store.list_compensations, run_id)
            if c.status == "completed"
        }
        return all(s.seq in undone for s in effects)

    async def _repeats(self, run_id: str, steps: builtins.list[StepRecord]) -> tuple[str, ...]:
        """The side effects a fresh start would make again (completed and not compensated)."""
        undone = {
            c.seq
            for c in await self._rt.io.run(self._rt.store.list_compensations, run_id)
            if c.status == "completed"
        }
        return tuple(
            f"step {s.seq} {s.name} {s.idempotency_key}"
            for s in steps
            if s.mutating and s.status == "completed" and s.seq not in undone
        )

    # -- in-doubt resolution --------------------------------------------------------------------

    def resolve(
        self,
        run_id: str,
        *,
        happened: bool,
        result: Any = _MISSING,
        step: int | None = None,
        by: str | None = None,
        note: str | None = None,
    ) -> StepResolution:
        """Say what became of a run's in-doubt step, so its redrive can go on safely.

        Args:
            run_id: The failed run.
            happened: ``True``: the effect took place (a redrive serves the step, with
                ``result`` as its result); ``False``: it did not (a redrive issues it again,
                with its original idempotency key).
            result: For ``happened``: the step's result as the target system reports it.
            step: The in-doubt step, when the run has more than one.
            by: Who decides (recorded).
            note: Why (recorded).

        Returns:
            The resolution as recorded.

        Raises:
            RunNotFoundError: No such run.
            UsageError: The run has no in-doubt step (or several and ``step`` is missing), or
                it has not ended.
        """
        rt = self._rt
        run = rt.get_run(run_id)
        if not run.status.final:
            raise UsageError(
                f"run {run_id} is {run.status.value}; resolve its in-doubt step once it has "
                "ended (it is in the DLQ as in_doubt)",
                run_id=run_id,
            )
        doubtful = [s for s in rt.store.load_steps(run_id) if _doubtful(s)]
        if step is not None:
            doubtful = [s for s in doubtful if s.seq == step]
        if len(doubtful) != 1:
            listed = ", ".join(f"step {s.seq} ({s.name})" for s in doubtful) or "none"
            raise UsageError(
                f"run {run_id} has {len(doubtful)} in-doubt step(s) matching ({listed}); "
                + ("name one with --step N" if doubtful else "there is nothing to resolve"),
                run_id=run_id,
            )
        target = doubtful[0]
        response = blobs = None
        result_json = None
        if happened and result is not _MISSING:
            response, blobs = rt.codec.stored(result, f"result of step {target.seq}")
            result_json = json.dumps(result, sort_keys=True, default=str)
        elif happened:
            response, blobs = rt.codec.stored(None, f"result of step {target.seq}")
        at = time.time()
        done = rt.store.resolve_step(
            run_id,
            target.seq,
            happened=happened,
            response=response,
            result_json=result_json,
            blobs=blobs or [],
            by=by,
            note=note,
            at=at,
        )
        if not done:
            raise UsageError(
                f"step {target.seq} of run {run_id} was resolved meanwhile", run_id=run_id
            )
        return StepResolution(
            run_id=run_id,
            seq=target.seq,
            decision="happened" if happened else "did_not_happen",
            result=None if result is _MISSING else result,
            decided_by=by,
            decided_at=at,
            note=note,
        )

    def purge(
        self,
        *,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        limit: int = 1_000_000,
    ) -> int:
        """Mark matching pending entries purged (they stay in the ledger); return how many."""
        query = self.query(
            agent=agent, error_class=error_class, since=since, limit=limit, status="pending"
        )
        return self._rt.store.purge_dead_letters(query)


def _doubtful(step: StepRecord) -> bool:
    return step.mutating and step.status == STARTED and step.kind != "run"


def _in_doubt(steps: builtins.list[StepRecord]) -> bool:
    return any(_doubtful(s) for s in steps)


def _waits(run_id: str, steps: builtins.list[StepRecord]) -> str:
    listed = ", ".join(
        f"step {s.seq} ({s.name}, key {s.idempotency_key})" for s in steps if _doubtful(s)
    )
    return (
        f"run {run_id} has a call in doubt ({listed}): check the target system, then say what "
        f"happened: seawall dlq resolve {run_id} --happened [--result JSON] | --did-not-happen"
    )
