"""``ctx``: what an agent sees of its run. Every call through it is journaled.

:class:`Context` is given to sync agents (which run in a worker thread and call sync tools
inline); :class:`AsyncContext` to async agents, whose ``call`` is awaited. The bookkeeping
is shared; only the tool invocation and the backoff wait differ.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random as _random
import time
import uuid as _uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seawall import _timing
from seawall._journal import COMPLETED, FAILED, MISSING, STARTED, Journal
from seawall.errors import AttemptAbandoned, ConfigurationError, SerializationError

if TYPE_CHECKING:
    from seawall._payload import Blob
    from seawall._registry import ToolSpec
    from seawall.artifacts import StagingArea

ToolRef = Callable[..., Any] | str


class _Prepared:
    """A tool step about to run live."""

    __slots__ = ("blobs", "call_kwargs", "column", "key", "request_hash", "seq", "spec")

    def __init__(
        self,
        spec: ToolSpec,
        seq: int,
        request_hash: str,
        column: bytes,
        blobs: list[Blob],
        key: str,
        call_kwargs: dict[str, Any],
    ) -> None:
        self.spec = spec
        self.seq = seq
        self.request_hash = request_hash
        self.column = column
        self.blobs = blobs
        self.key = key
        self.call_kwargs = call_kwargs


class BaseContext:
    """State and journaled helpers shared by the sync and async contexts.

    Attributes:
        run_id: The run's id.
        agent: The agent's registered name.
        attempt: The current attempt number (1-based).
        idempotency_key: A key stable across the run's attempts and resumes; pass it to
            systems that dedupe whole-run effects. Each tool step gets its own key
            (``f"{run_id}:{seq}"``) automatically.
    """

    __slots__ = (
        "_journal",
        "_loop",
        "_resolve",
        "_staging",
        "agent",
        "attempt",
        "idempotency_key",
        "run_id",
    )

    def __init__(
        self,
        journal: Journal,
        agent: str,
        resolve: Callable[[ToolRef], ToolSpec],
        loop: asyncio.AbstractEventLoop,
        staging: StagingArea | None = None,
    ) -> None:
        self._journal = journal
        self._staging = staging
        self._resolve = resolve
        self._loop = loop
        self.run_id = journal.run_id
        self.agent = agent
        self.attempt = journal.attempt
        self.idempotency_key = journal.run_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} run_id={self.run_id} attempt={self.attempt}>"

    @property
    def artifacts(self) -> StagingArea:
        """This attempt's staging area: files written here are published only on success.

        Raises:
            ConfigurationError: The app has no artifact destination.
        """
        if self._staging is None:
            raise ConfigurationError(
                "this app has no artifact destination; create it with "
                "Seawall(..., artifacts='./artifacts') or an fsspec URL"
            )
        return self._staging

    # -- deterministic values ---------------------------------------------------------------

    def now(self) -> float:
        """Return the current Unix time, journaled so a replay or resume sees the same value."""
        return float(self._value("now", time.time))

    def uuid(self) -> str:
        """Return a random UUID (as a string), journaled so a replay sees the same one."""
        return str(self._value("uuid", lambda: str(_uuid.uuid4())))

    def random(self) -> float:
        """Return a float in [0, 1), journaled so a replay sees the same value."""
        return float(self._value("random", _random.random))

    def _value(self, kind: str, make: Callable[[], Any]) -> Any:
        journal = self._journal
        if journal.abandoned:
            raise AttemptAbandoned
        request = b"J[]"
        seq = journal.seq + 1
        served = journal.replay(seq, None, kind, kind) if journal.recorded else MISSING
        journal.seq = seq
        if served is not MISSING:
            return served
        value = make()
        now = time.time()
        _, _, column, blobs = journal.encode(value, f"ctx.{kind}()")
        journal.buffer(
            journal.row(seq, kind, kind, False, None, kind, request, column, COMPLETED, now, now),
            blobs,
            0.0,
        )
        return value

    def record_usage(
        self,
        *,
        model: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
    ) -> None:
        """Record tokens (and cost, when known) spent by an LLM call of this run.

        Args:
            model: The model's name.
            input_tokens: Prompt tokens.
            output_tokens: Completion tokens.
            cost_usd: What the call cost, when known.

        Raises:
            ConfigurationError: A count is negative or not an integer.
        """
        for label, count in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ConfigurationError(
                    f"ctx.record_usage({label}={count!r}) must be a non-negative integer"
                )
        if cost_usd is not None and (
            not isinstance(cost_usd, int | float) or not math.isfinite(cost_usd) or cost_usd < 0
        ):
            raise ConfigurationError(
                f"ctx.record_usage(cost_usd={cost_usd!r}) must be a non-negative number or None"
            )
        journal = self._journal
        if journal.abandoned:
            raise AttemptAbandoned
        usage = {
            "model": str(model),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd,
        }
        data, request_hash, column, blobs = journal.encode(usage, "ctx.record_usage()")
        seq = journal.seq + 1
        served = journal.replay(seq, None, "usage", request_hash) if journal.recorded else MISSING
        journal.seq = seq
        if served is not MISSING:
            return
        now = time.time()
        journal.usage[seq] = (input_tokens, output_tokens, cost_usd)
        journal.buffer(
            journal.row(
                seq,
                "usage",
                "usage",
                False,
                None,
                request_hash,
                column,
                b"Jnull",
                COMPLETED,
                now,
                now,
            ),
            blobs,
            0.0,
        )
        del data

    # -- tool steps -------------------------------------------------------------------------

    def _prepare(
        self, tool: ToolRef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[_Prepared | None, Any]:
        """Journal bookkeeping before a tool call: returns the plan, or the served result."""
        journal = self._journal
        if journal.abandoned:
            raise AttemptAbandoned
        spec = self._resolve(tool)
        _, request_hash, column, blobs = journal.encode(
            (spec.name, args, kwargs), f"arguments of tool {spec.name!r}"
        )
        seq = journal.seq + 1
        served = journal.replay(seq, spec, spec.name, request_hash) if journal.recorded else MISSING
        journal.seq = seq
        if served is not MISSING:
            return None, served
        explicit = kwargs.get("idempotency_key")
        key = explicit if isinstance(explicit, str) else f"{journal.run_id}:{seq}"
        call_kwargs = kwargs
        if spec.accepts_key and "idempotency_key" not in kwargs:
            call_kwargs = {**kwargs, "idempotency_key": key}
        plan = _Prepared(spec, seq, request_hash, column, blobs, key, call_kwargs)
        if spec.mutating:
            now = time.time()
            journal.write_intent(
                journal.row(
                    seq,
                    "tool",
                    spec.name,
                    True,
                    key,
                    request_hash,
                    column,
                    None,
                    STARTED,
                    now,
                    None,
                ),
                blobs,
            )
            journal.mutations += 1
        return plan, None

    def _succeeded(self, plan: _Prepared, result: Any, start: float, tries: int) -> None:
        journal = self._journal
        spec = plan.spec
        try:
            _, _, response, blobs = journal.encode(result, f"result of tool {spec.name!r}")
        except SerializationError as exc:
            # The call happened; record it as completed (never to be repeated) without a result.
            self._record_end(plan, start, None, [], exc, tries, COMPLETED)
            raise
        self._record_end(plan, start, response, blobs, None, tries, COMPLETED)

    def _record_end(
        self,
        plan: _Prepared,
        start: float,
        response: bytes | None,
        blobs: list[Blob],
        error: BaseException | None,
        tries: int,
        status: str,
    ) -> None:
        journal = self._journal
        spec = plan.spec
        if spec.mutating:
            journal.complete(
                plan.seq, status=status, response=response, error=error, tries=tries, blobs=blobs
            )
            return
        end = time.time()
        journal.buffer(
            journal.row(
                plan.seq,
                "tool",
                spec.name,
                False,
                plan.key,
                plan.request_hash,
                plan.column,
                response,
                status,
                start,
                end,
                error,
                tries,
            ),
            blobs,
            end - start,
        )

    def _failed(self, plan: _Prepared, error: BaseException, start: float, tries: int) -> None:
        if plan.spec.mutating:
            self._journal.mutations -= 1
        self._record_end(plan, start, None, [], error, tries, FAILED)


class Context(BaseContext):
    """The context of a sync agent: ``ctx.call(tool, ...)`` returns the tool's result."""

    __slots__ = ()

    def call(self, tool: ToolRef, /, *args: Any, **kwargs: Any) -> Any:
        """Call a registered tool through the journal.

        A step the journal already holds as completed is not executed again: its recorded
        result is returned. A tool that accepts an ``idempotency_key`` keyword receives the
        step's key (``f"{run_id}:{seq}"``) unless the caller passes one.

        Args:
            tool: The registered tool (the decorated function) or its name.
            *args: Positional arguments for the tool.
            **kwargs: Keyword arguments for the tool.

        Returns:
            The tool's result (or, when served from the journal, its JSON form).

        Raises:
            RegistrationError: The tool is not registered with this app.
            SerializationError: The arguments or the result are not JSON-serialisable.
            InDoubtError: The step was in flight during a crash and cannot be re-issued.
            JournalDivergenceError: The journal holds a different call at this step.
        """
        plan, served = self._prepare(tool, args, kwargs)
        if plan is None:
            return served
        spec = plan.spec
        fn = spec.fn
        start = time.time()
        tries = 1
        while True:
            try:
                if spec.is_async:
                    result = asyncio.run_coroutine_threadsafe(
                        fn(*args, **plan.call_kwargs), self._loop
                    ).result()
                else:
                    result = fn(*args, **plan.call_kwargs)
                break
            except Exception as exc:
                decision = spec.retry.decide(tries, exc, time.time() - start)
                if not decision.retry:
                    self._failed(plan, exc, start, tries)
                    raise
                _timing.sleep(decision.delay)
                if self._journal.abandoned:
                    raise AttemptAbandoned from exc
                tries += 1
        self._succeeded(plan, result, start, tries)
        return result


class AsyncContext(BaseContext):
    """The context of an async agent: ``await ctx.call(tool, ...)``."""

    __slots__ = ()

    async def call(self, tool: ToolRef, /, *args: Any, **kwargs: Any) -> Any:
        """Call a registered tool through the journal; see :meth:`Context.call`.

        A sync tool runs in a worker thread so it does not block the event loop.

        Args:
            tool: The registered tool (the decorated function) or its name.
            *args: Positional arguments for the tool.
            **kwargs: Keyword arguments for the tool.

        Returns:
            The tool's result (or, when served from the journal, its JSON form).
        """
        plan, served = self._prepare(tool, args, kwargs)
        if plan is None:
            return served
        spec = plan.spec
        fn = spec.fn
        start = time.time()
        tries = 1
        while True:
            try:
                if spec.is_async:
                    result = await fn(*args, **plan.call_kwargs)
                else:
                    result = await asyncio.to_thread(
                        functools.partial(fn, *args, **plan.call_kwargs)
                    )
                break
            except Exception as exc:
                decision = spec.retry.decide(tries, exc, time.time() - start)
                if not decision.retry:
                    self._failed(plan, exc, start, tries)
                    raise
                await _timing.asleep(decision.delay)
                if self._journal.abandoned:
                    raise AttemptAbandoned from exc
                tries += 1
        self._succeeded(plan, result, start, tries)
        return result
