"""The read queries both ledgers share, built once for SQLite's and PostgreSQL's SQL dialects.

Pure functions: they return ``(sql, params)`` (or turn aggregate rows into statistics); the
stores run them, and :mod:`seawall.ledger._rows` turns fetched rows into records. SQL is written
with ``?`` placeholders and converted for psycopg (``%s``); the few real differences
(case-insensitive ``LIKE``, integer division) live in the store's
:class:`~seawall.ledger._dialect.Dialect`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from seawall.ledger._stats import LATENCY_BOUNDS, QueueCount, RunStats, StepLatency

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger._dialect import Dialect
    from seawall.ledger._records import DeadLetterQuery, RunQuery
    from seawall.ledger._watch_records import DriftEmbedding


HOUR: Final = 3600.0
"""The width of ``run_counts``' buckets: ranges and buckets in whole hours are summed from it."""
LATENCY_COLUMNS: Final = tuple(f"b{i:02d}" for i in range(len(LATENCY_BOUNDS) + 1))
"""``step_counts``' histogram columns: ``bNN`` counts the calls above bound ``NN - 1`` and
within bound ``NN`` of :data:`~seawall.ledger.LATENCY_BOUNDS`; the last, those above them all."""
TRIGRAM: Final = 3
"""The shortest text search the full-text index answers (it indexes trigrams)."""
FEW_MATCHES: Final = 1000
"""Fewer runs than this found by the full-text index: the runs page reads just those; more, and
the newest failed runs hold a page of them soon enough to be read in order."""
ID_KINDS: Final = {"run": ("runs", "run_id"), "handoff": ("handoffs", "handoff_id")}
"""The kinds of id a person types (``seawall show RUN``...): their table and column."""


ID_CHARACTERS: Final = frozenset("0123456789abcdef")
"""What Seawall writes its run and hand-off ids with: lowercase hex digits (``seawall._ids``)."""
ID_ORDER_PROBE: Final = (
    "WITH c(ch) AS (SELECT unnest(string_to_array('0123456789abcdefg', NULL)) UNION ALL "
    "SELECT ''), s(x) AS (SELECT DISTINCT a.ch || b.ch || d.ch FROM c a, c b, c d) "
    'SELECT array_agg(x ORDER BY x{collation}) = array_agg(x ORDER BY x COLLATE "C") FROM s'
)
"""Whether the database (or ``{collation}``, a ``COLLATE`` clause) sorts ids as their bytes.

Every string of up to three of the id characters and ``g`` is sorted both ways (5,220 strings,
about 3 ms): that shows a numeric collation (``10`` after ``9``) and a contraction of id
characters (Danish sorts ``aa`` as ``å``, after ``f``), the two ways a collation of PostgreSQL
could order ids other than by their bytes.
"""


def ids_with_prefix(
    dialect: Dialect, kind: str, prefix: str, limit: int, *, ranged: bool = False
) -> tuple[str, list[Any]]:
    """The ids of ``kind`` (``run`` or ``handoff``) that start with ``prefix``, in order.

    ``ranged``: the database sorts ids as their bytes (:data:`ID_ORDER_PROBE`), so a prefix of
    id characters also bounds the ids by a range of the id's index: from the prefix up to the
    prefix followed by ``g``, which sorts after every id character. The ``LIKE`` stays, so the
    match is exact; an id holding other characters (Seawall writes none) may be missed.
    """
    table, column = ID_KINDS[kind]
    where, params = f"{column} {dialect.starts_with} ?", [dialect.prefix_pattern(prefix)]
    if ranged and ID_CHARACTERS.issuperset(prefix):
        where, params = (
            f"{column} >= ? AND {column} < ? AND {where}",
            [prefix, prefix + "g", *params],
        )
    sql = f"SELECT {column} FROM {table} WHERE {where} ORDER BY {column} LIMIT ?"
    return dialect.sql(sql), [*params, limit]


RUN_COLUMNS: Final = (
    "run_id, agent, status, start_time, end_time, input_hash, output_hash, input_tokens, "
    "output_tokens, cost_usd, error_class, failure_cause, error_type, error_message, "
    "error_json, attempts, workflow, parent_run_id, replay_of, code_version, lease_owner, "
    "lease_expires_at, updated_at, phase, replay_mode, node, retried_input_tokens, "
    "retried_output_tokens, retried_cost_usd, unknown_usage_calls, unpriced_calls, trace_id, "
    "span_id, epoch"
)
"""A run's columns, named as :class:`~seawall.ledger.RunRecord`'s fields (but ``error_json``)."""


def text_matches(search: str) -> tuple[str, list[Any]]:
    """How many runs SQLite's full-text index finds for ``search``, up to :data:`FEW_MATCHES`.

    The store's probe before :func:`list_runs` (its ``indexed``).
    """
    sql = "SELECT COUNT(*) FROM (SELECT 1 FROM runs_search WHERE runs_search MATCH ? LIMIT ?)"
    return sql, [_phrase(search), FEW_MATCHES]


def _phrase(search: str) -> str:
    return '"' + search.replace('"', '""') + '"'


def list_runs(query: RunQuery, dialect: Dialect, *, indexed: bool = False) -> tuple[str, list[Any]]:
    """The runs matching ``query``, newest first (keyset paging with ``query.before``).

    Args:
        query: The filters and the page.
        dialect: The database's.
        indexed: Narrow a text search to the runs the full-text index finds (where the
            dialect has one): the store's choice when they are few (see :func:`text_matches`);
            a frequent text is found sooner by reading the newest failed runs in order.
    """
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", query.status),
        ("agent", query.agent),
        ("error_class", query.error_class),
        ("parent_run_id", query.parent_run_id),
        ("replay_of", query.replay_of),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(str(value))
    if query.since is not None:
        where.append("start_time >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("start_time < ?")
        params.append(query.until)
    if query.search:
        if indexed and dialect.text_index:
            # The index's candidates (a superset: it folds case beyond ASCII), then the LIKE.
            where.append(dialect.text_index.format("?"))
            params.append(_phrase(query.search))
        where.append(f"error_message IS NOT NULL AND error_message {dialect.like} ? ESCAPE '\\'")
        params.append(f"%{like_escape(query.search)}%")
    _narrow(query, where, params)
    if query.before is not None:
        where.append("(start_time, run_id) < (?, ?)")
        params += [query.before[0], query.before[1]]
    sql = f"SELECT {RUN_COLUMNS} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY start_time DESC, run_id DESC LIMIT ? OFFSET ?"
    return dialect.sql(sql), [*params, query.limit, query.offset]


def _narrow(query: RunQuery, where: list[str], params: list[Any]) -> None:
    """Add the dashboard's narrower run filters (top-level, several classes, retried)."""
    if query.top_level:
        where.append("parent_run_id IS NULL")
    if query.error_classes:
        where.append(f"error_class IN ({', '.join('?' * len(query.error_classes))})")
        params += [str(c) for c in query.error_classes]
    if query.retried:
        where.append("attempts > 1")


SENT_AT: Final = "COALESCE(resent_at, start_time)"
"""When a run's id was last sent to the workers: at its submission, or by a sweep since."""

UNCLAIMED: Final = "status = 'pending' AND epoch = 0"
"""Runs recorded for a worker that no worker has claimed yet (their message is queued or lost)."""

LAPSED: Final = "status IN ('running', 'pending') AND lease_expires_at < ?"
"""Unfinished runs whose lease lapsed before ``?`` (their owner died or stalled)."""


def among(column: str, values: Sequence[str]) -> str:
    """``column IN (?, ...)`` for ``values`` (false when there are none)."""
    return f"{column} IN ({', '.join('?' * len(values))})" if values else "1 = 0"


def routed(route: str | None) -> tuple[str, list[Any]]:
    """The condition (and its parameters) of runs sent to ``route`` (``None``: kept local)."""
    return ("route IS NULL", []) if route is None else ("route = ?", [route])


def count_unclaimed(
    dialect: Dialect, route: str | None, agents: Sequence[str], sent_before: float
) -> tuple[str, list[Any]]:
    """How many unclaimed runs of ``agents`` were sent to ``route`` before ``sent_before``."""
    where, params = routed(route)
    sql = (
        f"SELECT COUNT(*) FROM runs WHERE {UNCLAIMED} AND {where} AND {among('agent', agents)} "
        f"AND {SENT_AT} < ?"
    )
    return dialect.sql(sql), [*params, *agents, sent_before]


def oldest_unclaimed(
    dialect: Dialect, route: str | None, agents: Sequence[str], again_before: float, limit: int
) -> tuple[str, list[Any]]:
    """The ``limit`` unclaimed runs of ``agents`` sent to ``route`` first (none re-sent since)."""
    where, params = routed(route)
    sql = (
        f"SELECT {RUN_COLUMNS} FROM runs WHERE {UNCLAIMED} AND {where} AND "
        f"{among('agent', agents)} AND (resent_at IS NULL OR resent_at < ?) "
        f"ORDER BY {SENT_AT}, run_id LIMIT ?"
    )
    return dialect.sql(sql), [*params, *agents, again_before, limit]


def lapsed_runs(
    dialect: Dialect, route: str | None, agents: Sequence[str], now: float, limit: int
) -> tuple[str, list[Any]]:
    """The runs of ``agents`` sent to ``route`` whose lease lapsed before ``now``, oldest first."""
    where, params = routed(route)
    sql = (
        f"SELECT {RUN_COLUMNS} FROM runs WHERE {LAPSED} AND {where} AND "
        f"{among('agent', agents)} ORDER BY lease_expires_at, run_id LIMIT ?"
    )
    return dialect.sql(sql), [now, *params, *agents, limit]


def run_stats(
    dialect: Dialect,
    since: float | None,
    until: float | None,
    bucket_seconds: float | None,
    agent: str | None,
) -> tuple[str, list[Any]]:
    """Runs counted by time bucket, agent, status and error class (one ``GROUP BY``).

    Raises:
        ValueError: ``bucket_seconds`` without ``since``, or not positive.
    """
    if bucket_seconds is not None and (since is None or bucket_seconds <= 0):
        raise ValueError("bucket_seconds needs since and must be positive")
    if all(edge is None or edge % HOUR == 0 for edge in (since, until, bucket_seconds)):
        return _counted_run_stats(dialect, since, until, bucket_seconds, agent)
    where, params = _run_range(since, until, agent, "")
    if bucket_seconds is not None:
        # start_time >= since: the number is non-negative, so truncating floors it.
        bucket = dialect.floor.format("(start_time - ?) / ?")
        params = [since, bucket_seconds, *params]
    else:
        bucket = "0"
    sql = (
        f"SELECT {bucket} AS bucket, agent, status, error_class, COUNT(*), "
        "SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), SUM(input_tokens), "
        "SUM(output_tokens), SUM(COALESCE(cost_usd, 0)) FROM runs"
        f"{where} GROUP BY bucket, agent, status, error_class ORDER BY bucket, agent"
    )
    return dialect.sql(sql), params


def _counted_run_stats(
    dialect: Dialect,
    since: float | None,
    until: float | None,
    bucket_seconds: float | None,
    agent: str | None,
) -> tuple[str, list[Any]]:
    """:func:`run_stats` of whole hours, summed from ``run_counts`` (kept by the runs' writes)."""
    where, params = _hours(since, until, agent)
    bucket = "0"
    if bucket_seconds is not None:
        bucket = dialect.floor.format(f"(hour * {int(HOUR)} - ?) / ?")
        params = [since, bucket_seconds, *params]
    sql = (
        f"SELECT {bucket} AS bucket, agent, status, NULLIF(error_class, ''), SUM(runs), "
        f"SUM(retries), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd) FROM run_counts{where}"
        " GROUP BY bucket, agent, status, error_class HAVING SUM(runs) > 0 "
        "ORDER BY bucket, agent"
    )
    return dialect.sql(sql), params


def _counted_step_latency(
    dialect: Dialect, since: float | None, until: float | None, agent: str | None
) -> tuple[str, list[Any]]:
    """:func:`step_latency` of whole hours with the default bounds, summed from ``step_counts``.

    Its ``bNN`` columns count the calls between bound ``NN - 1`` and bound ``NN``: a bound's
    cumulative count is the sum of the columns up to it. The counts hold the calls of settled
    runs (a run's calls join them when it ends or waits for a person).
    """
    where, params = _hours(since, until, agent)
    columns = LATENCY_COLUMNS[:-1]  # a bound's cumulative count: its column and those below
    counts = "".join(f", SUM({' + '.join(columns[: i + 1])})" for i in range(len(columns)))
    sql = (
        f"SELECT kind, name, SUM(calls), SUM(errors), SUM(retries), SUM(seconds){counts} "
        f"FROM step_counts{where} GROUP BY kind, name HAVING SUM(calls) > 0 ORDER BY kind, name"
    )
    return dialect.sql(sql), params


def _hours(since: float | None, until: float | None, agent: str | None) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of a range of whole hours (and an agent) in a counts table."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("hour >= ?", None if since is None else int(since // HOUR)),
        ("hour < ?", None if until is None else int(until // HOUR)),
        ("agent = ?", agent),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def run_stats_rows(rows: Sequence[Sequence[Any]]) -> list[RunStats]:
    """Records of :func:`run_stats` rows (PostgreSQL's sums are decimals: converted)."""
    return [
        RunStats(
            int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]), float(r[8])
        )
        for r in rows
    ]


def step_latency(
    dialect: Dialect,
    bounds: Sequence[float],
    since: float | None,
    until: float | None,
    agent: str | None,
) -> tuple[str, list[Any], tuple[float, ...]]:
    """Histogram of finished tool and model call durations, per kind and name.

    Raises:
        ValueError: ``bounds`` are not ascending.
    """
    edges = tuple(float(b) for b in bounds)
    if list(edges) != sorted(edges):
        raise ValueError("bounds must be ascending")
    if edges == LATENCY_BOUNDS and all(e is None or e % HOUR == 0 for e in (since, until)):
        return (*_counted_step_latency(dialect, since, until, agent), edges)
    where, params = _run_range(since, until, agent, "r.")
    steps = dialect.run_steps if where else "steps s"
    where = (where + " AND" if where else " WHERE") + (
        " s.kind IN ('tool', 'llm') AND s.end_time IS NOT NULL"
    )
    counts = "".join(
        ", SUM(CASE WHEN s.end_time - s.start_time <= ? THEN 1 ELSE 0 END)" for _ in edges
    )
    sql = (
        "SELECT s.kind, s.name, COUNT(*), SUM(CASE WHEN s.status = 'failed' THEN 1 ELSE 0 "
        "END), SUM(s.tries - 1), SUM(s.end_time - s.start_time)"
        f"{counts} FROM {steps}{where} GROUP BY s.kind, s.name ORDER BY s.kind, s.name"
    )
    return dialect.sql(sql), [*edges, *params], edges


def step_latency_rows(rows: Sequence[Sequence[Any]], edges: tuple[float, ...]) -> list[StepLatency]:
    """Records of :func:`step_latency` rows."""
    return [
        StepLatency(
            r[0],
            r[1],
            int(r[2]),
            int(r[3]),
            int(r[4]),
            float(r[5]),
            edges,
            tuple(int(c) for c in r[6:]),
        )
        for r in rows
    ]


BACKLOG: Final = (
    "SELECT 'dlq', agent, COALESCE(error_class, ''), COUNT(*) FROM dlq "
    "WHERE status = 'pending' GROUP BY agent, error_class "
    "UNION ALL "
    "SELECT 'handoff', r.agent, h.kind, COUNT(*) FROM handoffs h "
    "JOIN runs r ON r.run_id = h.run_id WHERE h.status = 'open' GROUP BY r.agent, h.kind"
)
"""Pending DLQ entries and open hand-offs, counted by agent (no parameters)."""


def backlog_rows(rows: Sequence[Sequence[Any]]) -> list[QueueCount]:
    """Records of :data:`BACKLOG` rows, in a stable order."""
    ordered = sorted((str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows)
    return [QueueCount(*row) for row in ordered]


CLAIMABLE: Final = (
    "(status = 'pending' OR (status = 'redriving' AND redrive_run_id IS NULL AND claimed_at < ?))"
)
"""An entry a redriver may take: pending, or claimed by one that died before its redrive began
(a claim is a lease: it expires). One parameter: the claims older than this time expired."""


def dlq_where(query: DeadLetterQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (with a leading space, or empty) selecting DLQ entries."""
    where: list[str] = []
    params: list[Any] = []
    if query.status == "open":
        where.append("status IN ('pending', 'redriving')")
    elif query.status == "claimable":
        where.append(CLAIMABLE)
        params.append(0.0 if query.stale_before is None else query.stale_before)
    elif query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    for clause, value in (
        ("run_id = ?", query.run_id),
        ("agent = ?", query.agent),
        ("error_class = ?", None if query.error_class is None else str(query.error_class)),
        ("failed_at >= ?", query.since),
        ("failed_at < ?", query.until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if query.excluded:
        where.append(f"agent NOT IN ({', '.join('?' * len(query.excluded))})")
        params.extend(query.excluded)
    if query.excluded_runs:
        where.append(f"run_id NOT IN ({', '.join('?' * len(query.excluded_runs))})")
        params.extend(query.excluded_runs)
    if query.entry_ids:
        where.append(f"entry_id IN ({', '.join('?' * len(query.entry_ids))})")
        params.extend(query.entry_ids)
    return dialect.sql(" WHERE " + " AND ".join(where)) if where else "", params


ALERT_COLUMNS: Final = (
    "alert_id, kind, agent, feature, statistic, threshold, window_desc, message, details, at"
)
SAMPLE_COLUMNS: Final = (
    "agent, run_id, at, decision, output_bytes, tokens, cost_usd, latency, confidence, verified"
)
EMBEDDING_COLUMNS: Final = "agent, run_id, at, model, scale, vector, excerpt"


def list_alerts(
    dialect: Dialect,
    agent: str | None,
    kind: str | None,
    since: float | None,
    limit: int,
    acknowledged: bool | None = None,
) -> tuple[str, list[Any]]:
    """Alerts matching the filters, newest first.

    ``acknowledged``: only those with (or without) an operator's acknowledgement.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("agent = ?", agent), ("kind = ?", kind), ("at >= ?", since)):
        if value is not None:
            clauses.append(column)
            params.append(value)
    if acknowledged is not None:
        exists = "EXISTS (SELECT 1 FROM alert_acks k WHERE k.alert_id = alerts.alert_id)"
        clauses.append(exists if acknowledged else f"NOT {exists}")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {ALERT_COLUMNS} FROM alerts{where} ORDER BY at DESC, alert_id DESC LIMIT ?"
    return dialect.sql(sql), [*params, limit]


def drift_window(
    dialect: Dialect,
    table: str,
    agent: str,
    model: str | None,
    newest: bool,
    limit: int,
    since: float | None,
    until: float | None,
) -> tuple[str, list[Any]]:
    """The first (or, with ``newest``, the last) ``limit`` rows of ``agent`` in a drift table.

    ``table`` is ``drift_samples`` or ``drift_embeddings`` (whose rows ``model`` narrows); the
    rows in ``[since, until)`` come in finishing order, newest first with ``newest`` (reverse
    them for time order).
    """
    columns = SAMPLE_COLUMNS if table == "drift_samples" else EMBEDDING_COLUMNS
    clauses = ["agent = ?"]
    params: list[Any] = [agent]
    for clause, value in (("model = ?", model), ("at >= ?", since), ("at < ?", until)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    order = "DESC" if newest else "ASC"
    sql = (
        f"SELECT {columns} FROM {table} WHERE {' AND '.join(clauses)} "
        f"ORDER BY at {order}, run_id {order} LIMIT ?"
    )
    return dialect.sql(sql), [*params, limit]


def insert_embeddings(dialect: Dialect) -> str:
    """The statement recording one embedding (a run already embedded is kept as it was)."""
    marks = ", ".join("?" * len(EMBEDDING_COLUMNS.split(", ")))
    return dialect.sql(
        f"INSERT INTO drift_embeddings ({EMBEDDING_COLUMNS}) VALUES ({marks}) "
        "ON CONFLICT DO NOTHING"
    )


def embedding_row(embedding: DriftEmbedding) -> tuple[Any, ...]:
    """The :data:`EMBEDDING_COLUMNS` parameters of an embedding."""
    return (
        embedding.agent,
        embedding.run_id,
        embedding.at,
        embedding.model,
        embedding.scale,
        embedding.vector,
        embedding.excerpt,
    )


def like_escape(text: str) -> str:
    """Escape ``LIKE``'s wildcards (and the escape character) in ``text``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _run_range(
    since: float | None, until: float | None, agent: str | None, prefix: str
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (with a leading space, or empty) selecting runs by time and agent."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        (f"{prefix}start_time >= ?", since),
        (f"{prefix}start_time < ?", until),
        (f"{prefix}agent = ?", agent),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), params


# -- rows into records ------------------------------------------------------------------------

ATTEMPT_COLUMNS: Final = (
    "run_id, attempt, start_time, end_time, status, error_class, failure_cause, error_type, "
    "error_message, retry_delay, owner, epoch, base_seq, completed_at_start, fenced_at, decision"
)

ATTEMPTS: Final = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ? ORDER BY attempt"
"""A run's attempts, in order (one parameter: the run id)."""

VERDICT_COLUMNS: Final = (
    "run_id, attempt, ordinal, kind, name, passed, error, score, message, duration, created_at"
)

VERDICTS: Final = (
    f"SELECT {VERDICT_COLUMNS} FROM verifications WHERE run_id = ? ORDER BY attempt, ordinal"
)
"""A run's verdicts, in order (one parameter: the run id)."""

HANDOFF_COLUMNS: Final = (
    "handoff_id, run_id, kind, reason, subject, status, created_at, decision, decided_by, "
    "decided_at, note"
)
"""The columns :func:`handoff_record` reads, in its order."""


def list_handoffs(
    dialect: Dialect,
    run_id: str | None,
    status: str | None,
    limit: int,
    oldest_first: bool = False,
    after: tuple[float, str] | None = None,
) -> tuple[str, list[Any]]:
    """Hand-offs of a run and/or in a status, newest first (or oldest first, keyset-paged)."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (("run_id = ?", run_id), ("status = ?", status)):
        if value is not None:
            where.append(clause)
            params.append(value)
    if oldest_first and after is not None:
        where.append("(created_at, handoff_id) > (?, ?)")
        params += [after[0], after[1]]
    sql = f"SELECT {HANDOFF_COLUMNS} FROM handoffs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = " ORDER BY created_at, handoff_id" if oldest_first else " ORDER BY created_at DESC"
    return dialect.sql(sql + order + " LIMIT ?"), [*params, limit]


STEP_COLUMNS: Final = (
    "run_id, seq, attempt, kind, name, mutating, idempotency_key, request_hash, request, "
    "response, status, start_time, end_time, error_type, error_message, tries"
)


DLQ_COLUMNS: Final = (
    "entry_id, run_id, agent, error_class, failure_cause, error_message, failed_at, attempts, "
    "status, claimed_by, redriven_at, redrive_run_id, result, previous_entry_id, claimed_at"
)


BREAKER_COLUMNS: Final = (
    "name, kind, state, failures, opened_at, reason, manual, probe_owner, probe_at"
)
