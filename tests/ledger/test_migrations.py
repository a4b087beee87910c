"""Migrations written once render, for each database, the statements it was migrated with before.

A shared migration holds tokens (``{REAL}``...) its store's dialect renders. Each version's
statements, rendered for each database, must be those of the per-database files they replaced:
``PINNED`` holds, per database and version, the first 16 hex digits of the SHA-256 of the
statements (comment lines dropped, whitespace collapsed, joined with ``;`` and a newline) as
those files read. The columns and indexes they build are compared across databases in
``test_schema_parity``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

import pytest

from seawall.ledger._dialect import POSTGRES, SQLITE, Dialect
from seawall.ledger.migrations import bundled, statements

PINNED: Final = {
    "sqlite": {
        1: "85760f15740c1645",
        2: "f85a73e0f3fa3899",
        3: "cf04886ead22a0db",
        4: "48ae69786d67bf83",
        5: "d608e0727be1a37a",
        6: "c4ac338f37b9a73d",
        7: "30c54fa10d9db0c9",
        8: "73f2b786e3d9a0d5",
        9: "c2a1d857f07c4bbd",
        10: "bab5970aaf5b36f4",
        11: "a4419a2616857e8a",
        12: "2b1d805527b862df",
        13: "91b438ca93f1d2c7",
        14: "7e012fd3c5b37993",
        15: "e8dfc95a514ee45a",
        16: "c501c817b55f466a",
    },
    "postgresql": {
        1: "b077af4259f48852",
        2: "df159f5d7a43cbce",
        3: "2b7b31a40b0f1474",
        4: "2b8ec103843d2fe1",
        5: "519fc69876523bf7",
        6: "9a08983e287b302e",
        7: "58835321f29b0cd6",
        8: "8ab71e0ea51881c2",
        9: "160126878daaf9d8",
        10: "b9ea603145899503",
        11: "fb9450ba10c87753",
        12: "fe62ef79a9601465",
        13: "131db3ab4ebacc21",
        14: "d0ec434260fecdc5",
        15: "e3b0c44298fc1c14",  # nothing to do: the SQLite twin re-creates triggers
        16: "c501c817b55f466a",
    },
}


def fingerprint(sql: str) -> str:
    """The pinned digest of a migration's statements."""
    text = ";\n".join(re.sub(r"\s+", " ", s).strip() for s in statements(sql))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=lambda d: d.name)
def test_every_version_renders_the_statements_it_had(dialect: Dialect) -> None:
    """Each version's rendered statements are those the per-database files held."""
    rendered = {version: fingerprint(sql) for version, _, sql in bundled(dialect)}
    assert PINNED[dialect.name] == rendered


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=lambda d: d.name)
def test_no_token_is_left_unrendered(dialect: Dialect) -> None:
    """Every token of a shared migration is one the dialect renders."""
    left = {
        name: re.findall(r"\{[A-Z_]+\}", sql)
        for _, name, sql in bundled(dialect)
        if re.search(r"\{[A-Z_]+\}", sql)
    }
    assert {} == left


def test_both_databases_have_the_same_versions() -> None:
    """The same versions, under the same file names, for both databases."""
    assert [(v, n) for v, n, _ in bundled(SQLITE)] == [(v, n) for v, n, _ in bundled(POSTGRES)]
