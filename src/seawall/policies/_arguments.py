"""The argument checks policies and watches share: whole counts and finite amounts.

Each returns whether ``value`` is acceptable; the caller raises a
:class:`~seawall.ConfigurationError` naming the argument and what it must be.
"""

from __future__ import annotations

import math


def is_count(value: object, least: int) -> bool:
    """Whether ``value`` is an integer (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def is_amount(value: object, least: float = 0) -> bool:
    """Whether ``value`` is a finite number (seconds, a ratio, dollars) of at least ``least``."""
    return isinstance(value, int | float) and math.isfinite(value) and value >= least
