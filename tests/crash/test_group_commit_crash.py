"""SIGKILL a process while the endings of its concurrent runs sit in an uncommitted group.

Every run's side effect was applied and journaled; the group carrying endings was sent and never
committed. Its runs must be left running, none half-ended, and resume to their end without
applying a side effect again, on both ledgers: a run without artifacts runs a second attempt,
served its call from the journal; a run whose artifacts were being committed rolls that commit
forward, each artifact committed once (one lost before it began committing runs a second
attempt, leaving its first attempt's staging to the collector).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import seawall
from seawall import FailureCause, RunStatus

from .group_workload import build_app, effects, logged
from .test_crash_resume import resume_when_lapsed

LEDGERS = ("sqlite", "postgres")

pytestmark = pytest.mark.crash
WORKLOAD = Path(__file__).with_name("group_workload.py")
RUNS = 24


@pytest.mark.parametrize("artifacts", [False, True], ids=["plain", "artifacts"])
def test_a_group_of_endings_lost_to_a_kill_resumes_each_run_with_its_effect_once(
    tmp_path: Path, ledger_url: str, artifacts: bool
) -> None:
    log = effects(tmp_path)
    argv = [sys.executable, str(WORKLOAD), ledger_url, str(tmp_path), str(RUNS)]
    child = subprocess.run(
        [*argv, "artifacts"] if artifacts else argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert -signal.SIGKILL == child.returncode, child.stderr[-2000:]
    assert log.with_suffix(".killed").exists()  # killed at the group's commit, nowhere else
    keys = [entry["key"] for entry in logged(log)]
    assert (RUNS, RUNS) == (len(keys), len(set(keys)))

    app = build_app(ledger_url, tmp_path, artifacts=artifacts)
    try:
        # The group was lost whole: its runs are still running, none half-ended (a run that
        # ended before it, alone or in a group, ended whole).
        runs = app.ledger.runs(limit=100)
        lost = {r.run_id: r.phase for r in runs if r.status is RunStatus.RUNNING}
        assert RUNS == len(runs)
        assert {RunStatus.RUNNING, RunStatus.SUCCEEDED} >= {r.status for r in runs}
        if artifacts:  # the runs ended as they could: some alone, the rest in groups
            # The lost group's runs were committing their artifacts; a run still before that
            # (its artifacts' commit not begun when the process died) is lost with no phase.
            assert len(lost) >= 2
            assert "committing" in set(lost.values())
            assert set(lost.values()) <= {None, "committing"}
        else:  # every ending in the one group
            assert (RUNS, {None}) == (len(lost), set(lost.values()))
        resumed = []
        while len(resumed) < len(lost):
            resumed += resume_when_lapsed(app)
        assert set(lost) == {r.run_id for r in resumed}
        assert {RunStatus.SUCCEEDED} == {r.status for r in app.ledger.runs(limit=100)}
        for run in app.ledger.runs(limit=100):
            statuses = [a.status for a in app.ledger.attempts(run.run_id)]
            [charge] = [s for s in app.ledger.steps(run.run_id) if s.record.mutating]
            assert (1, "completed") == (charge.record.attempt, charge.record.status)
            if artifacts:
                i = app.ledger.output(run.run_id)
                committed = seawall.artifacts.read(run.run_id, str(tmp_path / "out"))
                assert ([f"run-{i}.txt"], f"charged {i}\n") == (
                    committed.names,
                    committed.read_text(f"run-{i}.txt"),
                )
                [record] = app.ledger.artifacts(run.run_id)
                assert record.committed_at is not None
            if run.run_id not in lost or lost[run.run_id] == "committing":
                assert ["succeeded"] == statuses  # a lost commit phase is rolled forward
                assert not (tmp_path / "staging" / run.run_id).exists()  # published
            else:  # lost before its ending: resumed by a second attempt
                assert ["failed", "succeeded"] == statuses
                crashed = app.ledger.attempts(run.run_id)[0]
                assert FailureCause.CRASHED == crashed.failure_cause
        # Each side effect exactly once: the resumed runs were served their calls.
        assert keys == [entry["key"] for entry in logged(log)]
        # What is left staged is the crashed first attempts' of runs lost before committing:
        # garbage, which the collector removes.
        left = app.gc()
        assert all(
            e.removed and e.attempt == 1 and lost.get(e.run_id, "ended") is None for e in left
        ), left
        assert not artifacts or not any((tmp_path / "staging").iterdir())
    finally:
        app.close()
