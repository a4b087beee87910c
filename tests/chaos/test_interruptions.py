"""`seawall chaos` stalls and ledger outages on a user's own workflow, with real processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from seawall import ConfigurationError
from seawall.chaos import Fault, FaultPlan

from .session import chaos_session

if TYPE_CHECKING:
    from pathlib import Path

    from tests.servers import ThrowawayPostgres

pytestmark = pytest.mark.crash
PLAN = """
seed = 1
[[fault]]
target = "tool:search"
kind = "stall"
on_call = 2
[[fault]]
target = "tool:publish"
kind = "ledger_outage"
on_call = 4
"""


def test_a_stalled_owner_is_fenced_and_a_ledger_outage_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the stalled process is fenced while another takes over; the locked ledger's
    interrupted run resumes; every invariant holds."""
    monkeypatch.delenv("SEAWALL_CHAOS_LEDGER", raising=False)
    report = chaos_session(tmp_path, monkeypatch, PLAN, "--runs", "5", "--lease", "0.5")
    assert {"succeeded": 5} == report["statuses"]
    recoveries = {f["kind"]: f["recovery"] for f in report["faults"]}
    assert "fenced; another process took the run over" == recoveries["stall"]
    assert "interrupted; resumed once the ledger was back" == recoveries["ledger_outage"]
    assert 1 == report["invariants"]["one owner at a time"]["fenced_attempts"]
    assert all(check["ok"] for check in report["invariants"].values()), report["invariants"]


def test_a_postgres_ledger_outage_cuts_off_only_the_workload(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    throwaway_postgres: ThrowawayPostgres,
    throwaway_postgres_ledger: str,
) -> None:
    """PostgreSQL: the workload's own connections are terminated and refused past the retry
    window; the run resumes once they are allowed again; the server was never stopped."""
    ledger = f"{throwaway_postgres_ledger}&retry_timeout=1&pool_timeout=1"
    monkeypatch.setenv("SEAWALL_CHAOS_LEDGER", ledger)
    postmaster = throwaway_postgres.pid
    report = chaos_session(tmp_path, monkeypatch, PLAN, "--runs", "5", "--lease", "0.5")
    assert postmaster == throwaway_postgres.pid  # never stopped nor restarted
    assert {"succeeded": 5} == report["statuses"]
    recoveries = {f["kind"]: f["recovery"] for f in report["faults"]}
    assert "fenced; another process took the run over" == recoveries["stall"]
    assert "interrupted; resumed once the ledger was back" == recoveries["ledger_outage"]
    assert all(check["ok"] for check in report["invariants"].values()), report["invariants"]


def test_outage_and_stall_faults_are_validated() -> None:
    """A negative or non-numeric delay is refused; stalls and outages strike once by default."""
    with pytest.raises(ConfigurationError, match="delay=-1"):
        Fault("tool:x", "ledger_outage", on_call=1, delay=-1)
    with pytest.raises(ConfigurationError, match="delay='long'"):
        FaultPlan.from_dict(
            {"fault": [{"target": "tool:x", "kind": "slow", "on_call": 1, "delay": "long"}]}
        )
    assert 1 == Fault("tool:x", "stall", probability=0.5).limit
    assert 1 == Fault("agent:x", "ledger_outage", probability=0.5).limit
