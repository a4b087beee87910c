"""Child runs started by an agent (``ctx.run``): a journaled step of the parent.

The child's id is decided first and made durable as the step's intent (its idempotency key), then
the child's row is recorded and the child executes. So after a crash of the parent at any point,
the resumed parent finds the child by that id: it serves the result of a child that ended, takes
over one whose process died, waits for one that is alive, and records one that was never created
under the same id. A child is started at most once per step.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from seawall._failures import RunStatus
from seawall._ids import new_run_id
from seawall.errors import BreakerOpenError
from seawall.runtime.executor import wait_for_run
from seawall.runtime.serving import COMPLETED, FAILED, STARTED
from seawall.runtime.steps import Gather, Ledger, Steps

if TYPE_CHECKING:
    from seawall._result import RunResult
    from seawall.runtime.host import Host
    from seawall.runtime.journal import Journal
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime


class Children:
    """What ``ctx.run`` needs of the app, for one attempt of a parent run.

    Args:
        rt: The app's services.
        parent: The parent's journal.
        host: The parent's thread when it is a sync agent (lent to sync children).
    """

    __slots__ = ("host", "parent", "rt")

    def __init__(self, rt: Runtime, parent: Journal, host: Host | None) -> None:
        self.rt = rt
        self.parent = parent
        self.host = host

    def resolve(self, agent: Any) -> AgentSpec:
        """The registration of ``agent`` (raises :class:`~seawall.RegistrationError`)."""
        return self.rt.registry.agent(agent)

    def result_of(self, run_id: str) -> RunResult:
        """A child's result as the ledger holds it."""
        return self.rt.result_of(run_id)

    async def start(self, spec: AgentSpec, inputs: dict[str, Any], run_id: str) -> RunResult:
        """Record the child under ``run_id`` and execute it here to its end."""
        rt = self.rt
        _, now, begun = await rt.io.run(
            rt.begin_run, spec, inputs, parent_run_id=self.parent.run_id, run_id=run_id
        )
        if isinstance(begun, BreakerOpenError):
            return await rt.io.run(rt.refused, spec, run_id, begun, 1)
        return await rt.engine.execute_recorded(
            spec, run_id, inputs, now, host=self.host, child=True, begun=begun
        )

    async def see_through(self, spec: AgentSpec, inputs: dict[str, Any], run_id: str) -> RunResult:
        """See a child started before a crash through: serve, take over, wait, or create it."""
        rt = self.rt
        run = await rt.io.run(rt.store.get_run, run_id)
        if run is None:
            return await self.start(spec, inputs, run_id)
        if run.status.final or run.status is RunStatus.AWAITING_HUMAN:
            return await rt.io.run(rt.result_of, run_id)
        taken = await rt.engine.resume_run(run, host=self.host)
        if taken is not None:
            return taken
        return await wait_for_run(rt, run_id, None)


class AgentRunner:
    """Runs registered agents as children of a run: the ``run_agent`` its verifiers are given.

    One is made for every attempt and few attempts use it, so it is three slots (a closure
    carrying ``is_agent`` cost a function, its cells and an attribute dict per attempt).

    Args:
        rt: The app's services.
        parent_run_id: The run whose verifiers start the children.
        host: The parent's thread when the verifier runs while a sync agent waits for it.
    """

    __slots__ = ("host", "parent_run_id", "rt")

    def __init__(self, rt: Runtime, parent_run_id: str, host: Host | None = None) -> None:
        self.rt = rt
        self.parent_run_id = parent_run_id
        self.host = host

    async def __call__(self, agent: Any, inputs: dict[str, Any]) -> Any:
        """Run ``agent`` on ``inputs`` as a child of the run; return its output.

        Raises:
            RunFailedError: The child did not succeed.
        """
        rt = self.rt
        result = await rt.engine.start_child(
            rt.registry.agent(agent), inputs, parent_run_id=self.parent_run_id, host=self.host
        )
        return result.raise_for_status().output

    def is_agent(self, candidate: Any) -> bool:
        """Whether ``candidate`` is a registered agent (a verifier may be one)."""
        return self.rt.registry.is_agent(candidate)


def child_run(
    journal: Journal, children: Children, agent: Any, inputs: dict[str, Any]
) -> Steps[RunResult]:
    """The step machine of ``ctx.run(agent, **inputs)``; returns the child's result."""
    spec = children.resolve(agent)
    _, request_hash, column, blobs = journal.encode(
        (spec.name, [], inputs), f"inputs of the child run of agent {spec.name!r}"
    )
    recorded = journal.next_step(None, spec.name, request_hash, column, effect=True, blobs=blobs)
    if recorded.action == "serve":
        served: RunResult = yield Ledger(children.result_of, recorded.value["run_id"])
        return served
    step_seq = recorded.seq or journal.seq
    if recorded.action == "resume" and recorded.key is not None:
        child_id = recorded.key
        result: RunResult = yield Gather(lambda: children.see_through(spec, inputs, child_id))
    else:
        child_id = new_run_id()
        row = journal.row(
            step_seq,
            "run",
            spec.name,
            True,
            child_id,
            request_hash,
            column,
            None,
            STARTED,
            time.time(),
            None,
        )
        yield Ledger(journal.write_intent, row, blobs)
        if recorded.status is None:
            journal.mutations += 1
        result = yield Gather(lambda: children.start(spec, inputs, child_id))
    response, response_blobs = journal.stored(
        {"run_id": child_id, "status": result.status.value}, "child run"
    )
    yield Ledger(
        journal.complete,
        step_seq,
        status=FAILED if result.status is RunStatus.FAILED else COMPLETED,
        response=response,
        error=None,
        tries=1,
        blobs=response_blobs,
    )
    return result
