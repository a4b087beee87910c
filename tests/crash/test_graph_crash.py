"""A graph run killed mid-way resumes without re-running its finished nodes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seawall import RunStatus

from .graph_workload import build

pytestmark = pytest.mark.crash


def test_killed_graph_resumes_without_rerunning_finished_nodes(
    tmp_path: Path, ledger_url: str
) -> None:
    """SIGKILL while node c runs: resume reuses a, b and d and finishes c once."""
    workload = Path(__file__).with_name("graph_workload.py")
    done = subprocess.run(
        [sys.executable, str(workload), ledger_url, str(tmp_path)], check=False, timeout=60
    )
    assert -signal.SIGKILL == done.returncode
    assert ["a", "b", "d"] == (tmp_path / "ran.log").read_text().split()
    app, _ = build(ledger_url, tmp_path)
    try:
        deadline = time.monotonic() + 10
        results = []
        while not results and time.monotonic() < deadline:
            time.sleep(0.1)
            results = app.resume()
        [result] = results
        assert RunStatus.SUCCEEDED == result.status
        assert {"a": 2, "b": 20, "c": 25, "d": -2} == result.output
        assert ["a", "b", "d", "c"] == (tmp_path / "ran.log").read_text().split()
        assert {"a", "b", "c", "d"} == set(result.nodes)
        c_runs = [r for r in app.ledger.runs(parent_run_id=result.run_id) if r.node == "c"]
        assert 1 == len(c_runs)
        assert 2 == c_runs[0].attempts
    finally:
        app.close()
