"""Backoff waits, switchable off for tests (see :func:`seawall.testing.no_waits`)."""

from __future__ import annotations

import asyncio
import time

_state = {"waits": True}


def waits_enabled() -> bool:
    """Whether backoff waits really sleep."""
    return _state["waits"]


def set_waits(enabled: bool) -> bool:
    """Turn backoff sleeping on or off; return the previous setting."""
    previous = _state["waits"]
    _state["waits"] = enabled
    return previous


def sleep(delay: float) -> None:
    """Wait ``delay`` seconds (unless waits are off)."""
    if delay > 0 and _state["waits"]:
        time.sleep(delay)


async def asleep(delay: float) -> None:
    """Wait ``delay`` seconds without blocking the loop (unless waits are off)."""
    await asyncio.sleep(delay if _state["waits"] else 0)
