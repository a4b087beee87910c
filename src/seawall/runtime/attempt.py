"""Starting an attempt's agent: an async one as a task on the loop, a sync one in a thread.

A sync agent runs in one of the app's worker threads, or, for a child run of a sync agent, in
its parent's thread (which waits for it anyway, so nesting holds no extra thread). An agent
with a ``timeout`` that does not return in time is abandoned: its journal refuses anything it
still tries to record.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Any

from seawall.runtime.children import AgentRunner, Children
from seawall.runtime.context import AsyncContext, Context, entered
from seawall.runtime.hop import in_context
from seawall.runtime.host import Host

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from seawall.artifacts import StagingArea
    from seawall.runtime.journal import Journal
    from seawall.runtime.live import LiveRun
    from seawall.runtime.registry import AgentSpec
    from seawall.runtime.services import Runtime


def start_agent(
    rt: Runtime,
    spec: AgentSpec,
    journal: Journal,
    staging: StagingArea | None,
    live: LiveRun,
    inputs: dict[str, Any],
    host: Host | None,
) -> Awaitable[Any]:
    """Start the agent's attempt; return what gives its output when awaited.

    Not a coroutine of its own: while thousands of runs wait inside their agents, each run's
    chain of frames is one shorter.

    Args:
        rt: The app's services.
        spec: The agent.
        journal: The attempt's journal.
        staging: The attempt's staging area, if the app has an artifact destination.
        live: The run as this process's live runs hold it (given the async agent's task).
        inputs: The agent's keyword inputs.
        host: For a child run of a sync agent: the parent's thread, which runs this agent.
    """
    loop = asyncio.get_running_loop()
    if spec.is_async:
        runner = AgentRunner(rt, journal.run_id, host)
        actx = AsyncContext(
            journal,
            spec.name,
            rt.registry.tool,
            loop,
            staging,
            inputs,
            runner,
            rt.io,
            rt.tool_threads,
        )
        actx.bind_children(Children(rt, journal, host))
        with entered(actx):
            # The task copies the context variables as they are now.
            task: asyncio.Future[Any] = asyncio.ensure_future(spec.fn(actx, **inputs))
        live.task = task
        live.loop = loop
        if spec.timeout is None:
            return task
        return _within(journal, task, spec.timeout)
    thread = Host()
    runner = AgentRunner(rt, journal.run_id, thread)
    ctx = Context(journal, spec.name, rt.registry.tool, loop, staging, inputs, runner)
    ctx.bind_children(Children(rt, journal, thread))
    call = _SyncCall(spec, ctx, inputs, thread)
    future: asyncio.Future[Any]
    if host is not None:
        # A child of a sync agent runs in its parent's thread, which waits for it anyway.
        future = asyncio.wrap_future(host.lend(call))
    else:
        # In a context of its own, as an executor's thread would run it (not the loop's).
        future = in_context(rt.agent_threads, contextvars.Context(), call)
    if spec.timeout is None:
        return future
    return _thread_within(journal, future, spec.timeout)


class _SyncCall:
    """A sync agent's attempt, run in a worker thread (or its parent's)."""

    __slots__ = ("ctx", "inputs", "spec", "thread")

    def __init__(self, spec: AgentSpec, ctx: Context, inputs: dict[str, Any], thread: Host) -> None:
        self.spec = spec
        self.ctx = ctx
        self.inputs = inputs
        self.thread = thread

    def __call__(self) -> Any:
        with self.thread.hosting(), entered(self.ctx):
            return self.spec.fn(self.ctx, **self.inputs)


async def _within(journal: Journal, task: asyncio.Future[Any], seconds: float) -> Any:
    """An async agent's output, unless it takes longer than ``seconds`` (then it is cancelled)."""
    try:
        return await asyncio.wait_for(task, seconds)
    except TimeoutError:
        journal.abandoned = True
        raise


async def _thread_within(journal: Journal, future: asyncio.Future[Any], seconds: float) -> Any:
    """A sync agent's output, unless it takes longer than ``seconds``.

    A thread cannot be stopped from outside: its journal is fenced so anything it still tries
    to record is refused, and its next ctx call raises AttemptAbandoned.
    """
    try:
        return await asyncio.wait_for(asyncio.shield(future), seconds)
    except TimeoutError:
        journal.abandoned = True
        future.add_done_callback(_ignore_outcome)
        raise


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


__all__ = ["start_agent"]
