"""A PostgreSQL ledger URL: libpq's URL plus a few options of Seawall's own.

Seawall's options are taken out of the query string before psycopg sees it::

    postgresql://user:password@host:5432/dbname?schema=seawall&pool_max_size=8
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from seawall.errors import LedgerURLError

DEFAULT_SCHEMA: Final = "seawall"
_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """A parsed PostgreSQL ledger URL.

    Attributes:
        url: The URL as given.
        display: The URL with its password hidden, for messages and logs.
        conninfo: What psycopg connects with (the URL without Seawall's own options).
        schema: The schema holding the ledger's tables (created when missing).
        pool_min_size: Connections the pool keeps open.
        pool_max_size: Connections the pool opens at most.
        pool_timeout: Seconds to wait for a free connection of the pool.
        retry_timeout: Seconds to keep retrying an operation while the server is unreachable.
        connect_timeout: Seconds one connection attempt may take.
    """

    url: str
    display: str
    conninfo: str
    schema: str
    pool_min_size: int
    pool_max_size: int
    pool_timeout: float
    retry_timeout: float
    connect_timeout: float


def parse_url(url: str, **overrides: Any) -> PostgresTarget:
    """Parse a ``postgresql://`` or ``postgres://`` ledger URL.

    Args:
        url: The URL; Seawall's options (``schema``, ``pool_min_size``, ``pool_max_size``,
            ``pool_timeout``, ``retry_timeout``) may sit in its query string.
        **overrides: The same options as keyword arguments; they win over the URL's.

    Returns:
        The parsed target.

    Raises:
        LedgerURLError: An option has a bad value.
    """
    parts = urlsplit(url)
    display = redact(url)
    given = dict(parse_qsl(parts.query, keep_blank_values=True))
    options: dict[str, Any] = {
        key: given.pop(key)
        for key in ("schema", "pool_min_size", "pool_max_size", "pool_timeout", "retry_timeout")
        if key in given
    }
    options.update({k: v for k, v in overrides.items() if v is not None})
    connect_timeout = _number(given.setdefault("connect_timeout", "5"), "connect_timeout", display)
    schema = str(options.get("schema", DEFAULT_SCHEMA))
    if not _SCHEMA_NAME.match(schema):
        raise LedgerURLError(
            f"ledger URL {display}: schema={schema!r} is not a plain lower-case name; use "
            "letters, digits and underscores (e.g. ?schema=seawall)",
            url=display,
        )
    low = int(_number(options.get("pool_min_size", 1), "pool_min_size", display))
    high = int(_number(options.get("pool_max_size", 8), "pool_max_size", display))
    if low < 0 or high < 1 or low > high:
        raise LedgerURLError(
            f"ledger URL {display}: pool sizes min={low} max={high} are not usable; use "
            "0 <= pool_min_size <= pool_max_size and pool_max_size >= 1",
            url=display,
        )
    given.setdefault("application_name", "seawall")
    # The ledger's tables are found through the search path (libpq's options, kept if given).
    given["options"] = f"{given.get('options', '')} -c search_path={schema}".strip()
    conninfo = urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(given, quote_via=quote), "")
    )
    return PostgresTarget(
        url=url,
        display=display,
        conninfo=conninfo,
        schema=schema,
        pool_min_size=low,
        pool_max_size=high,
        pool_timeout=_number(options.get("pool_timeout", 30), "pool_timeout", display),
        retry_timeout=_number(options.get("retry_timeout", 30), "retry_timeout", display),
        connect_timeout=connect_timeout,
    )


def _number(value: Any, name: str, display: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0:
        raise LedgerURLError(
            f"ledger URL {display}: {name}={value!r} must be a non-negative number",
            url=display,
        )
    return number


def redact(url: str) -> str:
    """Return ``url`` with its password (in the user part or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:***@{host}"
    query = urlencode(
        [
            (k, "***" if k == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        quote_via=quote,
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
