"""Running `seawall chaos run` on the test workflow, as a user would, for the chaos tests."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seawall.cli import cli

HERE = Path(__file__).parent


def chaos_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: str, *options: str
) -> dict[str, Any]:
    """Run ``wf:writer`` (the test workflow, copied to ``tmp_path``) under the TOML ``plan``;
    return the JSON report (the command must exit 0)."""
    shutil.copy(HERE / "chaos_workflow.py", tmp_path / "wf.py")
    (tmp_path / "plan.toml").write_text(plan)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    command = ["chaos", "run", "wf:writer", "--plan", "plan.toml", "--inputs", '{"topic": "ai"}']
    result = CliRunner().invoke(cli, [*command, *options, "--json"])
    sys.modules.pop("wf", None)
    assert 0 == result.exit_code, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report
