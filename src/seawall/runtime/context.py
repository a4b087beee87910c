"""``ctx``: what an agent sees of its run. Every call through it is journaled.

:class:`Context` is given to sync agents (which run in a worker thread and call sync tools
inline); :class:`AsyncContext` to async agents, whose ``call`` and ``verify`` are awaited. What a
call does is written once, as a step machine (:mod:`seawall.runtime.calls`,
:mod:`seawall.runtime.steps`); the two contexts only carry out its requests, in a thread or on the
event loop.
"""

from __future__ import annotations

import contextlib
import math
import random as _random
import time
import uuid as _uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from seawall import _faults
from seawall.errors import ConfigurationError, VerificationError
from seawall.observe.cost import usage_entry
from seawall.policies.guards import NO_GUARDS
from seawall.runtime import calls as _calls
from seawall.runtime.children import Children, child_run
from seawall.runtime.serving import COMPLETED
from seawall.runtime.steps import Gather, Ledger, Steps, adrive, drive
from seawall.verify import Verdict, VerifyContext, run_verifiers

if TYPE_CHECKING:
    import asyncio

    from seawall._payload import Blob
    from seawall._result import RunResult
    from seawall.artifacts import StagingArea
    from seawall.runtime.hop import Submits
    from seawall.runtime.host import Host
    from seawall.runtime.journal import Journal
    from seawall.runtime.ledger_io import LedgerIO
    from seawall.runtime.registry import ToolSpec
    from seawall.verify import Verifier

T = TypeVar("T")

ToolRef = Callable[..., Any] | str
AgentRunner = Callable[[Any, dict[str, Any]], Awaitable[Any]]

_current: ContextVar[BaseContext | None] = ContextVar("seawall_current_context", default=None)


def current_context() -> BaseContext | None:
    """Return the ``ctx`` of the run whose agent code is executing here, or ``None``.

    Integrations use it so a wrapped client journals its calls inside a run and behaves as the
    plain client outside one. It follows the agent into its own tasks and threads started with
    ``contextvars.copy_context()`` (``asyncio`` tasks, ``asyncio.to_thread``).
    """
    return _current.get()


@contextlib.contextmanager
def entered(ctx: BaseContext) -> Iterator[None]:
    """Mark ``ctx`` as the executing run's context for the code inside the block."""
    token = _current.set(ctx)
    run_token = _faults.current_run.set(ctx.run_id)
    try:
        yield
    finally:
        _faults.current_run.reset(run_token)
        _current.reset(token)


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
        "_children",
        "_host",
        "_inputs",
        "_journal",
        "_ledger",
        "_loop",
        "_resolve",
        "_run_agent",
        "_staging",
        "_tools",
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
        inputs: Mapping[str, Any] | None = None,
        run_agent: AgentRunner | None = None,
        ledger: LedgerIO | None = None,
        tools: Submits | None = None,
    ) -> None:
        self._journal = journal
        self._staging = staging
        self._resolve = resolve
        self._loop = loop
        self._inputs = inputs or {}
        self._run_agent = run_agent
        self._ledger = ledger
        self._tools = tools
        self._children: Children | None = None
        self._host: Host | None = None
        self.run_id = journal.run_id
        self.agent = agent
        self.attempt = journal.attempt
        self.idempotency_key = journal.run_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} run_id={self.run_id} attempt={self.attempt}>"

    def bind_children(self, children: Children) -> None:
        """Let this context start child runs (``ctx.run``) through ``children``."""
        self._children = children
        self._host = children.host

    @property
    def fencing_token(self) -> int:
        """The epoch of the lease this attempt holds on its run: a fencing token.

        It only grows: every takeover of the run raises it. Pass it to your own stores with
        each write and have them refuse a write whose token is lower than one they have seen,
        so a process that stalled past its lease cannot overwrite what its successor wrote.
        """
        return self._journal.epoch

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

    @property
    def feedback(self) -> tuple[str, ...]:
        """The messages of the verifiers that rejected the previous attempt (empty at first)."""
        return self._journal.feedback

    def confidence(self, value: float) -> None:
        """Report how sure the agent is of its output, from 0 to 1.

        Under the agent's ``min_confidence`` the output is treated as drift.

        Raises:
            ConfigurationError: The value is not a number in [0, 1].
        """
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not 0 <= value <= 1
        ):
            raise ConfigurationError(f"ctx.confidence({value!r}) must be a number in [0, 1]")
        self._journal.confidence = float(value)

    def observe(self, key: str, value: Any, *, source: str) -> None:
        """Record that ``source`` says ``key`` is ``value``.

        Raises:
            ConsistencyError: Another source said something else for ``key`` in this run.
        """
        self._journal.check()
        self._journal.observe(key, value, source)

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
        journal.check()
        recorded = journal.next_step(None, kind, kind)
        if recorded.action == "serve":
            return recorded.value
        seq = journal.seq
        value = make()
        now = time.time()
        column, blobs = journal.stored(value, f"ctx.{kind}()")
        if _buffer_done(journal, seq, kind, kind, b"J[]", column, blobs, now, now):
            self._flush_soon()
        return value

    def _flush_soon(self) -> None:
        """The buffer is due: write it now, or with the context's next awaited step."""

    def record_usage(
        self,
        *,
        model: str,
        input_tokens: int | None = 0,
        output_tokens: int | None = 0,
        cost_usd: float | None = None,
        provider: str | None = None,
    ) -> None:
        """Record tokens (and cost) spent by an LLM call of this run.

        Record each call once, right after it (integrations do it for you). ``None`` tokens
        mean the response carried no usage: the call is counted as of unknown usage, never as
        zero. Without ``cost_usd`` the cost comes from ``Seawall(prices=...)``, then the
        ``genai-prices`` table; a model neither knows is reported as unpriced.

        Args:
            model: The model's name.
            input_tokens: Prompt tokens, or ``None`` when unknown.
            output_tokens: Completion tokens, or ``None`` when unknown.
            cost_usd: What the call cost, when the provider says so.
            provider: The provider (``openai``, ``anthropic``...), to price the right model.

        Raises:
            ConfigurationError: A count is negative or not an integer.
            BudgetExceededError: The run's token or cost budget is now exceeded.
        """
        for label, count in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if count is not None and (
                not isinstance(count, int) or isinstance(count, bool) or count < 0
            ):
                raise ConfigurationError(
                    f"ctx.record_usage({label}={count!r}) must be a non-negative integer or None "
                    "(unknown)"
                )
        if cost_usd is not None and (
            not isinstance(cost_usd, int | float) or not math.isfinite(cost_usd) or cost_usd < 0
        ):
            raise ConfigurationError(
                f"ctx.record_usage(cost_usd={cost_usd!r}) must be a non-negative number or None"
            )
        journal = self._journal
        journal.check()
        usage: dict[str, Any] = {
            "model": str(model),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd,
        }
        if provider is not None:  # absent otherwise: older journals hash the same
            usage["provider"] = str(provider)
        _, request_hash, column, blobs = journal.encode(usage, "ctx.record_usage()")
        recorded = journal.next_step(None, "usage", request_hash, column, blobs=blobs)
        if recorded.action != "serve":
            self._record_usage_live(journal.seq, usage, request_hash, column, blobs, provider)
        if journal.guards is not NO_GUARDS:
            totals = journal.totals()
            journal.guards.check_usage(totals.input_tokens + totals.output_tokens, totals.cost_usd)

    def _record_usage_live(
        self,
        seq: int,
        usage: dict[str, Any],
        request_hash: str,
        column: bytes,
        blobs: list[Any],
        provider: str | None,
    ) -> None:
        journal = self._journal
        cost_usd = usage["cost_usd"]
        # The price is looked up once, when the call is recorded, and kept as the step's
        # result: a replay serves it, so a later price change never rewrites history.
        if cost_usd is None:
            priced = journal.prices.cost(
                usage["model"], usage["input_tokens"], usage["output_tokens"], provider=provider
            )
            cost_usd, source = priced.usd, priced.source
        else:
            source = "reported"
        priced_json = {"cost_usd": cost_usd, "priced_by": source}
        response, response_blobs = journal.stored(priced_json, "ctx.record_usage()")
        now = time.time()
        journal.usage[seq] = usage_entry(usage, priced_json)
        if journal.trace is not None:
            journal.trace.usage(
                usage["model"], usage["input_tokens"], usage["output_tokens"], cost_usd
            )
        if _buffer_done(
            journal,
            seq,
            "usage",
            request_hash,
            column,
            response,
            [*blobs, *response_blobs],
            now,
            now,
        ):
            self._flush_soon()

    # -- step machines ----------------------------------------------------------------------

    def _call_steps(
        self, tool: ToolRef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Steps[Any]:
        self._journal.check()
        return _calls.call(self._journal, self._resolve(tool), args, kwargs)

    def _child_steps(self, agent: Any, inputs: dict[str, Any]) -> Steps[RunResult]:
        self._journal.check()
        if self._children is None:
            raise ConfigurationError("this context cannot start child runs")
        return child_run(self._journal, self._children, agent, inputs)

    def _gate_steps(self, value: Any, verifiers: tuple[Verifier, ...]) -> Steps[Any]:
        """A mid-run verification gate: ``value`` must pass every verifier to go on."""
        journal = self._journal
        journal.check()
        if not verifiers:
            raise ConfigurationError("ctx.verify(value, *verifiers) needs at least one verifier")
        names = [v.name for v in verifiers]
        _, request_hash, column, blobs = journal.encode(
            {"value": value, "verifiers": names}, "ctx.verify() value"
        )
        recorded = journal.next_step(None, "verify", request_hash, column, blobs=blobs)
        if recorded.action == "serve":
            return self._gate_result(value, recorded.value)
        seq = journal.seq  # before the verifiers run: concurrent steps may move the line on
        start = time.time()
        context = VerifyContext(
            inputs=self._inputs,
            run_id=self.run_id,
            facts=journal.facts,
            run_agent=self._run_agent,
        )
        verdicts: list[Verdict] = yield Gather(lambda: run_verifiers(value, verifiers, context))
        listed = [v.to_dict() for v in verdicts]
        outcome: dict[str, Any] = {"passed": all(v.passed for v in verdicts), "verdicts": listed}
        response, blobs = journal.stored(outcome, "ctx.verify() verdicts")
        if _buffer_done(
            journal, seq, "verify", request_hash, column, response, blobs, start, time.time()
        ):
            yield Ledger(journal.flush)
        yield Ledger(
            journal.store.record_verdicts,
            self.run_id,
            self.attempt,
            "gate",
            listed,
            epoch=journal.epoch,
        )
        if journal.trace is not None:
            journal.trace.verification("gate", listed, start, time.time())
        return self._gate_result(value, outcome)

    def _gate_result(self, value: Any, outcome: dict[str, Any]) -> Any:
        if not outcome["passed"]:
            failed = [v for v in outcome["verdicts"] if not v["passed"]]
            raise VerificationError(
                "a verification gate rejected the value: "
                + "; ".join(f"{v['name']}: {v['message']}" for v in failed),
                run_id=self.run_id,
                verdicts=outcome["verdicts"],
                feedback=[f"{v['name']}: {v['message']}" for v in failed],
            )
        journal = self._journal
        journal.mutations_since_gate = 0
        journal.destructive_since_gate = 0
        journal.calls_since_gate = 0
        return value


def _buffer_done(
    journal: Journal,
    seq: int,
    kind: str,
    request_hash: str,
    request: bytes,
    response: bytes,
    blobs: list[Blob],
    start: float,
    end: float,
) -> bool:
    """Queue a completed step without side effects; return whether the buffer is due."""
    row = journal.row(
        seq, kind, kind, False, None, request_hash, request, response, COMPLETED, start, end
    )
    return journal.buffer(row, blobs, 0.0)


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
            The tool's result (or, when served from the journal, the value it returned then,
            validated again by the tool's ``returns=``).

        Raises:
            RegistrationError: The tool is not registered with this app.
            SerializationError: The arguments or the result are not JSON-serialisable.
            InDoubtError: The step was in flight during a crash and cannot be re-issued.
            JournalDivergenceError: The journal holds a different call at this step.
            ToolResponseError: The response does not match the tool's ``returns=``.
            ReadBackError: A mutating call's effect is not there when read back.
            ConsistencyError: The response contradicts another source read in this run.
            BudgetExceededError: A budget of the run would be exceeded.
            GuardTrippedError: A guard refused the call.
            LeaseLostError: Another process took the run over; the attempt stops.
            LedgerError: The ledger became unreachable; the attempt stops (the run resumes).
        """
        return drive(self._call_steps(tool, args, kwargs), self._journal, self._loop, self._host)

    def run(self, agent: Any, /, **inputs: Any) -> RunResult:
        """Run a registered agent as a journaled child of this run, and return its result.

        The child is a run of its own (``parent_run_id`` is this run), with its retries,
        verification and breaker; to this run it is one step. A retry or a resume of this run
        serves the result of a child that completed instead of running it again (one that
        failed runs again on an error retry); a child cut off by a crash is taken over, not
        started twice. Nesting holds no extra worker thread, at any depth.

        Args:
            agent: The registered agent (the decorated function) or its name.
            **inputs: The child's keyword inputs.

        Returns:
            The child's result (a failure is returned, not raised).

        Raises:
            RegistrationError: The agent is not registered with this app.
            SerializationError: An input is not JSON-serialisable.
        """
        return drive(self._child_steps(agent, inputs), self._journal, self._loop, self._host)

    def verify(self, value: Any, *verifiers: Verifier) -> Any:
        """A mid-run verification gate: ``value`` must pass every verifier to go on.

        A passing gate resets the guards that count calls made without a gate.

        Returns:
            ``value``, when it passed.

        Raises:
            VerificationError: It failed; the agent's ``on_drift`` policy then applies.
        """
        return drive(self._gate_steps(value, verifiers), self._journal, self._loop, self._host)

    def _flush_soon(self) -> None:
        self._journal.flush()


class AsyncContext(BaseContext):
    """The context of an async agent: ``await ctx.call(tool, ...)``.

    Its store calls never make the event loop wait for the ledger; a sync tool runs on a thread.
    """

    __slots__ = ()

    async def call(self, tool: ToolRef, /, *args: Any, **kwargs: Any) -> Any:
        """Call a registered tool through the journal; see :meth:`Context.call`.

        A sync tool runs in a worker thread so it does not block the event loop.

        Args:
            tool: The registered tool (the decorated function) or its name.
            *args: Positional arguments for the tool.
            **kwargs: Keyword arguments for the tool.

        Returns:
            The tool's result (or, when served from the journal, the value it returned then).
        """
        return await self._drive(self._call_steps(tool, args, kwargs))

    async def run(self, agent: Any, /, **inputs: Any) -> RunResult:
        """Run a registered agent as a journaled child of this run; see :meth:`Context.run`."""
        return await self._drive(self._child_steps(agent, inputs))

    async def verify(self, value: Any, *verifiers: Verifier) -> Any:
        """A mid-run verification gate; see :meth:`Context.verify`."""
        return await self._drive(self._gate_steps(value, verifiers))

    async def _drive(self, steps: Steps[T]) -> T:
        """Carry out ``steps``: store calls through the ledger driver, sync tools on threads."""
        return await adrive(steps, self._journal, self._io(), self._tools)

    def _io(self) -> LedgerIO:
        if self._ledger is None:
            raise ConfigurationError("this context was built without a ledger driver")
        return self._ledger
