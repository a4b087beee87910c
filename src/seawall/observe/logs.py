"""Structured log records: every line about a run carries its run id, agent, attempt and class.

Seawall logs through the standard :mod:`logging` module under the ``seawall`` logger, so your
handlers, formatters and log shippers keep working. Records about a run have the attributes
``run_id``, ``agent``, ``attempt`` and ``error_class`` (``None`` when it does not apply): use
them in a format string (``%(run_id)s``) or a JSON formatter.

:class:`RunContextFilter` stamps the same attributes on *your* records too, when they are
emitted by agent or tool code running inside a run: add it to a handler.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from seawall.runtime.context import current_context

if TYPE_CHECKING:
    from seawall._result import RunResult

FIELDS: Final = ("run_id", "agent", "attempt", "error_class")
"""The attributes every run-related record carries."""

logger: Final = logging.getLogger("seawall.runs")


def run_fields(
    run_id: str,
    agent: str | None = None,
    attempt: int | None = None,
    error_class: str | None = None,
) -> dict[str, Any]:
    """Return the ``extra=`` of a log call about a run."""
    return {"run_id": run_id, "agent": agent, "attempt": attempt, "error_class": error_class}


def log_run_end(result: RunResult) -> None:
    """Log how a run ended: info when it succeeded, a warning with its error otherwise."""
    error_class = None if result.error_class is None else result.error_class.value
    attempts = len(result.attempts)
    fields = run_fields(result.run_id, result.agent, attempts, error_class)
    if result.ok:
        logger.info("run %s (%s) succeeded", result.run_id, result.agent, extra=fields)
        return
    error = result.error or {}
    logger.warning(
        "run %s (%s) ended %s after %d attempt(s): %s (%s: %s)",
        result.run_id,
        result.agent,
        result.status.value,
        attempts,
        error_class,
        error.get("type"),
        error.get("message"),
        extra=fields,
    )


class RunContextFilter(logging.Filter):
    """Stamps ``run_id``, ``agent``, ``attempt`` and ``error_class`` on every record.

    Inside a run the values are the run's (the record's own values win); outside one they are
    ``None``, so a format string that names them never fails. It never drops a record.

    Example::

        handler = logging.StreamHandler()
        handler.addFilter(seawall.observe.logs.RunContextFilter())
        handler.setFormatter(logging.Formatter("%(levelname)s %(run_id)s %(message)s"))
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the run's fields to ``record``; always keep it."""
        ctx = current_context()
        found = {} if ctx is None else run_fields(ctx.run_id, ctx.agent, ctx.attempt, None)
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, found.get(name))
        return True
