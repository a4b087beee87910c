"""Where a ledger URL points, and whether a ledger is there, found without creating one.

Opening a store creates the ledger when it is missing (the SQLite file, the PostgreSQL schema).
Tools that only read (the CLI's ``runs``, ``show``, ``dlq list``...) look first with
:func:`locate`, so a command run in the wrong folder says where it looked instead of leaving an
empty ledger behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from seawall.errors import LedgerURLError

DEFAULT_LEDGER_URL: Final = "sqlite:///.seawall/ledger.db"

Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class LedgerLocation:
    """Where a ledger URL points.

    Attributes:
        url: The URL as given (the default filled in).
        backend: ``sqlite`` or ``postgresql``.
        where: For SQLite the file's absolute path (``:memory:`` for an in-memory ledger);
            for PostgreSQL the URL with its password hidden and the schema.
        exists: Whether a ledger is there now (a file, or a schema with Seawall's tables).
    """

    url: str
    backend: Backend
    where: str
    exists: bool


def split_url(url: str | None) -> tuple[Backend, str]:
    """Check a ledger URL's form; return its backend and its SQLite path or PostgreSQL URL.

    Raises:
        LedgerURLError: The URL has no scheme, an unknown one, or no file path.
    """
    url = url or DEFAULT_LEDGER_URL
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise LedgerURLError(
            f"ledger URL {url!r} has no scheme; use sqlite:///path/to/ledger.db or "
            "postgresql://user@host/dbname",
            url=url,
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise LedgerURLError(
                f"ledger URL {url!r} has no file path; use sqlite:///relative/ledger.db or "
                "sqlite:////absolute/ledger.db",
                url=url,
            )
        return "sqlite", rest[1:]
    if scheme in ("postgresql", "postgres"):
        return "postgresql", url
    raise LedgerURLError(
        f"ledger URL {url!r} has the unknown scheme {scheme!r}; use sqlite:///path/to/ledger.db "
        "or postgresql://user@host/dbname",
        url=url,
        scheme=scheme,
    )


def describe(url: str | None = None) -> str:
    """Where ``url`` points, for people: a SQLite file's absolute path, else the server URL.

    Nothing is opened or connected. A PostgreSQL URL is shown with its password hidden, and
    its schema when the URL does not name it.

    Raises:
        LedgerURLError: The URL is not a ledger URL.
    """
    backend, target = split_url(url)
    if backend == "sqlite":
        return target if target == ":memory:" else str(Path(target).absolute())
    from seawall.ledger._postgres_url import parse_url  # noqa: PLC0415 - only when used

    parsed = parse_url(target)
    named = "schema=" in parsed.display
    return parsed.display if named else f"{parsed.display} (schema {parsed.schema})"


def locate(url: str | None = None) -> LedgerLocation:
    """Say where ``url`` points and whether a ledger is there, creating nothing.

    Args:
        url: A ledger URL (see :func:`seawall.ledger.open_store`); ``None`` is the default,
            ``sqlite:///.seawall/ledger.db`` (relative to the current folder).

    Returns:
        The location.

    Raises:
        LedgerURLError: The URL is not a ledger URL (or the ``postgres`` extra is missing).
        LedgerUnavailableError: The PostgreSQL server cannot be reached.
    """
    url = url or DEFAULT_LEDGER_URL
    backend, target = split_url(url)
    where = describe(url)
    if backend == "sqlite":
        exists = target == ":memory:" or Path(target).is_file()
        return LedgerLocation(url, backend, where, exists=exists)
    return LedgerLocation(url, backend, where, exists=_has_ledger_tables(target))


def _has_ledger_tables(url: str) -> bool:
    """Whether the URL's schema holds Seawall's tables (one query, no DDL)."""
    from seawall.ledger._postgres_connections import Connections  # noqa: PLC0415 - optional
    from seawall.ledger._postgres_url import parse_url  # noqa: PLC0415

    connections = Connections(parse_url(url))
    try:
        with connections.connect() as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                (connections.target.schema, "seawall_meta"),
            ).fetchone()
    except connections.psycopg.Error as exc:
        raise connections.unreachable(exc) from exc
    finally:
        connections.close()
    return bool(row and row[0])
