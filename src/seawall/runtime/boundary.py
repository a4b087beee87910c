"""The boundary of a tool: its response checked against what it declares it returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seawall.errors import ToolResponseError

if TYPE_CHECKING:
    from seawall.runtime.registry import ToolSpec


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
