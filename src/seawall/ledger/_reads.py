"""The read methods both ledgers implement the same way.

A read is one query and a conversion of its rows; only how a query runs differs between SQLite
(the store's lock and connection) and PostgreSQL (the pool, with retries across a lost
connection). Each store supplies ``_fetchall`` and its dialect
(:class:`~seawall.ledger._sqlbase.SQLBase`); the methods here are written once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from seawall.errors import UsageError
from seawall.ledger import _aggregates as aggregates
from seawall.ledger import _queries as queries
from seawall.ledger._records import ArtifactRecord, BreakerEvent, CompensationRecord, StepResolution
from seawall.ledger._rows import (
    alert_record,
    attempt_record,
    breaker_state,
    dead_letter_record,
    drift_embedding,
    drift_sample,
    handoff_record,
    run_record,
    step_record,
    verdict_record,
)
from seawall.ledger._sqlbase import SQLBase

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger._protocol import IdKind
    from seawall.ledger._records import (
        AttemptRecord,
        DeadLetter,
        DeadLetterQuery,
        HandOffRecord,
        RunQuery,
        RunRecord,
        StepRecord,
        VerdictRecord,
    )
    from seawall.ledger._stats import (
        ErrorCount,
        ModelUsage,
        QueueCount,
        RunStats,
        StepLatency,
        UnpricedCount,
    )
    from seawall.ledger._watch_records import AlertRecord, DriftEmbedding, DriftSample
    from seawall.policies.breaker import BreakerState


class SharedReads(SQLBase):
    """Reads of runs, journals, verdicts, queues, breakers and alerts, for either ledger."""

    # -- runs -------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return one run, or ``None``."""
        rows = self._rows(
            f"SELECT {queries.RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,), "read a run"
        )
        return run_record(rows[0]) if rows else None

    def count_unclaimed(self, route: str | None, agents: Sequence[str], sent_before: float) -> int:
        """Count the runs of ``agents`` sent to ``route`` that no worker claimed yet."""
        sql, params = queries.count_unclaimed(self.dialect, route, agents, sent_before)
        return int(self._fetchall(sql, params, "count unclaimed runs")[0][0])

    def oldest_unclaimed(
        self, route: str | None, agents: Sequence[str], again_before: float, limit: int
    ) -> list[RunRecord]:
        """Return the ``limit`` unclaimed runs of ``agents`` on ``route`` sent first."""
        sql, params = queries.oldest_unclaimed(self.dialect, route, agents, again_before, limit)
        rows = self._fetchall(sql, params, "list unclaimed runs")
        return [run_record(row) for row in rows]

    def lapsed_runs(
        self, route: str | None, agents: Sequence[str], now: float, limit: int
    ) -> list[RunRecord]:
        """Return the runs of ``agents`` on ``route`` whose lease lapsed, oldest lapse first."""
        sql, params = queries.lapsed_runs(self.dialect, route, agents, now, limit)
        rows = self._fetchall(sql, params, "list lapsed runs")
        return [run_record(row) for row in rows]

    def ids_with_prefix(self, kind: IdKind, prefix: str, limit: int = 10) -> list[str]:
        """Return the ids of ``kind`` (``run`` or ``handoff``) starting with ``prefix``, sorted.

        The match is exact and case-sensitive (``%``, ``_``, ``*``... are plain characters).
        It reads the id's index: on PostgreSQL, whose ``LIKE`` uses an index under the ``C``
        collation only, by a range of ids, once the database showed that it sorts ids as their
        bytes (else it scans). At most ``limit`` ids are returned.
        """
        if kind not in queries.ID_KINDS:
            raise UsageError(f"no id kind {kind!r}; use one of {sorted(queries.ID_KINDS)}")
        ranged = self.dialect.ranges_prefixes and self._ids_sort_as_bytes()
        sql, params = queries.ids_with_prefix(self.dialect, kind, prefix, limit, ranged=ranged)
        return [str(row[0]) for row in self._fetchall(sql, params, f"find {kind} ids")]

    _ids_sorted: bool | None = None

    def _ids_sort_as_bytes(self) -> bool:
        """Whether the database sorts ids as their bytes (asked once per store)."""
        if self._ids_sorted is None:
            probe = queries.ID_ORDER_PROBE.format(collation="")
            self._ids_sorted = bool(self._fetchall(probe, (), "ask how ids are sorted")[0][0])
        return self._ids_sorted

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Return runs matching ``query``, newest first."""
        indexed = False
        if query.search and self.dialect.text_index and len(query.search) >= queries.TRIGRAM:
            probe, probe_params = queries.text_matches(query.search)
            found = self._fetchall(probe, probe_params, "count text matches")
            indexed = int(found[0][0]) < queries.FEW_MATCHES
        sql, params = queries.list_runs(query, self.dialect, indexed=indexed)
        return [run_record(row) for row in self._fetchall(sql, params, "list runs")]

    def run_stats(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        bucket_seconds: float | None = None,
        agent: str | None = None,
    ) -> list[RunStats]:
        """Count runs by time bucket, agent, status and error class (one ``GROUP BY``)."""
        sql, params = queries.run_stats(self.dialect, since, until, bucket_seconds, agent)
        return queries.run_stats_rows(self._fetchall(sql, params, "count runs"))

    def step_latency(
        self,
        *,
        bounds: Sequence[float],
        since: float | None = None,
        until: float | None = None,
        agent: str | None = None,
    ) -> list[StepLatency]:
        """Histogram of finished tool and model call durations, per kind and name."""
        sql, params, edges = queries.step_latency(self.dialect, bounds, since, until, agent)
        return queries.step_latency_rows(self._fetchall(sql, params, "measure step latency"), edges)

    def agent_names(self, *, limit: int = 1000) -> list[str]:
        """Return the names of the agents (and graphs) that have runs, in order."""
        return [row[0] for row in self._rows(aggregates.AGENT_NAMES, (limit,), "list agent names")]

    def unpriced_usage(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        agent: str | None = None,
    ) -> list[UnpricedCount]:
        """Runs submitted in ``[since, until)`` with model calls of unknown price, by agent."""
        sql, params = aggregates.unpriced(self.dialect, since, until)
        return aggregates.unpriced_rows(self._fetchall(sql, params, "count unpriced runs"), agent)

    def usage_by_model(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        agent: str | None = None,
    ) -> list[ModelUsage]:
        """Model calls recorded by the runs submitted in ``[since, until)``, by model."""
        sql, params = aggregates.usage_by_model(self.dialect, since, until, agent)
        return aggregates.model_usage_rows(self._fetchall(sql, params, "sum usage by model"))

    def error_counts(
        self,
        *,
        since: float,
        bucket_seconds: float,
        until: float | None = None,
        agent: str | None = None,
        limit: int = 5000,
    ) -> list[ErrorCount]:
        """Count runs with an error message by time bucket, agent, class, type and message.

        Runs submitted in ``[since, until)``; the largest counts first, at most ``limit`` rows.
        """
        sql, params = aggregates.error_counts(
            self.dialect, since, until, bucket_seconds, agent, limit
        )
        return aggregates.error_count_rows(self._fetchall(sql, params, "count errors"))

    def backlog(self) -> list[QueueCount]:
        """Count pending DLQ entries and open hand-offs by agent."""
        return queries.backlog_rows(self._rows(queries.BACKLOG, (), "count the backlog"))

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        """Return a run's attempts in order."""
        rows = self._rows(queries.ATTEMPTS, (run_id,), "list attempts")
        return [attempt_record(r) for r in rows]

    def load_steps(self, run_id: str) -> list[StepRecord]:
        """Return a run's journal in sequence order."""
        rows = self._rows(
            f"SELECT {queries.STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY seq",
            (run_id,),
            "read a journal",
        )
        return [step_record(r) for r in rows]

    def list_verdicts(self, run_id: str) -> list[VerdictRecord]:
        """Return a run's verdicts in order."""
        rows = self._rows(queries.VERDICTS, (run_id,), "list verdicts")
        return [verdict_record(r) for r in rows]

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifacts by name."""
        rows = self._rows(
            "SELECT run_id, name, size, sha256, committed_at FROM artifacts "
            "WHERE run_id = ? ORDER BY name",
            (run_id,),
            "list artifacts",
        )
        return [ArtifactRecord(*row) for row in rows]

    def list_compensations(self, run_id: str) -> list[CompensationRecord]:
        """Return a run's compensations, in the order they ran."""
        rows = self._rows(
            "SELECT run_id, seq, tool, idempotency_key, status, start_time, end_time, tries, "
            "error_type, error_message FROM compensations WHERE run_id = ? ORDER BY seq DESC",
            (run_id,),
            "list compensations",
        )
        return [CompensationRecord(*row) for row in rows]

    # -- hand-offs, dead letters, breakers, alerts -------------------------------------------

    def get_handoff(self, handoff_id: str) -> HandOffRecord | None:
        """Return one hand-off, or ``None``."""
        rows = self._rows(
            f"SELECT {queries.HANDOFF_COLUMNS} FROM handoffs WHERE handoff_id = ?",
            (handoff_id,),
            "read a hand-off",
        )
        return handoff_record(rows[0]) if rows else None

    def list_handoffs(
        self,
        *,
        run_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        oldest_first: bool = False,
        after: tuple[float, str] | None = None,
    ) -> list[HandOffRecord]:
        """Return hand-offs, newest first (or oldest first, after a ``(created_at, id)``)."""
        sql, params = queries.list_handoffs(
            self.dialect, run_id, status, limit, oldest_first, after
        )
        return [handoff_record(r) for r in self._fetchall(sql, params, "list hand-offs")]

    def list_dead_letters(self, query: DeadLetterQuery) -> list[DeadLetter]:
        """Return DLQ entries matching ``query``, oldest first."""
        where, params = queries.dlq_where(query, self.dialect)
        rows = self._fetchall(
            self.dialect.sql(
                f"SELECT {queries.DLQ_COLUMNS} FROM dlq{where} ORDER BY failed_at, entry_id LIMIT ?"
            ),
            [*params, query.limit],
            "list dead letters",
        )
        return [dead_letter_record(row) for row in rows]

    def list_resolutions(self, run_id: str) -> list[StepResolution]:
        """Return the operators' resolutions of a run's in-doubt steps, by step."""
        rows = self._fetchall(
            self.dialect.sql(
                "SELECT run_id, seq, decision, result, decided_by, decided_at, note "
                "FROM step_resolutions WHERE run_id = ? ORDER BY seq"
            ),
            [run_id],
            "list step resolutions",
        )
        return [
            StepResolution(
                run_id=r[0],
                seq=r[1],
                decision=r[2],
                result=None if r[3] is None else json.loads(r[3]),
                decided_by=r[4],
                decided_at=r[5],
                note=r[6],
            )
            for r in rows
        ]

    def list_breakers(self) -> list[BreakerState]:
        """Return every breaker the ledger knows, by name."""
        rows = self._rows(
            f"SELECT {queries.BREAKER_COLUMNS} FROM breakers ORDER BY name", (), "list breakers"
        )
        return [breaker_state(row) for row in rows]

    def breaker_events(self, name: str, limit: int = 100) -> list[BreakerEvent]:
        """Return a breaker's transitions, newest first."""
        rows = self._rows(
            "SELECT name, at, from_state, to_state, reason FROM breaker_events "
            "WHERE name = ? ORDER BY at DESC LIMIT ?",
            (name, limit),
            "list breaker events",
        )
        return [BreakerEvent(*row) for row in rows]

    def list_alerts(
        self,
        *,
        agent: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
        acknowledged: bool | None = None,
    ) -> list[AlertRecord]:
        """Return alerts matching the filters, newest first."""
        sql, params = queries.list_alerts(self.dialect, agent, kind, since, limit, acknowledged)
        return [alert_record(row) for row in self._fetchall(sql, params, "list alerts")]

    def list_drift_samples(
        self,
        agent: str,
        *,
        newest: bool,
        limit: int,
        since: float | None = None,
        until: float | None = None,
    ) -> list[DriftSample]:
        """Return the first (or, with ``newest``, the last) ``limit`` samples, oldest first."""
        sql, params = queries.drift_window(
            self.dialect, "drift_samples", agent, None, newest, limit, since, until
        )
        rows = self._in_time_order(sql, params, newest, f"list drift samples of {agent}")
        return [drift_sample(row) for row in rows]

    def list_drift_embeddings(
        self,
        agent: str,
        *,
        model: str,
        newest: bool,
        limit: int,
        since: float | None = None,
        until: float | None = None,
    ) -> list[DriftEmbedding]:
        """Return the first (or, with ``newest``, the last) ``limit`` embeddings, oldest first."""
        sql, params = queries.drift_window(
            self.dialect, "drift_embeddings", agent, model, newest, limit, since, until
        )
        rows = self._in_time_order(sql, params, newest, f"list drift embeddings of {agent}")
        return [drift_embedding(row) for row in rows]

    def _in_time_order(
        self, sql: str, params: Sequence[Any], newest: bool, what: str
    ) -> list[tuple[Any, ...]]:
        """Rows of a drift window query, oldest first (a ``newest`` window reads newest first)."""
        rows = self._fetchall(sql, params, what)
        if newest:
            rows.reverse()
        return rows
