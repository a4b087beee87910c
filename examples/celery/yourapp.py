"""A Seawall app whose runs execute on Celery workers (see README.md next to this file).

Worker:     celery -A yourapp:celery_app worker -Q agents --concurrency 4
Submitter:  python yourapp.py 20
"""

# ruff: noqa: T201, INP001 - an example script: it prints, and is not part of a package
from __future__ import annotations

import os
import sys

from celery import Celery

from seawall import Context, Seawall
from seawall.integrations.celery import CeleryExecutor

BROKER = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
LEDGER = os.environ.get("SEAWALL_LEDGER", "sqlite:///.seawall/celery-example.db")

celery_app = Celery("yourapp", broker=BROKER)
celery_app.conf.broker_transport_options = {"visibility_timeout": 600}
app = Seawall(LEDGER, executor=CeleryExecutor(celery_app, queue="agents"))


@app.tool(mutating=True, idempotent=True)
def send_invoice(customer: str, amount: int, idempotency_key: str) -> str:
    """Send an invoice (a side effect).

    A completed call is journaled and never repeated; a call in flight when a worker died is
    re-issued with the same key, which a real invoicing API uses to drop the duplicate.
    """
    print(f"invoice {idempotency_key}: {customer} owes {amount}")
    return f"invoice-{idempotency_key}"


@app.agent
def bill(ctx: Context, customer: str, amount: int) -> str:
    """Bill one customer."""
    invoice: str = ctx.call(send_invoice, customer, amount)
    return invoice


def main(count: int) -> None:
    """Submit ``count`` runs and wait for each result (read from the ledger)."""
    handles = [app.submit(bill, customer=f"c{i}", amount=10 * i) for i in range(count)]
    for handle in handles:
        result = handle.result(timeout=120)
        print(handle.run_id, result.status.value, result.output)
    app.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
