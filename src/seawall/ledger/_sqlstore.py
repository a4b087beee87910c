"""The one SQL store: every query of the ledger, written once for SQLite and PostgreSQL.

:class:`SQLStore` gathers the store's parts, each written once over a
:class:`~seawall.ledger._dialect.Dialect`:

- :class:`~seawall.ledger._reads.SharedReads`: runs, journals, queues, breakers, alerts;
- :class:`~seawall.ledger._run_writes.RunWrites`: a run's life (attempts, journal, settling,
  leases, sweeps);
- :class:`~seawall.ledger._queue_writes.QueueWrites`: hand-offs, the DLQ, breakers, retry
  budgets, alerts, drift;
- :class:`~seawall.ledger._operators.OperatorRecords`: what operators decide.

A database's store (:class:`~seawall.ledger.SQLiteStore`, :class:`~seawall.ledger.PostgresStore`)
adds only its dialect and its connection handling: how a write runs
(:meth:`~seawall.ledger._sqlbase.SQLBase._run`), how a read runs (``_fetchall``), the
schema's migrations, and its driver's errors translated into ledger errors. To add a database:
write its :class:`~seawall.ledger._dialect.Dialect`, its migrations folder, and a subclass
implementing those four; the storage contract tests (``tests/ledger/test_contract.py``) then
run against it.
"""

from __future__ import annotations

from seawall.ledger._operators import OperatorRecords
from seawall.ledger._queue_writes import QueueWrites
from seawall.ledger._reads import SharedReads
from seawall.ledger._run_writes import RunWrites


class SQLStore(RunWrites, QueueWrites, SharedReads, OperatorRecords):
    """A :class:`~seawall.ledger.Store` over SQL: every query, for a dialect's database."""
