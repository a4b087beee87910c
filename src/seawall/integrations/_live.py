"""Handing the live objects of a journaled call to the body of its step.

An integration journals a framework's call (a model request, a tool call) as a Seawall step. The
step's request is JSON, which the journal keeps; what its body needs to make the call for real (a
session, a model, the framework's callback) is not. The integration holds those objects in a
:class:`LiveCall` while the step runs, and the step's body takes them from there.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from seawall import AsyncContext
from seawall.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

T = TypeVar("T")


class LiveCall(Generic[T]):
    """The live objects of the call an integration is journaling, in this task or thread.

    Args:
        name: The context variable's name.
        sync_agent: What :meth:`acall` says in a sync agent, with ``{agent!r}`` for its name.
    """

    __slots__ = ("_current", "sync_agent")

    def __init__(self, name: str, *, sync_agent: str = "") -> None:
        self._current: ContextVar[T | None] = ContextVar(name, default=None)
        self.sync_agent = sync_agent

    @contextlib.contextmanager
    def held(self, live: T) -> Iterator[None]:
        """Hold ``live`` for the steps that run inside the block."""
        token = self._current.set(live)
        try:
            yield
        finally:
            self._current.reset(token)

    async def acall(self, ctx: Any, step: str, request: Mapping[str, Any], live: T) -> Any:
        """Journal ``step`` with ``request`` in the async agent of ``ctx``, ``live`` held meanwhile.

        Raises:
            UsageError: ``ctx`` is a sync agent's: the framework is async.
        """
        if not isinstance(ctx, AsyncContext):
            raise UsageError(self.sync_agent.format(agent=ctx.agent))
        with self.held(live):
            return await ctx.call(step, **request)

    def get(self, missing: str) -> T:
        """The live objects held for the running step.

        Raises:
            UsageError: Nothing is held (``missing`` says how the step must be reached).
        """
        live = self._current.get()
        if live is None:  # pragma: no cover - a step is only reached through its integration
            raise UsageError(missing)
        return live
