"""Shared fixtures: a Seawall app on a fresh temporary ledger, with backoff waits turned off.

A test module that sets ``LEDGERS = ("sqlite", "postgres")`` runs each of its tests that uses
``ledger_url`` (or ``app``) once per ledger; the PostgreSQL ledger lives in a schema of its own,
dropped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import Seawall
from seawall.testing import no_waits
from tests.postgres_schemas import fresh_postgres_ledger
from tests.services import chromium_path, postgres_url, rabbitmq_url, redis_url

__all__ = ["chromium_path", "postgres_url", "rabbitmq_url", "redis_url"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of modules that list ``LEDGERS`` once per ledger."""
    backends = getattr(metafunc.module, "LEDGERS", None)
    if backends and "ledger_url" in metafunc.fixturenames:
        metafunc.parametrize("ledger_url", backends, indirect=True)


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite ledger URL in the test's temporary folder (or a fresh PostgreSQL schema)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_postgres_ledger(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def app(ledger_url: str) -> Iterator[Seawall]:
    """A Seawall app on a fresh ledger; retries do not sleep."""
    with no_waits():
        instance = Seawall(ledger_url, lease=2.0)
        try:
            yield instance
        finally:
            instance.close()
