"""Reading PostgreSQL plans (``EXPLAIN (FORMAT JSON)``) in the plan tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


def table_scans(plan: dict[str, Any], table: str = "runs") -> Iterator[dict[str, Any]]:
    """Every node of ``plan`` that scans ``table``."""
    if plan.get("Relation Name") == table and "Scan" in plan["Node Type"]:
        yield plan
    for child in plan.get("Plans", []):
        yield from table_scans(child, table)
