"""`seawall demo` (what `make demo` runs) works, and works twice on the same ledger."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from seawall import Seawall
from seawall.cli import cli

runner = CliRunner()


def test_demo_runs_every_scenario_twice(tmp_path: Path, ledger_url: str) -> None:
    """The demo finishes, publishes without duplicates, and a second run adds to the ledger."""
    args = ["demo", "--ledger", ledger_url, "--workdir", str(tmp_path / "work")]
    first = runner.invoke(cli, args)
    assert 0 == first.exit_code, first.output
    assert "duplicates: 0" in first.output
    assert "SIGKILL" in first.output
    second = runner.invoke(cli, args)
    assert 0 == second.exit_code, second.output
    assert "duplicates: 0" in second.output
    app = Seawall(ledger_url)
    try:
        runs = app.runs(limit=100)
        assert 10 == len(runs)
        assert 2 == len([r for r in runs if r.status.value == "failed"])
        keys = [
            json.loads(line)["key"]
            for line in (tmp_path / "work" / "published.jsonl").read_text().splitlines()
        ]
        assert len(keys) == len(set(keys)) == 6
    finally:
        app.close()
