"""Replay: run the current code on a failed run's input snapshot, served or live.

- ``recorded``: the journaled tool calls, LLM calls and ``ctx.now/uuid/random`` are served from
  the original run's journal while the code asks for them. After a fix, where the code asks for
  something the recording lacks or recorded otherwise, a read-only call runs live and a side
  effect is served only if it is the recording's next one (by tool and request); any other side
  effect stops the replay with :class:`~seawall.ReplayDivergenceError` and a readable diff, unless
  mutations are allowed. The result lists what was served, run live or stopped
  (:mod:`seawall.runtime.playback`).
- ``live``: a new run on the same snapshot with live calls: the path after a fix.

Both write a new run marked ``replay_of`` and never touch the original.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from seawall import _payload
from seawall._diff import diff
from seawall._failures import FailureCause, RunStatus
from seawall.errors import RegistrationError, SnapshotError, UsageError
from seawall.ledger import RunQuery

if TYPE_CHECKING:
    from seawall._graph import Node
    from seawall._result import RunResult
    from seawall.ledger import RunRecord
    from seawall.runtime.services import Runtime

Mode = Literal["recorded", "live"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay produced, next to the original.

    Attributes:
        mode: ``recorded`` or ``live``.
        original: The replayed run's ledger row.
        run: The new run (``replay_of`` the original).
        output_changes: How the new output differs from the original's (path, before, after).
        verdict_changes: Verifiers whose verdict differs (name, before, after).
        divergence: For a recorded replay that diverged: the step, what the journal holds and
            what the code asked for.
        steps: For a recorded replay: each step the code asked for, ``served`` from the
            recording, run ``live``, or where it ``stopped``; and the recorded side effects it
            did ``not ask`` for (``step``, ``name``, ``action``, ``detail``).
    """

    mode: Mode
    original: RunRecord
    run: RunResult
    output_changes: list[dict[str, Any]] = field(default_factory=list)
    verdict_changes: list[dict[str, Any]] = field(default_factory=list)
    divergence: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the replay succeeded (without diverging)."""
        return self.run.ok and self.divergence is None


def snapshot(rt: Runtime, run: RunRecord) -> dict[str, Any]:
    """Load a run's input snapshot and prove it is the original (its sha256 matches).

    Raises:
        SnapshotError: The snapshot is missing, unreadable or does not match its hash.
    """
    columns = rt.store.get_run_io(run.run_id)
    if columns is None:
        raise SnapshotError(f"run {run.run_id} has no input snapshot", run_id=run.run_id)
    try:
        inputs = _payload.unpack(columns[0], rt.store.get_blobs)
    except LookupError as exc:
        raise SnapshotError(
            f"the input snapshot of run {run.run_id} is missing from the ledger (blob {exc}); "
            "it cannot be replayed",
            run_id=run.run_id,
        ) from exc
    except ValueError as exc:
        raise SnapshotError(
            f"the input snapshot of run {run.run_id} is unreadable ({exc}); it cannot be replayed",
            run_id=run.run_id,
        ) from exc
    actual = _payload.digest(rt.codec.dumps(inputs, "replayed inputs"))
    if actual != run.input_hash or not isinstance(inputs, dict):
        raise SnapshotError(
            f"the input snapshot of run {run.run_id} does not match its recorded hash "
            f"({actual[:12]} != {run.input_hash[:12]}); Seawall will not replay on wrong input",
            run_id=run.run_id,
            expected=run.input_hash,
            got=actual,
        )
    return inputs


async def replay(
    rt: Runtime,
    run_id: str,
    mode: Mode,
    *,
    from_node: str | None = None,
    parent_run_id: str | None = None,
    allow_mutations: bool = False,
) -> ReplayResult:
    """Replay ``run_id`` (see the module docstring).

    Raises:
        RunNotFoundError: No such run.
        UsageError: The run is still running, or the mode is unknown.
        RegistrationError: Its agent is no longer registered (names the code version).
        SnapshotError: Its input snapshot is missing or corrupted.
    """
    from seawall.runtime.runner import execute_run  # noqa: PLC0415 - the runner imports this module's users

    if mode not in ("recorded", "live"):
        raise UsageError(f"replay mode {mode!r}: use 'recorded' or 'live'")
    original = rt.get_run(run_id)
    if original.status.value in ("running", "pending"):
        raise UsageError(
            f"run {run_id} is still {original.status.value}; replay it once it has ended "
            "(or resume it if its process died)",
            run_id=run_id,
        )
    if original.node is None and original.workflow is not None:
        return await _replay_graph(rt, original, mode, from_node)
    if from_node is not None:
        raise UsageError(
            f"run {run_id} is not a graph run; --from NODE only applies to graph runs",
            run_id=run_id,
        )
    try:
        spec = rt.registry.agent(original.agent)
    except RegistrationError as exc:
        raise RegistrationError(
            f"run {run_id} was made by agent {original.agent!r} (code version "
            f"{original.code_version}), which is not registered with this app; register it "
            "(under that name) to replay the run",
            agent=original.agent,
            code_version=original.code_version,
        ) from exc
    inputs = snapshot(rt, original)
    columns = rt.store.get_run_io(run_id)
    assert columns is not None  # noqa: S101 - snapshot() checked it
    new_id, now = rt.open_run(
        spec.name,
        original.input_hash,
        columns[0],
        spec.code_version,
        parent_run_id=parent_run_id or original.parent_run_id,
        replay_of=run_id,
        replay_mode=mode,
        workflow=original.workflow,
        node=original.node,
    )
    report: list[dict[str, Any]] = []
    result = await execute_run(
        rt,
        spec,
        new_id,
        inputs,
        epoch=1,
        started=now,
        replay_source=run_id if mode == "recorded" else None,
        replay_mutations=allow_mutations,
        replay_report=report,
    )
    if mode == "live" and result.ok:
        # The failure is dealt with: its dead-letter entry (if still pending) is settled.
        rt.store.settle_dead_letter(
            run_id, redrive_run_id=result.run_id, result=result.status.value, at=time.time()
        )
    return replace(compare(rt, original, result, mode), steps=report)


async def _replay_graph(
    rt: Runtime, original: RunRecord, mode: Mode, from_node: str | None
) -> ReplayResult:
    """Replay a graph run: nodes before ``from_node`` are served from the original run."""
    from seawall.runtime.coordinator import run_graph  # noqa: PLC0415 - avoids an import cycle

    graph = rt.registry.graphs.get(original.agent)
    if graph is None:
        raise RegistrationError(
            f"run {original.run_id} is a run of graph {original.agent!r}, which is not "
            "registered with this app (app.graph(...))",
            graph=original.agent,
        )
    if from_node is not None and from_node not in graph.nodes:
        raise UsageError(
            f"graph {graph.name!r} has no node {from_node!r} (it has {sorted(graph.nodes)})",
            node=from_node,
        )
    inputs = snapshot(rt, original)
    children = {
        c.node: c
        for c in rt.store.list_runs(RunQuery(parent_run_id=original.run_id, limit=100_000))
        if c.node is not None
    }
    rerun = set(graph.nodes) if from_node is None else {from_node, *graph.downstream(from_node)}
    served = {
        name: child
        for name, child in children.items()
        if name not in rerun and child.status is RunStatus.SUCCEEDED
    }
    columns = rt.store.get_run_io(original.run_id)
    assert columns is not None  # noqa: S101 - snapshot() checked it
    new_id, _ = rt.open_run(
        graph.name,
        original.input_hash,
        columns[0],
        None,
        workflow=graph.name,
        replay_of=original.run_id,
        replay_mode=mode,
    )

    async def recorded(node: Node, node_inputs: dict[str, Any]) -> RunResult:  # noqa: ARG001 - the node's own snapshot is replayed
        child = children.get(node.name)
        if child is None or child.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            raise UsageError(
                f"node {node.name!r} did not run in the original graph run, so it has no "
                "journal to replay; replay from an earlier node live",
                node=node.name,
            )
        return (await replay(rt, child.run_id, "recorded", parent_run_id=new_id)).run

    runner = recorded if mode == "recorded" else None
    result = await run_graph(rt, graph, new_id, inputs, epoch=1, served=served, node_runner=runner)
    return compare(rt, original, result, mode)


def compare(rt: Runtime, original: RunRecord, result: RunResult, mode: Mode) -> ReplayResult:
    """Diff a replay's output and verdicts against the original's."""
    before = rt.output_of(original.run_id)
    after = rt.output_of(result.run_id)
    old = {v.name: v.passed for v in rt.store.list_verdicts(original.run_id) if v.kind == "output"}
    new = {v.name: v.passed for v in rt.store.list_verdicts(result.run_id) if v.kind == "output"}
    verdicts = [
        {"name": name, "before": old.get(name), "after": new.get(name)}
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]
    divergence = None
    if result.failure_cause is FailureCause.DIVERGENCE and result.error is not None:
        divergence = {
            k: result.error.get(k) for k in ("step", "expected", "got", "message", "changes")
        }
    return ReplayResult(
        mode=mode,
        original=original,
        run=result,
        output_changes=[c.to_dict() for c in diff(before, after)],
        verdict_changes=verdicts,
        divergence=divergence,
    )
