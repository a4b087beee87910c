"""Fixtures: an app with the known workload run once, and a dashboard over it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from seawall import Seawall
from seawall.testing import no_waits
from tests.dashboard.workload import Seeded, register, run_workload

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from starlette.testclient import TestClient

TOKEN = "test-operator-token"  # noqa: S105 - a test's token


@pytest.fixture
def seeded_app(tmp_path: Path, ledger_url: str) -> Iterator[tuple[Seawall, Seeded]]:
    """An app whose ledger holds the known workload (SQLite, or each ledger of ``LEDGERS``)."""
    pytest.importorskip("starlette")
    with no_waits():
        app = Seawall(ledger_url, staging=tmp_path / "staging")
        register(app)
        seeded = run_workload(app)
        try:
            yield app, seeded
        finally:
            app.close()


@pytest.fixture
def client(seeded_app: tuple[Seawall, Seeded]) -> Iterator[TestClient]:
    """A test client of the dashboard over the seeded app (not logged in)."""
    from starlette.testclient import TestClient

    from seawall.dashboard import create_app

    with TestClient(create_app(app=seeded_app[0], token=TOKEN)) as test_client:
        yield test_client


def login(client: TestClient) -> None:
    """Open an operator session on ``client``."""
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert 303 == response.status_code


def csrf_of(client: TestClient, path: str) -> str:
    """The CSRF token the action forms of ``path`` carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)
