"""Run ids: time-ordered and unique across processes and machines."""

from __future__ import annotations

import os
import time


def new_run_id() -> str:
    """Return a time-ordered, unique run id (48-bit milliseconds + 80 random bits, hex)."""
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"
