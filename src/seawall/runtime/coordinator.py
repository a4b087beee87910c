"""The graph coordinator: schedules ready nodes, contains failures, survives crashes.

A graph run is a run of its own (``workflow`` = the graph's name), with one child run per node
(``parent_run_id`` = the graph run, ``node`` = the node's name). Ready nodes run concurrently up
to the graph's bound. When a node fails for good, or its agent's breaker refuses it, nothing
downstream of it is started: each such node is recorded ``skipped`` with ``error_class``
``cascade`` and a ``blocked_by`` chain down to the node that failed. Independent branches run to
completion. Resuming a graph run reuses every finished node (served from the ledger), resumes
nodes whose process died, and starts the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seawall import _payload
from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall._graph import From, Graph, Input, Node
from seawall.errors import LeaseLostError, LedgerError
from seawall.ledger import AttemptOutcome, RunOutcome, RunQuery

if TYPE_CHECKING:
    from seawall._result import RunResult
    from seawall.ledger import RunRecord
    from seawall.runtime.services import Runtime

_POLL = 0.05
logger = logging.getLogger("seawall.graphs")


@dataclass(slots=True)
class _Settled:
    status: RunStatus
    run_id: str
    output: Any = None
    blocked_by: list[dict[str, Any]] = field(default_factory=list)
    cause: str | None = None


NodeRunner = Callable[[Node, dict[str, Any]], Awaitable["RunResult"]]
"""Runs one node on its inputs (a live child run by default; replays use their own)."""


async def run_graph(
    rt: Runtime,
    graph: Graph,
    run_id: str,
    inputs: dict[str, Any],
    *,
    epoch: int,
    attempt: int = 1,
    served: dict[str, RunRecord] | None = None,
    node_runner: NodeRunner | None = None,
) -> RunResult:
    """Run (or resume) the graph run ``run_id`` to its end; return the graph run's result.

    Traced as an ``invoke_workflow`` span, parent of its nodes' spans, when an OpenTelemetry
    SDK is configured; see :func:`_schedule` for the arguments. When another process takes the
    graph run over, or the ledger goes away, the coordinator stops and the graph run is returned
    as the ledger holds it (it goes on, or resumes).
    """
    with rt.telemetry.run(rt.store, run_id, graph=True):
        try:
            return await _schedule(rt, graph, run_id, inputs, epoch, attempt, served, node_runner)
        except (LeaseLostError, LedgerError) as exc:
            logger.warning("graph run %s stopped: %s", run_id, exc)
            return rt.result_of(run_id)


async def _schedule(  # noqa: C901 - the scheduling loop reads top-down
    rt: Runtime,
    graph: Graph,
    run_id: str,
    inputs: dict[str, Any],
    epoch: int,
    attempt: int,
    served: dict[str, RunRecord] | None,
    node_runner: NodeRunner | None,
) -> RunResult:
    """Schedule the graph's nodes until every one has settled.

    Args:
        rt: The app's services.
        graph: The graph.
        run_id: The graph run.
        inputs: The graph's inputs.
        epoch: The epoch of the lease this process holds on the graph run.
        attempt: The coordinator's attempt number.
        served: Nodes whose finished runs (of another graph run) are reused as they are.
        node_runner: How a node runs (default: a live child run).
    """
    store = rt.store
    start = time.time()
    await rt.io.run(store.start_attempt, run_id, attempt, start, rt.leases.owner, epoch=epoch)
    rt.leases.hold(run_id, epoch)
    try:
        existing = dict(served or {})
        existing.update(
            {
                child.node: child
                for child in store.list_runs(RunQuery(parent_run_id=run_id, limit=100_000))
                if child.node is not None
            }
        )
        settled: dict[str, _Settled] = {}
        running: dict[asyncio.Task[_Settled], str] = {}
        limit = asyncio.Semaphore(graph.max_concurrency)
        dependents: dict[str, list[str]] = {name: [] for name in graph.nodes}
        unmet = {name: len(node.after) for name, node in graph.nodes.items()}
        for name, node in graph.nodes.items():
            for dependency in node.after:
                dependents[dependency].append(name)
        ready = [name for name, count in unmet.items() if count == 0]

        def settle(name: str, outcome: _Settled) -> None:
            # Event-driven: only the dependents of a settled node are looked at again.
            settled[name] = outcome
            for dependent in dependents[name]:
                unmet[dependent] -= 1
                if unmet[dependent] == 0:
                    ready.append(dependent)

        while len(settled) < len(graph.nodes):
            while ready:
                name = ready.pop(0)
                node = graph.nodes[name]
                blocker = next(
                    (
                        settled[d]
                        for d in node.after
                        if settled[d].status is not RunStatus.SUCCEEDED
                    ),
                    None,
                )
                if blocker is not None:
                    settle(name, await _skip(rt, graph, run_id, node, blocker, existing, settled))
                    continue
                task = asyncio.ensure_future(
                    _run_node(
                        rt, graph, run_id, node, inputs, settled, existing, limit, node_runner
                    )
                )
                running[task] = name
            if not running:
                continue
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                settle(running.pop(task), task.result())
        return await _finish(rt, graph, run_id, epoch, attempt, settled)
    finally:
        rt.leases.release(run_id)


async def _run_node(
    rt: Runtime,
    graph: Graph,
    run_id: str,
    node: Node,
    inputs: dict[str, Any],
    settled: dict[str, _Settled],
    existing: dict[str, RunRecord],
    limit: asyncio.Semaphore,
    node_runner: NodeRunner | None,
) -> _Settled:
    async with limit:
        child = existing.get(node.name)
        if child is not None:
            return await _reuse(rt, child)
        node_inputs = {
            key: _resolve(source, inputs, settled) for key, source in node.inputs.items()
        }
        if node_runner is not None:
            result = await node_runner(node, node_inputs)
        else:
            result = await rt.engine.execute(
                rt.registry.agent(node.agent),
                node_inputs,
                parent_run_id=run_id,
                node=node.name,
                workflow=graph.name,
            )
        cause = None if result.failure_cause is None else result.failure_cause.value
        return _Settled(result.status, result.run_id, result.output, cause=cause)


async def _reuse(rt: Runtime, child: RunRecord) -> _Settled:
    """A node that already has a run: serve it if finished, else resume it or wait for it."""
    if not child.status.final and child.status is not RunStatus.AWAITING_HUMAN:
        # Another process holds the node's run: wait for it to end, and take it over once its
        # lease lapses (its owner may be dead: waiting alone would then wait forever).
        resumed = await rt.engine.resume_run(child)
        while resumed is None:
            await asyncio.sleep(_POLL)
            child = rt.get_run(child.run_id)
            if child.status.final or child.status is RunStatus.AWAITING_HUMAN:
                break
            if child.lease_expires_at is None or child.lease_expires_at <= time.time():
                resumed = await rt.engine.resume_run(child)
        if resumed is not None:
            child = rt.get_run(resumed.run_id)
    output = rt.output_of(child.run_id) if child.status is RunStatus.SUCCEEDED else None
    cause = None if child.failure_cause is None else child.failure_cause.value
    blocked = (child.error or {}).get("blocked_by", []) if child.status is RunStatus.SKIPPED else []
    return _Settled(child.status, child.run_id, output, blocked, cause)


def _resolve(source: Input | From, inputs: dict[str, Any], settled: dict[str, _Settled]) -> Any:
    if isinstance(source, Input):
        return inputs[source.name]
    output = settled[source.node].output
    if source.field is None:
        return output
    if isinstance(output, dict):
        return output[source.field]
    return getattr(output, source.field)


async def _skip(
    rt: Runtime,
    graph: Graph,
    run_id: str,
    node: Node,
    blocker: _Settled,
    existing: dict[str, RunRecord],
    settled: dict[str, _Settled],
) -> _Settled:
    """Record that ``node`` will not run because ``blocker`` did not succeed."""
    blocker_name = next(name for name, s in settled.items() if s is blocker)
    chain = [
        {"node": blocker_name, "run_id": blocker.run_id, "status": blocker.status.value},
        *blocker.blocked_by,
    ]
    previous = existing.get(node.name)
    if previous is not None and previous.status is RunStatus.SKIPPED:
        return _Settled(RunStatus.SKIPPED, previous.run_id, blocked_by=chain)
    spec = rt.registry.agent(node.agent)
    breaker = blocker.cause == FailureCause.BREAKER_OPEN.value and not blocker.blocked_by
    message = f"not started: upstream node {blocker_name!r} {blocker.status.value}" + (
        " (its breaker is open)" if breaker else ""
    )
    child_id, now = await rt.io.run(
        rt.open_run,
        spec.name,
        _EMPTY_HASH,
        _EMPTY_COLUMN,
        spec.code_version,
        parent_run_id=run_id,
        workflow=graph.name,
        node=node.name,
    )
    error = {"code": "upstream_failed", "type": "Skipped", "message": message, "blocked_by": chain}
    await rt.io.run(
        rt.store.finish_run,
        child_id,
        RunOutcome.not_executed(
            RunStatus.SKIPPED,
            ErrorClass.CASCADE,
            FailureCause.UPSTREAM_FAILED,
            "Skipped",
            message,
            error,
            at=now,
        ),
        [],
        epoch=1,
    )
    return _Settled(RunStatus.SKIPPED, child_id, blocked_by=chain)


async def _finish(
    rt: Runtime,
    graph: Graph,
    run_id: str,
    epoch: int,
    attempt: int,
    settled: dict[str, _Settled],
) -> RunResult:
    store = rt.store
    children = store.list_runs(RunQuery(parent_run_id=run_id, limit=100_000))
    input_tokens = sum(c.input_tokens for c in children)
    output_tokens = sum(c.output_tokens for c in children)
    cost = sum(c.cost_usd or 0.0 for c in children)
    failed = sorted(
        n for n, s in settled.items() if s.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED)
    )
    skipped = sorted(n for n, s in settled.items() if s.status is RunStatus.SKIPPED)
    now = time.time()
    if not failed and not skipped:
        output = {name: s.output for name, s in settled.items()}
        output_hash, column, blobs = rt.codec.snapshot(output, f"outputs of graph {graph.name!r}")
        await rt.io.run(
            store.finish_attempt,
            run_id,
            attempt,
            AttemptOutcome("succeeded", now, None, None, None, None, None),
            epoch=epoch,
        )
        await rt.io.run(
            store.finish_run,
            run_id,
            RunOutcome(
                RunStatus.SUCCEEDED,
                now,
                output_hash,
                column,
                None,
                None,
                None,
                None,
                None,
                input_tokens,
                output_tokens,
                cost,
                attempt,
            ),
            blobs,
            epoch=epoch,
        )
    else:
        message = (
            f"nodes failed: {failed or 'none'}; not started because of them: {skipped or 'none'}"
        )
        error = {
            "code": "upstream_failed",
            "type": "GraphFailed",
            "message": message,
            "failed": failed,
            "skipped": skipped,
        }
        await rt.io.run(
            store.finish_attempt,
            run_id,
            attempt,
            AttemptOutcome(
                "failed",
                now,
                ErrorClass.CASCADE,
                FailureCause.UPSTREAM_FAILED,
                "GraphFailed",
                message,
                None,
            ),
            epoch=epoch,
        )
        await rt.io.run(
            store.finish_run,
            run_id,
            RunOutcome(
                RunStatus.FAILED,
                now,
                None,
                None,
                ErrorClass.CASCADE,
                FailureCause.UPSTREAM_FAILED,
                "GraphFailed",
                message,
                json.dumps(error, sort_keys=True),
                input_tokens,
                output_tokens,
                cost,
                attempt,
            ),
            [],
            epoch=epoch,
        )
    result = rt.result_of(run_id)
    nodes = {name: rt.result_of(s.run_id) for name, s in settled.items()}
    return result.with_nodes(nodes)


_EMPTY_COLUMN = b"J{}"
_EMPTY_HASH = _payload.digest(b"{}")
