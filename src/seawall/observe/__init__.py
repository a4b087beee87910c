"""Observability: traces, metrics, cost accounting and drift detection over the ledger."""
