"""What the plan tests share: runs to plan over, the reads they plan, a plan's scans."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg
    import psycopg.errors

    from seawall.ledger._dialect import Dialect


def spending_runs(url: str, count: int) -> None:
    """Record ``count`` runs in the ledger at ``url``, each with a tool step and a usage step."""
    from seawall import Seawall

    with Seawall(url) as app:
        look = app.tool(name="lookup")(lambda i: i)

        @app.agent(name="spender")
        def spender(ctx: Any, i: int) -> int:
            ctx.call(look, i)
            ctx.record_usage(model="m", input_tokens=10, output_tokens=1, cost_usd=0.1)
            return i

        for i in range(count):
            app.run("spender", i=i).raise_for_status()


def range_reads(dialect: Dialect, since: float) -> list[tuple[str, list[Any]]]:
    """The reads over the runs since ``since`` that join their steps: usage, step latency."""
    from seawall.ledger._aggregates import usage_by_model
    from seawall.ledger._queries import step_latency

    sql, params, _ = step_latency(dialect, (0.1, 1.0), since, None, None)
    return [usage_by_model(dialect, since, None, None), (sql, params)]


def table_scans(plan: dict[str, Any], table: str = "runs") -> Iterator[dict[str, Any]]:
    """Every node of ``plan`` that scans ``table``."""
    if plan.get("Relation Name") == table and "Scan" in plan["Node Type"]:
        yield plan
    for child in plan.get("Plans", []):
        yield from table_scans(child, table)


def explain_store(store: Any, plans: list[dict[str, Any]], *, mentioning: str = "") -> None:
    """Collect into ``plans`` the plan of each statement a PostgreSQL store runs from now on.

    The store must have one pooled connection (``pool_min_size=1&pool_max_size=1``):
    ``auto_explain`` is loaded on it and sends each plan back as a notice. Only the plans of
    statements whose text holds ``mentioning`` are kept.
    """

    def explained(notice: psycopg.errors.Diagnostic) -> None:
        text = notice.message_primary or ""
        if '"Plan"' in text and mentioning in text:
            plans.append(json.loads(text[text.index("{") :])["Plan"])

    def explain_here(conn: psycopg.Connection[Any], _doubt: bool) -> None:
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_level = notice",
            "SET auto_explain.log_format = json",
            "SET auto_explain.log_analyze = on",
        ):
            conn.execute(setting)
        conn.add_notice_handler(explained)

    store._db.run(explain_here, "explain", transaction=False)


def copy_rows(
    conn: psycopg.Connection[Any], table: str, run_id: str, count: int, changes: dict[str, str]
) -> None:
    """``count`` copies of the rows of run ``run_id`` in ``table``, each changed by ``changes``.

    ``changes`` maps a column to an SQL expression over the row copied (``t``) and the copy's
    number (``g``, from 1). One ``LATERAL`` call a row: as a ``SELECT (...).*`` PostgreSQL would
    evaluate ``jsonb_populate_record`` once per column (20 times slower for ``runs``).
    """
    changed = ", ".join(f"'{column}', {expression}" for column, expression in changes.items())
    conn.execute(
        f"INSERT INTO {table} SELECT x.* FROM {table} t, generate_series(1, %s) g, LATERAL "
        f"jsonb_populate_record(NULL::{table}, to_jsonb(t) || jsonb_build_object({changed})) x "
        "WHERE t.run_id = %s",
        (count, run_id),
    )
