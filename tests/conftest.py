"""Shared fixtures: a Seawall app on a fresh temporary ledger, with backoff waits turned off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import Seawall
from seawall.testing import no_waits
from tests.services import chromium_path, postgres_url, rabbitmq_url, redis_url

__all__ = ["chromium_path", "postgres_url", "rabbitmq_url", "redis_url"]


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    """A SQLite ledger URL in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def app(ledger_url: str) -> Iterator[Seawall]:
    """A Seawall app on a fresh ledger; retries do not sleep."""
    with no_waits():
        instance = Seawall(ledger_url, lease=2.0)
        try:
            yield instance
        finally:
            instance.close()
