"""The built-in verifiers: schema, rule, judge, vote, consistency."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from typing import TYPE_CHECKING, Any

from seawall._extras import optional_module
from seawall.errors import ConfigurationError
from seawall.verify._verdicts import Check, VerifyContext

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_MISSING: Any = object()


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async function; a sync one runs in a worker thread."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def _label(fn: Any) -> str:
    return str(getattr(fn, "__name__", None) or getattr(fn, "name", None) or type(fn).__name__)


class SchemaVerifier:
    """The value must match a Pydantic model or a JSON Schema."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        if isinstance(spec, dict):
            jsonschema = optional_module(
                "jsonschema",
                extra="verify",
                needed_by="verify.schema(<JSON Schema dict>) needs jsonschema",
            )
            jsonschema.Draft202012Validator.check_schema(spec)
            self._validator: Any = jsonschema.Draft202012Validator(spec)
            self.name = f"schema({spec.get('title') or 'json schema'})"
        elif hasattr(spec, "model_validate"):
            self._validator = None
            self.name = f"schema({spec.__name__})"
        else:
            raise ConfigurationError(
                f"verify.schema({spec!r}) needs a Pydantic model class or a JSON Schema dict"
            )

    async def check(self, value: Any, context: VerifyContext) -> Check:  # noqa: ARG002 - protocol
        """Validate ``value``; the message lists every problem with its path."""
        if self._validator is not None:
            errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))
            if not errors:
                return Check(passed=True)
            problems = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10]
            )
            return Check(passed=False, message=f"does not match the schema: {problems}")
        try:
            self.spec.model_validate(value)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            errors = getattr(exc, "errors", list)()
            problems = "; ".join(
                f"{'.'.join(map(str, e.get('loc', ()))) or '(root)'}: {e.get('msg')}"
                for e in errors[:10]
            ) or str(exc)
            return Check(passed=False, message=f"does not match {self.spec.__name__}: {problems}")
        return Check(passed=True)


class RuleVerifier:
    """A deterministic predicate; its message is the feedback when it fails."""

    def __init__(self, predicate: Callable[[Any], Any], message: str, name: str | None) -> None:
        if not callable(predicate):
            raise ConfigurationError(f"verify.rule needs a callable predicate, got {predicate!r}")
        self.predicate = predicate
        self.message = message
        self.name = name or f"rule({_label(predicate)})"

    async def check(self, value: Any, context: VerifyContext) -> Check:  # noqa: ARG002 - protocol
        """Pass when the predicate returns a truthy value."""
        result = self.predicate(value)
        if inspect.isawaitable(result):
            result = await result
        return Check(passed=bool(result), message="" if result else self.message)


def _score_of(answer: Any) -> tuple[float, str]:
    reason = ""
    if isinstance(answer, dict):
        reason = str(answer.get("reason", ""))
        answer = answer.get("score", _MISSING)
    elif isinstance(answer, tuple | list) and len(answer) == 2:  # noqa: PLR2004
        answer, reason = answer[0], str(answer[1])
    if isinstance(answer, bool) or not isinstance(answer, int | float) or not math.isfinite(answer):
        raise TypeError(
            f"a judge must return a finite number (or (score, reason), or "
            f"{{'score': ..., 'reason': ...}}), got {answer!r}"
        )
    return float(answer), reason


class JudgeVerifier:
    """A second model or function scores the value; below the threshold it fails."""

    def __init__(self, judge: Any, threshold: float, name: str | None) -> None:
        if not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise ConfigurationError(f"verify.judge(threshold={threshold!r}) must be a number")
        self.judge = judge
        self.threshold = float(threshold)
        self.name = name or f"judge({_label(judge)})"

    async def check(self, value: Any, context: VerifyContext) -> Check:
        """Ask the judge for a score (a function ``judge(value, **inputs)``, or an agent)."""
        if context.run_agent is not None and _is_agent(self.judge, context):
            answer = await context.run_agent(self.judge, {"output": value})
        else:
            answer = await _call(self.judge, value, **context.inputs)
        score, reason = _score_of(answer)
        passed = score >= self.threshold
        message = (
            "" if passed else f"scored {score:g}, below {self.threshold:g}: {reason}".rstrip(": ")
        )
        return Check(passed=passed, message=message, score=score)


def _is_agent(candidate: Any, context: VerifyContext) -> bool:
    checker = getattr(context.run_agent, "is_agent", None)
    return bool(checker(candidate)) if checker is not None else False


class VoteVerifier:
    """Independent paths answer the same inputs; enough of them must agree with the value."""

    def __init__(
        self,
        paths: Sequence[Any],
        quorum: int | None,
        key: str | Callable[[Any], Any] | None,
        name: str | None,
    ) -> None:
        if not paths:
            raise ConfigurationError("verify.vote needs at least one path")
        self.paths = tuple(paths)
        self.quorum = quorum if quorum is not None else len(self.paths) // 2 + 1
        if not 1 <= self.quorum <= len(self.paths):
            raise ConfigurationError(
                f"verify.vote(quorum={quorum!r}) must be between 1 and the {len(self.paths)} paths"
            )
        self.key = key
        self.name = name or f"vote({len(self.paths)} paths, quorum {self.quorum})"

    def _key(self, value: Any) -> Any:
        if self.key is None:
            return value
        if callable(self.key):
            return self.key(value)
        return value.get(self.key) if isinstance(value, dict) else getattr(value, self.key)

    async def check(self, value: Any, context: VerifyContext) -> Check:
        """Ask every path (concurrently) and count those agreeing with ``value``."""

        async def ask(path: Any) -> Any:
            if context.run_agent is not None and _is_agent(path, context):
                return await context.run_agent(path, dict(context.inputs))
            return await _call(path, **context.inputs)

        answers = await asyncio.gather(*(ask(path) for path in self.paths))
        expected = self._key(value)
        agreeing = [self._key(answer) == expected for answer in answers]
        count = sum(agreeing)
        dissent = [
            f"{_label(path)} said {self._key(answer)!r}"
            for path, answer, agrees in zip(self.paths, answers, agreeing, strict=True)
            if not agrees
        ]
        passed = count >= self.quorum
        message = (
            f"{count} of {len(self.paths)} paths agree with {expected!r} (quorum {self.quorum})"
            + (f"; dissent: {', '.join(dissent)}" if dissent else "")
        )
        return Check(passed=passed, message="" if passed and not dissent else message)


class ConsistencyVerifier:
    """The value's fields must agree with what the run read for the same keys."""

    def __init__(self, fields: dict[str, str], name: str | None) -> None:
        self.fields = fields
        self.name = name or f"consistency({', '.join(sorted(fields))})"

    async def check(self, value: Any, context: VerifyContext) -> Check:
        """Compare each named field of ``value`` with the fact observed for its key."""
        conflicts = []
        for field_name, key in self.fields.items():
            if key not in context.facts:
                conflicts.append(f"no source was read for {key!r}")
                continue
            fact, source = context.facts[key]
            got = (
                value.get(field_name)
                if isinstance(value, dict)
                else getattr(value, field_name, None)
            )
            if got != fact:
                conflicts.append(f"{field_name} is {got!r} but {source} says {key!r} = {fact!r}")
        return Check(passed=not conflicts, message="; ".join(conflicts))
