"""A PostgreSQL schema of its own for every test: the server is shared, so nothing collides.

The store creates the schema when it first opens the URL; :func:`fresh_postgres_ledger` drops
it (with everything in it) when the test ends.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


def with_schema(base_url: str, schema: str) -> str:
    """Return ``base_url`` with Seawall's ``schema`` option added to its query string."""
    return f"{base_url}{'&' if '?' in base_url else '?'}schema={schema}"


def new_schema_name(tag: str = "t") -> str:
    """A unique schema name (``sw_<tag>_<hex>``)."""
    return f"sw_{tag}_{uuid.uuid4().hex[:12]}"


def drop_schema(base_url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it (no error when it does not exist)."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextlib.contextmanager
def fresh_postgres_ledger(base_url: str, tag: str = "t") -> Iterator[str]:
    """Yield a ledger URL on a new, unique schema; drop the schema afterwards."""
    schema = new_schema_name(tag)
    try:
        yield with_schema(base_url, schema)
    finally:
        drop_schema(base_url, schema)


def empty_schema(base_url: str, schema: str) -> None:
    """Delete every row of the ledger in ``schema`` except its migration record."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> %s",
                (schema, "seawall_meta"),
            )
        ]
        # The counts tables last: deleting runs updates them (their triggers).
        tables.sort(key=lambda table: table.endswith("_counts"))
        if tables:  # DELETE is cheaper than TRUNCATE on tables this small
            connection.execute("; ".join(f"DELETE FROM {schema}.{t}" for t in tables).encode())


def waits_on_a_lock(base_url: str, application_name: str) -> bool:
    """Whether a session named ``application_name`` is waiting for a lock on the server now."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = %s",
            (application_name,),
        ).fetchone()
        return found is not None
