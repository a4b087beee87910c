"""The step machine of one tool call through ``ctx.call``, written once for both contexts.

In order: guards; the journal (a step it holds completed is served, a side effect of an earlier
line is matched, an in-doubt call is read back or re-issued with its key); the tool's breaker and
retry budget; a mutating call's intent, durable before the side effect; the call itself, retried
by the tool's policy, its response checked at the boundary; the result, durable before the agent
continues; contradictions, read-your-writes and the facts the response asserts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from seawall._failures import MISUSE
from seawall.errors import (
    AttemptAbandoned,
    ConsistencyError,
    InDoubtError,
    ReadBackError,
    SerializationError,
    ToolResponseError,
)
from seawall.policies.guards import NO_GUARDS
from seawall.runtime.boundary import rebuild_response, validate_response
from seawall.runtime.serving import COMPLETED, FAILED, STARTED, Recorded
from seawall.runtime.steps import Invoke, Ledger, Steps, Turn, Wait

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from seawall._payload import Blob
    from seawall.runtime.journal import Journal
    from seawall.runtime.registry import ToolSpec

_NOTHING: Any = object()
_REMEMBERED_RESULTS = 10_000


class _Final(Exception):  # noqa: N818 - internal marker, never escapes this module
    """Marks a response error that must not be retried (its context is the real error)."""


class Plan:
    """A tool step about to run live."""

    __slots__ = (
        "args",
        "blobs",
        "call_kwargs",
        "column",
        "journal",
        "key",
        "kwargs",
        "request_hash",
        "seq",
        "span",
        "spec",
        "start",
    )

    def __init__(
        self,
        journal: Journal,
        spec: ToolSpec,
        seq: int,
        request: tuple[str, bytes, list[Blob]],
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.journal = journal
        self.spec = spec
        self.seq = seq
        self.request_hash, self.column, self.blobs = request
        self.key = key
        self.args = args
        self.kwargs = kwargs
        call_kwargs = kwargs
        if spec.accepts_key and "idempotency_key" not in kwargs:
            call_kwargs = {**kwargs, "idempotency_key": key}
        if spec.accepts_token and "fencing_token" not in kwargs:
            call_kwargs = {**call_kwargs, "fencing_token": journal.epoch}
        self.call_kwargs = call_kwargs
        self.span: Span | None = None
        self.start = 0.0


def call(
    journal: Journal, spec: ToolSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Steps[Any]:
    """The step machine of ``ctx.call(spec, *args, **kwargs)``; returns the tool's result.

    It raises what :meth:`seawall.Context.call` documents, but for the errors of its driver
    (a tool that is not registered, a lost lease or ledger).
    """
    journal.check()
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
    recorded = journal.next_step(
        spec, spec.name, request_hash, column, effect=spec.mutating, blobs=blobs
    )
    journal.calls += 1
    journal.calls_since_gate += 1
    if not spec.mutating:
        journal.asked = True
    if spec.mutating:
        journal.mutations_since_gate += 1
    if spec.destructive:
        journal.destructive_since_gate += 1
    if recorded.action == "serve":
        value = rebuild_response(spec, recorded.value)
        _observe(journal, spec, recorded.seq, value, args, kwargs)
        if spec.read_back is not None:
            # The write is served, not redone: still check it is there (read-your-writes).
            began = time.perf_counter()
            ok = yield Invoke(spec.read_back, value, *args, **kwargs)
            yield from _read_back_verdict(journal, spec, recorded.seq, ok, began)
        return value
    step_seq = recorded.seq or journal.seq
    explicit = kwargs.get("idempotency_key")
    key = explicit if isinstance(explicit, str) else recorded.key or f"{journal.run_id}:{step_seq}"
    plan = Plan(journal, spec, step_seq, (request_hash, column, blobs), key, args, kwargs)
    return (yield from _execute(plan, recorded))


def _execute(plan: Plan, recorded: Recorded) -> Steps[Any]:
    """Run the call live (or first read an in-doubt one back), retried by the tool's policy."""
    journal, spec, args, kwargs = plan.journal, plan.spec, plan.args, plan.kwargs
    if recorded.action == "read_back" and spec.read_back is not None:
        found = yield Invoke(spec.read_back, None, *args, **kwargs)
        if found:
            return (yield from _recovered(plan, found))
        # It did not take effect: write its intent again and run it.
        yield _intent(plan)
    else:
        # An in-doubt step re-issued is already counted among the run's side effects.
        yield from _begin(plan, counted=recorded.status == STARTED)
    plan.start = time.time()
    tries = 1
    while True:
        try:
            if spec.rate_limit is not None:
                yield Turn(spec.rate_limit)
            raw = yield Invoke(spec.fn, *args, **plan.call_kwargs)
            result = raw if spec.returns is None else (yield from _checked(plan, raw, tries))
            break
        except Exception as exc:
            if journal.interrupted is not None:
                raise
            delay = yield from _retry_delay(plan, exc, tries)
            yield Wait(delay)
            if journal.abandoned:
                raise AttemptAbandoned from exc
            tries += 1
    yield from _succeeded(plan, result, tries)
    if journal.breakers is not None and (
        spec.contradicts is not None or spec.consistency_key is not None
    ):
        yield from _check_contradiction(plan, result)
    if spec.read_back is not None:
        began = time.perf_counter()
        ok = yield Invoke(spec.read_back, result, *args, **kwargs)
        yield from _read_back_verdict(journal, spec, plan.seq, ok, began)
    _observe(journal, spec, plan.seq, result, args, kwargs)
    return result


def _begin(plan: Plan, *, counted: bool) -> Steps[None]:
    """A live call is about to start: breaker, budget, trace, and a mutating call's intent."""
    journal = plan.journal
    spec = plan.spec
    breakers = journal.breakers
    if spec.breaker is not None and breakers is not None and not breakers.admits(spec.policy_name):
        yield Ledger(breakers.check, spec.policy_name, "tool", spec.breaker)
    if spec.retry_budget is not None and journal.budgets is not None:
        journal.budgets.count(spec.policy_name)
    if spec.mutating:
        yield _intent(plan)
        if not counted:
            journal.mutations += 1
    if journal.trace is not None:
        plan.span = journal.trace.start_step(spec, plan.seq, plan.key, plan.call_kwargs)


def _intent(plan: Plan) -> Ledger:
    """The request that makes a mutating call's intent durable (the hot path: no generator)."""
    journal = plan.journal
    row = journal.row(
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
    )
    return Ledger(journal.write_intent, row, plan.blobs)


def _observe(
    journal: Journal,
    spec: ToolSpec,
    seq: int,
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    if spec.observes is None:
        return
    facts = spec.observes(value, *args, **kwargs) or {}
    for key, fact in facts.items():
        journal.observe(str(key), fact, f"{spec.name} (step {seq})")


def _recovered(plan: Plan, found: Any) -> Steps[Any]:
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
                run_id=plan.journal.run_id,
                step=plan.seq,
                tool=spec.name,
            )
        value = None
    else:
        value = validate_response(spec, found)
    response, blobs = plan.journal.stored(value, f"result of tool {spec.name!r}")
    yield Ledger(
        plan.journal.complete,
        plan.seq,
        status=COMPLETED,
        response=response,
        error=None,
        tries=1,
        blobs=blobs,
    )
    return value


def _succeeded(plan: Plan, result: Any, tries: int) -> Steps[None]:
    journal = plan.journal
    spec = plan.spec
    breakers = journal.breakers
    if spec.breaker is not None and breakers is not None and not breakers.quiet(spec.policy_name):
        yield Ledger(breakers.outcome, spec.policy_name, "tool", spec.breaker, success=True)
    try:
        response, blobs = journal.stored(result, f"result of tool {spec.name!r}")
    except SerializationError as exc:
        # The call happened; record it as completed (never to be repeated) without a result.
        end = _end(plan, None, [], exc, tries, COMPLETED)
        if end is not None:
            yield end
        _end_span(plan, tries, exc)
        raise
    end = _end(plan, response, blobs, None, tries, COMPLETED)
    if end is not None:
        yield end
    _end_span(plan, tries, None)


def _end_span(plan: Plan, tries: int, error: BaseException | None) -> None:
    trace = plan.journal.trace
    if trace is not None and plan.span is not None:
        trace.end_step(
            plan.span, plan.spec, plan.call_kwargs, time.time() - plan.start, tries, error
        )
        plan.span = None


def _check_contradiction(plan: Plan, result: Any) -> Steps[None]:
    """Compare a fresh result with the last one for the same key.

    A contradiction opens the tool's breaker and stops the step before the agent builds on
    either answer.
    """
    spec = plan.spec
    breakers = plan.journal.breakers
    if breakers is None or (spec.contradicts is None and spec.consistency_key is None):
        return
    key = (
        spec.name,
        spec.consistency_key(*plan.args, **plan.kwargs) if spec.consistency_key else None,
    )
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
        yield Ledger(breakers.contradiction, spec.policy_name, "tool", spec.breaker, reason)
    raise ConsistencyError(
        f"tool {spec.name!r} contradicted itself ({reason}); its breaker is open and the "
        "step stops before the agent builds on either answer",
        run_id=plan.journal.run_id,
        step=plan.seq,
        tool=spec.name,
        feedback=[reason],
    )


def _read_back_verdict(
    journal: Journal, spec: ToolSpec, seq: int, ok: Any, began: float
) -> Steps[None]:
    passed = bool(ok)
    message = "" if passed else f"the effect of step {seq} ({spec.name}) is not there"
    yield Ledger(
        journal.store.record_verdicts,
        journal.run_id,
        journal.attempt,
        "read_back",
        [
            {
                "name": f"read_back({spec.name})",
                "passed": passed,
                "message": message,
                "duration": time.perf_counter() - began,
            }
        ],
        epoch=journal.epoch,
    )
    if not passed:
        raise ReadBackError(
            f"step {seq}: {spec.name} completed but reading the state back shows no "
            "effect (a write that silently did nothing)",
            run_id=journal.run_id,
            step=seq,
            tool=spec.name,
            verdicts=[{"name": f"read_back({spec.name})", "passed": False, "message": message}],
            feedback=[message],
        )
    journal.mutations_since_gate = 0
    journal.destructive_since_gate = 0


def _end(
    plan: Plan,
    response: bytes | None,
    blobs: list[Blob],
    error: BaseException | None,
    tries: int,
    status: str,
) -> Ledger | None:
    """Record a step's end: the request writing it, if one is due now (else it is buffered)."""
    journal = plan.journal
    spec = plan.spec
    if spec.mutating:
        return Ledger(
            journal.complete,
            plan.seq,
            status=status,
            response=response,
            error=error,
            tries=tries,
            blobs=blobs,
        )
    end = time.time()
    due = journal.buffer(
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
            plan.start,
            end,
            error,
            tries,
        ),
        # A large request is a blob too: written with the row, or the step cannot be read.
        [*plan.blobs, *blobs] if plan.blobs else blobs,
        end - plan.start,
    )
    return Ledger(journal.flush) if due else None


def _checked(plan: Plan, raw: Any, tries: int) -> Steps[Any]:
    """Validate a live response; a mutating call whose response is invalid is not redone."""
    spec = plan.spec
    if spec.returns is None:
        return raw
    try:
        return validate_response(spec, raw)
    except ToolResponseError:
        if spec.mutating and not spec.idempotent:
            # Its effect happened: record the call as done (never to be repeated) and stop.
            yield from _succeeded(plan, raw, tries)
            raise _Final from None
        raise


def _retry_delay(plan: Plan, error: Exception, tries: int) -> Steps[float]:
    """Return the backoff before the next try, or re-raise when the policy gives up."""
    if isinstance(error, _Final):
        cause = error.__context__
        raise cause if cause is not None else error
    spec = plan.spec
    journal = plan.journal
    if isinstance(error, InDoubtError) and spec.mutating:
        # The tool cannot tell whether its effect happened (its server went away mid-call):
        # the step keeps its intent and no result, in doubt as after a crash of this process.
        _end_span(plan, tries, error)
        raise error
    decision = spec.retry.decide(tries, error, time.time() - plan.start)
    spent = False
    if decision.retry and spec.retry_budget is not None and journal.budgets is not None:
        allowed = yield Ledger(journal.budgets.allow_retry, spec.policy_name, spec.retry_budget)
        spent = not allowed
    if not decision.retry or spent:
        # A spent budget fails the call fast; its breaker takes it from there.
        failure = decision.failure(error)  # a refused server wait is stated, not shortened
        yield from _failed(plan, failure, tries)
        raise failure
    trace = journal.trace
    if trace is not None and plan.span is not None:
        trace.retry(plan.span, tries, error, decision.delay)
    return decision.delay


def _failed(plan: Plan, error: BaseException, tries: int) -> Steps[None]:
    spec = plan.spec
    journal = plan.journal
    breakers = journal.breakers
    # A caller's mistake (bad arguments, a value that cannot be stored) says nothing of the tool.
    if spec.breaker is not None and breakers is not None and not isinstance(error, MISUSE):
        yield Ledger(
            breakers.outcome,
            spec.policy_name,
            "tool",
            spec.breaker,
            success=False,
            reason=f"{type(error).__name__}: {str(error)[:200]}",
        )
    if spec.mutating:
        journal.mutations -= 1
    end = _end(plan, None, [], error, tries, FAILED)
    if end is not None:
        yield end
    _end_span(plan, tries, error)
