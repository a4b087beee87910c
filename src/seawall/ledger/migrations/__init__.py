"""Forward-only schema migrations, one SQL file per version, most of them shared.

A shared migration (``NNNN_name.sql`` in this folder) is written once for both databases: where
their DDL differs it says so with a token the store's dialect renders (``{REAL}``: ``REAL`` or
``DOUBLE PRECISION``; ``{BLOB}``: ``BLOB`` or ``BYTEA``; ``{BIGINT}``: ``INTEGER`` or ``BIGINT``;
``{WITHOUT_ROWID}``: SQLite's clause, nothing on PostgreSQL). A version whose statements really
differ has one file per database instead, in the dialect's folder (``sqlite/``, ``postgres/``),
under the same file name.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seawall.ledger._dialect import Dialect

META_TABLE = "seawall_meta"
"""The table recording the migrations applied, one row per version."""


def bundled(dialect: Dialect) -> list[tuple[int, str, str]]:
    """Return ``(version, file name, sql)`` of every migration for ``dialect``'s database, in order.

    Args:
        dialect: The store's dialect: it names the folder of its own migrations and renders the
            shared ones.
    """
    found: dict[int, tuple[str, str]] = {}
    for entry in resources.files("seawall.ledger.migrations").iterdir():
        if entry.name.endswith(".sql"):
            found[_version(entry.name)] = (entry.name, dialect.render(entry.read_text("utf-8")))
    for entry in resources.files(f"seawall.ledger.migrations.{dialect.migrations}").iterdir():
        if entry.name.endswith(".sql"):
            found[_version(entry.name)] = (entry.name, entry.read_text(encoding="utf-8"))
    return [(version, name, sql) for version, (name, sql) in sorted(found.items())]


def _version(name: str) -> int:
    return int(name.split("_", 1)[0])


def statements(sql: str) -> list[str]:
    """Split a migration into its statements (comment lines dropped)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
