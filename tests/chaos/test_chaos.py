"""The chaos harness: plans, injection under real SIGKILLs, the report and its invariants."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from seawall import ConfigurationError
from seawall.chaos import Fault, FaultPlan, check

from .session import chaos_session

HERE = Path(__file__).parent
pytestmark = pytest.mark.crash


def test_plan_validation() -> None:
    """Malformed faults are refused with a clear message."""
    with pytest.raises(ConfigurationError, match="agent:NAME or tool:NAME"):
        Fault("search", "exception", on_call=1)
    with pytest.raises(ConfigurationError, match="applies to agents"):
        Fault("tool:x", "drift", on_call=1)
    with pytest.raises(ConfigurationError, match="one of on_call or probability"):
        Fault("tool:x", "exception")
    with pytest.raises(ConfigurationError, match="unknown keys"):
        FaultPlan.from_dict(
            {"fault": [{"target": "tool:x", "kind": "exception", "on_call": 1, "when": 2}]}
        )
    plan = FaultPlan.load(HERE / "plan.toml")
    assert 5 == len(plan.faults)
    assert 3 == plan.seed


def test_chaos_run_recovers_every_fault_and_keeps_the_invariants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five faults (a crash and a crash after a side effect among them) are all recovered."""
    plan = (HERE / "plan.toml").read_text()
    report = chaos_session(tmp_path, monkeypatch, plan, "--runs", "8")
    assert report["ok"]
    assert {"succeeded": 8} == report["statuses"]
    assert 3 == report["restarts"]
    kinds = {f["kind"]: f["recovery"] for f in report["faults"]}
    assert "retried" == kinds["exception"]
    assert "resumed from the journal" == kinds["crash"]
    assert "resumed from the journal" == kinds["crash_after_effect"]
    assert "rolled back and resumed" == kinds["partial_artifacts"]
    assert "retried" == kinds["drift"]
    assert all(check["ok"] for check in report["invariants"].values())


def test_a_duplicate_side_effect_breaks_the_invariant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker reports a mutating call that ran twice with one key."""
    shutil.copy(HERE / "chaos_workflow.py", tmp_path / "wf.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    log = tmp_path / "session.jsonl"
    entry = {"event": "mutation", "tool": "charge", "key": "run-1:2", "run_id": "run-1"}
    log.write_text(json.dumps(entry) + "\n" + json.dumps(entry) + "\n")
    report = check("wf:writer", log, time.time(), 0)
    sys.modules.pop("wf", None)
    assert not report.ok
    assert ["charge run-1:2"] == report.invariants["no duplicate side effects"]["duplicates"]
