"""``ctx``: what an agent sees of its run. Every call through it is journaled.

:class:`Context` is given to sync agents (which run in a worker thread and call sync tools
inline); :class:`AsyncContext` to async agents, whose ``call`` and ``verify`` are awaited. The
bookkeeping (journal, guards, boundary validation, facts) is shared; only invoking the tool and
waiting differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import random as _random
import time
import uuid as _uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from seawall import _faults, _timing
from seawall._journal import CHECK_READ_BACK, COMPLETED, FAILED, MISSING, STARTED, Journal
from seawall.errors import (
    AttemptAbandoned,
    ConfigurationError,
    ConsistencyError,
    InDoubtError,
    ReadBackError,
    RunCancelled,
    SerializationError,
    ToolResponseError,
    VerificationError,
)
from seawall.observe.cost import usage_entry
from seawall.policies.guards import NO_GUARDS
from seawall.verify import Verdict, VerifyContext, run_verifiers

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from seawall._payload import Blob
    from seawall._registry import ToolSpec
    from seawall.artifacts import StagingArea
    from seawall.verify import Verifier

ToolRef = Callable[..., Any] | str
AgentRunner = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class _Prepared:
    """A tool step about to run live."""

    __slots__ = ("blobs", "call_kwargs", "column", "key", "request_hash", "seq", "span", "spec")

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
        self.span: Span | None = None


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


_NOTHING: Any = object()
_REMEMBERED_RESULTS = 10_000


class _Final(Exception):  # noqa: N818 - internal marker, never escapes this module
    """Marks a response error that must not be retried (its context is the real error)."""


class _ServedWrite:
    """A completed mutating step served from the journal whose tool reads its writes back."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def rebuild_response(spec: ToolSpec, value: Any) -> Any:
    """A response served from the journal, as the agent saw it live.

    The journal holds the value after ``returns=``, so only a model class is applied again (to
    turn the stored JSON back into an instance); a converting function must not run twice.
    """
    if spec.returns is not None and hasattr(spec.returns, "model_validate"):
        return validate_response(spec, value)
    return value


def validate_response(spec: ToolSpec, value: Any) -> Any:
    """Check a tool response against the tool's ``returns=``; return the value the agent sees.

    Raises:
        ToolResponseError: It does not match (the tool's retry policy may call it again).
    """
    returns = spec.returns
    if returns is None:
        return value
    try:
        if hasattr(returns, "model_validate"):
            return value if isinstance(value, returns) else returns.model_validate(value)
        if isinstance(returns, dict):
            import jsonschema  # noqa: PLC0415 - optional dependency, checked at registration

            jsonschema.validate(value, returns)
            return value
        if isinstance(returns, type):
            return _instance_of(returns, value)
        return returns(value)
    except Exception as exc:
        raise ToolResponseError(
            f"tool {spec.name!r} returned a response that does not match its declared "
            f"returns= ({type(exc).__name__}: {str(exc)[:500]}); it was stopped at the boundary",
            tool=spec.name,
        ) from exc


def _instance_of(kind: type, value: Any) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


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
        "_inputs",
        "_journal",
        "_loop",
        "_resolve",
        "_run_agent",
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
        inputs: Mapping[str, Any] | None = None,
        run_agent: AgentRunner | None = None,
    ) -> None:
        self._journal = journal
        self._staging = staging
        self._resolve = resolve
        self._loop = loop
        self._inputs = inputs or {}
        self._run_agent = run_agent
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
        self._live()
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

    def _live(self) -> Journal:
        journal = self._journal
        if journal.abandoned:
            raise AttemptAbandoned
        if journal.cancelled is not None:
            raise RunCancelled(journal.cancelled)
        return journal

    def _value(self, kind: str, make: Callable[[], Any]) -> Any:
        journal = self._live()
        request = b"J[]"
        seq = journal.seq + 1
        served = journal.replay(seq, None, kind, kind) if journal.replaying else MISSING
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
        journal = self._live()
        usage: dict[str, Any] = {
            "model": str(model),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd,
        }
        if provider is not None:  # absent otherwise: older journals hash the same
            usage["provider"] = str(provider)
        _, request_hash, column, blobs = journal.encode(usage, "ctx.record_usage()")
        seq = journal.seq + 1
        served = journal.replay(seq, None, "usage", request_hash) if journal.replaying else MISSING
        journal.seq = seq
        if served is MISSING:
            # The price is looked up once, when the call is recorded, and kept as the step's
            # result: a replay serves it, so a later price change never rewrites history.
            if cost_usd is None:
                priced = journal.prices.cost(
                    str(model), input_tokens, output_tokens, provider=provider
                )
                cost_usd, source = priced.usd, priced.source
            else:
                source = "reported"
            priced_json = {"cost_usd": cost_usd, "priced_by": source}
            _, _, response, response_blobs = journal.encode(priced_json, "ctx.record_usage()")
            now = time.time()
            journal.usage[seq] = usage_entry(usage, priced_json)
            if journal.trace is not None:
                journal.trace.usage(str(model), input_tokens, output_tokens, cost_usd)
            journal.buffer(
                journal.row(
                    seq,
                    "usage",
                    "usage",
                    False,
                    None,
                    request_hash,
                    column,
                    response,
                    COMPLETED,
                    now,
                    now,
                ),
                [*blobs, *response_blobs],
                0.0,
            )
        if journal.guards is not NO_GUARDS:
            totals = journal.totals()
            journal.guards.check_usage(totals.input_tokens + totals.output_tokens, totals.cost_usd)

    # -- verification gates -----------------------------------------------------------------

    def _gate_start(self, value: Any, verifiers: tuple[Verifier, ...]) -> tuple[int, str, Any]:
        journal = self._live()
        if not verifiers:
            raise ConfigurationError("ctx.verify(value, *verifiers) needs at least one verifier")
        names = [v.name for v in verifiers]
        _, request_hash, column, _ = journal.encode(
            {"value": value, "verifiers": names}, "ctx.verify() value"
        )
        seq = journal.seq + 1
        served = journal.replay(seq, None, "verify", request_hash) if journal.replaying else MISSING
        journal.seq = seq
        return seq, request_hash, (column, served)

    def _gate_context(self) -> VerifyContext:
        return VerifyContext(
            inputs=self._inputs,
            run_id=self.run_id,
            facts=self._journal.facts,
            run_agent=self._run_agent,
        )

    def _gate_end(
        self,
        value: Any,
        seq: int,
        request_hash: str,
        column: bytes,
        verdicts: list[Verdict],
        start: float,
    ) -> Any:
        journal = self._journal
        listed = [v.to_dict() for v in verdicts]
        outcome: dict[str, Any] = {"passed": all(v.passed for v in verdicts), "verdicts": listed}
        _, _, response, blobs = journal.encode(outcome, "ctx.verify() verdicts")
        journal.buffer(
            journal.row(
                seq,
                "verify",
                "verify",
                False,
                None,
                request_hash,
                column,
                response,
                COMPLETED,
                start,
                time.time(),
            ),
            blobs,
            0.0,
        )
        journal.store.record_verdicts(self.run_id, self.attempt, "gate", listed)
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

    # -- tool steps -------------------------------------------------------------------------

    def _prepare(
        self, tool: ToolRef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[_Prepared | None, Any]:
        """Journal bookkeeping before a tool call: returns the plan, or the served result."""
        journal = self._live()
        spec = self._resolve(tool)
        guards = journal.guards
        if guards is not NO_GUARDS:
            guards.check_deadline(journal.started, time.time())
            guards.check_call(
                calls=journal.calls,
                mutating=spec.mutating,
                mutations_since_gate=journal.mutations_since_gate,
                calls_since_gate=journal.calls_since_gate,
                destructive=spec.destructive,
                destructive_since_gate=journal.destructive_since_gate,
            )
        _, request_hash, column, blobs = journal.encode(
            (spec.name, args, kwargs), f"arguments of tool {spec.name!r}"
        )
        seq = journal.seq + 1
        served = (
            journal.replay(seq, spec, spec.name, request_hash) if journal.replaying else MISSING
        )
        journal.seq = seq
        journal.calls += 1
        journal.calls_since_gate += 1
        if spec.mutating:
            journal.mutations_since_gate += 1
        if spec.destructive:
            journal.destructive_since_gate += 1
        if served is not MISSING and served is not CHECK_READ_BACK:
            value = rebuild_response(spec, served)
            self._observe(spec, seq, value, args, kwargs)
            if spec.read_back is not None:
                # The write is served, not redone: still check it is there (read-your-writes).
                return _Prepared(spec, seq, request_hash, column, blobs, "", kwargs), _ServedWrite(
                    value
                )
            return None, value
        explicit = kwargs.get("idempotency_key")
        key = explicit if isinstance(explicit, str) else f"{journal.run_id}:{seq}"
        call_kwargs = kwargs
        if spec.accepts_key and "idempotency_key" not in kwargs:
            call_kwargs = {**kwargs, "idempotency_key": key}
        plan = _Prepared(spec, seq, request_hash, column, blobs, key, call_kwargs)
        if served is CHECK_READ_BACK:
            return plan, CHECK_READ_BACK
        self._begin(plan)
        return plan, None

    def _begin(self, plan: _Prepared) -> None:
        """A live call is about to start: breaker, budget, trace, and a mutating call's intent."""
        journal = self._journal
        spec = plan.spec
        if spec.breaker is not None and journal.breakers is not None:
            journal.breakers.check(f"tool:{spec.name}", "tool", spec.breaker)
        if spec.retry_budget is not None and journal.budgets is not None:
            journal.budgets.count(f"tool:{spec.name}")
        if spec.mutating:
            self._write_intent(plan)
            journal.mutations += 1
        if journal.trace is not None:
            plan.span = journal.trace.start_step(spec, plan.seq, plan.key, plan.call_kwargs)

    def _prepare_again(self, plan: _Prepared) -> _Prepared:
        """The in-doubt call did not take effect: write its intent again and run it."""
        self._write_intent(plan)
        return plan

    def _write_intent(self, plan: _Prepared) -> None:
        """Make a mutating call's intent durable before it runs."""
        journal = self._journal
        journal.write_intent(
            journal.row(
                plan.seq,
                plan.spec.kind,
                plan.spec.name,
                True,
                plan.key,
                plan.request_hash,
                plan.column,
                None,
                STARTED,
                time.time(),
                None,
            ),
            plan.blobs,
        )

    def _observe(
        self, spec: ToolSpec, seq: int, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if spec.observes is None:
            return
        facts = spec.observes(value, *args, **kwargs) or {}
        for key, fact in facts.items():
            self._journal.observe(str(key), fact, f"{spec.name} (step {seq})")

    def _recovered(self, plan: _Prepared, found: Any) -> Any:
        """An in-doubt call whose effect reads back as present: record it as completed.

        ``read_back`` may return the current state instead of ``True``; it then becomes the
        step's result. A tool that declares ``returns=`` needs that: without a result, the step
        cannot be recovered and goes to a person.
        """
        spec = plan.spec
        if found is True:
            if spec.returns is not None:
                raise InDoubtError(
                    f"step {plan.seq} ({spec.name}) took effect before its process died, but "
                    "its result is unknown and the tool declares returns=; make read_back return "
                    "the current state (not True) to recover such calls",
                    run_id=self.run_id,
                    step=plan.seq,
                    tool=spec.name,
                )
            value = None
        else:
            value = validate_response(spec, found)
        _, _, response, blobs = self._journal.encode(value, f"result of tool {spec.name!r}")
        self._journal.complete(
            plan.seq, status=COMPLETED, response=response, error=None, tries=1, blobs=blobs
        )
        return value

    def _succeeded(self, plan: _Prepared, result: Any, start: float, tries: int) -> None:
        journal = self._journal
        spec = plan.spec
        if spec.breaker is not None and journal.breakers is not None:
            journal.breakers.outcome(f"tool:{spec.name}", "tool", spec.breaker, success=True)
        try:
            _, _, response, blobs = journal.encode(result, f"result of tool {spec.name!r}")
        except SerializationError as exc:
            # The call happened; record it as completed (never to be repeated) without a result.
            self._record_end(plan, start, None, [], exc, tries, COMPLETED)
            self._end_span(plan, start, tries, exc)
            raise
        self._record_end(plan, start, response, blobs, None, tries, COMPLETED)
        self._end_span(plan, start, tries, None)

    def _end_span(
        self, plan: _Prepared, start: float, tries: int, error: BaseException | None
    ) -> None:
        trace = self._journal.trace
        if trace is not None and plan.span is not None:
            trace.end_step(
                plan.span, plan.spec, plan.call_kwargs, time.time() - start, tries, error
            )
            plan.span = None

    def _check_contradiction(
        self, plan: _Prepared, result: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Compare a fresh result with the last one for the same key.

        A contradiction opens the tool's breaker and stops the step before the agent builds on
        either answer.
        """
        spec = plan.spec
        breakers = self._journal.breakers
        if breakers is None or (spec.contradicts is None and spec.consistency_key is None):
            return
        key = (spec.name, spec.consistency_key(*args, **kwargs) if spec.consistency_key else None)
        known = breakers.last_results
        previous = known.get(key, _NOTHING)
        known[key] = result
        known.move_to_end(key)
        while len(known) > _REMEMBERED_RESULTS:
            known.popitem(last=False)
        if previous is _NOTHING:
            return
        differ = spec.contradicts(previous, result) if spec.contradicts else previous != result
        if not differ:
            return
        reason = f"contradictory results: {previous!r} then {result!r}"[:300]
        if spec.breaker is not None:
            breakers.contradiction(f"tool:{spec.name}", "tool", spec.breaker, reason)
        raise ConsistencyError(
            f"tool {spec.name!r} contradicted itself ({reason}); its breaker is open and the "
            "step stops before the agent builds on either answer",
            run_id=self.run_id,
            step=plan.seq,
            tool=spec.name,
            feedback=[reason],
        )

    def _read_back_verdict(self, plan: _Prepared, ok: Any, duration: float) -> None:
        spec = plan.spec
        passed = bool(ok)
        message = "" if passed else f"the effect of step {plan.seq} ({spec.name}) is not there"
        self._journal.store.record_verdicts(
            self.run_id,
            self.attempt,
            "read_back",
            [
                {
                    "name": f"read_back({spec.name})",
                    "passed": passed,
                    "message": message,
                    "duration": duration,
                }
            ],
        )
        if not passed:
            raise ReadBackError(
                f"step {plan.seq}: {spec.name} completed but reading the state back shows no "
                "effect (a write that silently did nothing)",
                run_id=self.run_id,
                step=plan.seq,
                tool=spec.name,
                verdicts=[{"name": f"read_back({spec.name})", "passed": False, "message": message}],
                feedback=[message],
            )
        self._journal.mutations_since_gate = 0
        self._journal.destructive_since_gate = 0

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
                spec.kind,
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
            # A large request is a blob too: written with the row, or the step cannot be read.
            [*plan.blobs, *blobs] if plan.blobs else blobs,
            end - start,
        )

    def _checked(self, plan: _Prepared, raw: Any, start: float, tries: int) -> Any:
        """Validate a live response; a mutating call whose response is invalid is not redone."""
        spec = plan.spec
        if spec.returns is None:
            return raw
        try:
            return validate_response(spec, raw)
        except ToolResponseError:
            if spec.mutating and not spec.idempotent:
                # Its effect happened: record the call as done (never to be repeated) and stop.
                self._succeeded(plan, raw, start, tries)
                raise _Final from None
            raise

    def _retry_delay(self, plan: _Prepared, error: Exception, start: float, tries: int) -> float:
        """Return the backoff before the next try, or re-raise when the policy gives up."""
        if isinstance(error, _Final):
            cause = error.__context__
            raise cause if cause is not None else error
        spec = plan.spec
        if isinstance(error, InDoubtError) and spec.mutating:
            # The tool cannot tell whether its effect happened (its server went away mid-call):
            # the step keeps its intent and no result, in doubt as after a crash of this process.
            self._end_span(plan, start, tries, error)
            raise error
        decision = spec.retry.decide(tries, error, time.time() - start)
        budgets = self._journal.budgets
        spent = (
            decision.retry
            and spec.retry_budget is not None
            and budgets is not None
            and not budgets.allow_retry(f"tool:{spec.name}", spec.retry_budget)
        )
        if not decision.retry or spent:
            # A spent budget fails the call fast; its breaker takes it from there.
            self._failed(plan, error, start, tries)
            raise error
        trace = self._journal.trace
        if trace is not None and plan.span is not None:
            trace.retry(plan.span, tries, error, decision.delay)
        return decision.delay

    def _failed(self, plan: _Prepared, error: BaseException, start: float, tries: int) -> None:
        spec = plan.spec
        breakers = self._journal.breakers
        if spec.breaker is not None and breakers is not None:
            breakers.outcome(
                f"tool:{spec.name}",
                "tool",
                spec.breaker,
                success=False,
                reason=f"{type(error).__name__}: {str(error)[:200]}",
            )
        if plan.spec.mutating:
            self._journal.mutations -= 1
        self._record_end(plan, start, None, [], error, tries, FAILED)
        self._end_span(plan, start, tries, error)


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
            The tool's result (or, when served from the journal, its JSON form, validated
            again by the tool's ``returns=``).

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
        """
        plan, served = self._prepare(tool, args, kwargs)
        if plan is None:
            return served
        spec = plan.spec
        if isinstance(served, _ServedWrite):
            began = time.perf_counter()
            ok = self._run(spec.read_back, served.value, *args, **kwargs)
            self._read_back_verdict(plan, ok, time.perf_counter() - began)
            return served.value
        if served is CHECK_READ_BACK:
            found = self._run(spec.read_back, None, *args, **kwargs)
            if found:
                return self._recovered(plan, found)
            plan = self._prepare_again(plan)
        fn = spec.fn
        start = time.time()
        tries = 1
        while True:
            try:
                if spec.rate_limit is not None:
                    spec.rate_limit.wait()
                raw = self._run(fn, *args, **plan.call_kwargs)
                result = self._checked(plan, raw, start, tries)
                break
            except Exception as exc:
                _timing.sleep(self._retry_delay(plan, exc, start, tries))
                if self._journal.abandoned:
                    raise AttemptAbandoned from exc
                tries += 1
        self._succeeded(plan, result, start, tries)
        self._check_contradiction(plan, result, args, kwargs)
        if spec.read_back is not None:
            began = time.perf_counter()
            ok = self._run(spec.read_back, result, *args, **kwargs)
            self._read_back_verdict(plan, ok, time.perf_counter() - began)
        self._observe(spec, plan.seq, result, args, kwargs)
        return result

    def _run(self, fn: Callable[..., Any] | None, *args: Any, **kwargs: Any) -> Any:
        if fn is None:
            return None
        result = fn(*args, **kwargs)
        if asyncio.iscoroutine(result):
            return asyncio.run_coroutine_threadsafe(result, self._loop).result()
        return result

    def verify(self, value: Any, *verifiers: Verifier) -> Any:
        """A mid-run verification gate: ``value`` must pass every verifier to go on.

        A passing gate resets the guards that count calls made without a gate.

        Returns:
            ``value``, when it passed.

        Raises:
            VerificationError: It failed; the agent's ``on_drift`` policy then applies.
        """
        seq, request_hash, (column, served) = self._gate_start(value, verifiers)
        if served is not MISSING:
            return self._gate_result(value, served)
        start = time.time()
        verdicts = asyncio.run_coroutine_threadsafe(
            run_verifiers(value, verifiers, self._gate_context()), self._loop
        ).result()
        return self._gate_end(value, seq, request_hash, column, verdicts, start)


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
        if isinstance(served, _ServedWrite):
            began = time.perf_counter()
            ok = await self._run(spec.read_back, served.value, *args, **kwargs)
            self._read_back_verdict(plan, ok, time.perf_counter() - began)
            return served.value
        if served is CHECK_READ_BACK:
            found = await self._run(spec.read_back, None, *args, **kwargs)
            if found:
                return self._recovered(plan, found)
            plan = self._prepare_again(plan)
        fn = spec.fn
        start = time.time()
        tries = 1
        while True:
            try:
                if spec.rate_limit is not None:
                    await spec.rate_limit.await_turn()
                raw = await self._run(fn, *args, **plan.call_kwargs)
                result = self._checked(plan, raw, start, tries)
                break
            except Exception as exc:
                await _timing.asleep(self._retry_delay(plan, exc, start, tries))
                if self._journal.abandoned:
                    raise AttemptAbandoned from exc
                tries += 1
        self._succeeded(plan, result, start, tries)
        self._check_contradiction(plan, result, args, kwargs)
        if spec.read_back is not None:
            began = time.perf_counter()
            ok = await self._run(spec.read_back, result, *args, **kwargs)
            self._read_back_verdict(plan, ok, time.perf_counter() - began)
        self._observe(spec, plan.seq, result, args, kwargs)
        return result

    async def _run(self, fn: Callable[..., Any] | None, *args: Any, **kwargs: Any) -> Any:
        if fn is None:
            return None
        if asyncio.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def verify(self, value: Any, *verifiers: Verifier) -> Any:
        """A mid-run verification gate; see :meth:`Context.verify`."""
        seq, request_hash, (column, served) = self._gate_start(value, verifiers)
        if served is not MISSING:
            return self._gate_result(value, served)
        start = time.time()
        verdicts = await run_verifiers(value, verifiers, self._gate_context())
        return self._gate_end(value, seq, request_hash, column, verdicts, start)
