"""The one SQL store: every query of the ledger, written once for SQLite and PostgreSQL.

:class:`SQLStore` gathers the store's parts, each written once over a
:class:`~seawall.ledger._dialect.Dialect`:

- :class:`~seawall.ledger._reads.SharedReads`: runs, journals, queues, breakers, alerts;
- :class:`~seawall.ledger._run_writes.RunWrites`: a run's life (attempts, journal, settling),
  over :class:`~seawall.ledger._lease_writes.LeaseWrites`: leases, claims, takeover sweeps;
- :class:`~seawall.ledger._queue_writes.QueueWrites`: hand-offs, the DLQ, breakers, retry
  budgets, alerts, drift;
- :class:`~seawall.ledger._operators.OperatorRecords`: what operators decide;
- :class:`~seawall.ledger._counts_upkeep.CountsUpkeep`: the folding of the dashboard's counters.

A database's store (:class:`~seawall.ledger.SQLiteStore`, :class:`~seawall.ledger.PostgresStore`)
adds only its dialect and its connection handling: how a write runs
(:meth:`~seawall.ledger._sqlbase.SQLBase._run`) and how a read runs (``_fetchall``), with its
driver's errors translated into ledger errors; opening the schema (locking it while
:meth:`~seawall.ledger._sqlbase.SQLBase._apply_migrations` runs) and the error for a newer one
(``_newer``); ``close``, ``schema_version`` and ``ledger_bytes``. To add a database: write its
:class:`~seawall.ledger._dialect.Dialect`, a migrations folder for the versions whose statements
differ, and such a subclass; then add it to the storage contract tests
(``tests/ledger/test_contract.py``) and the schema parity test.
"""

from __future__ import annotations

from seawall.ledger._counts_upkeep import CountsUpkeep
from seawall.ledger._operators import OperatorRecords
from seawall.ledger._queue_writes import QueueWrites
from seawall.ledger._reads import SharedReads
from seawall.ledger._run_writes import RunWrites


class SQLStore(RunWrites, QueueWrites, SharedReads, OperatorRecords, CountsUpkeep):
    """A :class:`~seawall.ledger.Store` over SQL: every query, for a dialect's database."""
