"""Ledgers for the Celery tests: a shared SQLite file, and PostgreSQL when the store exists.

The PostgreSQL variant creates its own database (a unique name on the shared server) and
drops it afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall.errors import LedgerURLError
from seawall.ledger import open_store
from tests.postgres_schemas import fresh_postgres_ledger
from tests.services import POSTGRES_URL, REDIS_URL, require


@contextlib.contextmanager
def _ledger(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'ledger.db'}"
        return
    require("postgresql")
    try:  # a throwaway schema: the server's default one may hold a newer branch's ledger
        with fresh_postgres_ledger(POSTGRES_URL, "probe") as probe:
            open_store(probe).close()
    except LedgerURLError as exc:
        pytest.skip(f"this build has no PostgreSQL ledger: {exc.message}")
    import psycopg

    name = f"seawall_celery_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def redis_ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A ledger URL shared by the test process and its workers, and the Redis broker URL."""
    require("redis")
    with _ledger(request.param, tmp_path_factory.mktemp("ledger")) as url:
        yield url, REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def celery_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ledger URL for tests that need no worker."""
    with _ledger(request.param, tmp_path) as url:
        yield url
