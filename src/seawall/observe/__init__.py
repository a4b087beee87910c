"""Observability: what the ledger says about runs, in the formats monitoring tools read."""
