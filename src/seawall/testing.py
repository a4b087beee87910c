"""Helpers for testing your own agents with Seawall.

Example:
    >>> from seawall.testing import no_waits, temp_app
    >>> with no_waits(), temp_app() as app:
    ...     @app.agent
    ...     def hello(ctx, name):
    ...         return f"hello {name}"
    ...     app.run(hello, name="you").output
    'hello you'
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall import _timing
from seawall._app import Seawall

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["no_waits", "temp_app"]


@contextlib.contextmanager
def no_waits() -> Iterator[None]:
    """Within the block, retry backoffs are decided and recorded but not slept."""
    previous = _timing.set_waits(False)
    try:
        yield
    finally:
        _timing.set_waits(previous)


@contextlib.contextmanager
def temp_app(**options: Any) -> Iterator[Seawall]:
    """Yield a :class:`~seawall.Seawall` on a ledger in a temporary folder, removed afterwards.

    Args:
        **options: Keyword arguments for :class:`~seawall.Seawall` (not ``ledger``).
    """
    with tempfile.TemporaryDirectory(prefix="seawall-test-") as folder:
        app = Seawall(f"sqlite:///{Path(folder) / 'ledger.db'}", **options)
        try:
            yield app
        finally:
            app.close()
