"""`seawall demo` (what `make demo` runs) works, hits the four failure classes, and works twice."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from seawall import Seawall
from seawall.cli import cli

runner = CliRunner()


def test_demo_exercises_the_four_classes_and_runs_twice(
    tmp_path: Path, ledger_url: str, monkeypatch
) -> None:
    """The demo injects one fault per class, recovers each, keeps the invariants, twice."""
    monkeypatch.chdir(tmp_path)
    args = ["demo", "--ledger", ledger_url, "--workdir", str(tmp_path / "work")]
    for _ in range(2):
        result = runner.invoke(cli, args)
        assert 0 == result.exit_code, result.output
        for text in (
            "clean_abort",
            "silent_drift",
            "partial_write",
            "cascade",
            "contained",
            "Invariants held",
        ):
            assert text in result.output
        assert "offline-stand-in" in result.output
    app = Seawall(ledger_url)
    try:
        graphs = [r for r in app.runs(agent="publish", limit=100) if r.parent_run_id is None]
        assert 8 == len(graphs)
        assert 2 == len([g for g in graphs if g.status.value == "failed"])
        notified = (tmp_path / "work" / "notified.jsonl").read_text().splitlines()
        assert 6 == len(notified)
        assert 6 == len(list((tmp_path / "work" / "published").iterdir()))
    finally:
        app.close()
    for key in ("SEAWALL_DEMO_LEDGER", "SEAWALL_DEMO_WORKDIR"):
        os.environ.pop(key, None)
    demo_module = sys.modules.pop("seawall._demo", None)
    if demo_module is not None:
        demo_module.app.close()
