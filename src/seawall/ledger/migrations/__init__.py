"""Forward-only schema migrations, one SQL file per version and database."""

from __future__ import annotations

from importlib import resources

META_TABLE = "seawall_meta"
"""The table recording the migrations applied, one row per version."""


def bundled(database: str) -> list[tuple[int, str, str]]:
    """Return ``(version, file name, sql)`` of every migration bundled for ``database``, in order.

    Args:
        database: ``sqlite`` or ``postgres`` (the folder holding its migrations).
    """
    folder = resources.files(f"seawall.ledger.migrations.{database}")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """Split a migration into its statements (comment lines dropped)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
