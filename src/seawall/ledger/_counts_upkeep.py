"""Upkeep of the dashboard's counters (``run_counts``, ``step_counts``): folding ended hours.

Triggers keep the counters in rows of (hour, key, slot). On PostgreSQL each writing connection
adds its signed deltas to a slot of its own (up to 64), so that concurrent runs do not wait for
each other's row locks; and the keys every run passes through (``pending``, ``running``) net to
zero once its runs moved on. So the rows grow with the ledger's age and its concurrency, not with
what they say, and ``/metrics`` or a 30-day overview sums them all (at 30 days on PostgreSQL:
32,570 rows, 15,874 of them netting to zero).

:meth:`CountsUpkeep.compact_counts` folds the rows of hours that have ended: each key's slots
into one row, and the keys netting to zero dropped. Every sum a reader takes stays the same,
whatever runs alongside:

- SQLite: writers take turns, and every row is in slot 0, so only the rows netting to zero go.
  A trigger takes one off a key only while a run holds that key, when its row is not zero.
- PostgreSQL: the rows no transaction holds are deleted (``FOR UPDATE SKIP LOCKED``,
  ``RETURNING`` their figures) and their sums added to :data:`FOLDED_SLOT`, a slot no trigger
  writes, in one transaction. A trigger adding to a row being deleted waits for the fold, then
  inserts a fresh row; a row a writer holds, or inserted after the fold began, stays in its
  slot for the next fold. The fold never waits for a writer: a fold that did, holding rows the
  writer's next upsert needs, deadlocked with it (the test found it). One fold runs at a time
  (a transaction-scoped advisory lock, tried: a second fold folds nothing), so a fold never
  waits for another either.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from seawall.ledger._queries import HOUR, LATENCY_COLUMNS
from seawall.ledger._sqlbase import SQLBase

if TYPE_CHECKING:
    from collections.abc import Sequence

COUNTERS: Final = (
    (
        "run_counts",
        ("hour", "agent", "status", "error_class"),
        ("runs", "retries", "input_tokens", "output_tokens", "cost_usd"),
    ),
    (
        "step_counts",
        ("hour", "agent", "kind", "name"),
        ("calls", "errors", "retries", "seconds", *LATENCY_COLUMNS),
    ),
)
"""Each counters table: its key (without the slot) and its figures."""
_FOLD_LOCK: Final = 0x5EA3  # the advisory lock one PostgreSQL fold at a time holds
FOLDED_SLOT: Final = -1
"""PostgreSQL: the slot of the folded rows (the triggers write 0-63: a connection's)."""


def all_zero(figures: Sequence[str]) -> str:
    """The condition of a counters row whose ``figures`` are all zero (a row with nothing)."""
    return " AND ".join(f"{figure} = 0" for figure in figures)


class CountsUpkeep(SQLBase):
    """The folding of the counters of ended hours (see the module)."""

    def compact_counts(self, before: float, since: float = 0.0) -> int:
        """Fold the counters of the hours that ended by ``before`` and began at ``since`` or later.

        Each key's rows become one (PostgreSQL: in :data:`FOLDED_SLOT`); a key whose figures
        sum to zero loses its rows. The sums every read takes are unchanged. Safe to run in
        several processes at once, and while runs are written: it never waits for a run's
        write, so it cannot deadlock with one.

        Returns:
            How many rows were taken to fold.
        """
        hours = (math.floor(since / HOUR), math.floor(before / HOUR))

        def fold(conn: Any, _doubt: bool) -> int:
            if not self.dialect.serialized:
                lock = self._q("SELECT pg_try_advisory_xact_lock(?)")
                if not conn.execute(lock, (_FOLD_LOCK,)).fetchone()[0]:
                    return 0  # another process is folding now
            return sum(self._fold(conn, *counters, hours) for counters in COUNTERS)

        # Safe to redo in doubt: a fold already committed left nothing more to fold but what
        # triggers added since, and folding that is what a second fold would do anyway.
        return self._run(fold, "fold the counters of ended hours")

    def _fold(
        self,
        conn: Any,
        table: str,
        key: Sequence[str],
        figures: Sequence[str],
        hours: tuple[int, int],
    ) -> int:
        zero = all_zero(figures)
        if self.dialect.serialized:
            # SQLite: every row is in slot 0, and a trigger takes one off a key only in its row
            # there, while a run holds that key (so the row is not zero): only rows netting to
            # zero go, and nothing is added anywhere.
            sql = f"DELETE FROM {table} WHERE hour >= ? AND hour < ? AND {zero}"
            return int(conn.execute(self._q(sql), hours).rowcount)
        # PostgreSQL: take the rows no writer holds now (a writer's row is folded next time;
        # waiting for it while holding others could deadlock with its next upsert), and add
        # their sums in a slot no trigger writes.
        pick = (
            f"SELECT ctid FROM {table} WHERE hour >= ? AND hour < ? "
            f"AND (slot <> {FOLDED_SLOT} OR ({zero})) FOR UPDATE SKIP LOCKED"
        )
        columns = ", ".join((*key, *figures))
        sql = f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({pick})) RETURNING {columns}"
        rows = conn.execute(self._q(sql), hours).fetchall()
        sums: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            held = sums.setdefault(tuple(row[: len(key)]), [0] * len(figures))
            for i, value in enumerate(row[len(key) :]):
                held[i] += value
        kept = [(*k, FOLDED_SLOT, *v) for k, v in sums.items() if any(v)]
        if kept:
            added = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in figures)
            marks = ", ".join("?" * (len(key) + 1 + len(figures)))
            upsert = (
                f"INSERT INTO {table} ({', '.join((*key, 'slot', *figures))}) VALUES ({marks}) "
                f"ON CONFLICT ({', '.join((*key, 'slot'))}) DO UPDATE SET {added}"
            )
            conn.cursor().executemany(self._q(upsert), kept)
            # A key's folded row was not taken when its own figures were not zero, and what
            # was just added to it may have cancelled them.
            match = " AND ".join(f"{column} = ?" for column in key)
            cancelled = f"DELETE FROM {table} WHERE {match} AND slot = {FOLDED_SLOT} AND {zero}"
            conn.cursor().executemany(self._q(cancelled), [k[: len(key)] for k in kept])
        return len(rows)
