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
VIEWER_TOKEN = "test-viewer-token"  # noqa: S105 - a test's token
OPERATOR = "ada"
BASE_URL = "http://127.0.0.1:8765"
ORIGIN = {"origin": BASE_URL}
"""What a browser sends with a form posted from the dashboard's own pages."""


def dashboard(app: Seawall, **options: object) -> object:
    """The dashboard over ``app``, with one operator (ada) and one viewer (vic)."""
    from seawall.dashboard import create_app

    settings: dict[str, object] = {
        "operators": {OPERATOR: TOKEN},
        "viewers": {"vic": VIEWER_TOKEN},
        **options,
    }
    return create_app(app=app, **settings)  # type: ignore[arg-type]


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
    """A browser on the dashboard over the seeded app, not logged in."""
    from starlette.testclient import TestClient

    with TestClient(dashboard(seeded_app[0]), base_url=BASE_URL, headers=ORIGIN) as test_client:
        yield test_client


@pytest.fixture
def reader(client: TestClient) -> TestClient:
    """The same browser, logged in as a viewer (reads every page, acts on none)."""
    login(client, VIEWER_TOKEN)
    return client


def login(client: TestClient, token: str = TOKEN) -> None:
    """Open a session on ``client`` (the operator's by default)."""
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert 303 == response.status_code


def csrf_of(client: TestClient, path: str) -> str:
    """The CSRF token the forms of ``path`` carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)
