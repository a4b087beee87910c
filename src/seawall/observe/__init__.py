"""Observability: what Seawall tells you about runs across time (drift, alerts, ...)."""
