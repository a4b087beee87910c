"""The read queries behind the dashboard's aggregates: agent names, errors, unpriced runs, usage.

Like :mod:`seawall.ledger._queries` (whose dialects they use): pure functions that build
``(sql, params)`` for either ledger or turn fetched rows into records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from seawall.ledger._queries import _run_range
from seawall.ledger._stats import ErrorCount, ModelUsage, UnpricedCount

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger._dialect import Dialect


def unpriced(dialect: Dialect, since: float | None, until: float | None) -> tuple[str, list[Any]]:
    """The agent and unpriced calls of each run with model calls of unknown price.

    Only the time range is in SQL: the covering partial index ``runs_unpriced`` holds just those
    runs, and a ``GROUP BY agent`` or an agent filter would lead the planner to the agent index
    and every run of the range. :func:`unpriced_rows` counts them.
    """
    where, params = _run_range(since, until, None, "")
    where = (where + " AND" if where else " WHERE") + " unpriced_calls > 0"
    return dialect.sql(f"SELECT agent, unpriced_calls FROM runs{where}"), params


def unpriced_rows(rows: Sequence[Sequence[Any]], agent: str | None) -> list[UnpricedCount]:
    """Counts of :func:`unpriced` rows by agent (of ``agent`` only, when given)."""
    counts: dict[str, list[int]] = {}
    for name, calls in rows:
        if agent is None or name == agent:
            total = counts.setdefault(str(name), [0, 0])
            total[0] += 1
            total[1] += int(calls)
    return [UnpricedCount(name, runs, calls) for name, (runs, calls) in sorted(counts.items())]


AGENT_NAMES: Final = (
    "WITH RECURSIVE names(agent) AS (SELECT MIN(agent) FROM runs UNION ALL "
    "SELECT (SELECT MIN(agent) FROM runs WHERE agent > names.agent) FROM names "
    "WHERE names.agent IS NOT NULL) SELECT agent FROM names WHERE agent IS NOT NULL LIMIT ?"
)
"""The distinct agent names, in order: one index seek per name (one parameter: the limit)."""


def usage_by_model(
    dialect: Dialect, since: float | None, until: float | None, agent: str | None
) -> tuple[str, list[Any]]:
    """Recorded model usage (``usage`` steps) of the runs submitted in a range, by model.

    A usage record is small enough to be stored inline, so its fields are read in SQL; one
    whose model name made it too long to inline is left out.
    """
    where, params = _run_range(since, until, agent, "r.")
    steps = dialect.run_steps if where else "steps s"
    request, response = "s.request", "s.response"

    def field(column: str, name: str) -> str:
        return dialect.field.format(column=column, name=name)

    cost = field(response, "cost_usd")
    number = "CAST({} AS DOUBLE PRECISION)"  # REAL affinity in SQLite
    sql = (
        f"SELECT {field(request, 'model')} AS model, COUNT(*), "
        f"SUM({number.format(field(request, 'input_tokens'))}), "
        f"SUM({number.format(field(request, 'output_tokens'))}), "
        f"SUM({number.format(cost)}), SUM(CASE WHEN {cost} IS NULL THEN 1 ELSE 0 END) "
        f"FROM {steps}"
        + (where + " AND" if where else " WHERE")
        + f" s.kind = 'usage' AND s.status = 'completed' AND {dialect.inline.format(request)} "
        f"AND {dialect.inline.format(response)} GROUP BY model ORDER BY model"
    )
    return dialect.sql(sql), params


def model_usage_rows(rows: Sequence[Sequence[Any]]) -> list[ModelUsage]:
    """Records of :func:`usage_by_model` rows, the costliest first."""
    found = [
        ModelUsage(
            str(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0), float(r[4] or 0), int(r[5])
        )
        for r in rows
    ]
    return sorted(found, key=lambda m: (-m.cost_usd, -m.calls, m.model))


def error_counts(
    dialect: Dialect,
    since: float,
    until: float | None,
    bucket_seconds: float,
    agent: str | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """Runs with an error message in a range, counted by bucket, agent, class, type, message.

    Raises:
        ValueError: ``bucket_seconds`` is not positive.
    """
    if bucket_seconds <= 0:
        raise ValueError("bucket_seconds must be positive")
    where, params = _run_range(since, until, agent, "")
    bucket = dialect.floor.format("(start_time - ?) / ?")
    sql = (
        f"SELECT {bucket} AS bucket, agent, error_class, error_type, error_message, COUNT(*) "
        f"FROM runs{where} AND error_message IS NOT NULL "
        "GROUP BY bucket, agent, error_class, error_type, error_message "
        "ORDER BY COUNT(*) DESC, bucket LIMIT ?"
    )
    return dialect.sql(sql), [since, bucket_seconds, *params, limit]


def error_count_rows(rows: Sequence[Sequence[Any]]) -> list[ErrorCount]:
    """Records of :func:`error_counts` rows."""
    return [ErrorCount(int(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
