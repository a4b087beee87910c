"""Shared fixtures: a Seawall app on a fresh temporary ledger, with backoff waits turned off.

A test module that sets ``LEDGERS = ("sqlite", "postgres")`` runs each of its tests that uses
``ledger_url`` (or ``app``) once per ledger. The PostgreSQL ledger lives in a schema of this test
session's own (migrated once, emptied before each test, dropped at the end), so tests never see
each other's rows nor another session's on the shared server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import Seawall
from seawall.ledger import Store, open_store
from seawall.testing import no_waits
from tests.postgres_schemas import empty_schema, fresh_postgres_ledger
from tests.servers import (
    throwaway_postgres,
    throwaway_postgres_ledger,
    throwaway_postgres_module,
    throwaway_redis,
    throwaway_redis_module,
)
from tests.services import (
    POSTGRES_URL,
    chromium_path,
    postgres_url,
    rabbitmq_url,
    redis_url,
    require,
)

__all__ = [
    "chromium_path",
    "postgres_url",
    "rabbitmq_url",
    "redis_url",
    "throwaway_postgres",
    "throwaway_postgres_ledger",
    "throwaway_postgres_module",
    "throwaway_redis",
    "throwaway_redis_module",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of modules that list ``LEDGERS`` once per ledger."""
    backends = getattr(metafunc.module, "LEDGERS", None)
    only = metafunc.definition.get_closest_marker("ledgers")
    if backends and only is not None:
        backends = tuple(b for b in backends if b in only.args)
    if backends and "ledger_url" in metafunc.fixturenames:
        metafunc.parametrize("ledger_url", backends, indirect=True)


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite ledger URL in the test's temporary folder, or the emptied PostgreSQL ledger."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base, schema, url = request.getfixturevalue("postgres_session_ledger")
    empty_schema(base, schema)
    yield url


@pytest.fixture(scope="session")
def postgres_session_ledger() -> Iterator[tuple[str, str, str]]:
    """``(server URL, schema, ledger URL)`` of this session's PostgreSQL ledger, migrated once."""
    require("postgresql")
    with fresh_postgres_ledger(POSTGRES_URL, "session") as url:
        open_store(url).close()
        yield POSTGRES_URL, url.rsplit("schema=", 1)[1], url


@pytest.fixture
def store(ledger_url: str) -> Iterator[Store]:
    """An open store on a fresh ledger (a module may define its own)."""
    opened = open_store(ledger_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def app(ledger_url: str) -> Iterator[Seawall]:
    """A Seawall app on a fresh ledger; retries do not sleep."""
    with no_waits():
        instance = Seawall(ledger_url, lease=2.0)
        try:
            yield instance
        finally:
            instance.close()
