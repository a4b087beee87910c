"""Garbage collection in one process never touches the staging of a live run in another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import seawall.artifacts
from seawall import Seawall

SLOW_WRITER = """
import sys, time
from pathlib import Path
from seawall import Seawall
work = Path(sys.argv[2])
app = Seawall(sys.argv[1], lease=0.5, artifacts=work / "out", staging=work / "staging")

@app.agent(name="slow")
def slow(ctx):
    for i in range(5):
        ctx.artifacts.write_text(f"f{i}.txt", str(i))
    print("staged", ctx.run_id, flush=True)
    sys.stdin.readline()          # wait until the other process has collected garbage
    ctx.artifacts.write_text("last.txt", "done")
    return "ok"

print(app.run(slow).status.value, flush=True)
app.close()
"""


def test_gc_in_another_process_leaves_a_live_run_alone(tmp_path: Path, ledger_url: str) -> None:
    """While a run holds its lease, gc elsewhere keeps its staging, and the run commits whole."""
    script = tmp_path / "slow.py"
    script.write_text(SLOW_WRITER)
    with subprocess.Popen(
        [sys.executable, str(script), ledger_url, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        word, run_id = child.stdout.readline().split()
        assert "staged" == word
        staged = tmp_path / "staging" / run_id / "1"
        # An app with a destination collects at start; then collect explicitly, twice.
        other = Seawall(ledger_url, artifacts=tmp_path / "out", staging=tmp_path / "staging")
        try:
            entries = other.gc()
            other.gc()
        finally:
            other.close()
        assert [(run_id, False)] == [(e.run_id, e.removed) for e in entries]
        assert 5 == len(list(staged.iterdir()))
        child.stdin.write("go\n")
        child.stdin.flush()
        assert "succeeded" == child.stdout.readline().strip()
        child.wait(timeout=10)
    committed = seawall.artifacts.read(run_id, tmp_path / "out")
    assert ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt", "last.txt"] == committed.names
