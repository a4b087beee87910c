"""Fixtures of the ledger tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.postgres_schemas import drop_schema, new_schema_name

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A unique schema name on the test PostgreSQL, dropped (with its ledger) after the test."""
    name = new_schema_name("pgl")
    try:
        yield name
    finally:
        drop_schema(postgres_url, name)
