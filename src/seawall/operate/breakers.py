"""``app.breakers``: the circuit breakers every process shares, read and set by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall.errors import ConfigurationError

if TYPE_CHECKING:
    import builtins

    from seawall.ledger import BreakerEvent
    from seawall.policies.breaker import BreakerState
    from seawall.runtime.services import Runtime


class BreakerControls:
    """``app.breakers``: every breaker the ledger knows (``agent:NAME`` and ``tool:NAME``).

    Each operation is one ledger transaction, so none has an async twin.
    """

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def list(self) -> builtins.list[BreakerState]:
        """Every breaker the ledger knows, with its state."""
        return self._rt.store.list_breakers()

    def events(self, name: str, limit: int = 100) -> builtins.list[BreakerEvent]:
        """A breaker's transitions, newest first."""
        return self._rt.store.breaker_events(name, limit)

    def open(self, name: str, *, reason: str) -> BreakerState:
        """Open a breaker by hand: new runs (or calls) are refused with ``reason`` until reset.

        Raises:
            ConfigurationError: ``name`` is not ``agent:NAME`` or ``tool:NAME``.
        """
        return self._rt.breakers.open(name, _kind(name), reason)

    def reset(self, name: str) -> BreakerState:
        """Close a breaker and forget its failures (and a manual opening).

        Raises:
            ConfigurationError: ``name`` is not ``agent:NAME`` or ``tool:NAME``.
        """
        return self._rt.breakers.reset(name, _kind(name))


def _kind(name: str) -> str:
    kind, sep, rest = name.partition(":")
    if not sep or kind not in ("agent", "tool") or not rest:
        raise ConfigurationError(
            f"breaker name {name!r} must be agent:NAME or tool:NAME (see `seawall breakers list`)"
        )
    return kind


__all__ = ["BreakerControls"]
