"""`seawall demo` (what `make demo` runs) works, hits the four failure classes, and works twice."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
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
        graphs = [r for r in app.ledger.runs(agent="publish", limit=100) if r.parent_run_id is None]
        assert 8 == len(graphs)
        assert 2 == len([g for g in graphs if g.status.value == "failed"])
        notified = (tmp_path / "work" / "notified.jsonl").read_text().splitlines()
        assert 6 == len(notified)
        assert 6 == len(list((tmp_path / "work" / "published").iterdir()))
    finally:
        app.close()
        forget_demo()


def hints(output: str) -> list[list[str]]:
    """The commands the demo suggests, as argument lists (continuation lines joined)."""
    tail = output.split("Next, try (from this folder):\n", 1)[1].replace("\\\n", " ")
    return [
        shlex.split(line)
        for line in tail.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def forget_demo() -> None:
    """Undo what running the demo in this process left behind."""
    for key in ("SEAWALL_DEMO_LEDGER", "SEAWALL_DEMO_WORKDIR"):
        os.environ.pop(key, None)
    demo_module = sys.modules.pop("seawall._demo", None)
    if demo_module is not None:
        demo_module.app.close()


def test_demo_hints_fit_80_columns_and_each_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns no line is wider; each suggested command names the ledger and exits 0."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    try:
        result = runner.invoke(cli, ["demo"])
        assert 0 == result.exit_code, result.output
        assert [] == [line for line in result.output.splitlines() if cell_len(line) > 80]
        commands = hints(result.output)
        assert 5 == len(commands)
        for words in commands:
            assert "--ledger" in words, words
            program = next(i for i, word in enumerate(words) if word.endswith("seawall"))
            assert Path(words[program]).is_file(), words
            outcome = runner.invoke(cli, words[program + 1 :])
            assert 0 == outcome.exit_code, (words, outcome.output)
            if "--recorded" in words:
                assert "same as the original's" in outcome.output
    finally:
        forget_demo()
