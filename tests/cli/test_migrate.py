"""``seawall migrate``: pending migrations applied and reported, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from seawall.cli import cli
from seawall.ledger._dialect import SQLITE
from seawall.ledger.migrations import bundled
from tests.postgres_schemas import fresh_postgres_ledger

runner = CliRunner()
LATEST = bundled(SQLITE)[-1][0]
VERSIONS = [v for v, _, _ in bundled(SQLITE)]


def _migrate(url: str) -> dict:
    result = runner.invoke(cli, ["migrate", "--ledger", url, "--json"])
    assert 0 == result.exit_code, result.output
    return json.loads(result.stdout)


def test_new_sqlite_ledger_gets_every_migration(tmp_path: Path) -> None:
    """A new SQLite ledger goes from version 0 to the latest, listing each migration."""
    report = _migrate(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert ("sqlite", 0, LATEST) == (
        report["backend"],
        report["from_version"],
        report["to_version"],
    )
    assert VERSIONS == [m["version"] for m in report["applied"]]


def test_up_to_date_ledger_applies_nothing(tmp_path: Path) -> None:
    """Migrating twice: the second run applies nothing and says the ledger is up to date."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _migrate(url)
    assert [] == _migrate(url)["applied"]
    result = runner.invoke(cli, ["migrate", "--ledger", url])
    assert "up to date" in result.output


def test_newer_ledger_is_refused(tmp_path: Path) -> None:
    """A ledger from a newer Seawall: exit 1 and a message asking to upgrade."""
    path = tmp_path / "ledger.db"
    _migrate(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO seawall_meta VALUES (999, 'future', 0)")
    result = runner.invoke(cli, ["migrate", "--ledger", f"sqlite:///{path}"])
    assert 1 == result.exit_code
    assert "upgrade Seawall" in result.output


def test_postgres_ledger_is_migrated(postgres_url: str) -> None:
    """A new PostgreSQL schema is migrated to the latest version and reported with its URL."""
    with fresh_postgres_ledger(postgres_url, "cli") as url:
        report = _migrate(url)
        assert ("postgresql", 0, LATEST) == (
            report["backend"],
            report["from_version"],
            report["to_version"],
        )
        assert [] == _migrate(url)["applied"]


def test_unreachable_postgres_is_a_clear_error() -> None:
    """A server that is not there: exit 1, the URL without its password, what to check."""
    result = runner.invoke(cli, ["migrate", "--ledger", "postgresql://me:hunter2@127.0.0.1:1/db"])
    assert 1 == result.exit_code
    text = " ".join(result.output.split())
    assert "postgresql://me:***@127.0.0.1:1/db" in text
    assert "hunter2" not in text
