"""Starting, executing and resuming runs: the engine the services reach back into.

:func:`start` builds an app's :class:`~seawall.runtime.services.Runtime` with this engine and
its takeover sweeps; the facade calls it once. A run flows one way from here: the launcher
records it, checks its agent's breaker and concurrency bound, and hands it to the runner
(:func:`~seawall.runtime.runner.execute_run`), which gives the agent its context and journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from seawall import _payload
from seawall._failures import RunStatus
from seawall.errors import (
    BreakerOpenError,
    ConfigurationError,
    ExecutorError,
    LeaseLostError,
    LedgerError,
    UsageError,
)
from seawall.runtime.coordinator import run_graph
from seawall.runtime.resume import resume_agent_run
from seawall.runtime.runner import execute_run
from seawall.runtime.services import Runtime
from seawall.runtime.takeover import Takeover, resumable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from seawall._graph import Graph
    from seawall._payload import Blob
    from seawall._result import RunResult
    from seawall.ledger import ClaimedRun, RunRecord
    from seawall.runtime.catalog import Registry
    from seawall.runtime.config import Config
    from seawall.runtime.executor import Executor
    from seawall.runtime.host import Host
    from seawall.runtime.registry import AgentSpec

logger = logging.getLogger("seawall")

CLAIMABLE_AGENTS = 500
"""Agents an app registers at most for its workers to claim and start a run in one write."""
BREAKER_READS = 2
"""Agent breakers a worker reads before a claim at most, when it has not seen them closed lately."""


def start(config: Config, registry: Registry, executor: Executor) -> tuple[Runtime, Launcher]:
    """Build the runtime of one app: its services, this engine, its takeover sweeps.

    Returns:
        The services, and the engine they reach back into (``runtime.engine``).

    Raises:
        LedgerError: The ledger cannot be opened.
    """
    launchers: list[Launcher] = []

    def engine(rt: Runtime) -> Launcher:
        launchers.append(Launcher(rt, executor))
        return launchers[-1]

    rt = Runtime(config, registry, engine=engine, sweeps=lambda rt: Takeover(rt, executor))
    return rt, launchers[-1]


class Launcher:
    """Starts, executes and resumes the runs of one app (the runtime's :class:`Engine`).

    Args:
        rt: The app's services.
        executor: Where the app's runs execute.
    """

    def __init__(self, rt: Runtime, executor: Executor) -> None:
        self.rt = rt
        self.executor = executor

    async def execute(
        self,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None,
        workflow: str | None,
    ) -> RunResult:
        """Execute a run of ``spec`` on the app's executor."""
        return await self.executor.execute(
            self.rt, spec, inputs, parent_run_id=parent_run_id, node=node, workflow=workflow
        )

    async def run_graph(self, graph: Graph, inputs: dict[str, Any]) -> RunResult:
        """Record a run of ``graph`` and see it through (its nodes run as child runs).

        Raises:
            ConfigurationError: A graph input is missing.
        """
        rt = self.rt
        rt.registry.add_graph(graph)
        missing = sorted(graph.inputs - set(inputs))
        if missing:
            raise ConfigurationError(
                f"graph {graph.name!r} needs the inputs {missing}; pass them to app.run"
            )
        input_hash, column, blobs = rt.codec.snapshot(inputs, f"inputs of graph {graph.name!r}")
        run_id, _ = await rt.io.run(
            rt.open_run, graph.name, input_hash, column, None, blobs, workflow=graph.name
        )
        return await run_graph(rt, graph, run_id, inputs, epoch=1)

    async def start_child(
        self,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None = None,
        workflow: str | None = None,
        host: Host | None = None,
    ) -> RunResult:
        """Record and execute a run of ``spec`` (a child of ``parent_run_id`` when given).

        An agent whose breaker is open is not started: its run is recorded ``skipped``, class
        ``cascade``, cause ``breaker_open``.
        """
        rt = self.rt
        run_id, now, begun = await rt.io.together(
            rt.begin_run, spec, inputs, parent_run_id=parent_run_id, node=node, workflow=workflow
        )
        if isinstance(begun, BreakerOpenError):
            return await rt.io.run(rt.refused, spec, run_id, begun, 1)
        child = parent_run_id is not None and node is None
        return await self.execute_recorded(
            spec, run_id, inputs, now, host=host, child=child, begun=begun
        )

    async def execute_recorded(
        self,
        spec: AgentSpec,
        run_id: str,
        inputs: dict[str, Any],
        now: float,
        *,
        host: Host | None = None,
        child: bool = False,
        begun: str | None = None,
    ) -> RunResult:
        """Execute a recorded run of ``spec`` leased to this process, unless its breaker is open.

        A child of a running agent (``child``) takes no concurrency slot: its parent holds one
        already, and waiting for a second could wait forever. ``begun`` is the input hash of a
        run recorded with its first attempt started (:meth:`Runtime.begin_run`).
        """
        rt = self.rt
        if spec.breaker is not None and begun is None:
            try:
                await rt.io.run(rt.breakers.check, f"agent:{spec.name}", "agent", spec.breaker)
            except BreakerOpenError as exc:
                return await rt.io.run(rt.refused, spec, run_id, exc, 1)
        if child:
            result = await execute_run(
                rt, spec, run_id, inputs, epoch=1, started=now, host=host, begun=begun
            )
        else:
            async with rt.slots_of(spec):
                result = await execute_run(
                    rt, spec, run_id, inputs, epoch=1, started=now, begun=begun
                )
        try:
            await self._count(spec, result)
        except LedgerError:
            # The run's end is recorded; a ledger gone since costs the breaker one count, never
            # the caller its result.
            logger.warning(
                "run %s: its outcome was not counted by the breaker of agent %r (the ledger "
                "became unreachable after the run ended)",
                run_id,
                spec.name,
                exc_info=True,
            )
        return result

    async def resume_run(self, run: RunRecord, *, host: Host | None = None) -> RunResult | None:
        """Resume one run whose lease lapsed; ``None`` when another process holds it."""
        return await self._resume_one(run, time.time(), host=host)

    async def resume(self, run_id: str | None) -> list[RunResult]:
        """Resume runs whose owner died (only ``run_id`` when given), and take lost ones.

        Raises:
            UsageError: ``run_id`` ended, or its lease has not lapsed.
            RunNotFoundError: No run has this id.
        """
        rt = self.rt
        now = time.time()
        if run_id is not None:
            run = rt.get_run(run_id)
            if run.status.final:
                raise UsageError(
                    f"run {run_id} already ended {run.status.value}; nothing to resume "
                    "(replay it instead)",
                    run_id=run_id,
                )
            if run.lease_expires_at is not None and run.lease_expires_at >= now:
                raise UsageError(
                    f"run {run_id} is still leased by {run.lease_owner} until "
                    f"{time.ctime(run.lease_expires_at)}; it is alive or its lease has not lapsed",
                    run_id=run_id,
                )
            if run.agent not in rt.registry.graphs:
                rt.registry.agent(run.agent)
            candidates = [run]
            lost = []
        else:
            expired = await rt.io.run(rt.store.expired_runs, now, 10_000)
            candidates = resumable(expired, rt.registry.agents, rt.registry.graphs)
            lost = await rt.io.run(rt.takeover.lost_runs, now)
        jobs = [self._resume_one(run, now) for run in candidates]
        jobs += [self.take(run.run_id) for run in lost]
        results = await asyncio.gather(*jobs)
        return [result for result in results if result is not None]

    async def take(self, run_id: str) -> RunResult | None:
        """Claim a queued run (or one whose owner died) and execute it here to its end.

        A run that already ended is not executed again: its recorded result is returned. A
        run whose agent is not registered here is recorded failed with an error saying so.

        A run of an agent with nothing to wait for before its claim (no concurrency bound,
        its breaker known closed) is claimed, started and read in one ledger transaction
        (:meth:`Store.claim_and_start`); any other goes the longer way, run read first.

        Raises:
            RunNotFoundError: No run has this id.
        """
        rt = self.rt
        rt.check_open()
        now = time.time()
        agents, unread = self._claimable()
        if unread:
            # A breaker or two not read for a moment: reading them costs what reading the run
            # (the longer way) would.
            agents += await rt.io.run(self._closed_among, unread)
        if agents:
            claimed = await rt.io.run(
                rt.store.claim_and_start, run_id, rt.leases.owner, rt.leases.expiry(), now, agents
            )
            if claimed is not None:
                return await self._execute_claimed(claimed, now)
        run = await rt.io.run(rt.get_run, run_id)
        if run.status.final or run.status is RunStatus.AWAITING_HUMAN:
            return await rt.io.run(rt.result_of, run_id)
        spec = rt.registry.agents.get(run.agent)
        if (
            spec is not None
            and spec.name not in agents
            and (run.workflow is None or run.node is not None)
            and await rt.io.run(self._admits_now, spec)
        ):
            # Its breaker was not known closed a moment ago; it is now.
            claimed = await rt.io.run(
                rt.store.claim_and_start,
                run_id,
                rt.leases.owner,
                rt.leases.expiry(),
                now,
                [spec.name],
            )
            return None if claimed is None else await self._execute_claimed(claimed, now)
        return await self._take_read(run, now)

    def _claimable(self) -> tuple[list[str], list[str]]:
        """The agents whose runs this process claims and starts at once (see :meth:`take`).

        Returns:
            Those known to be, and those whose breaker is to be read first (at most
            :data:`BREAKER_READS`; when more are due, none is read).
        """
        breakers = self.rt.breakers
        agents = self.rt.registry.agents
        if len(agents) > CLAIMABLE_AGENTS:
            return [], []
        known, unread = [], []
        for name, spec in agents.items():
            if spec.max_concurrency is not None:
                continue
            if spec.breaker is None or breakers.admits(f"agent:{name}"):
                known.append(name)
            else:
                unread.append(name)
        return known, unread if len(unread) <= BREAKER_READS else []

    def _closed_among(self, names: list[str]) -> list[str]:
        """Those of ``names`` whose agent breaker is closed (read from the ledger)."""
        return [name for name in names if self.rt.breakers.closed(f"agent:{name}", "agent")]

    def _admits_now(self, spec: AgentSpec) -> bool:
        """Whether a run of ``spec`` may be claimed and started at once (breaker read if due)."""
        if spec.max_concurrency is not None:
            return False
        return spec.breaker is None or self.rt.breakers.closed(f"agent:{spec.name}", "agent")

    async def _execute_claimed(self, claimed: ClaimedRun, now: float) -> RunResult | None:
        """Execute a run :meth:`Store.claim_and_start` claimed for this process."""
        rt, run = self.rt, claimed.run
        spec = rt.registry.agent(run.agent)
        if claimed.started:
            blobs = claimed.blobs

            def fetch(hashes: list[str]) -> Mapping[str, Blob]:
                missing = [h for h in hashes if h not in blobs]
                found = dict(rt.store.get_blobs(missing)) if missing else {}
                return {**found, **{h: blobs[h] for h in hashes if h in blobs}}

            inputs = _payload.unpack(claimed.input, fetch)
            try:
                result: RunResult | None = await execute_run(
                    rt,
                    spec,
                    run.run_id,
                    inputs,
                    epoch=run.epoch,
                    started=run.start_time,
                    begun=run.input_hash,
                    begun_at=now,
                )
            except LeaseLostError:
                return None  # as resume_agent_run: the run is another owner's now
        else:
            result = await resume_agent_run(rt, run, now, epoch=run.epoch)
        if result is not None:
            await self._count(spec, result)
        return result

    async def _count(self, spec: AgentSpec, result: RunResult) -> None:
        """Feed a run's outcome to its agent's breaker; on a ledger thread only when needed.

        A success of an agent whose breaker is known closed and clean records nothing
        (:meth:`Runtime.counted`): it costs no ledger call, and no thread hand-off for one.
        """
        if self.rt.counted(spec, result):
            await self.rt.io.run(self.rt.count, spec, result)

    async def _take_read(self, run: RunRecord, now: float) -> RunResult | None:
        """Take a run read from the ledger: claim it, ask its breaker, wait for a slot."""
        rt, run_id = self.rt, run.run_id
        spec = rt.registry.agents.get(run.agent)
        claim = rt.store.claim_run
        if spec is None or (run.workflow is not None and run.node is None):
            epoch = await rt.io.run(claim, run_id, rt.leases.owner, rt.leases.expiry(), now)
            if epoch is None:
                return None
            return await rt.io.run(self._unrunnable, run, epoch)
        epoch = None
        if run.status is RunStatus.PENDING and spec.breaker is not None:
            epoch = await rt.io.run(claim, run_id, rt.leases.owner, rt.leases.expiry(), now)
            if epoch is None:
                return None
            try:
                await rt.io.run(rt.breakers.check, f"agent:{spec.name}", "agent", spec.breaker)
            except BreakerOpenError as exc:
                return await rt.io.run(rt.refused, spec, run_id, exc, epoch)
        async with rt.slots_of(spec):
            result = await resume_agent_run(rt, run, now, epoch=epoch)
        if result is not None:
            await self._count(spec, result)
        return result

    def _unrunnable(self, run: RunRecord, epoch: int) -> RunResult:
        """Record that this process cannot execute ``run`` (its agent is not registered)."""
        rt = self.rt
        kind = "graph" if run.workflow is not None and run.node is None else "agent"
        error = ExecutorError(
            f"the worker {rt.leases.owner} has no {kind} named {run.agent!r} registered "
            f"(its agents: {sorted(rt.registry.agents) or 'none'}); start the workers with the "
            "app that registers it (the same module the submitter uses), then redrive the run: "
            f"seawall dlq redrive --agent {run.agent}",
            run_id=run.run_id,
            agent=run.agent,
            worker=rt.leases.owner,
        )
        rt.not_executed(run.run_id, error, epoch, attempts=run.attempts)
        return rt.result_of(run.run_id)

    async def _resume_one(
        self, run: RunRecord, now: float, *, host: Host | None = None
    ) -> RunResult | None:
        rt = self.rt
        graphs = rt.registry.graphs
        if run.node is None and run.workflow is not None and run.agent in graphs:
            epoch = await rt.io.run(
                rt.store.claim_run, run.run_id, rt.leases.owner, rt.leases.expiry(), now
            )
            if epoch is None:
                return None
            inputs = await rt.io.run(rt.inputs_of, run.run_id)
            return await run_graph(
                rt, graphs[run.agent], run.run_id, inputs, epoch=epoch, attempt=run.attempts + 1
            )
        result = await resume_agent_run(rt, run, now, host=host)
        if result is not None:
            await self._count(rt.registry.agents[run.agent], result)
        return result


__all__ = ["Launcher", "start"]
