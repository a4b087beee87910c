"""Registered agents and tools: what the runtime knows about each callable."""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from seawall.errors import ConfigurationError
from seawall.observe.drift import DriftWatch
from seawall.policies.breaker import Breaker
from seawall.policies.budget import RetryBudget
from seawall.policies.drift import OnDrift
from seawall.policies.guards import Guards
from seawall.policies.retry import Retry
from seawall.runtime.backpressure import RateLimit

if TYPE_CHECKING:
    from collections.abc import Callable


_FAIL = OnDrift()
_DEFAULT_GUARDS = Guards()


class ToolOptions(TypedDict, total=False):
    """The keywords of ``@app.tool(...)`` but ``retry``, passed on to :meth:`ToolSpec.build`."""

    name: str | None
    mutating: bool
    idempotent: bool
    compensate: Callable[..., Any] | None
    returns: Any
    read_back: Callable[..., Any] | None
    observes: Callable[..., Any] | None
    breaker: Breaker | bool
    rate_limit: str | None
    retry_budget: RetryBudget | bool
    contradicts: Callable[[Any, Any], bool] | None
    consistency_key: Callable[..., Any] | None
    llm: bool
    destructive: bool


class AgentOptions(TypedDict, total=False):
    """The keywords of ``@app.agent(...)`` but ``retry``, passed on to :meth:`AgentSpec.build`."""

    name: str | None
    timeout: float | None
    version: str | None
    verify: Any
    on_drift: OnDrift | str
    min_confidence: float | None
    guards: Guards | None
    breaker: Breaker | bool
    max_concurrency: int | None
    retry_budget: RetryBudget | bool
    drift: DriftWatch | None


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine (``functools.partial`` unwrapped)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - objects with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def code_version(fn: Callable[..., Any], version: str | None) -> str:
    """Return a short fingerprint of ``fn``'s code, prefixed by the user's version if given."""
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    try:
        source = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        source = code.co_code if code is not None else repr(target).encode()
    fingerprint = hashlib.sha256(source).hexdigest()[:12]
    return f"{version}+{fingerprint}" if version else fingerprint


def _accepts_keyword(fn: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    param = parameters.get(name)
    return param is not None and param.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A registered tool.

    Attributes:
        name: Name in the journal.
        fn: The callable.
        mutating: Whether it has side effects (its intent is written before it runs).
        destructive: Whether its side effect destroys or overwrites something (a delete, a
            payment, a deploy): such calls are limited by the streak guard
            (``Guards.max_destructive_without_gate``). Destructive implies mutating.
        idempotent: Whether re-issuing it with the same idempotency key is safe.
        retry: Its own retry policy for failed calls.
        is_async: Whether it is a coroutine function.
        accepts_key: Whether it takes an ``idempotency_key`` keyword.
        policy_name: ``tool:<name>``: the name of its breaker and retry budget.
        accepts_token: Whether it takes a ``fencing_token`` keyword (the attempt's epoch,
            passed at call time and kept out of the request, so a resume asks the same).
        compensate: Undoes a completed call: ``compensate(result, *args, **kwargs)``.
        returns: What every response must be (a Pydantic model, a JSON Schema dict, a type, or
            a validating function); checked at the boundary, before the agent sees it.
        read_back: ``read_back(result, *args, **kwargs)`` reads the state back after a
            mutating call and returns whether its effect is there (read-your-writes).
        observes: ``observes(result, *args, **kwargs)`` returns the facts a response asserts
            (``{key: value}``), checked for consistency with other sources during the run.
        llm: Whether it is a call to a language model (journal kind ``llm``; traced and
            measured as one).
    """

    name: str
    fn: Callable[..., Any]
    mutating: bool
    idempotent: bool
    retry: Retry
    is_async: bool
    accepts_key: bool
    compensate: Callable[..., Any] | None = None
    returns: Any = None
    read_back: Callable[..., Any] | None = None
    observes: Callable[..., Any] | None = None
    breaker: Breaker | None = None
    rate_limit: RateLimit | None = None
    retry_budget: RetryBudget | None = None
    contradicts: Callable[[Any, Any], bool] | None = None
    consistency_key: Callable[..., Any] | None = None
    llm: bool = False
    destructive: bool = False
    accepts_token: bool = False
    policy_name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        # Its breaker's and retry budget's name, built once (it is asked for on every call).
        object.__setattr__(self, "policy_name", f"tool:{self.name}")

    @property
    def kind(self) -> str:
        """The journal kind of its steps: ``llm`` or ``tool``."""
        return "llm" if self.llm else "tool"

    @classmethod
    def build(  # noqa: C901 - one check per decorator argument
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        mutating: bool = False,
        idempotent: bool = False,
        retry: Retry,
        compensate: Callable[..., Any] | None = None,
        returns: Any = None,
        read_back: Callable[..., Any] | None = None,
        observes: Callable[..., Any] | None = None,
        breaker: Breaker | bool = True,
        rate_limit: str | None = None,
        retry_budget: RetryBudget | bool = True,
        contradicts: Callable[[Any, Any], bool] | None = None,
        consistency_key: Callable[..., Any] | None = None,
        llm: bool = False,
        destructive: bool = False,
    ) -> ToolSpec:
        """Validate the decorator arguments and describe ``fn``."""
        if not callable(fn):
            raise ConfigurationError(f"@app.tool needs a callable, got {fn!r}")
        for label, flag in (
            ("mutating", mutating),
            ("idempotent", idempotent),
            ("llm", llm),
            ("destructive", destructive),
        ):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"@app.tool({label}={flag!r}) must be True or False")
        if destructive and llm:
            raise ConfigurationError(
                "@app.tool(llm=True, destructive=True): a language-model call destroys nothing; "
                "register the tool that acts on its answer as the destructive one"
            )
        # A destructive call has a side effect by definition: it is journaled as mutating.
        mutating = mutating or destructive
        if not isinstance(retry, Retry):
            raise ConfigurationError(f"@app.tool(retry={retry!r}) must be a seawall.Retry")
        if compensate is not None and not callable(compensate):
            raise ConfigurationError(f"@app.tool(compensate={compensate!r}) must be a callable")
        for label, hook in (
            ("read_back", read_back),
            ("observes", observes),
            ("contradicts", contradicts),
            ("consistency_key", consistency_key),
        ):
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"@app.tool({label}={hook!r}) must be a callable")
        if read_back is not None and not mutating:
            raise ConfigurationError(
                "@app.tool(read_back=...) only makes sense with mutating=True: it checks that a "
                "write took effect"
            )
        if returns is not None:
            check_returns(returns)
        if llm and mutating:
            raise ConfigurationError(
                "@app.tool(llm=True, mutating=True): a language-model call has no side effect to "
                "guard; register the tool that acts on its answer as the mutating one"
            )
        if compensate is not None and not mutating:
            raise ConfigurationError(
                "@app.tool(compensate=...) only makes sense with mutating=True: a read-only "
                "call has nothing to undo"
            )
        return cls(
            name=_name_of(fn, name, "tool"),
            fn=fn,
            mutating=mutating,
            idempotent=idempotent,
            retry=retry,
            is_async=is_async_callable(fn),
            accepts_key=_accepts_keyword(fn, "idempotency_key"),
            accepts_token=_accepts_keyword(fn, "fencing_token"),
            compensate=compensate,
            returns=returns,
            read_back=read_back,
            observes=observes,
            breaker=_breaker_of(breaker, TOOL_BREAKER, "tool"),
            rate_limit=None
            if rate_limit is None
            else RateLimit(rate_limit, _name_of(fn, name, "tool")),
            retry_budget=_budget_of(retry_budget, "tool"),
            contradicts=contradicts,
            consistency_key=consistency_key,
            llm=llm,
            destructive=destructive,
        )


AGENT_BREAKER = Breaker(failures=3, cooldown=30.0)
"""Default agent breaker: opens after 3 consecutive failed runs, half-opens after 30 s."""
TOOL_BREAKER = Breaker(failures=2, cooldown=10.0)
"""Default tool breaker: opens after 2 consecutive failed calls, half-opens after 10 s."""


def _breaker_of(value: Breaker | bool, default: Breaker, kind: str) -> Breaker | None:
    if value is True:
        return default
    if value is False:
        return None
    if isinstance(value, Breaker):
        return value
    raise ConfigurationError(
        f"@app.{kind}(breaker={value!r}) must be a seawall.Breaker, True (the default) or False"
    )


def _budget_of(value: RetryBudget | bool, kind: str) -> RetryBudget | None:
    if value is True:
        return _DEFAULT_BUDGET
    if value is False:
        return None
    if isinstance(value, RetryBudget):
        return value
    raise ConfigurationError(
        f"@app.{kind}(retry_budget={value!r}) must be a seawall.RetryBudget, True or False"
    )


_DEFAULT_BUDGET = RetryBudget()


def check_returns(returns: Any) -> None:
    """Refuse a ``returns=`` that cannot validate anything."""
    if isinstance(returns, dict):
        try:
            import jsonschema  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ConfigurationError(
                "@app.tool(returns=<JSON Schema dict>) needs jsonschema: pip install "
                "'seawall[verify]'"
            ) from exc
        try:
            jsonschema.validators.validator_for(returns).check_schema(returns)
        except jsonschema.SchemaError as exc:
            raise ConfigurationError(
                f"@app.tool(returns=...) is not a valid JSON Schema: {exc.message}"
            ) from exc
        return
    if hasattr(returns, "model_validate") or callable(returns):
        return
    raise ConfigurationError(
        f"@app.tool(returns={returns!r}) must be a Pydantic model, a JSON Schema dict, a type "
        "or a validating function"
    )


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """A registered agent.

    Attributes:
        name: Name in the ledger.
        fn: The callable ``fn(ctx, **inputs)``.
        retry: Retry policy for failed attempts.
        timeout: Seconds an attempt may take (``None``: no limit).
        is_async: Whether it is a coroutine function.
        code_version: Fingerprint of its code (and the user's version label).
        verify: Verifiers its output must pass before it is trusted.
        on_drift: What happens when it is not.
        min_confidence: Lowest confidence (``ctx.confidence`` or the output's ``confidence``
            field) that is trusted.
        guards: Limits on each run.
        drift: What of its runs is watched for drift across runs.
    """

    name: str
    fn: Callable[..., Any]
    retry: Retry
    timeout: float | None
    is_async: bool
    code_version: str
    verify: tuple[Any, ...] = ()
    on_drift: OnDrift = _FAIL
    min_confidence: float | None = None
    guards: Guards = _DEFAULT_GUARDS
    breaker: Breaker | None = None
    max_concurrency: int | None = None
    retry_budget: RetryBudget | None = None
    drift: DriftWatch | None = None

    @classmethod
    def build(  # noqa: C901 - one check per decorator argument
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retry: Retry,
        timeout: float | None = None,
        version: str | None = None,
        verify: Any = (),
        on_drift: OnDrift | str = "fail",
        min_confidence: float | None = None,
        guards: Guards | None = None,
        breaker: Breaker | bool = True,
        max_concurrency: int | None = None,
        retry_budget: RetryBudget | bool = True,
        drift: DriftWatch | None = None,
    ) -> AgentSpec:
        """Validate the decorator arguments and describe ``fn``."""
        if not callable(fn):
            raise ConfigurationError(f"@app.agent needs a callable, got {fn!r}")
        if not isinstance(retry, Retry):
            raise ConfigurationError(f"@app.agent(retry={retry!r}) must be a seawall.Retry")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConfigurationError(
                f"@app.agent(timeout={timeout!r}) must be a positive number of seconds or None"
            )
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        positional = [
            p
            for p in parameters
            if p.kind
            in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.VAR_POSITIONAL,
            )
        ]
        if parameters and not positional:
            raise ConfigurationError(
                f"agent {_name_of(fn, name, 'agent')!r} must take the run context as its first "
                "positional parameter: def my_agent(ctx, **inputs)"
            )
        verifiers = tuple(verify) if isinstance(verify, list | tuple) else (verify,)
        for verifier in verifiers:
            if not (hasattr(verifier, "check") and hasattr(verifier, "name")):
                raise ConfigurationError(
                    f"@app.agent(verify=...) takes verifiers from seawall.verify, got {verifier!r}"
                )
        if min_confidence is not None and (
            not isinstance(min_confidence, int | float) or not 0 <= min_confidence <= 1
        ):
            raise ConfigurationError(
                f"@app.agent(min_confidence={min_confidence!r}) must be a number in [0, 1]"
            )
        if guards is not None and not isinstance(guards, Guards):
            raise ConfigurationError(f"@app.agent(guards={guards!r}) must be a seawall.Guards")
        if drift is not None and not isinstance(drift, DriftWatch):
            raise ConfigurationError(f"@app.agent(drift={drift!r}) must be a seawall.DriftWatch")
        return cls(
            name=_name_of(fn, name, "agent"),
            fn=fn,
            retry=retry,
            timeout=None if timeout is None else float(timeout),
            is_async=is_async_callable(fn),
            code_version=code_version(fn, version),
            verify=verifiers,
            on_drift=OnDrift.of(on_drift),
            min_confidence=min_confidence,
            guards=guards if guards is not None else Guards(),
            breaker=_breaker_of(breaker, AGENT_BREAKER, "agent"),
            max_concurrency=max_concurrency,
            retry_budget=_budget_of(retry_budget, "agent"),
            drift=drift,
        )


def _name_of(fn: Callable[..., Any], name: str | None, kind: str) -> str:
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"@app.{kind}(name={name!r}) must be a non-empty string")
        return name
    target: Any = fn
    while isinstance(target, functools.partial):
        target = target.func
    found = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not found:
        raise ConfigurationError(f"cannot name the {kind} {fn!r}; pass @app.{kind}(name=...)")
    return str(found).rsplit("<locals>.", 1)[-1]
