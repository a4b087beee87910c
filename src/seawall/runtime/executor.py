"""Executors: where the runs an app starts execute.

The :class:`LocalExecutor` (the default) runs them in the submitting process: async agents on
its event loop, sync agents in its worker threads. A distributed executor
(``seawall.integrations.celery.CeleryExecutor``) records each run ``pending`` in the shared
ledger and hands its id to a worker process, which claims the run's lease and executes it; the
submitter reads the outcome back from the ledger.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol

from seawall._failures import RunStatus
from seawall.errors import BreakerOpenError, WaitTimeoutError
from seawall.runtime.loop import refuse_inside_loop

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from concurrent.futures import Future

    from seawall._result import RunResult
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime

POLL_FIRST = 0.005
"""Seconds between the first ledger reads of a waiter; doubled up to :data:`POLL_MAX`."""
POLL_MAX = 0.25


class Executor(Protocol):
    """Where runs execute. The app calls it; users only construct one and pass it in."""

    def bind(self, rt: Runtime) -> None:
        """Attach to the app that will use this executor (called once, by ``Seawall()``)."""

    async def execute(
        self,
        rt: Runtime,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None,
        workflow: str | None,
    ) -> RunResult:
        """Record a run of ``spec`` on ``inputs``, execute it, and return its result."""
        ...

    def submit(self, rt: Runtime, spec: AgentSpec, inputs: dict[str, Any]) -> RunHandle:
        """Record a run of ``spec`` on ``inputs`` and start it without waiting for it."""
        ...

    def close(self) -> None:
        """Release what the executor holds (threads, connections)."""


class RunHandle:
    """A submitted run: its id, and ways to wait for its result (read from the ledger).

    Args:
        rt: The services of the app the run was submitted to.
        run_id: The run.
        future: For a run executing in this process, its completion (waited on first).
    """

    def __init__(self, rt: Runtime, run_id: str, future: Future[Any] | None = None) -> None:
        self.rt = rt
        self.run_id = run_id
        self._future = future

    def __repr__(self) -> str:
        return f"<RunHandle run_id={self.run_id!r}>"

    def status(self) -> RunStatus:
        """Return the run's current status in the ledger."""
        return self.rt.get_run(self.run_id).status

    def done(self) -> bool:
        """Whether the run has ended (a final status) or waits for a person."""
        return _settled(self.status())

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait until the run ends and return its result.

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            The recorded result; a failure is returned, not raised.

        Raises:
            WaitTimeoutError: The run had not ended after ``timeout`` seconds; it goes on.
            RunNotFoundError: The run is not in the ledger.
            UsageError: Called inside a running event loop (use ``await handle.aresult()``).
        """
        refuse_inside_loop("handle.result()", "handle.aresult(...)")
        if self._future is not None:
            try:
                self._future.result(timeout)
            except TimeoutError:
                raise _timed_out(self.run_id, timeout) from None
        return self.rt.sync(
            wait_for_run(self.rt, self.run_id, timeout), "handle.result", "handle.aresult"
        )

    async def aresult(self, timeout: float | None = None) -> RunResult:  # noqa: ASYNC109 - twin of result()
        """Async twin of :meth:`result`."""
        if self._future is not None:
            try:
                await asyncio.wait_for(asyncio.wrap_future(self._future), timeout)
            except TimeoutError:
                raise _timed_out(self.run_id, timeout) from None
        return await wait_for_run(self.rt, self.run_id, timeout)


class LocalExecutor:
    """Runs execute in this process (the default executor).

    Runs started with ``app.submit`` execute on the app's own event loop (sync agents in its
    worker threads), bounded by ``Seawall(max_concurrent_runs=...)`` like every other run.
    """

    def bind(self, rt: Runtime) -> None:
        """Nothing to attach: the app's own threads and loops run the work."""

    def execute(
        self,
        rt: Runtime,
        spec: AgentSpec,
        inputs: dict[str, Any],
        *,
        parent_run_id: str | None,
        node: str | None,
        workflow: str | None,
    ) -> Coroutine[Any, Any, RunResult]:
        """Record and execute the run here (the engine's coroutine, with no frame around it)."""
        return rt.engine.start_child(
            spec, inputs, parent_run_id=parent_run_id, node=node, workflow=workflow
        )

    def submit(self, rt: Runtime, spec: AgentSpec, inputs: dict[str, Any]) -> RunHandle:
        """Record the run (leased to this process) and start it on the app's event loop."""
        run_id, started, begun = rt.begin_run(spec, inputs)

        async def execute() -> RunResult:
            if isinstance(begun, BreakerOpenError):
                return await rt.io.run(rt.refused, spec, run_id, begun, 1)
            async with rt.slots:
                return await rt.engine.execute_recorded(spec, run_id, inputs, started, begun=begun)

        return RunHandle(rt, run_id, rt.submit_coroutine(execute()))

    def close(self) -> None:
        """Nothing to stop: runs still executing stop with the app's loop and resume later."""


async def wait_for_run(
    rt: Runtime,
    run_id: str,
    timeout: float | None,  # noqa: ASYNC109 - shared by wait() and await_run()
) -> RunResult:
    """Poll the ledger until ``run_id`` ends (or awaits a person); return its result.

    Raises:
        WaitTimeoutError: It had not ended after ``timeout`` seconds.
        RunNotFoundError: No such run.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        run = rt.get_run(run_id)
        if _settled(run.status):
            return rt.result_of(run_id)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timed_out(run_id, timeout)
            delay = min(delay, left)
        await asyncio.sleep(delay)
        delay = min(delay * 2, POLL_MAX)


def _settled(status: RunStatus) -> bool:
    return status.final or status is RunStatus.AWAITING_HUMAN


def _timed_out(run_id: str, timeout: float | None) -> WaitTimeoutError:
    return WaitTimeoutError(
        f"run {run_id} had not ended after {timeout} s; it goes on. Wait again with "
        f"app.wait({run_id!r}) or look at it with `seawall show {run_id}`",
        run_id=run_id,
        timeout=timeout,
    )


__all__ = ["Executor", "LocalExecutor", "RunHandle", "wait_for_run"]
